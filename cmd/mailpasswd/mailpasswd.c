/*
 * mailpasswd -- hashes a password, and edits or checks a passwd table.
 *
 *   mailpasswd [-p] [-s scheme]                   prints a hash
 *   mailpasswd [-p] [-s scheme] -t table add user  sets user's hash
 *   mailpasswd -t table del user                   removes user
 *   mailpasswd -t table check user                 checks a password
 *
 * The password is read from the terminal without echo (twice, except for
 * check), or as one line from standard input when that is not a terminal,
 * so scripts can pipe it in. It is never taken from the command line,
 * where ps(1) and shell histories would show it. Hashes are yescrypt by
 * default (libxcrypt's strongest), bcrypt or SHA-crypt on request; weak
 * schemes (DES, MD5) are not offered at all, and a table holding one is
 * reported, not silently accepted. -p prints Dovecot's {SCHEME} form.
 *
 * Tables are OpenSMTPD credentials files (`user hash` lines). Edits keep
 * every other line and are atomic (see pwtable.h); the file stays 0600.
 *
 * Exit statuses: 0 done (check: the password matches); 1 check: it does
 * not match; 64 usage; 65 bad input (empty password, the two entries
 * differ, an unusable hash in the table); 66 no such table; 67 no such
 * user (del, check); 70 hashing failed; 73, 74 the table could not be
 * written or read; 77 permission denied.
 */
#include <sys/resource.h>
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <termios.h>
#include <unistd.h>

#include "passwd.h"
#include "pwtable.h"
#include "table.h"

#define HASH_MAX	512

static struct termios	saved_tty;
static volatile sig_atomic_t tty_changed;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: mailpasswd [-p] [-s scheme]\n"
	    "       mailpasswd [-p] [-s scheme] -t table add user\n"
	    "       mailpasswd -t table del | check user\n"
	    "schemes: yescrypt (default), bcrypt, sha512-crypt, sha256-crypt\n");
	exit(EX_USAGE);
}

/* Puts the terminal back before a signal ends us with echo off. */
static void
restore_tty(int sig)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

/*
 * One line from standard input (the newline and a CR before it removed),
 * echo off when it is a terminal. 0, or a sysexits code with a message.
 */
static int
read_line(const char *prompt, int tty, char *pw, size_t size)
{
	struct termios	t;
	size_t		len = 0;
	ssize_t		n;
	char		c;
	int		over = 0;

	if (tty) {
		if (tcgetattr(STDIN_FILENO, &saved_tty) == -1)
			err(EX_IOERR, "terminal");
		t = saved_tty;
		t.c_lflag &= ~(ECHO | ECHOE | ECHOK);
		t.c_lflag |= ECHONL;
		tty_changed = 1;
		/* Echo goes off before the prompt: nothing typed is shown. */
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == -1)
			err(EX_IOERR, "terminal");
		fprintf(stderr, "%s", prompt);
	}
	for (;;) {
		n = read(STDIN_FILENO, &c, 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n')
			break;
		if (len < size - 1)
			pw[len++] = c;
		else
			over = 1;
	}
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
		tty_changed = 0;
	}
	c = 0;
	if (len > 0 && pw[len - 1] == '\r')
		len--;
	pw[len] = '\0';
	if (n == -1)
		err(EX_IOERR, "reading the password");
	if (over) {
		warnx("password longer than %d bytes", PASSWD_MAXLEN);
		return EX_DATAERR;
	}
	if (len == 0 && n == 0 && !tty) {
		warnx("no password on standard input");
		return EX_DATAERR;
	}
	if (len == 0) {
		warnx("empty password refused");
		return EX_DATAERR;
	}
	return 0;
}

/* The password, asked twice on a terminal when confirm is set. */
static int
get_password(char *pw, size_t size, int confirm)
{
	char	again[PASSWD_MAXLEN + 2];
	int	tty = isatty(STDIN_FILENO), rc;

	if ((rc = read_line("Password: ", tty, pw, size)) != 0)
		return rc;
	if (!tty || !confirm)
		return 0;
	rc = read_line("Again: ", tty, again, sizeof(again));
	if (rc == 0 && strcmp(pw, again) != 0) {
		warnx("the two passwords differ");
		rc = EX_DATAERR;
	}
	explicit_bzero(again, sizeof(again));
	return rc;
}

/* Hashes a password read from the user into hash. */
static int
make_hash(const char *scheme, int prefix, char *hash, size_t hashlen)
{
	char	pw[PASSWD_MAXLEN + 2], e[256];
	int	rc;

	if ((rc = get_password(pw, sizeof(pw), 1)) == 0 &&
	    passwd_hash(scheme, pw, prefix, hash, hashlen, e, sizeof(e)) == -1) {
		warnx("%s", e);
		rc = strstr(e, "password") ? EX_DATAERR : EX_SOFTWARE;
	}
	explicit_bzero(pw, sizeof(pw));
	return rc;
}

/* Checks through lib/table, so it sees the table as the servers do. */
static int
check(const char *path, const char *user)
{
	struct table	*t;
	struct stat	 st;
	char		 hash[HASH_MAX], pw[PASSWD_MAXLEN + 2];
	char		 spec[PATH_MAX + 8], e[PATH_MAX + 256];
	const char	*why;
	int		 r;

	if (stat(path, &st) == -1)
		err(errno == ENOENT ? EX_NOINPUT : EX_NOPERM, "%s", path);
	if (snprintf(spec, sizeof(spec), "file:%s", path) >= (int)sizeof(spec))
		errx(EX_USAGE, "%s: path too long", path);
	if (table_open(&t, spec, e, sizeof(e)) == -1)
		errx(EX_DATAERR, "%s", e);
	r = passwd_lookup(t, user, hash, sizeof(hash));
	table_close(t);
	if (r == -1)
		err(EX_DATAERR, "%s: %s", path, user);
	if (r == 0)
		errx(EX_NOUSER, "%s: no such user in %s", user, path);
	if ((why = passwd_why(hash, 0)) != NULL)
		errx(EX_DATAERR, "%s: %s: %s", path, user, why);
	if ((r = get_password(pw, sizeof(pw), 0)) != 0)
		return r;
	r = passwd_verify(hash, pw, 0);
	explicit_bzero(pw, sizeof(pw));
	if (r == 1)
		return EX_OK;
	if (r == 0) {
		warnx("%s: wrong password", user);
		return 1;
	}
	errx(EX_DATAERR, "%s: %s: hash cannot be verified", path, user);
}

/* add, del or check on a table. */
static int
table_op(const char *table, const char *op, const char *user,
    const char *scheme, int prefix, int hashopts)
{
	char	hash[HASH_MAX], e[PATH_MAX + 256];
	int	rc;

	if (!pwtable_user_ok(user))
		errx(EX_USAGE, "\"%s\": not a usable user name (no white space, "
		    "':' or control characters)", user);
	if (strcmp(op, "add") == 0) {
		if ((rc = make_hash(scheme, prefix, hash, sizeof(hash))) != 0)
			return rc;
		rc = pwtable_set(table, user, hash, e, sizeof(e));
	} else if (hashopts) {
		errx(EX_USAGE, "-p and -s only go with add");
	} else if (strcmp(op, "del") == 0) {
		rc = pwtable_del(table, user, e, sizeof(e));
	} else if (strcmp(op, "check") == 0) {
		return check(table, user);
	} else
		usage();
	if (rc != EX_OK)
		warnx("%s", e);
	return rc;
}

int
main(int argc, char *argv[])
{
	const struct rlimit	 nocore = { 0, 0 };
	const char		*scheme = NULL, *table = NULL;
	char			 hash[HASH_MAX];
	int			 ch, prefix = 0, rc;

	/* A core dump would hold the password. */
	setrlimit(RLIMIT_CORE, &nocore);
	signal(SIGINT, restore_tty);
	signal(SIGTERM, restore_tty);
	signal(SIGHUP, restore_tty);
	signal(SIGQUIT, restore_tty);

	while ((ch = getopt(argc, argv, "ps:t:")) != -1) {
		switch (ch) {
		case 'p':
			prefix = 1;
			break;
		case 's':
			if ((scheme = passwd_scheme(optarg)) == NULL)
				errx(EX_USAGE, "%s: unknown scheme (yescrypt, "
				    "bcrypt, sha512-crypt, sha256-crypt)",
				    optarg);
			break;
		case 't':
			table = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if (table != NULL) {
		if (argc != 2)
			usage();
		if (strncmp(table, "file:", 5) == 0)
			table += 5;
		return table_op(table, argv[0], argv[1], scheme, prefix,
		    prefix || scheme != NULL);
	}
	if (argc != 0)
		usage();
	if ((rc = make_hash(scheme, prefix, hash, sizeof(hash))) != 0)
		return rc;
	if (printf("%s\n", hash) < 0 || fflush(stdout) == EOF)
		err(EX_IOERR, "stdout");
	return EX_OK;
}
