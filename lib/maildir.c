/*
 * maildir -- making Maildirs and Maildir++ folders, durable delivery into
 * them, and reading their file names. See maildir.h for the contract.
 *
 * Delivery costs one open, a few large writes, one fsync of the file, one
 * link, one unlink and one fsync of the target directory: the message is
 * never visible in new/ before its bytes are on disk, and a failure after
 * the link takes the name back out of new/.
 */
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "maildir.h"

/*
 * Concatenates the strings up to NULL into dst; -1 with ENAMETOOLONG
 * when they do not fit. (Not snprintf: its code and locale pages are a
 * quarter of a delivery's memory, and lda runs once per message.)
 */
static int
join(char *dst, size_t size, ...) __attribute__((sentinel));

static int
join(char *dst, size_t size, ...)
{
	va_list		 ap;
	const char	*s;
	size_t		 o = 0, n;

	va_start(ap, size);
	while ((s = va_arg(ap, const char *)) != NULL) {
		n = strlen(s);
		if (n >= size - o) {
			va_end(ap);
			if (size > 0)
				dst[0] = '\0';
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(dst + o, s, n);
		o += n;
	}
	va_end(ap);
	dst[o] = '\0';
	return 0;
}

/* v in decimal (base 10) or as 16 hex digits (base 16), in buf[24]. */
static const char *
num(char *buf, unsigned long long v, int base)
{
	char	*p = buf + 23;
	int	 i;

	*p = '\0';
	if (base == 16) {
		for (i = 0; i < 16; i++, v >>= 4)
			*--p = "0123456789abcdef"[v & 15];
		return p;
	}
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return p;
}

static int
mkdir_ok(const char *path)
{
	struct stat	st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	if (stat(path, &st) == -1)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int
maildir_make(const char *path, char *err, size_t errlen)
{
	static const char *const sub[] = { "tmp", "new", "cur" };
	char	p[4096];
	size_t	i;

	if (path == NULL || *path == '\0') {
		errno = EINVAL;
		str_err(err, errlen, "maildir: empty path");
		return -1;
	}
	if (mkdir_ok(path) == -1) {
		str_err(err, errlen, "%s: mkdir: %s", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof(sub) / sizeof(sub[0]); i++) {
		if (join(p, sizeof(p), path, "/", sub[i], NULL) == -1 ||
		    mkdir_ok(p) == -1) {
			str_err(err, errlen, "%s/%s: mkdir: %s", path, sub[i],
			    strerror(errno));
			return -1;
		}
	}
	return 0;
}

int
maildir_folder_name_ok(const char *name)
{
	const unsigned char	*p;
	size_t			 n;

	if (name == NULL || *name == '\0' || *name == '.')
		return 0;
	n = strlen(name);
	if (n > 200 || name[n - 1] == '.')
		return 0;
	if (strstr(name, "..") != NULL)
		return 0;
	for (p = (const unsigned char *)name; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
			return 0;
	return 1;
}

int
maildir_make_folder(const char *root, const char *name, char *err,
    size_t errlen)
{
	char	path[4096], p[4096];
	int	fd;

	if (!maildir_folder_name_ok(name)) {
		errno = EINVAL;
		str_err(err, errlen, "%s: bad folder name", name ? name : "");
		return -1;
	}
	if (join(path, sizeof(path), root, "/.", name, NULL) == -1 ||
	    join(p, sizeof(p), path, "/maildirfolder", NULL) == -1) {
		str_err(err, errlen, "%s/.%s: %s", root, name, strerror(errno));
		return -1;
	}
	if (maildir_make(path, err, errlen) == -1)
		return -1;
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd == -1) {
		str_err(err, errlen, "%s: open: %s", p, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* The host part of unique names: '/' and ':' escaped as Dovecot does. */
static void
hostpart(char *dst, size_t size)
{
	char	h[256], *d = dst, *end = dst + size - 1;
	size_t	i;

	if (gethostname(h, sizeof(h)) == -1 || h[0] == '\0')
		memcpy(h, "localhost", sizeof("localhost"));
	h[sizeof(h) - 1] = '\0';
	for (i = 0; h[i] != '\0' && d < end; i++) {
		if (h[i] == '/' || h[i] == ':') {
			if (end - d < 4)
				break;
			memcpy(d, h[i] == '/' ? "\\057" : "\\072", 4);
			d += 4;
		} else
			*d++ = h[i];
	}
	*d = '\0';
}

static unsigned long long
randomness(void)
{
	unsigned long long	r = 0;
	struct timeval		tv;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		gettimeofday(&tv, NULL);
		r ^= ((unsigned long long)tv.tv_usec << 32) ^
		    (unsigned long long)getpid() ^ (unsigned long long)(size_t)&r;
	}
	return r;
}

int
maildir_tmp_open(struct maildir_tmp *t, const char *maildir, char *err,
    size_t errlen)
{
	return maildir_tmp_open_key(t, maildir, NULL, err, errlen);
}

/* A delivery key: 1 to 64 of [0-9A-Za-z_-]. */
static int
key_ok(const char *key)
{
	size_t	i;

	for (i = 0; key[i] != '\0'; i++)
		if (i >= 64 || !((key[i] >= '0' && key[i] <= '9') ||
		    (key[i] >= 'a' && key[i] <= 'z') ||
		    (key[i] >= 'A' && key[i] <= 'Z') || key[i] == '_' ||
		    key[i] == '-'))
			return 0;
	return i > 0;
}

int
maildir_tmp_open_key(struct maildir_tmp *t, const char *maildir,
    const char *key, char *err, size_t errlen)
{
	static unsigned long	counter;
	static char		host[128];
	struct timeval		tv;
	char			path[4096 + 300];
	char			n1[24], n2[24], n3[24], n4[24], n5[24];
	int			tries;

	t->fd = -1;
	t->base[0] = '\0';
	t->size = t->wsize = 0;
	t->pending_cr = 0;
	t->wlen = 0;
	if (maildir == NULL || strlen(maildir) >= sizeof(t->dir)) {
		errno = ENAMETOOLONG;
		str_err(err, errlen, "%s: maildir path too long",
		    maildir ? maildir : "");
		return -1;
	}
	if (key != NULL && !key_ok(key)) {
		errno = EINVAL;
		str_err(err, errlen, "maildir: bad delivery key");
		return -1;
	}
	memcpy(t->dir, maildir, strlen(maildir) + 1);
	if (host[0] == '\0')
		hostpart(host, sizeof(host));
	for (tries = 0; tries < 10; tries++) {
		gettimeofday(&tv, NULL);
		if (join(t->base, sizeof(t->base),
		    num(n1, (unsigned long long)tv.tv_sec, 10), ".M",
		    num(n2, (unsigned long long)tv.tv_usec, 10), "P",
		    num(n3, (unsigned long long)getpid(), 10), "Q",
		    num(n4, ++counter, 10), "R", num(n5, randomness(), 16),
		    key != NULL ? "K" : "", key != NULL ? key : "", ".",
		    host, NULL) == -1 ||
		    join(path, sizeof(path), t->dir, "/tmp/", t->base,
		    NULL) == -1) {
			str_err(err, errlen, "%s/tmp: name too long", t->dir);
			t->base[0] = '\0';
			return -1;
		}
		t->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
		    O_NOFOLLOW, 0600);
		if (t->fd != -1)
			return 0;
		if (errno != EEXIST)
			break;
	}
	str_err(err, errlen, "%s: open: %s", path, strerror(errno));
	t->base[0] = '\0';
	return -1;
}

static int
flush(struct maildir_tmp *t, char *err, size_t errlen)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < t->wlen) {
		n = write(t->fd, t->wbuf + off, t->wlen - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			str_err(err, errlen, "%s/tmp/%s: write: %s", t->dir,
			    t->base, strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	t->wlen = 0;
	return 0;
}

static int
put(struct maildir_tmp *t, const char *p, size_t n, char *err, size_t errlen)
{
	size_t	k;

	while (n > 0) {
		if (t->wlen == sizeof(t->wbuf) && flush(t, err, errlen) == -1)
			return -1;
		k = sizeof(t->wbuf) - t->wlen;
		if (k > n)
			k = n;
		memcpy(t->wbuf + t->wlen, p, k);
		t->wlen += k;
		t->size += k;
		p += k;
		n -= k;
	}
	return 0;
}

int
maildir_tmp_write(struct maildir_tmp *t, const void *data, size_t len,
    char *err, size_t errlen)
{
	const char		*p = data, *end = p + len, *cr, *q;
	unsigned long long	 before = t->size, lf = 0;

	if (t->fd == -1) {
		errno = EBADF;
		str_err(err, errlen, "maildir: write to a closed temp file");
		return -1;
	}
	if (len == 0)
		return 0;
	/* W counts every LF twice (as CRLF); LFs pass through unchanged. */
	for (q = p; (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		lf++;
	if (t->pending_cr) {
		t->pending_cr = 0;
		if (*p != '\n' && put(t, "\r", 1, err, errlen) == -1)
			return -1;
	}
	while (p < end) {
		cr = memchr(p, '\r', (size_t)(end - p));
		if (cr == NULL) {
			if (put(t, p, (size_t)(end - p), err, errlen) == -1)
				return -1;
			break;
		}
		if (put(t, p, (size_t)(cr - p), err, errlen) == -1)
			return -1;
		if (cr + 1 == end) {
			/* Decided by the next chunk (or kept at commit). */
			t->pending_cr = 1;
			p = end;
		} else if (cr[1] == '\n') {
			p = cr + 1;	/* drop the CR, keep the LF */
		} else {
			if (put(t, "\r", 1, err, errlen) == -1)
				return -1;
			p = cr + 1;
		}
	}
	t->wsize += (t->size - before) + lf;
	return 0;
}

static int
dirsync(const char *dir, char *err, size_t errlen)
{
	int	fd;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd == -1) {
		str_err(err, errlen, "%s: open: %s", dir, strerror(errno));
		return -1;
	}
	if (fsync(fd) == -1) {
		str_err(err, errlen, "%s: fsync: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
flags_ok(const char *f)
{
	for (; *f != '\0'; f++)
		if (*f < 0x21 || *f > 0x7e || *f == '/' || *f == ':' ||
		    *f == ',' || (f[1] != '\0' && f[1] <= f[0]))
			return 0;
	return 1;
}

int
maildir_tmp_finish(struct maildir_tmp *t, char *err, size_t errlen)
{
	if (t->fd == -1) {
		errno = EBADF;
		str_err(err, errlen, "maildir: finish of a closed temp file");
		return -1;
	}
	if (t->pending_cr) {
		t->pending_cr = 0;
		if (put(t, "\r", 1, err, errlen) == -1)
			return -1;
		t->wsize++;
	}
	return flush(t, err, errlen);
}

int
maildir_tmp_link(struct maildir_tmp *t, const char *flags, char *name_r,
    size_t namelen, char *err, size_t errlen)
{
	char	tmp[4096 + 300], dst[4096 + 400];
	char	name[400], n1[24], n2[24];
	int	fd;

	if (t->fd == -1) {
		errno = EBADF;
		str_err(err, errlen, "maildir: link of a closed temp file");
		return -1;
	}
	if (flags != NULL && (strlen(flags) > 60 || !flags_ok(flags))) {
		errno = EINVAL;
		str_err(err, errlen, "maildir: bad flags \"%s\"", flags);
		return -1;
	}
	if (maildir_tmp_finish(t, err, errlen) == -1)
		return -1;
	fd = t->fd;
	t->fd = -1;
	if (close(fd) == -1) {
		str_err(err, errlen, "%s/tmp/%s: close: %s", t->dir, t->base,
		    strerror(errno));
		return -1;
	}
	if (join(name, sizeof(name), t->base, ",S=", num(n1, t->size, 10),
	    ",W=", num(n2, t->wsize, 10), flags != NULL ? ":2," : "",
	    flags != NULL ? flags : "", NULL) == -1 ||
	    join(tmp, sizeof(tmp), t->dir, "/tmp/", t->base, NULL) == -1 ||
	    join(dst, sizeof(dst), t->dir, flags != NULL ? "/cur/" : "/new/",
	    name, NULL) == -1) {
		str_err(err, errlen, "%s: name too long", t->dir);
		return -1;
	}
	if (link(tmp, dst) == -1) {
		if (errno != EPERM && errno != ENOSYS && errno != EOPNOTSUPP &&
		    errno != EMLINK) {
			str_err(err, errlen,
			    "%s: link: %s", dst, strerror(errno));
			return -1;
		}
		/* No hard links here (some FUSE and network file systems). */
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst,
		    RENAME_NOREPLACE) == -1) {
			str_err(err, errlen, "%s: rename: %s", dst,
			    strerror(errno));
			return -1;
		}
	} else
		(void)unlink(tmp);
	t->base[0] = '\0';	/* linked: maildir_tmp_abort leaves it be */
	/* Linked even when name_r is too small: it gets a prefix. */
	if (name_r != NULL && namelen > 0)
		(void)str_lcpy(name_r, name, namelen);
	return 0;
}

int
maildir_sync_dir(const char *maildir, const char *sub, char *err,
    size_t errlen)
{
	char	dir[4096 + 8];

	if (join(dir, sizeof(dir), maildir, "/", sub, NULL) == -1) {
		str_err(err, errlen, "%s: name too long", maildir);
		return -1;
	}
	return dirsync(dir, err, errlen);
}

int
maildir_tmp_commit(struct maildir_tmp *t, const char *flags, char *name_r,
    size_t namelen, char *err, size_t errlen)
{
	char	name[400], dst[4096 + 400];

	if (t->fd == -1) {
		errno = EBADF;
		str_err(err, errlen, "maildir: commit of a closed temp file");
		return -1;
	}
	if (maildir_tmp_finish(t, err, errlen) == -1)
		goto fail;
	if (fsync(t->fd) == -1) {
		str_err(err, errlen, "%s/tmp/%s: fsync: %s", t->dir, t->base,
		    strerror(errno));
		goto fail;
	}
	if (maildir_tmp_link(t, flags, name, sizeof(name), err, errlen) == -1)
		goto fail;
	if (maildir_sync_dir(t->dir, flags != NULL ? "cur" : "new", err,
	    errlen) == -1) {
		/* Not durable: take it back so the sender retries. */
		if (join(dst, sizeof(dst), t->dir, flags != NULL ? "/cur/" :
		    "/new/", name, NULL) == 0)
			(void)unlink(dst);
		return -1;
	}
	if (name_r != NULL && namelen > 0)
		(void)str_lcpy(name_r, name, namelen);
	return 0;
fail:
	maildir_tmp_abort(t);
	return -1;
}

int
maildir_find_key(const char *maildir, const char *key, char *err,
    size_t errlen)
{
	static const char *const sub[] = { "new", "cur" };
	char		 dir[4096 + 8], pat[80];
	DIR		*d;
	struct dirent	*de;
	size_t		 i;
	int		 found = 0;

	if (!key_ok(key)) {
		errno = EINVAL;
		str_err(err, errlen, "maildir: bad delivery key");
		return -1;
	}
	join(pat, sizeof(pat), "K", key, ".", NULL);
	for (i = 0; i < 2 && !found; i++) {
		if (join(dir, sizeof(dir), maildir, "/", sub[i], NULL) == -1) {
			str_err(err, errlen, "%s: name too long", maildir);
			return -1;
		}
		if ((d = opendir(dir)) == NULL) {
			if (errno == ENOENT)
				continue;
			str_err(err, errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.' &&
			    strstr(de->d_name, pat) != NULL) {
				found = 1;
				break;
			}
		closedir(d);
	}
	return found;
}

void
maildir_tmp_abort(struct maildir_tmp *t)
{
	char	tmp[4096 + 300];
	int	saved = errno;

	if (t->fd != -1) {
		close(t->fd);
		t->fd = -1;
	}
	if (t->base[0] != '\0' &&
	    join(tmp, sizeof(tmp), t->dir, "/tmp/", t->base, NULL) == 0)
		(void)unlink(tmp);
	t->base[0] = '\0';
	t->wlen = 0;
	errno = saved;
}

static int
parse_num(const char *p, const char **endp, long long *r)
{
	long long	v = 0;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (0x7fffffffffffffffLL - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	*endp = p;
	*r = v;
	return 0;
}

int
maildir_parse_name(const char *name, struct maildir_name *mn)
{
	const char	*p, *q;
	size_t		 n;
	long long	 v;

	mn->base[0] = '\0';
	mn->size = mn->wsize = -1;
	mn->flags[0] = '\0';
	if (name == NULL || *name == '\0' || *name == '.' ||
	    strchr(name, '/') != NULL)
		return -1;
	n = strcspn(name, ",:");
	if (n == 0 || n >= sizeof(mn->base))
		return -1;
	memcpy(mn->base, name, n);
	mn->base[n] = '\0';
	p = name + n;
	while (*p == ',') {
		p++;
		if ((p[0] == 'S' || p[0] == 'W') && p[1] == '=' &&
		    parse_num(p + 2, &q, &v) == 0 && (*q == ',' || *q == ':' ||
		    *q == '\0')) {
			if (p[0] == 'S')
				mn->size = v;
			else
				mn->wsize = v;
			p = q;
			continue;
		}
		/* Another field (Dovecot's ,M=, etc.): skipped. */
		p += strcspn(p, ",:");
	}
	if (*p == ':') {
		if (p[1] != '2' || p[2] != ',')
			return -1;
		p += 3;
		if (str_lcpy(mn->flags, p, sizeof(mn->flags)) >=
		    sizeof(mn->flags))
			return -1;
	}
	return 0;
}
