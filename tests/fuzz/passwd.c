/*
 * Fuzz target: stored password hashes (lib/passwd). The input is
 * "hash\npassword": the hash's {SCHEME} prefix and crypt identifier are
 * parsed with and without {PLAIN} allowed, and the password is verified
 * when that stays cheap (libxcrypt's own cost parameters are trusted
 * input from a table, so a fuzzed "$2b$31$" would only measure patience).
 * The whole input is also read as a passwd table file (through a memfd)
 * and every user's hash looked up.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passwd.h"
#include "table.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* 1 when verifying h costs little: plain, locked, or a minimal cost. */
static int
cheap(const char *h)
{
	const char	*e;

	if (*h == '{' && (e = strchr(h, '}')) != NULL)
		h = e + 1;
	if (*h == '!' || *h == '*')
		return 1;
	if (strncmp(h, "$2", 2) == 0 && strlen(h) > 7)
		return h[4] == '0' && h[5] == '4' && h[6] == '$';
	if (strncmp(h, "$5$", 3) == 0 || strncmp(h, "$6$", 3) == 0)
		return strstr(h, "rounds=") == NULL;
	if (strncmp(h, "$y$", 3) == 0)
		return strncmp(h + 3, "j75$", 4) == 0;	/* the smallest N */
	return 0;
}

static int
lookup(const char *key, const char *val, void *arg)
{
	struct table	*t = arg;
	char		 h[600], small[8];
	int		 r;

	(void)val;
	r = passwd_lookup(t, key, h, sizeof(h));
	if (r == 1)
		(void)passwd_why(h, 0);
	else if (r == 0)
		abort();		/* every listed key is found */
	(void)passwd_lookup(t, key, small, sizeof(small));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct table	*t;
	char		*text, *pw, err[512], spec[64];
	const char	*why;
	int		 flags, r, fd;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if ((pw = strchr(text, '\n')) != NULL)
		*pw++ = '\0';
	else
		pw = text + size;
	for (flags = 0; flags <= PASSWD_ALLOW_PLAIN; flags++) {
		why = passwd_why(text, flags);
		if (why != NULL && passwd_verify(text, pw, flags) != -1)
			abort();	/* refused means refused */
		if (why == NULL && cheap(text)) {
			r = passwd_verify(text, pw, flags);
			if (r < -1 || r > 1)
				abort();
		}
	}
	free(text);

	if (size > 65536 || (fd = memfd_create("fuzz-passwd", MFD_CLOEXEC)) == -1)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(spec, sizeof(spec), "file:/proc/self/fd/%d", fd);
		if (table_open(&t, spec, err, sizeof(err)) == 0) {
			(void)table_foreach(t, lookup, t);
			table_close(t);
		}
	}
	close(fd);
	return 0;
}
