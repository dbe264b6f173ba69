/*
 * session -- one SMTP/LMTP connection, in its own process, as the
 * unprivileged user. It reads lines, feeds lib/smtp's state machine and
 * answers when its input is drained (PIPELINING). A message goes into
 * queue/incoming (a directory it can write but not read), fsync'd; the
 * master moves it into the queue and fsyncs that directory before the
 * session says 250.
 *
 * It holds no password hash and no relay secret (the master wiped them
 * right after the fork, see wipe.c): AUTH goes to the master, which has
 * a checker verify it (master.c). The session keeps the failed-AUTH
 * delay and the log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "io.h"
#include "log.h"
#include "msg.h"
#include "smtp.h"
#include "smtpd.h"
#include "table.h"

#define CMD_LINE_MAX	1000		/* without CRLF: lenient by 2 */
#define DATA_LINE_MAX	65536
/* Longer than the master takes at most (its wait plus a check). */
#define AUTH_REPLY_WAIT	60		/* s */

struct sess {
	struct session_ctx	*ctx;
	struct io		*io;
	struct smtp_session	 s;
	struct origin		 o;
	struct dest		*dests;
	size_t			 ndests;
	int			 fd;		/* message being received */
	char			 id[ID_LEN + 1];
	char			 path[4096];
	unsigned long long	 written;
	int			 ctl_stale;	/* an AUTH answer may come late */
};

/*
 * senders = TABLE on the listener: an authenticated user may only send
 * as the addresses its entry lists (comma or space separated; "@domain"
 * allows the whole domain; domains compared without case). 1 allowed,
 * 0 not, -1 the table failed.
 */
static int
sender_allowed(struct table *t, const char *user, const char *addr)
{
	char		 val[4096], *p, *tok, *save = NULL;
	const char	*at = strrchr(addr, '@');
	size_t		 llen;
	int		 r;

	if ((r = table_lookup(t, user, val, sizeof(val))) != 1)
		return r == 0 ? 0 : -1;
	llen = at != NULL ? (size_t)(at - addr) : strlen(addr);
	for (p = val; (tok = strtok_r(p, ", \t", &save)) != NULL; p = NULL) {
		const char *tat = strrchr(tok, '@');
		if (tat == NULL || at == NULL)
			continue;
		if (tat == tok) {
			if (strcasecmp(tok + 1, at + 1) == 0)
				return 1;
		} else if ((size_t)(tat - tok) == llen &&
		    strncasecmp(tok, addr, llen) == 0 &&
		    strcasecmp(tat + 1, at + 1) == 0)
			return 1;
	}
	return 0;
}

static int
h_mail(void *arg, struct smtp_session *s, const char *addr, struct buf *out)
{
	struct sess	*x = arg;
	struct table	*t = x->ctx->l->senders;
	int		 r;

	x->ndests = 0;		/* a new transaction */
	if (t == NULL || s->user[0] == '\0')
		return 1;
	if ((r = sender_allowed(t, s->user, addr)) == 1)
		return 1;
	if (r == -1) {
		log_warnx("session=%s senders table %s: lookup failed",
		    x->ctx->client, table_spec(t));
		smtp_reply(out, 451, "4.3.0", "sender check failed, try later");
		return -1;
	}
	log_info("session=%s user=%s refused from=<%s>: not among its senders",
	    x->ctx->client, s->user, addr);
	smtp_reply(out, 553, "5.7.1", "%s may not send as <%s>", s->user, addr);
	return 0;
}

static int
h_rcpt(void *arg, struct smtp_session *s, const char *addr, struct buf *out)
{
	struct sess	*x = arg;
	size_t		 before = x->ndests, olen = out->len;
	int		 r;

	x->o.authuser = s->user;
	r = rules_resolve(x->ctx->cf, &x->o, s->sender, addr, &x->dests,
	    &x->ndests, (size_t)x->ctx->cf->max_rcpt * 4, out);
	if (r != 1) {
		/* the reply's first line, for the log */
		const char	*t = out->len > olen ? out->data + olen : "";
		log_info("session=%s refused rcpt=<%s> from=<%s> reply=\"%.*s\"",
		    x->ctx->client, addr, s->sender, (int)strcspn(t, "\r\n"), t);
	} else
		log_debug("session=%s rcpt=<%s> destinations=%zu", x->ctx->client,
		    addr, x->ndests - before);
	return r;
}

/*
 * The next frame from the master of the kind wanted (an AUTH answer or
 * not), within timeout seconds: 0, or -1. A late AUTH answer (one that
 * auth_check gave up on) is skipped.
 */
static int
ctl_read(struct sess *x, struct ctl_frame *f, int timeout, int want_auth)
{
	struct pollfd	 pfd;
	time_t		 end = time(NULL) + timeout;
	ssize_t		 n;
	int		 is_auth;

	pfd.fd = x->ctx->ctl;
	pfd.events = POLLIN;
	for (;;) {
		if (poll(&pfd, 1, (int)(end - time(NULL)) * 1000) != 1)
			return -1;
		n = recv(x->ctx->ctl, f, sizeof(*f), 0);
		if (n != (ssize_t)sizeof(*f))
			return -1;
		is_auth = f->type == CTL_AUTH_OK || f->type == CTL_AUTH_FAIL ||
		    f->type == CTL_AUTH_TEMP;
		if (is_auth == want_auth)
			return 0;
		if (!is_auth)
			return -1;
		if (time(NULL) >= end)
			return -1;
	}
}

/* Asks the master to check user and password: 1 ok, 0 refused, -1 error. */
static int
auth_check(struct sess *x, const char *user, const char *pass)
{
	struct ctl_auth		 a;
	struct ctl_frame	 f;
	size_t			 ulen = strlen(user), plen = strlen(pass);
	ssize_t			 n;

	if (ulen >= sizeof(a.user) || plen >= sizeof(a.pass))
		return 0;	/* too long to verify (PASSWD_MAXLEN) */
	if (x->ctl_stale)
		return -1;	/* the master did not answer the last one */
	memset(&a, 0, sizeof(a));
	a.type = CTL_AUTH;
	memcpy(a.user, user, ulen);
	memcpy(a.pass, pass, plen);
	n = send(x->ctx->ctl, &a, sizeof(a), MSG_NOSIGNAL);
	explicit_bzero(&a, sizeof(a));
	if (n != (ssize_t)sizeof(a))
		return -1;
	if (ctl_read(x, &f, AUTH_REPLY_WAIT, 1) == -1) {
		x->ctl_stale = 1;
		return -1;
	}
	return f.type == CTL_AUTH_OK ? 1 : f.type == CTL_AUTH_FAIL ? 0 : -1;
}

static int
h_auth(void *arg, struct smtp_session *s, const char *user, const char *pass)
{
	struct sess	*x = arg;
	int		 r;

	(void)s;
	r = auth_check(x, user, pass);
	if (r == 1)
		log_info("session=%s auth=ok user=%s", x->ctx->client, user);
	else if (r == 0)
		log_info("session=%s auth=failed user=%s", x->ctx->client, user);
	else
		log_warnx("session=%s auth=error user=%s", x->ctx->client, user);
	return r;
}

static int
h_data_open(void *arg, struct smtp_session *s, struct buf *out)
{
	struct sess	*x = arg;
	const struct config *cf = x->ctx->cf;
	char		 date[64];
	struct buf	 rcv;
	const char	*with;
	int		 r;

	queue_new_id(x->id);
	str_fmt(x->path, sizeof(x->path), "%s/incoming/%s", cf->queue, x->id);
	x->fd = open(x->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (x->fd == -1) {
		log_warn("session=%s queue: %s", x->ctx->client, x->path);
		smtp_reply(out, 451, "4.3.0", "queue unavailable, try again");
		return -1;
	}
	if (queue_write_header(x->fd, x->id, s->sender, (long long)time(NULL),
	    x->dests, x->ndests, s->helo, x->ctx->client, s->user) == -1)
		goto fail;
	/* RFC 5321 4.4: our trace field first */
	if (x->ctx->l->lmtp)
		with = s->tls ? "LMTPS" : "LMTP";
	else if (!s->esmtp)
		with = "SMTP";
	else if (s->user[0])
		with = s->tls ? "ESMTPSA" : "ESMTPA";
	else
		with = s->tls ? "ESMTPS" : "ESMTP";
	msg_date(date, sizeof(date), time(NULL));
	buf_init(&rcv, 4096);
	r = buf_printf(&rcv, "Received: from %s (%s)\n\tby %s (smtpd-lite) with %s "
	    "id %s%s%s%s;\n\t%s\n", s->helo, x->ctx->client,
	    x->ctx->l->hostname ? x->ctx->l->hostname : cf->hostname, with, x->id,
	    s->nrcpt == 1 ? "\n\tfor <" : "", s->nrcpt == 1 ? s->rcpts[0] : "",
	    s->nrcpt == 1 ? ">" : "", date);
	if (r == 0)
		r = io_write_all(x->fd, rcv.data, rcv.len);
	buf_free(&rcv);
	if (r == -1)
		goto fail;
	x->written = 0;
	return 0;
fail:
	log_warn("session=%s queue: write %s", x->ctx->client, x->path);
	close(x->fd);
	unlink(x->path);
	x->fd = -1;
	smtp_reply(out, 451, "4.3.0", "queue write failed, try again");
	return -1;
}

static int
h_data_write(void *arg, struct smtp_session *s, const void *p, size_t n)
{
	struct sess	*x = arg;

	(void)s;
	if (x->fd == -1 || io_write_all(x->fd, p, n) == -1)
		return -1;
	x->written += n;
	return 0;
}

static void
h_data_abort(void *arg, struct smtp_session *s)
{
	struct sess	*x = arg;

	(void)s;
	if (x->fd != -1) {
		close(x->fd);
		unlink(x->path);
		x->fd = -1;
	}
}

/* Asks the master to move the message into the queue; waits for it. */
static int
commit(struct sess *x)
{
	struct ctl_frame	 f;

	memset(&f, 0, sizeof(f));
	f.type = CTL_COMMIT;
	str_lcpy(f.id, x->id, sizeof(f.id));
	if (send(x->ctx->ctl, &f, sizeof(f), MSG_NOSIGNAL) != (ssize_t)sizeof(f))
		return -1;
	if (ctl_read(x, &f, 120, 0) == -1) {
		x->ctl_stale = 1;	/* its answer may still come */
		return -1;
	}
	if (f.type != CTL_OK || f.id[ID_LEN] != '\0' || strcmp(f.id, x->id) != 0)
		return -1;
	return 0;
}

static int
h_data_commit(void *arg, struct smtp_session *s, char *id, size_t idlen,
    struct buf *out)
{
	struct sess	*x = arg;
	int		 r;

	r = fdatasync(x->fd);
	if (close(x->fd) == -1)
		r = -1;
	x->fd = -1;
	if (r == -1 || commit(x) == -1) {
		log_warn("session=%s queue: commit %s", x->ctx->client, x->id);
		unlink(x->path);
		smtp_reply(out, 451, "4.3.0", "queue commit failed, try again");
		return -1;
	}
	str_lcpy(id, x->id, idlen);
	log_info("session=%s accepted id=%s from=<%s> rcpts=%d size=%llu%s%s",
	    x->ctx->client, x->id, s->sender, s->nrcpt, x->written,
	    s->user[0] ? " user=" : "", s->user);
	return 0;
}

static void
h_event(void *arg, struct smtp_session *s, const char *what)
{
	struct sess	*x = arg;

	(void)s;
	log_debug("session=%s %s", x->ctx->client, what);
}

/* The line buffer: wiped when a connection ends (the process may serve
 * another, see session_reuse). */
static char	 line[DATA_LINE_MAX + 1];

/*
 * Ends the connection: 0 when the process may serve another (code 0: the
 * client said QUIT or closed; after a timeout or a write that failed the
 * process ends, and with it what the connection made it hold).
 */
static int
finish(struct sess *x, int code)
{
	if (x->s.out.len > 0) {
		io_write(x->io, x->s.out.data, x->s.out.len);
		buf_reset(&x->s.out);
	}
	io_flush(x->io, 5000);
	log_info("session=%s closed messages=%d", x->ctx->client, x->s.nmsg);
	smtp_session_free(&x->s);
	io_free(x->io, 1);
	free(x->dests);
	x->dests = NULL;
	explicit_bzero(line, sizeof(line));
	return code != 0 || x->ctl_stale;
}

int
session_run(struct session_ctx *ctx)
{
	static struct sess	 x;
	const struct config	*cf = ctx->cf;
	const struct listener	*l = ctx->l;
	struct smtp_params	 p;
	struct smtp_hooks	 h;
	char			 err[256], info[128];
	enum smtp_action	 act;
	long			 n;
	int			 crlf, toolong, indata, tmo, secret;

	memset(&x, 0, sizeof(x));
	x.ctx = ctx;
	x.fd = -1;
	x.o.tag = l->tag;
	x.o.local = ctx->local;
	x.o.addr = ctx->addr;
	x.o.has_addr = ctx->addrlen > 0;
	if ((x.io = io_new(ctx->rfd, ctx->wfd)) == NULL)
		fatal("io_new");
	io_set_write_timeout(x.io, (int)cf->timeout * 1000);
	log_info("session=%s connect listener=%s", ctx->client, l->name);

	memset(&p, 0, sizeof(p));
	p.hostname = l->hostname ? l->hostname : cf->hostname;
	p.max_size = cf->max_size;
	p.max_rcpt = (int)cf->max_rcpt;
	p.lmtp = l->lmtp;
	p.tls_offer = l->tls == TLS_STARTTLS || l->tls == TLS_REQUIRE;
	p.tls_required = l->tls == TLS_REQUIRE;
	p.auth_offer = ctx->auth;
	p.auth_required = l->auth_required;
	p.auth_plaintext = l->auth_plaintext;
	memset(&h, 0, sizeof(h));
	h.rcpt = h_rcpt;
	h.mail = h_mail;
	h.auth = ctx->auth ? h_auth : NULL;
	h.data_open = h_data_open;
	h.data_write = h_data_write;
	h.data_commit = h_data_commit;
	h.data_abort = h_data_abort;
	h.event = h_event;
	h.arg = &x;

	if (l->tls == TLS_IMPLICIT) {
		if (io_starttls_server(x.io, l->tlsctx, (int)cf->timeout * 1000,
		    err, sizeof(err)) == -1) {
			log_warnx("session=%s tls handshake failed: %s",
			    ctx->client, err);
			io_free(x.io, 1);
			return 1;
		}
		log_info("session=%s tls=%s", ctx->client,
		    io_tls_info(x.io, info, sizeof(info)));
	}
	if (smtp_session_init(&x.s, &p, &h) == -1)
		fatal("session init");
	if (l->tls == TLS_IMPLICIT)
		x.s.tls = 1;

	for (;;) {
		/* Replies go out when no whole line waits (PIPELINING), or
		 * once 64 KiB wait: a client that sends without reading
		 * must not grow them without bound. */
		if (x.s.out.len > 0 && (!io_has_line(x.io) ||
		    x.s.out.len >= 65536)) {
			if (io_write(x.io, x.s.out.data, x.s.out.len) == -1 ||
			    io_flush(x.io, (int)cf->timeout * 1000) == -1)
				return finish(&x, 1);
			buf_reset(&x.s.out);
		}
		indata = smtp_session_in_data(&x.s);
		tmo = (int)(indata ? cf->data_timeout : cf->timeout) * 1000;
		toolong = 0;
		n = io_getline(x.io, line, indata ? DATA_LINE_MAX + 1 :
		    CMD_LINE_MAX + 1, tmo, &crlf);
		if (n == -1) {
			if (errno == EMSGSIZE) {
				toolong = 1;
				n = 0;
				line[0] = '\0';
			} else if (errno == ETIMEDOUT) {
				log_info("session=%s timeout", ctx->client);
				smtp_session_timeout(&x.s);
				return finish(&x, 1);
			} else
				return finish(&x, 0);
		}
		/* an AUTH line or response carries a password */
		secret = x.s.state == SMTP_S_AUTH_PLAIN ||
		    x.s.state == SMTP_S_AUTH_USER ||
		    x.s.state == SMTP_S_AUTH_PASS ||
		    strncasecmp(line, "AUTH", 4) == 0;
		act = smtp_session_line(&x.s, line, (size_t)n, crlf, toolong);
		if (secret)
			explicit_bzero(line, (size_t)n);
		/* The failed-AUTH delay holds for each attempt, pipelined
		 * ones too (not once per batch of replies); its answer goes
		 * out at once. */
		if (x.s.delay_ms > 0) {
			usleep((useconds_t)x.s.delay_ms * 1000);
			if (io_write(x.io, x.s.out.data, x.s.out.len) == -1 ||
			    io_flush(x.io, (int)cf->timeout * 1000) == -1)
				return finish(&x, 1);
			buf_reset(&x.s.out);
		}
		if (act == SMTP_CLOSE)
			return finish(&x, 0);
		if (act == SMTP_STARTTLS) {
			if (io_write(x.io, x.s.out.data, x.s.out.len) == -1)
				return finish(&x, 1);
			buf_reset(&x.s.out);
			/* flushes, drops pipelined plaintext (CVE-2011-0411) */
			if (io_starttls_server(x.io, l->tlsctx, tmo, err,
			    sizeof(err)) == -1) {
				log_warnx("session=%s tls handshake failed: %s",
				    ctx->client, err);
				smtp_session_free(&x.s);
				io_free(x.io, 1);
				free(x.dests);
				return 1;
			}
			smtp_session_tls(&x.s);
			log_info("session=%s tls=%s", ctx->client,
			    io_tls_info(x.io, info, sizeof(info)));
		}
	}
}
