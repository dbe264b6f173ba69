/*
 * mime -- MIME structure (see mime.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "mime.h"
#include "msg.h"

#define MIME_MAX_PARTS	10000	/* per multipart: bounds memory */

static char *
lower_dup(const char *s, size_t len)
{
	char	*r = strndup(s, len);
	size_t	 i;

	if (r != NULL)
		for (i = 0; r[i] != '\0'; i++)
			r[i] = (char)tolower((unsigned char)r[i]);
	return r;
}

static const char *
skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Skips a (comment) and white space. */
static const char *
skip_cfws(const char *s)
{
	for (;;) {
		int depth = 0;

		s = skip_ws(s);
		if (*s != '(')
			return s;
		while (*s != '\0') {
			if (*s == '\\' && s[1] != '\0')
				s++;
			else if (*s == '(')
				depth++;
			else if (*s == ')' && --depth == 0) {
				s++;
				break;
			}
			s++;
		}
	}
}

/* Reads a token or quoted string; returns a malloc'd copy (quotes removed). */
static char *
get_value(const char **sp, const char *stops)
{
	const char	*s = skip_cfws(*sp), *start;
	struct buf	 b;
	char		*r;

	buf_init(&b, 0);
	if (*s == '"') {
		for (s++; *s != '\0' && *s != '"'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (buf_addc(&b, *s) == -1)
				goto fail;
		}
		if (*s == '"')
			s++;
	} else {
		start = s;
		while (*s != '\0' && strchr(stops, *s) == NULL)
			s++;
		while (s > start && (s[-1] == ' ' || s[-1] == '\t'))
			s--;
		if (buf_add(&b, start, (size_t)(s - start)) == -1)
			goto fail;
		while (*s != '\0' && strchr(stops, *s) == NULL)
			s++;
	}
	*sp = s;
	if (b.data == NULL)
		return strdup("");
	r = buf_release(&b);
	return r;
fail:
	buf_free(&b);
	return NULL;
}

int
mime_parse_params(const char *v, struct mime_param **params, size_t *nparams,
    char **first)
{
	const char		*s = v;
	struct mime_param	*np;
	char			*name, *value;

	*first = get_value(&s, ";");
	if (*first == NULL)
		return -1;
	for (size_t i = 0; (*first)[i] != '\0'; i++)
		(*first)[i] = (char)tolower((unsigned char)(*first)[i]);
	while (*s == ';') {
		const char *n0;

		s = skip_cfws(s + 1);
		n0 = s;
		while (*s != '\0' && *s != '=' && *s != ';' && *s != ' ' &&
		    *s != '\t')
			s++;
		if (s == n0) {
			if (*s == '\0')
				break;
			continue;
		}
		if ((name = lower_dup(n0, (size_t)(s - n0))) == NULL)
			return -1;
		s = skip_cfws(s);
		if (*s != '=') {
			free(name);
			continue;
		}
		s++;
		if ((value = get_value(&s, ";")) == NULL) {
			free(name);
			return -1;
		}
		if (*nparams >= 64) {
			free(name);
			free(value);
			continue;
		}
		np = realloc(*params, (*nparams + 1) * sizeof(*np));
		if (np == NULL) {
			free(name);
			free(value);
			return -1;
		}
		*params = np;
		np[*nparams].name = name;
		np[*nparams].value = value;
		(*nparams)++;
		while (*s != '\0' && *s != ';')
			s++;
	}
	return 0;
}

const char *
mime_param(const struct mime_part *p, const char *name)
{
	size_t	i;

	for (i = 0; i < p->nparams; i++)
		if (strcmp(p->params[i].name, name) == 0)
			return p->params[i].value;
	return NULL;
}

static int
set_str(char **dst, struct buf *v)
{
	free(*dst);
	*dst = strdup(v->data ? v->data : "");
	return *dst == NULL ? -1 : 0;
}

static int	parse_part(const char *m, size_t off, size_t end, int depth,
    int maxdepth, struct mime_part *p, int digest);

/* Offset of the next delimiter line "--boundary" at or after from. */
static size_t
find_delim(const char *m, size_t start, size_t from, size_t end,
    const char *bnd, size_t blen)
{
	while (from + 2 + blen <= end) {
		const char *d = memmem(m + from, end - from, "--", 2);
		size_t off;

		if (d == NULL)
			return end;
		off = (size_t)(d - m);
		if (off + 2 + blen > end)
			return end;
		if ((off == start || m[off - 1] == '\n') &&
		    memcmp(m + off + 2, bnd, blen) == 0)
			return off;
		from = off + 1;
	}
	return end;
}

static int
parse_multipart(const char *m, size_t off, size_t end, int depth, int maxdepth,
    struct mime_part *p, const char *bnd)
{
	size_t	blen = strlen(bnd), d, cstart, cend, cap = 0;
	int	digest = strcmp(p->subtype, "digest") == 0;

	d = find_delim(m, off, off, end, bnd, blen);
	while (d < end) {
		const char *nl;

		/* Closing delimiter? */
		if (d + 2 + blen + 2 <= end && m[d + 2 + blen] == '-' &&
		    m[d + 3 + blen] == '-')
			break;
		nl = memchr(m + d, '\n', end - d);
		if (nl == NULL)
			break;
		cstart = (size_t)(nl - m) + 1;
		d = find_delim(m, cstart, cstart, end, bnd, blen);
		cend = d;
		if (d < end && cend > cstart && m[cend - 1] == '\n') {
			cend--;
			if (cend > cstart && m[cend - 1] == '\r')
				cend--;
		}
		if (p->nchild >= MIME_MAX_PARTS)
			break;
		if (p->nchild == cap) {
			struct mime_part *nc;

			cap = cap ? cap * 2 : 4;
			if ((nc = reallocarray(p->child, cap, sizeof(*nc))) == NULL)
				return -1;
			p->child = nc;
		}
		memset(&p->child[p->nchild], 0, sizeof(p->child[0]));
		p->nchild++;
		if (parse_part(m, cstart, cend, depth + 1, maxdepth,
		    &p->child[p->nchild - 1], digest) == -1)
			return -1;
	}
	return 0;
}

static int
parse_part(const char *m, size_t off, size_t end, int depth, int maxdepth,
    struct mime_part *p, int digest)
{
	struct msg_field	 f;
	struct buf		 v;
	size_t			 pos = 0, i;
	const char		*h = m + off;
	char			*ct = NULL;
	int			 rc = -1;

	buf_init(&v, 0);
	p->hdr_off = off;
	p->hdr_len = msg_header_len(h, end - off);
	p->body_off = off + p->hdr_len;
	p->body_len = end - p->body_off;
	for (i = p->body_off; i < end; i++)
		if (m[i] == '\n')
			p->lines++;
	if (p->body_len > 0 && m[end - 1] != '\n')
		p->lines++;
	while (msg_field_next(h, p->hdr_len, &pos, &f) == 1) {
		if (f.namelen < 8 || strncasecmp(f.name, "Content-", 8) != 0)
			continue;
		buf_reset(&v);
		if (msg_unfold(f.value, f.valuelen, &v) == -1)
			goto out;
		if (v.data == NULL && buf_adds(&v, "") == -1)
			goto out;
#define IS(s) (f.namelen == sizeof(s) - 1 && strncasecmp(f.name, s, f.namelen) == 0)
		if (IS("Content-Type") && p->type == NULL) {
			char *first = NULL, *slash;

			if (mime_parse_params(v.data, &p->params, &p->nparams,
			    &first) == -1) {
				free(first);
				goto out;
			}
			slash = strchr(first, '/');
			if (slash != NULL && slash != first && slash[1] != '\0') {
				*slash = '\0';
				p->type = strdup(first);
				p->subtype = strdup(slash + 1);
				if (p->type == NULL || p->subtype == NULL) {
					free(first);
					goto out;
				}
			}
			free(first);
		} else if (IS("Content-Transfer-Encoding")) {
			if (set_str(&p->encoding, &v) == -1)
				goto out;
		} else if (IS("Content-ID")) {
			if (set_str(&p->id, &v) == -1)
				goto out;
		} else if (IS("Content-Description")) {
			if (set_str(&p->description, &v) == -1)
				goto out;
		} else if (IS("Content-MD5")) {
			if (set_str(&p->md5, &v) == -1)
				goto out;
		} else if (IS("Content-Language")) {
			if (set_str(&p->language, &v) == -1)
				goto out;
		} else if (IS("Content-Location")) {
			if (set_str(&p->location, &v) == -1)
				goto out;
		} else if (IS("Content-Disposition") && p->disposition == NULL) {
			if (mime_parse_params(v.data, &p->dparams, &p->ndparams,
			    &p->disposition) == -1)
				goto out;
		}
#undef IS
	}
	if (p->type == NULL) {
		p->type = strdup(digest ? "message" : "text");
		p->subtype = strdup(digest ? "rfc822" : "plain");
		if (p->type == NULL || p->subtype == NULL)
			goto out;
		if (!digest && p->nparams == 0) {
			p->params = calloc(1, sizeof(*p->params));
			if (p->params == NULL)
				goto out;
			p->params[0].name = strdup("charset");
			p->params[0].value = strdup("us-ascii");
			p->nparams = 1;
			if (p->params[0].name == NULL || p->params[0].value == NULL)
				goto out;
		}
	}
	if (depth < maxdepth && strcmp(p->type, "multipart") == 0) {
		const char *bnd = mime_param(p, "boundary");

		if (bnd != NULL && *bnd != '\0' && strlen(bnd) <= 200 &&
		    parse_multipart(m, p->body_off, end, depth, maxdepth, p,
		    bnd) == -1)
			goto out;
	} else if (depth < maxdepth && strcmp(p->type, "message") == 0 &&
	    strcmp(p->subtype, "rfc822") == 0) {
		if ((p->child = calloc(1, sizeof(*p->child))) == NULL)
			goto out;
		p->nchild = 1;
		if (parse_part(m, p->body_off, end, depth + 1, maxdepth, p->child,
		    0) == -1)
			goto out;
	}
	rc = 0;
out:
	(void)ct;
	buf_free(&v);
	return rc;
}

int
mime_parse(const char *m, size_t len, int maxdepth, struct mime_part **r)
{
	struct mime_part	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	if (parse_part(m, 0, len, 0, maxdepth > 0 ? maxdepth : 20, p, 0) == -1) {
		mime_free(p);
		return -1;
	}
	*r = p;
	return 0;
}

static void
free_params(struct mime_param *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

static void
free_part(struct mime_part *p)
{
	size_t	i;

	free(p->type);
	free(p->subtype);
	free_params(p->params, p->nparams);
	free(p->id);
	free(p->description);
	free(p->encoding);
	free(p->md5);
	free(p->disposition);
	free_params(p->dparams, p->ndparams);
	free(p->language);
	free(p->location);
	for (i = 0; i < p->nchild; i++)
		free_part(&p->child[i]);
	free(p->child);
}

void
mime_free(struct mime_part *p)
{
	if (p == NULL)
		return;
	free_part(p);
	free(p);
}
