/*
 * lda -- reads one message on stdin and delivers it into a Maildir.
 *
 *   lda [-c file] -d user [-m folder] [-f sender] [-a address] [-B]
 *   lda [-c file] -M maildir [-m folder] [-f sender] [-a address] [-B]
 *   lda [-c file] -n
 *
 * The user's Maildir comes from the [users] section (lib/userdb: userbase
 * table, home template, or the system's passwd); -M names the Maildir
 * and skips every lookup. Return-Path and Delivered-To are added at the
 * top; a message that already carries our Delivered-To is a loop. The
 * message is written under tmp/, fsync'd, linked into new/ with ,S= and
 * ,W= in its name and new/ is fsync'd: only then do we exit 0.
 *
 * With DELIVERY_ID in the environment (smtpd-lite sets it to the queue id
 * and the recipient's index) the id goes into the file name; with
 * DELIVERY_RETRY=1 too, a message with that id already in new/ or cur/
 * (a delivery that completed before a crash kept its sender from knowing)
 * is not delivered again: exit 0.
 *
 * -B (smtpd-lite's batches): stdin is a list of messages for this one
 * recipient, each an open file and an offset (see batch() below); all
 * are written, made durable with one journal commit and one fsync of
 * new/, and a line "INDEX EXITCODE TEXT" per message says what became of
 * it on stderr.
 *
 * It does not filter, sort, bounce, vacation-reply or enforce quotas, and
 * it never writes as root: run as root it becomes the user first.
 *
 * Exit statuses (sysexits.h), one line on stderr for each failure:
 *   0 delivered; 64 usage; 65 the message is refused for good (empty,
 *   over max_size, a Delivered-To loop); 67 unknown user; 75 try again
 *   later (disk full, quota, I/O, permissions: nothing left in new/);
 *   78 bad configuration (file:line), or a user mapped to uid 0.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "imap.h"
#include "maildir.h"
#include "priv.h"
#include "userdb.h"

#define DEFAULT_CONF	SYSCONFDIR "/courriel/lda.conf"
#define CHUNK		16384	/* the write buffer (64 KiB) batches */
#define HEADER_SCAN_MAX	65536	/* loop detection looks this far at most */

struct opts {
	const char	*conf_path;
	int		 conf_given;
	const char	*user;		/* -d */
	const char	*maildir;	/* -M */
	const char	*folder;	/* -m */
	const char	*sender;	/* -f */
	const char	*rcpt;		/* -a */
	int		 check;		/* -n */
	int		 batch;		/* -B */
};

struct settings {
	unsigned long long	 max_size;	/* 0: no limit */
	int			 create_folders;
};

/* What fatal() must clean up: the temp file, never anything in new/. */
static struct maildir_tmp	 tmp;
static char			 tmppath[4096 + 300];

static char	inbuf[CHUNK];

static void	 fatal(int, const char *, ...)
		    __attribute__((format(printf, 2, 3), noreturn));
static void	 usage(void) __attribute__((noreturn));
static void	 parse_opts(int, char **, struct opts *);
static struct conf *load_conf(const struct opts *, struct settings *);
static void	 find_target(const struct opts *, const struct conf *,
		    char *, size_t, uid_t *, gid_t *);
static void	 become(uid_t, gid_t);
static void	 choose_folder(const struct opts *, const struct settings *,
		    char *, size_t);
static void	 deliver(const struct opts *, const struct settings *,
		    const char *);
static void	 batch(const struct opts *, const struct settings *,
		    const char *);
static void	 append(char *, size_t, size_t *, const char *, size_t);

int
main(int argc, char *argv[])
{
	struct opts	 o;
	struct settings	 s;
	struct conf	*conf;
	char		 maildir[4096];
	uid_t		 uid = 0;
	gid_t		 gid = 0;

	umask(077);
	tmp.fd = -1;
	parse_opts(argc, argv, &o);
	conf = load_conf(&o, &s);
	if (o.check) {
		printf("%s: ok\n", conf ? o.conf_path : "no configuration "
		    "(system users)");
		return 0;
	}
	find_target(&o, conf, maildir, sizeof(maildir), &uid, &gid);
	conf_free(conf);
	if (priv_is_root())
		become(uid, gid);
	choose_folder(&o, &s, maildir, sizeof(maildir));
	if (o.batch)
		batch(&o, &s, maildir);
	else
		deliver(&o, &s, maildir);
	return 0;
}

static void
fatal(int code, const char *fmt, ...)
{
	va_list	ap;
	char	line[2048];
	int	n;

	maildir_tmp_abort(&tmp);
	/* One write, so that lines of parallel deliveries do not mix. */
	memcpy(line, "lda: ", 5);
	va_start(ap, fmt);
	n = vsnprintf(line + 5, sizeof(line) - 6, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 7)
		n = (int)(sizeof(line) - 7);
	line[5 + n] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n + 6) == -1)
		exit(code);	/* nowhere left to say it */
	exit(code);
}

static void
usage(void)
{
	fprintf(stderr, "usage: lda [-c file] -d user | -M maildir [-m folder] "
	    "[-f sender] [-a address] [-B]\n       lda [-c file] -n\n");
	exit(EX_USAGE);
}

/* An address for a header: no control characters, not too long. */
static const char *
address_arg(const char *s, const char *what)
{
	const unsigned char	*p;

	if (strlen(s) > 900)
		fatal(EX_USAGE, "%s: too long", what);
	for (p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			fatal(EX_USAGE, "%s: control character in \"%s\"",
			    what, s);
	return s;
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
	int	ch;

	memset(o, 0, sizeof(*o));
	o->conf_path = DEFAULT_CONF;
	while ((ch = getopt(argc, argv, "a:Bc:d:f:hm:M:n")) != -1) {
		switch (ch) {
		case 'B':
			o->batch = 1;
			break;
		case 'a':
			o->rcpt = address_arg(optarg, "-a");
			break;
		case 'c':
			o->conf_path = optarg;
			o->conf_given = 1;
			break;
		case 'd':
			o->user = optarg;
			break;
		case 'f':
			o->sender = address_arg(optarg, "-f");
			break;
		case 'm':
			o->folder = optarg;
			break;
		case 'M':
			o->maildir = optarg;
			break;
		case 'n':
			o->check = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (!o->check && (o->user == NULL) == (o->maildir == NULL))
		usage();
	if (o->maildir != NULL && o->maildir[0] == '\0')
		usage();
}

/*
 * The configuration, or NULL when the default file does not exist (then
 * users are the system's). An explicit -c must exist.
 */
static struct conf *
load_conf(const struct opts *o, struct settings *s)
{
	static const char *const lda_keys[] = {
		"max_size", "create_folders", NULL
	};
	const struct conf_section	*sec;
	struct userdb			*db;
	struct conf			*conf;
	char				 err[1024];

	memset(s, 0, sizeof(*s));
	if (!o->conf_given && access(o->conf_path, F_OK) == -1 &&
	    errno == ENOENT)
		return NULL;
	if (conf_load(&conf, o->conf_path, err, sizeof(err)) == -1)
		fatal(EX_CONFIG, "%s", err);
	if ((sec = conf_section(conf, "lda", NULL)) != NULL &&
	    (conf_check_keys(conf, sec, lda_keys, err, sizeof(err)) == -1 ||
	    conf_size(conf, sec, "max_size", &s->max_size, err,
	    sizeof(err)) == -1 ||
	    conf_bool(conf, sec, "create_folders", &s->create_folders, err,
	    sizeof(err)) == -1))
		fatal(EX_CONFIG, "%s", err);
	if (o->check) {
		/* -n checks [users] too (lookups open it only for -d). */
		if (userdb_open(&db, conf, err, sizeof(err)) == -1)
			fatal(EX_CONFIG, "%s", err);
		userdb_close(db);
	}
	return conf;
}

/* The Maildir, and the ids to write it with when we are root. */
static void
find_target(const struct opts *o, const struct conf *conf, char *maildir,
    size_t len, uid_t *uid, gid_t *gid)
{
	struct userdb	*db;
	struct user	 u;
	struct stat	 st;
	char		 err[1024], parent[4096], *slash;
	int		 r;

	if (o->maildir != NULL) {
		if (str_lcpy(maildir, o->maildir, len) >= len)
			fatal(EX_USAGE, "-M: path too long");
		if (!priv_is_root())
			return;
		/* As root, -M writes as the owner of the Maildir (or of
		 * the directory it is to be made in). */
		if (stat(maildir, &st) == -1) {
			str_lcpy(parent, maildir, sizeof(parent));
			if ((slash = strrchr(parent, '/')) != NULL)
				*(slash == parent ? slash + 1 : slash) = '\0';
			else
				str_lcpy(parent, ".", sizeof(parent));
			if (stat(parent, &st) == -1)
				fatal(EX_TEMPFAIL, "%s: %s", maildir,
				    strerror(errno));
		}
		*uid = st.st_uid;
		*gid = st.st_gid;
		if (*uid == 0)
			fatal(EX_CONFIG, "%s: owned by root; refusing to "
			    "deliver as root (chown it to the mail user)",
			    maildir);
		return;
	}
	if (userdb_open(&db, conf, err, sizeof(err)) == -1)
		fatal(EX_CONFIG, "%s", err);
	r = userdb_lookup(db, o->user, &u, err, sizeof(err));
	userdb_close(db);
	if (r == -1)
		fatal(EX_TEMPFAIL, "%s: %s", o->user, err);
	if (r == 0)
		fatal(EX_NOUSER, "%s: unknown user", o->user);
	if (u.uid == 0 && priv_is_root())
		fatal(EX_CONFIG, "%s: mapped to uid 0; refusing to deliver "
		    "as root", o->user);
	if (str_lcpy(maildir, u.maildir, len) >= len)
		fatal(EX_TEMPFAIL, "%s: maildir path too long", o->user);
	*uid = u.uid;
	*gid = u.gid;
}

static void
become(uid_t uid, gid_t gid)
{
	char	err[256];

	if (uid == 0)
		fatal(EX_CONFIG, "refusing to deliver as root");
	if (priv_drop(uid, gid, err, sizeof(err)) == -1)
		fatal(EX_TEMPFAIL, "%s", err);
}

/* mkdir -p of the directories above path (as the mail user). */
static int
make_parents(const char *path)
{
	char	p[4096], *s;

	if (str_lcpy(p, path, sizeof(p)) >= sizeof(p))
		return -1;
	for (s = p + 1; (s = strchr(s, '/')) != NULL; s++) {
		*s = '\0';
		if (mkdir(p, 0700) == -1 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return 0;
}

/*
 * -m: the folder's Maildir. Names are given as IMAP shows them (UTF-8,
 * '/' or '.' between levels) and stored in modified UTF-7 as Maildir++
 * wants. A folder that does not exist is made when create_folders is
 * set; otherwise, as with a bad name, the message goes to INBOX (as
 * dovecot-lda does): delivering somewhere beats refusing.
 */
static void
choose_folder(const struct opts *o, const struct settings *s, char *maildir,
    size_t len)
{
	struct buf	 b;
	struct stat	 st;
	char		 name[1024], path[4096], err[1024], *p;

	if (o->folder == NULL || strcasecmp(o->folder, "INBOX") == 0)
		return;
	if (str_lcpy(name, o->folder, sizeof(name)) >= sizeof(name))
		goto inbox;
	if (strncasecmp(name, "INBOX/", 6) == 0 ||
	    strncasecmp(name, "INBOX.", 6) == 0)
		memmove(name, name + 6, strlen(name + 6) + 1);
	for (p = name; *p != '\0'; p++)
		if (*p == '/')
			*p = '.';
	buf_init(&b, 1024);
	if (imap_utf7_encode(name, &b) == -1 || !maildir_folder_name_ok(b.data)) {
		buf_free(&b);
		goto inbox;
	}
	if (str_fmt(path, sizeof(path), "%s/.%s", maildir, b.data) == -1) {
		buf_free(&b);
		goto inbox;
	}
	if (stat(path, &st) == -1) {
		if (errno != ENOENT || !s->create_folders) {
			buf_free(&b);
			goto inbox;
		}
		if (access(maildir, F_OK) == -1 &&
		    (make_parents(maildir) == -1 ||
		    maildir_make(maildir, err, sizeof(err)) == -1))
			fatal(EX_TEMPFAIL, "%s", err);
		if (maildir_make_folder(maildir, b.data, err,
		    sizeof(err)) == -1)
			fatal(EX_TEMPFAIL, "%s", err);
	}
	buf_free(&b);
	str_lcpy(maildir, path, len);
	return;
inbox:
	fprintf(stderr, "lda: folder \"%s\" %s; delivering to INBOX\n",
	    o->folder, s->create_folders ? "has a bad name" :
	    "does not exist or has a bad name");
}

static void
on_signal(int sig)
{
	(void)sig;
	if (tmppath[0] != '\0')
		(void)unlink(tmppath);
	_exit(EX_TEMPFAIL);
}

/* Where a message comes from: stdin, or a queue file read from off. */
struct src {
	int		 fd;
	long long	 off;		/* -1: read(2) as it comes */
};

/* Reads up to len bytes into p: 0 with *got (0 at the end), or -1. */
static int
src_read(struct src *in, char *p, size_t len, size_t *got, char *err,
    size_t errlen)
{
	ssize_t	n;

	for (;;) {
		if (in->off < 0)
			n = read(in->fd, p, len);
		else
			n = pread(in->fd, p, len, (off_t)in->off);
		if (n >= 0)
			break;
		if (errno != EINTR) {
			str_err(err, errlen, "%s: read: %s", in->off < 0 ?
			    "stdin" : "message", strerror(errno));
			return -1;
		}
	}
	if (in->off >= 0)
		in->off += n;
	*got = (size_t)n;
	return 0;
}

/* The first read goes on to the first LF (within 1 KiB), so that an
 * mbox From_ line written in pieces is still seen whole. */
static int
read_first(struct src *in, size_t *n, char *err, size_t errlen)
{
	size_t	r;

	*n = 0;
	while (*n < 1024 && memchr(inbuf, '\n', *n) == NULL) {
		if (src_read(in, inbuf + *n, sizeof(inbuf) - *n, &r, err,
		    errlen) == -1)
			return -1;
		if (r == 0)
			break;
		*n += r;
	}
	return 0;
}

/*
 * Opens t in maildir (made, with its parents, at the first delivery),
 * with the delivery key when there is one. For the single delivery (t
 * is tmp) a signal removes the temp file.
 */
static int
open_tmp(struct maildir_tmp *t, const char *maildir, const char *key,
    char *err, size_t errlen)
{
	struct sigaction	sa;
	size_t			n;

	if (maildir_tmp_open_key(t, maildir, key, err, errlen) == -1) {
		if (errno != ENOENT)
			return -1;
		if (make_parents(maildir) == -1 ||
		    maildir_make(maildir, err, errlen) == -1 ||
		    maildir_tmp_open_key(t, maildir, key, err, errlen) == -1)
			return -1;
	}
	if (t != &tmp)
		return 0;
	n = 0;
	append(tmppath, sizeof(tmppath), &n, tmp.dir, strlen(tmp.dir));
	append(tmppath, sizeof(tmppath), &n, "/tmp/", 5);
	append(tmppath, sizeof(tmppath), &n, tmp.base, strlen(tmp.base));
	tmppath[n] = '\0';
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	return 0;
}

/*
 * Loop detection: the header block is scanned (at most HEADER_SCAN_MAX
 * bytes of it) for a Delivered-To naming rcpt, as the bytes go by.
 */
struct scan {
	const char	*rcpt;
	size_t		 seen;
	int		 done;
	size_t		 llen;
	int		 pending;	/* line is whole; a fold may follow */
	char		 line[1024];
};

/* ASCII case-insensitive prefix test (the libc one costs memory pages). */
static int
has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t	i;
	int	a, b;

	for (i = 0; prefix[i] != '\0'; i++) {
		if (i >= len)
			return 0;
		a = (unsigned char)s[i];
		b = (unsigned char)prefix[i];
		if (a >= 'A' && a <= 'Z')
			a += 'a' - 'A';
		if (b >= 'A' && b <= 'Z')
			b += 'a' - 'A';
		if (a != b)
			return 0;
	}
	return 1;
}

static int
delivered_to_us(const struct scan *sc)
{
	char	v[1024], *p, *e;
	size_t	n;

	if (!has_prefix(sc->line, sc->llen, "Delivered-To:"))
		return 0;
	n = sc->llen - 13;
	memcpy(v, sc->line + 13, n);
	v[n] = '\0';
	p = str_trim(v);
	if (*p == '<' && (e = strchr(p, '>')) != NULL) {
		p++;
		*e = '\0';
	}
	return strcasecmp(p, sc->rcpt) == 0;
}

/* 1 when a loop is found in these bytes. */
static int
scan(struct scan *sc, const char *p, size_t n)
{
	size_t	i;

	for (i = 0; i < n && !sc->done; i++) {
		if (++sc->seen > HEADER_SCAN_MAX) {
			sc->done = 1;
			break;
		}
		if (sc->pending) {
			sc->pending = 0;
			if (p[i] == ' ' || p[i] == '\t') {
				/* a folded field goes on (RFC 5322 2.2.3) */
				if (sc->llen < sizeof(sc->line) - 1)
					sc->line[sc->llen++] = ' ';
				continue;
			}
			if (delivered_to_us(sc))
				return 1;
			sc->llen = 0;
		}
		if (p[i] != '\n') {
			if (sc->llen < sizeof(sc->line) - 1)
				sc->line[sc->llen++] = p[i];
			continue;
		}
		if (sc->llen > 0 && sc->line[sc->llen - 1] == '\r')
			sc->llen--;
		if (sc->llen == 0)
			sc->done = 1;	/* end of the header */
		else
			sc->pending = 1;
	}
	return 0;
}

/* At the end of the message: 1 when its last (header) line was a loop. */
static int
scan_end(struct scan *sc)
{
	return !sc->done && sc->pending && delivered_to_us(sc);
}

/* An mbox "From sender date" line at the top: skipped, its sender kept. */
static size_t
from_line(char *p, size_t n, char *sender, size_t sendlen)
{
	char	*nl, *s, *e;

	if (n < 5 || memcmp(p, "From ", 5) != 0 ||
	    (nl = memchr(p, '\n', n)) == NULL)
		return 0;
	s = p + 5;
	while (s < nl && *s == ' ')
		s++;
	for (e = s; e < nl && *e != ' ' && *e != '\r' && *e != '\t'; e++)
		;
	if ((size_t)(e - s) < sendlen) {
		memcpy(sender, s, (size_t)(e - s));
		sender[e - s] = '\0';
	}
	return (size_t)(nl - p) + 1;
}

/* Appends s (n bytes) to h at *o, when it fits. */
static void
append(char *h, size_t size, size_t *o, const char *s, size_t n)
{
	if (n < size - *o) {
		memcpy(h + *o, s, n);
		*o += n;
	}
}

static int
add_headers(struct maildir_tmp *t, const char *sender, const char *rcpt,
    char *err, size_t errlen)
{
	char		 h[2048];
	size_t		 n = 0, sl;

	/* Built by hand: no snprintf on the delivery path (maildir.c). */
	if (sender != NULL) {
		sl = strlen(sender);
		if (sl >= 2 && sender[0] == '<' && sender[sl - 1] == '>') {
			sender++;
			sl -= 2;
		}
		append(h, sizeof(h), &n, "Return-Path: <", 14);
		append(h, sizeof(h), &n, sender, sl);
		append(h, sizeof(h), &n, ">\n", 2);
	}
	if (rcpt != NULL) {
		append(h, sizeof(h), &n, "Delivered-To: ", 14);
		append(h, sizeof(h), &n, rcpt, strlen(rcpt));
		append(h, sizeof(h), &n, "\n", 1);
	}
	return n > 0 ? maildir_tmp_write(t, h, n, err, errlen) : 0;
}

/* err = a b c, built by hand (see add_headers). */
static void
say(char *err, size_t errlen, const char *a, const char *b, const char *c)
{
	size_t	n = 0;

	append(err, errlen, &n, a, strlen(a));
	append(err, errlen, &n, b, strlen(b));
	append(err, errlen, &n, c, strlen(c));
	err[n] = '\0';
}

/*
 * Writes the message from in into t (opened here, in maildir, with key):
 * 0 with t ready to commit, or an exit status (EX_DATAERR: refused for
 * good; EX_TEMPFAIL) with err and t aborted.
 */
static int
copy_message(const struct settings *s, const char *maildir, const char *key,
    const char *sender, const char *rcpt, struct src *in,
    struct maildir_tmp *t, char *err, size_t errlen)
{
	struct scan		 sc;
	unsigned long long	 total = 0, v;
	char			 from_sender[1024], num[24], *p;
	size_t			 n, skip;

	memset(&sc, 0, sizeof(sc));
	sc.rcpt = rcpt;
	sc.done = sc.rcpt == NULL;
	if (read_first(in, &n, err, errlen) == -1)
		return EX_TEMPFAIL;
	if (n == 0) {
		say(err, errlen, "empty message refused", "", "");
		return EX_DATAERR;
	}
	from_sender[0] = '\0';
	skip = from_line(inbuf, n, from_sender, sizeof(from_sender));
	if (open_tmp(t, maildir, key, err, errlen) == -1)
		return EX_TEMPFAIL;
	if (add_headers(t, sender != NULL ? sender : skip && from_sender[0] ?
	    from_sender : NULL, sc.rcpt, err, errlen) == -1)
		goto temp;
	for (;;) {
		total += n - skip;
		if (s->max_size > 0 && total > s->max_size) {
			p = num + sizeof(num) - 1;
			*p = '\0';
			v = s->max_size;
			do
				*--p = (char)('0' + v % 10);
			while ((v /= 10) != 0);
			say(err, errlen, "message refused: over max_size (", p,
			    " bytes)");
			maildir_tmp_abort(t);
			return EX_DATAERR;
		}
		if (!sc.done && scan(&sc, inbuf + skip, n - skip)) {
			say(err, errlen, "message refused: mail loop "
			    "(Delivered-To: ", sc.rcpt, " already present)");
			maildir_tmp_abort(t);
			return EX_DATAERR;
		}
		if (maildir_tmp_write(t, inbuf + skip, n - skip, err,
		    errlen) == -1)
			goto temp;
		skip = 0;
		if (src_read(in, inbuf, sizeof(inbuf), &n, err, errlen) == -1)
			goto temp;
		if (n == 0)
			break;
	}
	if (scan_end(&sc)) {
		say(err, errlen, "message refused: mail loop "
		    "(Delivered-To: ", sc.rcpt, " already present)");
		maildir_tmp_abort(t);
		return EX_DATAERR;
	}
	if (total == 0) {
		say(err, errlen, "empty message refused", "", "");
		maildir_tmp_abort(t);
		return EX_DATAERR;
	}
	err[0] = '\0';	/* a first open may have failed before the mkdir */
	return 0;
temp:
	maildir_tmp_abort(t);
	return EX_TEMPFAIL;
}

/* 1 when k is a delivery key maildir.c takes. */
static int
key_ok(const char *k)
{
	size_t	i;

	for (i = 0; k[i] != '\0'; i++)
		if (i >= 64 || !((k[i] >= '0' && k[i] <= '9') ||
		    (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' &&
		    k[i] <= 'Z') || k[i] == '_' || k[i] == '-'))
			return 0;
	return i > 0;
}

/*
 * 1 when a message with this delivery key is in the Maildir already; its
 * directories are flushed first, since the attempt that put it there may
 * have been cut before it flushed new/. 0 when absent, -1 with err.
 */
static int
found(const char *maildir, const char *key, char *err, size_t errlen)
{
	int	r;

	if ((r = maildir_find_key(maildir, key, err, errlen)) == 1 &&
	    (maildir_sync_dir(maildir, "new", err, errlen) == -1 ||
	    maildir_sync_dir(maildir, "cur", err, errlen) == -1))
		return -1;
	return r;
}

static void
deliver(const struct opts *o, const struct settings *s, const char *maildir)
{
	struct src	 in = { STDIN_FILENO, -1 };
	sigset_t	 block;
	const char	*key = getenv("DELIVERY_ID");
	const char	*retry = getenv("DELIVERY_RETRY");
	char		 err[1024];
	int		 r;

	if (key != NULL && !key_ok(key))
		key = NULL;
	if (key != NULL && retry != NULL && strcmp(retry, "1") == 0) {
		/* an earlier attempt may have completed: not twice */
		if ((r = found(maildir, key, err, sizeof(err))) == -1)
			fatal(EX_TEMPFAIL, "%s", err);
		if (r == 1)
			exit(0);
	}
	if ((r = copy_message(s, maildir, key, o->sender, o->rcpt ? o->rcpt :
	    o->user, &in, &tmp, err, sizeof(err))) != 0)
		fatal(r, "%s", err);
	/* A signal from here on would report a failure for a message that
	 * may already be in new/: the sender would deliver it twice. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	if (maildir_tmp_commit(&tmp, NULL, NULL, 0, err, sizeof(err)) == -1)
		fatal(EX_TEMPFAIL, "%s", err);
	tmppath[0] = '\0';
}

/*
 * -B: smtpd-lite's batch for one recipient. Stdin is a list:
 *
 *	lda-batch 1
 *	FD OFFSET RETRY KEY SENDER		(one line per message)
 *
 * FD is an open file inherited from the caller holding the message from
 * byte OFFSET on; RETRY is 1 when an earlier attempt may have completed;
 * KEY is the delivery key or "-"; SENDER is "-" (the -f given, if any)
 * or LEN:BYTES, this message's -f. Every message is written to tmp/, all
 * are made durable with one journal commit (writeback started for all,
 * then an fsync each: the first commits the journal for every file, the
 * others find their data on disk already), linked into new/, and new/ is
 * fsync'd once. Then a line per message on stderr: "INDEX EXITCODE TEXT"
 * (INDEX from 0 in the list's order) and exit 0.
 */
#define BATCH_MAX	256
#define MANIFEST_MAX	(BATCH_MAX * 1100)

struct item {
	struct src	 in;
	int		 retry;
	const char	*key;		/* or NULL */
	const char	*sender;	/* or NULL: the command line's */
	int		 code;		/* the exit status it gets */
	int		 written;	/* in tmp/, to be made durable */
	int		 linked;
	char		 err[512];
	char		 name[400];	/* in new/ */
};

static char	 manifest[MANIFEST_MAX + 1];

static int
parse_num(char **p, long long *v)
{
	char	*end;

	errno = 0;
	*v = strtoll(*p, &end, 10);
	if (end == *p || errno != 0 || *v < 0 || *end != ' ')
		return -1;
	*p = end + 1;
	return 0;
}

/* Parses the list into items; the count, or fatal. */
static size_t
read_manifest(struct item *it)
{
	size_t		 len = 0, n, k = 0;
	long long	 fd, off, retry, slen;
	char		*p, *line, *nl, err[256];
	struct src	 in = { STDIN_FILENO, -1 };
	struct stat	 st;
	const unsigned char *c;

	for (;;) {
		if (len == MANIFEST_MAX)
			fatal(EX_TEMPFAIL, "-B: list too long");
		if (src_read(&in, manifest + len, MANIFEST_MAX - len, &n, err,
		    sizeof(err)) == -1)
			fatal(EX_TEMPFAIL, "-B: %s", err);
		if (n == 0)
			break;
		len += n;
	}
	manifest[len] = '\0';
	if (len < 12 || memcmp(manifest, "lda-batch 1\n", 12) != 0)
		fatal(EX_TEMPFAIL, "-B: not a batch list on stdin");
	for (p = manifest + 12; *p != '\0'; p = nl + 1, k++) {
		line = p;
		if (k == BATCH_MAX)
			fatal(EX_TEMPFAIL, "-B: more than %d messages", BATCH_MAX);
		memset(&it[k], 0, sizeof(it[k]));
		if (parse_num(&p, &fd) == -1 || parse_num(&p, &off) == -1 ||
		    parse_num(&p, &retry) == -1 || fd < 3 || fd > 65535 ||
		    retry > 1 || fstat((int)fd, &st) == -1 ||
		    !S_ISREG(st.st_mode))
			goto bad;
		it[k].in.fd = (int)fd;
		it[k].in.off = off;
		it[k].retry = (int)retry;
		it[k].key = p;
		if ((p = strchr(p, ' ')) == NULL)
			goto bad;
		*p++ = '\0';
		if (strcmp(it[k].key, "-") == 0)
			it[k].key = NULL;
		else if (!key_ok(it[k].key))
			goto bad;
		if (p[0] == '-' && p[1] == '\n') {
			nl = p + 1;
			continue;
		}
		slen = strtoll(p, &p, 10);
		if (*p != ':' || slen < 0 || slen > 900 ||
		    (long long)strlen(p + 1) < slen + 1 || p[1 + slen] != '\n')
			goto bad;
		it[k].sender = p + 1;
		nl = p + 1 + slen;
		*nl = '\0';
		for (c = (const unsigned char *)it[k].sender; *c != '\0'; c++)
			if (*c < 0x20 || *c == 0x7f)
				goto bad;
		if ((size_t)(c - (const unsigned char *)it[k].sender) !=
		    (size_t)slen)
			goto bad;
		continue;
bad:
		fatal(EX_TEMPFAIL, "-B: bad line %zu: %.60s", k + 1, line);
	}
	if (k == 0)
		fatal(EX_TEMPFAIL, "-B: no messages");
	return k;
}

static void
batch(const struct opts *o, const struct settings *s, const char *maildir)
{
	static struct item	 it[BATCH_MAX];
	struct maildir_tmp	*t;
	const char		*rcpt = o->rcpt ? o->rcpt : o->user;
	char			 path[4096 + 400];
	size_t			 n, i, linked = 0;
	sigset_t		 block;
	int			 r;

	n = read_manifest(it);
	if ((t = calloc(n, sizeof(*t))) == NULL)
		fatal(EX_TEMPFAIL, "out of memory");
	for (i = 0; i < n; i++) {
		t[i].fd = -1;
		if (it[i].retry && it[i].key != NULL) {
			r = found(maildir, it[i].key, it[i].err,
			    sizeof(it[i].err));
			if (r != 0) {
				/* 1: done before a crash; -1: try later */
				it[i].code = r == 1 ? 0 : EX_TEMPFAIL;
				if (r == 1)
					str_lcpy(it[i].err, "already delivered",
					    sizeof(it[i].err));
				close(it[i].in.fd);
				continue;
			}
		}
		it[i].code = copy_message(s, maildir, it[i].key,
		    it[i].sender != NULL ? it[i].sender : o->sender, rcpt,
		    &it[i].in, &t[i], it[i].err, sizeof(it[i].err));
		close(it[i].in.fd);
		if (it[i].code != 0)
			continue;
		if (maildir_tmp_finish(&t[i], it[i].err,
		    sizeof(it[i].err)) == -1) {
			maildir_tmp_abort(&t[i]);
			it[i].code = EX_TEMPFAIL;
			continue;
		}
		/* writeback of every file starts now, the waits come after */
		(void)sync_file_range(t[i].fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		it[i].written = 1;
	}
	for (i = 0; i < n; i++)
		if (it[i].written && fsync(t[i].fd) == -1) {
			str_err(it[i].err, sizeof(it[i].err), "%s/tmp/%s: "
			    "fsync: %s", t[i].dir, t[i].base, strerror(errno));
			maildir_tmp_abort(&t[i]);
			it[i].code = EX_TEMPFAIL;
			it[i].written = 0;
		}
	/* as in deliver(): no signal between the links and the report */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	for (i = 0; i < n; i++) {
		if (!it[i].written)
			continue;
		if (maildir_tmp_link(&t[i], NULL, it[i].name,
		    sizeof(it[i].name), it[i].err, sizeof(it[i].err)) == -1) {
			maildir_tmp_abort(&t[i]);
			it[i].code = EX_TEMPFAIL;
			continue;
		}
		it[i].linked = 1;
		linked++;
	}
	if (linked > 0 && maildir_sync_dir(maildir, "new", it[0].err,
	    sizeof(it[0].err)) == -1) {
		/* not durable: taken back, all of them are retried */
		for (i = 0; i < n; i++)
			if (it[i].linked) {
				str_fmt(path, sizeof(path), "%s/new/%s",
				    maildir, it[i].name);
				(void)unlink(path);
				it[i].code = EX_TEMPFAIL;
				if (i > 0)
					str_lcpy(it[i].err, it[0].err,
					    sizeof(it[i].err));
			}
	}
	for (i = 0; i < n; i++)
		dprintf(STDERR_FILENO, "%zu %d %s\n", i, it[i].code,
		    it[i].err);
	free(t);
}
