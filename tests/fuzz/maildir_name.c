/*
 * Fuzz target: Maildir names as imapd, fetch and lda read them from a
 * directory listing (lib/maildir): maildir_parse_name on file names
 * (base, ,S= and ,W= sizes, :2, flags) and maildir_folder_name_ok on
 * Maildir++ folder names. The input is split at NUL bytes into names.
 * Checks the invariants the readers rely on: a parsed base is a prefix
 * of the name without ',' ':' '/', the flags fit and come after ":2,",
 * and an accepted folder name cannot leave the Maildir ("..", "/",
 * leading '.', control characters).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
one(const char *name)
{
	struct maildir_name	 mn;
	size_t			 n;

	if (maildir_parse_name(name, &mn) == 0) {
		n = strlen(mn.base);
		if (n == 0 || n >= sizeof(mn.base) ||
		    strncmp(mn.base, name, n) != 0 ||
		    strpbrk(mn.base, ",:/") != NULL || name[0] == '.')
			abort();
		if (strlen(mn.flags) >= sizeof(mn.flags))
			abort();
		if (mn.flags[0] != '\0' && strstr(name, ":2,") == NULL)
			abort();
		if (mn.size < -1 || mn.wsize < -1)
			abort();
	}
	if (maildir_folder_name_ok(name)) {
		if (name[0] == '.' || strstr(name, "..") != NULL ||
		    strchr(name, '/') != NULL)
			abort();
		for (const unsigned char *p = (const unsigned char *)name;
		    *p != '\0'; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s, *p, *end;

	if (size > 65536)
		return 0;
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	end = s + size;
	for (p = s; p <= end; p += strlen(p) + 1)
		one(p);
	free(s);
	return 0;
}
