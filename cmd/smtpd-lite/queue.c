/*
 * queue -- the on-disk form of a queued message: one file per message,
 * an envelope header of length-prefixed fields ("key LEN:bytes\n"), so
 * that nothing a client sends can end a field early or forge another
 * (OpenSMTPD's CVE-2020-8794 came from an envelope a line break could
 * forge), then "body\n" and the message with LF line ends. Recipients
 * done are listed, one index per line, in ID.done, appended and
 * fdatasync'd right after each delivery: a restart never delivers a
 * done recipient twice.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "io.h"
#include "smtpd.h"

#define MAGIC	"smtpd-lite-queue 1\n"

void
queue_new_id(char *id)
{
	unsigned char	 r[ID_LEN / 2];
	size_t		 i;
	static const char hex[] = "0123456789abcdef";

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
		/* never reached on Linux >= 3.17 with a small request */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (i = 0; i < sizeof(r); i++)
			r[i] = (unsigned char)((ts.tv_nsec >> (i % 4)) ^
			    getpid() ^ i * 37);
	}
	for (i = 0; i < sizeof(r); i++) {
		id[2 * i] = hex[r[i] >> 4];
		id[2 * i + 1] = hex[r[i] & 15];
	}
	id[ID_LEN] = '\0';
}

int
queue_id_ok(const char *id)
{
	size_t	 i;

	for (i = 0; i < ID_LEN; i++)
		if (!isxdigit((unsigned char)id[i]) || isupper((unsigned char)id[i]))
			return 0;
	return id[ID_LEN] == '\0';
}

static int
field(struct buf *b, const char *key, const char *val)
{
	return buf_printf(b, "%s %zu:%s\n", key, strlen(val), val);
}

static int
header(struct buf *b, const char *id, const char *sender, long long t,
    const struct dest *d, size_t nd, const char *helo, const char *client,
    const char *authuser)
{
	char	 ts[32];
	size_t	 i;

	snprintf(ts, sizeof(ts), "%lld", t);
	if (buf_adds(b, MAGIC) == -1 || field(b, "id", id) == -1 ||
	    field(b, "time", ts) == -1 || field(b, "sender", sender) == -1 ||
	    field(b, "helo", helo ? helo : "") == -1 ||
	    field(b, "client", client ? client : "") == -1 ||
	    field(b, "auth", authuser ? authuser : "") == -1)
		return -1;
	for (i = 0; i < nd; i++)
		if (field(b, "dest", d[i].rcpt) == -1 ||
		    field(b, "orig", d[i].orig) == -1 ||
		    field(b, "user", d[i].user) == -1 ||
		    field(b, "rule", d[i].rule) == -1)
			return -1;
	return buf_adds(b, "body\n");
}

int
queue_write_header(int fd, const char *id, const char *sender, long long t,
    const struct dest *d, size_t nd, const char *helo, const char *client,
    const char *authuser)
{
	struct buf	 b;
	int		 r;

	buf_init(&b, QUEUE_HDR_MAX);
	r = header(&b, id, sender, t, d, nd, helo, client, authuser);
	if (r == 0)
		r = io_write_all(fd, b.data, b.len);
	buf_free(&b);
	return r;
}

/* Reads "key LEN:value\n" at *p; value copied into val (NUL-terminated). */
static int
get_field(const char *data, size_t len, size_t *p, char *key, size_t keylen,
    char *val, size_t vallen)
{
	size_t		 i = *p, k = 0;
	unsigned long	 n = 0;

	while (i < len && data[i] != ' ' && data[i] != '\n') {
		if (k + 1 >= keylen)
			return -1;
		key[k++] = data[i++];
	}
	key[k] = '\0';
	if (i < len && data[i] == '\n' && strcmp(key, "body") == 0) {
		*p = i + 1;
		return 1;
	}
	if (i >= len || data[i] != ' ')
		return -1;
	i++;
	if (i >= len || !isdigit((unsigned char)data[i]))
		return -1;
	while (i < len && isdigit((unsigned char)data[i])) {
		n = n * 10 + (data[i++] - '0');
		if (n > QUEUE_HDR_MAX)
			return -1;
	}
	if (i >= len || data[i] != ':')
		return -1;
	i++;
	if (n >= vallen || i + n >= len || data[i + n] != '\n' ||
	    memchr(data + i, '\0', n) != NULL)
		return -1;
	memcpy(val, data + i, n);
	val[n] = '\0';
	*p = i + n + 1;
	return 0;
}

void
queue_envelope_free(struct envelope *e)
{
	free(e->dests);
	free(e->done);
	e->dests = NULL;
	e->done = NULL;
	e->ndests = 0;
}

int
queue_read(const char *dir, const char *id, struct envelope *e, char *err,
    size_t errlen)
{
	char		 path[4096], key[32], val[SMTP_PATH_MAX + 64], dbuf[8192];
	struct buf	 b;
	struct stat	 st;
	struct dest	*d = NULL, *nd;
	size_t		 p = sizeof(MAGIC) - 1;
	ssize_t		 n;
	int		 fd, r;
	unsigned long	 idx;
	char		*s, *end;

	memset(e, 0, sizeof(*e));
	str_fmt(path, sizeof(path), "%s/%s", dir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		str_fmt(err, errlen, "%s: open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		close(fd);
		return -1;
	}
	buf_init(&b, QUEUE_HDR_MAX);
	/* read until "body\n" is in, at most QUEUE_HDR_MAX */
	for (;;) {
		if (buf_reserve(&b, 65536) == -1) {
			str_fmt(err, errlen, "%s: envelope too big", path);
			goto bad;
		}
		n = read(fd, b.data + b.len, 65536);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		b.len += n;
		b.data[b.len] = '\0';
		if (memmem(b.data, b.len, "\nbody\n", 6) != NULL)
			break;
	}
	close(fd);
	fd = -1;
	if (b.len < p || memcmp(b.data, MAGIC, p) != 0) {
		str_fmt(err, errlen, "%s: not a queue file", path);
		goto bad;
	}
	for (;;) {
		r = get_field(b.data, b.len, &p, key, sizeof(key), val, sizeof(val));
		if (r == -1) {
			str_fmt(err, errlen, "%s: malformed envelope at byte %zu",
			    path, p);
			goto bad;
		}
		if (r == 1)
			break;
		if (strcmp(key, "id") == 0)
			str_lcpy(e->id, val, sizeof(e->id));
		else if (strcmp(key, "time") == 0)
			e->time = strtoll(val, NULL, 10);
		else if (strcmp(key, "sender") == 0)
			str_lcpy(e->sender, val, sizeof(e->sender));
		else if (strcmp(key, "dest") == 0) {
			if (e->ndests >= 100000 || (nd = reallocarray(d,
			    e->ndests + 1, sizeof(*d))) == NULL)
				goto bad;
			d = nd;
			memset(&d[e->ndests], 0, sizeof(*d));
			str_lcpy(d[e->ndests++].rcpt, val, sizeof(d->rcpt));
		} else if (e->ndests > 0 && strcmp(key, "orig") == 0)
			str_lcpy(d[e->ndests - 1].orig, val, sizeof(d->orig));
		else if (e->ndests > 0 && strcmp(key, "user") == 0)
			str_lcpy(d[e->ndests - 1].user, val, sizeof(d->user));
		else if (e->ndests > 0 && strcmp(key, "rule") == 0)
			str_lcpy(d[e->ndests - 1].rule, val, sizeof(d->rule));
		/* other keys (helo, client, auth, later ones) are skipped */
	}
	if (strcmp(e->id, id) != 0 || e->ndests == 0) {
		str_fmt(err, errlen, "%s: envelope id or recipients missing", path);
		goto bad;
	}
	e->dests = d;
	d = NULL;
	e->body_off = p;
	e->size = st.st_size - p;
	if ((e->done = calloc(e->ndests, 1)) == NULL)
		goto bad;
	buf_free(&b);

	str_fmt(path, sizeof(path), "%s/%s.done", dir, id);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) != -1) {
		n = read(fd, dbuf, sizeof(dbuf) - 1);
		close(fd);
		if (n > 0) {
			dbuf[n] = '\0';
			for (s = dbuf; *s; s = end) {
				idx = strtoul(s, &end, 10);
				if (end == s || *end != '\n')
					break;	/* a torn last line: not done */
				end++;
				if (idx < e->ndests)
					e->done[idx] = 1;
			}
		}
	}
	return 0;
bad:
	if (fd != -1)
		close(fd);
	free(d);
	buf_free(&b);
	queue_envelope_free(e);
	return -1;
}

int
fsync_dir(const char *dir)
{
	int	 fd, r;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		return -1;
	r = fsync(fd);
	close(fd);
	return r;
}

int
queue_mark_done(const char *dir, const char *id, size_t i)
{
	char	 path[4096], line[32];
	int	 fd, r;

	str_fmt(path, sizeof(path), "%s/%s.done", dir, id);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) ==
	    -1)
		return -1;
	snprintf(line, sizeof(line), "%zu\n", i);
	r = io_write_all(fd, line, strlen(line));
	if (r == 0)
		r = fdatasync(fd);
	close(fd);
	/* a new .done file needs the directory synced too: the caller does
	   it once for all the marks of a round (queue_unlink likewise) */
	return r;
}

int
queue_unlink(const char *dir, const char *id)
{
	char	 path[4096];

	str_fmt(path, sizeof(path), "%s/%s", dir, id);
	if (unlink(path) == -1 && errno != ENOENT)
		return -1;
	str_fmt(path, sizeof(path), "%s/%s.done", dir, id);
	unlink(path);
	return 0;
}

int
queue_remove(const char *dir, const char *id)
{
	if (queue_unlink(dir, id) == -1)
		return -1;
	return fsync_dir(dir);
}

int
queue_inject(const char *dir, const char *sender, const struct dest *d,
    size_t nd, const char *body, size_t len, char *id_r)
{
	char		 id[ID_LEN + 1], tmp[4096], path[4096];
	struct buf	 b;
	int		 fd, r;

	queue_new_id(id);
	str_fmt(tmp, sizeof(tmp), "%s/%s.tmp", dir, id);
	str_fmt(path, sizeof(path), "%s/%s", dir, id);
	buf_init(&b, QUEUE_HDR_MAX);
	if (header(&b, id, sender, (long long)time(NULL), d, nd, "localhost",
	    "local", "") == -1) {
		buf_free(&b);
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) == -1) {
		buf_free(&b);
		return -1;
	}
	r = io_write_all(fd, b.data, b.len);
	buf_free(&b);
	if (r == 0)
		r = io_write_all(fd, body, len);
	if (r == 0)
		r = fsync(fd);
	if (close(fd) == -1)
		r = -1;
	if (r == 0)
		r = rename(tmp, path);
	if (r == 0)
		r = fsync_dir(dir);
	if (r == -1) {
		unlink(tmp);
		return -1;
	}
	str_lcpy(id_r, id, ID_LEN + 1);
	return 0;
}
