/*
 * Fuzz target: lib/io's line framing (io_getline), differential. The
 * input's first byte picks the line limit (1 to 128), its second seeds
 * how the rest is cut into chunks. The chunks go one at a time into a
 * socketpair; io_getline is called with a zero timeout between them, so
 * lines, CRs and over-long lines are split at every possible place and
 * the "partial line survives a timeout" and "discard to LF" paths run.
 * Every result is compared with a model: each LF ends one segment; a CR
 * just before it makes it CRLF; a segment longer than limit-1 (after
 * that CR) gives EMSGSIZE; an unfinished last segment gives ECONNRESET.
 * A difference aborts.
 */
#include <sys/socket.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

/* fuzz-options: -max_len=8192 */

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct model {
	const uint8_t	*p, *end;
};

/* The next expected outcome: length, or -1 with *err; *crlf. */
static long
model_next(struct model *m, size_t size, int *err, int *crlf)
{
	const uint8_t	*lf;
	size_t		 len;

	lf = memchr(m->p, '\n', (size_t)(m->end - m->p));
	if (lf == NULL) {
		*err = ECONNRESET;
		return -1;
	}
	len = (size_t)(lf - m->p);
	*crlf = len > 0 && lf[-1] == '\r';
	if (*crlf)
		len--;
	m->p = lf + 1;
	if (len > size - 1) {
		*err = EMSGSIZE;
		return -1;
	}
	return (long)len;
}

static int
check(struct io *io, struct model *m, size_t size, char *buf)
{
	const uint8_t	*line;
	long		 n, want;
	int		 crlf = -1, wcrlf = 0, werr = 0;

	errno = 0;
	n = io_getline(io, buf, size, 0, &crlf);
	if (n == -1 && errno == ETIMEDOUT)
		return 1;			/* needs the next chunk */
	line = m->p;
	want = model_next(m, size, &werr, &wcrlf);
	if (n != want)
		abort();
	if (n == -1) {
		if (errno != werr)
			abort();
		return werr == ECONNRESET ? 2 : 0;
	}
	if (crlf != wcrlf || buf[n] != '\0' || memcmp(buf, line, (size_t)n) != 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model	 m;
	struct io	*io;
	const uint8_t	*p, *end;
	uint32_t	 rnd;
	size_t		 limit, k;
	char		*buf;
	int		 sv[2], r, closed = 0;

	if (size < 2 || size > 8192)
		return 0;
	limit = 1 + data[0] % 128;
	rnd = 0x9e3779b9u ^ data[1];
	p = data + 2;
	end = data + size;
	m.p = p;
	m.end = end;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1)
		return 0;
	if ((io = io_new(sv[0], sv[0])) == NULL || (buf = malloc(limit)) == NULL) {
		io_free(io, 0);
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	for (;;) {
		r = check(io, &m, limit, buf);
		if (r == 2)
			break;
		if (r == 0)
			continue;
		/* Timed out: feed the next chunk, or end the stream. */
		if (p == end) {
			if (closed)
				abort();	/* EOF, yet no answer */
			close(sv[1]);
			closed = 1;
			continue;
		}
		rnd = rnd * 1103515245u + 12345u;
		k = 1 + (rnd >> 16) % 97;
		if (k > (size_t)(end - p))
			k = (size_t)(end - p);
		if (write(sv[1], p, k) != (ssize_t)k)
			abort();
		p += k;
	}
	free(buf);
	io_free(io, 1);
	if (!closed)
		close(sv[1]);
	return 0;
}
