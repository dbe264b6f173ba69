/*
 * maildirmake -- creates a Maildir (tmp, new, cur, mode 0700), or with
 * -f NAME the Maildir++ folder DIR/.NAME with its maildirfolder file, as
 * maildrop's maildirmake does, so scripts written for it keep working.
 * -F NAME takes the folder name in UTF-8 and stores it in modified
 * UTF-7; -q QUOTA writes a Maildir++ maildirsize file; -S makes the top
 * directory readable by others (maildrop's "sharable" Maildir).
 *
 * Not done: maildrop's shared folders (-s, --add, --del) and its
 * /etc/maildirshared; they are refused with a message.
 *
 * Exit status: 0 made, 1 anything failed (maildrop's statuses), 64 usage.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "buf.h"
#include "imap.h"
#include "maildir.h"

static void
usage(void)
{
	fprintf(stderr, "usage: maildirmake [-S] [-q quota] [-f folder | "
	    "-F folder] maildir\n");
	exit(EX_USAGE);
}

/*
 * 1 when path exists and is not an empty directory. maildrop refuses any
 * existing path; an empty directory (a fresh volume's mount point, seed
 * 001) is filled here instead.
 */
static int
exists_nonempty(const char *path)
{
	struct stat	 st;
	struct dirent	*d;
	DIR		*dir;
	int		 n = 0;

	if (lstat(path, &st) == -1)
		return 0;
	if (!S_ISDIR(st.st_mode) || (dir = opendir(path)) == NULL)
		return 1;
	while ((d = readdir(dir)) != NULL)
		if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
			n++;
	closedir(dir);
	return n > 0;
}

/* A Maildir++ quota: comma-separated NNNS (bytes) and NNNC (messages). */
static int
quota_ok(const char *q)
{
	const char	*p = q;

	if (*p == '\0' || strlen(q) > 100)
		return 0;
	for (;;) {
		if (*p < '0' || *p > '9')
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p != 'S' && *p != 'C')
			return 0;
		p++;
		if (*p == '\0')
			return 1;
		if (*p++ != ',')
			return 0;
	}
}

/* Writes maildirsize atomically: the quota line and an empty usage line. */
static void
write_quota(const char *dir, const char *quota)
{
	char	tmp[4096], dst[4096], line[256];
	int	fd, n;

	if (str_fmt(tmp, sizeof(tmp), "%s/tmp/maildirsize.%ld", dir,
	    (long)getpid()) == -1 ||
	    str_fmt(dst, sizeof(dst), "%s/maildirsize", dir) == -1)
		errx(1, "%s: path too long", dir);
	n = snprintf(line, sizeof(line), "%s\n%12d %12d\n", quota, 0, 0);
	if (n < 0 || (size_t)n >= sizeof(line))
		errx(1, "%s: quota too long", quota);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		err(1, "%s: open", tmp);
	if (write(fd, line, (size_t)n) != n || fsync(fd) == -1) {
		unlink(tmp);
		err(1, "%s: write", tmp);
	}
	close(fd);
	if (rename(tmp, dst) == -1) {
		unlink(tmp);
		err(1, "%s: rename", dst);
	}
}

static void
make_folder(const char *dir, const char *name, int utf8)
{
	struct buf	 b;
	char		 path[4096], e[512];
	struct stat	 st;

	buf_init(&b, 1024);
	if (utf8) {
		if (imap_utf7_encode(name, &b) == -1)
			errx(1, "%s: not valid UTF-8 or too long", name);
		name = b.data;
	}
	if (!maildir_folder_name_ok(name))
		errx(1, "%s: bad folder name (no '/', \"..\", leading or "
		    "trailing '.', or control characters)", name);
	if (stat(dir, &st) == -1)
		err(1, "%s", dir);
	if (str_fmt(path, sizeof(path), "%s/.%s", dir, name) == -1)
		errx(1, "%s/.%s: path too long", dir, name);
	if (exists_nonempty(path))
		errx(1, "%s: %s", path, strerror(EEXIST));
	if (maildir_make_folder(dir, name, e, sizeof(e)) == -1)
		errx(1, "%s", e);
	buf_free(&b);
}

int
main(int argc, char *argv[])
{
	const char	*folder = NULL, *quota = NULL;
	char		 e[512];
	int		 ch, utf8 = 0, sharable = 0;

	while ((ch = getopt(argc, argv, "f:F:q:Ss:")) != -1) {
		switch (ch) {
		case 'f':
		case 'F':
			folder = optarg;
			utf8 = ch == 'F';
			break;
		case 'q':
			quota = optarg;
			break;
		case 'S':
			sharable = 1;
			break;
		case 's':
			errx(EX_USAGE, "-s (shared folders) is not supported");
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 || argv[0][0] == '\0')
		usage();
	if (quota != NULL && !quota_ok(quota))
		errx(EX_USAGE, "%s: bad quota (expected e.g. 10000000S,1000C)",
		    quota);
	if (folder != NULL) {
		if (quota != NULL || sharable)
			errx(EX_USAGE, "-q and -S apply to a Maildir, not to "
			    "a folder");
		make_folder(argv[0], folder, utf8);
		return 0;
	}
	if (quota != NULL && access(argv[0], F_OK) == 0) {
		/* maildrop sets the quota of an existing Maildir. */
		write_quota(argv[0], quota);
		return 0;
	}
	if (exists_nonempty(argv[0]))
		errx(1, "%s: %s", argv[0], strerror(EEXIST));
	if (maildir_make(argv[0], e, sizeof(e)) == -1)
		errx(1, "%s", e);
	if (chmod(argv[0], sharable ? 0755 : 0700) == -1)
		err(1, "%s: chmod", argv[0]);
	if (quota != NULL)
		write_quota(argv[0], quota);
	return 0;
}
