/*
 * smtpc.c -- the SMTP client (see smtpc.h). One blocking connection per
 * object; every read has a timeout; every reply goes through one bounded
 * parser. What a server says is kept only as sanitized, bounded text.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "io.h"
#include "smtpc.h"
#include "tls.h"

#define RCPT_CHUNK	50	/* RCPTs written before reading replies */
#define ADDR_MAX	512	/* an envelope address on the wire */
#define CRED_MAX	512

struct smtpc {
	struct io		*io;
	struct tls_ctx		*ctx;		/* owned unless opts gave one */
	int			 own_ctx;
	struct smtpc_opts	 o;
	char			 host[256];
	struct smtpc_caps	 caps;
	int			 broken;	/* no more commands */
	int			 timeout;
	char			 line[SMTPC_LINE_MAX + 1];
};

/* --- parsers --- */

int
smtpc_code_status(int code)
{
	if (code >= 200 && code < 400)
		return SMTPC_OK;
	if (code >= 500 && code < 600)
		return SMTPC_PERM;
	return SMTPC_TEMP;
}

/* Appends text to the reply's bounded text, control characters as '?'. */
static void
reply_text(struct smtpc_reply *r, const char *s, size_t n)
{
	size_t o = strlen(r->text), i;
	const size_t max = sizeof(r->text) - 1;

	for (i = 0; i < n && o < max; i++) {
		unsigned char c = (unsigned char)s[i];

		r->text[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (i < n && max > 3)
		memcpy(r->text + max - 3, "...", 3), o = max;
	r->text[o] = '\0';
}

int
smtpc_reply_line(struct smtpc_reply *r, const char *line, size_t len,
    const char **text_r)
{
	int code, last;

	if (r->done || len < 3 || len > SMTPC_LINE_MAX)
		return -1;
	/* 4.2: first digit 2..5, second 0..5, third 0..9 */
	if (line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    line[2] < '0' || line[2] > '9')
		return -1;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return -1;
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code)
		return -1;
	if (r->nlines >= SMTPC_LINES_MAX)
		return -1;
	if (r->nlines == 0) {
		r->text[0] = '\0';
		reply_text(r, line, 3);
	} else
		reply_text(r, " /", 2);
	if (len > 4) {
		reply_text(r, " ", 1);
		reply_text(r, line + 4, len - 4);
	}
	r->code = code;
	r->nlines++;
	last = len == 3 || line[3] == ' ';
	r->done = last;
	if (text_r != NULL)
		*text_r = len > 4 ? line + 4 : "";
	return last;
}

/* Case-insensitive keyword match: word, then the end or a space or '='. */
static const char *
keyword(const char *s, const char *kw)
{
	size_t n = strlen(kw);

	if (strncasecmp(s, kw, n) != 0)
		return NULL;
	if (s[n] == '\0')
		return s + n;
	if (s[n] == ' ' || s[n] == '=')
		return s + n + 1;
	return NULL;
}

void
smtpc_caps_line(struct smtpc_caps *caps, const char *text)
{
	const char *p;

	if (keyword(text, "STARTTLS") != NULL)
		caps->starttls = 1;
	else if (keyword(text, "PIPELINING") != NULL)
		caps->pipelining = 1;
	else if (keyword(text, "8BITMIME") != NULL)
		caps->eightbit = 1;
	else if (keyword(text, "SMTPUTF8") != NULL)
		caps->smtputf8 = 1;
	else if (keyword(text, "ENHANCEDSTATUSCODES") != NULL)
		caps->enhanced = 1;
	else if ((p = keyword(text, "SIZE")) != NULL) {
		unsigned long long v = 0;

		caps->size = 1;
		caps->size_max = 0;
		/* a bad number is no limit we know of */
		for (; *p >= '0' && *p <= '9'; p++) {
			if (v > (ULLONG_MAX - 9) / 10) {
				v = 0;
				break;
			}
			v = v * 10 + (unsigned)(*p - '0');
		}
		caps->size_max = v;
	} else if ((p = keyword(text, "AUTH")) != NULL) {
		while (*p != '\0') {
			size_t n;

			while (*p == ' ')
				p++;
			n = strcspn(p, " ");
			if (n == 5 && strncasecmp(p, "PLAIN", 5) == 0)
				caps->auth_plain = 1;
			else if (n == 5 && strncasecmp(p, "LOGIN", 5) == 0)
				caps->auth_login = 1;
			p += n;
		}
	}
}

size_t
smtpc_dot_encode(struct smtpc_dot *st, const char *in, size_t inlen, char *out,
    size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; i < inlen && o + 2 <= outlen; i++) {
		char c = in[i];

		if (c == '\n') {
			if (st->cr) {	/* CRLF: the CR already ended it */
				st->cr = 0;
				continue;
			}
			out[o++] = '\r';
			out[o++] = '\n';
			st->midline = 0;
			continue;
		}
		if (c == '\r') {
			/* a lone CR is a line end too: never half of one */
			out[o++] = '\r';
			out[o++] = '\n';
			st->midline = 0;
			st->cr = 1;
			continue;
		}
		st->cr = 0;
		if (!st->midline && c == '.')
			out[o++] = '.';
		out[o++] = c;
		st->midline = 1;
	}
	return o;
}

size_t
smtpc_data_end(struct smtpc_dot *st, char *out, size_t outlen)
{
	size_t o = 0;

	if (outlen < 5)
		return 0;
	if (st->midline) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	st->midline = 0;
	st->cr = 0;
	return o + 3;
}

/* --- the connection --- */

static void
trace(struct smtpc *c, int dir, const char *line)
{
	if (c->o.trace != NULL)
		c->o.trace(c->o.trace_arg, dir, line);
}

/* Writes one command line (CRLF added). 0, or -1 with err. */
static int
send_cmd(struct smtpc *c, const char *line, const char *shown, char *err,
    size_t errlen)
{
	trace(c, 'C', shown != NULL ? shown : line);
	if (io_puts(c->io, line) == -1 || io_puts(c->io, "\r\n") == -1) {
		c->broken = 1;
		str_fmt(err, errlen, "%s: write: %s", c->host, strerror(errno));
		return -1;
	}
	return 0;
}

static int
flush(struct smtpc *c, char *err, size_t errlen)
{
	if (io_flush(c->io, c->timeout) == -1) {
		c->broken = 1;
		str_fmt(err, errlen, "%s: write: %s", c->host,
		    errno == ETIMEDOUT ? "timed out" : strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Reads one whole reply into r (EHLO keywords into caps when not NULL).
 * 0, or -1 with err: the connection is then unusable.
 */
static int
read_reply(struct smtpc *c, struct smtpc_reply *r, int timeout,
    struct smtpc_caps *caps, char *err, size_t errlen)
{
	const char *text;
	long n;
	int rv;

	memset(r, 0, sizeof(*r));
	do {
		n = io_getline(c->io, c->line, sizeof(c->line), timeout, NULL);
		if (n < 0) {
			c->broken = 1;
			str_fmt(err, errlen, "%s: %s", c->host,
			    errno == ETIMEDOUT ? "timed out waiting for a reply" :
			    errno == EMSGSIZE ? "reply line too long" :
			    errno == ECONNRESET ? "connection closed" :
			    strerror(errno));
			return -1;
		}
		trace(c, 'S', c->line);
		if (strlen(c->line) != (size_t)n ||
		    (rv = smtpc_reply_line(r, c->line, (size_t)n, &text)) == -1) {
			c->broken = 1;
			str_fmt(err, errlen, "%s: malformed reply: %.80s", c->host,
			    r->nlines ? r->text : "(bad code)");
			return -1;
		}
		if (caps != NULL && r->nlines > 1)
			smtpc_caps_line(caps, text);
	} while (rv == 0);
	return 0;
}

/* Sends a command and reads its reply. 0, or -1 (connection unusable). */
static int
command(struct smtpc *c, const char *line, const char *shown,
    struct smtpc_reply *r, struct smtpc_caps *caps, char *err, size_t errlen)
{
	if (send_cmd(c, line, shown, err, errlen) == -1 ||
	    flush(c, err, errlen) == -1)
		return -1;
	return read_reply(c, r, c->timeout, caps, err, errlen);
}

static int
tcp_connect(const char *host, const char *addr, int port, int timeout,
    char *err, size_t errlen)
{
	struct addrinfo hints, *ai;
	struct pollfd pfd;
	char sport[16];
	socklen_t sl;
	int fd, r, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	str_fmt(sport, sizeof(sport), "%d", port);
	if ((r = getaddrinfo(addr, sport, &hints, &ai)) != 0) {
		str_fmt(err, errlen, "%s: %s", addr, gai_strerror(r));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		str_fmt(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	r = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (r == -1 && errno != EINPROGRESS)
		goto fail;
	if (r == -1) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, timeout);
		while (r == -1 && errno == EINTR);
		if (r == 0)
			errno = ETIMEDOUT;
		if (r <= 0)
			goto fail;
		sl = sizeof(e);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1)
			goto fail;
		if (e != 0) {
			errno = e;
			goto fail;
		}
	}
	/* io waits with poll(2); the socket itself blocks */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == -1)
		goto fail;
	return fd;
fail:
	e = errno;
	/* smtpc_deliver ranks errors by this form: keep it */
	str_fmt(err, errlen, "%s: connect to %s port %d: %s", host, addr, port,
	    strerror(e));
	close(fd);
	errno = e;
	return -1;
}

static int
start_tls(struct smtpc *c, int verify, char *err, size_t errlen)
{
	char why[256];

	if (c->ctx == NULL) {
		c->ctx = tls_client_new(c->o.cafile, verify, why, sizeof(why));
		if (c->ctx == NULL) {
			str_fmt(err, errlen, "%s: TLS: %s", c->host, why);
			return -1;
		}
		c->own_ctx = 1;
	}
	if (io_starttls_client(c->io, c->ctx, c->host, c->timeout, why,
	    sizeof(why)) == -1) {
		c->broken = 1;
		str_fmt(err, errlen, "%s: %s", c->host, why);
		return -1;
	}
	return 0;
}

/* EHLO, or HELO when EHLO is refused. 0, or SMTPC_TEMP / SMTPC_PERM. */
static int
hello(struct smtpc *c, char *err, size_t errlen)
{
	struct smtpc_reply r;
	char line[300];

	memset(&c->caps, 0, sizeof(c->caps));
	if (str_fmt(line, sizeof(line), "EHLO %s", c->o.helo) == -1) {
		str_fmt(err, errlen, "helo name too long");
		return SMTPC_TEMP;
	}
	if (command(c, line, NULL, &r, &c->caps, err, errlen) == -1)
		return SMTPC_TEMP;
	if (r.code == 250) {
		c->caps.esmtp = 1;
		return 0;
	}
	memset(&c->caps, 0, sizeof(c->caps));
	if (r.code >= 500) {
		str_fmt(line, sizeof(line), "HELO %s", c->o.helo);
		if (command(c, line, NULL, &r, NULL, err, errlen) == -1)
			return SMTPC_TEMP;
		if (r.code == 250)
			return 0;
	}
	str_fmt(err, errlen, "%s said to EHLO/HELO: %s", c->host, r.text);
	return smtpc_code_status(r.code) == SMTPC_PERM ? SMTPC_PERM : SMTPC_TEMP;
}

static int
auth(struct smtpc *c, char *err, size_t errlen)
{
	unsigned char raw[2 * CRED_MAX + 2];
	char b64[4 * (2 * CRED_MAX + 2) / 3 + 8], line[sizeof(b64) + 16];
	struct smtpc_reply r;
	size_t ul, pl;
	int rv = SMTPC_TEMP;

	ul = strlen(c->o.auth_user);
	pl = c->o.auth_pass != NULL ? strlen(c->o.auth_pass) : 0;
	if (ul >= CRED_MAX || pl >= CRED_MAX) {
		str_fmt(err, errlen, "AUTH: credentials too long");
		return SMTPC_TEMP;
	}
	if (!io_is_tls(c->io) && !c->o.auth_plaintext) {
		str_fmt(err, errlen, "%s: refusing to send a password without"
		    " TLS", c->host);
		return SMTPC_TEMP;
	}
	if (c->caps.auth_plain) {
		raw[0] = '\0';
		memcpy(raw + 1, c->o.auth_user, ul);
		raw[ul + 1] = '\0';
		memcpy(raw + ul + 2, c->o.auth_pass, pl);
		if (base64_encode(raw, ul + pl + 2, b64, sizeof(b64)) == -1 ||
		    str_fmt(line, sizeof(line), "AUTH PLAIN %s", b64) == -1)
			goto out;
		if (command(c, line, "AUTH PLAIN ********", &r, NULL, err,
		    errlen) == -1)
			goto out;
	} else if (c->caps.auth_login) {
		if (command(c, "AUTH LOGIN", NULL, &r, NULL, err, errlen) == -1)
			goto out;
		if (r.code != 334)
			goto refused;
		if (base64_encode(c->o.auth_user, ul, b64, sizeof(b64)) == -1 ||
		    command(c, b64, "********", &r, NULL, err, errlen) == -1)
			goto out;
		if (r.code != 334)
			goto refused;
		if (base64_encode(c->o.auth_pass ? c->o.auth_pass : "", pl, b64,
		    sizeof(b64)) == -1 ||
		    command(c, b64, "********", &r, NULL, err, errlen) == -1)
			goto out;
	} else {
		str_fmt(err, errlen, "%s offers no AUTH PLAIN or LOGIN", c->host);
		goto out;
	}
refused:
	if (r.code == 235)
		rv = 0;
	else
		str_fmt(err, errlen, "%s refused AUTH: %s", c->host, r.text);
out:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(b64, sizeof(b64));
	explicit_bzero(line, sizeof(line));
	return rv;
}

/*
 * One connection attempt with tls as given. 0, SMTPC_TEMP, SMTPC_PERM;
 * *tls_failed_r is set when an opportunistic handshake failed.
 */
static int
session(struct smtpc *c, const char *addr, int port, enum smtpc_tls tls,
    int *tls_failed_r, char *err, size_t errlen)
{
	struct smtpc_reply r;
	int fd, rv, verify = !c->o.noverify;

	*tls_failed_r = 0;
	fd = tcp_connect(c->host, addr, port, c->o.connect_timeout_ms > 0 ?
	    c->o.connect_timeout_ms : 30000, err, errlen);
	if (fd == -1)
		return SMTPC_TEMP;
	if ((c->io = io_new(fd, fd)) == NULL) {
		close(fd);
		str_fmt(err, errlen, "%s", strerror(errno));
		return SMTPC_TEMP;
	}
	io_set_write_timeout(c->io, c->timeout);
	if (tls == SMTPC_TLS_IMPLICIT && start_tls(c, verify, err, errlen) == -1)
		return SMTPC_TEMP;
	if (read_reply(c, &r, c->timeout, NULL, err, errlen) == -1)
		return SMTPC_TEMP;
	if (r.code != 220) {
		str_fmt(err, errlen, "%s greeted us with: %s", c->host, r.text);
		return smtpc_code_status(r.code) == SMTPC_PERM ? SMTPC_PERM :
		    SMTPC_TEMP;
	}
	if ((rv = hello(c, err, errlen)) != 0)
		return rv;
	if ((tls == SMTPC_TLS_MAYBE && c->caps.starttls) ||
	    tls == SMTPC_TLS_STARTTLS) {
		if (!c->caps.starttls) {
			str_fmt(err, errlen, "%s does not offer STARTTLS, which"
			    " is required", c->host);
			return SMTPC_TEMP;
		}
		if (command(c, "STARTTLS", NULL, &r, NULL, err, errlen) == -1)
			return SMTPC_TEMP;
		if (r.code != 220) {
			if (tls == SMTPC_TLS_MAYBE)
				goto plain;
			str_fmt(err, errlen, "%s refused STARTTLS: %s", c->host,
			    r.text);
			return SMTPC_TEMP;
		}
		/*
		 * Whatever came with or after the 220 was sent in plaintext
		 * and is dropped (io_starttls_client discards it:
		 * CVE-2011-0411 and its client-side kin).
		 */
		if (io_pending(c->io) > 0)
			trace(c, 'S', "(plaintext after 220 to STARTTLS dropped)");
		if (start_tls(c, tls == SMTPC_TLS_STARTTLS ? verify : 0, err,
		    errlen) == -1) {
			*tls_failed_r = tls == SMTPC_TLS_MAYBE;
			return SMTPC_TEMP;
		}
		if ((rv = hello(c, err, errlen)) != 0)
			return SMTPC_TEMP;
	}
plain:
	if (c->o.auth_user != NULL && (rv = auth(c, err, errlen)) != 0)
		return rv;
	return 0;
}

int
smtpc_connect(struct smtpc **c_r, const struct smtpc_opts *o, const char *host,
    const char *addr, int port, char *err, size_t errlen)
{
	struct smtpc *c;
	int rv, tls_failed;

	*c_r = NULL;
	if (errlen > 0)
		err[0] = '\0';
	if (o->helo == NULL || strpbrk(o->helo, " \r\n") != NULL) {
		str_fmt(err, errlen, "smtpc: no valid helo name");
		return SMTPC_TEMP;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		str_fmt(err, errlen, "smtpc: %s", strerror(errno));
		return SMTPC_TEMP;
	}
	c->o = *o;
	c->ctx = o->tls_ctx;
	c->timeout = o->timeout_ms > 0 ? o->timeout_ms : 300000;
	if (str_lcpy(c->host, host, sizeof(c->host)) >= sizeof(c->host))
		c->host[sizeof(c->host) - 1] = '\0';
	rv = session(c, addr, port, o->tls, &tls_failed, err, errlen);
	if (rv != 0 && tls_failed) {
		/* opportunistic TLS failed: mail still goes, in plaintext */
		trace(c, 'C', "(TLS failed: reconnecting without STARTTLS)");
		io_free(c->io, 1);
		c->io = NULL;
		c->broken = 0;
		rv = session(c, addr, port, SMTPC_TLS_NO, &tls_failed, err,
		    errlen);
	}
	if (rv != 0) {
		if (c->io != NULL && !c->broken) {
			/* say goodbye, briefly; the outcome is known */
			c->timeout = c->timeout < 5000 ? c->timeout : 5000;
			smtpc_quit(c);
		} else
			smtpc_close(c);
		return rv;
	}
	*c_r = c;
	return 0;
}

void
smtpc_close(struct smtpc *c)
{
	if (c == NULL)
		return;
	if (c->io != NULL)
		io_free(c->io, 1);
	if (c->own_ctx)
		tls_ctx_free(c->ctx);
	explicit_bzero(c->line, sizeof(c->line));
	free(c);
}

void
smtpc_quit(struct smtpc *c)
{
	struct smtpc_reply r;
	char err[64];

	if (c == NULL)
		return;
	if (c->io != NULL && !c->broken) {
		c->timeout = c->timeout < 10000 ? c->timeout : 10000;
		(void)command(c, "QUIT", NULL, &r, NULL, err, sizeof(err));
	}
	smtpc_close(c);
}

const struct smtpc_caps *
smtpc_caps(const struct smtpc *c)
{
	return &c->caps;
}

const char *
smtpc_tls_info(struct smtpc *c, char *buf, size_t len)
{
	return io_tls_info(c->io, buf, len);
}

int
smtpc_usable(const struct smtpc *c)
{
	return c != NULL && c->io != NULL && !c->broken;
}

int
smtpc_rset(struct smtpc *c, char *err, size_t errlen)
{
	struct smtpc_reply r;

	if (!smtpc_usable(c)) {
		str_fmt(err, errlen, "%s: connection unusable", c->host);
		return SMTPC_TEMP;
	}
	if (command(c, "RSET", NULL, &r, NULL, err, errlen) == -1)
		return SMTPC_TEMP;
	if (r.code / 100 != 2) {
		/* a server that cannot reset cannot be trusted with more */
		c->broken = 1;
		str_fmt(err, errlen, "%s said to RSET: %s", c->host, r.text);
		return smtpc_code_status(r.code) == SMTPC_PERM ? SMTPC_PERM :
		    SMTPC_TEMP;
	}
	return 0;
}

/* --- a transaction --- */

/* 1 when an address has bytes beyond ASCII (RFC 6531). */
static int
addr_utf8(const char *a)
{
	for (; *a != '\0'; a++)
		if ((unsigned char)*a >= 0x80)
			return 1;
	return 0;
}

/* 1 when an envelope address is safe to put in a command. */
static int
addr_ok(const char *a)
{
	size_t n = strlen(a);

	if (n >= ADDR_MAX)
		return 0;
	for (; *a != '\0'; a++) {
		unsigned char ch = (unsigned char)*a;

		if (ch <= 0x20 || ch == 0x7f || ch == '<' || ch == '>')
			return 0;
	}
	return 1;
}

/*
 * 1 when a can go to c: beyond ASCII only when the server offers
 * SMTPUTF8 (RFC 6531 3.4: otherwise the message cannot be delivered).
 */
static int
addr_sendable(const struct smtpc *c, const char *a)
{
	return addr_ok(a) && (!addr_utf8(a) || c->caps.smtputf8);
}

static void
set_result(struct smtpc *c, struct smtpc_result *res, const char *cmd,
    const struct smtpc_reply *r)
{
	res->status = smtpc_code_status(r->code);
	res->code = r->code;
	str_fmt(res->text, sizeof(res->text), "%s said after %s: %s", c->host,
	    cmd, r->text);
}

static void
set_result_text(struct smtpc_result *res, int status, const char *text)
{
	res->status = status;
	res->code = 0;
	str_fmt(res->text, sizeof(res->text), "%s", text);
}

/* After a failure mid-way: outcomes not known yet become temporary. */
static int
broke(struct smtpc_result *results, const char *pending, size_t n,
    const char *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pending[i])
			set_result_text(&results[i], SMTPC_TEMP, err);
	return SMTPC_TEMP;
}

struct fdreader {
	int	 fd;
};

static long
fd_read(void *arg, char *buf, size_t len)
{
	struct fdreader *fr = arg;
	ssize_t n;

	do
		n = read(fr->fd, buf, len);
	while (n == -1 && errno == EINTR);
	return (long)n;
}

int
smtpc_send_fd(struct smtpc *c, const char *sender, const char *const *rcpts,
    size_t n, int fd, long long size, int eightbit,
    struct smtpc_result *results, char *err, size_t errlen)
{
	struct fdreader fr = { fd };

	return smtpc_send(c, sender, rcpts, n, fd_read, &fr, size, eightbit,
	    results, err, errlen);
}

/* Streams the message; 0, or -1 with err (connection unusable). */
static int
send_body(struct smtpc *c, smtpc_reader reader, void *arg, char *err,
    size_t errlen)
{
	char in[8192], out[2 * sizeof(in) + 8];
	struct smtpc_dot st = { 0, 0 };
	size_t o;
	long n;

	for (;;) {
		n = reader(arg, in, sizeof(in));
		if (n < 0) {
			c->broken = 1;
			str_fmt(err, errlen, "reading the message: %s",
			    strerror(errno));
			return -1;
		}
		if (n == 0)
			break;
		o = smtpc_dot_encode(&st, in, (size_t)n, out, sizeof(out));
		if (io_write(c->io, out, o) == -1) {
			c->broken = 1;
			str_fmt(err, errlen, "%s: write: %s", c->host,
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		}
	}
	o = smtpc_data_end(&st, out, sizeof(out));
	if (io_write(c->io, out, o) == -1 || flush(c, err, errlen) == -1) {
		c->broken = 1;
		if (err[0] == '\0')
			str_fmt(err, errlen, "%s: write: %s", c->host,
			    strerror(errno));
		return -1;
	}
	return 0;
}

int
smtpc_send(struct smtpc *c, const char *sender, const char *const *rcpts,
    size_t n, smtpc_reader reader, void *arg, long long size, int eightbit,
    struct smtpc_result *results, char *err, size_t errlen)
{
	char line[ADDR_MAX + 64], *pending = NULL;
	struct smtpc_reply r, mail;
	size_t i, next = 0, sent, accepted = 0;
	int mail_read = 0, rv = 0, utf8 = 0;

	if (errlen > 0)
		err[0] = '\0';
	if (n == 0)
		return 0;
	if ((pending = calloc(n, 1)) == NULL) {
		str_fmt(err, errlen, "smtpc: %s", strerror(errno));
		for (i = 0; i < n; i++)
			set_result_text(&results[i], SMTPC_TEMP, err);
		return SMTPC_TEMP;
	}
	for (i = 0; i < n; i++) {
		pending[i] = 1;
		set_result_text(&results[i], SMTPC_TEMP, "not tried");
	}
	if (!smtpc_usable(c)) {
		str_fmt(err, errlen, "%s: connection unusable", c->host);
		rv = broke(results, pending, n, err);
		goto out;
	}
	if (!addr_sendable(c, sender)) {
		for (i = 0; i < n; i++) {
			set_result_text(&results[i], SMTPC_PERM, addr_ok(sender) ?
			    "non-ASCII sender and the server has no SMTPUTF8" :
			    "sender address cannot be sent over SMTP");
			results[i].code = 553;
		}
		goto out;
	}
	for (i = 0; i < n && !utf8; i++)
		utf8 = addr_utf8(rcpts[i]) || addr_utf8(sender);
	if (c->caps.size && c->caps.size_max > 0 && size > 0 &&
	    (unsigned long long)size > c->caps.size_max) {
		char why[SMTPC_TEXT_MAX];

		str_fmt(why, sizeof(why), "%s accepts at most %llu bytes; the"
		    " message has %lld", c->host, c->caps.size_max, size);
		for (i = 0; i < n; i++) {
			set_result_text(&results[i], SMTPC_PERM, why);
			results[i].code = 552;
		}
		goto out;
	}
	str_fmt(line, sizeof(line), "MAIL FROM:<%s>%s%s", sender,
	    c->caps.eightbit && eightbit ? " BODY=8BITMIME" : "",
	    utf8 && c->caps.smtputf8 ? " SMTPUTF8" : "");
	if (c->caps.size && size >= 0) {
		char sz[32];

		str_fmt(sz, sizeof(sz), " SIZE=%lld", size);
		str_lcat(line, sz, sizeof(line));
	}
	if (send_cmd(c, line, NULL, err, errlen) == -1) {
		rv = broke(results, pending, n, err);
		goto out;
	}
	if (!c->caps.pipelining) {
		if (flush(c, err, errlen) == -1 || read_reply(c, &mail,
		    c->timeout, NULL, err, errlen) == -1) {
			rv = broke(results, pending, n, err);
			goto out;
		}
		mail_read = 1;
	}
	/*
	 * RCPTs in chunks: all of a chunk written at once when the server
	 * pipelines (one at a time otherwise), then their replies read.
	 */
	while (next < n && !(mail_read && mail.code / 100 != 2)) {
		size_t chunk = c->caps.pipelining ? RCPT_CHUNK : 1;
		size_t first = next;

		for (sent = 0; next < n && sent < chunk; next++) {
			if (!addr_sendable(c, rcpts[next])) {
				set_result_text(&results[next], SMTPC_PERM,
				    addr_ok(rcpts[next]) ? "non-ASCII recipient"
				    " and the server has no SMTPUTF8" :
				    "recipient address cannot be sent over SMTP");
				results[next].code = 553;
				pending[next] = 0;
				continue;
			}
			str_fmt(line, sizeof(line), "RCPT TO:<%s>", rcpts[next]);
			if (send_cmd(c, line, NULL, err, errlen) == -1) {
				rv = broke(results, pending, n, err);
				goto out;
			}
			sent++;
		}
		if (flush(c, err, errlen) == -1) {
			rv = broke(results, pending, n, err);
			goto out;
		}
		if (!mail_read) {
			if (read_reply(c, &mail, c->timeout, NULL, err,
			    errlen) == -1) {
				rv = broke(results, pending, n, err);
				goto out;
			}
			mail_read = 1;
		}
		for (i = first; i < next; i++) {
			if (!pending[i])
				continue;
			if (read_reply(c, &r, c->timeout, NULL, err,
			    errlen) == -1) {
				rv = broke(results, pending, n, err);
				goto out;
			}
			if (mail.code / 100 != 2)
				continue;	/* MAIL's reply decides */
			set_result(c, &results[i], "RCPT TO", &r);
			if (r.code / 100 == 2)
				accepted++;
			else
				pending[i] = 0;
		}
	}
	if (mail.code / 100 != 2) {
		for (i = 0; i < n; i++)
			if (pending[i]) {
				set_result(c, &results[i], "MAIL FROM", &mail);
				pending[i] = 0;
			}
		goto out;
	}
	if (accepted == 0) {
		/* MAIL was accepted: close the transaction */
		if (smtpc_rset(c, err, errlen) != 0)
			c->broken = 1;
		if (errlen > 0)
			err[0] = '\0';
		goto out;
	}
	if (command(c, "DATA", NULL, &r, NULL, err, errlen) == -1) {
		rv = broke(results, pending, n, err);
		goto out;
	}
	if (r.code != 354) {
		if (r.code / 100 == 2)	/* nonsense: do not trust it */
			r.code = 451;
		for (i = 0; i < n; i++)
			if (pending[i]) {
				set_result(c, &results[i], "DATA", &r);
				pending[i] = 0;
			}
		if (smtpc_rset(c, err, errlen) != 0)
			c->broken = 1;
		if (errlen > 0)
			err[0] = '\0';
		goto out;
	}
	if (send_body(c, reader, arg, err, errlen) == -1) {
		rv = broke(results, pending, n, err);
		goto out;
	}
	if (read_reply(c, &r, c->o.data_timeout_ms > 0 ? c->o.data_timeout_ms :
	    600000, NULL, err, errlen) == -1) {
		/* the message may have been taken: RFC 1047's duplicate */
		rv = broke(results, pending, n, err);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (pending[i]) {
			set_result(c, &results[i], "end of data", &r);
			pending[i] = 0;
		}
out:
	free(pending);
	return rv;
}

/* --- smarthosts --- */

static int
unhex(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
smtpc_url_parse(const char *url, struct smtpc_url *u, char *err, size_t errlen)
{
	const char *p, *at, *end, *hp, *portp = NULL;
	size_t i, o, hl;

	memset(u, 0, sizeof(*u));
	if (str_prefix(url, "smtp://")) {
		u->tls = SMTPC_TLS_MAYBE;
		u->port = 25;
		p = url + 7;
	} else if (str_prefix(url, "smtp+tls://")) {
		u->tls = SMTPC_TLS_STARTTLS;
		u->port = 587;
		p = url + 11;
	} else if (str_prefix(url, "smtp+starttls://")) {
		u->tls = SMTPC_TLS_STARTTLS;
		u->port = 587;
		p = url + 16;
	} else if (str_prefix(url, "smtps://")) {
		u->tls = SMTPC_TLS_IMPLICIT;
		u->port = 465;
		p = url + 8;
	} else {
		str_fmt(err, errlen, "'%.100s': expected smtp://, smtp+tls:// or"
		    " smtps://", url);
		return -1;
	}
	end = p + strcspn(p, "/?#");
	if (*end == '/' && end[1] != '\0') {
		str_fmt(err, errlen, "'%.100s': unexpected path", url);
		return -1;
	}
	if (*end == '?' || *end == '#') {
		str_fmt(err, errlen, "'%.100s': unexpected query", url);
		return -1;
	}
	/* the last '@' before the host ends the label */
	at = NULL;
	for (hp = p; hp < end; hp++)
		if (*hp == '@')
			at = hp;
	if (at != NULL) {
		for (i = 0, o = 0; p + i < at; i++) {
			int ch = (unsigned char)p[i];

			if (ch == ':') {
				str_fmt(err, errlen, "'%.100s': no password in"
				    " the URL: use a secrets table", url);
				return -1;
			}
			if (ch == '%') {
				int h = p + i + 2 < at ? unhex(p[i + 1]) : -1;
				int l = h >= 0 ? unhex(p[i + 2]) : -1;

				if (l < 0) {
					str_fmt(err, errlen, "'%.100s': bad %%"
					    " escape", url);
					return -1;
				}
				ch = h * 16 + l;
				i += 2;
			}
			if (ch < 0x21 || ch == 0x7f || o + 1 >= sizeof(u->label)) {
				str_fmt(err, errlen, "'%.100s': bad label", url);
				return -1;
			}
			u->label[o++] = (char)ch;
		}
		u->label[o] = '\0';
		if (o == 0) {
			str_fmt(err, errlen, "'%.100s': empty label", url);
			return -1;
		}
		p = at + 1;
	}
	if (*p == '[') {
		hp = p + 1;
		if ((at = memchr(p, ']', (size_t)(end - p))) == NULL) {
			str_fmt(err, errlen, "'%.100s': missing ']'", url);
			return -1;
		}
		hl = (size_t)(at - hp);
		if (at[1] == ':')
			portp = at + 2;
		else if (at + 1 != end) {
			str_fmt(err, errlen, "'%.100s': bad host", url);
			return -1;
		}
	} else {
		hp = p;
		at = memchr(p, ':', (size_t)(end - p));
		hl = (size_t)((at != NULL ? at : end) - p);
		if (at != NULL)
			portp = at + 1;
	}
	if (hl == 0 || hl >= sizeof(u->host)) {
		str_fmt(err, errlen, "'%.100s': bad host", url);
		return -1;
	}
	memcpy(u->host, hp, hl);
	u->host[hl] = '\0';
	for (i = 0; i < hl; i++) {
		unsigned char ch = (unsigned char)u->host[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || (ch == ':' && *p == '['))) {
			str_fmt(err, errlen, "'%.100s': bad host", url);
			return -1;
		}
	}
	str_lower(u->host);
	if (portp != NULL) {
		long v = 0;

		if (portp == end) {
			str_fmt(err, errlen, "'%.100s': empty port", url);
			return -1;
		}
		for (hp = portp; hp < end; hp++) {
			if (*hp < '0' || *hp > '9' || v > 65535) {
				v = 0;
				break;
			}
			v = v * 10 + (*hp - '0');
		}
		if (v < 1 || v > 65535) {
			str_fmt(err, errlen, "'%.100s': bad port", url);
			return -1;
		}
		u->port = (int)v;
	}
	return 0;
}
