/*
 * net.c -- the connection to a server: TCP with a timeout, TLS
 * (implicit or STARTTLS) verified against the system store or a CA
 * file with the host name checked, line I/O with a protocol trace in
 * which passwords are masked.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <netdb.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fetch.h"
#include "io.h"
#include "log.h"
#include "tls.h"

static int
connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, int ms)
{
	int fl, e = 0;
	socklen_t el = sizeof(e);
	struct pollfd pfd;

	fl = fcntl(fd, F_GETFL);
	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	if (connect(fd, sa, len) == -1) {
		if (errno != EINPROGRESS)
			return -1;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		for (;;) {
			int r = poll(&pfd, 1, ms);

			if (r == -1 && errno == EINTR)
				continue;
			if (r == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			if (r == -1)
				return -1;
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == -1)
			return -1;
		if (e != 0) {
			errno = e;
			return -1;
		}
	}
	return fcntl(fd, F_SETFL, fl);
}

static int
tcp_connect(const char *host, const char *port, int ms, char *err,
    size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, rc, e = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(err, errlen, "%s port %s: %s", host, port,
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd == -1) {
			e = errno;
			continue;
		}
		if (connect_timeout(fd, ai->ai_addr, ai->ai_addrlen, ms) == 0) {
			/* a link that dies silently (NAT, suspend) during a
			 * long IDLE shows within about 90 s, not 25 min */
			int on = 1, idle = 60, intvl = 10, cnt = 3;

			(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
			(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle,
			    sizeof(idle));
			(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
			    sizeof(intvl));
			(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt,
			    sizeof(cnt));
			break;
		}
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		snprintf(err, errlen, "connect to %s port %s: %s", host, port,
		    strerror(e));
	return fd;
}

int
conn_open(struct conn *c, const struct account *a, int trace, char *err,
    size_t errlen)
{
	c->io = NULL;
	c->tls = NULL;
	c->acct = a;
	c->trace = trace;
	c->timeout_ms = a->timeout * 1000;
	if ((c->fd = tcp_connect(a->host, a->port, c->timeout_ms, err,
	    errlen)) == -1)
		return -1;
	if ((c->io = io_new(c->fd, c->fd)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(c->fd);
		c->fd = -1;
		return -1;
	}
	io_set_write_timeout(c->io, c->timeout_ms);
	if (a->tls == TLS_IMPLICIT)
		return conn_starttls(c, err, errlen);
	return 0;
}

int
conn_starttls(struct conn *c, char *err, size_t errlen)
{
	char terr[512];
	const struct account *a = c->acct;

	if (c->tls == NULL) {
		c->tls = tls_client_new(a->cafile, !a->insecure, terr, sizeof(terr));
		if (c->tls == NULL) {
			snprintf(err, errlen, "TLS: %s", terr);
			return -1;
		}
	}
	if (io_starttls_client(c->io, c->tls, a->host, c->timeout_ms, terr,
	    sizeof(terr)) == -1) {
		snprintf(err, errlen, "TLS with %s: %s", a->host, terr);
		return -1;
	}
	if (c->trace) {
		char info[128];

		log_debug("%s: TLS %s", a->name, io_tls_info(c->io, info,
		    sizeof(info)));
	}
	return 0;
}

void
conn_close(struct conn *c)
{
	if (c->io != NULL)
		io_free(c->io, 1);
	else if (c->fd != -1)
		close(c->fd);
	c->io = NULL;
	c->fd = -1;
	if (c->tls != NULL)
		tls_ctx_free(c->tls);
	c->tls = NULL;
}

long
conn_getline(struct conn *c, char *err, size_t errlen)
{
	long n = io_getline(c->io, c->line, sizeof(c->line), c->timeout_ms, NULL);

	if (n == -1) {
		int e = errno;

		if (errno == ECONNRESET)
			snprintf(err, errlen, "%s: connection closed by the server",
			    c->acct->host);
		else if (errno == ETIMEDOUT)
			snprintf(err, errlen, "%s: no answer in %d seconds",
			    c->acct->host, c->timeout_ms / 1000);
		else if (errno == EMSGSIZE)
			snprintf(err, errlen, "%s: line longer than %zu bytes",
			    c->acct->host, sizeof(c->line) - 1);
		else
			snprintf(err, errlen, "%s: read: %s", c->acct->host,
			    strerror(errno));
		errno = e;	/* EMSGSIZE: the session can go on */
		return -1;
	}
	if (c->trace)
		log_debug("%s: S: %.300s", c->acct->name, c->line);
	return n;
}

int
conn_send(struct conn *c, size_t secret_from, char *err, size_t errlen,
    const char *fmt, ...)
{
	char line[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 2) {
		snprintf(err, errlen, "command too long");
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	if (c->trace) {
		if (secret_from > 0 && secret_from < (size_t)n)
			log_debug("%s: C: %.*s****", c->acct->name,
			    (int)secret_from, line);
		else
			log_debug("%s: C: %s", c->acct->name, line);
	}
	line[n++] = '\r';
	line[n++] = '\n';
	if (io_write(c->io, line, (size_t)n) == -1) {
		snprintf(err, errlen, "%s: write: %s", c->acct->host,
		    strerror(errno));
		explicit_bzero(line, sizeof(line));
		return -1;
	}
	explicit_bzero(line, sizeof(line));
	return 0;
}

int
conn_flush(struct conn *c, char *err, size_t errlen)
{
	if (io_flush(c->io, c->timeout_ms) == -1) {
		snprintf(err, errlen, "%s: write: %s", c->acct->host,
		    strerror(errno));
		return -1;
	}
	return 0;
}
