/*
 * smtpload -- the benchmark's SMTP client, in C so that on a small
 * machine the clients cost little next to the servers they measure (as
 * Postfix's smtp-source; Python clients took a third of two cores).
 *
 *   smtpload -p PORT -c CLIENTS -n MESSAGES -u USERS [-r]
 *
 * CLIENTS processes send MESSAGES/CLIENTS messages of 4 KB each to
 * u<i % USERS>@bench.test on 127.0.0.1:PORT, a command at a time (no
 * pipelining: OpenSMTPD refuses it), with a new connection per message,
 * or one connection per client with -r. A failed message is retried
 * after 50 ms (50 times at most). Prints "retries N" and exits 0 when
 * every message got its 250.
 */
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/time.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char	 body[8192];
static size_t	 bodylen;

struct conn {
	int	 fd;
	char	 buf[4096];
	size_t	 len;
};

/* Reads a whole reply; its code, or -1. */
static int
reply(struct conn *c)
{
	char	*nl;
	ssize_t	 n;
	int	 code;

	for (;;) {
		while ((nl = memchr(c->buf, '\n', c->len)) != NULL) {
			size_t l = (size_t)(nl - c->buf) + 1;
			int last = l >= 4 && c->buf[3] != '-';
			code = atoi(c->buf);
			memmove(c->buf, c->buf + l, c->len - l);
			c->len -= l;
			if (last)
				return code;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return -1;
		c->len += (size_t)n;
	}
}

static int
say(struct conn *c, const char *s, size_t n, int want)
{
	size_t	off = 0;
	ssize_t	k;

	while (off < n) {
		if ((k = write(c->fd, s + off, n - off)) <= 0)
			return -1;
		off += (size_t)k;
	}
	return want == 0 || reply(c) == want ? 0 : -1;
}

static int
open_conn(struct conn *c, int port)
{
	struct sockaddr_in	 sin;
	struct timeval		 tmo = { 60, 0 };
	int			 one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->len = 0;
	if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* a server that stops answering fails the attempt (retried) */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo));
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    reply(c) != 220 ||
	    say(c, "EHLO client.test\r\n", 18, 250) == -1) {
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static int
send_one(struct conn *c, int i, int nusers)
{
	char	rcpt[128], msg[sizeof(body) + 256];
	int	n, m;

	n = snprintf(rcpt, sizeof(rcpt), "RCPT TO:<u%d@bench.test>\r\n",
	    i % nusers);
	m = snprintf(msg, sizeof(msg), "From: bench@client.test\r\n"
	    "To: user@bench.test\r\nSubject: bench %d\r\n\r\n%s.\r\n", i, body);
	if (say(c, "MAIL FROM:<bench@client.test>\r\n", 31, 250) == -1 ||
	    say(c, rcpt, (size_t)n, 250) == -1 ||
	    say(c, "DATA\r\n", 6, 354) == -1 ||
	    say(c, msg, (size_t)m, 250) == -1)
		return -1;
	return 0;
}

static int
client(int port, int first, int count, int nusers, int reuse)
{
	struct timespec	 pause = { 0, 50 * 1000 * 1000 };
	struct conn	 c = { .fd = -1 };
	int		 k, tries, retries = 0;

	for (k = 0; k < count; k++) {
		for (tries = 0; tries < 50; tries++) {
			if (c.fd == -1 && open_conn(&c, port) == -1) {
				retries++;
				nanosleep(&pause, NULL);
				continue;
			}
			if (send_one(&c, first + k, nusers) == 0)
				break;
			retries++;
			close(c.fd);
			c.fd = -1;
			nanosleep(&pause, NULL);
		}
		if (tries == 50)
			return -1;
		if (!reuse) {
			(void)say(&c, "QUIT\r\n", 6, 221);
			close(c.fd);
			c.fd = -1;
		}
	}
	if (c.fd != -1) {
		(void)say(&c, "QUIT\r\n", 6, 221);
		close(c.fd);
	}
	return retries;
}

int
main(int argc, char **argv)
{
	int	 ch, port = 0, clients = 10, total = 1000, nusers = 10, reuse = 0;
	int	 i, st, fails = 0, p[2];
	long	 retries = 0, r;
	char	 line[32];
	ssize_t	 n;

	while ((ch = getopt(argc, argv, "c:n:p:ru:")) != -1)
		switch (ch) {
		case 'c': clients = atoi(optarg); break;
		case 'n': total = atoi(optarg); break;
		case 'p': port = atoi(optarg); break;
		case 'r': reuse = 1; break;
		case 'u': nusers = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: smtpload -p PORT -c CLIENTS "
			    "-n MESSAGES -u USERS [-r]\n");
			return 2;
		}
	if (port <= 0 || clients <= 0 || total < clients || nusers <= 0)
		return 2;
	for (i = 0; i + 78 < 4096; i += 78) {
		memset(body + i, 'x', 76);
		memcpy(body + i + 76, "\r\n", 2);
	}
	bodylen = (size_t)i;
	body[bodylen] = '\0';
	if (pipe(p) == -1)
		return 1;
	for (i = 0; i < clients; i++)
		if (fork() == 0) {
			close(p[0]);
			r = client(port, i * (total / clients), total / clients,
			    nusers, reuse);
			n = snprintf(line, sizeof(line), "%ld\n", r);
			(void)!write(p[1], line, (size_t)n);
			_exit(r < 0 ? 1 : 0);
		}
	close(p[1]);
	for (i = 0; i < clients; i++) {
		if (wait(&st) == -1)
			break;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			fails++;
	}
	{
		FILE *f = fdopen(p[0], "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL)
			if ((r = atol(line)) > 0)
				retries += r;
	}
	printf("retries %ld\n", retries);
	return fails ? 1 : 0;
}
