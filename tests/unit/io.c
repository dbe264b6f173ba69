/*
 * Unit tests for lib/io: a child process is the peer over socketpair(),
 * a pipe pair and loopback TCP.
 */
#include <sys/socket.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io.h"
#include "t.h"

static long
ms_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
ms_sleep(int ms)
{
	struct timespec	ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void
writeall(int fd, const void *p, size_t n)
{
	const char	*c = p;
	ssize_t		 w;

	while (n > 0) {
		w = write(fd, c, n);
		if (w <= 0) {
			if (w == -1 && errno == EINTR)
				continue;
			_exit(3);
		}
		c += w;
		n -= (size_t)w;
	}
}

/* A peer that writes chunks with pauses between them, then maybe closes. */
struct chunk {
	const char	*s;
	size_t		 len;	/* 0: strlen */
	int		 pause_ms;
};

static pid_t
peer_write(int fd, const struct chunk *c, int linger_ms)
{
	pid_t	pid = fork();

	if (pid != 0)
		return pid;
	for (; c->s != NULL; c++) {
		if (c->pause_ms)
			ms_sleep(c->pause_ms);
		writeall(fd, c->s, c->len ? c->len : strlen(c->s));
	}
	if (linger_ms)
		ms_sleep(linger_ms);
	_exit(0);
}

static void
reap(pid_t pid)
{
	int	st;

	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
}

static void
test_lines(void)
{
	static const struct chunk c[] = {
		{ "HELO exa", 0, 0 },
		{ "mple.org\r", 0, 20 },
		{ "\nbare lf\nMAIL FROM:<a@b>\r\n", 0, 20 },
		{ "\r\n", 0, 0 },
		{ "cr\rinside\r\nlast", 0, 0 },
		{ NULL, 0, 0 }
	};
	struct io	*io;
	char		 line[64];
	long		 n;
	int		 sv[2], crlf = -1;
	pid_t		 pid;

	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = peer_write(sv[1], c, 0);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	T_OK(io != NULL, "io_new");
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_EQ_STR(n >= 0 ? line : "", "HELO example.org", "line across chunks");
	T_EQ_INT(crlf, 1, "CRLF seen across a chunk boundary");
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_EQ_STR(n >= 0 ? line : "", "bare lf", "bare LF line");
	T_EQ_INT(crlf, 0, "bare LF reported");
	T_OK(io_pending(io) > 0, "pipelined bytes pending (%zu)", io_pending(io));
	n = io_getline(io, line, sizeof(line), 5000, NULL);
	T_EQ_STR(n >= 0 ? line : "", "MAIL FROM:<a@b>", "pipelined line");
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_EQ_INT(n, 0, "empty CRLF line");
	T_EQ_INT(crlf, 1, "empty line is CRLF");
	T_EQ_INT(io_has_line(io), 1, "a whole line is buffered");
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_EQ_STR(n >= 0 ? line : "", "cr\rinside", "bare CR kept inside a line");
	T_OK(io_pending(io) > 0 && io_has_line(io) == 0,
	    "a partial line is pending but is not a line (%zu)", io_pending(io));
	errno = 0;
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_OK(n == -1 && errno == ECONNRESET,
	    "EOF in a partial line gives ECONNRESET (n=%ld errno=%d)", n, errno);
	io_free(io, 1);
	reap(pid);
}

static void
test_long_lines(void)
{
	struct chunk	 c[6];
	struct io	*io;
	char		*big, line[1001];
	long		 n;
	int		 sv[2], crlf;
	pid_t		 pid;

	/* 1 MB line, then a fine one; then a line of exactly 1000 + CRLF. */
	big = malloc(1024 * 1024 + 1);
	memset(big, 'x', 1024 * 1024);
	big[1024 * 1024] = '\0';
	memset(c, 0, sizeof(c));
	c[0].s = big;
	c[1].s = "\r\nNOOP\r\n";
	c[2].s = big + 1024 * 1024 - 1000;	/* 1000 x */
	c[3].s = "\r\n";
	c[4].s = big + 1024 * 1024 - 1001;	/* 1001 x with bare LF */
	c[5].s = NULL;
	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = peer_write(sv[1], c, 0);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	errno = 0;
	n = io_getline(io, line, sizeof(line), 10000, &crlf);
	T_OK(n == -1 && errno == EMSGSIZE, "1 MB line gives EMSGSIZE (n=%ld errno=%d)",
	    n, errno);
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_EQ_STR(n >= 0 ? line : "", "NOOP", "next line reads fine after EMSGSIZE");
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_EQ_INT(n, 1000, "a line of exactly size-1 bytes fits");
	T_EQ_INT(crlf, 1, "its CRLF is seen");
	errno = 0;
	n = io_getline(io, line, sizeof(line), 5000, &crlf);
	T_OK(n == -1 && (errno == EMSGSIZE || errno == ECONNRESET),
	    "size bytes without LF then EOF fails (errno=%d)", errno);
	io_free(io, 1);
	reap(pid);

	/* Over-long line ending in bare LF right at size. */
	memset(c, 0, sizeof(c));
	c[0].s = big + 1024 * 1024 - 1000;	/* 1000 x */
	c[1].s = "\nok\n";
	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = peer_write(sv[1], c, 0);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	errno = 0;
	n = io_getline(io, line, 1000, 5000, &crlf);
	T_OK(n == -1 && errno == EMSGSIZE,
	    "1000 bytes + LF into size 1000 is EMSGSIZE (errno=%d)", errno);
	n = io_getline(io, line, 1000, 5000, &crlf);
	T_EQ_STR(n >= 0 ? line : "", "ok", "and the next line is fine");
	io_free(io, 1);
	reap(pid);

	/* A long line cut by a timeout: its tail is not taken for a line. */
	memset(c, 0, sizeof(c));
	c[0].s = big + 1024 * 1024 - 1500;	/* 1500 x */
	c[1].s = "tail\r\nnext\r\n";
	c[1].pause_ms = 300;
	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = peer_write(sv[1], c, 0);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	errno = 0;
	n = io_getline(io, line, 1000, 100, &crlf);
	T_OK(n == -1 && errno == ETIMEDOUT,
	    "long line cut by a timeout: ETIMEDOUT (errno=%d)", errno);
	errno = 0;
	n = io_getline(io, line, 1000, 5000, &crlf);
	T_OK(n == -1 && errno == EMSGSIZE,
	    "then EMSGSIZE, not its tail (n=%ld errno=%d)", n, errno);
	n = io_getline(io, line, 1000, 5000, &crlf);
	T_EQ_STR(n >= 0 ? line : "", "next", "then the next line");
	io_free(io, 1);
	reap(pid);
	free(big);
}

static void
test_timeout(void)
{
	static const struct chunk c[] = {
		{ "partial ", 0, 0 },
		{ "line\r\n", 0, 400 },
		{ NULL, 0, 0 }
	};
	struct io	*io;
	char		 line[64], b[8];
	long		 n, t0;
	int		 sv[2];
	pid_t		 pid;

	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = peer_write(sv[1], c, 300);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	t0 = ms_now();
	errno = 0;
	n = io_getline(io, line, sizeof(line), 150, NULL);
	T_OK(n == -1 && errno == ETIMEDOUT, "slow line times out (errno=%d)", errno);
	T_OK(ms_now() - t0 >= 140 && ms_now() - t0 < 1000,
	    "timeout took about 150 ms (%ld)", ms_now() - t0);
	n = io_getline(io, line, sizeof(line), -1, NULL);
	T_EQ_STR(n >= 0 ? line : "", "partial line",
	    "the partial line survives a timeout (then -1 waits for the rest)");
	errno = 0;
	n = io_read_some(io, b, sizeof(b), 100);
	T_OK(n == -1 && errno == ETIMEDOUT, "read_some times out (errno=%d)", errno);
	errno = 0;
	n = io_read_some(io, b, sizeof(b), 5000);
	T_OK(n == -1 && errno == ECONNRESET, "read_some at EOF: ECONNRESET (errno=%d)",
	    errno);
	io_free(io, 1);
	reap(pid);
}

static void
test_read_full(void)
{
	struct chunk	 c[4];
	struct io	*io;
	char		*lit, *got, line[32];
	size_t		 i, n = 3 * 1024 * 1024 + 7;
	int		 sv[2], ok;
	pid_t		 pid;

	lit = malloc(n);
	got = malloc(n);
	for (i = 0; i < n; i++)
		lit[i] = (char)(i * 7 + i / 251);
	memset(c, 0, sizeof(c));
	c[0].s = "A1 APPEND INBOX {3145735}\r\n";
	c[1].s = lit;
	c[1].len = n;
	c[2].s = "\r\nA2 NOOP\r\n";
	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	pid = peer_write(sv[1], c, 0);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	T_OK(io_getline(io, line, sizeof(line), 5000, NULL) > 0 &&
	    strcmp(line, "A1 APPEND INBOX {3145735}") == 0, "literal announced");
	ok = io_read_full(io, got, n, 5000) == 0 && memcmp(got, lit, n) == 0;
	T_OK(ok, "3 MB literal read exactly");
	T_EQ_INT(io_getline(io, line, sizeof(line), 5000, NULL), 0,
	    "the rest of the literal line");
	T_EQ_STR(io_getline(io, line, sizeof(line), 5000, NULL) >= 0 ? line : "",
	    "A2 NOOP", "the next command after the literal");
	errno = 0;
	T_OK(io_read_full(io, got, 10, 5000) == -1 && errno == ECONNRESET,
	    "read_full at EOF fails with ECONNRESET");
	io_free(io, 1);
	reap(pid);
	free(lit);
	free(got);
}

/* A peer that never reads: io_write must fail within the timeout. */
static void
test_write_timeout(void)
{
	struct io	*io;
	char		 block[4096];
	long		 t0;
	int		 sv[2], r = 0, i;

	memset(block, 'y', sizeof(block));
	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	io = io_new(sv[0], sv[0]);
	io_set_write_timeout(io, 200);
	t0 = ms_now();
	errno = 0;
	for (i = 0; i < 100000 && r == 0; i++)
		r = io_write(io, block, sizeof(block));
	T_OK(r == -1 && errno == ETIMEDOUT,
	    "io_write to a peer that does not read: ETIMEDOUT (errno=%d)", errno);
	T_OK(i < 1000, "after a bounded amount of buffering (%d KiB)", i * 4);
	T_OK(ms_now() - t0 < 3000, "within the timeout (%ld ms)", ms_now() - t0);
	T_OK(io_write(io, "x", 1) == -1, "the error is sticky");
	io_free(io, 1);
	close(sv[1]);

	/* A peer that closed: EPIPE and no SIGPIPE (we would die). */
	T_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	errno = 0;
	r = io_puts(io, "221 bye\r\n");
	T_OK(r == 0, "buffered write succeeds");
	T_OK(io_flush(io, 1000) == -1 && errno == EPIPE,
	    "flush to a closed socket: EPIPE, no SIGPIPE (errno=%d)", errno);
	io_free(io, 1);

	/* The same on a pipe whose reader is gone (inetd mode under pipes). */
	T_OK(pipe(sv) == 0, "pipe");
	close(sv[0]);
	io = io_new(-1, sv[1]);
	io_puts(io, "* BYE\r\n");
	errno = 0;
	T_OK(io_flush(io, 1000) == -1 && errno == EPIPE,
	    "flush to a closed pipe: EPIPE, no SIGPIPE (errno=%d)", errno);
	{
		sigset_t pending;

		sigpending(&pending);
		T_OK(!sigismember(&pending, SIGPIPE), "no SIGPIPE left pending");
	}
	io_free(io, 0);
	close(sv[1]);
}

static void
test_pipes_and_output(void)
{
	struct io	*io, *peer;
	char		 line[128];
	int		 in[2], out[2], i;
	long		 n;
	pid_t		 pid;

	/* An inetd-style pair: read from one pipe, write to another. */
	T_OK(pipe(in) == 0 && pipe(out) == 0, "pipes");
	pid = fork();
	if (pid == 0) {
		close(in[0]);
		close(out[1]);
		peer = io_new(out[0], in[1]);
		for (i = 0; i < 2000; i++)
			if (io_printf(peer, "line %d %s\r\n", i,
			    "padding padding padding padding padding") == -1)
				_exit(2);
		if (io_flush(peer, 5000) == -1)
			_exit(2);
		/* Echo one line back. */
		if (io_getline(peer, line, sizeof(line), 5000, NULL) < 0)
			_exit(4);
		io_printf(peer, "echo %s\r\n", line);
		io_free(peer, 1);
		_exit(0);
	}
	close(in[1]);
	close(out[0]);
	io = io_new(in[0], out[1]);
	for (i = 0; i < 2000; i++) {
		char want[128];

		n = io_getline(io, line, sizeof(line), 5000, NULL);
		snprintf(want, sizeof(want), "line %d %s", i,
		    "padding padding padding padding padding");
		if (n < 0 || strcmp(line, want) != 0)
			break;
	}
	T_EQ_INT(i, 2000, "2000 lines over a pipe, io_printf to io_getline");
	T_OK(io_puts(io, "hello\r\n") == 0 && io_flush(io, 5000) == 0,
	    "write to a pipe");
	n = io_getline(io, line, sizeof(line), 5000, NULL);
	T_EQ_STR(n >= 0 ? line : "", "echo hello",
	    "io_free flushes what was buffered");
	T_EQ_INT(io_is_tls(io), 0, "not TLS");
	T_EQ_STR(io_tls_info(io, line, sizeof(line)), "", "no TLS info");
	T_OK(io_tls_servername(io) == NULL, "no servername");
	T_EQ_INT(io_fd(io), in[0], "io_fd is the read fd");
	io_free(io, 1);
	reap(pid);
}

static void
test_tcp(void)
{
	struct sockaddr_in	 sin;
	socklen_t		 slen = sizeof(sin);
	struct io		*io;
	char			 line[64];
	int			 ls, s, c, i;
	long			 n;
	pid_t			 pid;

	ls = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	T_OK(bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    listen(ls, 1) == 0 &&
	    getsockname(ls, (struct sockaddr *)&sin, &slen) == 0,
	    "listen on loopback");
	pid = fork();
	if (pid == 0) {
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) == -1)
			_exit(2);
		io = io_new(c, c);
		for (i = 0; i < 100; i++)
			io_printf(io, "RCPT TO:<u%d@example.org>\r\n", i);
		io_flush(io, 5000);
		n = io_getline(io, line, sizeof(line), 5000, NULL);
		io_free(io, 1);
		_exit(n > 0 && strcmp(line, "250 ok") == 0 ? 0 : 1);
	}
	s = accept(ls, NULL, NULL);
	io = io_new(s, s);
	for (i = 0; i < 100; i++) {
		char want[64];

		snprintf(want, sizeof(want), "RCPT TO:<u%d@example.org>", i);
		if (io_getline(io, line, sizeof(line), 5000, NULL) < 0 ||
		    strcmp(line, want) != 0)
			break;
	}
	T_EQ_INT(i, 100, "100 pipelined commands over loopback TCP");
	io_puts(io, "250 ok\r\n");
	io_flush(io, 5000);
	{
		int st = -1;

		waitpid(pid, &st, 0);
		T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "peer got the reply");
	}
	io_free(io, 1);
	close(ls);
}

int
main(void)
{
	test_lines();
	test_long_lines();
	test_timeout();
	test_read_full();
	test_write_timeout();
	test_pipes_and_output();
	test_tcp();
	return t_done();
}
