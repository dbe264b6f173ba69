/*
 * io -- buffered line and literal I/O over a socket, a pipe or TLS.
 *
 * Reads go into one buffer (32 KiB, grown only to hold a line the caller
 * allowed), lines are found with memchr, and nothing is consumed until a
 * whole line is there: a timeout leaves a partial line buffered for the
 * next call. Sockets are read and written with MSG_DONTWAIT and written
 * with MSG_NOSIGNAL, so the caller's fds stay blocking, a peer that went
 * away gives EPIPE instead of SIGPIPE, and a poll(2) timeout always holds.
 * Pipes are read after poll(2) says so and written PIPE_BUF bytes at a
 * time with SIGPIPE blocked around the write, so EPIPE there too.
 *
 * Timeouts: io_getline's is a deadline for the whole line (a slowloris
 * peer cannot stretch one line forever); io_read_full, io_read_some and
 * io_flush wait at most timeout_ms for each bit of progress. Output is
 * buffered up to IO_WCAP bytes; io_write flushes past that, within the
 * write timeout, so a peer that stops reading costs at most IO_WCAP.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "tls.h"

#define IO_RCAP		(32 * 1024)	/* read buffer */
#define IO_WCAP		(32 * 1024)	/* output buffered before a flush */
#define IO_WTIMEOUT	(120 * 1000)	/* default write timeout (ms) */
#define IO_FREE_FLUSH	2000		/* best-effort flush in io_free (ms) */

struct io {
	int		 rfd, wfd;
	int		 rsock, wsock;	/* sockets: send/recv with flags */
	int		 wfifo;		/* pipe: writes of PIPE_BUF at most */
	char		*rbuf;
	size_t		 rcap, rpos, rlen;	/* data is rbuf[rpos, rpos+rlen) */
	char		*wbuf;
	size_t		 wlen;
	int		 wtimeout;
	int		 werr;		/* sticky write error (errno) */
	int		 eof;
	int		 discarding;	/* in a line too long, until its LF */
	int		 discard_cr;	/* the last byte it dropped was CR */
	struct tls_conn	*tls;
};

long
io_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
fd_kind(int fd, int *sock, int *fifo)
{
	struct stat	st;

	*sock = *fifo = 0;
	if (fstat(fd, &st) == -1)
		return -1;
	*sock = S_ISSOCK(st.st_mode);
	*fifo = S_ISFIFO(st.st_mode);
	return 0;
}

struct io *
io_new(int rfd, int wfd)
{
	struct io	*io;
	int		 fifo;

	if ((io = calloc(1, sizeof(*io))) == NULL)
		return NULL;
	io->rcap = IO_RCAP;
	if ((io->rbuf = malloc(io->rcap)) == NULL ||
	    (io->wbuf = malloc(IO_WCAP)) == NULL) {
		free(io->rbuf);
		free(io);
		errno = ENOMEM;
		return NULL;
	}
	io->rfd = rfd;
	io->wfd = wfd;
	(void)fd_kind(rfd, &io->rsock, &fifo);
	(void)fd_kind(wfd, &io->wsock, &io->wfifo);
	io->wtimeout = IO_WTIMEOUT;
	return io;
}

void
io_free(struct io *io, int close_fds)
{
	if (io == NULL)
		return;
	if (io->wlen > 0 && io->werr == 0)
		(void)io_flush(io, io->wtimeout < IO_FREE_FLUSH ?
		    io->wtimeout : IO_FREE_FLUSH);
	if (io->tls != NULL)
		tls_close(io->tls);
	if (close_fds) {
		close(io->rfd);
		if (io->wfd != io->rfd)
			close(io->wfd);
	}
	/* what a client sent (an AUTH line) is not left in freed memory for
	   the next connection a reused process serves */
	explicit_bzero(io->rbuf, io->rcap);
	explicit_bzero(io->wbuf, IO_WCAP);
	free(io->rbuf);
	free(io->wbuf);
	free(io);
}

/* --- waiting ------------------------------------------------------------ */

int
io_wait_fd(int fd, short events, long deadline)
{
	struct pollfd	pfd;
	long		left;
	int		r;

	for (;;) {
		left = deadline - io_now_ms();
		if (left < 0)
			left = 0;
		pfd.fd = fd;
		pfd.events = events;
		pfd.revents = 0;
		r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 0;	/* POLLHUP/POLLERR: the read or write says */
		if (r == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (errno != EINTR)
			return -1;
	}
}

/* timeout_ms < 0 waits forever, as with poll(2). */
static long
deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? LONG_MAX : io_now_ms() + timeout_ms;
}

/* --- reading ------------------------------------------------------------ */

/*
 * One read of at most len bytes into p, waiting until deadline. >0 bytes,
 * 0 at EOF, -1 with errno.
 */
static long
raw_read(struct io *io, void *p, size_t len, long deadline)
{
	ssize_t	n;

	for (;;) {
		if (io->tls != NULL) {
			n = tls_read(io->tls, p, len);
			if (n >= 0)
				return n;
			if (errno != EAGAIN)
				return -1;
			if (io_wait_fd(tls_want(io->tls) == POLLOUT ? io->wfd :
			    io->rfd, (short)tls_want(io->tls), deadline) == -1)
				return -1;
			continue;
		}
		if (io->rsock) {
			n = recv(io->rfd, p, len, MSG_DONTWAIT);
			if (n >= 0)
				return n;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
		} else if (io_wait_fd(io->rfd, POLLIN, deadline) == 0) {
			n = read(io->rfd, p, len);
			if (n >= 0)
				return n;
			if (errno != EINTR && errno != EAGAIN)
				return -1;
			continue;
		} else
			return -1;
		if (io_wait_fd(io->rfd, POLLIN, deadline) == -1)
			return -1;
	}
}

/*
 * Reads more into the buffer. >0 bytes added, -1 with errno (ETIMEDOUT,
 * ECONNRESET at EOF, ...).
 */
static long
fill(struct io *io, long deadline)
{
	long	n;

	if (io->eof) {
		errno = ECONNRESET;
		return -1;
	}
	if (io->rlen == 0)
		io->rpos = 0;
	else if (io->rpos > 0 && io->rcap - io->rpos - io->rlen < io->rcap / 4) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen);
		io->rpos = 0;
	}
	if (io->rpos + io->rlen >= io->rcap) {
		errno = ENOBUFS;	/* the caller grows it first */
		return -1;
	}
	n = raw_read(io, io->rbuf + io->rpos + io->rlen,
	    io->rcap - io->rpos - io->rlen, deadline);
	if (n == 0) {
		io->eof = 1;
		errno = ECONNRESET;
		return -1;
	}
	if (n < 0) {
		if (errno == ECONNRESET)
			io->eof = 1;
		return -1;
	}
	io->rlen += (size_t)n;
	return n;
}

static void
consume(struct io *io, size_t n)
{
	io->rpos += n;
	io->rlen -= n;
	if (io->rlen == 0)
		io->rpos = 0;
}

/* Makes the read buffer hold at least need bytes. 0, or -1 ENOMEM. */
static int
rbuf_grow(struct io *io, size_t need)
{
	char	*p;
	size_t	 cap = io->rcap;

	if (need <= cap)
		return 0;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			errno = ENOMEM;
			return -1;
		}
		cap *= 2;
	}
	if (io->rpos > 0) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen);
		io->rpos = 0;
	}
	if ((p = realloc(io->rbuf, cap)) == NULL)
		return -1;
	io->rbuf = p;
	io->rcap = cap;
	return 0;
}

/*
 * Reads and drops input up to and including the next LF, then fails with
 * EMSGSIZE. Interrupted by a timeout, it goes on at the next io_getline:
 * the tail of a long line is never taken for a line of its own.
 */
static long
discard_line(struct io *io, long deadline, int *crlf_r)
{
	char	*lf, *start;

	if (!io->discarding)
		io->discard_cr = 0;
	io->discarding = 1;
	for (;;) {
		start = io->rbuf + io->rpos;
		lf = memchr(start, '\n', io->rlen);
		if (lf != NULL) {
			/* Whether the dropped line ended in CRLF: SMTP needs
			 * it to see the end of data after a long line. */
			if (crlf_r != NULL)
				*crlf_r = lf > start ? lf[-1] == '\r' :
				    io->discard_cr;
			consume(io, (size_t)(lf - start) + 1);
			io->discarding = 0;
			errno = EMSGSIZE;
			return -1;
		}
		if (io->rlen > 0)
			io->discard_cr = start[io->rlen - 1] == '\r';
		consume(io, io->rlen);
		if (fill(io, deadline) == -1)
			return -1;
	}
}

long
io_getline(struct io *io, char *buf, size_t size, int timeout_ms, int *crlf_r)
{
	long	 deadline = deadline_of(timeout_ms);
	size_t	 scanned = 0, len, max;
	char	*start, *lf;
	int	 crlf;

	if (size == 0) {
		errno = EINVAL;
		return -1;
	}
	if (io->discarding)
		return discard_line(io, deadline, crlf_r);
	/* A line of size-1 bytes, its CR and LF: more without LF is too long. */
	max = size + 1;
	for (;;) {
		start = io->rbuf + io->rpos;
		lf = memchr(start + scanned, '\n', io->rlen - scanned);
		if (lf != NULL)
			break;
		scanned = io->rlen;
		if (io->rlen >= max)
			return discard_line(io, deadline, crlf_r);
		if (io->rpos + io->rlen >= io->rcap &&
		    rbuf_grow(io, max < io->rcap ? io->rcap : max + 1) == -1)
			return -1;
		if (fill(io, deadline) == -1)
			return -1;
	}
	len = (size_t)(lf - start);
	crlf = len > 0 && start[len - 1] == '\r';
	consume(io, len + 1);
	if (crlf)
		len--;
	if (len > size - 1) {
		if (crlf_r != NULL)
			*crlf_r = crlf;
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(buf, start, len);
	buf[len] = '\0';
	if (crlf_r != NULL)
		*crlf_r = crlf;
	return (long)len;
}

int
io_read_full(struct io *io, void *data, size_t n, int timeout_ms)
{
	char	*p = data;
	size_t	 k;
	long	 r;

	k = io->rlen < n ? io->rlen : n;
	memcpy(p, io->rbuf + io->rpos, k);
	consume(io, k);
	p += k;
	n -= k;
	while (n > 0) {
		if (io->eof) {
			errno = ECONNRESET;
			return -1;
		}
		if (n >= io->rcap) {
			/* Large literals go straight to the caller's memory. */
			r = raw_read(io, p, n, deadline_of(timeout_ms));
			if (r == 0) {
				io->eof = 1;
				errno = ECONNRESET;
				return -1;
			}
			if (r < 0)
				return -1;
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (fill(io, deadline_of(timeout_ms)) == -1)
			return -1;
		k = io->rlen < n ? io->rlen : n;
		memcpy(p, io->rbuf + io->rpos, k);
		consume(io, k);
		p += k;
		n -= k;
	}
	return 0;
}

long
io_read_some(struct io *io, void *data, size_t n, int timeout_ms)
{
	size_t	k;

	if (n == 0)
		return 0;
	if (io->rlen == 0 && fill(io, deadline_of(timeout_ms)) == -1)
		return -1;
	k = io->rlen < n ? io->rlen : n;
	memcpy(data, io->rbuf + io->rpos, k);
	consume(io, k);
	return (long)k;
}

size_t
io_pending(const struct io *io)
{
	return io->rlen + (io->tls != NULL ? tls_pending_bytes(io->tls) : 0);
}

int
io_has_line(struct io *io)
{
	size_t	room, k;
	long	n;

	if (io->rlen > 0 && memchr(io->rbuf + io->rpos, '\n', io->rlen) != NULL)
		return 1;
	if (io->tls == NULL || (k = tls_pending_bytes(io->tls)) == 0)
		return 0;
	if (io->rpos > 0) {
		memmove(io->rbuf, io->rbuf + io->rpos, io->rlen);
		io->rpos = 0;
	}
	room = io->rcap - io->rlen;
	if (k > room)
		k = room;
	if (k == 0 || (n = tls_read(io->tls, io->rbuf + io->rlen, k)) <= 0)
		return 0;
	io->rlen += (size_t)n;
	return memchr(io->rbuf, '\n', io->rlen) != NULL;
}

void
io_discard_input(struct io *io)
{
	io->rpos = io->rlen = 0;
	io->discarding = 0;
}

ssize_t
io_write_nosigpipe(int fd, const void *p, size_t n)
{
	struct timespec	 zero = { 0, 0 };
	sigset_t	 set, old, pending;
	ssize_t		 r;
	int		 e, was_pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, &old);
	r = write(fd, p, n);
	e = errno;
	if (r == -1 && e == EPIPE && !was_pending)
		(void)sigtimedwait(&set, NULL, &zero);
	sigprocmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return r;
}

int
io_write_all(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		if ((w = write(fd, c, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* --- writing ------------------------------------------------------------ */

/* Writes all of p within timeout_ms of progress. 0, or -1 with errno. */
static int
raw_write(struct io *io, const char *p, size_t len, int timeout_ms)
{
	ssize_t	n;
	size_t	k;

	while (len > 0) {
		if (io->tls != NULL) {
			n = tls_write(io->tls, p, len);
			if (n < 0) {
				if (errno != EAGAIN)
					return -1;
				if (io_wait_fd(tls_want(io->tls) == POLLIN ?
				    io->rfd : io->wfd, (short)tls_want(io->tls),
				    deadline_of(timeout_ms)) == -1)
					return -1;
				continue;
			}
		} else if (io->wsock) {
			n = send(io->wfd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					return -1;
				if (io_wait_fd(io->wfd, POLLOUT,
				    deadline_of(timeout_ms)) == -1)
					return -1;
				continue;
			}
		} else {
			if (io_wait_fd(io->wfd, POLLOUT, deadline_of(timeout_ms)) == -1)
				return -1;
			k = len;
			if (io->wfifo && k > PIPE_BUF)
				k = PIPE_BUF;	/* fits without blocking */
			n = io_write_nosigpipe(io->wfd, p, k);
			if (n < 0) {
				if (errno == EINTR || errno == EAGAIN)
					continue;
				return -1;
			}
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
io_flush(struct io *io, int timeout_ms)
{
	if (io->werr != 0) {
		errno = io->werr;
		return -1;
	}
	if (io->wlen == 0)
		return 0;
	if (raw_write(io, io->wbuf, io->wlen, timeout_ms) == -1) {
		io->werr = errno;
		return -1;
	}
	io->wlen = 0;
	return 0;
}

int
io_write(struct io *io, const void *data, size_t n)
{
	if (io->werr != 0) {
		errno = io->werr;
		return -1;
	}
	if (n <= IO_WCAP - io->wlen) {
		memcpy(io->wbuf + io->wlen, data, n);
		io->wlen += n;
		return 0;
	}
	if (io_flush(io, io->wtimeout) == -1)
		return -1;
	if (n >= IO_WCAP) {
		if (raw_write(io, data, n, io->wtimeout) == -1) {
			io->werr = errno;
			return -1;
		}
		return 0;
	}
	memcpy(io->wbuf, data, n);
	io->wlen = n;
	return 0;
}

int
io_puts(struct io *io, const char *s)
{
	return io_write(io, s, strlen(s));
}

int
io_printf(struct io *io, const char *fmt, ...)
{
	va_list	 ap;
	char	 small[1024], *big;
	int	 n, r;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return io_write(io, small, (size_t)n);
	if ((big = malloc((size_t)n + 1)) == NULL)
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	r = io_write(io, big, (size_t)n);
	free(big);
	return r;
}

void
io_set_write_timeout(struct io *io, int timeout_ms)
{
	io->wtimeout = timeout_ms;
}

/* --- TLS ---------------------------------------------------------------- */

/* What both sides do before a handshake. 0, or -1 with err and errno. */
static int
starttls_prepare(struct io *io, int timeout_ms, char *err, size_t errlen)
{
	if (io->tls != NULL) {
		(void)snprintf(err, errlen, "TLS already active");
		errno = EINVAL;
		return -1;
	}
	if (io_flush(io, timeout_ms) == -1) {
		(void)snprintf(err, errlen, "flush before TLS: %s",
		    strerror(errno));
		return -1;
	}
	/* Plaintext sent before the handshake must not count as encrypted. */
	io_discard_input(io);
	return 0;
}

int
io_starttls_server(struct io *io, struct tls_ctx *ctx, int timeout_ms, char *err,
    size_t errlen)
{
	if (starttls_prepare(io, timeout_ms, err, errlen) == -1)
		return -1;
	io->tls = tls_accept_fds(ctx, io->rfd, io->wfd, timeout_ms, err, errlen);
	return io->tls != NULL ? 0 : -1;
}

int
io_starttls_client(struct io *io, struct tls_ctx *ctx, const char *servername,
    int timeout_ms, char *err, size_t errlen)
{
	if (starttls_prepare(io, timeout_ms, err, errlen) == -1)
		return -1;
	io->tls = tls_connect_fds(ctx, io->rfd, io->wfd, servername, timeout_ms,
	    err, errlen);
	return io->tls != NULL ? 0 : -1;
}

int
io_is_tls(const struct io *io)
{
	return io->tls != NULL;
}

const char *
io_tls_info(struct io *io, char *buf, size_t len)
{
	if (io->tls == NULL) {
		if (len > 0)
			buf[0] = '\0';
		return buf;
	}
	return tls_info(io->tls, buf, len);
}

const char *
io_tls_servername(struct io *io)
{
	return io->tls != NULL ? tls_servername(io->tls) : NULL;
}

int
io_fd(const struct io *io)
{
	return io->rfd;
}
