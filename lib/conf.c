/*
 * conf -- INI configuration through inih (see conf.h and courriel.conf(5)).
 *
 * inih splits `key = value` lines, trims them and strips comments; this
 * file feeds it one physical line at a time through its own reader, which
 * is how every entry gets its line number (Debian's inih is built without
 * INI_HANDLER_LINENO). The reader also handles section headers itself:
 * inih truncates section names at 50 bytes and does not report empty
 * sections, and `[type label]` needs checking anyway.
 *
 * Debian's inih (55) exports its compile-time options as variables; we
 * set them before each parse: a heap line buffer that grows (long inline
 * tables), no multi-line values (an indented line is an ordinary line, not
 * a silent continuation), stop at the first error.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "buf.h"
#include "conf.h"

#define CONF_MAX_SIZE	(4 * 1024 * 1024)	/* a configuration file */
#define CONF_MAX_LINE	65536			/* one line, in bytes */
#define CONF_MAX_VALUE	65536			/* a value after expansion */
#define CONF_MAX_DEPTH	8			/* ${A:-${B:-...}} nesting */
#define CONF_MAX_SECTIONS 10000		/* duplicates are found in O(n^2) */
#define SECRET_MAX	8192			/* a secret file's first line */

struct loader {
	struct conf	*conf;
	const char	*text;		/* the whole input */
	size_t		 len;
	size_t		 pos;		/* next byte to give inih */
	int		 midline;	/* pos is inside a physical line */
	int		 line;		/* physical line being parsed */
	size_t		 cur;		/* index of the current section */
	size_t		 seccap;	/* sections allocated */
	int		 errline;	/* 0, or the line of the first error */
	char		*err;
	size_t		 errlen;
};

/* Records the first error of a load, as "file:line: what". */
static void
load_error(struct loader *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
load_error(struct loader *l, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	if (l->errline)
		return;
	l->errline = l->line > 0 ? l->line : 1;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	str_err(l->err, l->errlen, "%s:%d: %s", l->conf->path, l->errline, msg);
}

static int
grow(void *pp, size_t *capp, size_t n, size_t size)
{
	void	**p = pp;
	void	 *np;
	size_t	  ncap, bytes;

	if (n < *capp)
		return 0;
	ncap = *capp ? *capp * 2 : 8;
	if (size_mul(ncap, size, &bytes) == -1 ||
	    (np = realloc(*p, bytes)) == NULL) {
		errno = ENOMEM;
		return -1;
	}
	*p = np;
	*capp = ncap;
	return 0;
}

/*
 * ${VAR}, ${VAR:-default} (default used when VAR is unset or empty, and
 * itself expanded), $${ for a literal ${. Any other $ is literal, so
 * crypt(3) hashes ($2b$..., $6$...) need no escaping.
 */
static int
expand(struct buf *out, const char *s, size_t n, int depth, char *err,
    size_t errlen)
{
	char		 name[256];
	const char	*v, *def;
	size_t		 i, j, k, nlen, deflen;
	int		 nest;

	if (depth > CONF_MAX_DEPTH) {
		str_err(err, errlen, "${...} nested too deeply");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (s[i] == '$' && i + 2 < n && s[i + 1] == '$' &&
		    s[i + 2] == '{') {
			if (buf_add(out, "${", 2) == -1)
				goto toolong;
			i += 2;
			continue;
		}
		if (s[i] != '$' || i + 1 >= n || s[i + 1] != '{') {
			if (buf_addc(out, (unsigned char)s[i]) == -1)
				goto toolong;
			continue;
		}
		j = i + 2;
		if (j < n && (isalpha((unsigned char)s[j]) || s[j] == '_'))
			while (j < n && (isalnum((unsigned char)s[j]) ||
			    s[j] == '_'))
				j++;
		nlen = j - (i + 2);
		if (nlen == 0 || nlen >= sizeof(name)) {
			str_err(err, errlen, "expected a variable name after "
			    "'${' ([A-Za-z_][A-Za-z0-9_]*)");
			return -1;
		}
		memcpy(name, s + i + 2, nlen);
		name[nlen] = '\0';
		def = NULL;
		deflen = 0;
		if (j < n && s[j] == '}') {
			k = j;
		} else if (j + 1 < n && s[j] == ':' && s[j + 1] == '-') {
			def = s + j + 2;
			for (k = j + 2, nest = 0; k < n; k++) {
				if (s[k] == '$' && k + 1 < n && s[k + 1] == '{') {
					nest++;
					k++;
				} else if (s[k] == '}' && nest-- == 0)
					break;
			}
			deflen = (size_t)(s + k - def);
		} else if (j < n) {
			str_err(err, errlen,
			    "${%s: expected '}' or ':-default}'",
			    name);
			return -1;
		} else
			k = n;
		if (k >= n) {
			str_err(err, errlen, "${%s: missing '}'", name);
			return -1;
		}
		v = getenv(name);
		if (v != NULL && (*v != '\0' || def == NULL)) {
			if (buf_adds(out, v) == -1)
				goto toolong;
		} else if (def != NULL) {
			if (expand(out, def, deflen, depth + 1, err, errlen) == -1)
				return -1;
		} else {
			str_err(err, errlen,
			    "environment variable %s is not set "
			    "(${%s:-default} gives a default)", name, name);
			return -1;
		}
		i = k;
	}
	return 0;
toolong:
	str_err(err, errlen, "value too long after expansion (max %d bytes)",
	    CONF_MAX_VALUE);
	return -1;
}

int
conf_expand(const char *s, char **r, char *err, size_t errlen)
{
	struct buf	b;

	buf_init(&b, CONF_MAX_VALUE);
	if (expand(&b, s, strlen(s), 0, err, errlen) == -1) {
		buf_wipe_free(&b);
		return -1;
	}
	if ((*r = buf_release(&b)) == NULL) {
		str_err(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
key_ok(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_' && *k != '-' &&
		    *k != '.')
			return 0;
	return 1;
}

static struct conf_section *
add_section(struct conf *c, size_t *capp, const char *type,
    const char *label, int line)
{
	struct conf_section	*s;

	if (grow(&c->sections, capp, c->nsections, sizeof(*s)) == -1)
		return NULL;
	s = &c->sections[c->nsections];
	memset(s, 0, sizeof(*s));
	if ((s->type = strdup(type)) == NULL)
		return NULL;
	if (label != NULL && (s->label = strdup(label)) == NULL) {
		free(s->type);
		return NULL;
	}
	str_lower(s->type);
	s->line = line;
	c->nsections++;
	return s;
}

static const char *
section_name(const struct conf_section *s, char *buf, size_t len)
{
	if (*s->type == '\0')
		(void)str_fmt(buf, len, "the top level");
	else if (s->label)
		(void)str_fmt(buf, len, "[%s %s]", s->type, s->label);
	else
		(void)str_fmt(buf, len, "[%s]", s->type);
	return buf;
}

/*
 * A header line: `[type]` or `[type label]`, optionally followed by a
 * comment. p points at the '['; end at the end of the line.
 */
static void
header(struct loader *l, const char *p, const char *end)
{
	char			 type[64], label[256], name[384];
	const char		*q, *close, *t, *te, *lb, *le;
	struct conf_section	*s;
	size_t			 i;

	if ((close = memchr(p, ']', (size_t)(end - p))) == NULL) {
		load_error(l, "expected ']' closing the section header");
		return;
	}
	for (q = close + 1; q < end && isspace((unsigned char)*q); q++)
		;
	if (q < end && *q != ';' && *q != '#') {
		load_error(l, "unexpected text after the section header");
		return;
	}
	for (t = p + 1; t < close && isspace((unsigned char)*t); t++)
		;
	for (te = t; te < close && (isalnum((unsigned char)*te) ||
	    *te == '_' || *te == '-'); te++)
		;
	for (lb = te; lb < close && isspace((unsigned char)*lb); lb++)
		;
	for (le = lb; le < close && !isspace((unsigned char)*le) &&
	    *le != '[' && (unsigned char)*le >= 0x20 && *le != 0x7f; le++)
		;
	for (q = le; q < close && isspace((unsigned char)*q); q++)
		;
	if (te == t || (te < close && !isspace((unsigned char)*te)) ||
	    q != close || (size_t)(te - t) >= sizeof(type) ||
	    (size_t)(le - lb) >= sizeof(label)) {
		load_error(l, "expected [type] or [type label] (type: letters, "
		    "digits, '_' or '-'; label: one word)");
		return;
	}
	if (l->conf->nsections > CONF_MAX_SECTIONS) {
		load_error(l, "too many sections (max %d)", CONF_MAX_SECTIONS);
		return;
	}
	memcpy(type, t, (size_t)(te - t));
	type[te - t] = '\0';
	memcpy(label, lb, (size_t)(le - lb));
	label[le - lb] = '\0';
	for (i = 1; i < l->conf->nsections; i++) {
		s = &l->conf->sections[i];
		if (strcasecmp(s->type, type) == 0 &&
		    ((s->label == NULL && le == lb) ||
		    (s->label != NULL && strcmp(s->label, label) == 0))) {
			load_error(l, "duplicate section %s (first at line %d)",
			    section_name(s, name, sizeof(name)), s->line);
			return;
		}
	}
	if (add_section(l->conf, &l->seccap, type, le == lb ? NULL : label,
	    l->line) == NULL) {
		load_error(l, "out of memory");
		return;
	}
	l->cur = l->conf->nsections - 1;
}

/*
 * inih's reader: gives it the input one physical line at a time (in
 * pieces when its buffer is smaller), after looking at the line first.
 */
static char *
reader(char *str, int num, void *arg)
{
	struct loader	*l = arg;
	const char	*p, *nl, *end, *s;
	size_t		 n, linelen;

	/* inih frees its line buffer unwiped: the last line it held (an
	   inline secrets table) must not stay in freed memory */
	if (num > 0)
		explicit_bzero(str, (size_t)num);
	if (num < 2 || l->errline || l->pos >= l->len)
		return NULL;
	p = l->text + l->pos;
	nl = memchr(p, '\n', l->len - l->pos);
	end = nl ? nl : l->text + l->len;
	if (!l->midline) {
		l->line++;
		linelen = (size_t)(end - p);
		if (l->line == 1 && linelen >= 3 &&
		    memcmp(p, "\xef\xbb\xbf", 3) == 0) {
			p += 3;		/* a UTF-8 byte order mark */
			l->pos += 3;
			linelen -= 3;
		}
		if (linelen > CONF_MAX_LINE) {
			load_error(l, "line too long (max %d bytes)",
			    CONF_MAX_LINE);
			return NULL;
		}
		if (memchr(p, '\0', linelen) != NULL) {
			load_error(l, "NUL byte in the line");
			return NULL;
		}
		for (s = p; s < end && isspace((unsigned char)*s); s++)
			;
		if (s < end && *s == '[') {
			header(l, s, end);
			if (l->errline)
				return NULL;
			/* inih sees an empty line instead. */
			l->pos = (size_t)(end - l->text) + (nl != NULL);
			str[0] = '\n';
			str[1] = '\0';
			return str;
		}
	}
	n = (size_t)(end - p) + (nl != NULL);
	if (n > (size_t)num - 1)
		n = (size_t)num - 1;
	memcpy(str, p, n);
	str[n] = '\0';
	l->pos += n;
	l->midline = n == 0 || p[n - 1] != '\n' ? l->pos < l->len : 0;
	return str;
}

static int
handler(void *arg, const char *section, const char *name, const char *value)
{
	struct loader		*l = arg;
	struct conf_section	*s = &l->conf->sections[l->cur];
	struct conf_entry	*e;
	size_t			 cap;
	char			 msg[256];

	(void)section;
	if (!key_ok(name)) {
		load_error(l, "expected 'key = value' with a key of letters, "
		    "digits, '_', '-' or '.'");
		return 0;
	}
	/* Entries grow by doubling: capacity is the next power of two. */
	for (cap = s->nentries ? 8 : 0; cap && cap < s->nentries; cap *= 2)
		;
	if (s->nentries == cap || cap == 0) {
		if (grow(&s->entries, &cap, s->nentries, sizeof(*e)) == -1) {
			load_error(l, "out of memory");
			return 0;
		}
	}
	e = &s->entries[s->nentries];
	memset(e, 0, sizeof(*e));
	e->line = l->line;
	if ((e->key = strdup(name)) == NULL) {
		load_error(l, "out of memory");
		return 0;
	}
	str_lower(e->key);
	if (conf_expand(value, &e->value, msg, sizeof(msg)) == -1) {
		free(e->key);
		load_error(l, "%s: %s", name, msg);
		return 0;
	}
	s->nentries++;
	return 1;
}

static int
load_mem(struct conf **confp, const char *name, const char *text, size_t len,
    char *err, size_t errlen)
{
	struct loader	 l;
	struct conf	*c;
	int		 rc;

	*confp = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->path = strdup(name)) == NULL) {
		free(c);
		str_err(err, errlen, "%s: out of memory", name);
		return -1;
	}
	memset(&l, 0, sizeof(l));
	if (add_section(c, &l.seccap, "", NULL, 0) == NULL) {
		conf_free(c);
		str_err(err, errlen, "%s: out of memory", name);
		return -1;
	}
	l.conf = c;
	l.text = text;
	l.len = len;
	l.err = err;
	l.errlen = errlen;

	ini_use_stack = false;
	ini_allow_realloc = true;
	ini_max_line = CONF_MAX_LINE + 3;
	ini_allow_multiline = false;
	ini_allow_bom = false;		/* the reader strips it */
	ini_allow_inline_comments = true;
	ini_inline_comment_prefixes = ";";
	ini_start_comment_prefixes = ";#";
	ini_allow_no_value = false;
	ini_stop_on_first_error = true;
	rc = ini_parse_stream(reader, &l, handler, &l);
	if (rc == -2 && !l.errline)
		str_err(err, errlen, "%s: out of memory", name);
	else if (rc > 0 && !l.errline) {
		l.line = rc;
		load_error(&l, "expected 'key = value', '[section]' or a "
		    "comment");
	}
	if (rc != 0 || l.errline) {
		conf_free(c);
		return -1;
	}
	*confp = c;
	return 0;
}

int
conf_load_string(struct conf **confp, const char *name, const char *text,
    char *err, size_t errlen)
{
	return load_mem(confp, name, text, strlen(text), err, errlen);
}

int
conf_load(struct conf **confp, const char *path, char *err, size_t errlen)
{
	struct stat	 st;
	char		*text;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, rc;

	*confp = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		str_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		str_err(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		str_err(err, errlen, "%s: %s", path, S_ISDIR(st.st_mode) ?
		    "is a directory" : "not a regular file");
		close(fd);
		return -1;
	}
	if (st.st_size > CONF_MAX_SIZE) {
		str_err(err, errlen, "%s: too large (max %d bytes)", path,
		    CONF_MAX_SIZE);
		close(fd);
		return -1;
	}
	if ((text = malloc((size_t)st.st_size + 1)) == NULL) {
		str_err(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	while (len < (size_t)st.st_size &&
	    (n = read(fd, text + len, (size_t)st.st_size - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			str_err(err, errlen, "%s: %s", path, strerror(errno));
			free(text);
			close(fd);
			return -1;
		}
		len += (size_t)n;
	}
	close(fd);
	text[len] = '\0';
	rc = load_mem(confp, path, text, len, err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

void
conf_free(struct conf *c)
{
	struct conf_section	*s;
	size_t			 i, j;

	if (c == NULL)
		return;
	for (i = 0; i < c->nsections; i++) {
		s = &c->sections[i];
		for (j = 0; j < s->nentries; j++) {
			free(s->entries[j].key);
			/* A value may be a password from the environment. */
			explicit_bzero(s->entries[j].value,
			    strlen(s->entries[j].value));
			free(s->entries[j].value);
		}
		free(s->entries);
		free(s->type);
		free(s->label);
	}
	free(c->sections);
	free(c->path);
	free(c);
}

const struct conf_section *
conf_global(const struct conf *c)
{
	return &c->sections[0];
}

const struct conf_section *
conf_next_section(const struct conf *c, const char *type,
    const struct conf_section *prev)
{
	size_t	i;

	i = prev == NULL ? 0 : (size_t)(prev - c->sections) + 1;
	for (; i < c->nsections; i++)
		if (strcasecmp(c->sections[i].type, type) == 0)
			return &c->sections[i];
	return NULL;
}

const struct conf_section *
conf_section(const struct conf *c, const char *type, const char *label)
{
	const struct conf_section	*s = NULL;

	while ((s = conf_next_section(c, type, s)) != NULL)
		if (label == NULL ||
		    (s->label != NULL && strcmp(s->label, label) == 0))
			return s;
	return NULL;
}

const struct conf_entry *
conf_next(const struct conf_section *s, const char *key,
    const struct conf_entry *prev)
{
	size_t	i;

	if (s == NULL)
		return NULL;
	i = prev == NULL ? 0 : (size_t)(prev - s->entries) + 1;
	for (; i < s->nentries; i++)
		if (strcasecmp(s->entries[i].key, key) == 0)
			return &s->entries[i];
	return NULL;
}

const struct conf_entry *
conf_entry(const struct conf_section *s, const char *key)
{
	size_t	i;

	if (s == NULL)
		return NULL;
	for (i = s->nentries; i > 0; i--)
		if (strcasecmp(s->entries[i - 1].key, key) == 0)
			return &s->entries[i - 1];
	return NULL;
}

const char *
conf_get(const struct conf_section *s, const char *key, const char *def)
{
	const struct conf_entry	*e = conf_entry(s, key);

	return e ? e->value : def;
}

int
conf_error(const struct conf *c, int line, char *err, size_t errlen,
    const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		str_err(err, errlen, "%s:%d: %s", c->path, line, msg);
	else
		str_err(err, errlen, "%s: %s", c->path, msg);
	return -1;
}

int
conf_bool(const struct conf *c, const struct conf_section *s, const char *key,
    int *r, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };
	const struct conf_entry	*e;
	int			 i;

	if ((e = conf_entry(s, key)) == NULL)
		return 0;
	for (i = 0; yes[i]; i++) {
		if (strcasecmp(e->value, yes[i]) == 0) {
			*r = 1;
			return 1;
		}
		if (strcasecmp(e->value, no[i]) == 0) {
			*r = 0;
			return 1;
		}
	}
	return conf_error(c, e->line, err, errlen,
	    "%s: expected yes or no, got '%.64s'", e->key, e->value);
}

int
conf_long(const struct conf *c, const struct conf_section *s, const char *key,
    long min, long max, long *r, char *err, size_t errlen)
{
	const struct conf_entry	*e;
	char			*end;
	long			 v;

	if ((e = conf_entry(s, key)) == NULL)
		return 0;
	errno = 0;
	v = strtol(e->value, &end, 10);
	if (e->value[0] == '\0' || isspace((unsigned char)e->value[0]) ||
	    *end != '\0' || errno == ERANGE || v < min || v > max)
		return conf_error(c, e->line, err, errlen,
		    "%s: expected an integer from %ld to %ld, got '%.64s'",
		    e->key, min, max, e->value);
	*r = v;
	return 1;
}

int
conf_size(const struct conf *c, const struct conf_section *s, const char *key,
    unsigned long long *r, char *err, size_t errlen)
{
	const struct conf_entry	*e;

	if ((e = conf_entry(s, key)) == NULL)
		return 0;
	if (str_size(e->value, r) == -1)
		return conf_error(c, e->line, err, errlen,
		    "%s: expected a size (123, 10K, 64M, 1G), got '%.64s'",
		    e->key, e->value);
	return 1;
}

int
conf_duration(const struct conf *c, const struct conf_section *s,
    const char *key, long *seconds_r, char *err, size_t errlen)
{
	const struct conf_entry	*e;
	const char		*p;
	long			 v = 0, mul = 1;

	if ((e = conf_entry(s, key)) == NULL)
		return 0;
	p = e->value;
	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (LONG_MAX - 9) / 10)
			goto bad;
		v = v * 10 + (*p - '0');
	}
	switch (*p) {
	case 's': p++; break;
	case 'm': mul = 60; p++; break;
	case 'h': mul = 3600; p++; break;
	case 'd': mul = 86400; p++; break;
	}
	if (*p != '\0' || v > LONG_MAX / mul)
		goto bad;
	*seconds_r = v * mul;
	return 1;
bad:
	return conf_error(c, e->line, err, errlen,
	    "%s: expected a duration (30, 30s, 5m, 2h, 1d), got '%.64s'",
	    e->key, e->value);
}

int
conf_enum(const struct conf *c, const struct conf_section *s, const char *key,
    const char *const *words, int *r, char *err, size_t errlen)
{
	const struct conf_entry	*e;
	struct buf		 b;
	int			 i;

	if ((e = conf_entry(s, key)) == NULL)
		return 0;
	for (i = 0; words[i]; i++) {
		if (strcasecmp(e->value, words[i]) == 0) {
			*r = i;
			return 1;
		}
	}
	buf_init(&b, 1024);
	for (i = 0; words[i]; i++)
		(void)buf_printf(&b, "%s%s", i ? ", " : "", words[i]);
	(void)conf_error(c, e->line, err, errlen,
	    "%s: expected one of %s, got '%.64s'", e->key,
	    b.data ? b.data : "", e->value);
	buf_free(&b);
	return -1;
}

/* The first line of a secret file, without its line end. */
static int
read_secret(const char *path, char **r, char *msg, size_t msglen)
{
	struct stat	 st;
	char		 buf[SECRET_MAX + 1];
	char		*nl;
	size_t		 len = 0;
	ssize_t		 n;
	int		 fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		str_err(msg, msglen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		str_err(msg, msglen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	while (len < SECRET_MAX && (n = read(fd, buf + len,
	    SECRET_MAX - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			str_err(msg, msglen, "%s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
		if (memchr(buf, '\n', len) != NULL)
			break;
	}
	buf[len] = '\0';
	if ((nl = memchr(buf, '\n', len)) != NULL)
		len = (size_t)(nl - buf);
	else if (len == SECRET_MAX) {
		str_err(msg, msglen,
		    "%s: first line longer than %d bytes", path,
		    SECRET_MAX);
		goto out;
	}
	if (len > 0 && buf[len - 1] == '\r')
		len--;
	buf[len] = '\0';
	if (len == 0) {
		str_err(msg, msglen, "%s: empty first line", path);
		goto out;
	}
	if (memchr(buf, '\0', len) != NULL) {
		str_err(msg, msglen, "%s: NUL byte in the secret", path);
		goto out;
	}
	if ((*r = strdup(buf)) == NULL) {
		str_err(msg, msglen, "out of memory");
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return rc;
}

int
conf_secret(const struct conf *c, const struct conf_section *s, const char *key,
    char **r, char *err, size_t errlen)
{
	const struct conf_entry	*e;
	char			 msg[512];

	if ((e = conf_entry(s, key)) == NULL)
		return 0;
	if (strncmp(e->value, "file:", 5) != 0) {
		if ((*r = strdup(e->value)) == NULL)
			return conf_error(c, e->line, err, errlen,
			    "%s: out of memory", e->key);
		return 1;
	}
	if (e->value[5] == '\0')
		return conf_error(c, e->line, err, errlen,
		    "%s: expected a path after 'file:'", e->key);
	if (read_secret(e->value + 5, r, msg, sizeof(msg)) == -1)
		return conf_error(c, e->line, err, errlen, "%s: %s", e->key,
		    msg);
	return 1;
}

int
conf_check_keys(const struct conf *c, const struct conf_section *s,
    const char *const *allowed, char *err, size_t errlen)
{
	char	name[384];
	size_t	i, j;

	if (s == NULL)
		return 0;
	for (i = 0; i < s->nentries; i++) {
		for (j = 0; allowed[j]; j++)
			if (strcasecmp(s->entries[i].key, allowed[j]) == 0)
				break;
		if (allowed[j] == NULL)
			return conf_error(c, s->entries[i].line, err, errlen,
			    "unknown key '%s' in %s", s->entries[i].key,
			    section_name(s, name, sizeof(name)));
	}
	return 0;
}
