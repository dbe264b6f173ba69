/*
 * imap.c -- one poll of an IMAP account (RFC 3501, with IDLE 2177,
 * UIDPLUS 4315, SASL-IR 4959 when offered).
 *
 * Per folder: EXAMINE (SELECT with --delete), check UIDVALIDITY against
 * the state, one "UID FETCH lo:* (UID)" to list the UIDs (lo: the first
 * UID not done), then "UID FETCH set (UID BODY.PEEK[])" commands of up
 * to CHUNK UIDs, two in flight, the responses streamed literal by
 * literal into the delivery; the delivery commits in durable batches.
 * With --delete, the UIDs done that the server still has are flagged
 * \Deleted and expunged (UID EXPUNGE with UIDPLUS), after the state says
 * they are done: a run killed half way deletes them next time.
 *
 * UIDVALIDITY policy: when a folder's UIDVALIDITY changed, its UIDs no
 * longer name the messages fetched before, and fetching "the new ones"
 * would fetch everything again. fetch reports it and skips the folder
 * (exit status 1) until the user chooses: --all fetches everything
 * again (duplicates accepted), --mark-seen-now takes the folder as it is
 * now as fetched.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "fetch.h"
#include "imap.h"
#include "io.h"
#include "log.h"

#define CHUNK		1000	/* UIDs per UID FETCH command */
#define INFLIGHT	2	/* commands sent before their answer */
#define IDLE_MAX	(25 * 60)	/* RFC 2177: re-issue before 29 min */

struct imap {
	struct conn		 c;
	const struct account	*a;
	struct fstate		*st;
	struct run		*run;
	struct deliver		*d;
	unsigned int		 tagn;
	char			 caps[4096];
	char			 err[1024];
	unsigned long		 exists;
	unsigned long		 uidvalidity;
	int			 tempfail;	/* messages left for later */
	int			 failed;	/* something reported */
};

static const char *
next_tag(struct imap *s)
{
	static char tag[16];

	snprintf(tag, sizeof(tag), "f%u", ++s->tagn);
	return tag;
}

/* Untagged responses every command may bring. */
static void
untagged(struct imap *s, const struct imap_resp *r)
{
	if (r->status == ST_OK && strcasecmp(r->code, "UIDVALIDITY") == 0 &&
	    r->code_arg != NULL)
		s->uidvalidity = strtoul(r->code_arg, NULL, 10);
	else if (strcasecmp(r->code, "CAPABILITY") == 0 && r->code_arg != NULL)
		snprintf(s->caps, sizeof(s->caps), "%.*s", (int)r->code_arglen,
		    r->code_arg);
	else if (strcasecmp(r->word, "CAPABILITY") == 0)
		snprintf(s->caps, sizeof(s->caps), "%s", r->text);
	else if (strcasecmp(r->word, "EXISTS") == 0)
		s->exists = r->num;
	if (r->status != ST_NONE && strcasecmp(r->code, "ALERT") == 0)
		log_warnx("%s: server alert: %s", s->a->name, r->text);
}

/*
 * Reads responses until the tagged one for tag. Literals in untagged
 * responses are read and dropped (bounded). Returns the status, or -1
 * with s->err (connection trouble, BYE).
 */
static int
wait_tagged(struct imap *s, const char *tag, struct imap_resp *out)
{
	struct imap_resp r;

	for (;;) {
		long n = conn_getline(&s->c, s->err, sizeof(s->err));
		uint64_t lit;

		if (n == -1)
			return -1;
		if (imap_resp_parse(s->c.line, &r) == -1) {
			snprintf(s->err, sizeof(s->err), "%s: malformed response: %.80s",
			    s->a->host, s->c.line);
			return -1;
		}
		/* skip a literal an untagged response carries */
		while (r.type == IMAP_UNTAGGED &&
		    imap_literal_marker(s->c.line, (size_t)n, &lit, NULL) == 1) {
			char junk[8192];

			if (lit > (64U << 20)) {
				snprintf(s->err, sizeof(s->err),
				    "%s: literal too large", s->a->host);
				return -1;
			}
			while (lit > 0) {
				size_t k = lit > sizeof(junk) ? sizeof(junk) : lit;

				if (io_read_full(s->c.io, junk, k, s->c.timeout_ms) == -1) {
					snprintf(s->err, sizeof(s->err),
					    "%s: read: %s", s->a->host,
					    strerror(errno));
					return -1;
				}
				lit -= k;
			}
			if ((n = conn_getline(&s->c, s->err, sizeof(s->err))) == -1)
				return -1;
		}
		if (r.type == IMAP_UNTAGGED) {
			if (r.status == ST_BYE) {
				snprintf(s->err, sizeof(s->err), "%s: server closed: %s",
				    s->a->host, r.text);
				return -1;
			}
			untagged(s, &r);
			continue;
		}
		if (r.type == IMAP_CONT) {
			if (out != NULL) {
				*out = r;
				return ST_NONE;
			}
			continue;
		}
		if (strcmp(r.tag, tag) != 0)
			continue;
		if (r.status == ST_OK && strcasecmp(r.code, "CAPABILITY") == 0)
			untagged(s, &r);
		if (out != NULL)
			*out = r;
		return r.status;
	}
}

/* Sends a command and waits for its end: ST_OK etc., or -1. */
static int
command(struct imap *s, struct imap_resp *r, const char *fmt, const char *arg)
{
	const char *tag = next_tag(s);
	char t[16];

	snprintf(t, sizeof(t), "%s", tag);
	if (conn_send(&s->c, 0, s->err, sizeof(s->err), "%s %s%s", t, fmt,
	    arg ? arg : "") == -1 || conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	return wait_tagged(s, t, r);
}

/* A quoted string for a mailbox name (already modified UTF-7). */
static int
quote(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	if (o + 1 >= outlen)
		return -1;
	out[o++] = '"';
	for (; *in != '\0'; in++) {
		if (*in == '\r' || *in == '\n' || (unsigned char)*in >= 0x80)
			return -1;
		if (o + 4 >= outlen)
			return -1;
		if (*in == '"' || *in == '\\')
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o++] = '"';
	out[o] = '\0';
	return 0;
}

static int
greet_tls_login(struct imap *s)
{
	struct imap_resp r;
	const struct account *a = s->a;
	int st;

	if (conn_getline(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	if (imap_resp_parse(s->c.line, &r) == -1 || r.type != IMAP_UNTAGGED ||
	    (r.status != ST_OK && r.status != ST_PREAUTH)) {
		snprintf(s->err, sizeof(s->err), "%s: not an IMAP server: %.80s",
		    a->host, s->c.line);
		return -1;
	}
	untagged(s, &r);
	if (r.status == ST_PREAUTH)
		return 0;
	if (s->caps[0] == '\0' && command(s, NULL, "CAPABILITY", NULL) != ST_OK)
		goto proto;
	if (a->tls == TLS_STARTTLS) {
		if (!imap_capa_has(s->caps, "STARTTLS")) {
			snprintf(s->err, sizeof(s->err),
			    "%s: the server does not offer STARTTLS", a->host);
			return -1;
		}
		if (command(s, NULL, "STARTTLS", NULL) != ST_OK)
			goto proto;
		if (conn_starttls(&s->c, s->err, sizeof(s->err)) == -1)
			return -1;
		s->caps[0] = '\0';
		if (command(s, NULL, "CAPABILITY", NULL) != ST_OK)
			goto proto;
	}
	if (!io_is_tls(s->c.io) && !a->allow_plaintext) {
		snprintf(s->err, sizeof(s->err), "%s: refusing to send the "
		    "password without TLS (use imaps://, --starttls, or "
		    "allow_plaintext = yes)", a->host);
		return -1;
	}
	if (imap_capa_has(s->caps, "AUTH=PLAIN")) {
		char plain[1024], b64[1500];
		size_t ul = strlen(a->user), pl = strlen(a->password);
		const char *tag;
		char t[16];

		if (ul + pl + 2 > sizeof(plain)) {
			snprintf(s->err, sizeof(s->err), "user or password too long");
			return -1;
		}
		plain[0] = '\0';
		memcpy(plain + 1, a->user, ul);
		plain[1 + ul] = '\0';
		memcpy(plain + 2 + ul, a->password, pl);
		st = base64_encode(plain, ul + pl + 2, b64, sizeof(b64));
		explicit_bzero(plain, sizeof(plain));
		if (st == -1)
			return -1;
		tag = next_tag(s);
		snprintf(t, sizeof(t), "%s", tag);
		if (imap_capa_has(s->caps, "SASL-IR")) {
			st = conn_send(&s->c, strlen(t) + 20, s->err,
			    sizeof(s->err), "%s AUTHENTICATE PLAIN %s", t, b64);
		} else {
			st = conn_send(&s->c, 0, s->err, sizeof(s->err),
			    "%s AUTHENTICATE PLAIN", t);
			if (st == 0 && conn_flush(&s->c, s->err, sizeof(s->err)) == 0 &&
			    (st = wait_tagged(s, t, &r)) == ST_NONE)
				st = conn_send(&s->c, 1, s->err, sizeof(s->err),
				    "%s", b64);
			else if (st != -1)
				st = -2;
		}
		explicit_bzero(b64, sizeof(b64));
		if (st == -1)
			return -1;
		if (st != -2) {
			if (conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
				return -1;
			st = wait_tagged(s, t, &r);
		} else
			st = r.status;
	} else if (!imap_capa_has(s->caps, "LOGINDISABLED")) {
		char qu[600], qp[600];
		const char *tag = next_tag(s);
		char t[16];

		snprintf(t, sizeof(t), "%s", tag);
		if (quote(a->user, qu, sizeof(qu)) == -1 ||
		    quote(a->password, qp, sizeof(qp)) == -1) {
			explicit_bzero(qp, sizeof(qp));
			snprintf(s->err, sizeof(s->err), "%s: user or password "
			    "cannot be sent with LOGIN", a->host);
			return -1;
		}
		st = conn_send(&s->c, strlen(t) + 8 + strlen(qu), s->err,
		    sizeof(s->err), "%s LOGIN %s %s", t, qu, qp);
		explicit_bzero(qp, sizeof(qp));
		if (st == -1 || conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
			return -1;
		st = wait_tagged(s, t, &r);
	} else {
		snprintf(s->err, sizeof(s->err), "%s: no login method in common",
		    a->host);
		return -1;
	}
	if (st == -1)
		return -1;
	if (st != ST_OK) {
		snprintf(s->err, sizeof(s->err), "%s: login failed for %s: %s",
		    a->host, a->user, r.text);
		return -1;
	}
	/* the capabilities may change after login */
	if (strcasecmp(r.code, "CAPABILITY") != 0 &&
	    command(s, NULL, "CAPABILITY", NULL) != ST_OK)
		goto proto;
	return 0;
proto:
	if (s->err[0] == '\0')
		snprintf(s->err, sizeof(s->err), "%s: unexpected answer: %.80s",
		    a->host, s->c.line);
	return -1;
}

struct uidlist {
	unsigned long	*v;
	size_t		 n, cap;
};

static int
uidlist_add(struct uidlist *l, unsigned long u)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 1024;
		unsigned long *nv = reallocarray(l->v, nc, sizeof(*nv));

		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = u;
	return 0;
}

static int
ulcmp(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

/* Formats v[0..n) (sorted) as a UID set into out. */
static int
set_format(const unsigned long *v, size_t n, struct buf *out)
{
	size_t i = 0;

	buf_reset(out);
	while (i < n) {
		size_t j = i;

		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (buf_printf(out, "%s%lu", out->len ? "," : "", v[i]) == -1)
			return -1;
		if (j > i && buf_printf(out, ":%lu", v[j]) == -1)
			return -1;
		i = j + 1;
	}
	return 0;
}

/* "UID FETCH lo:* (UID)": every UID the folder has from lo. */
static int
list_uids(struct imap *s, unsigned long lo, struct uidlist *all)
{
	const char *tag = next_tag(s);
	char t[16];
	struct imap_resp r;
	struct imap_fetch f;

	snprintf(t, sizeof(t), "%s", tag);
	if (conn_send(&s->c, 0, s->err, sizeof(s->err), "%s UID FETCH %lu:* (UID)",
	    t, lo) == -1 || conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	for (;;) {
		if (conn_getline(&s->c, s->err, sizeof(s->err)) == -1)
			return -1;
		if (imap_resp_parse(s->c.line, &r) == -1)
			goto bad;
		if (r.type == IMAP_TAGGED && strcmp(r.tag, t) == 0) {
			if (r.status != ST_OK) {
				snprintf(s->err, sizeof(s->err), "%s: UID FETCH: %s",
				    s->a->host, r.text);
				return -1;
			}
			break;
		}
		if (r.type != IMAP_UNTAGGED)
			continue;
		if (strcasecmp(r.word, "FETCH") == 0) {
			int rc = imap_fetch_begin(&f, r.num, r.text);

			if (rc != 0)	/* no literal asked for */
				goto bad;
			if (f.uid >= lo && uidlist_add(all, f.uid) == -1) {
				snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
				return -1;
			}
		} else if (r.status == ST_BYE) {
			snprintf(s->err, sizeof(s->err), "%s: server closed: %s",
			    s->a->host, r.text);
			return -1;
		} else
			untagged(s, &r);
	}
	if (all->n > 1)
		qsort(all->v, all->n, sizeof(*all->v), ulcmp);
	return 0;
bad:
	snprintf(s->err, sizeof(s->err), "%s: malformed response: %.80s",
	    s->a->host, s->c.line);
	return -1;
}

static int
flush_batch(struct imap *s)
{
	if (deliver_flush(s->d, s->err, sizeof(s->err)) == -1)
		return -1;
	progress_update(s->run, deliver_count(s->d), deliver_bytes(s->d));
	return 0;
}

/* Reads one FETCH response carrying a message; delivers it. */
static int
fetch_message(struct imap *s, const char *folder, unsigned long seq,
    const char *rest)
{
	struct imap_fetch f;
	char buf[65536], derr[512];
	int rc, open = 0, bodies = 0;

	rc = imap_fetch_begin(&f, seq, rest);
	while (rc == 1) {
		unsigned long long left = f.literal;
		int mine = 0;

		/* the first body literal is the message; any other is skipped */
		if (f.literal_body && bodies == 0) {
			if (deliver_begin(s->d, s->err, sizeof(s->err)) == -1)
				return -1;
			open = 1;
			bodies++;
			mine = 1;
		}
		while (left > 0) {
			size_t k = left > sizeof(buf) ? sizeof(buf) : (size_t)left;
			long got = io_read_some(s->c.io, buf, k, s->c.timeout_ms);

			if (got <= 0) {
				snprintf(s->err, sizeof(s->err), "%s: message %lu "
				    "cut short (%llu of %llu bytes): %s", s->a->host,
				    seq, f.literal - left, f.literal,
				    errno == ETIMEDOUT ? "timeout" :
				    "connection closed");
				goto abort;
			}
			left -= (unsigned long long)got;
			if (mine && deliver_write(s->d, buf,
			    (size_t)got, s->err, sizeof(s->err)) == -1)
				goto abort;
		}
		if (conn_getline(&s->c, s->err, sizeof(s->err)) == -1)
			goto abort;
		rc = imap_fetch_continue(&f, s->c.line);
	}
	if (rc == -1) {
		snprintf(s->err, sizeof(s->err), "%s: malformed FETCH response: %.80s",
		    s->a->host, s->c.line);
		goto abort;
	}
	if (f.qbody != NULL && !open) {
		/* a body sent as a quoted string: unescape it */
		size_t i;

		if (deliver_begin(s->d, s->err, sizeof(s->err)) == -1)
			return -1;
		open = 1;
		for (i = 0; i < f.qbodylen; i++) {
			char ch = f.qbody[i];

			if (ch == '\\')
				ch = f.qbody[++i];
			if (deliver_write(s->d, &ch, 1, s->err, sizeof(s->err)) == -1)
				goto abort;
		}
	}
	if (!open)	/* a flag update, or BODY[] NIL (expunged meanwhile) */
		return 0;
	if (f.uid == 0) {
		snprintf(s->err, sizeof(s->err), "%s: FETCH response without UID",
		    s->a->host);
		goto abort;
	}
	rc = deliver_end(s->d, folder, f.uid, NULL, derr, sizeof(derr));
	if (rc == -1) {
		snprintf(s->err, sizeof(s->err), "%s", derr);
		return -1;
	}
	if (rc == 1) {
		log_warnx("%s: %s UID %lu: %s: left on the server for the next "
		    "poll", s->a->name, folder, f.uid, derr);
		s->tempfail = 1;
	} else if (rc == 2) {
		log_warnx("%s: %s UID %lu: delivery failed: %s", s->a->name,
		    folder, f.uid, derr);
		s->failed = 1;
	} else if (s->a->mda != NULL)
		progress_update(s->run, deliver_count(s->d), deliver_bytes(s->d));
	if (deliver_batch_full(s->d) && flush_batch(s) == -1)
		return -1;
	return 0;
abort:
	if (open)
		deliver_abort(s->d);
	return -1;
}

/* Fetches the UIDs in v[0..n), pipelined. 0, or -1 with s->err. */
static int
fetch_uids(struct imap *s, const char *folder, const unsigned long *v, size_t n)
{
	struct buf set;
	char tags[INFLIGHT][16];
	size_t sent = 0;
	int inflight = 0, head = 0, rc = -1;
	struct imap_resp r;

	buf_init(&set, 1 << 20);
	while (sent < n || inflight > 0) {
		while (inflight < INFLIGHT && sent < n && !*s->run->stop) {
			size_t k = n - sent > CHUNK ? CHUNK : n - sent;
			int slot = (head + inflight) % INFLIGHT;

			if (set_format(v + sent, k, &set) == -1)
				goto out;
			snprintf(tags[slot], sizeof(tags[slot]), "%s", next_tag(s));
			if (conn_send(&s->c, 0, s->err, sizeof(s->err),
			    "%s UID FETCH %s (UID BODY.PEEK[])", tags[slot],
			    set.data) == -1)
				goto out;
			sent += k;
			inflight++;
		}
		if (inflight == 0)
			break;
		if (conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
			goto out;
		if (conn_getline(&s->c, s->err, sizeof(s->err)) == -1)
			goto out;
		if (imap_resp_parse(s->c.line, &r) == -1) {
			snprintf(s->err, sizeof(s->err), "%s: malformed response: "
			    "%.80s", s->a->host, s->c.line);
			goto out;
		}
		if (r.type == IMAP_TAGGED) {
			if (strcmp(r.tag, tags[head]) != 0)
				continue;
			if (r.status != ST_OK) {
				/* e.g. messages expunged meanwhile: not fatal */
				log_warnx("%s: %s: UID FETCH: %s", s->a->name,
				    folder, r.text);
				s->tempfail = 1;
			}
			head = (head + 1) % INFLIGHT;
			inflight--;
			continue;
		}
		if (r.type != IMAP_UNTAGGED)
			continue;
		if (r.status == ST_BYE) {
			snprintf(s->err, sizeof(s->err), "%s: server closed: %s",
			    s->a->host, r.text);
			goto out;
		}
		if (strcasecmp(r.word, "FETCH") == 0) {
			if (fetch_message(s, folder, r.num, r.text) == -1)
				goto out;
			if (*s->run->stop) {
				/* SIGTERM: the current message is done */
				rc = 1;
				goto out;
			}
		} else
			untagged(s, &r);
	}
	rc = 0;
out:
	buf_free(&set);
	return rc;
}

/* --delete: flag and expunge the UIDs done that the server still has. */
static int
delete_done(struct imap *s, const struct fstate_folder *sf,
    const struct uidlist *all)
{
	struct uidlist del = { 0 };
	struct buf set;
	size_t i;
	int rc = -1, st;
	struct imap_resp r;

	for (i = 0; i < all->n; i++)
		if (uidset_has(&sf->done, all->v[i]) && uidlist_add(&del, all->v[i]) == -1)
			goto out;
	buf_init(&set, 1 << 20);
	for (i = 0; i < del.n; i += CHUNK) {
		size_t k = del.n - i > CHUNK ? CHUNK : del.n - i;

		if (set_format(del.v + i, k, &set) == -1 ||
		    buf_adds(&set, " +FLAGS.SILENT (\\Deleted)") == -1) {
			snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
			goto outb;
		}
		if ((st = command(s, &r, "UID STORE ", set.data)) == -1)
			goto outb;
		if (st != ST_OK) {
			log_warnx("%s: UID STORE \\Deleted: %s", s->a->name, r.text);
			s->failed = 1;
			rc = 0;
			goto outb;
		}
		if (imap_capa_has(s->caps, "UIDPLUS")) {
			if (set_format(del.v + i, k, &set) == -1)
				goto outb;
			st = command(s, &r, "UID EXPUNGE ", set.data);
		} else
			st = command(s, &r, "EXPUNGE", NULL);
		if (st == -1)
			goto outb;
		if (st != ST_OK) {
			log_warnx("%s: EXPUNGE: %s", s->a->name, r.text);
			s->failed = 1;
		}
	}
	rc = 0;
outb:
	buf_free(&set);
out:
	free(del.v);
	return rc;
}

static int
folder_poll(struct imap *s, const char *folder)
{
	struct imap_resp r;
	struct fstate_folder *sf;
	struct uidlist all = { 0 }, todo = { 0 };
	struct buf name, q;
	unsigned long lo;
	size_t i;
	int st, rc = -1;
	char qbuf[2048];

	buf_init(&name, 4096);
	buf_init(&q, 8192);
	if (imap_utf7_encode(folder, &name) == -1 ||
	    quote(name.data, qbuf, sizeof(qbuf)) == -1) {
		log_warnx("%s: %s: not a valid folder name", s->a->name, folder);
		s->failed = 1;
		rc = 0;
		goto out;
	}
	s->uidvalidity = 0;
	s->exists = 0;
	st = command(s, &r, s->a->delete ? "SELECT " : "EXAMINE ", qbuf);
	if (st == -1)
		goto out;
	if (st != ST_OK) {
		log_warnx("%s: %s: cannot open the folder: %s", s->a->name,
		    folder, r.text);
		s->failed = 1;
		rc = 0;
		goto out;
	}
	if ((sf = fstate_folder(s->st, folder, 1)) == NULL) {
		snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
		goto out;
	}
	if (sf->uidvalidity != 0 && sf->uidvalidity != s->uidvalidity) {
		if (s->a->all || s->a->mark_seen_now) {
			log_warnx("%s: %s: UIDVALIDITY changed from %lu to %lu: "
			    "starting over (%s)", s->a->name, folder,
			    sf->uidvalidity, s->uidvalidity,
			    s->a->all ? "--all" : "--mark-seen-now");
			uidset_free(&sf->done);
		} else {
			log_warnx("%s: %s: UIDVALIDITY changed from %lu to %lu: "
			    "the server renumbered the folder; skipped so that "
			    "nothing is fetched twice. Run once with --all to "
			    "fetch it all again, or with --mark-seen-now to "
			    "take it as fetched", s->a->name, folder,
			    sf->uidvalidity, s->uidvalidity);
			s->failed = 1;
			rc = 0;
			goto out;
		}
	}
	if (sf->uidvalidity != s->uidvalidity) {
		sf->uidvalidity = s->uidvalidity;
		if (fstate_save(s->st, s->err, sizeof(s->err)) == -1)
			goto out;
	}
	if (s->exists == 0) {
		rc = 0;
		goto out;
	}
	/* with --delete, list from 1: what was delivered before (an
	 * interrupted run) is still there to delete */
	lo = s->a->all || s->a->delete ? 1 : uidset_first_missing(&sf->done);
	if (list_uids(s, lo, &all) == -1)
		goto out;
	for (i = 0; i < all.n; i++)
		if ((s->a->all || !uidset_has(&sf->done, all.v[i])) &&
		    uidlist_add(&todo, all.v[i]) == -1)
			goto nomem;
	if (s->a->mark_seen_now) {
		for (i = 0; i < todo.n; i++)
			if (uidset_add(&sf->done, todo.v[i], todo.v[i]) == -1)
				goto nomem;
		if (fstate_save(s->st, s->err, sizeof(s->err)) == -1)
			goto out;
		log_info("%s: %s: %zu messages recorded as fetched", s->a->name,
		    folder, todo.n);
		rc = 0;
		goto out;
	}
	if (todo.n > 0) {
		int frc = fetch_uids(s, folder, todo.v, todo.n);

		if (flush_batch(s) == -1 || frc == -1)
			goto out;
		if (frc == 1) {
			rc = 1;
			goto out;
		}
	}
	/*
	 * UIDs below the highest one listed that the server does not
	 * have will never come back (RFC 3501 2.3.1.1): count them done
	 * so the state stays a few ranges.
	 */
	if (all.n > 0) {
		unsigned long prev = lo;

		for (i = 0; i < all.n; i++) {
			if (all.v[i] > prev && uidset_add(&sf->done, prev,
			    all.v[i] - 1) == -1)
				goto nomem;
			prev = all.v[i] + 1;
		}
		if (fstate_save(s->st, s->err, sizeof(s->err)) == -1)
			goto out;
	}
	if (s->a->delete && delete_done(s, sf, &all) == -1)
		goto out;
	rc = 0;
	goto out;
nomem:
	snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
out:
	free(all.v);
	free(todo.v);
	buf_free(&name);
	buf_free(&q);
	return rc;
}

/* IMAP IDLE until new mail, the time limit or a signal: 1 new mail, 0
 * nothing, -1 with s->err. */
static int
idle_wait(struct imap *s, int seconds)
{
	const char *tag = next_tag(s);
	char t[16];
	struct imap_resp r;
	time_t end = time(NULL) + seconds;
	int woken = 0;

	snprintf(t, sizeof(t), "%s", tag);
	if (!imap_capa_has(s->caps, "IDLE")) {
		snprintf(s->err, sizeof(s->err), "%s: the server has no IDLE",
		    s->a->host);
		return -1;
	}
	if (conn_send(&s->c, 0, s->err, sizeof(s->err), "%s IDLE", t) == -1 ||
	    conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	if (wait_tagged(s, t, &r) != ST_NONE) {
		snprintf(s->err, sizeof(s->err), "%s: IDLE refused", s->a->host);
		return -1;
	}
	while (!woken && !*s->run->stop) {
		time_t now = time(NULL);
		long n;

		if (now >= end)
			break;
		if (s->run->reload != NULL && *s->run->reload)
			break;
		/*
		 * Wait for the socket ourselves, a second at a time (to see
		 * SIGTERM and SIGHUP), so that a read error (keepalive: the
		 * link died) is not mistaken for "nothing yet".
		 */
		if (io_pending(s->c.io) == 0) {
			struct pollfd pfd;
			int pr;

			pfd.fd = io_fd(s->c.io);
			pfd.events = POLLIN;
			pfd.revents = 0;
			pr = poll(&pfd, 1, 1000);
			if (pr == 0 || (pr == -1 && errno == EINTR))
				continue;
		}
		n = conn_getline(&s->c, s->err, sizeof(s->err));
		if (n == -1) {
			snprintf(s->err, sizeof(s->err), "%s: connection lost "
			    "during IDLE", s->a->host);
			return -1;
		}
		if (imap_resp_parse(s->c.line, &r) == 0 &&
		    r.type == IMAP_UNTAGGED) {
			if (r.status == ST_BYE) {
				snprintf(s->err, sizeof(s->err), "%s: server "
				    "closed: %s", s->a->host, r.text);
				return -1;
			}
			if (strcasecmp(r.word, "EXISTS") == 0)
				woken = 1;
		}
	}
	if (conn_send(&s->c, 0, s->err, sizeof(s->err), "DONE") == -1 ||
	    conn_flush(&s->c, s->err, sizeof(s->err)) == -1)
		return -1;
	/* a link that died silently shows here: no answer to DONE */
	if (wait_tagged(s, t, &r) != ST_OK)
		return -1;
	return woken;
}

int
imap_poll(const struct account *a, struct fstate *st, struct run *run)
{
	struct imap *s;
	size_t i;
	int rc = 0, stopped = 0;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warn("%s: poll", a->name);
		return EX_TEMPFAIL;
	}
	s->a = a;
	s->st = st;
	s->run = run;
	s->c.fd = -1;
	if (conn_open(&s->c, a, run->opt->verbose > 0, s->err, sizeof(s->err)) == -1 ||
	    greet_tls_login(s) == -1)
		goto fail;
	if ((s->d = deliver_new(a, st, a->batch)) == NULL) {
		snprintf(s->err, sizeof(s->err), "%s", strerror(errno));
		goto fail;
	}
	for (;;) {
		for (i = 0; i < a->nfolders && !stopped; i++) {
			int frc = folder_poll(s, a->folders[i]);

			if (frc == -1)
				goto fail;
			if (frc == 1 || *run->stop)
				stopped = 1;
		}
		if (stopped || run->idle_wait <= 0)
			break;
		/* IDLE on the (last) folder still selected; the first one */
		if (a->nfolders > 1) {
			struct imap_resp r;
			char qbuf[2048];
			struct buf name;

			buf_init(&name, 4096);
			if (imap_utf7_encode(a->folders[0], &name) == -1 ||
			    quote(name.data, qbuf, sizeof(qbuf)) == -1 ||
			    command(s, &r, "EXAMINE ", qbuf) != ST_OK) {
				buf_free(&name);
				goto fail;
			}
			buf_free(&name);
		}
		{
			int w = idle_wait(s, run->idle_wait < IDLE_MAX ?
			    run->idle_wait : IDLE_MAX);

			if (w == -1)
				goto fail;
			if (*run->stop || (run->reload != NULL && *run->reload))
				break;
		}
	}
	run->fetched += deliver_count(s->d);
	if (!stopped) {
		struct imap_resp r;

		(void)command(s, &r, "LOGOUT", NULL);
	}
	if (s->failed)
		rc = FETCH_FAIL;
	else if (s->tempfail)
		rc = EX_TEMPFAIL;
	goto out;
fail:
	log_warnx("%s: %s", a->name, s->err[0] ? s->err : "failed");
	if (s->d != NULL)
		run->fetched += deliver_count(s->d);
	rc = FETCH_FAIL;
out:
	deliver_free(s->d);
	conn_close(&s->c);
	explicit_bzero(s, sizeof(*s));
	free(s);
	return rc;
}
