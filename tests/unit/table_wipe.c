/*
 * Unit tests for table_wipe_free and the wiping of freed table contents:
 * the process's own memory is searched (through /proc/self/mem, so freed
 * memory is read without touching it) for a secret that only the table
 * held. The secret is never in memory in the clear apart from the table's
 * copy: it is built from masked bytes, written with write(2) from a buffer
 * wiped at once, and searched for through its mask.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table.h"
#include "t.h"

#define MASK	0x5a
#define SLEN	24

static char		 dir[] = "/tmp/table-wipe.XXXXXX";
static char		 err[512];
static unsigned char	 masked[3][SLEN];	/* secrets, each byte ^ MASK */

static void
make_secret(int i)
{
	static const char	 alpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	int			 k, fd;
	unsigned char		 r[SLEN];

	if ((fd = open("/dev/urandom", O_RDONLY)) == -1 ||
	    read(fd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
		perror("/dev/urandom");
		exit(1);
	}
	close(fd);
	for (k = 0; k < SLEN; k++)
		masked[i][k] = (unsigned char)alpha[r[k] % 36] ^ MASK;
	masked[i][0] = (unsigned char)'Q' ^ MASK;	/* a rare first byte */
}

/* Writes prefix + secret i + suffix into buf (the caller wipes it). */
static size_t
unmask(char *buf, size_t len, const char *prefix, int i, const char *suffix)
{
	size_t	 n = strlen(prefix), m = strlen(suffix), k;

	if (n + SLEN + m + 1 > len)
		exit(1);
	memcpy(buf, prefix, n);
	for (k = 0; k < SLEN; k++)
		buf[n + k] = (char)(masked[i][k] ^ MASK);
	memcpy(buf + n + SLEN, suffix, m + 1);
	return n + SLEN + m;
}

static void
write_table(const char *path, int i)
{
	char	 text[8192];
	size_t	 n, k;
	int	 fd;

	/*
	 * Lines before and after it, so that the secret sits in the middle
	 * of a large block: malloc reuses the start of a freed block for its
	 * own pointers, and would hide an unwiped secret there.
	 */
	for (n = 0, k = 0; k < 100; k++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "user%03zu $y$j9T$fillerfillerfiller\n", k);
	n += unmask(text + n, sizeof(text) - n, "alice ", i, "\nbob x\n");
	for (k = 100; k < 200; k++)
		n += (size_t)snprintf(text + n, sizeof(text) - n,
		    "user%03zu $y$j9T$fillerfillerfiller\n", k);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1 ||
	    write(fd, text, n) != (ssize_t)n || close(fd) == -1) {
		perror(path);
		exit(1);
	}
	explicit_bzero(text, sizeof(text));
}

/* Occurrences of secret i in this process's readable memory. */
static int
count_in_memory(int i)
{
	static unsigned char	 chunk[1 << 20];
	FILE			*maps;
	char			 line[512], perms[8];
	unsigned long		 lo, hi, a;
	int			 mem, found = 0;
	size_t			 k, j;
	ssize_t			 n;

	if ((maps = fopen("/proc/self/maps", "r")) == NULL ||
	    (mem = open("/proc/self/mem", O_RDONLY)) == -1) {
		perror("/proc/self");
		exit(1);
	}
	while (fgets(line, sizeof(line), maps) != NULL) {
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
		    perms[0] != 'r' || hi - lo > (256UL << 20) ||
		    strstr(line, "[vvar]") != NULL)
			continue;
		for (a = lo; a < hi; a += sizeof(chunk) - SLEN) {
			n = pread(mem, chunk, hi - a < sizeof(chunk) ?
			    hi - a : sizeof(chunk), (off_t)a);
			if (n < SLEN)
				break;
			for (k = 0; k + SLEN <= (size_t)n; k++) {
				if ((chunk[k] ^ MASK) != masked[i][0])
					continue;
				for (j = 1; j < SLEN && (chunk[k + j] ^ MASK) ==
				    masked[i][j]; j++)
					;
				if (j == SLEN)
					found++;
			}
			if ((size_t)n < sizeof(chunk))
				break;
		}
	}
	fclose(maps);
	close(mem);
	explicit_bzero(chunk, sizeof(chunk));
	return found;
}

int
main(void)
{
	struct table	*t;
	char		 path[200], spec[4096];
	char		 val[64];
	size_t		 n, k;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/passwd", dir);
	make_secret(0);
	make_secret(1);
	make_secret(2);

	/* a file table: present while open, gone after table_wipe_free */
	write_table(path, 0);
	snprintf(spec, sizeof(spec), "file:%s", path);
	T_OK(table_open(&t, spec, err, sizeof(err)) == 0, "file table opens");
	T_OK(count_in_memory(0) >= 1, "the search finds the secret of an open "
	    "table");
	T_EQ_INT(table_lookup(t, "bob", val, sizeof(val)), 1,
	    "lookups work before the wipe");

	/* a reload does not leave the old content in freed memory */
	write_table(path, 1);
	T_OK(table_reload(t, err, sizeof(err)) == 0, "reload");
	T_EQ_INT(count_in_memory(0), 0, "old content wiped by a reload");
	T_OK(count_in_memory(1) >= 1, "new content present after reload");
	table_wipe_free(t);
	T_EQ_INT(count_in_memory(1), 0, "file table content wiped");

	/* an inline table: its spec holds the secret too */
	n = 0;
	for (k = 0; k < 40; k++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n,
		    "label%02zu = u:fillerfiller, ", k);
	n += unmask(spec + n, sizeof(spec) - n, "relay = user:", 2, ", ");
	for (k = 40; k < 80; k++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n,
		    "label%02zu = u:fillerfiller, ", k);
	T_OK(table_open(&t, spec, err, sizeof(err)) == 0, "inline table opens");
	explicit_bzero(spec, sizeof(spec));
	T_OK(count_in_memory(2) >= 2, "inline secret in its spec and content");
	table_wipe_free(t);
	T_EQ_INT(count_in_memory(2), 0, "inline table spec and content wiped");

	table_wipe_free(NULL);
	T_OK(1, "table_wipe_free(NULL) is a no-op");
	unlink(path);
	rmdir(dir);
	return t_done();
}
