/*
 * Fuzz target: what fetch reads from an IMAP server (cmd/fetch/resp.c):
 * a response line, and for a FETCH response the attribute list across
 * the literals it announces (the literal bytes are taken from the input),
 * plus the capability lookup. The input is a server's byte stream.
 */
/* fuzz-sources: cmd/fetch/resp.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* Next line of [*p, end) into a malloc'd string; NULL at the end. */
static char *
next_line(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl;
	size_t n;
	char *s;

	if (*p >= end)
		return NULL;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	n = nl ? (size_t)(nl - *p) : (size_t)(end - *p);
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(s, *p, n);
	s[n] = '\0';
	if (n > 0 && s[n - 1] == '\r')
		s[n - 1] = '\0';
	*p += n + (nl ? 1 : 0);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *line;
	int lines = 0;

	while ((line = next_line(&p, end)) != NULL && lines++ < 256) {
		struct imap_resp r;
		struct imap_fetch f;
		int rc;

		if (imap_resp_parse(line, &r) == 0) {
			(void)imap_capa_has(r.text, "IDLE");
			if (r.code_arg != NULL)
				(void)imap_capa_has(r.code_arg, "UIDPLUS");
			if (r.type == IMAP_UNTAGGED &&
			    strcasecmp(r.word, "FETCH") == 0) {
				rc = imap_fetch_begin(&f, r.num, r.text);
				while (rc == 1) {
					if (f.literal > (unsigned long long)(end - p))
						break;
					p += f.literal;
					free(line);
					if ((line = next_line(&p, end)) == NULL)
						break;
					rc = imap_fetch_continue(&f, line);
					if (rc == 0 && f.qbody != NULL &&
					    f.qbodylen > strlen(line))
						abort();	/* must point into line */
				}
			}
		}
		free(line);
	}
	if (line != NULL)
		free(line);
	return 0;
}
