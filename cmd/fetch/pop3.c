/*
 * pop3.c -- one poll of a POP3 account (RFC 1939, CAPA and PIPELINING
 * 2449, STLS 2595).
 *
 * UIDL names the messages; the state keeps the UIDLs done (and forgets
 * those the server no longer has). New messages are fetched with RETR,
 * pipelined when the server says PIPELINING. A message counts only when
 * its terminating "." line arrived: a connection that dies in the middle
 * leaves nothing delivered. With --delete, DELE is sent for every
 * message whose UIDL is done (this run's and those of an interrupted
 * run), after the state says so; the server deletes them at QUIT.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "buf.h"
#include "fetch.h"
#include "io.h"
#include "log.h"

#define WINDOW	32	/* RETR commands in flight with PIPELINING */

struct msg {
	unsigned long		 num;
	unsigned long long	 size;
	char			*uidl;
};

struct pop3 {
	struct conn		 c;
	const struct account	*a;
	struct fstate		*st;
	struct run		*run;
	struct deliver		*d;
	char			 err[1024];
	int			 pipelining, stls, uidl, user;
	struct msg		*msgs;
	size_t			 nmsgs;
	int			 tempfail, failed;
	int			 toolong;	/* a line of the message was too long */
};

/* Reads a status line: 1 +OK, 0 -ERR (text in s->c.line), -1 trouble. */
static int
status(struct pop3 *s)
{
	int st;

	if (conn_getline(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	if ((st = pop3_status(s->c.line)) == -1) {
		snprintf(s->err, sizeof(s->err), "%s: malformed reply: %.80s",
		    s->a->host, s->c.line);
		return -1;
	}
	return st;
}

/* Sends "verb[ arg]" and reads the status; arg is masked when secret. */
static int
cmd(struct pop3 *s, int secret, const char *verb, const char *arg)
{
	if (conn_send(&s->c, secret ? strlen(verb) + 1 : 0, s->err,
	    sizeof(s->err), "%s%s%s", verb, arg ? " " : "", arg ? arg : "") == -1 ||
	    conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	return status(s);
}

/* Reads a multi-line body to ".", calling fn per line (unstuffed). */
static int
multiline(struct pop3 *s, int (*fn)(struct pop3 *, char *, long))
{
	for (;;) {
		long n = conn_getline(&s->c, s->err, sizeof(s->err));
		char *p = s->c.line;

		if (n == -1 && errno == EMSGSIZE) {
			/* the rest of the line was skipped: the message is
			 * not whole, the session still is */
			s->toolong = 1;
			continue;
		}
		if (n == -1)
			return -1;
		if (p[0] == '.') {
			if (p[1] == '\0')
				return 0;
			p++;
			n--;
		}
		if (fn != NULL && fn(s, p, n) == -1)
			return -1;
	}
}

static int
capa_line(struct pop3 *s, char *line, long n)
{
	(void)n;
	if (strcasecmp(line, "PIPELINING") == 0)
		s->pipelining = 1;
	else if (strcasecmp(line, "STLS") == 0)
		s->stls = 1;
	else if (strcasecmp(line, "UIDL") == 0)
		s->uidl = 1;
	else if (strcasecmp(line, "USER") == 0)
		s->user = 1;
	return 0;
}

static int
capa(struct pop3 *s)
{
	int st;

	s->pipelining = s->stls = s->uidl = s->user = 0;
	if ((st = cmd(s, 0, "CAPA", NULL)) == -1)
		return -1;
	if (st == 0)	/* an RFC 1939 server without CAPA */
		return 0;
	return multiline(s, capa_line);
}

static int
login(struct pop3 *s)
{
	const struct account *a = s->a;
	int st;

	if ((st = status(s)) == -1)
		return -1;
	if (st == 0) {
		snprintf(s->err, sizeof(s->err), "%s: server refused: %.200s",
		    a->host, s->c.line);
		return -1;
	}
	if (capa(s) == -1)
		return -1;
	if (a->tls == TLS_STARTTLS) {
		if (!s->stls) {
			snprintf(s->err, sizeof(s->err),
			    "%s: the server does not offer STLS", a->host);
			return -1;
		}
		if ((st = cmd(s, 0, "STLS", NULL)) != 1) {
			if (st == 0)
				snprintf(s->err, sizeof(s->err), "%s: STLS: %.200s",
				    a->host, s->c.line);
			return -1;
		}
		if (conn_starttls(&s->c, s->err, sizeof(s->err)) == -1 ||
		    capa(s) == -1)
			return -1;
	}
	if (!io_is_tls(s->c.io) && !a->allow_plaintext) {
		snprintf(s->err, sizeof(s->err), "%s: refusing to send the "
		    "password without TLS (use pop3s://, --starttls, or "
		    "allow_plaintext = yes)", a->host);
		return -1;
	}
	if (strpbrk(a->user, "\r\n") != NULL || strpbrk(a->password, "\r\n")) {
		snprintf(s->err, sizeof(s->err), "user or password has a line end");
		return -1;
	}
	if ((st = cmd(s, 0, "USER", a->user)) == 1)
		st = cmd(s, 1, "PASS", a->password);
	if (st == -1)
		return -1;
	if (st == 0) {
		snprintf(s->err, sizeof(s->err), "%s: login failed for %s: %.200s",
		    a->host, a->user, s->c.line);
		return -1;
	}
	return 0;
}

static int
uidl_line(struct pop3 *s, char *line, long n)
{
	unsigned long num;
	const char *u;
	size_t ul;
	struct msg *m;

	(void)n;
	if (pop3_uidl_line(line, &num, &u, &ul) == -1) {
		snprintf(s->err, sizeof(s->err), "%s: malformed UIDL line: %.80s",
		    s->a->host, line);
		return -1;
	}
	if (s->nmsgs >= 10000000) {
		snprintf(s->err, sizeof(s->err), "%s: too many messages", s->a->host);
		return -1;
	}
	m = reallocarray(s->msgs, s->nmsgs + 1, sizeof(*m));
	if (m == NULL)
		return -1;
	s->msgs = m;
	m = &s->msgs[s->nmsgs];
	m->num = num;
	m->size = 0;
	if ((m->uidl = strndup(u, ul)) == NULL)
		return -1;
	s->nmsgs++;
	return 0;
}

static int
list_line(struct pop3 *s, char *line, long n)
{
	unsigned long num;
	unsigned long long oct;
	size_t i;

	(void)n;
	if (pop3_list_line(line, &num, &oct) == -1)
		return 0;	/* sizes are only informative */
	/* LIST and UIDL come in the same order */
	for (i = 0; i < s->nmsgs; i++)
		if (s->msgs[i].num == num) {
			s->msgs[i].size = oct;
			break;
		}
	return 0;
}

static int
keep_present(const char *uidl, void *arg)
{
	struct pop3 *s = arg;
	size_t i;

	for (i = 0; i < s->nmsgs; i++)
		if (strcmp(s->msgs[i].uidl, uidl) == 0)
			return 1;
	return 0;
}

/* One message body after its +OK: into the delivery. */
static int
body_line(struct pop3 *s, char *line, long n)
{
	line[n] = '\n';
	return deliver_write(s->d, line, (size_t)n + 1, s->err, sizeof(s->err));
}

static int
retrieve(struct pop3 *s, const size_t *todo, size_t n)
{
	size_t sent = 0, got = 0;
	int window = s->pipelining ? WINDOW : 1;
	char derr[512];

	while (got < n) {
		struct msg *m;
		int st, rc;

		while (sent < n && sent - got < (size_t)window && !*s->run->stop) {
			char num[32];

			snprintf(num, sizeof(num), "%lu", s->msgs[todo[sent]].num);
			if (conn_send(&s->c, 0, s->err, sizeof(s->err), "RETR %s",
			    num) == -1)
				return -1;
			sent++;
		}
		if (sent == got)	/* stopped */
			return 1;
		if (conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
			return -1;
		m = &s->msgs[todo[got++]];
		if ((st = status(s)) == -1)
			return -1;
		if (st == 0) {
			log_warnx("%s: RETR %lu: %.200s", s->a->name, m->num,
			    s->c.line);
			s->tempfail = 1;
			continue;
		}
		if (deliver_begin(s->d, s->err, sizeof(s->err)) == -1)
			return -1;
		s->toolong = 0;
		if (multiline(s, body_line) == -1) {
			deliver_abort(s->d);
			return -1;
		}
		if (s->toolong) {
			deliver_abort(s->d);
			log_warnx("%s: message %s: a line longer than %zu bytes: "
			    "not fetched", s->a->name, m->uidl,
			    sizeof(s->c.line) - 2);
			s->failed = 1;
			continue;
		}
		rc = deliver_end(s->d, NULL, m->num, m->uidl, derr, sizeof(derr));
		if (rc == -1) {
			snprintf(s->err, sizeof(s->err), "%s", derr);
			return -1;
		}
		if (rc == 1) {
			log_warnx("%s: message %s: %s: left on the server for "
			    "the next poll", s->a->name, m->uidl, derr);
			s->tempfail = 1;
		} else if (rc == 2) {
			log_warnx("%s: message %s: delivery failed: %s",
			    s->a->name, m->uidl, derr);
			s->failed = 1;
		} else if (s->a->mda != NULL)
			progress_update(s->run, deliver_count(s->d),
			    deliver_bytes(s->d));
		if (deliver_batch_full(s->d)) {
			if (deliver_flush(s->d, s->err, sizeof(s->err)) == -1)
				return -1;
			progress_update(s->run, deliver_count(s->d),
			    deliver_bytes(s->d));
		}
		if (*s->run->stop) {
			/* finish the answers already asked for, then stop */
			n = sent;
		}
	}
	return *s->run->stop ? 1 : 0;
}

static int
delete_done(struct pop3 *s)
{
	size_t i, sent = 0, got = 0;
	size_t *del;
	size_t ndel = 0;
	int window = s->pipelining ? WINDOW : 1, rc = -1;

	if ((del = calloc(s->nmsgs + 1, sizeof(*del))) == NULL)
		return -1;
	for (i = 0; i < s->nmsgs; i++)
		if (fstate_uidl_has(s->st, s->msgs[i].uidl))
			del[ndel++] = i;
	while (got < ndel) {
		int st;

		while (sent < ndel && sent - got < (size_t)window) {
			char num[32];

			snprintf(num, sizeof(num), "%lu", s->msgs[del[sent]].num);
			if (conn_send(&s->c, 0, s->err, sizeof(s->err), "DELE %s",
			    num) == -1)
				goto out;
			sent++;
		}
		if (conn_flush(&s->c, s->err, sizeof(s->err)) == -1 ||
		    (st = status(s)) == -1)
			goto out;
		if (st == 0) {
			log_warnx("%s: DELE %lu: %.200s", s->a->name,
			    s->msgs[del[got]].num, s->c.line);
			s->failed = 1;
		}
		got++;
	}
	rc = 0;
out:
	free(del);
	return rc;
}

int
pop3_poll(const struct account *a, struct fstate *st, struct run *run)
{
	struct pop3 *s;
	size_t *todo = NULL, ntodo = 0, i;
	int rc = 0, stopped = 0, r;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("%s: poll", a->name);
		return EX_TEMPFAIL;
	}
	s->a = a;
	s->st = st;
	s->run = run;
	s->c.fd = -1;
	if (conn_open(&s->c, a, run->opt->verbose > 0, s->err, sizeof(s->err)) == -1 ||
	    login(s) == -1)
		goto fail;
	if ((r = cmd(s, 0, "UIDL", NULL)) == -1)
		goto fail;
	if (r == 0) {
		snprintf(s->err, sizeof(s->err), "%s: the server has no UIDL: "
		    "fetch cannot tell new messages from old ones", a->host);
		goto fail;
	}
	if (multiline(s, uidl_line) == -1)
		goto fail;
	if (s->nmsgs > 0) {
		if ((r = cmd(s, 0, "LIST", NULL)) == -1)
			goto fail;
		if (r == 1 && multiline(s, list_line) == -1)
			goto fail;
	}
	if ((todo = calloc(s->nmsgs + 1, sizeof(*todo))) == NULL ||
	    (s->d = deliver_new(a, st, a->batch)) == NULL) {
		snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
		goto fail;
	}
	for (i = 0; i < s->nmsgs; i++)
		if (a->all || !fstate_uidl_has(st, s->msgs[i].uidl))
			todo[ntodo++] = i;
	/* forget what the server no longer has */
	fstate_uidl_prune(st, keep_present, s);
	if (a->mark_seen_now) {
		for (i = 0; i < ntodo; i++)
			if (fstate_uidl_add(st, s->msgs[todo[i]].uidl) == -1)
				goto nomem;
		log_info("%s: %zu messages recorded as fetched", a->name, ntodo);
		ntodo = 0;
	}
	if (fstate_save(st, s->err, sizeof(s->err)) == -1)
		goto fail;
	if (ntodo > 0) {
		r = retrieve(s, todo, ntodo);
		if (deliver_flush(s->d, s->err, sizeof(s->err)) == -1 || r == -1 ||
		    fstate_save(st, s->err, sizeof(s->err)) == -1)
			goto fail;
		if (r == 1)
			stopped = 1;
	}
	if (!stopped && a->delete && delete_done(s) == -1)
		goto fail;
	run->fetched += deliver_count(s->d);
	if (!stopped) {
		if ((r = cmd(s, 0, "QUIT", NULL)) == -1)
			goto fail;
		if (r == 0) {
			/* RFC 1939 6: the deletions did not happen */
			log_warnx("%s: QUIT: %.200s", a->name, s->c.line);
			s->failed = 1;
		}
	}
	if (s->failed)
		rc = FETCH_FAIL;
	else if (s->tempfail)
		rc = EX_TEMPFAIL;
	goto out;
nomem:
	snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
fail:
	log_warnx("%s: %s", a->name, s->err[0] ? s->err : "failed");
	if (s->d != NULL)
		run->fetched += deliver_count(s->d);
	rc = FETCH_FAIL;
out:
	deliver_free(s->d);
	conn_close(&s->c);
	for (i = 0; i < s->nmsgs; i++)
		free(s->msgs[i].uidl);
	free(s->msgs);
	free(todo);
	explicit_bzero(s, sizeof(s->c));
	free(s);
	return rc;
}
