/*
 * fetch.c -- FETCH (every item of RFC 3501 6.4.5, ENVELOPE and
 * BODYSTRUCTURE from a real MIME parse, sections and partials) and
 * STORE. Message text is served in its CRLF form, so every size and
 * offset a client sees is a wire size: RFC822.SIZE equals the length of
 * BODY[] byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "imap.h"
#include "imapd.h"
#include "io.h"
#include "log.h"
#include "mime.h"
#include "msg.h"

enum fkind {
	FI_UID, FI_FLAGS, FI_INTERNALDATE, FI_SIZE, FI_ENVELOPE,
	FI_BODYSTRUCTURE, FI_BODY, FI_SECTION
};

enum fspec { SP_ALL, SP_HEADER, SP_FIELDS, SP_FIELDS_NOT, SP_MIME, SP_TEXT };

struct fitem {
	enum fkind	 kind;
	int		 peek;
	int		 rfc822;	/* 1 RFC822, 2 .HEADER, 3 .TEXT */
	unsigned	 part[32];
	size_t		 npart;
	enum fspec	 spec;
	char		*fields;	/* NUL-separated names */
	size_t		 fieldslen;
	char		 echo[256];	/* section as the response names it */
	int		 partial;
	uint64_t	 off, len;
};

struct fetchreq {
	struct fitem	*v;
	size_t		 n, cap;
	int		 need_header, need_full, need_mime, sets_seen;
};

static void
req_free(struct fetchreq *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->v[i].fields);
	free(r->v);
}

static struct fitem *
req_add(struct fetchreq *r, enum fkind k)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 8;
		struct fitem *nv = reallocarray(r->v, nc, sizeof(*nv));

		if (nv == NULL)
			return NULL;
		r->v = nv;
		r->cap = nc;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	r->v[r->n].kind = k;
	return &r->v[r->n++];
}

/* Parses "[section]<o.n>" after BODY or BODY.PEEK. 0 or -1. */
static int
parse_section(struct fitem *it, const char *s)
{
	const char	*end = strchr(s, ']'), *p = s;
	char		 sec[200];
	size_t		 slen;

	if (end == NULL || (slen = (size_t)(end - s)) >= sizeof(sec))
		return -1;
	memcpy(sec, s, slen);
	sec[slen] = '\0';
	while (*p >= '0' && *p <= '9') {
		unsigned long v = strtoul(p, (char **)&p, 10);

		if (v == 0 || v > 100000 || it->npart >= 32)
			return -1;
		it->part[it->npart++] = (unsigned)v;
		if (*p == '.')
			p++;
		else if (*p != ']')
			return -1;
	}
	if (*p == ']')
		it->spec = SP_ALL;
	else if (strncasecmp(p, "HEADER.FIELDS.NOT", 17) == 0 &&
	    (p[17] == ' ' || p[17] == '('))
		it->spec = SP_FIELDS_NOT, p += 17;
	else if (strncasecmp(p, "HEADER.FIELDS", 13) == 0 &&
	    (p[13] == ' ' || p[13] == '('))
		it->spec = SP_FIELDS, p += 13;
	else if (strncasecmp(p, "HEADER]", 7) == 0)
		it->spec = SP_HEADER, p += 6;
	else if (strncasecmp(p, "TEXT]", 5) == 0)
		it->spec = SP_TEXT, p += 4;
	else if (strncasecmp(p, "MIME]", 5) == 0 && it->npart > 0)
		it->spec = SP_MIME, p += 4;
	else
		return -1;
	if (it->spec == SP_FIELDS || it->spec == SP_FIELDS_NOT) {
		struct buf f;

		while (*p == ' ')
			p++;
		if (*p != '(')
			return -1;
		p++;
		buf_init(&f, 8192);
		while (*p != ')' && p < end) {
			size_t k;

			while (*p == ' ')
				p++;
			if (*p == '"')
				p++;
			k = strcspn(p, " )\"");
			if (k == 0)
				break;
			if (buf_add(&f, p, k) == -1 || buf_addc(&f, '\0') == -1) {
				buf_free(&f);
				return -1;
			}
			p += k;
			if (*p == '"')
				p++;
		}
		if (*p != ')' || f.len == 0) {
			buf_free(&f);
			return -1;
		}
		p++;
		it->fieldslen = f.len;
		it->fields = buf_release(&f);
	}
	if (p != end)
		return -1;
	/* The echo: section text with upper-case keywords. */
	str_fmt(it->echo, sizeof(it->echo), "BODY[%s]", sec);
	for (char *c = it->echo; *c != '\0' && *c != '('; c++)
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	p = end + 1;
	if (*p == '<') {
		uint64_t o, n;
		char num[32];
		const char *dot = strchr(p, '.'), *gt = strchr(p, '>');

		if (dot == NULL || gt == NULL || dot > gt || gt[1] != '\0' ||
		    (size_t)(dot - p - 1) >= sizeof(num) ||
		    (size_t)(gt - dot - 1) >= sizeof(num))
			return -1;
		memcpy(num, p + 1, (size_t)(dot - p - 1));
		num[dot - p - 1] = '\0';
		if (imap_number64(num, &o) == -1)
			return -1;
		memcpy(num, dot + 1, (size_t)(gt - dot - 1));
		num[gt - dot - 1] = '\0';
		if (imap_number64(num, &n) == -1 || n == 0)
			return -1;
		it->partial = 1;
		it->off = o;
		it->len = n;
		str_fmt(it->echo + strlen(it->echo), sizeof(it->echo) -
		    strlen(it->echo), "<%llu>", (unsigned long long)o);
	} else if (*p != '\0')
		return -1;
	return 0;
}

static int
parse_item(struct fetchreq *r, const char *s)
{
	struct fitem	*it;

	if (strcasecmp(s, "ALL") == 0 || strcasecmp(s, "FAST") == 0 ||
	    strcasecmp(s, "FULL") == 0) {
		if (req_add(r, FI_FLAGS) == NULL || req_add(r, FI_INTERNALDATE) == NULL ||
		    req_add(r, FI_SIZE) == NULL)
			return -1;
		if (strcasecmp(s, "FAST") != 0) {
			if (req_add(r, FI_ENVELOPE) == NULL)
				return -1;
			r->need_header = 1;
		}
		if (strcasecmp(s, "FULL") == 0) {
			if (req_add(r, FI_BODY) == NULL)
				return -1;
			r->need_full = r->need_mime = 1;
		}
		return 0;
	}
	if (strcasecmp(s, "UID") == 0)
		return req_add(r, FI_UID) ? 0 : -1;
	if (strcasecmp(s, "FLAGS") == 0)
		return req_add(r, FI_FLAGS) ? 0 : -1;
	if (strcasecmp(s, "INTERNALDATE") == 0)
		return req_add(r, FI_INTERNALDATE) ? 0 : -1;
	if (strcasecmp(s, "RFC822.SIZE") == 0)
		return req_add(r, FI_SIZE) ? 0 : -1;
	if (strcasecmp(s, "ENVELOPE") == 0) {
		r->need_header = 1;
		return req_add(r, FI_ENVELOPE) ? 0 : -1;
	}
	if (strcasecmp(s, "BODYSTRUCTURE") == 0 || strcasecmp(s, "BODY") == 0) {
		r->need_full = r->need_mime = 1;
		return req_add(r, strcasecmp(s, "BODY") == 0 ? FI_BODY :
		    FI_BODYSTRUCTURE) ? 0 : -1;
	}
	if (strcasecmp(s, "RFC822") == 0 || strcasecmp(s, "RFC822.HEADER") == 0 ||
	    strcasecmp(s, "RFC822.TEXT") == 0) {
		if ((it = req_add(r, FI_SECTION)) == NULL)
			return -1;
		if (strcasecmp(s, "RFC822") == 0) {
			it->rfc822 = 1;
			it->spec = SP_ALL;
			r->need_full = 1;
			r->sets_seen = 1;
		} else if (strcasecmp(s, "RFC822.HEADER") == 0) {
			it->rfc822 = 2;
			it->spec = SP_HEADER;
			it->peek = 1;
			r->need_header = 1;
		} else {
			it->rfc822 = 3;
			it->spec = SP_TEXT;
			r->need_full = 1;
			r->sets_seen = 1;
		}
		return 0;
	}
	if (strncasecmp(s, "BODY[", 5) == 0 || strncasecmp(s, "BODY.PEEK[", 10) == 0) {
		int peek = s[4] == '.';

		if ((it = req_add(r, FI_SECTION)) == NULL)
			return -1;
		it->peek = peek;
		if (parse_section(it, s + (peek ? 10 : 5)) == -1)
			return -1;
		if (!peek)
			r->sets_seen = 1;
		if (it->npart > 0 || it->spec == SP_ALL || it->spec == SP_TEXT ||
		    it->spec == SP_MIME)
			r->need_full = 1;
		else
			r->need_header = 1;
		if (it->npart > 0)
			r->need_mime = 1;
		return 0;
	}
	return -1;
}

/* ---- ENVELOPE and BODYSTRUCTURE ---------------------------------------- */

static int
nstring_field(struct buf *b, const char *h, size_t hlen, const char *name)
{
	struct msg_field	 f;
	struct buf		 v;
	int			 rc;

	if (msg_field_find(h, hlen, name, &f) != 1)
		return buf_adds(b, "NIL");
	buf_init(&v, 0);
	if (msg_unfold(f.value, f.valuelen, &v) == -1) {
		buf_free(&v);
		return -1;
	}
	rc = imap_quote(b, v.data ? v.data : "", v.len);
	buf_free(&v);
	return rc;
}

static int
nstr(struct buf *b, const char *s)
{
	return s == NULL ? buf_adds(b, "NIL") : imap_quote(b, s, strlen(s));
}

static int
addr_field(struct buf *b, const char *h, size_t hlen, const char *name,
    const char *fallback)
{
	struct msg_field	 f;
	struct msg_addr		*a;
	size_t			 n, i;

	if (msg_field_find(h, hlen, name, &f) != 1 &&
	    (fallback == NULL || msg_field_find(h, hlen, fallback, &f) != 1))
		return buf_adds(b, "NIL");
	if (msg_addr_parse(f.value, f.valuelen, 1000, &a, &n) == -1)
		return -1;
	if (n == 0) {
		msg_addr_free(a, n);
		return buf_adds(b, "NIL");
	}
	buf_addc(b, '(');
	for (i = 0; i < n; i++) {
		buf_addc(b, '(');
		if (a[i].group) {
			buf_adds(b, "NIL NIL ");
			nstr(b, a[i].mailbox);
			buf_adds(b, " NIL");
		} else {
			nstr(b, a[i].name);
			buf_addc(b, ' ');
			nstr(b, a[i].adl);
			buf_addc(b, ' ');
			nstr(b, a[i].mailbox);
			buf_addc(b, ' ');
			nstr(b, a[i].host);
		}
		buf_addc(b, ')');
	}
	msg_addr_free(a, n);
	return buf_addc(b, ')');
}

static int
envelope(struct buf *b, const char *h, size_t hlen)
{
	buf_addc(b, '(');
	nstring_field(b, h, hlen, "Date");
	buf_addc(b, ' ');
	nstring_field(b, h, hlen, "Subject");
	buf_addc(b, ' ');
	addr_field(b, h, hlen, "From", NULL);
	buf_addc(b, ' ');
	addr_field(b, h, hlen, "Sender", "From");
	buf_addc(b, ' ');
	addr_field(b, h, hlen, "Reply-To", "From");
	buf_addc(b, ' ');
	addr_field(b, h, hlen, "To", NULL);
	buf_addc(b, ' ');
	addr_field(b, h, hlen, "Cc", NULL);
	buf_addc(b, ' ');
	addr_field(b, h, hlen, "Bcc", NULL);
	buf_addc(b, ' ');
	nstring_field(b, h, hlen, "In-Reply-To");
	buf_addc(b, ' ');
	nstring_field(b, h, hlen, "Message-ID");
	return buf_addc(b, ')');
}

static int
params(struct buf *b, const struct mime_param *p, size_t n)
{
	if (n == 0)
		return buf_adds(b, "NIL");
	buf_addc(b, '(');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(b, ' ');
		nstr(b, p[i].name);
		buf_addc(b, ' ');
		nstr(b, p[i].value);
	}
	return buf_addc(b, ')');
}

static int
disposition(struct buf *b, const struct mime_part *p)
{
	if (p->disposition == NULL)
		return buf_adds(b, "NIL");
	buf_addc(b, '(');
	nstr(b, p->disposition);
	buf_addc(b, ' ');
	params(b, p->dparams, p->ndparams);
	return buf_addc(b, ')');
}

/*
 * The extension data that multipart and single parts both end with
 * (RFC 3501 7.4.2): body-fld-dsp, body-fld-lang, body-fld-loc.
 */
static void
dsp_lang_loc(struct buf *b, const struct mime_part *p)
{
	buf_addc(b, ' ');
	disposition(b, p);
	buf_addc(b, ' ');
	nstr(b, p->language);
	buf_addc(b, ' ');
	nstr(b, p->location);
}

static int
bodystructure(struct buf *b, const char *m, const struct mime_part *p, int ext)
{
	if (strcmp(p->type, "multipart") == 0) {
		buf_addc(b, '(');
		if (p->nchild == 0) {
			/* A multipart without parts: show an empty text part. */
			buf_adds(b, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") "
			    "NIL NIL \"7bit\" 0 0)");
		}
		for (size_t i = 0; i < p->nchild; i++)
			bodystructure(b, m, &p->child[i], ext);
		buf_addc(b, ' ');
		nstr(b, p->subtype);
		if (ext) {
			buf_addc(b, ' ');
			params(b, p->params, p->nparams);
			dsp_lang_loc(b, p);
		}
		return buf_addc(b, ')');
	}
	buf_addc(b, '(');
	nstr(b, p->type);
	buf_addc(b, ' ');
	nstr(b, p->subtype);
	buf_addc(b, ' ');
	params(b, p->params, p->nparams);
	buf_addc(b, ' ');
	nstr(b, p->id);
	buf_addc(b, ' ');
	nstr(b, p->description);
	buf_addc(b, ' ');
	nstr(b, p->encoding ? p->encoding : "7bit");
	buf_printf(b, " %zu", p->body_len);
	if (strcmp(p->type, "text") == 0)
		buf_printf(b, " %zu", p->lines);
	else if (strcmp(p->type, "message") == 0 && strcmp(p->subtype, "rfc822") == 0 &&
	    p->nchild == 1) {
		const struct mime_part *c = &p->child[0];

		buf_addc(b, ' ');
		envelope(b, m + c->hdr_off, c->hdr_len);
		buf_addc(b, ' ');
		bodystructure(b, m, c, ext);
		buf_printf(b, " %zu", p->lines);
	}
	if (ext) {
		buf_addc(b, ' ');
		nstr(b, p->md5);
		dsp_lang_loc(b, p);
	}
	return buf_addc(b, ')');
}

/* ---- sections -------------------------------------------------------- */

static int
field_listed(const struct fitem *it, const char *name, size_t len)
{
	for (size_t off = 0; off < it->fieldslen; off += strlen(it->fields + off) + 1)
		if (strlen(it->fields + off) == len &&
		    strncasecmp(it->fields + off, name, len) == 0)
			return 1;
	return 0;
}

/*
 * Finds the bytes of a section (data and len), or builds the text
 * (HEADER.FIELDS) into tmp. 0, or 1 when the section does not exist
 * (an empty string is sent).
 */
static int
section_bytes(const struct fitem *it, const char *m, size_t mlen,
    struct mime_part *root, struct buf *tmp, const char **data, size_t *len)
{
	const struct mime_part	*cur = root;
	size_t			 hoff, hlen, boff, blen, i;

	*data = m;
	*len = 0;
	if (it->npart > 0) {
		if (root == NULL)
			return 1;
		for (i = 0; i < it->npart; i++) {
			unsigned k = it->part[i];

			if (i > 0 && strcmp(cur->type, "message") == 0 &&
			    strcmp(cur->subtype, "rfc822") == 0) {
				if (cur->nchild != 1)
					return 1;
				cur = &cur->child[0];
			}
			if (strcmp(cur->type, "multipart") == 0) {
				if (k > cur->nchild)
					return 1;
				cur = &cur->child[k - 1];
			} else if (k != 1)
				return 1;
		}
	}
	if (it->npart == 0) {
		hoff = 0;
		hlen = msg_header_len(m, mlen);
		boff = hlen;
		blen = mlen - hlen;
		if (it->spec == SP_ALL) {
			*data = m;
			*len = mlen;
			return 0;
		}
	} else if (it->spec == SP_ALL || it->spec == SP_MIME) {
		if (it->spec == SP_MIME) {
			*data = m + cur->hdr_off;
			*len = cur->hdr_len;
		} else {
			*data = m + cur->body_off;
			*len = cur->body_len;
		}
		return 0;
	} else {
		/* HEADER, TEXT of a message/rfc822 part. */
		if (strcmp(cur->type, "message") != 0 ||
		    strcmp(cur->subtype, "rfc822") != 0 || cur->nchild != 1)
			return 1;
		cur = &cur->child[0];
		hoff = cur->hdr_off;
		hlen = cur->hdr_len;
		boff = cur->body_off;
		blen = cur->body_len;
	}
	switch (it->spec) {
	case SP_HEADER:
		*data = m + hoff;
		*len = hlen;
		return 0;
	case SP_TEXT:
		*data = m + boff;
		*len = blen;
		return 0;
	case SP_FIELDS:
	case SP_FIELDS_NOT: {
		struct msg_field f;
		size_t pos = 0;

		buf_reset(tmp);
		while (msg_field_next(m + hoff, hlen, &pos, &f) == 1) {
			int listed = f.namelen > 0 && field_listed(it, f.name,
			    f.namelen);

			if (listed == (it->spec == SP_FIELDS) &&
			    buf_add(tmp, f.start, f.len) == -1)
				return -1;
		}
		if (buf_adds(tmp, "\r\n") == -1)
			return -1;
		*data = tmp->data;
		*len = tmp->len;
		return 0;
	}
	default:
		return 1;
	}
}

/*
 * A literal may not hold NUL (RFC 3501 9, CHAR8), yet a stored message
 * can (RFC 5322 obs-body, and SMTP takes it): each NUL goes out as 0x80,
 * as Dovecot does, so sizes stay the same.
 */
static int
literal(struct session *s, const char *d, size_t len)
{
	const char	*nul, *end = d + len;
	size_t		 at;

	if (buf_printf(&s->out, "{%zu}\r\n", len) == -1)
		return -1;
	if (len > 65536) {
		/* Large bodies go straight out, not through the buffer. */
		if (io_write(s->io, s->out.data, s->out.len) == -1)
			return -1;
		s->bytes_out += s->out.len + len;
		buf_reset(&s->out);
		for (; (nul = memchr(d, '\0', (size_t)(end - d))) != NULL;
		    d = nul + 1)
			if (io_write(s->io, d, (size_t)(nul - d)) == -1 ||
			    io_write(s->io, "\x80", 1) == -1)
				return -1;
		return io_write(s->io, d, (size_t)(end - d));
	}
	at = s->out.len;
	if (buf_add(&s->out, d, len) == -1)
		return -1;
	while ((nul = memchr(s->out.data + at, '\0', s->out.len - at)) != NULL) {
		at = (size_t)(nul - s->out.data);
		s->out.data[at] = (char)0x80;
	}
	return 0;
}

/* Appends a decimal number (the hot path of FETCH 1:* answers). */
static int
add_num(struct buf *b, uint64_t v)
{
	char	d[24];
	size_t	i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return buf_add(b, d + i, sizeof(d) - i);
}

static int
fetch_one(struct session *s, struct fetchreq *r, size_t idx, struct buf *tmp,
    struct mime_part **mime_r)
{
	struct mailbox	*mb = &s->mb;
	struct mmsg	*m = &mb->msgs[idx];
	const char	*sep = "";
	int		 flags_sent = 0, seen_now = 0;
	size_t		 i;

	if ((r->need_full || r->need_header) && !(s->cache_uid == m->uid &&
	    (s->cache_full || !r->need_full))) {
		s->cache_uid = 0;
		mime_free(*mime_r);
		*mime_r = NULL;
		if ((r->need_full ? mbox_read(mb, m, 0, &s->cache) :
		    mbox_header(mb, m, &s->cache)) == -1) {
			if (errno == ENOENT)
				return 1;	/* expunged by another */
			return -1;
		}
		s->cache_uid = m->uid;
		s->cache_full = r->need_full;
		if (r->need_full && m->vsize == UINT64_MAX)
			m->vsize = s->cache.len;
	}
	if (r->need_mime && *mime_r == NULL &&
	    mime_parse(s->cache.data, s->cache.len, 20, mime_r) == -1)
		return -1;
	if (r->sets_seen && !mb->readonly && !(m->flags & F_SEEN)) {
		if (mbox_set_flags(mb, idx, m->flags | F_SEEN, m->kw) == 0)
			seen_now = 1;
	}
	buf_adds(&s->out, "* ");
	add_num(&s->out, idx + 1);
	buf_adds(&s->out, " FETCH (");
	if (s->uid) {
		buf_adds(&s->out, "UID ");
		add_num(&s->out, m->uid);
		sep = " ";
	}
	for (i = 0; i < r->n; i++) {
		struct fitem *it = &r->v[i];

		switch (it->kind) {
		case FI_UID:
			if (s->uid)
				continue;
			buf_adds(&s->out, sep);
			buf_adds(&s->out, "UID ");
			add_num(&s->out, m->uid);
			break;
		case FI_FLAGS:
			if (flags_sent)
				continue;
			buf_adds(&s->out, sep);
			buf_adds(&s->out, "FLAGS ");
			flags_format(&s->out, mb, m->flags, m->kw, m->recent);
			flags_sent = 1;
			break;
		case FI_INTERNALDATE: {
			char d[64];

			imap_format_datetime(mbox_msg_time(mb, m), d, sizeof(d));
			buf_printf(&s->out, "%sINTERNALDATE %s", sep, d);
			break;
		}
		case FI_SIZE:
			buf_adds(&s->out, sep);
			buf_adds(&s->out, "RFC822.SIZE ");
			add_num(&s->out, mbox_msg_vsize(mb, m));
			break;
		case FI_ENVELOPE:
			buf_printf(&s->out, "%sENVELOPE ", sep);
			envelope(&s->out, s->cache.data, msg_header_len(s->cache.data,
			    s->cache.len));
			break;
		case FI_BODY:
		case FI_BODYSTRUCTURE:
			buf_printf(&s->out, "%s%s ", sep, it->kind == FI_BODY ?
			    "BODY" : "BODYSTRUCTURE");
			bodystructure(&s->out, s->cache.data, *mime_r,
			    it->kind == FI_BODYSTRUCTURE);
			break;
		case FI_SECTION: {
			const char *d;
			size_t len;
			int rr = section_bytes(it, s->cache.data, s->cache.len,
			    *mime_r, tmp, &d, &len);

			if (rr == -1)
				return -1;
			if (it->partial) {
				if (it->off >= len) {
					len = 0;
				} else {
					d += it->off;
					len -= (size_t)it->off;
					if (len > it->len)
						len = (size_t)it->len;
				}
			}
			if (it->rfc822)
				buf_printf(&s->out, "%s%s ", sep, it->rfc822 == 1 ?
				    "RFC822" : it->rfc822 == 2 ? "RFC822.HEADER" :
				    "RFC822.TEXT");
			else
				buf_printf(&s->out, "%s%s ", sep, it->echo);
			if (literal(s, d, len) == -1)
				return -1;
			break;
		}
		}
		sep = " ";
	}
	if (seen_now && !flags_sent) {
		buf_printf(&s->out, "%sFLAGS ", sep);
		flags_format(&s->out, mb, m->flags, m->kw, m->recent);
	}
	buf_adds(&s->out, ")\r\n");
	if (s->out.len > 65536) {
		if (io_write(s->io, s->out.data, s->out.len) == -1)
			return -1;
		s->bytes_out += s->out.len;
		buf_reset(&s->out);
	}
	return 0;
}

int
cmd_fetch(struct session *s, size_t argi)
{
	const struct imap_arg	*set = argi < s->args.n ? &s->args.v[argi] : NULL;
	const struct imap_arg	*items = argi + 1 < s->args.n ? &s->args.v[argi + 1] : NULL;
	struct fetchreq		 r;
	struct mime_part	*mime = NULL;
	struct buf		 tmp;
	size_t			*idx = NULL, n, i;
	int			 rc = 0;

	if (set == NULL || items == NULL || set->type != IMAP_ATOM ||
	    argi + 2 != s->args.n)
		return session_reply(s, "BAD", "Missing or extra arguments");
	memset(&r, 0, sizeof(r));
	if (items->type == IMAP_LIST) {
		for (i = 0; i < items->nlist; i++)
			if (items->list[i].type != IMAP_ATOM ||
			    parse_item(&r, items->list[i].str) == -1) {
				req_free(&r);
				return session_reply(s, "BAD", "Invalid fetch item");
			}
	} else if (items->type != IMAP_ATOM || parse_item(&r, items->str) == -1) {
		req_free(&r);
		return session_reply(s, "BAD", "Invalid fetch item");
	}
	if (session_msgset(s, set->str, s->uid, &idx, &n) == -1) {
		req_free(&r);
		return session_reply(s, "BAD", "Invalid message set");
	}
	buf_init(&tmp, 0);
	/* A cached header-only copy must not serve a full fetch. */
	for (i = 0; i < n && rc == 0; i++) {
		rc = fetch_one(s, &r, idx[i], &tmp, &mime);
		if (rc == 1)
			rc = 0;
		/* The MIME tree belongs to the cached message only. */
		mime_free(mime);
		mime = NULL;
	}
	s->n_fetch += n;
	mbox_cache_flush(&s->mb);
	buf_free(&tmp);
	free(idx);
	req_free(&r);
	if (rc == -1) {
		log_warn("%s: fetch", s->mb.path);
		return session_reply(s, "NO", "[SERVERBUG] Fetch failed");
	}
	/* Messages may have been expunged meanwhile: flags only, no EXPUNGE. */
	return session_reply(s, "OK", "Fetch completed");
}

int	parse_flag_list(const struct imap_arg *, uint8_t *, struct buf *);

int
cmd_store(struct session *s, size_t argi)
{
	const struct imap_arg	*set = argi < s->args.n ? &s->args.v[argi] : NULL;
	const struct imap_arg	*item = argi + 1 < s->args.n ? &s->args.v[argi + 1] : NULL;
	struct imap_arg		 flist;
	struct buf		 kws;
	uint8_t			 fl;
	uint32_t		 kw = 0;
	size_t			*idx = NULL, n, i, off;
	int			 op, silent = 0, failed = 0;
	const char		*it;

	if (set == NULL || item == NULL || argi + 2 >= s->args.n ||
	    item->type != IMAP_ATOM)
		return session_reply(s, "BAD", "Missing arguments");
	if (s->mb.readonly)
		return session_reply(s, "NO", "[READ-ONLY] Mailbox is read-only");
	it = item->str;
	op = *it == '+' ? 1 : *it == '-' ? -1 : 0;
	if (op != 0)
		it++;
	if (strcasecmp(it, "FLAGS.SILENT") == 0)
		silent = 1;
	else if (strcasecmp(it, "FLAGS") != 0)
		return session_reply(s, "BAD", "Invalid STORE item");
	memset(&flist, 0, sizeof(flist));
	if (argi + 3 == s->args.n && s->args.v[argi + 2].type == IMAP_LIST)
		flist = s->args.v[argi + 2];
	else {
		flist.type = IMAP_LIST;
		flist.list = &s->args.v[argi + 2];
		flist.nlist = s->args.n - argi - 2;
	}
	buf_init(&kws, 65536);
	if (parse_flag_list(&flist, &fl, &kws) == -1) {
		buf_free(&kws);
		return session_reply(s, "BAD", "Invalid flags");
	}
	for (off = 0; off < kws.len; off += strlen(kws.data + off) + 1) {
		int k = mbox_keyword(&s->mb, kws.data + off, op >= 0);

		if (k >= 0)
			kw |= 1u << k;
		else if (op >= 0) {
			buf_free(&kws);
			return session_reply(s, "NO", "[LIMIT] Too many keywords");
		}
	}
	buf_free(&kws);
	if (session_msgset(s, set->str, s->uid, &idx, &n) == -1)
		return session_reply(s, "BAD", "Invalid message set");
	for (i = 0; i < n; i++) {
		struct mmsg *m = &s->mb.msgs[idx[i]];
		uint8_t nf = op > 0 ? m->flags | fl : op < 0 ? m->flags & ~fl : fl;
		uint32_t nk = op > 0 ? m->kw | kw : op < 0 ? m->kw & ~kw : kw;

		if (mbox_set_flags(&s->mb, idx[i], nf, nk) == -1) {
			if (errno != ENOENT)
				failed = 1;
			continue;
		}
		if (!silent) {
			buf_printf(&s->out, "* %zu FETCH (", idx[i] + 1);
			if (s->uid)
				buf_printf(&s->out, "UID %u ", m->uid);
			buf_adds(&s->out, "FLAGS ");
			flags_format(&s->out, &s->mb, m->flags, m->kw, m->recent);
			buf_adds(&s->out, ")\r\n");
			if (s->out.len > 65536 && session_flush(s) == -1) {
				free(idx);
				return -1;
			}
		}
	}
	free(idx);
	if (failed)
		return session_reply(s, "NO", "Some flags could not be stored");
	return session_reply(s, "OK", "Store completed");
}
