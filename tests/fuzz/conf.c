/*
 * Fuzz target: the configuration language (lib/conf): inih through our
 * line reader, section headers, ${VAR} expansion, then every typed getter
 * on every entry, conf_check_keys and conf_secret on values that are not
 * file: paths (reading arbitrary paths is not the point here).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("USER_A", "alice", 1);
	setenv("EMPTY", "", 1);
	setenv("LONG", "0123456789012345678901234567890123456789", 1);
	unsetenv("UNSET");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const allowed[] = { "port", "tls", "user", NULL };
	static const char *const words[] = { "none", "starttls", "tls", NULL };
	const struct conf_section	*s;
	struct conf			*c;
	unsigned long long		 sz;
	char				 err[512], *text, *r;
	long				 v;
	size_t				 i, j;
	int				 b;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (conf_load_string(&c, "fuzz.conf", text, err, sizeof(err)) == 0) {
		for (i = 0; i < c->nsections; i++) {
			s = &c->sections[i];
			(void)conf_check_keys(c, s, allowed, err, sizeof(err));
			(void)conf_section(c, s->type, s->label);
			for (j = 0; j < s->nentries && j < 64; j++) {
				const char *k = s->entries[j].key;

				(void)conf_bool(c, s, k, &b, err, sizeof(err));
				(void)conf_long(c, s, k, -5, 1000, &v, err,
				    sizeof(err));
				(void)conf_size(c, s, k, &sz, err, sizeof(err));
				(void)conf_duration(c, s, k, &v, err, sizeof(err));
				(void)conf_enum(c, s, k, words, &b, err,
				    sizeof(err));
				if (strncmp(s->entries[j].value, "file:", 5) != 0 &&
				    conf_secret(c, s, k, &r, err, sizeof(err)) == 1)
					free(r);
				(void)conf_next(s, k, &s->entries[j]);
			}
		}
		conf_free(c);
	}
	/* The expansion alone, on the raw input. */
	if (conf_expand(text, &r, err, sizeof(err)) == 0)
		free(r);
	free(text);
	return 0;
}
