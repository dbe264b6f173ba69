/*
 * state.c -- what fetch remembers per account, in one small text file:
 *
 *	# courriel fetch state 1
 *	folder INBOX 1700000000 1:4812,4815:5000
 *	uidl 000001a24f3c
 *	pending INBOX 4813 - 1700000123.M5P6Q7R8.host
 *
 * folder: a name (%XX-escaped), its UIDVALIDITY and the UIDs done as
 * ranges. uidl: one POP3 message done. pending: a message being
 * committed into the Maildir (the intent record, written before the
 * commit; see fstate_recover). The file is replaced atomically (temp,
 * fsync, rename, fsync of the directory) and guarded by an flock on
 * FILE.lock, so two runs never fetch the same account at once.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fetch.h"

#define STATE_MAX	(64UL << 20)

/* uidset: sorted disjoint ranges */

int
uidset_has(const struct uidset *s, unsigned long u)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (u < s->r[mid].lo)
			hi = mid;
		else if (u > s->r[mid].hi)
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

int
uidset_add(struct uidset *s, unsigned long lo, unsigned long hi)
{
	size_t i, j;

	if (lo > hi) {
		unsigned long t = lo;

		lo = hi;
		hi = t;
	}
	/* fast path: appending in order, as fetch does */
	if (s->n > 0 && lo >= s->r[s->n - 1].lo) {
		struct range *last = &s->r[s->n - 1];

		if (lo <= last->hi + 1) {
			if (hi > last->hi)
				last->hi = hi;
			return 0;
		}
	}
	/* find the first range that ends at or after lo - 1 */
	for (i = 0; i < s->n && s->r[i].hi + 1 < lo; i++)
		;
	/* merge every range that touches [lo, hi] */
	for (j = i; j < s->n && s->r[j].lo <= hi + 1 && (hi + 1 != 0); j++) {
		if (s->r[j].lo < lo)
			lo = s->r[j].lo;
		if (s->r[j].hi > hi)
			hi = s->r[j].hi;
	}
	if (j == i) {
		if (s->n == s->cap) {
			size_t nc = s->cap ? s->cap * 2 : 16;
			struct range *nr;

			if (nc > SIZE_MAX / sizeof(*nr))
				return -1;
			nr = reallocarray(s->r, nc, sizeof(*nr));
			if (nr == NULL)
				return -1;
			s->r = nr;
			s->cap = nc;
		}
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
		s->n++;
	} else if (j - i > 1) {
		memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(*s->r));
		s->n -= j - i - 1;
	}
	s->r[i].lo = lo;
	s->r[i].hi = hi;
	return 0;
}

int
uidset_parse(struct uidset *s, const char *p)
{
	while (*p != '\0') {
		unsigned long lo, hi;
		char *end;

		errno = 0;
		lo = strtoul(p, &end, 10);
		if (end == p || errno || lo == 0 || lo > 0xffffffffUL)
			return -1;
		hi = lo;
		p = end;
		if (*p == ':') {
			p++;
			hi = strtoul(p, &end, 10);
			if (end == p || errno || hi == 0 || hi > 0xffffffffUL)
				return -1;
			p = end;
		}
		if (uidset_add(s, lo, hi) == -1)
			return -1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

int
uidset_format(const struct uidset *s, struct buf *b)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		int rc;

		if (s->r[i].lo == s->r[i].hi)
			rc = buf_printf(b, "%s%lu", i ? "," : "", s->r[i].lo);
		else
			rc = buf_printf(b, "%s%lu:%lu", i ? "," : "",
			    s->r[i].lo, s->r[i].hi);
		if (rc == -1)
			return -1;
	}
	return 0;
}

unsigned long
uidset_first_missing(const struct uidset *s)
{
	if (s->n == 0 || s->r[0].lo > 1)
		return 1;
	return s->r[0].hi + 1;
}

void
uidset_free(struct uidset *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
}

/* folder names are %XX-escaped: no blanks or controls in the file */
static int
name_escape(const char *s, struct buf *b)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f || c == '%') {
			if (buf_printf(b, "%%%02X", c) == -1)
				return -1;
		} else if (buf_addc(b, c) == -1)
			return -1;
	}
	return 0;
}

static int
name_unescape(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (*s == '%') {
			unsigned int v;

			if (sscanf(s + 1, "%2X", &v) != 1 || v == 0)
				return -1;
			*w++ = (char)v;
			s += 2;
		} else
			*w++ = *s;
	}
	*w = '\0';
	return 0;
}

struct fstate_folder *
fstate_folder(struct fstate *st, const char *name, int create)
{
	struct fstate_folder *nf;
	size_t i;

	for (i = 0; i < st->nfolders; i++)
		if (strcmp(st->folders[i].name, name) == 0)
			return &st->folders[i];
	if (!create)
		return NULL;
	nf = reallocarray(st->folders, st->nfolders + 1, sizeof(*nf));
	if (nf == NULL)
		return NULL;
	st->folders = nf;
	nf = &st->folders[st->nfolders];
	memset(nf, 0, sizeof(*nf));
	if ((nf->name = strdup(name)) == NULL)
		return NULL;
	st->nfolders++;
	return nf;
}

static int
uidl_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
fstate_uidl_has(const struct fstate *st, const char *uidl)
{
	if (st->nuidls == 0)
		return 0;
	return bsearch(&uidl, st->uidls, st->nuidls, sizeof(char *),
	    uidl_cmp) != NULL;
}

int
fstate_uidl_add(struct fstate *st, const char *uidl)
{
	size_t lo = 0, hi = st->nuidls;
	char *copy;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(uidl, st->uidls[mid]);

		if (c == 0)
			return 0;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (st->nuidls == st->capuidls) {
		size_t nc = st->capuidls ? st->capuidls * 2 : 64;
		char **nu = reallocarray(st->uidls, nc, sizeof(char *));

		if (nu == NULL)
			return -1;
		st->uidls = nu;
		st->capuidls = nc;
	}
	if ((copy = strdup(uidl)) == NULL)
		return -1;
	memmove(&st->uidls[lo + 1], &st->uidls[lo],
	    (st->nuidls - lo) * sizeof(char *));
	st->uidls[lo] = copy;
	st->nuidls++;
	return 0;
}

void
fstate_uidl_prune(struct fstate *st, int (*keep)(const char *, void *),
    void *arg)
{
	size_t i, w = 0;

	for (i = 0; i < st->nuidls; i++) {
		if (keep(st->uidls[i], arg))
			st->uidls[w++] = st->uidls[i];
		else
			free(st->uidls[i]);
	}
	st->nuidls = w;
}

int
fstate_pending_add(struct fstate *st, const char *folder, unsigned long uid,
    const char *uidl, const char *base)
{
	struct fstate_pending *p;

	if (st->npending == st->cappending) {
		size_t nc = st->cappending ? st->cappending * 2 : 64;

		p = reallocarray(st->pending, nc, sizeof(*p));
		if (p == NULL)
			return -1;
		st->pending = p;
		st->cappending = nc;
	}
	p = &st->pending[st->npending];
	memset(p, 0, sizeof(*p));
	p->uid = uid;
	if ((folder && (p->folder = strdup(folder)) == NULL) ||
	    (uidl && (p->uidl = strdup(uidl)) == NULL) ||
	    (p->base = strdup(base)) == NULL) {
		free(p->folder);
		free(p->uidl);
		return -1;
	}
	st->npending++;
	return 0;
}

void
fstate_pending_clear(struct fstate *st)
{
	size_t i;

	for (i = 0; i < st->npending; i++) {
		free(st->pending[i].folder);
		free(st->pending[i].uidl);
		free(st->pending[i].base);
	}
	st->npending = 0;
}

static int
state_parse_line(struct fstate *st, char *line)
{
	char *f[5];
	int n = 0;
	char *save = NULL, *tok;

	for (tok = strtok_r(line, " ", &save); tok != NULL && n < 5;
	    tok = strtok_r(NULL, " ", &save))
		f[n++] = tok;
	if (tok != NULL)
		return -1;
	if (n == 0)
		return 0;
	if (strcmp(f[0], "folder") == 0 && (n == 3 || n == 4)) {
		struct fstate_folder *sf;
		char *end;

		if (name_unescape(f[1]) == -1 ||
		    (sf = fstate_folder(st, f[1], 1)) == NULL)
			return -1;
		errno = 0;
		sf->uidvalidity = strtoul(f[2], &end, 10);
		if (*end != '\0' || errno)
			return -1;
		return n == 4 ? uidset_parse(&sf->done, f[3]) : 0;
	}
	if (strcmp(f[0], "uidl") == 0 && n == 2)
		return fstate_uidl_add(st, f[1]);
	if (strcmp(f[0], "pending") == 0 && n == 5) {
		char *end;
		unsigned long uid;
		int pop = strcmp(f[1], "-") == 0;

		if (!pop && name_unescape(f[1]) == -1)
			return -1;
		errno = 0;
		uid = strtoul(f[2], &end, 10);
		if (*end != '\0' || errno)
			return -1;
		return fstate_pending_add(st, pop ? NULL : f[1], uid,
		    strcmp(f[3], "-") ? f[3] : NULL, f[4]);
	}
	return -1;
}

static int
state_load(struct fstate *st, char *err, size_t errlen)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	if ((fp = fopen(st->path, "re")) == NULL) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: open: %s", st->path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		if ((size_t)len > STATE_MAX || state_parse_line(st, line) == -1) {
			snprintf(err, errlen, "%s:%d: malformed state line",
			    st->path, lineno);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(fp)) {
		snprintf(err, errlen, "%s: read: %s", st->path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(fp);
	return rc;
}

/* Makes the parent directories of path (mode 0700) when missing. */
static int
mkparents(const char *path, char *err, size_t errlen)
{
	char dir[PATH_MAX], *p;

	if (str_lcpy(dir, path, sizeof(dir)) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	for (p = dir + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "%s: mkdir: %s", dir,
			    strerror(errno));
			return -1;
		}
		*p = '/';
	}
	return 0;
}

int
fstate_open(struct fstate *st, const char *path, int wait, char *err,
    size_t errlen)
{
	char lock[PATH_MAX];

	memset(st, 0, sizeof(*st));
	st->lockfd = -1;
	if ((st->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	if (str_fmt(lock, sizeof(lock), "%s.lock", path) == -1) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	if (mkparents(path, err, errlen) == -1)
		return -1;
	st->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (st->lockfd == -1) {
		snprintf(err, errlen, "%s: open: %s", lock, strerror(errno));
		return -1;
	}
	if (flock(st->lockfd, LOCK_EX | (wait ? 0 : LOCK_NB)) == -1) {
		if (errno == EWOULDBLOCK)
			return 0;
		snprintf(err, errlen, "%s: flock: %s", lock, strerror(errno));
		return -1;
	}
	if (state_load(st, err, errlen) == -1)
		return -1;
	return 1;
}

static int
state_format(const struct fstate *st, struct buf *b)
{
	size_t i;

	if (buf_adds(b, "# courriel fetch state 1\n") == -1)
		return -1;
	for (i = 0; i < st->nfolders; i++) {
		const struct fstate_folder *f = &st->folders[i];

		if (buf_adds(b, "folder ") == -1 || name_escape(f->name, b) == -1 ||
		    buf_printf(b, " %lu", f->uidvalidity) == -1)
			return -1;
		if (f->done.n > 0 && (buf_addc(b, ' ') == -1 ||
		    uidset_format(&f->done, b) == -1))
			return -1;
		if (buf_addc(b, '\n') == -1)
			return -1;
	}
	for (i = 0; i < st->nuidls; i++)
		if (buf_printf(b, "uidl %s\n", st->uidls[i]) == -1)
			return -1;
	for (i = 0; i < st->npending; i++) {
		const struct fstate_pending *p = &st->pending[i];

		if (buf_adds(b, "pending ") == -1)
			return -1;
		if (p->folder ? name_escape(p->folder, b) : buf_adds(b, "-"))
			return -1;
		if (buf_printf(b, " %lu %s %s\n", p->uid, p->uidl ? p->uidl : "-",
		    p->base) == -1)
			return -1;
	}
	return 0;
}

/* Writes PATH.tmp; fsyncs it when sync. 0 or -1 with err. */
int
fstate_write_temp(struct fstate *st, int sync, char *err, size_t errlen)
{
	struct buf b;
	char tmp[PATH_MAX];
	int fd;
	size_t off = 0;

	buf_init(&b, STATE_MAX);
	if (state_format(st, &b) == -1) {
		snprintf(err, errlen, "%s: state too large", st->path);
		buf_free(&b);
		return -1;
	}
	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", st->path) == -1) {
		snprintf(err, errlen, "%s: path too long", st->path);
		buf_free(&b);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		snprintf(err, errlen, "%s: open: %s", tmp, strerror(errno));
		buf_free(&b);
		return -1;
	}
	while (off < b.len) {
		ssize_t w = write(fd, b.data + off, b.len - off);

		if (w == -1 && errno == EINTR)
			continue;
		if (w <= 0) {
			snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
			goto fail;
		}
		off += (size_t)w;
	}
	if (sync && fsync(fd) == -1) {
		snprintf(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "%s: close: %s", tmp, strerror(errno));
		goto fail;
	}
	buf_free(&b);
	return 0;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	buf_free(&b);
	return -1;
}

/* Renames PATH.tmp over PATH; fsyncs the directory when sync. */
int
fstate_install(struct fstate *st, int sync, char *err, size_t errlen)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash;
	int dfd;

	if (str_fmt(tmp, sizeof(tmp), "%s.tmp", st->path) == -1) {
		snprintf(err, errlen, "%s: path too long", st->path);
		return -1;
	}
	if (rename(tmp, st->path) == -1) {
		snprintf(err, errlen, "%s: rename: %s", st->path, strerror(errno));
		return -1;
	}
	if (!sync)
		return 0;
	str_lcpy(dir, st->path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) != NULL)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		str_lcpy(dir, ".", sizeof(dir));
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		snprintf(err, errlen, "%s: fsync: %s", dir, strerror(errno));
		if (dfd != -1)
			close(dfd);
		return -1;
	}
	close(dfd);
	return 0;
}

int
fstate_save(struct fstate *st, char *err, size_t errlen)
{
	if (fstate_write_temp(st, 1, err, errlen) == -1)
		return -1;
	return fstate_install(st, 1, err, errlen);
}

/* 1 when dir holds a file named base followed by ',' ':' or nothing. */
static int
dir_has_base(const char *dir, const char *base)
{
	DIR *d;
	struct dirent *e;
	size_t n = strlen(base);
	int found = 0;

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, base, n) == 0 &&
		    (e->d_name[n] == '\0' || e->d_name[n] == ',' ||
		    e->d_name[n] == ':')) {
			found = 1;
			break;
		}
	}
	closedir(d);
	return found;
}

int
fstate_recover(struct fstate *st, const char *maildir, char *err, size_t errlen)
{
	size_t i;
	int found = 0;

	for (i = 0; i < st->npending; i++) {
		struct fstate_pending *p = &st->pending[i];
		char path[PATH_MAX];
		int in = 0;

		if (maildir != NULL) {
			const char *sub[] = { "new", "cur" };
			size_t k;

			for (k = 0; k < 2 && !in; k++) {
				if (str_fmt(path, sizeof(path), "%s/%s", maildir,
				    sub[k]) == -1)
					continue;
				if ((in = dir_has_base(path, p->base)) == -1) {
					snprintf(err, errlen, "%s: %s", path,
					    strerror(errno));
					return -1;
				}
			}
			/* the temp file of an interrupted commit */
			if (str_fmt(path, sizeof(path), "%s/tmp/%s", maildir,
			    p->base) == 0)
				(void)unlink(path);
		}
		if (!in)
			continue;
		found++;
		if (p->uidl != NULL) {
			if (fstate_uidl_add(st, p->uidl) == -1)
				goto nomem;
		} else if (p->folder != NULL) {
			struct fstate_folder *f = fstate_folder(st, p->folder, 1);

			if (f == NULL || uidset_add(&f->done, p->uid, p->uid) == -1)
				goto nomem;
		}
	}
	fstate_pending_clear(st);
	return found;
nomem:
	snprintf(err, errlen, "%s", strerror(errno));
	return -1;
}

void
fstate_close(struct fstate *st)
{
	size_t i;

	fstate_pending_clear(st);
	free(st->pending);
	for (i = 0; i < st->nfolders; i++) {
		free(st->folders[i].name);
		uidset_free(&st->folders[i].done);
	}
	free(st->folders);
	for (i = 0; i < st->nuidls; i++)
		free(st->uidls[i]);
	free(st->uidls);
	if (st->lockfd != -1)
		close(st->lockfd);	/* releases the flock */
	free(st->path);
	memset(st, 0, sizeof(*st));
	st->lockfd = -1;
}
