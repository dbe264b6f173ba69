/*
 * search.c -- SEARCH with every key of RFC 3501 6.4.4. Header keys match
 * the unfolded field with RFC 2047 words decoded; BODY and TEXT match
 * the decoded (base64, quoted-printable) text of the parts. Matching is
 * a case-insensitive substring test (ASCII, and Latin-1 capitals when the
 * key has non-ASCII letters). A message is
 * read only when a key needs its text, and only as far as needed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base64.h"
#include "buf.h"
#include "imap.h"
#include "imapd.h"
#include "log.h"
#include "mime.h"
#include "msg.h"

enum skind {
	K_ALL, K_AND, K_OR, K_NOT, K_SEQ, K_UID, K_FLAG, K_NOFLAG, K_KW, K_NOKW,
	K_NEW, K_OLD, K_RECENT, K_HEADER, K_BODY, K_TEXT, K_BEFORE, K_ON,
	K_SINCE, K_SBEFORE, K_SON, K_SSINCE, K_LARGER, K_SMALLER, K_NONE
};

struct skey {
	enum skind		 kind;
	struct skey		*sub;	/* AND: list; OR/NOT: operands */
	size_t			 nsub;
	const char		*hdr;	/* HEADER field name */
	const char		*str;	/* what to look for */
	time_t			 t;
	uint64_t		 n;
	uint8_t			 flag;
	int			 kw;
	struct imap_seqset	 set;
};

struct sctx {
	struct session		*s;
	const struct imap_arg	*v;
	size_t			 n, i;
	int			 depth;
};

static void
skey_free(struct skey *k)
{
	for (size_t i = 0; i < k->nsub; i++)
		skey_free(&k->sub[i]);
	free(k->sub);
	imap_seqset_free(&k->set);
}

static int parse_key(struct sctx *, struct skey *);

static const char *
next_str(struct sctx *c)
{
	if (c->i >= c->n || !imap_arg_is_string(&c->v[c->i]))
		return NULL;
	return c->v[c->i++].str;
}

static int
add_sub(struct skey *k, struct skey **out)
{
	struct skey	*ns = realloc(k->sub, (k->nsub + 1) * sizeof(*ns));

	if (ns == NULL)
		return -1;
	k->sub = ns;
	memset(&ns[k->nsub], 0, sizeof(ns[0]));
	*out = &ns[k->nsub++];
	return 0;
}

static const struct {
	const char	*name;
	enum skind	 kind;
	uint8_t		 flag;
} simple[] = {
	{ "ALL", K_ALL, 0 }, { "ANSWERED", K_FLAG, F_ANSWERED },
	{ "DELETED", K_FLAG, F_DELETED }, { "DRAFT", K_FLAG, F_DRAFT },
	{ "FLAGGED", K_FLAG, F_FLAGGED }, { "SEEN", K_FLAG, F_SEEN },
	{ "UNANSWERED", K_NOFLAG, F_ANSWERED }, { "UNDELETED", K_NOFLAG, F_DELETED },
	{ "UNDRAFT", K_NOFLAG, F_DRAFT }, { "UNFLAGGED", K_NOFLAG, F_FLAGGED },
	{ "UNSEEN", K_NOFLAG, F_SEEN }, { "NEW", K_NEW, 0 }, { "OLD", K_OLD, 0 },
	{ "RECENT", K_RECENT, 0 },
};

static const struct {
	const char	*name;
	const char	*field;
} hdrkeys[] = {
	{ "BCC", "Bcc" }, { "CC", "Cc" }, { "FROM", "From" },
	{ "SUBJECT", "Subject" }, { "TO", "To" },
};

static const struct {
	const char	*name;
	enum skind	 kind;
} datekeys[] = {
	{ "BEFORE", K_BEFORE }, { "ON", K_ON }, { "SINCE", K_SINCE },
	{ "SENTBEFORE", K_SBEFORE }, { "SENTON", K_SON }, { "SENTSINCE", K_SSINCE },
};

static int
parse_list(struct sctx *c, const struct imap_arg *v, size_t n, struct skey *k)
{
	struct sctx	sub = { c->s, v, n, 0, c->depth + 1 };

	if (sub.depth > 20)
		return -1;
	k->kind = K_AND;
	while (sub.i < sub.n) {
		struct skey *e;

		if (add_sub(k, &e) == -1 || parse_key(&sub, e) == -1)
			return -1;
	}
	return k->nsub > 0 ? 0 : -1;
}

static int
parse_key(struct sctx *c, struct skey *k)
{
	const struct imap_arg	*a;
	const char		*w, *x;
	size_t			 j;

	if (c->i >= c->n)
		return -1;
	a = &c->v[c->i++];
	if (a->type == IMAP_LIST)
		return parse_list(c, a->list, a->nlist, k);
	if (a->type != IMAP_ATOM)
		return -1;
	w = a->str;
	for (j = 0; j < sizeof(simple) / sizeof(simple[0]); j++)
		if (strcasecmp(w, simple[j].name) == 0) {
			k->kind = simple[j].kind;
			k->flag = simple[j].flag;
			return 0;
		}
	for (j = 0; j < sizeof(hdrkeys) / sizeof(hdrkeys[0]); j++)
		if (strcasecmp(w, hdrkeys[j].name) == 0) {
			k->kind = K_HEADER;
			k->hdr = hdrkeys[j].field;
			return (k->str = next_str(c)) ? 0 : -1;
		}
	for (j = 0; j < sizeof(datekeys) / sizeof(datekeys[0]); j++)
		if (strcasecmp(w, datekeys[j].name) == 0) {
			k->kind = datekeys[j].kind;
			if ((x = next_str(c)) == NULL || imap_parse_date(x, &k->t) == -1)
				return -1;
			return 0;
		}
	if (strcasecmp(w, "HEADER") == 0) {
		k->kind = K_HEADER;
		if ((k->hdr = next_str(c)) == NULL)
			return -1;
		return (k->str = next_str(c)) ? 0 : -1;
	}
	if (strcasecmp(w, "BODY") == 0 || strcasecmp(w, "TEXT") == 0) {
		k->kind = strcasecmp(w, "BODY") == 0 ? K_BODY : K_TEXT;
		return (k->str = next_str(c)) ? 0 : -1;
	}
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
		k->kind = toupper((unsigned char)w[0]) == 'K' ? K_KW : K_NOKW;
		if ((x = next_str(c)) == NULL)
			return -1;
		k->kw = c->s->selected ? mbox_keyword(&c->s->mb, x, 0) : -1;
		return 0;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0) {
		k->kind = toupper((unsigned char)w[0]) == 'L' ? K_LARGER : K_SMALLER;
		if ((x = next_str(c)) == NULL || imap_number64(x, &k->n) == -1)
			return -1;
		return 0;
	}
	if (strcasecmp(w, "NOT") == 0) {
		struct skey *e;

		k->kind = K_NOT;
		return add_sub(k, &e) == -1 ? -1 : parse_key(c, e);
	}
	if (strcasecmp(w, "OR") == 0) {
		struct skey *e;

		k->kind = K_OR;
		if (add_sub(k, &e) == -1 || parse_key(c, e) == -1)
			return -1;
		return add_sub(k, &e) == -1 ? -1 : parse_key(c, e);
	}
	if (strcasecmp(w, "UID") == 0) {
		k->kind = K_UID;
		if ((x = next_str(c)) == NULL || imap_seqset_parse(x, 100000, &k->set) == -1)
			return -1;
		imap_seqset_resolve(&k->set, c->s->mb.n ?
		    c->s->mb.msgs[c->s->mb.n - 1].uid : 0);
		return 0;
	}
	if (imap_seqset_parse(w, 100000, &k->set) == 0) {
		k->kind = K_SEQ;
		imap_seqset_resolve(&k->set, (uint32_t)c->s->mb.n);
		return 0;
	}
	return -1;
}

/* ---- evaluation ------------------------------------------------------ */

struct mctx {
	struct session	*s;
	struct mmsg	*m;
	size_t		 seq;
	int		 loaded;	/* 0 nothing, 1 header, 2 full */
	int		 failed;
	struct buf	*text;
	struct buf	*scratch;
};

/*
 * Folds the capitals of Latin-1 (and French Œ, Š, Ž) to small letters in
 * UTF-8 text, in place: both forms have the same length.
 */
static void
fold_latin(char *s, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		unsigned char a = (unsigned char)s[i], b = (unsigned char)s[i + 1];

		if (a == 0xc3 && b >= 0x80 && b <= 0x9e && b != 0x97)
			s[i + 1] = (char)(b + 0x20);
		else if (a == 0xc5 && (b == 0x92 || b == 0xa0 || b == 0xbd))
			s[i + 1] = (char)(b + 1);
	}
}

static int
scan_ci(const char *h, size_t hlen, const char *n, size_t nlen)
{
	size_t	i, j;

	if (nlen == 0)
		return 1;
	for (i = 0; i + nlen <= hlen; i++) {
		for (j = 0; j < nlen; j++)
			if (tolower((unsigned char)h[i + j]) !=
			    tolower((unsigned char)n[j]))
				break;
		if (j == nlen)
			return 1;
	}
	return 0;
}

/*
 * Case-insensitive substring: ASCII letters always, and accented Latin
 * letters when the key has any (then both sides are folded).
 */
static int
contains(const char *h, size_t hlen, const char *n)
{
	size_t	 nlen = strlen(n), i;
	char	*fh, *fn;
	int	 r;

	for (i = 0; i < nlen; i++)
		if ((unsigned char)n[i] >= 0x80)
			break;
	if (i == nlen)
		return scan_ci(h, hlen, n, nlen);
	if (nlen > hlen)
		return 0;
	fh = malloc(hlen + 1);
	fn = strdup(n);
	if (fh == NULL || fn == NULL) {
		free(fh);
		free(fn);
		return scan_ci(h, hlen, n, nlen);
	}
	memcpy(fh, h, hlen);
	fold_latin(fh, hlen);
	fold_latin(fn, nlen);
	r = scan_ci(fh, hlen, fn, nlen);
	free(fh);
	free(fn);
	return r;
}

static int
load(struct mctx *c, int level)
{
	if (c->loaded >= level)
		return 0;
	if ((level < 2 ? mbox_header(&c->s->mb, c->m, c->text) :
	    mbox_read(&c->s->mb, c->m, 0, c->text)) == -1) {
		c->failed = 1;
		return -1;
	}
	c->loaded = level;
	return 0;
}

static int
header_match(struct mctx *c, const char *field, const char *what)
{
	const char		*h;
	size_t			 hlen, pos = 0, flen = strlen(field);
	struct msg_field	 f;

	if (load(c, 1) == -1)
		return 0;
	h = c->text->data;
	hlen = msg_header_len(h, c->text->len);
	while (msg_field_next(h, hlen, &pos, &f) == 1) {
		if (f.namelen != flen || strncasecmp(f.name, field, flen) != 0)
			continue;
		if (*what == '\0')
			return 1;
		buf_reset(c->scratch);
		struct buf u;

		buf_init(&u, 0);
		msg_unfold(f.value, f.valuelen, &u);
		msg_decode_2047(u.data ? u.data : "", u.len, c->scratch);
		buf_free(&u);
		if (contains(c->scratch->data ? c->scratch->data : "",
		    c->scratch->len, what))
			return 1;
	}
	return 0;
}

static int
hexv(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = toupper(ch);
	return ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* Decodes a part body by its Content-Transfer-Encoding into out. */
static void
decode_body(const struct mime_part *p, const char *d, size_t len, struct buf *out)
{
	size_t	i;

	buf_reset(out);
	if (p->encoding != NULL && strcasecmp(p->encoding, "base64") == 0) {
		/* as before: past the buffer's maximum, the rest is not searched */
		(void)base64_decode_buf(out, d, len, BASE64_SKIP);
		return;
	}
	if (p->encoding != NULL && strcasecmp(p->encoding, "quoted-printable") == 0) {
		for (i = 0; i < len; i++) {
			if (d[i] == '=' && i + 2 < len && hexv((unsigned char)d[i + 1]) >= 0 &&
			    hexv((unsigned char)d[i + 2]) >= 0) {
				buf_addc(out, hexv((unsigned char)d[i + 1]) * 16 +
				    hexv((unsigned char)d[i + 2]));
				i += 2;
			} else if (d[i] == '=' && i + 1 < len && (d[i + 1] == '\r' ||
			    d[i + 1] == '\n')) {
				i++;
				if (d[i] == '\r' && i + 1 < len && d[i + 1] == '\n')
					i++;
			} else
				buf_addc(out, d[i]);
		}
		return;
	}
	buf_add(out, d, len);
}

static int
body_match_part(struct mctx *c, const struct mime_part *p, const char *what)
{
	if (p->nchild > 0) {
		for (size_t i = 0; i < p->nchild; i++) {
			const struct mime_part *ch = &p->child[i];

			/* message/rfc822: its header counts as text too. */
			if (strcmp(p->type, "message") == 0 &&
			    contains(c->text->data + ch->hdr_off, ch->hdr_len, what))
				return 1;
			if (body_match_part(c, ch, what))
				return 1;
		}
		return 0;
	}
	if (strcmp(p->type, "text") != 0 && strcmp(p->type, "message") != 0 &&
	    p->encoding != NULL && strcasecmp(p->encoding, "base64") == 0)
		return 0;	/* binary attachments are not text */
	decode_body(p, c->text->data + p->body_off, p->body_len, c->scratch);
	return contains(c->scratch->data ? c->scratch->data : "", c->scratch->len,
	    what);
}

static int
body_match(struct mctx *c, const char *what, int with_header)
{
	struct mime_part	*root;
	int			 r;

	if (load(c, 2) == -1)
		return 0;
	if (with_header && contains(c->text->data,
	    msg_header_len(c->text->data, c->text->len), what))
		return 1;
	if (mime_parse(c->text->data, c->text->len, 20, &root) == -1)
		return 0;
	r = body_match_part(c, root, what);
	mime_free(root);
	return r;
}

/* The day (UTC midnight) of the Date: field, disregarding its time zone. */
static int
sent_day(struct mctx *c, time_t *r)
{
	struct msg_field	 f;
	struct buf		 v;
	const char		*p;
	char			 d[64];
	int			 day, n = 0;
	char			 mon[4], yr[8];

	if (load(c, 1) == -1 || msg_field_find(c->text->data,
	    msg_header_len(c->text->data, c->text->len), "Date", &f) != 1)
		return -1;
	buf_init(&v, 0);
	msg_unfold(f.value, f.valuelen, &v);
	p = v.data ? v.data : "";
	if (strchr(p, ',') != NULL)
		p = strchr(p, ',') + 1;
	if (sscanf(p, " %d %3s %7s%n", &day, mon, yr, &n) < 3) {
		buf_free(&v);
		return -1;
	}
	buf_free(&v);
	if (strlen(yr) == 2)
		str_fmt(d, sizeof(d), "%d-%s-%s%s", day, mon,
		    atoi(yr) < 50 ? "20" : "19", yr);
	else
		str_fmt(d, sizeof(d), "%d-%s-%s", day, mon, yr);
	return imap_parse_date(d, r);
}

static time_t
day_of(time_t t)
{
	return t - (t % 86400 + 86400) % 86400;
}

static int
eval(struct mctx *c, const struct skey *k)
{
	struct mmsg	*m = c->m;
	time_t		 t;

	switch (k->kind) {
	case K_ALL:
		return 1;
	case K_NONE:
		return 0;
	case K_AND:
		for (size_t i = 0; i < k->nsub; i++)
			if (!eval(c, &k->sub[i]))
				return 0;
		return 1;
	case K_OR:
		return eval(c, &k->sub[0]) || eval(c, &k->sub[1]);
	case K_NOT:
		return !eval(c, &k->sub[0]);
	case K_SEQ:
		return imap_seqset_has(&k->set, (uint32_t)c->seq);
	case K_UID:
		return imap_seqset_has(&k->set, m->uid);
	case K_FLAG:
		return (m->flags & k->flag) != 0;
	case K_NOFLAG:
		return (m->flags & k->flag) == 0;
	case K_KW:
		return k->kw >= 0 && (m->kw & (1u << k->kw));
	case K_NOKW:
		return k->kw < 0 || !(m->kw & (1u << k->kw));
	case K_NEW:
		return m->recent && !(m->flags & F_SEEN);
	case K_OLD:
		return !m->recent;
	case K_RECENT:
		return m->recent;
	case K_HEADER:
		return header_match(c, k->hdr, k->str);
	case K_BODY:
		return body_match(c, k->str, 0);
	case K_TEXT:
		return body_match(c, k->str, 1);
	case K_LARGER:
		return mbox_msg_vsize(&c->s->mb, m) > k->n;
	case K_SMALLER:
		return mbox_msg_vsize(&c->s->mb, m) < k->n;
	case K_BEFORE:
	case K_ON:
	case K_SINCE:
		t = day_of(mbox_msg_time(&c->s->mb, m));
		return k->kind == K_BEFORE ? t < k->t : k->kind == K_ON ?
		    t == k->t : t >= k->t;
	case K_SBEFORE:
	case K_SON:
	case K_SSINCE:
		if (sent_day(c, &t) == -1)
			return 0;
		return k->kind == K_SBEFORE ? t < k->t : k->kind == K_SON ?
		    t == k->t : t >= k->t;
	}
	return 0;
}

int
cmd_search(struct session *s, size_t argi)
{
	struct sctx	 c = { s, s->args.v, s->args.n, argi, 0 };
	struct skey	 root;
	struct buf	 text, scratch;
	size_t		 i;
	int		 bad = 0;

	memset(&root, 0, sizeof(root));
	if (c.i < c.n && s->args.v[c.i].type == IMAP_ATOM &&
	    strcasecmp(s->args.v[c.i].str, "CHARSET") == 0) {
		const char *cs = c.i + 1 < c.n ? s->args.v[c.i + 1].str : NULL;

		if (cs == NULL)
			return session_reply(s, "BAD", "Missing charset");
		if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)
			return session_reply(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] "
			    "Unsupported charset");
		c.i += 2;
	}
	root.kind = K_AND;
	while (c.i < c.n) {
		struct skey *e;

		if (add_sub(&root, &e) == -1 || parse_key(&c, e) == -1) {
			bad = 1;
			break;
		}
	}
	if (bad || root.nsub == 0) {
		skey_free(&root);
		return session_reply(s, "BAD", "Invalid search key");
	}
	buf_init(&text, 0);
	buf_init(&scratch, 0);
	buf_adds(&s->out, "* SEARCH");
	for (i = 0; i < s->mb.n && i < s->exists_sent; i++) {
		struct mctx mc = { s, &s->mb.msgs[i], i + 1, 0, 0, &text, &scratch };

		if (eval(&mc, &root))
			buf_printf(&s->out, " %u", s->uid ? s->mb.msgs[i].uid :
			    (unsigned)(i + 1));
		if (s->out.len > 65536 && session_flush(s) == -1)
			break;
	}
	buf_adds(&s->out, "\r\n");
	mbox_cache_flush(&s->mb);
	s->cache_uid = 0;
	buf_free(&text);
	buf_free(&scratch);
	skey_free(&root);
	return session_reply(s, "OK", "Search completed");
}
