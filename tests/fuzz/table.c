/*
 * Fuzz target: lookup tables (lib/table). The input is opened as an
 * inline table, and as a file table (through a memfd, so nothing touches
 * the disk); every key is then looked up, with a short value buffer too.
 */
#include <sys/mman.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
check(const char *key, const char *val, void *arg)
{
	struct table	*t = arg;
	char		 v[8];

	if (table_lookup(t, key, NULL, 0) != 1)
		abort();		/* every listed key is found */
	(void)table_lookup(t, key, v, sizeof(v));
	(void)val;
	return 0;
}

static void
exercise(struct table *t)
{
	size_t	n = table_count(t);

	if (table_foreach(t, check, t) != 0)
		abort();
	(void)table_lookup(t, "", NULL, 0);
	(void)table_lookup(t, "root", NULL, 0);
	if (table_count(t) != n)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct table	*t;
	char		 err[512], spec[64], *text;
	int		 fd;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (table_open(&t, text, err, sizeof(err)) == 0) {
		exercise(t);
		table_close(t);
	}
	free(text);

	if ((fd = memfd_create("fuzz-table", MFD_CLOEXEC)) == -1)
		return 0;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(spec, sizeof(spec), "file:/proc/self/fd/%d", fd);
		if (table_open(&t, spec, err, sizeof(err)) == 0) {
			exercise(t);
			(void)table_reload(t, err, sizeof(err));
			exercise(t);
			table_close(t);
		}
	}
	close(fd);
	return 0;
}
