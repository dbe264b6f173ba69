/*
 * imap -- IMAP4rev1 tokenizer, sequence sets, dates, quoting and modified
 * UTF-7 (see imap.h).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "buf.h"
#include "imap.h"

struct parser {
	const char	*p;
	const char	*end;
	int		 maxdepth;
	char		*err;
	size_t		 errlen;
};

static int
perr(struct parser *ps, const char *what)
{
	if (ps->err != NULL && ps->errlen > 0)
		str_lcpy(ps->err, what, ps->errlen);
	return -1;
}

static int
push(struct imap_args *a, size_t *cap, struct imap_arg **out)
{
	struct imap_arg	*v;
	size_t		 ncap;

	if (a->n == *cap) {
		ncap = *cap ? *cap * 2 : 8;
		if (ncap > SIZE_MAX / sizeof(*v))
			return -1;
		if ((v = reallocarray(a->v, ncap, sizeof(*v))) == NULL)
			return -1;
		a->v = v;
		*cap = ncap;
	}
	*out = &a->v[a->n++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int
copy_str(struct imap_arg *arg, const char *s, size_t len)
{
	if ((arg->str = malloc(len + 1)) == NULL)
		return -1;
	memcpy(arg->str, s, len);
	arg->str[len] = '\0';
	arg->len = len;
	return 0;
}

static int
atom_end(int c)
{
	return c == ' ' || c == '(' || c == ')' || c == '\r' || c == '\n' ||
	    c == '\0' || c == '"' || c == '{';
}

static int parse_list(struct parser *, struct imap_args *, int depth,
    int closing);

static int
parse_quoted(struct parser *ps, struct imap_arg *arg)
{
	const char	*q;
	char		*o;

	arg->type = IMAP_STRING;
	ps->p++;
	/* Measure first, then copy unescaped. */
	for (q = ps->p; q < ps->end && *q != '"'; q++) {
		if (*q == '\r' || *q == '\n' || *q == '\0')
			return perr(ps, "control character in quoted string");
		if (*q == '\\') {
			if (q + 1 >= ps->end || (q[1] != '"' && q[1] != '\\'))
				return perr(ps, "bad escape in quoted string");
			q++;
		}
	}
	if (q >= ps->end)
		return perr(ps, "unterminated quoted string");
	if ((arg->str = malloc((size_t)(q - ps->p) + 1)) == NULL)
		return perr(ps, "out of memory");
	o = arg->str;
	while (ps->p < q) {
		if (*ps->p == '\\')
			ps->p++;
		*o++ = *ps->p++;
	}
	*o = '\0';
	arg->len = (size_t)(o - arg->str);
	ps->p = q + 1;
	return 0;
}

static int
parse_literal(struct parser *ps, struct imap_arg *arg)
{
	uint64_t	 n = 0;
	const char	*q = ps->p + 1;

	arg->type = IMAP_LITERAL;
	if (q >= ps->end || !isdigit((unsigned char)*q))
		return perr(ps, "bad literal");
	while (q < ps->end && isdigit((unsigned char)*q)) {
		n = n * 10 + (uint64_t)(*q - '0');
		if (n > UINT32_MAX)
			return perr(ps, "literal too long");
		q++;
	}
	if (q < ps->end && *q == '+')
		q++;
	if (q >= ps->end || *q != '}')
		return perr(ps, "bad literal");
	q++;
	if (q < ps->end && *q == '\r')
		q++;
	if (q >= ps->end || *q != '\n')
		return perr(ps, "literal without line end");
	q++;
	if ((uint64_t)(ps->end - q) < n)
		return perr(ps, "literal shorter than announced");
	if (copy_str(arg, q, (size_t)n) == -1)
		return perr(ps, "out of memory");
	ps->p = q + n;
	return 0;
}

static int
parse_atom(struct parser *ps, struct imap_arg *arg)
{
	const char	*s = ps->p;
	int		 inbr = 0;

	arg->type = IMAP_ATOM;
	while (ps->p < ps->end) {
		unsigned char c = (unsigned char)*ps->p;

		if (inbr) {
			if (c == ']')
				inbr = 0;
			else if (c == '\r' || c == '\n' || c == '\0')
				return perr(ps, "control character in atom");
			ps->p++;
			continue;
		}
		if (atom_end(c))
			break;
		if (c < 0x20 || c == 0x7f)
			return perr(ps, "control character in atom");
		if (c == '[')
			inbr = 1;
		ps->p++;
	}
	if (inbr)
		return perr(ps, "unterminated [");
	if (ps->p == s)
		return perr(ps, "unexpected character");
	if (copy_str(arg, s, (size_t)(ps->p - s)) == -1)
		return perr(ps, "out of memory");
	return 0;
}

static int
parse_list(struct parser *ps, struct imap_args *a, int depth, int closing)
{
	struct imap_arg	*arg;
	size_t		 cap = 0;

	for (;;) {
		while (ps->p < ps->end && *ps->p == ' ')
			ps->p++;
		if (ps->p >= ps->end) {
			if (closing)
				return perr(ps, "missing )");
			return 0;
		}
		if (*ps->p == ')') {
			if (!closing)
				return perr(ps, "unexpected )");
			ps->p++;
			return 0;
		}
		if (push(a, &cap, &arg) == -1)
			return perr(ps, "out of memory");
		switch (*ps->p) {
		case '(': {
			struct imap_args sub = { NULL, 0 };
			int r;

			if (depth + 1 > ps->maxdepth)
				return perr(ps, "lists nested too deep");
			arg->type = IMAP_LIST;
			ps->p++;
			r = parse_list(ps, &sub, depth + 1, 1);
			arg->list = sub.v;
			arg->nlist = sub.n;
			if (r == -1)
				return -1;
			break;
		}
		case '"':
			if (parse_quoted(ps, arg) == -1)
				return -1;
			break;
		case '{':
			if (parse_literal(ps, arg) == -1)
				return -1;
			break;
		default:
			if (parse_atom(ps, arg) == -1)
				return -1;
			break;
		}
		/* Tokens are separated by a space or a parenthesis. */
		if (ps->p < ps->end && *ps->p != ' ' && *ps->p != ')' &&
		    !(arg->type == IMAP_ATOM && *ps->p == '('))
			return perr(ps, "missing space between arguments");
	}
}

int
imap_parse(const char *text, size_t len, int maxdepth, struct imap_args *args,
    char *err, size_t errlen)
{
	struct parser	 ps;

	args->v = NULL;
	args->n = 0;
	ps.p = text;
	ps.end = text + len;
	ps.maxdepth = maxdepth > 0 ? maxdepth : IMAP_MAX_DEPTH;
	ps.err = err;
	ps.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	return parse_list(&ps, args, 0, 0);
}

static void
free_list(struct imap_arg *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (v[i].type == IMAP_LIST)
			free_list(v[i].list, v[i].nlist);
		else if (v[i].type == IMAP_LITERAL && v[i].str != NULL)
			explicit_bzero(v[i].str, v[i].len);
		free(v[i].str);
	}
	free(v);
}

void
imap_args_free(struct imap_args *a)
{
	if (a->v != NULL)
		free_list(a->v, a->n);
	a->v = NULL;
	a->n = 0;
}

int
imap_literal_marker(const char *line, size_t len, uint64_t *n_r, int *nonsync_r)
{
	size_t		 i;
	uint64_t	 n = 0;
	int		 nonsync = 0;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 1;
	if (line[i - 1] == '+') {
		nonsync = 1;
		i--;
	}
	if (i == 0)
		return 0;
	i--;
	if (!isdigit((unsigned char)line[i]))
		return 0;
	while (i > 0 && isdigit((unsigned char)line[i]))
		i--;
	if (line[i] != '{')
		return 0;
	/* "~{n}" (literal8) is not supported; treat as malformed. */
	if (i > 0 && line[i - 1] == '~')
		return -1;
	for (i++; line[i] != '}' && line[i] != '+'; i++) {
		n = n * 10 + (uint64_t)(line[i] - '0');
		if (n > UINT32_MAX)
			return -1;
	}
	*n_r = n;
	*nonsync_r = nonsync;
	return 1;
}

int
imap_arg_is_string(const struct imap_arg *a)
{
	return a != NULL && a->type != IMAP_LIST;
}

int
imap_arg_is_nil(const struct imap_arg *a)
{
	return a != NULL && a->type == IMAP_ATOM && strcasecmp(a->str, "NIL") == 0;
}

int
imap_number64(const char *s, uint64_t *r)
{
	uint64_t	n = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		if (n > (UINT64_MAX / 2 - 9) / 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*r = n;
	return 0;
}

int
imap_number(const char *s, uint32_t *r)
{
	uint64_t	n;

	if (imap_number64(s, &n) == -1 || n > UINT32_MAX)
		return -1;
	*r = (uint32_t)n;
	return 0;
}

static int
seq_number(const char **sp, uint32_t *r)
{
	const char	*s = *sp;
	uint64_t	 n = 0;

	if (*s == '*') {
		*r = UINT32_MAX;
		*sp = s + 1;
		return 0;
	}
	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return -1;
		s++;
	}
	if (n == 0)
		return -1;
	*r = (uint32_t)n;
	*sp = s;
	return 0;
}

int
imap_seqset_parse(const char *s, size_t maxranges, struct imap_seqset *set)
{
	size_t		 cap = 0;
	struct imap_range *r;

	set->r = NULL;
	set->n = 0;
	for (;;) {
		uint32_t lo, hi;

		if (seq_number(&s, &lo) == -1)
			goto bad;
		hi = lo;
		if (*s == ':') {
			s++;
			if (seq_number(&s, &hi) == -1)
				goto bad;
		}
		if (set->n == cap) {
			if (set->n >= maxranges)
				goto bad;
			cap = cap ? cap * 2 : 4;
			if (cap > maxranges)
				cap = maxranges;
			if ((r = reallocarray(set->r, cap, sizeof(*r))) == NULL)
				goto bad;
			set->r = r;
		}
		set->r[set->n].lo = lo;
		set->r[set->n].hi = hi;
		set->n++;
		if (*s == '\0')
			return 0;
		if (*s++ != ',')
			goto bad;
	}
bad:
	imap_seqset_free(set);
	return -1;
}

void
imap_seqset_resolve(struct imap_seqset *set, uint32_t max)
{
	size_t	i;

	for (i = 0; i < set->n; i++) {
		struct imap_range *r = &set->r[i];

		if (r->lo == UINT32_MAX)
			r->lo = max;
		if (r->hi == UINT32_MAX)
			r->hi = max;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;

			r->lo = r->hi;
			r->hi = t;
		}
	}
}

int
imap_seqset_has(const struct imap_seqset *set, uint32_t n)
{
	size_t	i;

	for (i = 0; i < set->n; i++)
		if (n >= set->r[i].lo && n <= set->r[i].hi)
			return 1;
	return 0;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	free(set->r);
	set->r = NULL;
	set->n = 0;
}

int
imap_seqset_format(struct buf *b, const uint32_t *v, size_t n)
{
	size_t	i, j;

	for (i = 0; i < n; i = j + 1) {
		j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		if (buf_printf(b, i ? ",%u" : "%u", v[i]) == -1)
			return -1;
		if (j > i && buf_printf(b, ":%u", v[j]) == -1)
			return -1;
	}
	return 0;
}

static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May",
	"Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static int
parse_day_month_year(const char **sp, struct tm *tm)
{
	const char	*s = *sp;
	int		 d = 0, i, y = 0;

	if (*s == ' ')
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	d = *s++ - '0';
	if (isdigit((unsigned char)*s))
		d = d * 10 + (*s++ - '0');
	if (*s++ != '-')
		return -1;
	for (i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			break;
	if (i == 12)
		return -1;
	s += 3;
	if (*s++ != '-')
		return -1;
	for (int k = 0; k < 4; k++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		y = y * 10 + (*s++ - '0');
	}
	if (d < 1 || d > 31 || y < 1900)
		return -1;
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = d;
	tm->tm_mon = i;
	tm->tm_year = y - 1900;
	*sp = s;
	return 0;
}

int
imap_parse_date(const char *s, time_t *r)
{
	struct tm	tm;

	if (parse_day_month_year(&s, &tm) == -1 || *s != '\0')
		return -1;
	*r = timegm(&tm);
	return 0;
}

static int
two_digits(const char *s, int max, int *r)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
		return -1;
	*r = (s[0] - '0') * 10 + (s[1] - '0');
	return *r > max ? -1 : 0;
}

int
imap_parse_datetime(const char *s, time_t *r)
{
	struct tm	tm;
	int		hh, mm, zh, zm, sign;
	int		ss;

	if (parse_day_month_year(&s, &tm) == -1 || *s++ != ' ')
		return -1;
	if (two_digits(s, 23, &hh) == -1 || s[2] != ':' ||
	    two_digits(s + 3, 59, &mm) == -1 || s[5] != ':' ||
	    two_digits(s + 6, 60, &ss) == -1 || s[8] != ' ')
		return -1;
	s += 9;
	if (*s != '+' && *s != '-')
		return -1;
	sign = *s++ == '-' ? -1 : 1;
	if (two_digits(s, 99, &zh) == -1 || two_digits(s + 2, 59, &zm) == -1 ||
	    s[4] != '\0')
		return -1;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*r = timegm(&tm) - sign * (zh * 3600 + zm * 60);
	return 0;
}

int
imap_format_datetime(time_t t, char *out, size_t outlen)
{
	struct tm	tm;
	long		off;
	char		sign = '+';

	if (localtime_r(&t, &tm) == NULL)
		return -1;
	off = tm.tm_gmtoff / 60;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	return str_fmt(out, outlen, "\"%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"",
	    tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

int
imap_quote(struct buf *b, const char *s, size_t len)
{
	size_t	i;
	int	lit = len > 1024;

	if (s == NULL)
		return buf_adds(b, "NIL");
	for (i = 0; i < len && !lit; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r' || c == '\n' || c == '\0' || c >= 0x80)
			lit = 1;
	}
	if (lit) {
		if (buf_printf(b, "{%zu}\r\n", len) == -1)
			return -1;
		return buf_add(b, s, len);
	}
	if (buf_addc(b, '"') == -1)
		return -1;
	for (i = 0; i < len; i++) {
		if ((s[i] == '"' || s[i] == '\\') && buf_addc(b, '\\') == -1)
			return -1;
		if (buf_addc(b, s[i]) == -1)
			return -1;
	}
	return buf_addc(b, '"');
}

int
imap_astring(struct buf *b, const char *s, size_t len)
{
	size_t	i;

	if (s == NULL || len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return imap_quote(b, s, len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\", c) != NULL)
			return imap_quote(b, s, len);
	}
	return buf_add(b, s, len);
}

/* Modified base64 of RFC 3501 5.1.3: ',' instead of '/'. */
static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int
b64val(int c)
{
	const char *p;

	if (c == '\0' || (p = strchr(b64, c)) == NULL)
		return -1;
	return (int)(p - b64);
}

static int
put_utf8(struct buf *out, uint32_t cp)
{
	char	u[4];
	size_t	n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_add(out, u, n);
}

int
imap_utf7_decode(const char *s, struct buf *out)
{
	while (*s != '\0') {
		unsigned char c = (unsigned char)*s;
		uint32_t bits = 0, hi = 0;
		int nbits = 0, nchars = 0;

		if (c < 0x20 || c > 0x7e)
			return -1;
		if (c != '&') {
			if (buf_addc(out, c) == -1)
				return -1;
			s++;
			continue;
		}
		s++;
		if (*s == '-') {
			if (buf_addc(out, '&') == -1)
				return -1;
			s++;
			continue;
		}
		for (; *s != '-'; s++) {
			int v = b64val((unsigned char)*s);

			if (v < 0)
				return -1;
			bits = (bits << 6) | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t u = (bits >> nbits) & 0xffff;

			bits &= (1u << nbits) - 1;
			nchars++;
			if (hi != 0) {
				if (u < 0xdc00 || u > 0xdfff)
					return -1;
				if (put_utf8(out, 0x10000 + ((hi - 0xd800) << 10) +
				    (u - 0xdc00)) == -1)
					return -1;
				hi = 0;
			} else if (u >= 0xd800 && u <= 0xdbff) {
				hi = u;
			} else if (u >= 0xdc00 && u <= 0xdfff) {
				return -1;
			} else {
				/* Printable ASCII must not be encoded. */
				if (u >= 0x20 && u <= 0x7e)
					return -1;
				if (put_utf8(out, u) == -1)
					return -1;
			}
		}
		/* Empty shift, leftover bits or a dangling surrogate. */
		if (nchars == 0 || nbits >= 6 || bits != 0 || hi != 0)
			return -1;
		s++;
		/* Two adjacent shifts are not minimal. */
		if (*s == '&' && s[1] != '-')
			return -1;
	}
	return 0;
}

int
imap_utf7_valid(const char *s)
{
	struct buf	b;
	int		r;

	buf_init(&b, 0);
	r = imap_utf7_decode(s, &b);
	buf_free(&b);
	return r == 0;
}

/* Decodes one UTF-8 sequence; returns its length, or -1. */
static int
get_utf8(const unsigned char *s, uint32_t *cp)
{
	int		n, i;
	uint32_t	c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else
		return -1;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp = c;
	return n;
}

static int
flush_b64(struct buf *out, uint32_t *bits, int *nbits)
{
	while (*nbits >= 6) {
		*nbits -= 6;
		if (buf_addc(out, b64[(*bits >> *nbits) & 0x3f]) == -1)
			return -1;
	}
	return 0;
}

int
imap_utf7_encode(const char *str, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s != '\0') {
		uint32_t cp, bits = 0;
		int n, nbits = 0;

		if (*s >= 0x20 && *s <= 0x7e) {
			if (buf_addc(out, *s) == -1)
				return -1;
			if (*s == '&' && buf_addc(out, '-') == -1)
				return -1;
			s++;
			continue;
		}
		if (buf_addc(out, '&') == -1)
			return -1;
		while (*s != '\0' && (*s < 0x20 || *s > 0x7e)) {
			uint32_t units[2];
			int nu = 1;

			if ((n = get_utf8(s, &cp)) == -1)
				return -1;
			s += n;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = 0xd800 + (cp >> 10);
				units[1] = 0xdc00 + (cp & 0x3ff);
				nu = 2;
			} else
				units[0] = cp;
			for (int k = 0; k < nu; k++) {
				bits = (bits << 16) | units[k];
				nbits += 16;
				if (flush_b64(out, &bits, &nbits) == -1)
					return -1;
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0 && buf_addc(out, b64[(bits << (6 - nbits)) & 0x3f]) == -1)
			return -1;
		if (buf_addc(out, '-') == -1)
			return -1;
	}
	return 0;
}
