/*
 * Fuzz target: smtpd-lite's queue envelope reader (cmd/smtpd-lite/
 * queue.c), which the queue runner (root) applies to files a session
 * process (unprivileged, talking to the network) wrote. The input is a
 * queue file; an optional part after the first "\0DONE\0" is the .done
 * file. Checks: a file read successfully has an id equal to its name, at
 * least one destination, NUL-free bounded fields, a body offset inside
 * the file, and done marks only for existing destinations.
 */
/* fuzz-sources: cmd/smtpd-lite/queue.c */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "smtpd.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***);

static char	 dir[64];
static const char id[] = "0123456789abcdef01234567";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz-smtpd-queue.%ld", (long)getpid());
	mkdir(dir, 0700);
	return 0;
}

static void
put(const char *name, const uint8_t *p, size_t n)
{
	char	 path[128];
	int	 fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		abort();
	if (n > 0 && write(fd, p, n) != (ssize_t)n)
		abort();
	close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope	 e;
	char		 err[256], done[64];
	const uint8_t	*sep;
	size_t		 n = size, i;

	if (dir[0] == '\0')
		LLVMFuzzerInitialize(NULL, NULL);
	sep = memmem(data, size, "\0DONE\0", 6);
	if (sep != NULL)
		n = (size_t)(sep - data);
	put(id, data, n);
	snprintf(done, sizeof(done), "%s.done", id);
	if (sep != NULL)
		put(done, sep + 6, size - n - 6);
	else {
		char path[128];
		snprintf(path, sizeof(path), "%s/%s", dir, done);
		unlink(path);
	}
	if (queue_read(dir, id, &e, err, sizeof(err)) == 0) {
		if (strcmp(e.id, id) != 0 || e.ndests == 0 || e.body_off < 0 ||
		    (size_t)e.body_off > n || e.size != (long long)n - e.body_off)
			abort();
		for (i = 0; i < e.ndests; i++)
			if (strlen(e.dests[i].rcpt) > SMTP_PATH_MAX ||
			    strlen(e.dests[i].rule) >= sizeof(e.dests[i].rule) ||
			    e.done[i] > 1)
				abort();
		queue_envelope_free(&e);
	}
	return 0;
}
