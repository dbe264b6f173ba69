/*
 * msg -- RFC 5322 header fields, address lists and RFC 2047 (see msg.h).
 */
#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "buf.h"
#include "msg.h"

size_t
msg_header_len(const char *m, size_t len)
{
	size_t	i = 0;

	/* An empty first line: no header at all. */
	if (len >= 1 && m[0] == '\n')
		return 1;
	if (len >= 2 && m[0] == '\r' && m[1] == '\n')
		return 2;
	for (;;) {
		const char *nl = memchr(m + i, '\n', len - i);

		if (nl == NULL)
			return len;
		i = (size_t)(nl - m) + 1;
		if (i < len && m[i] == '\n')
			return i + 1;
		if (i + 1 < len && m[i] == '\r' && m[i + 1] == '\n')
			return i + 2;
		if (i >= len)
			return len;
	}
}

int
msg_field_next(const char *h, size_t len, size_t *pos, struct msg_field *f)
{
	size_t		 i = *pos, end;
	const char	*colon, *nl;

	if (i >= len)
		return 0;
	/* The empty line that ends the header is not a field. */
	if (h[i] == '\n' || (h[i] == '\r' && i + 1 < len && h[i + 1] == '\n'))
		return 0;
	end = i;
	for (;;) {
		nl = memchr(h + end, '\n', len - end);
		if (nl == NULL) {
			end = len;
			break;
		}
		end = (size_t)(nl - h) + 1;
		if (end >= len || (h[end] != ' ' && h[end] != '\t'))
			break;
	}
	f->start = h + i;
	f->len = end - i;
	colon = memchr(h + i, ':', end - i);
	nl = memchr(h + i, '\n', end - i);
	if (colon == NULL || (nl != NULL && colon > nl)) {
		f->name = h + i;
		f->namelen = 0;
		f->value = h + i;
		f->valuelen = end - i;
	} else {
		f->name = h + i;
		f->namelen = (size_t)(colon - (h + i));
		while (f->namelen > 0 && (f->name[f->namelen - 1] == ' ' ||
		    f->name[f->namelen - 1] == '\t'))
			f->namelen--;
		f->value = colon + 1;
		f->valuelen = (size_t)(h + end - f->value);
	}
	*pos = end;
	return 1;
}

int
msg_field_find(const char *h, size_t len, const char *name, struct msg_field *f)
{
	size_t	pos = 0, nlen = strlen(name);

	while (msg_field_next(h, len, &pos, f) == 1)
		if (f->namelen == nlen && strncasecmp(f->name, name, nlen) == 0)
			return 1;
	return 0;
}

int
msg_unfold(const char *v, size_t len, struct buf *out)
{
	size_t	i, start = out->len;

	while (len > 0 && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) {
		v++;
		len--;
	}
	for (i = 0; i < len; i++) {
		if (v[i] == '\r' || v[i] == '\n')
			continue;
		if (buf_addc(out, v[i]) == -1)
			return -1;
	}
	while (out->len > start && (out->data[out->len - 1] == ' ' ||
	    out->data[out->len - 1] == '\t'))
		out->len--;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return 0;
}

/* Address list tokens. */
enum tok { T_END, T_WORD, T_QUOTED, T_SPECIAL };

struct lexer {
	const char	*p, *end;
	enum tok	 type;
	const char	*s;		/* token text (words, quoted content) */
	size_t		 len;
	int		 c;		/* special character */
};

static void
skip_cfws(struct lexer *lx)
{
	int	depth;

	for (;;) {
		while (lx->p < lx->end && isspace((unsigned char)*lx->p))
			lx->p++;
		if (lx->p >= lx->end || *lx->p != '(')
			return;
		depth = 0;
		while (lx->p < lx->end) {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			else if (*lx->p == '(')
				depth++;
			else if (*lx->p == ')' && --depth == 0) {
				lx->p++;
				break;
			}
			lx->p++;
		}
	}
}

static void
lex(struct lexer *lx)
{
	skip_cfws(lx);
	if (lx->p >= lx->end) {
		lx->type = T_END;
		return;
	}
	if (strchr("<>,;:@\"[]", *lx->p) == NULL || *lx->p == '\0') {
		lx->s = lx->p;
		while (lx->p < lx->end && !isspace((unsigned char)*lx->p) &&
		    strchr("<>,;:@\"()[]", *lx->p) == NULL)
			lx->p++;
		if (lx->p == lx->s)	/* a stray ')' or NUL */
			lx->p++;
		lx->len = (size_t)(lx->p - lx->s);
		lx->type = T_WORD;
		return;
	}
	if (*lx->p == '"') {
		lx->s = ++lx->p;
		while (lx->p < lx->end && *lx->p != '"') {
			if (*lx->p == '\\' && lx->p + 1 < lx->end)
				lx->p++;
			lx->p++;
		}
		lx->len = (size_t)(lx->p - lx->s);
		if (lx->p < lx->end)
			lx->p++;
		lx->type = T_QUOTED;
		return;
	}
	if (*lx->p == '[') {
		/* Domain literal: one word with its brackets. */
		lx->s = lx->p;
		while (lx->p < lx->end && *lx->p != ']')
			lx->p++;
		if (lx->p < lx->end)
			lx->p++;
		lx->len = (size_t)(lx->p - lx->s);
		lx->type = T_WORD;
		return;
	}
	lx->c = *lx->p++;
	lx->type = T_SPECIAL;
}

/* Appends a token's text: quoted content unescaped. */
static int
add_tok(struct buf *b, const struct lexer *lx, int space)
{
	size_t	i;

	if (space && b->len > 0 && buf_addc(b, ' ') == -1)
		return -1;
	if (lx->type != T_QUOTED)
		return buf_add(b, lx->s, lx->len);
	for (i = 0; i < lx->len; i++) {
		if (lx->s[i] == '\\' && i + 1 < lx->len)
			i++;
		if (lx->s[i] == '\r' || lx->s[i] == '\n')
			continue;
		if (buf_addc(b, lx->s[i]) == -1)
			return -1;
	}
	return 0;
}

static char *
dup_buf(struct buf *b)
{
	if (b->len == 0)
		return NULL;
	return strndup(b->data, b->len);
}

static int
push_addr(struct msg_addr **v, size_t *n, size_t *cap, size_t max,
    struct msg_addr *a)
{
	struct msg_addr	*nv;

	if (*n >= max) {
		free(a->name);
		free(a->adl);
		free(a->mailbox);
		free(a->host);
		return 0;
	}
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;

		if ((nv = reallocarray(*v, ncap, sizeof(*nv))) == NULL)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *a;
	return 0;
}

/* Splits "local@domain" (already joined) into a. */
static int
set_addr_spec(struct msg_addr *a, struct buf *spec)
{
	char	*at;

	if (spec->len == 0)
		return 0;
	at = memrchr(spec->data, '@', spec->len);
	if (at == NULL) {
		a->mailbox = strndup(spec->data, spec->len);
		return a->mailbox == NULL ? -1 : 0;
	}
	a->mailbox = strndup(spec->data, (size_t)(at - spec->data));
	a->host = strdup(at + 1);
	return a->mailbox == NULL || a->host == NULL ? -1 : 0;
}

int
msg_addr_parse(const char *v, size_t len, size_t max, struct msg_addr **r,
    size_t *n_r)
{
	struct lexer	 lx;
	struct buf	 phrase, spec, route;
	struct msg_addr	*list = NULL, a;
	size_t		 n = 0, cap = 0;
	int		 in_group = 0, rc = -1;

	buf_init(&phrase, 0);
	buf_init(&spec, 0);
	buf_init(&route, 0);
	lx.p = v;
	lx.end = v + len;
	lex(&lx);
	while (lx.type != T_END) {
		memset(&a, 0, sizeof(a));
		buf_reset(&phrase);
		buf_reset(&spec);
		buf_reset(&route);
		/* Words up to a special that tells what they were. */
		while (lx.type == T_WORD || lx.type == T_QUOTED ||
		    (lx.type == T_SPECIAL && (lx.c == '@' || lx.c == '>' ||
		    (lx.c == ':' && in_group)))) {
			if (lx.type == T_SPECIAL) {
				if (lx.c == '@' && buf_addc(&spec, '@') == -1)
					goto out;
			} else {
				if (add_tok(&phrase, &lx, 1) == -1 ||
				    add_tok(&spec, &lx, 0) == -1)
					goto out;
			}
			lex(&lx);
		}
		if (lx.type == T_SPECIAL && lx.c == ':') {
			a.group = 1;
			a.mailbox = phrase.len ? dup_buf(&phrase) : strdup("");
			if (a.mailbox == NULL ||
			    push_addr(&list, &n, &cap, max, &a) == -1)
				goto out;
			in_group = 1;
			lex(&lx);
			continue;
		}
		if (lx.type == T_SPECIAL && lx.c == '<') {
			a.name = dup_buf(&phrase);
			buf_reset(&spec);
			lex(&lx);
			/* Optional route: @a,@b: */
			while (lx.type == T_SPECIAL && (lx.c == '@' || lx.c == ',')) {
				if (buf_addc(&route, lx.c) == -1)
					goto out;
				lex(&lx);
				if (lx.type == T_WORD) {
					if (add_tok(&route, &lx, 0) == -1)
						goto out;
					lex(&lx);
				}
			}
			if (lx.type == T_SPECIAL && lx.c == ':' && route.len > 0) {
				a.adl = dup_buf(&route);
				lex(&lx);
			} else if (route.len > 0 && buf_add(&spec, route.data,
			    route.len) == -1)
				goto out;
			while (lx.type != T_END && !(lx.type == T_SPECIAL &&
			    lx.c == '>')) {
				if (lx.type == T_SPECIAL) {
					if (buf_addc(&spec, lx.c) == -1)
						goto out;
				} else if (add_tok(&spec, &lx, 0) == -1)
					goto out;
				lex(&lx);
			}
			if (lx.type != T_END)
				lex(&lx);
			if (set_addr_spec(&a, &spec) == -1)
				goto out;
			if (a.mailbox == NULL && (a.mailbox = strdup("")) == NULL)
				goto out;
			if (push_addr(&list, &n, &cap, max, &a) == -1)
				goto out;
			/* Skip junk up to the separator. */
			while (lx.type != T_END && !(lx.type == T_SPECIAL &&
			    (lx.c == ',' || lx.c == ';')))
				lex(&lx);
		} else if (spec.len > 0) {
			if (set_addr_spec(&a, &spec) == -1 ||
			    push_addr(&list, &n, &cap, max, &a) == -1)
				goto out;
		}
		if (lx.type == T_SPECIAL && lx.c == ';') {
			if (in_group) {
				memset(&a, 0, sizeof(a));
				a.group = 1;
				if (push_addr(&list, &n, &cap, max, &a) == -1)
					goto out;
				in_group = 0;
			}
			lex(&lx);
		} else if (lx.type == T_SPECIAL) {
			/* ',' or a stray special: go on. */
			lex(&lx);
		}
	}
	if (in_group) {
		memset(&a, 0, sizeof(a));
		a.group = 1;
		if (push_addr(&list, &n, &cap, max, &a) == -1)
			goto out;
	}
	rc = 0;
out:
	buf_free(&phrase);
	buf_free(&spec);
	buf_free(&route);
	if (rc == -1) {
		msg_addr_free(list, n);
		list = NULL;
		n = 0;
	}
	*r = list;
	*n_r = n;
	return rc;
}

void
msg_addr_free(struct msg_addr *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].adl);
		free(v[i].mailbox);
		free(v[i].host);
	}
	free(v);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the text of one encoded word into raw bytes. -1 if malformed. */
static int
decode_word(int enc, const char *t, size_t len, struct buf *raw)
{
	size_t		i;
	int		v;

	if (enc != 'Q')
		return base64_decode_buf(raw, t, len, BASE64_LOOSE);
	for (i = 0; i < len; i++) {
		if (t[i] == '_')
			v = ' ';
		else if (t[i] == '=' && i + 2 < len + 0 &&
		    hexval(t[i + 1]) >= 0 && hexval(t[i + 2]) >= 0) {
			v = hexval(t[i + 1]) * 16 + hexval(t[i + 2]);
			i += 2;
		} else if (t[i] == '=')
			return -1;
		else
			v = (unsigned char)t[i];
		if (buf_addc(raw, v) == -1)
			return -1;
	}
	return 0;
}

/* Converts raw bytes in charset to UTF-8, appending to out. -1 if unknown. */
static int
to_utf8(const char *charset, struct buf *raw, struct buf *out)
{
	iconv_t	 cd;
	char	*in, *o, tmp[1024];
	size_t	 inleft, oleft;
	int	 rc = 0;

	if (strcasecmp(charset, "utf-8") == 0 || strcasecmp(charset, "us-ascii") == 0)
		return buf_add(out, raw->data ? raw->data : "", raw->len);
	if ((cd = iconv_open("UTF-8", charset)) == (iconv_t)-1)
		return -1;
	in = raw->data;
	inleft = raw->len;
	while (inleft > 0) {
		o = tmp;
		oleft = sizeof(tmp);
		if (iconv(cd, &in, &inleft, &o, &oleft) == (size_t)-1 &&
		    errno != E2BIG) {
			/* Skip one bad byte. */
			in++;
			inleft--;
		}
		if (buf_add(out, tmp, sizeof(tmp) - oleft) == -1) {
			rc = -1;
			break;
		}
	}
	iconv_close(cd);
	return rc;
}

int
msg_decode_2047(const char *s, size_t len, struct buf *out)
{
	size_t		 i = 0, pending_ws = 0, ws_start = 0;
	int		 last_encoded = 0;
	struct buf	 raw;

	buf_init(&raw, 0);
	while (i < len) {
		if (s[i] == '=' && i + 1 < len && s[i + 1] == '?') {
			/* =?charset?E?text?= */
			const char *cs = s + i + 2, *q1, *q2, *e;
			char charset[64];
			size_t cslen;
			int enc;

			q1 = memchr(cs, '?', len - (size_t)(cs - s));
			if (q1 == NULL || q1 + 3 >= s + len || q1[2] != '?')
				goto literal;
			enc = toupper((unsigned char)q1[1]);
			if (enc != 'Q' && enc != 'B')
				goto literal;
			e = q1 + 3;
			q2 = e;
			while (q2 + 1 < s + len && !(q2[0] == '?' && q2[1] == '='))
				q2++;
			if (q2 + 1 >= s + len)
				goto literal;
			cslen = (size_t)(q1 - cs);
			if (cslen == 0 || cslen >= sizeof(charset))
				goto literal;
			memcpy(charset, cs, cslen);
			charset[cslen] = '\0';
			/* RFC 2231 language suffix: charset*lang */
			if (strchr(charset, '*') != NULL)
				*strchr(charset, '*') = '\0';
			buf_reset(&raw);
			if (decode_word(enc, e, (size_t)(q2 - e), &raw) == -1)
				goto literal;
			/* Drop the white space between two encoded words. */
			if (!last_encoded && pending_ws > 0 &&
			    buf_add(out, s + ws_start, pending_ws) == -1)
				goto fail;
			if (to_utf8(charset, &raw, out) == -1)
				goto literal_nows;
			pending_ws = 0;
			last_encoded = 1;
			i = (size_t)(q2 + 2 - s);
			continue;
		}
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			if (pending_ws == 0)
				ws_start = i;
			pending_ws++;
			i++;
			continue;
		}
literal:
		if (pending_ws > 0 && buf_add(out, s + ws_start, pending_ws) == -1)
			goto fail;
literal_nows:
		pending_ws = 0;
		last_encoded = 0;
		if (buf_addc(out, s[i]) == -1)
			goto fail;
		i++;
	}
	if (pending_ws > 0 && buf_add(out, s + ws_start, pending_ws) == -1)
		goto fail;
	buf_free(&raw);
	return 0;
fail:
	buf_free(&raw);
	return -1;
}

char *
msg_date(char *buf, size_t len, time_t t)
{
	struct tm	tm;

	if (len == 0)
		return buf;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
		buf[0] = '\0';
	return buf;
}
