/*
 * table -- inline and file lookup tables (see table.h, courriel.conf(5)).
 *
 * A table's content is one buffer parsed in place (keys and values point
 * into it), an array of entries in file order and an open-addressing hash
 * index over them (load factor at most 1/2, seeded per table), so a lookup
 * is O(1) and a 100,000-line file loads in a few milliseconds. A file
 * table is re-read when its identity (device, inode, size, mtime, ctime)
 * changes, checked at most once a second; a re-read that fails keeps the
 * old content. A file modified during the second it was read is "racy":
 * a change within the same timestamp tick could be invisible to stat(2),
 * so it is read again at the next check.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "table.h"

#define TABLE_MAX_SIZE	(256 * 1024 * 1024)	/* a table file */
#define TABLE_MAX_ITEMS	(UINT32_MAX / 4)

struct tentry {
	const char	*key;
	const char	*val;
	uint64_t	 hash;
	uint32_t	 line;		/* line (file) or item (inline) number */
};

struct content {
	char		*data;		/* keys and values live here */
	size_t		 datalen;	/* bytes allocated at data */
	struct tentry	*entries;	/* in file order */
	size_t		 n, cap;
	uint32_t	*slots;		/* index + 1 into entries; 0 is empty */
	size_t		 mask;		/* number of slots - 1 */
};

struct table {
	char		*spec;
	char		*path;		/* file tables only */
	struct content	 c;
	uint64_t	 seed;
	/* What the file was when last read. */
	dev_t		 dev;
	ino_t		 ino;
	off_t		 size;
	struct timespec	 mtime, ctime;
	int		 racy;
	struct timespec	 checked;	/* CLOCK_MONOTONIC of the last check */
	int		 busy;		/* inside table_foreach: no reload */
	unsigned long	 gen;		/* loads so far */
	char		 error[512];	/* why the last re-read failed, or "" */
};

static const char	empty[] = "";

/* ASCII only: the C locale's idea of case, whatever the locale. */
static unsigned char
fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static int
nocase_eq(const char *a, const char *b)
{
	for (; *a != '\0' && fold((unsigned char)*a) == fold((unsigned char)*b);
	    a++, b++)
		;
	return *a == '\0' && *b == '\0';
}

/*
 * FNV-1a over the case-folded key, seeded, with a final mix so the low
 * bits (the slot) are good. Folded, so that keys differing only in case
 * share a probe sequence (in file order) for table_lookup_nocase; exact
 * lookups still compare with strcmp.
 */
static uint64_t
hash(uint64_t seed, const char *s)
{
	uint64_t	h = 0xcbf29ce484222325ULL ^ seed;

	for (; *s; s++) {
		h ^= fold((unsigned char)*s);
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/*
 * Wiped before it is freed: a table may hold password hashes or relay
 * secrets, and a process forked later (a session) must not find an old
 * copy in freed memory.
 */
static void
content_free(struct content *c)
{
	if (c->data != NULL)
		explicit_bzero(c->data, c->datalen);
	free(c->data);
	free(c->entries);
	free(c->slots);
	memset(c, 0, sizeof(*c));
}

/* Appends an entry (the index is built after). 0, or -1 ENOMEM. */
static int
add(struct content *c, const char *key, const char *val, uint32_t line)
{
	struct tentry	*ne;
	size_t		 ncap, bytes;

	if (c->n == c->cap) {
		ncap = c->cap ? c->cap * 2 : 16;
		if (ncap > TABLE_MAX_ITEMS ||
		    size_mul(ncap, sizeof(*ne), &bytes) == -1 ||
		    (ne = realloc(c->entries, bytes)) == NULL) {
			errno = ENOMEM;
			return -1;
		}
		c->entries = ne;
		c->cap = ncap;
	}
	c->entries[c->n].key = key;
	c->entries[c->n].val = val;
	c->entries[c->n].line = line;
	c->n++;
	return 0;
}

/*
 * Builds the hash index. 0, or -1 with *dup set to the entry whose key
 * repeats an earlier one (*first is that earlier one), or ENOMEM.
 */
static int
index_build(struct content *c, uint64_t seed, size_t *dup, size_t *first)
{
	size_t	nslots = 8, i, s, bytes;
	uint32_t j;

	while (nslots < c->n * 2)
		nslots *= 2;
	if (size_mul(nslots, sizeof(*c->slots), &bytes) == -1 ||
	    (c->slots = calloc(nslots, sizeof(*c->slots))) == NULL) {
		errno = ENOMEM;
		*dup = SIZE_MAX;
		return -1;
	}
	c->mask = nslots - 1;
	for (i = 0; i < c->n; i++) {
		c->entries[i].hash = hash(seed, c->entries[i].key);
		for (s = c->entries[i].hash & c->mask; (j = c->slots[s]) != 0;
		    s = (s + 1) & c->mask) {
			if (c->entries[j - 1].hash == c->entries[i].hash &&
			    strcmp(c->entries[j - 1].key, c->entries[i].key) == 0) {
				*dup = i;
				*first = j - 1;
				return -1;
			}
		}
		c->slots[s] = (uint32_t)(i + 1);
	}
	return 0;
}

/* The entry for key (nocase: the first in file order without case). */
static const struct tentry *
find(const struct content *c, uint64_t seed, const char *key, int nocase)
{
	uint64_t	h;
	size_t		s;
	uint32_t	j;

	if (c->slots == NULL)
		return NULL;
	h = hash(seed, key);
	for (s = h & c->mask; (j = c->slots[s]) != 0; s = (s + 1) & c->mask)
		if (c->entries[j - 1].hash == h && (nocase ?
		    nocase_eq(c->entries[j - 1].key, key) :
		    strcmp(c->entries[j - 1].key, key) == 0))
			return &c->entries[j - 1];
	return NULL;
}

/*
 * One side of an inline item: a "quoted string" (with \" and \\) or raw
 * text up to a separator in stops, trimmed. Writes it NUL-terminated at
 * *wp. Returns the position after it, or NULL with err.
 */
static const char *
inline_word(const char *r, const char *stops, char **wp, char *err,
    size_t errlen, size_t item)
{
	char		*w = *wp;
	const char	*end;

	while (isspace((unsigned char)*r))
		r++;
	if (*r == '"') {
		for (r++; *r != '"'; r++) {
			if (*r == '\0') {
				str_err(err, errlen, "inline table: item %zu: "
				    "missing closing '\"'", item);
				return NULL;
			}
			if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
				r++;
			*w++ = *r;
		}
		r++;
		while (isspace((unsigned char)*r))
			r++;
		if (*r != '\0' && strchr(stops, *r) == NULL) {
			str_err(err, errlen,
			    "inline table: item %zu: unexpected "
			    "'%c' after a quoted string", item, *r);
			return NULL;
		}
	} else {
		end = r + strcspn(r, stops);
		while (end > r && isspace((unsigned char)end[-1]))
			end--;
		memcpy(w, r, (size_t)(end - r));
		w += end - r;
		r = end;
		while (isspace((unsigned char)*r))
			r++;
	}
	*w++ = '\0';
	*wp = w;
	return r;
}

/* `a, b`, `k = v, k2 = v2`, optionally inside { }. */
static int
parse_inline(struct content *c, const char *spec, char *err, size_t errlen)
{
	const char	*r;
	char		*copy, *w, *key, *val;
	size_t		 len, item;
	int		 rc = -1;

	while (isspace((unsigned char)*spec))
		spec++;
	len = strlen(spec);
	while (len > 0 && isspace((unsigned char)spec[len - 1]))
		len--;
	if (len > 0 && spec[0] == '{') {
		if (len < 2 || spec[len - 1] != '}') {
			str_err(err, errlen,
			    "inline table: missing closing '}'");
			return -1;
		}
		spec++;
		len -= 2;
	}
	/*
	 * Keys and values are written into data, read from a copy: an item
	 * `k=v,` (or `k,`) becomes `k\0v\0` (or `k\0`), so the output is
	 * at most one byte longer than the input.
	 */
	if ((c->data = malloc(len + 2)) == NULL ||
	    (copy = strndup(spec, len)) == NULL) {
		str_err(err, errlen, "inline table: out of memory");
		return -1;
	}
	c->datalen = len + 2;
	r = copy;
	w = c->data;
	while (isspace((unsigned char)*r))
		r++;
	for (item = 1; *r != '\0'; item++) {
		key = w;
		if ((r = inline_word(r, ",=", &w, err, errlen, item)) == NULL)
			goto out;
		val = (char *)empty;
		if (*r == '=') {
			val = w;
			if ((r = inline_word(r + 1, ",", &w, err, errlen,
			    item)) == NULL)
				goto out;
		}
		if (*key == '\0') {
			str_err(err, errlen,
			    "inline table: item %zu: empty key",
			    item);
			goto out;
		}
		if (add(c, key, val, (uint32_t)item) == -1) {
			str_err(err, errlen, "inline table: out of memory");
			goto out;
		}
		if (*r == ',')
			r++;
		while (isspace((unsigned char)*r))
			r++;
	}
	rc = 0;
out:
	explicit_bzero(copy, len);
	free(copy);
	return rc;
}

/*
 * OpenSMTPD's table file format: `key value`, `key: value`, or `key`
 * alone; '#' at the start of a line is a comment. The key ends at white
 * space or at a ':' followed by white space (so `::1` or `a:b` are keys).
 */
static int
parse_file(struct content *c, const char *path, size_t len, char *err,
    size_t errlen)
{
	char		*p = c->data, *end = c->data + len, *nl, *k, *ke, *v, *e;
	uint32_t	 line = 0;

	if (memchr(c->data, '\0', len) != NULL) {
		for (e = c->data; *e; e++)
			if (*e == '\n')
				line++;
		str_err(err, errlen, "%s:%u: NUL byte", path, line + 1);
		return -1;
	}
	for (; p < end; p = nl + 1) {
		line++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		*nl = '\0';
		for (e = nl; e > p && isspace((unsigned char)e[-1]); e--)
			;
		*e = '\0';
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		for (k = p, ke = p; *ke != '\0' && !isspace((unsigned char)*ke) &&
		    !(*ke == ':' && (ke[1] == '\0' ||
		    isspace((unsigned char)ke[1]))); ke++)
			;
		v = ke;
		if (*v == ':')
			v++;
		while (isspace((unsigned char)*v))
			v++;
		*ke = '\0';
		if (add(c, k, *v ? v : empty, line) == -1) {
			str_err(err, errlen, "%s: out of memory", path);
			return -1;
		}
	}
	return 0;
}

static int
read_file(struct table *t, struct content *c, struct stat *st, char *err,
    size_t errlen)
{
	size_t		len = 0;
	ssize_t		n;
	int		fd;

	if ((fd = open(t->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) == -1) {
		str_err(err, errlen, "%s: %s", t->path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		str_err(err, errlen, "%s: %s", t->path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		str_err(err, errlen, "%s: not a regular file", t->path);
		goto fail;
	}
	if (st->st_size > TABLE_MAX_SIZE) {
		str_err(err, errlen, "%s: too large (max %d bytes)", t->path,
		    TABLE_MAX_SIZE);
		goto fail;
	}
	if ((c->data = malloc((size_t)st->st_size + 1)) == NULL) {
		str_err(err, errlen, "%s: out of memory", t->path);
		goto fail;
	}
	c->datalen = (size_t)st->st_size + 1;
	/* Read what fstat said; a file that grows meanwhile changes again. */
	while (len < (size_t)st->st_size &&
	    (n = read(fd, c->data + len, (size_t)st->st_size - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			str_err(err, errlen,
			    "%s: %s", t->path, strerror(errno));
			goto fail;
		}
		len += (size_t)n;
	}
	c->data[len] = '\0';
	close(fd);
	return parse_file(c, t->path, len, err, errlen) == -1 ? -1 : 0;
fail:
	close(fd);
	return -1;
}

/* Reads the table's source into a new content; t is unchanged on error. */
static int
load(struct table *t, char *err, size_t errlen)
{
	struct content	 c;
	struct stat	 st;
	struct timespec	 now;
	size_t		 dup = 0, first = 0;
	int		 rc;

	memset(&c, 0, sizeof(c));
	memset(&st, 0, sizeof(st));
	if (t->path)
		rc = read_file(t, &c, &st, err, errlen);
	else
		rc = parse_inline(&c, t->spec, err, errlen);
	if (rc == 0 && index_build(&c, t->seed, &dup, &first) == -1) {
		if (dup == SIZE_MAX)
			str_err(err, errlen, "%s: out of memory",
			    t->path ? t->path : "inline table");
		else if (t->path)
			str_err(err, errlen,
			    "%s:%u: duplicate key '%.100s' (first "
			    "at line %u)", t->path, c.entries[dup].line,
			    c.entries[dup].key, c.entries[first].line);
		else
			str_err(err, errlen,
			    "inline table: item %u: duplicate key "
			    "'%.100s'", c.entries[dup].line, c.entries[dup].key);
		rc = -1;
	}
	if (rc == -1) {
		content_free(&c);
		return -1;
	}
	content_free(&t->c);
	t->c = c;
	t->gen++;
	if (t->path) {
		t->dev = st.st_dev;
		t->ino = st.st_ino;
		t->size = st.st_size;
		t->mtime = st.st_mtim;
		t->ctime = st.st_ctim;
		clock_gettime(CLOCK_REALTIME, &now);
		/* Within a second of now (not a clock skewed far ahead). */
		t->racy = (st.st_mtim.tv_sec >= now.tv_sec - 1 &&
		    st.st_mtim.tv_sec <= now.tv_sec + 1) ||
		    (st.st_ctim.tv_sec >= now.tv_sec - 1 &&
		    st.st_ctim.tv_sec <= now.tv_sec + 1);
	}
	return 0;
}

int
table_open(struct table **tp, const char *spec, char *err, size_t errlen)
{
	struct table	*t;
	const char	*p;

	*tp = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->spec = strdup(spec)) == NULL) {
		free(t);
		str_err(err, errlen, "table: out of memory");
		return -1;
	}
	for (p = spec; isspace((unsigned char)*p); p++)
		;
	if (strncmp(p, "file:", 5) == 0) {
		if ((t->path = strdup(p + 5)) == NULL) {
			table_close(t);
			str_err(err, errlen, "table: out of memory");
			return -1;
		}
		str_trim(t->path);
		if (t->path[0] == '\0') {
			table_close(t);
			str_err(err, errlen,
			    "table: expected a path after 'file:'");
			return -1;
		}
	}
	t->seed = (uint64_t)(uintptr_t)t ^ (uint64_t)time(NULL) << 20 ^
	    (uint64_t)getpid() << 40;
	if (load(t, err, errlen) == -1) {
		table_close(t);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t->checked);
	*tp = t;
	return 0;
}

void
table_close(struct table *t)
{
	if (t == NULL)
		return;
	content_free(&t->c);
	free(t->spec);
	free(t->path);
	free(t);
}

void
table_wipe_free(struct table *t)
{
	if (t == NULL)
		return;
	explicit_bzero(t->spec, strlen(t->spec));	/* an inline table */
	table_close(t);		/* content_free wipes the content */
}

int
table_reload(struct table *t, char *err, size_t errlen)
{
	clock_gettime(CLOCK_MONOTONIC, &t->checked);
	if (t->path == NULL)
		return 0;
	if (t->busy) {
		str_err(err, errlen, "%s: in use by table_foreach", t->path);
		return -1;
	}
	if (load(t, t->error, sizeof(t->error)) == -1) {
		str_err(err, errlen, "%s", t->error);
		return -1;
	}
	t->error[0] = '\0';
	return 0;
}

int
table_refresh(struct table *t, char *err, size_t errlen)
{
	struct timespec	now;
	struct stat	st;

	if (t->path == NULL || t->busy)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((long long)(now.tv_sec - t->checked.tv_sec) * 1000000000LL +
	    (now.tv_nsec - t->checked.tv_nsec) < 1000000000LL)
		return t->error[0] ? (str_err(err, errlen,
		    "%s", t->error), -1) : 0;
	t->checked = now;
	if (stat(t->path, &st) == -1) {
		str_err(t->error, sizeof(t->error), "%s: %s (keeping the table "
		    "read before)", t->path, strerror(errno));
		str_err(err, errlen, "%s", t->error);
		return -1;
	}
	if (!t->racy && st.st_dev == t->dev && st.st_ino == t->ino &&
	    st.st_size == t->size &&
	    st.st_mtim.tv_sec == t->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == t->mtime.tv_nsec &&
	    st.st_ctim.tv_sec == t->ctime.tv_sec &&
	    st.st_ctim.tv_nsec == t->ctime.tv_nsec)
		return 0;
	return table_reload(t, err, errlen);
}

const char *
table_error(const struct table *t)
{
	return t->error[0] ? t->error : NULL;
}

int
table_lookup(struct table *t, const char *key, char *val, size_t vallen)
{
	const struct tentry	*e;

	(void)table_refresh(t, NULL, 0);
	if ((e = find(&t->c, t->seed, key, 0)) == NULL)
		return 0;
	if (val != NULL && str_lcpy(val, e->val, vallen) >= vallen) {
		errno = ERANGE;
		return -1;
	}
	return 1;
}

int
table_lookup_nocase(struct table *t, const char *key, char *key_r,
    size_t keylen, char *val, size_t vallen)
{
	const struct tentry	*e;

	(void)table_refresh(t, NULL, 0);
	if ((e = find(&t->c, t->seed, key, 0)) == NULL &&
	    (e = find(&t->c, t->seed, key, 1)) == NULL)
		return 0;
	if ((key_r != NULL && str_lcpy(key_r, e->key, keylen) >= keylen) ||
	    (val != NULL && str_lcpy(val, e->val, vallen) >= vallen)) {
		errno = ERANGE;
		return -1;
	}
	return 1;
}

int
table_foreach(struct table *t, int (*fn)(const char *, const char *, void *),
    void *arg)
{
	size_t	i;
	int	rc = 0;

	(void)table_refresh(t, NULL, 0);
	t->busy++;
	for (i = 0; i < t->c.n && rc == 0; i++)
		rc = fn(t->c.entries[i].key, t->c.entries[i].val, arg);
	t->busy--;
	return rc;
}

size_t
table_count(struct table *t)
{
	(void)table_refresh(t, NULL, 0);
	return t->c.n;
}

unsigned long
table_generation(struct table *t)
{
	(void)table_refresh(t, NULL, 0);
	return t->gen;
}

const char *
table_spec(const struct table *t)
{
	return t->spec;
}
