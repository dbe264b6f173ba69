/*
 * pwtable -- see pwtable.h. The file is read whole (it is small: one line
 * per user), rewritten into a buffer, and replaced atomically, so a crash
 * or a full disk leaves either the old table or the new one, never half.
 */
#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "io.h"
#include "pwtable.h"

#define TABLE_MAX	(64UL * 1024 * 1024)

struct table_file {
	char		 path[PATH_MAX];	/* the real file (symlinks resolved) */
	int		 fd;			/* open and locked */
	struct stat	 st;
	struct buf	 data;
};

int
pwtable_user_ok(const char *name)
{
	const unsigned char	*p;

	if (*name == '\0' || *name == '#' || strlen(name) > 255)
		return 0;
	for (p = (const unsigned char *)name; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == ':')
			return 0;
	return 1;
}

/*
 * The key of a line: its first white-space separated token, without one
 * trailing ':' (aliases(5) style "user: hash"). 0 for comments and blank
 * lines. *val is set past the key and the white space after it.
 */
static int
line_key(const char *line, size_t len, const char **key, size_t *klen,
    const char **val, size_t *vlen)
{
	size_t	i = 0, k;

	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i == len || line[i] == '#' || line[i] == '\n' || line[i] == '\r')
		return 0;
	k = i;
	while (i < len && line[i] != ' ' && line[i] != '\t' &&
	    line[i] != '\n' && line[i] != '\r')
		i++;
	*key = line + k;
	*klen = i - k;
	if (*klen > 1 && line[i - 1] == ':')
		(*klen)--;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	*val = line + i;
	while (len > i && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
	    line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	*vlen = len - i;
	return 1;
}

static int
is_user(const char *line, size_t len, const char *user, const char **val,
    size_t *vlen)
{
	const char	*key;
	size_t		 klen;

	return line_key(line, len, &key, &klen, val, vlen) &&
	    klen == strlen(user) && memcmp(key, user, klen) == 0;
}

static int
read_all(struct table_file *t, char *err, size_t errlen)
{
	char	chunk[8192];
	ssize_t	n;

	buf_init(&t->data, TABLE_MAX);
	if (lseek(t->fd, 0, SEEK_SET) == -1)
		goto fail;
	while ((n = read(t->fd, chunk, sizeof(chunk))) != 0) {
		if (n == -1) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (buf_add(&t->data, chunk, (size_t)n) == -1)
			goto fail;
	}
	explicit_bzero(chunk, sizeof(chunk));
	return EX_OK;
fail:
	snprintf(err, errlen, "%s: read: %s", t->path, strerror(errno));
	explicit_bzero(chunk, sizeof(chunk));
	buf_wipe_free(&t->data);
	return EX_IOERR;
}

/*
 * Opens and locks the table. With create, a missing file is made (empty,
 * mode 0600) first. After the lock is held the path must still name the
 * file we locked: another editor may have renamed a new one over it.
 */
static int
open_locked(struct table_file *t, const char *path, int create, char *err,
    size_t errlen)
{
	struct stat	now;
	int		fd, tries;

	t->fd = -1;
	if (create) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd == -1 && errno != EEXIST) {
			snprintf(err, errlen, "%s: create: %s", path,
			    strerror(errno));
			return EX_CANTCREAT;
		}
		if (fd != -1)
			close(fd);
	}
	if (realpath(path, t->path) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? EX_NOINPUT : EX_IOERR;
	}
	for (tries = 0; tries < 100; tries++) {
		if ((t->fd = open(t->path, O_RDONLY | O_CLOEXEC)) == -1) {
			snprintf(err, errlen, "%s: open: %s", t->path,
			    strerror(errno));
			return errno == ENOENT ? EX_NOINPUT : EX_NOPERM;
		}
		if (flock(t->fd, LOCK_EX) == -1 || fstat(t->fd, &t->st) == -1) {
			snprintf(err, errlen, "%s: lock: %s", t->path,
			    strerror(errno));
			close(t->fd);
			return EX_IOERR;
		}
		if (!S_ISREG(t->st.st_mode)) {
			snprintf(err, errlen, "%s: not a regular file", t->path);
			close(t->fd);
			return EX_DATAERR;
		}
		if (stat(t->path, &now) == 0 && now.st_ino == t->st.st_ino &&
		    now.st_dev == t->st.st_dev)
			return read_all(t, err, errlen);
		close(t->fd);
	}
	snprintf(err, errlen, "%s: keeps changing under us", t->path);
	return EX_TEMPFAIL;
}

static void
close_table(struct table_file *t)
{
	if (t->fd != -1)
		close(t->fd);	/* releases the lock */
	t->fd = -1;
	buf_wipe_free(&t->data);
}

/* Replaces the table's content with out, atomically and durably. */
static int
replace(struct table_file *t, const struct buf *out, char *err, size_t errlen)
{
	char	tmp[PATH_MAX], dir[PATH_MAX];
	int	fd, dfd, e;

	if (str_fmt(tmp, sizeof(tmp), "%s.XXXXXX", t->path) == -1 ||
	    str_lcpy(dir, t->path, sizeof(dir)) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", t->path);
		return EX_CANTCREAT;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: temporary file: %s", t->path,
		    strerror(errno));
		return EX_CANTCREAT;
	}
	if (fchmod(fd, 0600) == -1 ||
	    ((t->st.st_uid != geteuid() || t->st.st_gid != getegid()) &&
	    fchown(fd, t->st.st_uid, t->st.st_gid) == -1)) {
		e = errno;
		snprintf(err, errlen, "%s: keeping owner %lu:%lu and mode 0600: "
		    "%s", tmp, (unsigned long)t->st.st_uid,
		    (unsigned long)t->st.st_gid, strerror(e));
		goto fail;
	}
	if (io_write_all(fd, out->data ? out->data : "", out->len) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: write: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "%s: close: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, t->path) == -1) {
		snprintf(err, errlen, "%s: rename to %s: %s", tmp, t->path,
		    strerror(errno));
		goto fail;
	}
	/* The rename itself must reach the disk. */
	if ((dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    fsync(dfd) == -1) {
		snprintf(err, errlen, "%s: sync directory: %s", dir,
		    strerror(errno));
		if (dfd != -1)
			close(dfd);
		return EX_IOERR;
	}
	close(dfd);
	return EX_OK;
fail:
	if (fd != -1)
		close(fd);
	unlink(tmp);
	return EX_CANTCREAT;
}

/*
 * Copies the table into out, without user's lines; with hash, the first
 * of them becomes "user<TAB>hash" (in place) or, when there was none, such
 * a line is appended. *found counts user's lines.
 */
static int
rewrite(const struct buf *in, const char *user, const char *hash,
    struct buf *out, int *found)
{
	const char	*p = in->data ? in->data : "", *end = p + in->len, *nl;
	const char	*val;
	size_t		 len, vlen;
	int		 r = 0;

	*found = 0;
	buf_init(out, TABLE_MAX + 1024);
	for (; p < end; p += len) {
		nl = memchr(p, '\n', end - p);
		len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (!is_user(p, len, user, &val, &vlen)) {
			r |= buf_add(out, p, len);
			continue;
		}
		if ((*found)++ == 0 && hash != NULL)
			r |= buf_printf(out, "%s\t%s\n", user, hash);
	}
	if (*found == 0 && hash != NULL) {
		if (out->len > 0 && out->data[out->len - 1] != '\n')
			r |= buf_addc(out, '\n');
		r |= buf_printf(out, "%s\t%s\n", user, hash);
	}
	return r;
}

static int
edit(const char *path, const char *user, const char *hash, char *err,
    size_t errlen)
{
	struct table_file	t;
	struct buf		out;
	int			rc, found;

	if ((rc = open_locked(&t, path, hash != NULL, err, errlen)) != EX_OK)
		return rc;
	if (rewrite(&t.data, user, hash, &out, &found) == -1) {
		snprintf(err, errlen, "%s: %s", t.path, strerror(errno));
		rc = EX_DATAERR;
	} else if (hash == NULL && found == 0) {
		snprintf(err, errlen, "%s: no such user in %s", user, t.path);
		rc = EX_NOUSER;
	} else
		rc = replace(&t, &out, err, errlen);
	buf_wipe_free(&out);
	close_table(&t);
	return rc;
}

int
pwtable_set(const char *path, const char *user, const char *hash, char *err,
    size_t errlen)
{
	return edit(path, user, hash, err, errlen);
}

int
pwtable_del(const char *path, const char *user, char *err, size_t errlen)
{
	return edit(path, user, NULL, err, errlen);
}
