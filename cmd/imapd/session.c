/*
 * session.c -- reading commands (with their literals, within limits) and
 * the authenticated and selected states: SELECT, EXAMINE, CLOSE,
 * UNSELECT, EXPUNGE, CHECK, APPEND, COPY, MOVE, IDLE, NAMESPACE, ID,
 * ENABLE, and the untagged updates that tell a client what other
 * sessions and deliveries changed.
 */
#include <sys/inotify.h>
#include <sys/stat.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "imap.h"
#include "imapd.h"
#include "io.h"
#include "log.h"

#define CONT_TIMEOUT	(5 * 60 * 1000)	/* literal and continuation reads */
#define KEEPALIVE	(2 * 60)	/* IDLE "* OK Still here" (seconds) */
#define PREAUTH_LITERALS (64 * 1024)	/* literal budget before login */

const char *
session_capability(const struct session *s)
{
	static char	cap[512];

	if (s->state == S_NOTAUTH) {
		int plain_ok = s->tls || s->cfg->plaintext_auth;

		str_fmt(cap, sizeof(cap), "IMAP4rev1 SASL-IR ID ENABLE IDLE "
		    "LITERAL+%s%s", s->tls || s->cfg->tls == NULL ? "" :
		    " STARTTLS", plain_ok ? " AUTH=PLAIN" : " LOGINDISABLED");
		return cap;
	}
	return "IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ NAMESPACE UIDPLUS "
	    "MOVE UNSELECT CHILDREN SPECIAL-USE";
}

int
session_flush(struct session *s)
{
	if (s->out.len > 0) {
		if (io_write(s->io, s->out.data, s->out.len) == -1)
			return -1;
		s->bytes_out += s->out.len;
		buf_reset(&s->out);
	}
	return io_flush(s->io, 120 * 1000);
}

/* Sends what is buffered when it grows large (FETCH of many messages). */
static int
out_maybe_flush(struct session *s)
{
	if (s->out.len < 65536)
		return 0;
	if (io_write(s->io, s->out.data, s->out.len) == -1)
		return -1;
	s->bytes_out += s->out.len;
	buf_reset(&s->out);
	return 0;
}

static void
ev_expunged(void *arg, size_t seq)
{
	struct session	*s = arg;

	if (seq <= s->exists_sent) {
		buf_printf(&s->out, "* %zu EXPUNGE\r\n", seq);
		s->exists_sent--;
	}
	s->cache_uid = 0;
	out_maybe_flush(s);
}

static void
ev_flags(void *arg, size_t seq)
{
	struct session	*s = arg;
	struct mmsg	*m;

	if (seq > s->exists_sent || seq > s->mb.n)
		return;
	m = &s->mb.msgs[seq - 1];
	buf_printf(&s->out, "* %zu FETCH (UID %u FLAGS ", seq, m->uid);
	flags_format(&s->out, &s->mb, m->flags, m->kw, m->recent);
	buf_adds(&s->out, ")\r\n");
	out_maybe_flush(s);
}

static void
send_exists(struct session *s)
{
	size_t	recent = 0, i;

	if (s->mb.n == s->exists_sent)
		return;
	for (i = 0; i < s->mb.n; i++)
		recent += s->mb.msgs[i].recent;
	buf_printf(&s->out, "* %zu EXISTS\r\n* %zu RECENT\r\n", s->mb.n, recent);
	s->exists_sent = s->mb.n;
}

void
session_untagged_updates(struct session *s, int allow_expunge)
{
	struct mbox_events	ev = { ev_expunged, ev_flags, s };

	if (!s->selected || !allow_expunge)
		return;
	if (mbox_sync(&s->mb, &ev) == -1) {
		if (errno == ESTALE) {
			/* The folder was made anew: our UIDs mean nothing. */
			buf_adds(&s->out, "* BYE [UIDVALIDITY] The mailbox was "
			    "recreated\r\n");
			s->state = S_LOGOUT;
			return;
		}
		log_warn("%s: sync", s->mb.path);
	}
	send_exists(s);
}

int
session_reply(struct session *s, const char *status, const char *fmt, ...)
{
	va_list	ap;

	if (buf_printf(&s->out, "%s %s ", s->tag, status) == -1)
		return -1;
	va_start(ap, fmt);
	buf_vprintf(&s->out, fmt, ap);
	va_end(ap);
	buf_adds(&s->out, "\r\n");
	return session_flush(s);
}

static int
is_space_line_end(const char *line, long n)
{
	return n > 0 && line[n - 1] == ' ';
}

/*
 * Reads one command with its literals into s->cmd and parses it into
 * s->args. 0 parsed; 1 answered already (BAD or NO) and the session goes
 * on; -1 the connection is over (EOF, timeout, write error).
 */
/*
 * The timeout of a continuation line or literal read. Before login the
 * whole command, literals included, must arrive within idle_timeout of
 * its start: a client dribbling a literal byte by byte cannot hold a
 * pre-login connection (slowloris). After login, CONT_TIMEOUT per read.
 */
static int
cont_timeout(const struct session *s, const struct timespec *start)
{
	struct timespec	 now;
	long long	 left;

	if (s->state != S_NOTAUTH)
		return CONT_TIMEOUT;
	clock_gettime(CLOCK_MONOTONIC, &now);
	left = (long long)s->cfg->idle_timeout * 1000 -
	    ((long long)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000);
	return left > 0 ? (int)left : 0;
}

int
session_read_command(struct session *s, char *err, size_t errlen)
{
	char		*line = NULL;
	long		 n;
	uint64_t	 lit, budget, maxlit;
	int		 nonsync, first = 1, crlf, rc = -1;
	int		 timeout = (int)s->cfg->idle_timeout * 1000;
	struct timespec	 start;
	size_t		 got;
	long		 r;

	(void)is_space_line_end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	budget = s->state == S_NOTAUTH ? PREAUTH_LITERALS : s->cfg->max_literals;
	maxlit = s->state == S_NOTAUTH ? PREAUTH_LITERALS : s->cfg->max_append;
	buf_reset(&s->cmd);
	imap_args_free(&s->args);
	s->tag[0] = '\0';
	if ((line = malloc(s->cfg->max_line + 1)) == NULL)
		return -1;
	for (;;) {
		n = io_getline(s->io, line, s->cfg->max_line + 1,
		    first ? timeout : cont_timeout(s, &start), &crlf);
		if (n == -1) {
			if (errno == EMSGSIZE) {
				io_printf(s->io, "%s BAD Line too long\r\n",
				    s->tag[0] ? s->tag : "*");
				io_flush(s->io, 10000);
				rc = 1;
				goto out;
			}
			if (errno == ETIMEDOUT) {
				io_puts(s->io, "* BYE Autologout; idle for too long\r\n");
				io_flush(s->io, 1000);
			}
			goto out;
		}
		if (first) {
			size_t tl = strcspn(line, " ");

			if (n == 0) {
				/* Empty line: ignore, like other servers. */
				continue;
			}
			if (tl >= sizeof(s->tag) || tl == 0)
				tl = 1;
			memcpy(s->tag, line, tl);
			s->tag[tl] = '\0';
			if (strpbrk(s->tag, "(){%\"\\+") != NULL ||
			    (unsigned char)s->tag[0] < 0x21)
				str_lcpy(s->tag, "*", sizeof(s->tag));
		}
		first = 0;
		if (s->cmd.len + (size_t)n > s->cfg->max_line * 4 + budget) {
			io_printf(s->io, "%s BAD Command too long\r\n", s->tag);
			io_flush(s->io, 10000);
			rc = 1;
			goto out;
		}
		if (buf_add(&s->cmd, line, (size_t)n) == -1)
			goto nomem;
		switch (imap_literal_marker(line, (size_t)n, &lit, &nonsync)) {
		case 0:
			goto parse;
		case -1:
			io_printf(s->io, "%s BAD Invalid literal\r\n", s->tag);
			io_flush(s->io, 10000);
			rc = 1;
			goto out;
		}
		if (lit > maxlit || lit > budget) {
			if (nonsync) {
				/* The client sends it anyway: we cannot find
				 * the next command in it. */
				io_printf(s->io, "* BYE [TOOBIG] Literal too large\r\n");
				io_flush(s->io, 1000);
				goto out;
			}
			io_printf(s->io, "%s NO [TOOBIG] Literal too large\r\n",
			    s->tag);
			io_flush(s->io, 10000);
			rc = 1;
			goto out;
		}
		budget -= lit;
		if (!nonsync) {
			if (io_puts(s->io, "+ OK\r\n") == -1 ||
			    io_flush(s->io, CONT_TIMEOUT) == -1)
				goto out;
		}
		if (buf_adds(&s->cmd, "\r\n") == -1 ||
		    buf_reserve(&s->cmd, (size_t)lit + 1) == -1)
			goto nomem;
		for (got = 0; got < (size_t)lit; got += (size_t)r)
			if ((r = io_read_some(s->io, s->cmd.data + s->cmd.len +
			    got, (size_t)lit - got, cont_timeout(s, &start))) <= 0)
				goto out;
		s->cmd.len += (size_t)lit;
		s->cmd.data[s->cmd.len] = '\0';
	}
parse:
	if (imap_parse(s->cmd.data, s->cmd.len, s->cfg->max_depth, &s->args,
	    err, errlen) == -1 || s->args.n < 2 ||
	    s->args.v[0].type != IMAP_ATOM || s->args.v[1].type != IMAP_ATOM) {
		if (s->args.n >= 1 && s->args.n < 2 && err[0] == '\0')
			str_lcpy(err, "missing command", errlen);
		io_printf(s->io, "%s BAD Error in IMAP command: %s\r\n", s->tag,
		    err[0] ? err : "syntax");
		io_flush(s->io, 10000);
		rc = 1;
		goto out;
	}
	rc = 0;
	goto out;
nomem:
	io_printf(s->io, "%s NO [LIMIT] Out of memory\r\n", s->tag);
	io_flush(s->io, 10000);
	rc = 1;
out:
	free(line);
	return rc;
}

/* ---- message sets ---------------------------------------------------- */

int
session_msgset(struct session *s, const char *set, int uid, size_t **idx_r,
    size_t *n_r)
{
	struct imap_seqset	 ss;
	struct mailbox		*mb = &s->mb;
	size_t			 n = s->exists_sent < mb->n ? s->exists_sent : mb->n;
	size_t			 i, cnt = 0, *idx;
	unsigned char		*bits;

	*idx_r = NULL;
	*n_r = 0;
	if (strcmp(set, "$") == 0 || imap_seqset_parse(set, 100000, &ss) == -1)
		return -1;
	if ((bits = calloc(n / 8 + 1, 1)) == NULL) {
		imap_seqset_free(&ss);
		return -1;
	}
	if (uid) {
		imap_seqset_resolve(&ss, n > 0 ? mb->msgs[n - 1].uid : 0);
		for (size_t r = 0; r < ss.n; r++) {
			for (i = mbox_uid_lower_bound(mb, ss.r[r].lo);
			    i < n && mb->msgs[i].uid <= ss.r[r].hi; i++)
				bits[i / 8] |= (unsigned char)(1 << (i % 8));
		}
		/* "N:*" always matches the last message (RFC 3501 6.4.8). */
		if (n > 0)
			for (size_t r = 0; r < ss.n; r++)
				if (ss.r[r].lo > mb->msgs[n - 1].uid &&
				    strchr(set, '*') != NULL)
					bits[(n - 1) / 8] |= (unsigned char)(1 << ((n - 1) % 8));
	} else {
		imap_seqset_resolve(&ss, (uint32_t)n);
		for (size_t r = 0; r < ss.n; r++) {
			if (ss.r[r].hi > n || ss.r[r].lo == 0) {
				imap_seqset_free(&ss);
				free(bits);
				return -1;
			}
			for (i = ss.r[r].lo - 1; i < ss.r[r].hi; i++)
				bits[i / 8] |= (unsigned char)(1 << (i % 8));
		}
	}
	imap_seqset_free(&ss);
	for (i = 0; i < n; i++)
		if (bits[i / 8] & (1 << (i % 8)))
			cnt++;
	if ((idx = calloc(cnt + 1, sizeof(*idx))) == NULL) {
		free(bits);
		return -1;
	}
	cnt = 0;
	for (i = 0; i < n; i++)
		if (bits[i / 8] & (1 << (i % 8)))
			idx[cnt++] = i;
	free(bits);
	*idx_r = idx;
	*n_r = cnt;
	return 0;
}

/* ---- commands ---------------------------------------------------------- */

static const struct imap_arg *
arg(struct session *s, size_t i)
{
	return i < s->args.n ? &s->args.v[i] : NULL;
}

static const char *
astr(struct session *s, size_t i)
{
	const struct imap_arg *a = arg(s, i);

	return imap_arg_is_string(a) ? a->str : NULL;
}

static void
deselect(struct session *s)
{
	if (s->selected)
		mbox_close(&s->mb);
	s->selected = 0;
	s->state = S_AUTH;
	s->exists_sent = 0;
	s->cache_uid = 0;
}

static int
cmd_select(struct session *s, size_t argi, int readonly)
{
	const char	*name = astr(s, argi);
	char		 err[256];
	size_t		 i, recent = 0, unseen = 0;
	struct mailbox	*mb = &s->mb;

	if (name == NULL)
		return session_reply(s, "BAD", "Missing mailbox name");
	if (s->selected)
		buf_adds(&s->out, "* OK [CLOSED] Previous mailbox closed\r\n");
	deselect(s);
	if (mbox_open(mb, s->root, name, readonly, 1, err, sizeof(err)) == -1)
		return session_reply(s, "NO", "%s", err);
	s->selected = 1;
	s->state = S_SELECTED;
	for (i = 0; i < mb->n; i++) {
		recent += mb->msgs[i].recent;
		if (unseen == 0 && !(mb->msgs[i].flags & F_SEEN))
			unseen = i + 1;
	}
	buf_adds(&s->out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (i = 0; i < mb->nkeywords; i++)
		if (mb->keywords[i] != NULL)
			buf_printf(&s->out, " %s", mb->keywords[i]);
	buf_adds(&s->out, ")\r\n* OK [PERMANENTFLAGS (\\Answered \\Flagged "
	    "\\Deleted \\Seen \\Draft");
	for (i = 0; i < mb->nkeywords; i++)
		if (mb->keywords[i] != NULL)
			buf_printf(&s->out, " %s", mb->keywords[i]);
	buf_printf(&s->out, "%s)] Flags permitted.\r\n",
	    mb->nkeywords < MAX_KEYWORDS ? " \\*" : "");
	buf_printf(&s->out, "* %zu EXISTS\r\n* %zu RECENT\r\n", mb->n, recent);
	s->exists_sent = mb->n;
	if (unseen)
		buf_printf(&s->out, "* OK [UNSEEN %zu] First unseen.\r\n", unseen);
	buf_printf(&s->out, "* OK [UIDVALIDITY %u] UIDs valid\r\n"
	    "* OK [UIDNEXT %u] Predicted next UID\r\n", mb->uidvalidity,
	    mb->uidnext);
	return session_reply(s, "OK", "[%s] %s completed", readonly ?
	    "READ-ONLY" : "READ-WRITE", readonly ? "EXAMINE" : "SELECT");
}

static int
cmd_expunge(struct session *s, size_t argi, int uid)
{
	struct mbox_events	 ev = { ev_expunged, ev_flags, s };
	struct imap_seqset	 set;
	int			 rc;

	if (s->mb.readonly)
		return session_reply(s, "NO", "[READ-ONLY] Mailbox is read-only");
	if (uid) {
		const char *ss = astr(s, argi);

		if (ss == NULL || imap_seqset_parse(ss, 100000, &set) == -1)
			return session_reply(s, "BAD", "Invalid UID set");
		imap_seqset_resolve(&set, s->mb.n ? s->mb.msgs[s->mb.n - 1].uid : 0);
	}
	/* Learn about others' changes first so sequence numbers agree. */
	session_untagged_updates(s, 1);
	rc = mbox_expunge(&s->mb, uid ? &set : NULL, &ev);
	if (uid)
		imap_seqset_free(&set);
	s->n_expunged++;
	if (rc == -1)
		return session_reply(s, "NO", "Some messages could not be expunged");
	return session_reply(s, "OK", "Expunge completed");
}

/* Parses a flag list into system flags and keyword names (kept in a buf
 * as NUL-separated names). 0, or -1 on a bad flag. */
int parse_flag_list(const struct imap_arg *a, uint8_t *flags, struct buf *kws);

int
parse_flag_list(const struct imap_arg *a, uint8_t *flags, struct buf *kws)
{
	const struct imap_arg	*v;
	size_t			 n, i;

	*flags = 0;
	if (a->type == IMAP_LIST) {
		v = a->list;
		n = a->nlist;
	} else {
		v = a;
		n = 1;
	}
	for (i = 0; i < n; i++) {
		const char *f = v[i].str;

		if (v[i].type != IMAP_ATOM)
			return -1;
		if (f[0] == '\\') {
			if (strcasecmp(f, "\\Seen") == 0)
				*flags |= F_SEEN;
			else if (strcasecmp(f, "\\Answered") == 0)
				*flags |= F_ANSWERED;
			else if (strcasecmp(f, "\\Flagged") == 0)
				*flags |= F_FLAGGED;
			else if (strcasecmp(f, "\\Deleted") == 0)
				*flags |= F_DELETED;
			else if (strcasecmp(f, "\\Draft") == 0)
				*flags |= F_DRAFT;
			else if (strcasecmp(f, "\\Recent") == 0)
				continue;
			else
				return -1;
			continue;
		}
		if (strpbrk(f, "[]") != NULL || strlen(f) > 100)
			return -1;
		if (kws != NULL && buf_add(kws, f, strlen(f) + 1) == -1)
			return -1;
	}
	return 0;
}

/* Letters of the keyword names for the folder at path (created there). */
static int
keyword_letters(const char *path, struct mailbox *selected, const char *names,
    size_t len, char *out, size_t outlen)
{
	struct mailbox	 tmp, *mb = selected;
	size_t		 o = 0, off;
	int		 rc = 0;

	out[0] = '\0';
	if (len == 0)
		return 0;
	if (mb == NULL || strcmp(mb->path, path) != 0) {
		memset(&tmp, 0, sizeof(tmp));
		str_lcpy(tmp.path, path, sizeof(tmp.path));
		tmp.inotify = -1;
		mb = &tmp;
	}
	for (off = 0; off < len; off += strlen(names + off) + 1) {
		int k = mbox_keyword(mb, names + off, 1);

		if (k < 0 || o + 2 > outlen)
			continue;
		if (strchr(out, 'a' + k) == NULL) {
			out[o++] = (char)('a' + k);
			out[o] = '\0';
		}
	}
	if (mb == &tmp)
		for (size_t i = 0; i < MAX_KEYWORDS; i++)
			free(tmp.keywords[i]);
	/* Maildir wants the letters sorted. */
	for (size_t i = 0; o > 1 && i < o; i++)
		for (size_t j = i + 1; j < o; j++)
			if (out[j] < out[i]) {
				char c = out[i];

				out[i] = out[j];
				out[j] = c;
			}
	return rc;
}

static int
cmd_append(struct session *s, size_t argi)
{
	const char		*name = astr(s, argi);
	const struct imap_arg	*a, *lit;
	char			 path[4200], err[256], kwl[32];
	uint8_t			 flags = 0;
	time_t			 when = 0;
	struct buf		 kws;
	uint32_t		 uidv = 0, uid = 0;
	struct stat		 st;
	size_t			 i = argi + 1;

	if (name == NULL)
		return session_reply(s, "BAD", "Missing mailbox name");
	buf_init(&kws, 4096);
	if ((a = arg(s, i)) != NULL && a->type == IMAP_LIST) {
		if (parse_flag_list(a, &flags, &kws) == -1) {
			buf_free(&kws);
			return session_reply(s, "BAD", "Invalid flags");
		}
		i++;
	}
	if ((a = arg(s, i)) != NULL && a->type == IMAP_STRING &&
	    arg(s, i + 1) != NULL) {
		if (imap_parse_datetime(a->str, &when) == -1) {
			buf_free(&kws);
			return session_reply(s, "BAD", "Invalid date-time");
		}
		i++;
	}
	lit = arg(s, i);
	if (lit == NULL || !imap_arg_is_string(lit) || arg(s, i + 1) != NULL) {
		buf_free(&kws);
		return session_reply(s, "BAD", "Missing message literal");
	}
	if (mbox_path(s->root, name, path, sizeof(path)) == -1) {
		buf_free(&kws);
		return session_reply(s, "NO", "Invalid mailbox name");
	}
	if (stat(path, &st) == -1) {
		buf_free(&kws);
		return session_reply(s, "NO", "[TRYCREATE] Mailbox does not exist");
	}
	keyword_letters(path, s->selected ? &s->mb : NULL, kws.data ? kws.data : "",
	    kws.len, kwl, sizeof(kwl));
	buf_free(&kws);
	if (mbox_append(path, lit->str, lit->len, flags, kwl, when, &uidv, &uid,
	    NULL,	    err, sizeof(err)) == -1) {
		log_warnx("%s: append: %s", path, err);
		return session_reply(s, "NO", "[SERVERBUG] Cannot save the message");
	}
	s->n_appended++;
	session_untagged_updates(s, 1);
	if (uid == 0)
		return session_reply(s, "OK", "APPEND completed");
	return session_reply(s, "OK", "[APPENDUID %u %u] APPEND completed", uidv,
	    uid);
}

static int
cmd_copy(struct session *s, size_t argi, int move)
{
	const char	*set = astr(s, argi), *name = astr(s, argi + 1);
	char		 path[4200], err[256], kwl[32];
	size_t		*idx = NULL, n, i;
	uint32_t	*src = NULL, *dst = NULL, uidv = 0;
	struct buf	 data, kws, resp, done;
	struct stat	 st;
	int		 failed = 0;

	if (set == NULL || name == NULL)
		return session_reply(s, "BAD", "Missing arguments");
	if (move && s->mb.readonly)
		return session_reply(s, "NO", "[READ-ONLY] Mailbox is read-only");
	if (mbox_path(s->root, name, path, sizeof(path)) == -1)
		return session_reply(s, "NO", "Invalid mailbox name");
	if (stat(path, &st) == -1)
		return session_reply(s, "NO", "[TRYCREATE] Mailbox does not exist");
	if (session_msgset(s, set, s->uid, &idx, &n) == -1)
		return session_reply(s, "BAD", "Invalid message set");
	if (n == 0) {
		free(idx);
		return session_reply(s, "OK", "%s completed", move ? "MOVE" : "COPY");
	}
	src = calloc(n, sizeof(*src));
	dst = calloc(n, sizeof(*dst));
	buf_init(&data, 0);
	buf_init(&kws, 0);
	buf_init(&resp, 0);
	buf_init(&done, 0);
	if (src == NULL || dst == NULL) {
		failed = 1;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct mmsg *m = &s->mb.msgs[idx[i]];

		buf_reset(&kws);
		for (int k = 0; k < MAX_KEYWORDS; k++)
			if ((m->kw & (1u << k)) && (size_t)k < s->mb.nkeywords &&
			    s->mb.keywords[k] != NULL)
				buf_add(&kws, s->mb.keywords[k],
				    strlen(s->mb.keywords[k]) + 1);
		keyword_letters(path, &s->mb, kws.data ? kws.data : "", kws.len,
		    kwl, sizeof(kwl));
		if (mbox_read(&s->mb, m, 0, &data) == -1 ||
		    mbox_append(path, data.data, data.len,
		    m->flags & (F_SEEN | F_ANSWERED | F_FLAGGED | F_DELETED | F_DRAFT),
		    kwl, mbox_msg_time(&s->mb, m), &uidv, &dst[i], &done, err,
		    sizeof(err)) == -1) {
			failed = 1;
			break;
		}
		src[i] = m->uid;
	}
	if (failed) {
		/* RFC 3501 6.4.7: the target is left as it was. */
		for (size_t off = 0; off < done.len; off += strlen(done.data + off) + 1) {
			char p[4400];

			if (str_fmt(p, sizeof(p), "%s/cur/%s", path, done.data + off) == 0)
				unlink(p);
		}
		goto out;
	}
	if (imap_seqset_format(&resp, src, n) == -1)
		goto out;
	buf_adds(&resp, " ");
	{
		int have_all = 1;

		for (i = 0; i < n; i++)
			if (dst[i] == 0)
				have_all = 0;
		if (have_all)
			imap_seqset_format(&resp, dst, n);
		else
			buf_reset(&resp);
	}
	if (move) {
		struct mbox_events ev = { ev_expunged, ev_flags, s };

		if (resp.len > 0)
			buf_printf(&s->out, "* OK [COPYUID %u %s] Moved\r\n", uidv,
			    resp.data);
		for (i = 0; i < n; i++) {
			size_t k = idx[i];
			uint8_t fl = s->mb.msgs[k].flags | F_DELETED;

			mbox_set_flags(&s->mb, k, fl, s->mb.msgs[k].kw);
		}
		{
			struct imap_seqset us;

			us.r = calloc(n, sizeof(*us.r));
			us.n = n;
			if (us.r != NULL) {
				for (i = 0; i < n; i++)
					us.r[i].lo = us.r[i].hi = src[i];
				mbox_expunge(&s->mb, &us, &ev);
				free(us.r);
			}
		}
	}
out:
	free(idx);
	free(src);
	free(dst);
	buf_free(&data);
	buf_free(&kws);
	buf_free(&done);
	if (failed) {
		buf_free(&resp);
		return session_reply(s, "NO", "[SERVERBUG] %s failed", move ?
		    "MOVE" : "COPY");
	}
	if (resp.len > 0 && !move) {
		session_reply(s, "OK", "[COPYUID %u %s] COPY completed", uidv,
		    resp.data);
	} else
		session_reply(s, "OK", "%s completed", move ? "MOVE" : "COPY");
	buf_free(&resp);
	return 0;
}

static int
watch(struct session *s)
{
	char	d[4200];

	if (!s->selected || s->mb.inotify != -1)
		return 0;
	if ((s->mb.inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) == -1)
		return -1;
	if (str_fmt(d, sizeof(d), "%s/new", s->mb.path) == 0)
		inotify_add_watch(s->mb.inotify, d, IN_CREATE | IN_MOVED_TO |
		    IN_MOVED_FROM | IN_DELETE);
	if (str_fmt(d, sizeof(d), "%s/cur", s->mb.path) == 0)
		inotify_add_watch(s->mb.inotify, d, IN_CREATE | IN_MOVED_TO |
		    IN_MOVED_FROM | IN_DELETE);
	return 0;
}

static int
cmd_idle(struct session *s)
{
	char		 line[64], drain[4096];
	struct pollfd	 pfd[2];
	time_t		 start = time(NULL), last = start;
	long		 n;

	watch(s);
	session_untagged_updates(s, 1);
	buf_adds(&s->out, "+ idling\r\n");
	if (session_flush(s) == -1)
		return -1;
	for (;;) {
		int npfd = 1, wait_s;
		time_t now = time(NULL);

		if (io_pending(s->io) == 0) {
			pfd[0].fd = io_fd(s->io);
			pfd[0].events = POLLIN;
			if (s->selected && s->mb.inotify != -1) {
				pfd[1].fd = s->mb.inotify;
				pfd[1].events = POLLIN;
				npfd = 2;
			}
			wait_s = (int)(last + KEEPALIVE - now);
			if (start + s->cfg->idle_timeout - now < wait_s)
				wait_s = (int)(start + s->cfg->idle_timeout - now);
			if (wait_s < 0)
				wait_s = 0;
			pfd[0].revents = pfd[1].revents = 0;
			if (poll(pfd, (nfds_t)npfd, wait_s * 1000) == -1 &&
			    errno != EINTR)
				return -1;
			now = time(NULL);
			if (now - start >= s->cfg->idle_timeout) {
				io_puts(s->io, "* BYE Autologout; idle for too long\r\n");
				io_flush(s->io, 1000);
				return -1;
			}
			if (npfd == 2 && (pfd[1].revents & POLLIN)) {
				while (read(s->mb.inotify, drain, sizeof(drain)) > 0)
					;
				session_untagged_updates(s, 1);
				if (session_flush(s) == -1)
					return -1;
			}
			if (now - last >= KEEPALIVE) {
				buf_adds(&s->out, "* OK Still here\r\n");
				if (session_flush(s) == -1)
					return -1;
				last = now;
			}
			if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		n = io_getline(s->io, line, sizeof(line), CONT_TIMEOUT, NULL);
		if (n == -1 && errno != EMSGSIZE)
			return -1;
		if (n >= 0 && strcasecmp(line, "DONE") == 0)
			return session_reply(s, "OK", "Idle completed");
		return session_reply(s, "BAD", "Expected DONE");
	}
}

static int
cmd_id(struct session *s)
{
	buf_adds(&s->out, "* ID (\"name\" \"courriel imapd\")\r\n");
	return session_reply(s, "OK", "ID completed");
}

static int
cmd_enable(struct session *s)
{
	buf_adds(&s->out, "* ENABLED\r\n");
	return session_reply(s, "OK", "ENABLE completed");
}

/* Commands common to every state. 1 handled, 0 not one of them, -1 end. */
int	session_any_state(struct session *, const char *cmd);

int
session_any_state(struct session *s, const char *cmd)
{
	if (strcasecmp(cmd, "CAPABILITY") == 0) {
		buf_printf(&s->out, "* CAPABILITY %s\r\n", session_capability(s));
		return session_reply(s, "OK", "Capability completed") == -1 ? -1 : 1;
	}
	if (strcasecmp(cmd, "NOOP") == 0) {
		session_untagged_updates(s, 1);
		return session_reply(s, "OK", "NOOP completed") == -1 ? -1 : 1;
	}
	if (strcasecmp(cmd, "LOGOUT") == 0) {
		buf_adds(&s->out, "* BYE Logging out\r\n");
		session_reply(s, "OK", "Logout completed");
		s->state = S_LOGOUT;
		return -1;
	}
	if (strcasecmp(cmd, "ID") == 0)
		return cmd_id(s) == -1 ? -1 : 1;
	return 0;
}

/*
 * The selected-state commands that also have a UID form (RFC 3501 6.4.8,
 * RFC 4315, RFC 6851): one list for both, s->uid telling them apart.
 */
static int
message_cmd(struct session *s, const char *cmd, size_t a, const char *unknown)
{
	if (strcasecmp(cmd, "FETCH") == 0)
		return cmd_fetch(s, a);
	if (strcasecmp(cmd, "STORE") == 0)
		return cmd_store(s, a);
	if (strcasecmp(cmd, "SEARCH") == 0)
		return cmd_search(s, a);
	if (strcasecmp(cmd, "COPY") == 0)
		return cmd_copy(s, a, 0);
	if (strcasecmp(cmd, "MOVE") == 0)
		return cmd_copy(s, a, 1);
	if (strcasecmp(cmd, "EXPUNGE") == 0)
		return cmd_expunge(s, a, s->uid);
	return session_reply(s, "BAD", "%s", unknown);
}

static int
dispatch(struct session *s)
{
	const char	*cmd = s->args.v[1].str;
	size_t		 a = 2;
	int		 r;

	s->uid = 0;
	if ((r = session_any_state(s, cmd)) != 0)
		return r == -1 ? -1 : 0;
	if (strcasecmp(cmd, "UID") == 0) {
		if (s->args.n < 3 || s->args.v[2].type != IMAP_ATOM)
			return session_reply(s, "BAD", "Missing UID command");
		s->uid = 1;
		cmd = s->args.v[2].str;
		a = 3;
		if (!s->selected)
			return session_reply(s, "BAD", "No mailbox selected");
		return message_cmd(s, cmd, a, "Unknown UID command");
	}
	if (strcasecmp(cmd, "SELECT") == 0)
		return cmd_select(s, a, 0);
	if (strcasecmp(cmd, "EXAMINE") == 0)
		return cmd_select(s, a, 1);
	if (strcasecmp(cmd, "CREATE") == 0)
		return cmd_create(s, a);
	if (strcasecmp(cmd, "DELETE") == 0)
		return cmd_delete(s, a);
	if (strcasecmp(cmd, "RENAME") == 0)
		return cmd_rename(s, a);
	if (strcasecmp(cmd, "SUBSCRIBE") == 0)
		return cmd_subscribe(s, a, 1);
	if (strcasecmp(cmd, "UNSUBSCRIBE") == 0)
		return cmd_subscribe(s, a, 0);
	if (strcasecmp(cmd, "LIST") == 0)
		return cmd_list(s, a, 0);
	if (strcasecmp(cmd, "LSUB") == 0)
		return cmd_list(s, a, 1);
	if (strcasecmp(cmd, "STATUS") == 0)
		return cmd_status(s, a);
	if (strcasecmp(cmd, "APPEND") == 0)
		return cmd_append(s, a);
	if (strcasecmp(cmd, "IDLE") == 0)
		return cmd_idle(s);
	if (strcasecmp(cmd, "NAMESPACE") == 0) {
		buf_adds(&s->out, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
		return session_reply(s, "OK", "NAMESPACE completed");
	}
	if (strcasecmp(cmd, "ENABLE") == 0)
		return cmd_enable(s);
	if (strcasecmp(cmd, "STARTTLS") == 0 || strcasecmp(cmd, "LOGIN") == 0 ||
	    strcasecmp(cmd, "AUTHENTICATE") == 0)
		return session_reply(s, "BAD", "Already authenticated");
	if (!s->selected) {
		if (strcasecmp(cmd, "CHECK") == 0 || strcasecmp(cmd, "CLOSE") == 0 ||
		    strcasecmp(cmd, "EXPUNGE") == 0 || strcasecmp(cmd, "FETCH") == 0 ||
		    strcasecmp(cmd, "STORE") == 0 || strcasecmp(cmd, "SEARCH") == 0 ||
		    strcasecmp(cmd, "COPY") == 0 || strcasecmp(cmd, "MOVE") == 0 ||
		    strcasecmp(cmd, "UNSELECT") == 0)
			return session_reply(s, "BAD", "No mailbox selected");
		return session_reply(s, "BAD", "Unknown command");
	}
	if (strcasecmp(cmd, "CHECK") == 0) {
		session_untagged_updates(s, 1);
		return session_reply(s, "OK", "CHECK completed");
	}
	if (strcasecmp(cmd, "CLOSE") == 0) {
		if (!s->mb.readonly)
			mbox_expunge(&s->mb, NULL, NULL);
		deselect(s);
		return session_reply(s, "OK", "CLOSE completed");
	}
	if (strcasecmp(cmd, "UNSELECT") == 0) {
		deselect(s);
		return session_reply(s, "OK", "UNSELECT completed");
	}
	return message_cmd(s, cmd, a, "Unknown command");
}

/* Runs the authenticated session until LOGOUT or the end of input. */
int
session_run(struct session *s)
{
	char	err[128];
	int	r;

	s->state = S_AUTH;
	for (;;) {
		if ((r = session_read_command(s, err, sizeof(err))) == -1)
			break;
		if (r == 1)
			continue;
		if (dispatch(s) == -1)
			break;
		if (s->state == S_LOGOUT) {
			session_flush(s);
			break;
		}
	}
	log_info("logout user=%s fetched=%lu expunged=%lu appended=%lu bytes=%llu",
	    s->user, s->n_fetch, s->n_expunged, s->n_appended,
	    (unsigned long long)s->bytes_out);
	deselect(s);
	imap_args_free(&s->args);
	buf_free(&s->cmd);
	buf_free(&s->out);
	buf_free(&s->cache);
	return 0;
}
