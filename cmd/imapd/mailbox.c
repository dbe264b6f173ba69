/*
 * mailbox.c -- a Maildir++ folder as an IMAP mailbox: the index of
 * messages (UID, file name, flags, size), kept in step with the disk.
 *
 * UIDs live in Dovecot's dovecot-uidlist file (format 3: a header
 * "3 V<uidvalidity> N<nextuid> G<guid>" and one "<uid> [W<vsize>] :<name>"
 * line per message), so that Dovecot and imapd can serve one Maildir and
 * agree on UIDs. It is changed only under Dovecot's lock protocol: the
 * lock is dovecot-uidlist.lock created with O_EXCL (stale after two
 * minutes), the new content is written into the lock file, fsync'd, and
 * renamed over dovecot-uidlist. UIDs only grow; a file that appears
 * behind our back gets the next UID; UIDVALIDITY is set once when the
 * file is created and never reset. Records of files that went away are
 * dropped only when they outnumber the live ones by far, and then only
 * those that a fresh listing under the lock does not see either (a
 * racing rename must never give a message a second UID).
 *
 * RFC822.SIZE is the size with CRLF line ends: W= from the file name
 * (lda and Dovecot write it), else the W field of the uidlist record,
 * else computed once by reading the file and stored in the record.
 * Keywords use Dovecot's dovecot-keywords file (letters a..z).
 *
 * Two files of our own make large folders fast, and can be deleted at any
 * time: courriel.index, a snapshot of the index used while cur/ and new/
 * keep their modification times (mapped privately, so that sessions on
 * one folder share its pages), and courriel.cache, the header blocks of
 * messages already fetched, keyed by UID.
 */
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "imapd.h"
#include "log.h"
#include "maildir.h"

#define UIDLIST		"dovecot-uidlist"
#define UIDLIST_LOCK	"dovecot-uidlist.lock"
#define KEYWORDS	"dovecot-keywords"
#define LOCK_STALE	120	/* seconds */
#define LOCK_WAIT_MS	10000

#define F_PASSED	0x20	/* 'P': kept, not an IMAP flag */

static void	hc_scan(struct mailbox *);

/* ---- small helpers --------------------------------------------------- */

static size_t
base_len(const char *name)
{
	const char	*c = strchr(name, ':');

	return c ? (size_t)(c - name) : strlen(name);
}

static uint32_t
hash_base(const char *s, size_t len)
{
	uint32_t	h = 2166136261u;
	size_t		i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* A hash table of indexes keyed by file base name. */
struct bmap {
	uint32_t	*slot;		/* index+1, 0 empty */
	size_t		 mask;
};

static int
bmap_init(struct bmap *m, size_t n)
{
	size_t	cap = 16;

	while (cap < n * 2 + 16)
		cap *= 2;
	if ((m->slot = calloc(cap, sizeof(*m->slot))) == NULL)
		return -1;
	m->mask = cap - 1;
	return 0;
}

static void
bmap_free(struct bmap *m)
{
	free(m->slot);
	m->slot = NULL;
}

/* Finds base; key(i) gives the base of entry i. Returns index or -1. */
typedef const char *(*bkey_fn)(void *, uint32_t, size_t *);

static long
bmap_find(struct bmap *m, const char *b, size_t blen, bkey_fn key, void *arg)
{
	size_t	h = hash_base(b, blen) & m->mask;

	while (m->slot[h] != 0) {
		size_t		 kl;
		const char	*k = key(arg, m->slot[h] - 1, &kl);

		if (kl == blen && memcmp(k, b, blen) == 0)
			return (long)m->slot[h] - 1;
		h = (h + 1) & m->mask;
	}
	return -1;
}

static void
bmap_add(struct bmap *m, const char *b, size_t blen, uint32_t idx)
{
	size_t	h = hash_base(b, blen) & m->mask;

	while (m->slot[h] != 0)
		h = (h + 1) & m->mask;
	m->slot[h] = idx + 1;
}

static int
parse_flags(const char *name, uint8_t *flags, uint32_t *kw)
{
	const char	*c = strstr(name, ":2,");

	*flags = 0;
	*kw = 0;
	if (c == NULL)
		return 0;
	for (c += 3; *c != '\0'; c++) {
		switch (*c) {
		case 'D': *flags |= F_DRAFT; break;
		case 'F': *flags |= F_FLAGGED; break;
		case 'P': *flags |= F_PASSED; break;
		case 'R': *flags |= F_ANSWERED; break;
		case 'S': *flags |= F_SEEN; break;
		case 'T': *flags |= F_DELETED; break;
		default:
			if (*c >= 'a' && *c <= 'z')
				*kw |= 1u << (*c - 'a');
		}
	}
	return 0;
}

static int
flag_letters(char *out, size_t outlen, uint8_t flags, uint32_t kw)
{
	size_t	n = 0;
	int	i;

	if (outlen < 40)
		return -1;
	if (flags & F_DRAFT)
		out[n++] = 'D';
	if (flags & F_FLAGGED)
		out[n++] = 'F';
	if (flags & F_PASSED)
		out[n++] = 'P';
	if (flags & F_ANSWERED)
		out[n++] = 'R';
	if (flags & F_SEEN)
		out[n++] = 'S';
	if (flags & F_DELETED)
		out[n++] = 'T';
	for (i = 0; i < MAX_KEYWORDS; i++)
		if (kw & (1u << i))
			out[n++] = (char)('a' + i);
	out[n] = '\0';
	return 0;
}

/* Size with CRLF line ends of the file at path (LF alone counts 2). */
static int
compute_vsize(const char *path, uint64_t *r)
{
	char		 b[65536];
	ssize_t		 n;
	uint64_t	 v = 0;
	int		 fd, prev_cr = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((n = read(fd, b, sizeof(b))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if (b[i] == '\n' && !prev_cr)
				v++;
			prev_cr = b[i] == '\r';
		}
		v += (uint64_t)n;
	}
	close(fd);
	if (n < 0)
		return -1;
	*r = v;
	return 0;
}

/* ---- dovecot-uidlist ------------------------------------------------- */

struct ulrec {
	uint32_t	uid;
	uint64_t	vsize;		/* UINT64_MAX unknown */
	size_t		line, linelen;	/* the record line in text */
	size_t		base, baselen;	/* its file base name in text */
};

struct uidlist {
	struct buf	 text;		/* the file (or the new content) */
	uint32_t	 uidvalidity, nextuid;
	char		 guid[40];
	struct ulrec	*r;
	size_t		 n, cap;
	struct bmap	 map;
	int		 exists;
};

static const char *
ul_key(void *arg, uint32_t i, size_t *len)
{
	struct uidlist	*ul = arg;

	*len = ul->r[i].baselen;
	return ul->text.data + ul->r[i].base;
}

static void
ul_free(struct uidlist *ul)
{
	buf_free(&ul->text);
	free(ul->r);
	bmap_free(&ul->map);
	memset(ul, 0, sizeof(*ul));
}

static int
ul_push(struct uidlist *ul, struct ulrec *rec)
{
	if (ul->n == ul->cap) {
		size_t ncap = ul->cap ? ul->cap * 2 : 64;
		struct ulrec *nr = reallocarray(ul->r, ncap, sizeof(*nr));

		if (nr == NULL)
			return -1;
		ul->r = nr;
		ul->cap = ncap;
	}
	ul->r[ul->n++] = *rec;
	return 0;
}

/* Reads dir/dovecot-uidlist into ul. 0 (also when absent), -1 on error. */
static int
ul_read(struct uidlist *ul, const char *dir, struct mailbox *mb)
{
	char		 path[4200];
	struct stat	 st;
	ssize_t		 n;
	size_t		 pos, eol;
	int		 fd;
	char		*t;

	memset(ul, 0, sizeof(*ul));
	buf_init(&ul->text, 0);
	if (str_fmt(path, sizeof(path), "%s/" UIDLIST, dir) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		if (errno == ENOENT)
			return bmap_init(&ul->map, 0);
		return -1;
	}
	if (fstat(fd, &st) == -1 || buf_reserve(&ul->text, (size_t)st.st_size + 1) == -1) {
		close(fd);
		return -1;
	}
	if (mb != NULL) {
		mb->ul_size = st.st_size;
		mb->ul_mtime = st.st_mtim;
		mb->ul_ino = st.st_ino;
	}
	for (;;) {
		if (buf_reserve(&ul->text, 65536) == -1) {
			close(fd);
			return -1;
		}
		n = read(fd, ul->text.data + ul->text.len, ul->text.cap - ul->text.len - 1);
		if (n < 0) {
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		ul->text.len += (size_t)n;
	}
	close(fd);
	ul->text.data[ul->text.len] = '\0';
	ul->exists = 1;
	t = ul->text.data;
	/* Header. */
	eol = (size_t)(strchrnul(t, '\n') - t);
	if (eol >= ul->text.len)
		return bmap_init(&ul->map, 0);	/* incomplete: as absent */
	if (t[0] == '3' && t[1] == ' ') {
		char *p = t + 2;

		while (p < t + eol) {
			char *e = p;

			while (e < t + eol && *e != ' ')
				e++;
			if (*p == 'V')
				ul->uidvalidity = (uint32_t)strtoul(p + 1, NULL, 10);
			else if (*p == 'N')
				ul->nextuid = (uint32_t)strtoul(p + 1, NULL, 10);
			else if (*p == 'G' && e - p - 1 < (long)sizeof(ul->guid)) {
				memcpy(ul->guid, p + 1, (size_t)(e - p - 1));
				ul->guid[e - p - 1] = '\0';
			}
			p = e + 1;
		}
	} else if (t[0] == '1' && t[1] == ' ') {
		char *p;

		ul->uidvalidity = (uint32_t)strtoul(t + 2, &p, 10);
		ul->nextuid = (uint32_t)strtoul(p, NULL, 10);
	}
	if (bmap_init(&ul->map, ul->text.len / 40) == -1)
		return -1;
	for (pos = eol + 1; pos < ul->text.len; pos = eol + 1) {
		struct ulrec	 rec;
		char		*line = t + pos, *colon, *p;
		char		*nl = memchr(line, '\n', ul->text.len - pos);

		if (nl == NULL)		/* an append in progress */
			break;
		eol = (size_t)(nl - t);
		*nl = '\0';
		memset(&rec, 0, sizeof(rec));
		rec.vsize = UINT64_MAX;
		rec.uid = (uint32_t)strtoul(line, &p, 10);
		if (rec.uid == 0)
			goto next;
		colon = strstr(p, " :");
		if (colon == NULL) {
			/* Format 1: "<uid> <name>" */
			while (*p == ' ')
				p++;
			colon = p - 1;
		} else {
			for (char *x = p; x < colon; x++)
				if (x[0] == ' ' && x[1] == 'W')
					rec.vsize = strtoull(x + 2, NULL, 10);
			colon++;
		}
		rec.line = pos;
		rec.linelen = eol - pos;
		rec.base = (size_t)(colon + 1 - t);
		rec.baselen = base_len(colon + 1);
		if (rec.baselen == 0)
			goto next;
		if (rec.uid >= ul->nextuid)
			ul->nextuid = rec.uid + 1;
		if (ul_push(ul, &rec) == -1)
			return -1;
		if (ul->n * 2 > ul->map.mask) {
			bmap_free(&ul->map);
			if (bmap_init(&ul->map, ul->n * 2) == -1)
				return -1;
			for (size_t i = 0; i < ul->n; i++)
				bmap_add(&ul->map, t + ul->r[i].base,
				    ul->r[i].baselen, (uint32_t)i);
		} else
			bmap_add(&ul->map, t + rec.base, rec.baselen,
			    (uint32_t)(ul->n - 1));
next:
		*nl = '\n';
	}
	if (ul->nextuid == 0)
		ul->nextuid = 1;
	return 0;
}

/*
 * Removes the stale lock st describes. Sessions started together all see
 * the same stale lock: a plain unlink(path) by a late one would remove the
 * fresh lock an early one has just made in its place, and both would then
 * rewrite the uidlist, one from a stale copy (an APPENDUID lost). So the
 * lock is moved aside under a name of our own and looked at there: when
 * it is not the stale file we saw, it goes back (link(), which never
 * replaces a newer lock; ul_commit checks that its lock is still there).
 */
static void
ul_break_stale(const char *dir, const char *path, const struct stat *st)
{
	char		aside[4200];
	struct stat	st2;

	if (str_fmt(aside, sizeof(aside), "%s/" UIDLIST_LOCK ".stale.%ld", dir,
	    (long)getpid()) == -1 || rename(path, aside) == -1)
		return;
	if (stat(aside, &st2) == 0 && (st2.st_ino != st->st_ino ||
	    st2.st_dev != st->st_dev || st2.st_mtime + LOCK_STALE >= time(NULL))) {
		if (link(aside, path) == -1)
			log_warnx("%s: cannot put back a live lock: %s", path,
			    strerror(errno));
	} else
		log_warnx("%s: removing stale lock", path);
	unlink(aside);
}

/* 1 when the lock file at path is still the one lockfd holds. */
static int
ul_lock_held(const char *path, int lockfd)
{
	struct stat	a, b;

	return fstat(lockfd, &a) == 0 && stat(path, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int
ul_lock(const char *dir)
{
	char		path[4200];
	struct timespec	ts = { 0, 5 * 1000 * 1000 };
	int		fd, waited = 0;
	struct stat	st;

	if (str_fmt(path, sizeof(path), "%s/" UIDLIST_LOCK, dir) == -1)
		return -1;
	for (;;) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd != -1)
			return fd;
		if (errno != EEXIST)
			return -1;
		if (stat(path, &st) == 0 && st.st_mtime + LOCK_STALE < time(NULL)) {
			ul_break_stale(dir, path, &st);
			continue;
		}
		if (waited >= LOCK_WAIT_MS) {
			errno = EAGAIN;
			return -1;
		}
		nanosleep(&ts, NULL);
		waited += 5;
	}
}

static void
ul_unlock(const char *dir, int fd)
{
	char	path[4200];

	if (str_fmt(path, sizeof(path), "%s/" UIDLIST_LOCK, dir) == 0 &&
	    (fd == -1 || ul_lock_held(path, fd)))
		unlink(path);
	if (fd != -1)
		close(fd);
}

/* Writes content into the lock file and renames it over the uidlist. */
static int
ul_commit(const char *dir, int lockfd, struct buf *content)
{
	char		 lpath[4200], path[4200];
	size_t		 off = 0;
	ssize_t		 n;

	if (str_fmt(lpath, sizeof(lpath), "%s/" UIDLIST_LOCK, dir) == -1 ||
	    str_fmt(path, sizeof(path), "%s/" UIDLIST, dir) == -1)
		return -1;
	while (off < content->len) {
		n = write(lockfd, content->data + off, content->len - off);
		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	/* Never rename a lock that is no longer ours over the uidlist. */
	if (fdatasync(lockfd) == -1)
		return -1;
	if (!ul_lock_held(lpath, lockfd)) {
		log_warnx("%s: lock taken away, uidlist left alone", lpath);
		errno = EAGAIN;
		return -1;
	}
	if (rename(lpath, path) == -1)
		return -1;
	return 0;
}

static int
new_guid(char *out)
{
	unsigned char	r[16];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/*
 * Looks the names up in the uidlist without taking the lock (the file is
 * only ever replaced by rename). 1 when every name has its UID, 0 when
 * some are missing (ul_assign must run), -1 on error.
 */
static int
ul_lookup(const char *dir, char **names, size_t n, uint32_t *uids,
    uint64_t *vsizes, uint32_t *uidvalidity_r, uint32_t *uidnext_r,
    size_t *nrec_r)
{
	struct uidlist	 ul;
	size_t		 i;
	int		 all = 1;

	if (ul_read(&ul, dir, NULL) == -1)
		return -1;
	*nrec_r = ul.n;
	if (!ul.exists || ul.uidvalidity == 0) {
		ul_free(&ul);
		return 0;
	}
	for (i = 0; i < n; i++) {
		size_t	 bl = base_len(names[i]);
		long	 k = bmap_find(&ul.map, names[i], bl, ul_key, &ul);

		if (k < 0) {
			all = 0;
			break;
		}
		uids[i] = ul.r[k].uid;
		if (ul.r[k].vsize != UINT64_MAX && vsizes[i] == UINT64_MAX)
			vsizes[i] = ul.r[k].vsize;
	}
	*uidvalidity_r = ul.uidvalidity;
	*uidnext_r = ul.nextuid;
	ul_free(&ul);
	return all;
}

/*
 * Gives UIDs to the names (file names in dir/new or dir/cur) that have
 * none: under the lock, re-reads the uidlist, appends records for the
 * names still unknown and replaces the file. uids[i] receives the UID of
 * names[i] (existing or new), vsizes[i] its size when known.
 */
static int
ul_assign(const char *dir, char **names, size_t n, uint32_t *uids,
    uint64_t *vsizes, uint32_t *uidvalidity_r, uint32_t *uidnext_r)
{
	struct uidlist	 ul;
	struct buf	 out;
	int		 lockfd, rc = -1, changed = 0;
	size_t		 i;

	if ((lockfd = ul_lock(dir)) == -1)
		return -1;
	buf_init(&out, 0);
	if (ul_read(&ul, dir, NULL) == -1)
		goto done;
	if (!ul.exists || ul.uidvalidity == 0) {
		ul.uidvalidity = (uint32_t)time(NULL);
		if (ul.nextuid == 0)
			ul.nextuid = 1;
		changed = 1;
	}
	if (ul.guid[0] == '\0') {
		if (new_guid(ul.guid) == -1)
			goto done;
		changed = 1;
	}
	for (i = 0; i < n; i++) {
		size_t	 bl = base_len(names[i]);
		long	 k = bmap_find(&ul.map, names[i], bl, ul_key, &ul);

		if (k >= 0) {
			uids[i] = ul.r[k].uid;
			if (ul.r[k].vsize != UINT64_MAX)
				vsizes[i] = ul.r[k].vsize;
		} else
			uids[i] = 0;
	}
	if (buf_printf(&out, "3 V%u N%u G%s\n", ul.uidvalidity, 0u, ul.guid) == -1)
		goto done;
	/* Keep every old record (see the comment at the top). */
	for (i = 0; i < ul.n; i++)
		if (buf_add(&out, ul.text.data + ul.r[i].line, ul.r[i].linelen) == -1 ||
		    buf_addc(&out, '\n') == -1)
			goto done;
	for (i = 0; i < n; i++) {
		if (uids[i] != 0)
			continue;
		/* The same base twice in one batch (new/ and cur/ race):
		 * names come sorted, so they are neighbours. */
		if (i > 0 && base_len(names[i - 1]) == base_len(names[i]) &&
		    memcmp(names[i - 1], names[i], base_len(names[i])) == 0)
			uids[i] = uids[i - 1];
		if (uids[i] != 0)
			continue;
		uids[i] = ul.nextuid++;
		changed = 1;
		if (vsizes[i] == UINT64_MAX) {
			char p[4400];
			uint64_t v;

			if (str_fmt(p, sizeof(p), "%s/cur/%s", dir, names[i]) == 0 &&
			    (compute_vsize(p, &v) == 0 ||
			    (str_fmt(p, sizeof(p), "%s/new/%s", dir, names[i]) == 0 &&
			    compute_vsize(p, &v) == 0)))
				vsizes[i] = v;
		}
		if (buf_printf(&out, "%u", uids[i]) == -1 ||
		    (vsizes[i] != UINT64_MAX &&
		    buf_printf(&out, " W%llu", (unsigned long long)vsizes[i]) == -1) ||
		    buf_adds(&out, " :") == -1 ||
		    buf_add(&out, names[i], base_len(names[i])) == -1 ||
		    buf_addc(&out, '\n') == -1)
			goto done;
	}
	if (changed) {
		/* Now the header with the right next UID. */
		char hdr[128];
		char *nl = memchr(out.data, '\n', out.len);
		size_t hl = (size_t)(nl - out.data) + 1;

		if (str_fmt(hdr, sizeof(hdr), "3 V%u N%u G%s\n", ul.uidvalidity,
		    ul.nextuid, ul.guid) == -1)
			goto done;
		buf_consume(&out, hl);
		{
			struct buf o2;

			buf_init(&o2, 0);
			if (buf_adds(&o2, hdr) == -1 ||
			    buf_add(&o2, out.data, out.len) == -1) {
				buf_free(&o2);
				goto done;
			}
			buf_free(&out);
			out = o2;
		}
		if (ul_commit(dir, lockfd, &out) == -1)
			goto done;
		close(lockfd);
		lockfd = -1;
	}
	*uidvalidity_r = ul.uidvalidity;
	*uidnext_r = ul.nextuid;
	rc = 0;
done:
	if (lockfd != -1)
		ul_unlock(dir, lockfd);
	ul_free(&ul);
	buf_free(&out);
	return rc;
}

/* ---- keywords -------------------------------------------------------- */

static void
kw_free(struct mailbox *mb)
{
	for (size_t i = 0; i < MAX_KEYWORDS; i++) {
		free(mb->keywords[i]);
		mb->keywords[i] = NULL;
	}
	mb->nkeywords = 0;
}

static void
kw_load(struct mailbox *mb)
{
	char	 path[4200], line[512];
	FILE	*f;

	kw_free(mb);
	if (str_fmt(path, sizeof(path), "%s/" KEYWORDS, mb->path) == -1)
		return;
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *sp, *nl;
		unsigned long i = strtoul(line, &sp, 10);

		if (*sp != ' ' || i >= MAX_KEYWORDS)
			continue;
		if ((nl = strchr(sp, '\n')) != NULL)
			*nl = '\0';
		free(mb->keywords[i]);
		mb->keywords[i] = strdup(sp + 1);
		if (i + 1 > mb->nkeywords)
			mb->nkeywords = i + 1;
	}
	fclose(f);
}

static int
kw_save(struct mailbox *mb)
{
	char	 path[4200], tmp[4300];
	FILE	*f;

	if (str_fmt(path, sizeof(path), "%s/" KEYWORDS, mb->path) == -1 ||
	    str_fmt(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) == -1)
		return -1;
	if ((f = fopen(tmp, "we")) == NULL)
		return -1;
	for (size_t i = 0; i < mb->nkeywords; i++)
		if (mb->keywords[i] != NULL)
			fprintf(f, "%zu %s\n", i, mb->keywords[i]);
	if (fflush(f) != 0 || fsync(fileno(f)) == -1) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	return rename(tmp, path);
}

int
mbox_keyword(struct mailbox *mb, const char *kw, int create)
{
	size_t	i;

	for (i = 0; i < mb->nkeywords; i++)
		if (mb->keywords[i] != NULL && strcasecmp(mb->keywords[i], kw) == 0)
			return (int)i;
	if (!create)
		return -1;
	/* Another process may have added it. */
	kw_load(mb);
	for (i = 0; i < mb->nkeywords; i++)
		if (mb->keywords[i] != NULL && strcasecmp(mb->keywords[i], kw) == 0)
			return (int)i;
	if (mb->nkeywords >= MAX_KEYWORDS)
		return -1;
	if ((mb->keywords[mb->nkeywords] = strdup(kw)) == NULL)
		return -1;
	mb->nkeywords++;
	if (kw_save(mb) == -1) {
		mb->nkeywords--;
		free(mb->keywords[mb->nkeywords]);
		mb->keywords[mb->nkeywords] = NULL;
		return -1;
	}
	return (int)mb->nkeywords - 1;
}

int
flags_format(struct buf *b, const struct mailbox *mb, uint8_t flags,
    uint32_t kw, int recent)
{
	const char	*sep = "";
	int		 i;

	if (buf_addc(b, '(') == -1)
		return -1;
#define FL(bit, s) if ((flags & (bit)) && buf_adds(b, sep) == 0 && \
	    buf_adds(b, s) == 0) sep = " ";
	FL(F_ANSWERED, "\\Answered");
	FL(F_FLAGGED, "\\Flagged");
	FL(F_DELETED, "\\Deleted");
	FL(F_SEEN, "\\Seen");
	FL(F_DRAFT, "\\Draft");
#undef FL
	if (recent && buf_adds(b, sep) == 0 && buf_adds(b, "\\Recent") == 0)
		sep = " ";
	for (i = 0; i < MAX_KEYWORDS; i++)
		if ((kw & (1u << i)) && mb != NULL && (size_t)i < mb->nkeywords &&
		    mb->keywords[i] != NULL) {
			if (buf_printf(b, "%s%s", sep, mb->keywords[i]) == -1)
				return -1;
			sep = " ";
		}
	return buf_addc(b, ')');
}

/* ---- the index ------------------------------------------------------- */

/* A name by offset; out of range (a damaged snapshot) gives "". */
static const char *
name_at(const struct mailbox *mb, uint32_t off)
{
	if (off < mb->ro_len)
		return mb->ro_names + off;
	off -= (uint32_t)mb->ro_len;
	if (off >= mb->names.len)
		return "";
	return mb->names.data + off;
}

const char *
mbox_msg_name(const struct mailbox *mb, const struct mmsg *m)
{
	return name_at(mb, m->name);
}

int
mbox_msg_path(const struct mailbox *mb, const struct mmsg *m, char *out,
    size_t outlen)
{
	return str_fmt(out, outlen, "%s/%s/%s", mb->path, m->newdir ? "new" : "cur",
	    mbox_msg_name(mb, m));
}

static const char *
msg_key(void *arg, uint32_t i, size_t *len)
{
	struct mailbox	*mb = arg;
	const char	*n = name_at(mb, mb->msgs[i].name);

	*len = base_len(n);
	return n;
}

static int
add_name(struct mailbox *mb, const char *name, uint32_t *off)
{
	if (mb->ro_len + mb->names.len > UINT32_MAX - 4096)
		return -1;
	*off = (uint32_t)(mb->ro_len + mb->names.len);
	return buf_add(&mb->names, name, strlen(name) + 1);
}

/* Directory entry collected during a scan. */
struct ent {
	char	*name;
	int	 newdir;
};

static int
cmp_ent(const void *a, const void *b)
{
	return strcmp(((const struct ent *)a)->name, ((const struct ent *)b)->name);
}

static int
scan_dir(const char *path, const char *sub, int newdir, struct ent **v,
    size_t *n, size_t *cap, struct buf *arena, struct timespec *mtime)
{
	char		 d[4200];
	DIR		*dir;
	struct dirent	*de;
	struct stat	 st;

	if (str_fmt(d, sizeof(d), "%s/%s", path, sub) == -1)
		return -1;
	if ((dir = opendir(d)) == NULL)
		return errno == ENOENT ? 0 : -1;
	if (fstat(dirfd(dir), &st) == 0)
		*mtime = st.st_mtim;
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			struct ent *nv = reallocarray(*v, nc, sizeof(*nv));

			if (nv == NULL) {
				closedir(dir);
				return -1;
			}
			*v = nv;
			*cap = nc;
		}
		/* Names are stored as offsets now, pointers after the scan. */
		(*v)[*n].name = (char *)(uintptr_t)arena->len;
		(*v)[*n].newdir = newdir;
		if (buf_add(arena, de->d_name, strlen(de->d_name) + 1) == -1) {
			closedir(dir);
			return -1;
		}
		(*n)++;
	}
	closedir(dir);
	return 0;
}

/* Keys for a bmap over an array of strings. */
struct strkeys {
	const char	**k;
	size_t		 *l;
};

static const char *
str_key(void *arg, uint32_t i, size_t *len)
{
	struct strkeys	*sk = arg;

	*len = sk->l[i];
	return sk->k[i];
}

/*
 * Drops from dovecot-uidlist the records of files gone for good, once
 * they outnumber the live ones by far. A file is live when this session's
 * index has it or a fresh listing made under the lock sees it, so a
 * message being renamed while we look keeps its UID.
 */
static void
ul_compact(struct mailbox *mb)
{
	struct uidlist	 ul;
	struct ent	*ents = NULL;
	size_t		 nents = 0, cap = 0, i, nkeys, kept = 0;
	struct buf	 arena, out;
	struct strkeys	 sk = { NULL, NULL };
	struct bmap	 live;
	struct timespec	 t1, t2;
	int		 lockfd;

	live.slot = NULL;
	buf_init(&arena, 0);
	buf_init(&out, 0);
	memset(&ul, 0, sizeof(ul));
	if ((lockfd = ul_lock(mb->path)) == -1)
		return;
	/* new/ first: a file only moves from new/ to cur/, so one renamed
	   between the two listings is seen in the second */
	if (ul_read(&ul, mb->path, NULL) == -1 || !ul.exists ||
	    scan_dir(mb->path, "new", 1, &ents, &nents, &cap, &arena, &t2) == -1 ||
	    scan_dir(mb->path, "cur", 0, &ents, &nents, &cap, &arena, &t1) == -1)
		goto done;
	nkeys = nents + mb->n;
	sk.k = calloc(nkeys + 1, sizeof(*sk.k));
	sk.l = calloc(nkeys + 1, sizeof(*sk.l));
	if (sk.k == NULL || sk.l == NULL || bmap_init(&live, nkeys) == -1)
		goto done;
	for (i = 0; i < nents; i++) {
		sk.k[i] = arena.data + (uintptr_t)ents[i].name;
		sk.l[i] = base_len(sk.k[i]);
	}
	for (i = 0; i < mb->n; i++) {
		sk.k[nents + i] = name_at(mb, mb->msgs[i].name);
		sk.l[nents + i] = base_len(sk.k[nents + i]);
	}
	for (i = 0; i < nkeys; i++)
		if (bmap_find(&live, sk.k[i], sk.l[i], str_key, &sk) < 0)
			bmap_add(&live, sk.k[i], sk.l[i], (uint32_t)i);
	if (buf_printf(&out, "3 V%u N%u G%s\n", ul.uidvalidity, ul.nextuid,
	    ul.guid) == -1)
		goto done;
	for (i = 0; i < ul.n; i++) {
		if (bmap_find(&live, ul.text.data + ul.r[i].base, ul.r[i].baselen,
		    str_key, &sk) < 0)
			continue;
		if (buf_add(&out, ul.text.data + ul.r[i].line, ul.r[i].linelen) == -1 ||
		    buf_addc(&out, '\n') == -1)
			goto done;
		kept++;
	}
	if (ul_commit(mb->path, lockfd, &out) == 0) {
		log_info("%s: uidlist compacted from %zu to %zu records", mb->path,
		    ul.n, kept);
		close(lockfd);
		lockfd = -1;
	}
done:
	if (lockfd != -1)
		ul_unlock(mb->path, lockfd);
	ul_free(&ul);
	bmap_free(&live);
	free(sk.k);
	free(sk.l);
	free(ents);
	buf_free(&arena);
	buf_free(&out);
}

static int
push_msg(struct mailbox *mb, struct mmsg *m)
{
	if (mb->msgs_in_map) {
		/* The first new message: the index moves to the heap. */
		size_t nc = mb->n * 2 + 256;
		struct mmsg *nv = malloc(nc * sizeof(*nv));

		if (nv == NULL)
			return -1;
		memcpy(nv, mb->msgs, mb->n * sizeof(*nv));
		mb->msgs = nv;
		mb->cap = nc;
		mb->msgs_in_map = 0;
	}
	if (mb->n == mb->cap) {
		size_t nc = mb->cap ? mb->cap * 2 : 256;
		struct mmsg *nv = reallocarray(mb->msgs, nc, sizeof(*nv));

		if (nv == NULL)
			return -1;
		mb->msgs = nv;
		mb->cap = nc;
	}
	mb->msgs[mb->n++] = *m;
	return 0;
}

static int
cmp_uid(const void *a, const void *b)
{
	const struct mmsg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* ---- the index snapshot ------------------------------------------------ */

/*
 * courriel.index keeps the index of the last full scan (UIDs, names,
 * flags, sizes) with the modification times of cur/ and new/ it saw. When
 * both are unchanged, opening the folder reads that file instead of the
 * directories. A scan is trusted only when the directories had not
 * changed in the second before it (file times tick coarsely), and a
 * snapshot is written only then. Dovecot ignores the file.
 */
#define SNAPSHOT	"courriel.index"
#define SNAP_MAGIC	0x434f5552u
#define SNAP_VERSION	2

struct snap_hdr {
	uint32_t	magic, version, recsize, uidvalidity, uidnext;
	uint32_t	pad;		/* messages in new/ */
	int64_t		cur_sec, cur_nsec, new_sec, new_nsec;
	uint64_t	n, names_len;
	uint64_t	hc_ino, hc_size;	/* courriel.cache indexed so far */
};

static int
snap_stable(const struct timespec *cur, const struct timespec *nw, time_t scan)
{
	return cur->tv_sec < scan - 1 && nw->tv_sec < scan - 1;
}

static int
read_all(int fd, void *p, size_t len)
{
	size_t	off = 0;

	while (off < len) {
		ssize_t n = read(fd, (char *)p + off, len - off);

		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

/*
 * 1 loaded, 0 absent or stale (scan instead). The file is mapped
 * privately: sessions on one folder share its pages until they change
 * them.
 */
static int
snap_load(struct mailbox *mb, int select)
{
	char		 path[4200], c[4200], n[4200];
	struct snap_hdr	 h;
	struct stat	 cst, nst, st;
	int		 fd;
	char		*map;
	size_t		 need;

	if (str_fmt(path, sizeof(path), "%s/" SNAPSHOT, mb->path) == -1 ||
	    str_fmt(c, sizeof(c), "%s/cur", mb->path) == -1 ||
	    str_fmt(n, sizeof(n), "%s/new", mb->path) == -1 ||
	    stat(c, &cst) == -1 || stat(n, &nst) == -1)
		return 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	if (fstat(fd, &st) == -1 || (size_t)st.st_size < sizeof(h) ||
	    read_all(fd, &h, sizeof(h)) == -1 || h.magic != SNAP_MAGIC ||
	    h.version != SNAP_VERSION || h.recsize != sizeof(struct mmsg) ||
	    h.cur_sec != cst.st_mtim.tv_sec || h.cur_nsec != cst.st_mtim.tv_nsec ||
	    h.new_sec != nst.st_mtim.tv_sec || h.new_nsec != nst.st_mtim.tv_nsec ||
	    h.n > 10000000 || h.names_len > ((uint64_t)1 << 31) ||
	    h.uidvalidity == 0) {
		close(fd);
		return 0;
	}
	need = sizeof(h) + h.n * sizeof(struct mmsg) + h.names_len;
	if ((uint64_t)st.st_size != need || h.names_len == 0) {
		close(fd);
		return 0;
	}
	map = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return 0;
	mb->map = map;
	mb->maplen = need;
	mb->msgs = (struct mmsg *)(map + sizeof(h));
	mb->msgs_in_map = 1;
	mb->n = mb->cap = h.n;
	mb->ro_names = map + sizeof(h) + h.n * sizeof(struct mmsg);
	mb->ro_len = h.names_len;
	/* Names are bounded by name_at and end in NUL: no walk over the
	 * whole index here, a large folder opens in constant time. */
	if (mb->ro_names[mb->ro_len - 1] != '\0')
		goto bad;
	if (h.pad > 0) {
		/* Messages in new/: a SELECT moves them, so it scans. */
		if (select && !mb->readonly)
			goto bad;
		for (size_t i = 0; i < mb->n; i++)
			if (mb->msgs[i].newdir)
				mb->msgs[i].recent = 1;
	}
	mb->uidvalidity = h.uidvalidity;
	mb->uidnext = h.uidnext;
	mb->cur_mtime = cst.st_mtim;
	mb->new_mtime = nst.st_mtim;
	mb->snap_hc_ino = h.hc_ino;
	mb->snap_hc_size = h.hc_size;
	return 1;
bad:
	munmap(map, need);
	mb->map = NULL;
	mb->msgs = NULL;
	mb->msgs_in_map = 0;
	mb->n = mb->cap = 0;
	mb->ro_names = NULL;
	mb->ro_len = 0;
	return 0;
}

static void
snap_save(struct mailbox *mb)
{
	char		 path[4200], tmp[4300];
	struct snap_hdr	 h;
	struct buf	 out;
	struct stat	 st;
	size_t		 i, off = 0;
	int		 fd;

	if (str_fmt(path, sizeof(path), "%s/" SNAPSHOT, mb->path) == -1 ||
	    str_fmt(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) == -1)
		return;
	memset(&h, 0, sizeof(h));
	h.magic = SNAP_MAGIC;
	h.version = SNAP_VERSION;
	h.recsize = sizeof(struct mmsg);
	h.uidvalidity = mb->uidvalidity;
	h.uidnext = mb->uidnext;
	h.cur_sec = mb->cur_mtime.tv_sec;
	h.cur_nsec = mb->cur_mtime.tv_nsec;
	h.new_sec = mb->new_mtime.tv_sec;
	h.new_nsec = mb->new_mtime.tv_nsec;
	h.n = mb->n;
	for (i = 0; i < mb->n; i++)
		h.pad += mb->msgs[i].newdir;
	if (mb->hc_fd != -1 && fstat(mb->hc_fd, &st) == 0) {
		h.hc_ino = st.st_ino;
		h.hc_size = (uint64_t)mb->hc_scanned;
	}
	buf_init(&out, 0);
	for (i = 0; i < mb->n; i++)
		off += strlen(name_at(mb, mb->msgs[i].name)) + 1;
	h.names_len = off;
	if (buf_reserve(&out, sizeof(h) + mb->n * sizeof(struct mmsg) + off) == -1 ||
	    buf_add(&out, &h, sizeof(h)) == -1)
		goto done;
	off = 0;
	for (i = 0; i < mb->n; i++) {
		struct mmsg m = mb->msgs[i];

		m.name = (uint32_t)off;
		m.recent = 0;
		m.seen_scan = 0;
		off += strlen(name_at(mb, mb->msgs[i].name)) + 1;
		if (buf_add(&out, &m, sizeof(m)) == -1)
			goto done;
	}
	for (i = 0; i < mb->n; i++) {
		const char *nm = name_at(mb, mb->msgs[i].name);

		if (buf_add(&out, nm, strlen(nm) + 1) == -1)
			goto done;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1)
		goto done;
	if (write(fd, out.data, out.len) != (ssize_t)out.len || close(fd) == -1) {
		unlink(tmp);
		goto done;
	}
	if (rename(tmp, path) == -1)
		unlink(tmp);
done:
	buf_free(&out);
}

/*
 * At close: when this session learned where headers are in the cache and
 * the folder is as the snapshot says, the snapshot is rewritten with the
 * offsets, so the next session need not scan the cache.
 */
static void
snap_update(struct mailbox *mb)
{
	char		c[4200], n[4200];
	struct stat	cst, nst;

	if (!mb->hc_learned || mb->readonly < 0)
		return;
	if (str_fmt(c, sizeof(c), "%s/cur", mb->path) == -1 ||
	    str_fmt(n, sizeof(n), "%s/new", mb->path) == -1 ||
	    stat(c, &cst) == -1 || stat(n, &nst) == -1)
		return;
	if (cst.st_mtim.tv_sec != mb->cur_mtime.tv_sec ||
	    cst.st_mtim.tv_nsec != mb->cur_mtime.tv_nsec ||
	    nst.st_mtim.tv_sec != mb->new_mtime.tv_sec ||
	    nst.st_mtim.tv_nsec != mb->new_mtime.tv_nsec ||
	    !snap_stable(&cst.st_mtim, &nst.st_mtim, time(NULL)))
		return;
	for (size_t i = 0; i < mb->n; i++)
		if (mb->msgs[i].newdir)
			return;
	mbox_cache_flush(mb);
	hc_scan(mb);
	snap_save(mb);
}

/*
 * Brings the index in step with the disk. With select, messages found in
 * new/ are moved to cur/ and marked recent.
 */
static int
sync_index(struct mailbox *mb, int select, const struct mbox_events *ev)
{
	struct ent	*ents = NULL;
	size_t		 nents = 0, cap = 0, i, nunknown = 0;
	struct buf	 arena;
	struct bmap	 map;
	char		**unames = NULL;
	uint32_t	*uuids = NULL;
	uint64_t	*uvs = NULL;
	int		*unew = NULL, rc = -1;
	uint32_t	 maxuid = mb->n ? mb->msgs[mb->n - 1].uid : 0;
	time_t		 scan_time = time(NULL);
	int		 moved = 0;
	size_t		 nrec = 0;

	buf_init(&arena, 0);
	map.slot = NULL;
	/*
	 * new/ first: a file only moves from new/ to cur/ (another session,
	 * a mail reader), so one moved between the two listings is seen in
	 * cur/ or in both, never in neither (which would report an EXPUNGE
	 * for a message still there). Seen in both, the cur/ name wins.
	 */
	if (scan_dir(mb->path, "new", 1, &ents, &nents, &cap, &arena,
	    &mb->new_mtime) == -1 ||
	    scan_dir(mb->path, "cur", 0, &ents, &nents, &cap, &arena,
	    &mb->cur_mtime) == -1)
		goto out;
	for (i = 0; i < nents; i++)
		ents[i].name = arena.data + (uintptr_t)ents[i].name;
	if (bmap_init(&map, mb->n) == -1)
		goto out;
	for (i = 0; i < mb->n; i++) {
		const char *nm = name_at(mb, mb->msgs[i].name);

		bmap_add(&map, nm, base_len(nm), (uint32_t)i);
		mb->msgs[i].seen_scan = 0;
	}
	for (i = 0; i < nents; i++) {
		long k = bmap_find(&map, ents[i].name, base_len(ents[i].name),
		    msg_key, mb);

		if (k >= 0) {
			struct mmsg *m = &mb->msgs[k];
			uint8_t fl;
			uint32_t kw;

			if (m->seen_scan && ents[i].newdir)
				continue;	/* in new/ and cur/: cur/ wins */
			m->seen_scan = 1;
			if (strcmp(name_at(mb, m->name), ents[i].name) != 0 ||
			    m->newdir != ents[i].newdir) {
				if (add_name(mb, ents[i].name, &m->name) == -1)
					goto out;
				m->newdir = (uint8_t)ents[i].newdir;
				parse_flags(ents[i].name, &fl, &kw);
				if (fl != m->flags || kw != m->kw) {
					m->flags = fl;
					m->kw = kw;
					if (ev != NULL && ev->flags != NULL)
						ev->flags(ev->arg, (size_t)k + 1);
				}
			}
			continue;
		}
		ents[nunknown++] = ents[i];
	}
	/* Vanished messages, highest sequence first. */
	for (i = mb->n; i-- > 0;) {
		if (mb->msgs[i].seen_scan)
			continue;
		memmove(&mb->msgs[i], &mb->msgs[i + 1],
		    (mb->n - i - 1) * sizeof(mb->msgs[0]));
		mb->n--;
		if (ev != NULL && ev->expunged != NULL)
			ev->expunged(ev->arg, i + 1);
	}
	if (nunknown > 0) {
		struct mmsg	 m;
		uint32_t	 uv, un;

		qsort(ents, nunknown, sizeof(*ents), cmp_ent);
		unames = calloc(nunknown, sizeof(*unames));
		uuids = calloc(nunknown, sizeof(*uuids));
		uvs = calloc(nunknown, sizeof(*uvs));
		unew = calloc(nunknown, sizeof(*unew));
		if (unames == NULL || uuids == NULL || uvs == NULL || unew == NULL)
			goto out;
		for (i = 0; i < nunknown; i++) {
			struct maildir_name mn;

			unames[i] = ents[i].name;
			unew[i] = ents[i].newdir;
			uvs[i] = UINT64_MAX;
			if (maildir_parse_name(ents[i].name, &mn) == 0 && mn.wsize >= 0)
				uvs[i] = (uint64_t)mn.wsize;
		}
		switch (ul_lookup(mb->path, unames, nunknown, uuids, uvs, &uv, &un,
		    &nrec)) {
		case -1:
			goto out;
		case 0:
			if (ul_assign(mb->path, unames, nunknown, uuids, uvs, &uv,
			    &un) == -1)
				goto out;
		}
		if (mb->uidvalidity != 0 && uv != mb->uidvalidity) {
			log_warnx("%s: UIDVALIDITY changed behind us", mb->path);
			errno = ESTALE;
			goto out;
		}
		mb->uidvalidity = uv;
		mb->uidnext = un;
		{
			size_t first = mb->n;

			for (i = 0; i < nunknown; i++) {
				memset(&m, 0, sizeof(m));
				m.uid = uuids[i];
				/* An old UID seen late would shift sequence
				 * numbers: leave it out of this session. */
				if (m.uid <= maxuid)
					continue;
				if (add_name(mb, unames[i], &m.name) == -1)
					goto out;
				m.vsize = uvs[i];
				m.newdir = (uint8_t)unew[i];
				parse_flags(unames[i], &m.flags, &m.kw);
				if (push_msg(mb, &m) == -1)
					goto out;
			}
			qsort(mb->msgs + first, mb->n - first, sizeof(m), cmp_uid);
			/* Duplicates (same base in new/ and cur/): cur/ wins. */
			for (i = first; i + 1 < mb->n; i++)
				if (mb->msgs[i].uid == mb->msgs[i + 1].uid) {
					if (mb->msgs[i].newdir &&
					    !mb->msgs[i + 1].newdir)
						mb->msgs[i] = mb->msgs[i + 1];
					memmove(&mb->msgs[i + 1], &mb->msgs[i + 2],
					    (mb->n - i - 2) * sizeof(m));
					mb->n--;
					i--;
				}
		}
	}
	if (mb->uidnext == 0 || (mb->n > 0 && mb->uidnext <= mb->msgs[mb->n - 1].uid)) {
		uint32_t uv = mb->uidvalidity, un = mb->uidnext;

		if (ul_assign(mb->path, NULL, 0, NULL, NULL, &uv, &un) == -1)
			goto out;
		mb->uidvalidity = uv;
		mb->uidnext = un;
	}
	/* Recent: new/ messages, moved to cur/ by the session that selects. */
	for (i = 0; i < mb->n; i++) {
		struct mmsg *m = &mb->msgs[i];
		char from[4400], to[4400];

		if (!m->newdir)
			continue;
		m->recent = 1;
		if (!select || mb->readonly)
			continue;
		if (str_fmt(from, sizeof(from), "%s/new/%s", mb->path,
		    name_at(mb, m->name)) == -1 ||
		    str_fmt(to, sizeof(to), "%s/cur/%s%s", mb->path,
		    name_at(mb, m->name),
		    strchr(name_at(mb, m->name), ':') ? "" : ":2,") == -1)
			continue;
		if (rename(from, to) == 0) {
			const char *slash = strrchr(to, '/');

			moved = 1;
			if (add_name(mb, slash + 1, &m->name) == -1)
				goto out;
			m->newdir = 0;
		}
	}
	rc = 0;
	if (nrec > 2 * mb->n + 1000)
		ul_compact(mb);
	if (!moved && snap_stable(&mb->cur_mtime, &mb->new_mtime, scan_time))
		snap_save(mb);
out:
	bmap_free(&map);
	free(ents);
	free(unames);
	free(uuids);
	free(uvs);
	free(unew);
	buf_free(&arena);
	/* Compact the names when most of them are garbage. */
	if (rc == 0 && mb->names.len > 65536) {
		size_t live = 0;

		for (i = 0; i < mb->n; i++)
			live += strlen(name_at(mb, mb->msgs[i].name)) + 1;
		if (live * 2 < mb->names.len + mb->ro_len) {
			struct buf nn;

			buf_init(&nn, 0);
			for (i = 0; i < mb->n; i++) {
				const char *nm = name_at(mb, mb->msgs[i].name);

				if (buf_add(&nn, nm, strlen(nm) + 1) == -1) {
					buf_free(&nn);
					return rc;
				}
			}
			/* Now every name is in nn, in index order. */
			{
				uint32_t off = 0;

				for (i = 0; i < mb->n; i++) {
					mb->msgs[i].name = off;
					off += (uint32_t)strlen(nn.data + off) + 1;
				}
			}
			buf_free(&mb->names);
			mb->names = nn;
			mb->ro_names = NULL;
			mb->ro_len = 0;
		}
	}
	return rc;
}

int
mbox_path(const char *root, const char *name, char *out, size_t outlen)
{
	size_t	len = strlen(name);

	if (strcasecmp(name, "INBOX") == 0)
		return str_fmt(out, outlen, "%s", root);
	if (len == 0 || len > 500 || !maildir_folder_name_ok(name) ||
	    !imap_utf7_valid(name) || name[len - 1] == '.' ||
	    strstr(name, "..") != NULL || strchr(name, '/') != NULL ||
	    strchr(name, '*') != NULL || strchr(name, '%') != NULL)
		return -1;
	return str_fmt(out, outlen, "%s/.%s", root, name);
}

int
mbox_open(struct mailbox *mb, const char *root, const char *name, int readonly,
    int select, char *err, size_t errlen)
{
	struct stat	st;

	memset(mb, 0, sizeof(*mb));
	mb->inotify = -1;
	mb->hc_fd = -1;
	buf_init(&mb->names, 0);
	buf_init(&mb->hc_pending, 0);
	if (mbox_path(root, name, mb->path, sizeof(mb->path)) == -1) {
		str_fmt(err, errlen, "invalid mailbox name");
		return -1;
	}
	if (stat(mb->path, &st) == -1 || !S_ISDIR(st.st_mode)) {
		str_fmt(err, errlen, "[NONEXISTENT] no such mailbox");
		return -1;
	}
	str_lcpy(mb->name, strcasecmp(name, "INBOX") == 0 ? "INBOX" : name,
	    sizeof(mb->name));
	mb->readonly = readonly;
	kw_load(mb);
	if (snap_load(mb, select) == 1)
		return 0;
	if (sync_index(mb, select, NULL) == -1) {
		/* EAGAIN: another process holds the uidlist lock (or a
		 * dead one did, until it is stale): RFC 5530 INUSE. */
		if (errno == EAGAIN)
			str_fmt(err, errlen, "[INUSE] the mailbox is locked, "
			    "try again later");
		else
			str_fmt(err, errlen, "[SERVERBUG] cannot read the "
			    "mailbox: %s", strerror(errno));
		log_warn("%s: mailbox sync", mb->path);
		mbox_close(mb);
		return -1;
	}
	return 0;
}

void
mbox_close(struct mailbox *mb)
{
	snap_update(mb);
	if (!mb->msgs_in_map)
		free(mb->msgs);
	mb->msgs = NULL;
	mb->msgs_in_map = 0;
	if (mb->map != NULL)
		munmap(mb->map, mb->maplen);
	mb->map = NULL;
	mb->ro_names = NULL;
	mb->ro_len = 0;
	mb->n = mb->cap = 0;
	buf_free(&mb->names);
	kw_free(mb);
	if (mb->inotify != -1)
		close(mb->inotify);
	mb->inotify = -1;
	mbox_cache_flush(mb);
	if (mb->hc_fd != -1)
		close(mb->hc_fd);
	mb->hc_fd = -1;
	buf_free(&mb->hc_pending);
}

int
mbox_sync(struct mailbox *mb, const struct mbox_events *ev)
{
	struct stat	cur, nw;

	if (stat(mb->path, &cur) == -1) {
		/* Deleted by another session: everything is gone. */
		while (mb->n > 0) {
			mb->n--;
			if (ev != NULL && ev->expunged != NULL)
				ev->expunged(ev->arg, mb->n + 1);
		}
		return 0;
	}
	{
		char c[4200], n[4200];

		if (str_fmt(c, sizeof(c), "%s/cur", mb->path) == -1 ||
		    str_fmt(n, sizeof(n), "%s/new", mb->path) == -1)
			return -1;
		if (stat(c, &cur) == 0 && stat(n, &nw) == 0 &&
		    cur.st_mtim.tv_sec == mb->cur_mtime.tv_sec &&
		    cur.st_mtim.tv_nsec == mb->cur_mtime.tv_nsec &&
		    nw.st_mtim.tv_sec == mb->new_mtime.tv_sec &&
		    nw.st_mtim.tv_nsec == mb->new_mtime.tv_nsec)
			return (int)mb->n;
	}
	kw_load(mb);
	if (sync_index(mb, !mb->readonly, ev) == -1)
		return -1;
	return (int)mb->n;
}

int
mbox_set_flags(struct mailbox *mb, size_t i, uint8_t flags, uint32_t kw)
{
	struct mmsg	*m = &mb->msgs[i];
	const char	*name = name_at(mb, m->name);
	char		 from[4400], to[4400], fl[64];
	size_t		 bl = base_len(name);

	flags |= m->flags & F_PASSED;
	if (flags == m->flags && kw == m->kw && !m->newdir)
		return 0;
	if (flag_letters(fl, sizeof(fl), flags, kw) == -1 ||
	    mbox_msg_path(mb, m, from, sizeof(from)) == -1 ||
	    str_fmt(to, sizeof(to), "%s/cur/%.*s:2,%s", mb->path, (int)bl, name,
	    fl) == -1)
		return -1;
	if (rename(from, to) == -1)
		return -1;
	if (add_name(mb, strrchr(to, '/') + 1, &m->name) == -1)
		return -1;
	m->flags = flags;
	m->kw = kw;
	m->newdir = 0;
	return 0;
}

int
mbox_expunge(struct mailbox *mb, const struct imap_seqset *uids,
    const struct mbox_events *ev)
{
	char	path[4400];
	size_t	i;
	int	rc = 0;

	for (i = mb->n; i-- > 0;) {
		struct mmsg *m = &mb->msgs[i];

		if (!(m->flags & F_DELETED))
			continue;
		if (uids != NULL && !imap_seqset_has(uids, m->uid))
			continue;
		if (mbox_msg_path(mb, m, path, sizeof(path)) == -1)
			continue;
		if (unlink(path) == -1 && errno != ENOENT) {
			rc = -1;
			continue;
		}
		memmove(&mb->msgs[i], &mb->msgs[i + 1],
		    (mb->n - i - 1) * sizeof(mb->msgs[0]));
		mb->n--;
		if (ev != NULL && ev->expunged != NULL)
			ev->expunged(ev->arg, i + 1);
	}
	return rc;
}

uint64_t
mbox_msg_vsize(struct mailbox *mb, struct mmsg *m)
{
	char	 path[4400];

	if (m->vsize != UINT64_MAX)
		return m->vsize;
	if (mbox_msg_path(mb, m, path, sizeof(path)) == 0 &&
	    compute_vsize(path, &m->vsize) == 0)
		return m->vsize;
	return 0;
}

time_t
mbox_msg_time(struct mailbox *mb, struct mmsg *m)
{
	char		path[4400];
	struct stat	st;

	if (mbox_msg_path(mb, m, path, sizeof(path)) == 0 && stat(path, &st) == 0)
		return st.st_mtime;
	return time(NULL);
}

/* Appends data with bare LF turned into CRLF. */
static int
add_crlf(struct buf *out, const char *d, size_t n, int *prev_cr)
{
	size_t	i = 0;

	while (i < n) {
		const char *nl = memchr(d + i, '\n', n - i);
		size_t k = nl ? (size_t)(nl - (d + i)) : n - i;

		if (k > 0) {
			if (buf_add(out, d + i, k) == -1)
				return -1;
			*prev_cr = d[i + k - 1] == '\r';
		}
		i += k;
		if (nl == NULL)
			break;
		if (!*prev_cr && buf_addc(out, '\r') == -1)
			return -1;
		if (buf_addc(out, '\n') == -1)
			return -1;
		*prev_cr = 0;
		i++;
	}
	return 0;
}

/*
 * Reads the whole file turning every LF into CRLF, CR or not before it:
 * the rule of W= in the names lda writes (S + one byte per LF), which
 * tells a "\r\r\n" sent to lda (stored "\r\n") from a plain line end.
 */
static int
read_crlf_always(const char *path, struct buf *out)
{
	char	b[16384];
	ssize_t	n;
	int	fd;

	buf_reset(out);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	while ((n = read(fd, b, sizeof(b))) > 0) {
		for (ssize_t i = 0, j = 0; i <= n; i++) {
			if (i < n && b[i] != '\n')
				continue;
			if (buf_add(out, b + j, (size_t)(i - j)) == -1 ||
			    (i < n && buf_add(out, "\r\n", 2) == -1)) {
				close(fd);
				return -1;
			}
			j = i + 1;
		}
	}
	close(fd);
	if (out->data == NULL && buf_adds(out, "") == -1)
		return -1;
	return n < 0 ? -1 : 0;
}

int
mbox_read(struct mailbox *mb, struct mmsg *m, int header_only, struct buf *out)
{
	char		 path[4400], b[16384];
	ssize_t		 n;
	int		 fd, prev_cr = 0;
	struct stat	 st;

	buf_reset(out);
	if (mbox_msg_path(mb, m, path, sizeof(path)) == -1)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	if (!header_only && fstat(fd, &st) == 0 &&
	    buf_reserve(out, (size_t)st.st_size + (size_t)st.st_size / 16 + 64) == -1) {
		close(fd);
		return -1;
	}
	while ((n = read(fd, b, sizeof(b))) > 0) {
		size_t before = out->len;

		if (header_only) {
			/* Convert only up to the empty line (LF or CRLF). */
			size_t k = 0, end = (size_t)n;
			int found = 0;

			if (before == 0 && (b[0] == '\n' || (n > 1 && b[0] == '\r' &&
			    b[1] == '\n'))) {
				end = b[0] == '\n' ? 1 : 2;
				found = 1;
			}
			while (!found && k < (size_t)n) {
				const char *nl = memchr(b + k, '\n', (size_t)n - k);

				if (nl == NULL)
					break;
				k = (size_t)(nl - b) + 1;
				if (k < (size_t)n && b[k] == '\n') {
					end = k + 1;
					found = 1;
				} else if (k + 1 < (size_t)n && b[k] == '\r' &&
				    b[k + 1] == '\n') {
					end = k + 2;
					found = 1;
				}
			}
			if (add_crlf(out, b, end, &prev_cr) == -1) {
				close(fd);
				return -1;
			}
			if (found)
				break;
			/* An empty line split across two reads. */
			if (memmem(out->data + (before > 3 ? before - 3 : 0),
			    out->len - (before > 3 ? before - 3 : 0), "\r\n\r\n",
			    4) != NULL)
				break;
			continue;
		}
		if (add_crlf(out, b, (size_t)n, &prev_cr) == -1) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	if (out->data == NULL && buf_adds(out, "") == -1)
		return -1;
	if (n < 0)
		return -1;
	/*
	 * RFC822.SIZE must be what BODY[] sends. When W= of the name says
	 * otherwise, the file keeps a CR before some LF (lda stores a sent
	 * "\r\r\n" as "\r\n"): send it as W= counts it. If that does not
	 * match either, W= is wrong; the size becomes the real one.
	 */
	if (!header_only && m->vsize != UINT64_MAX && out->len != m->vsize) {
		struct buf alt;

		buf_init(&alt, 0);
		if (read_crlf_always(path, &alt) == 0 && alt.len == m->vsize) {
			buf_free(out);
			*out = alt;
			return 0;
		}
		buf_free(&alt);
		log_warnx("%s: W=%llu in the name but %zu bytes", path,
		    (unsigned long long)m->vsize, out->len);
		m->vsize = out->len;
	}
	return 0;
}

/* ---- the header cache ---------------------------------------------------- */

/*
 * courriel.cache holds the header blocks (CRLF form) of messages that
 * were fetched, so that listing a folder again reads one file instead of
 * every message. It starts with "CHC1" and the UIDVALIDITY; then records
 * of magic, UID, length and the header, only ever appended (O_APPEND,
 * whole records per write). A message's content never changes, so a
 * record stays true until its UID goes away; a cache of another
 * UIDVALIDITY, a broken record or a file over 512 MB starts afresh.
 */
#define HCACHE		"courriel.cache"
#define HC_MAGIC	0x48445243u	/* record */
#define HC_MAX		(512LL * 1024 * 1024)
#define HC_RECMAX	65536

struct hc_rec {
	uint32_t	magic, uid, len;
};

static int
hc_open(struct mailbox *mb)
{
	char		path[4200], hdr[8];
	struct stat	st;
	uint32_t	uv;
	int		fd;

	if (mb->hc_fd != -1)
		return 0;
	if (str_fmt(path, sizeof(path), "%s/" HCACHE, mb->path) == -1)
		return -1;
	if ((fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) != -1) {
		if (fstat(fd, &st) == 0 && st.st_size >= 8 && st.st_size < HC_MAX &&
		    pread(fd, hdr, 8, 0) == 8 && memcmp(hdr, "CHC1", 4) == 0) {
			memcpy(&uv, hdr + 4, 4);
			if (uv == mb->uidvalidity) {
				mb->hc_fd = fd;
				mb->hc_scanned = 8;
				/* The snapshot knows the offsets up to here. */
				if ((uint64_t)st.st_ino == mb->snap_hc_ino &&
				    mb->snap_hc_size >= 8 &&
				    mb->snap_hc_size <= (uint64_t)st.st_size)
					mb->hc_scanned = (off_t)mb->snap_hc_size;
				return 0;
			}
		}
		close(fd);
		unlink(path);
	}
	/* A fresh one: written aside, then renamed into place. */
	{
		char tmp[4300];

		if (str_fmt(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) == -1)
			return -1;
		if ((fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
		    0600)) == -1)
			return -1;
		memcpy(hdr, "CHC1", 4);
		memcpy(hdr + 4, &mb->uidvalidity, 4);
		if (write(fd, hdr, 8) != 8 || rename(tmp, path) == -1) {
			close(fd);
			unlink(tmp);
			return -1;
		}
	}
	mb->hc_fd = fd;
	mb->hc_scanned = 8;
	return 0;
}

size_t
mbox_uid_lower_bound(const struct mailbox *mb, uint32_t uid)
{
	size_t	lo = 0, hi = mb->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (mb->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static long
find_uid(const struct mailbox *mb, uint32_t uid)
{
	size_t	i = mbox_uid_lower_bound(mb, uid);

	return i < mb->n && mb->msgs[i].uid == uid ? (long)i : -1;
}

/* Indexes the records appended since the last look. */
static void
hc_scan(struct mailbox *mb)
{
	struct stat	 st;
	char		*chunk;
	size_t		 csize = 1024 * 1024;

	if (mb->hc_fd == -1 || fstat(mb->hc_fd, &st) == -1 ||
	    st.st_size <= mb->hc_scanned)
		return;
	if ((chunk = malloc(csize)) == NULL)
		return;
	while (mb->hc_scanned < st.st_size) {
		ssize_t got = pread(mb->hc_fd, chunk, csize, mb->hc_scanned);
		size_t pos = 0;

		if (got <= 0)
			break;
		while (pos + sizeof(struct hc_rec) <= (size_t)got) {
			struct hc_rec r;
			long k;

			memcpy(&r, chunk + pos, sizeof(r));
			if (r.magic != HC_MAGIC || r.len > HC_RECMAX) {
				/* Broken: stop using the cache. */
				close(mb->hc_fd);
				mb->hc_fd = -1;
				free(chunk);
				return;
			}
			if (pos + sizeof(r) + r.len > (size_t)got)
				break;
			if ((k = find_uid(mb, r.uid)) >= 0 &&
			    mb->hc_scanned + (off_t)(pos + sizeof(r)) < UINT32_MAX) {
				mb->msgs[k].hdr_off = (uint32_t)(mb->hc_scanned +
				    (off_t)(pos + sizeof(r)));
				mb->msgs[k].hdr_len = r.len;
				mb->hc_learned = 1;
			}
			pos += sizeof(r) + r.len;
		}
		if (pos == 0)
			break;		/* a record still being written */
		mb->hc_scanned += (off_t)pos;
	}
	free(chunk);
}

void
mbox_cache_flush(struct mailbox *mb)
{
	if (mb->hc_pending.len == 0)
		return;
	if (mb->hc_fd != -1)
		(void)!write(mb->hc_fd, mb->hc_pending.data, mb->hc_pending.len);
	buf_reset(&mb->hc_pending);
}

int
mbox_header(struct mailbox *mb, struct mmsg *m, struct buf *out)
{
	struct hc_rec	r;

	if (mb->hc_fd == -1 && mb->uidvalidity != 0)
		(void)hc_open(mb);
	if (m->hdr_len == 0)
		hc_scan(mb);
	if (m->hdr_len != 0 && mb->hc_fd != -1 && m->hdr_off >= sizeof(r)) {
		buf_reset(out);
		if (buf_reserve(out, m->hdr_len + sizeof(r) + 1) == 0 &&
		    pread(mb->hc_fd, out->data, m->hdr_len + sizeof(r),
		    m->hdr_off - sizeof(r)) == (ssize_t)(m->hdr_len + sizeof(r))) {
			memcpy(&r, out->data, sizeof(r));
			if (r.magic == HC_MAGIC && r.uid == m->uid &&
			    r.len == m->hdr_len) {
				memmove(out->data, out->data + sizeof(r), r.len);
				out->len = r.len;
				out->data[out->len] = '\0';
				return 0;
			}
		}
		m->hdr_len = 0;
	}
	if (mbox_read(mb, m, 1, out) == -1)
		return -1;
	if (mb->hc_fd != -1 && out->len <= HC_RECMAX) {
		r.magic = HC_MAGIC;
		r.uid = m->uid;
		r.len = (uint32_t)out->len;
		if (buf_add(&mb->hc_pending, &r, sizeof(r)) == 0 &&
		    buf_add(&mb->hc_pending, out->data, out->len) == 0 &&
		    mb->hc_pending.len > 256 * 1024)
			mbox_cache_flush(mb);
	}
	return 0;
}

int
mbox_append(const char *path, const char *data, size_t len, uint8_t flags,
    const char *kwletters, time_t when, uint32_t *uidv_r, uint32_t *uid_r,
    struct buf *names_r, char *err, size_t errlen)
{
	struct maildir_tmp	*t;
	char			 fl[64], name[512], full[4600];
	uint32_t		 uid = 0, un;
	uint64_t		 vs;
	char			*names[1];
	struct timespec		 ts[2];

	if ((t = malloc(sizeof(*t))) == NULL) {
		str_fmt(err, errlen, "out of memory");
		return -1;
	}
	if (flag_letters(fl, sizeof(fl), flags, 0) == -1 ||
	    str_lcat(fl, kwletters ? kwletters : "", sizeof(fl)) >= sizeof(fl)) {
		free(t);
		return -1;
	}
	if (maildir_tmp_open(t, path, err, errlen) == -1) {
		free(t);
		return -1;
	}
	if (maildir_tmp_write(t, data, len, err, errlen) == -1) {
		maildir_tmp_abort(t);
		free(t);
		return -1;
	}
	if (maildir_tmp_commit(t, fl, name, sizeof(name), err, errlen) == -1) {
		maildir_tmp_abort(t);
		free(t);
		return -1;
	}
	vs = t->wsize;
	free(t);
	/* The caller may want to take it back (a failed COPY). */
	if (names_r != NULL)
		(void)buf_add(names_r, name, strlen(name) + 1);
	if (str_fmt(full, sizeof(full), "%s/cur/%s", path, name) == 0 && when > 0) {
		ts[0].tv_sec = ts[1].tv_sec = when;
		ts[0].tv_nsec = ts[1].tv_nsec = 0;
		utimensat(AT_FDCWD, full, ts, 0);
	}
	names[0] = name;
	if (ul_assign(path, names, 1, &uid, &vs, uidv_r, &un) == -1) {
		/* Delivered; the next sync gives it its UID. */
		*uid_r = 0;
		return 0;
	}
	*uid_r = uid;
	return 0;
}

int
mbox_status(const char *path, struct mbox_status *st, char *err, size_t errlen)
{
	struct mailbox	mb;
	size_t		i;

	memset(&mb, 0, sizeof(mb));
	mb.inotify = -1;
	mb.hc_fd = -1;
	buf_init(&mb.names, 0);
	buf_init(&mb.hc_pending, 0);
	if (str_lcpy(mb.path, path, sizeof(mb.path)) >= sizeof(mb.path))
		return -1;
	mb.readonly = 1;
	if (snap_load(&mb, 0) != 1 && sync_index(&mb, 0, NULL) == -1) {
		str_fmt(err, errlen, "cannot read the mailbox: %s", strerror(errno));
		mbox_close(&mb);
		return -1;
	}
	memset(st, 0, sizeof(*st));
	st->messages = (uint32_t)mb.n;
	for (i = 0; i < mb.n; i++) {
		if (mb.msgs[i].recent)
			st->recent++;
		if (!(mb.msgs[i].flags & F_SEEN))
			st->unseen++;
	}
	st->uidnext = mb.uidnext;
	st->uidvalidity = mb.uidvalidity;
	mbox_close(&mb);
	return 0;
}
