/* Unit tests for lib/maildir. */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "maildir.h"
#include "t.h"

static char	root[256];

/* The only entry of dir/sub (NULL when there are zero or several). */
static const char *
only_entry(const char *sub)
{
	static char	 name[512];
	char		 p[512];
	DIR		*d;
	struct dirent	*e;
	int		 n = 0;

	snprintf(p, sizeof(p), "%s/%s", root, sub);
	if ((d = opendir(p)) == NULL)
		return NULL;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(name, sizeof(name), "%s", e->d_name);
		n++;
	}
	closedir(d);
	return n == 1 ? name : NULL;
}

static int
count(const char *sub)
{
	char		 p[512];
	DIR		*d;
	struct dirent	*e;
	int		 n = 0;

	snprintf(p, sizeof(p), "%s/%s", root, sub);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static size_t
slurp(const char *sub, const char *name, char *out, size_t outlen)
{
	char	p[1024];
	int	fd;
	ssize_t	n;

	snprintf(p, sizeof(p), "%s/%s/%s", root, sub, name);
	if ((fd = open(p, O_RDONLY)) == -1)
		return 0;
	n = read(fd, out, outlen - 1);
	close(fd);
	if (n < 0)
		n = 0;
	out[n] = '\0';
	return (size_t)n;
}

static void
rm_all(const char *sub)
{
	char		 p[512], f[1024];
	DIR		*d;
	struct dirent	*e;

	snprintf(p, sizeof(p), "%s/%s", root, sub);
	if ((d = opendir(p)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(f, sizeof(f), "%s/%s", p, e->d_name);
		unlink(f);
	}
	closedir(d);
}

int
main(void)
{
	static struct maildir_tmp	 t;
	struct maildir_name		 mn;
	struct stat			 st;
	char				 err[512], name[512], buf[4096], p[1024];
	const char			*e;
	const char			*chunks[] = { "a\r", "\nb\r", "\r\n", "c\rd\r" };
	size_t				 i;

	snprintf(root, sizeof(root), "/tmp/t-maildir.%ld", (long)getpid());
	T_EQ_INT(maildir_make(root, err, sizeof(err)), 0, "maildir_make");
	T_EQ_INT(maildir_make(root, err, sizeof(err)), 0, "maildir_make again");
	snprintf(p, sizeof(p), "%s/new", root);
	T_OK(stat(p, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & 07777) == 0700, "new/ is a 0700 directory");

	/* LF input */
	T_EQ_INT(maildir_tmp_open(&t, root, err, sizeof(err)), 0, "tmp_open");
	e = only_entry("tmp");
	snprintf(p, sizeof(p), "%s/tmp/%s", root, e ? e : "");
	T_OK(e != NULL && stat(p, &st) == 0 && (st.st_mode & 0777) == 0600,
	    "temp file is 0600");
	T_EQ_INT(maildir_tmp_write(&t, "Subject: x\n\nhi\n", 15, err,
	    sizeof(err)), 0, "tmp_write");
	T_EQ_INT(count("new"), 0, "nothing in new/ before commit");
	T_EQ_INT(maildir_tmp_commit(&t, NULL, name, sizeof(name), err,
	    sizeof(err)), 0, "commit");
	T_EQ_INT(count("tmp"), 0, "tmp/ empty after commit");
	e = only_entry("new");
	T_EQ_STR(e, name, "name_r is the file in new/");
	T_EQ_INT(maildir_parse_name(name, &mn), 0, "parse own name");
	{
		unsigned long long	sec, usec, pid, q;
		char			rnd[17], host[256];
		int			k = 0;

		T_OK(sscanf(mn.base, "%llu.M%lluP%lluQ%lluR%16[0-9a-f].%255s%n",
		    &sec, &usec, &pid, &q, rnd, host, &k) == 6 &&
		    strlen(rnd) == 16 && pid == (unsigned long long)getpid() &&
		    usec < 1000000 && strchr(host, '/') == NULL,
		    "unique name is sec.MusecPpidQnRrandom.host: %s", mn.base);
	}
	T_EQ_INT(mn.size, 15, "S= bytes on disk");
	T_EQ_INT(mn.wsize, 18, "W= bytes with CRLF");
	T_EQ_STR(mn.flags, "", "no flags in new/");
	T_EQ_INT(slurp("new", name, buf, sizeof(buf)), 15, "file size");
	maildir_tmp_abort(&t);
	T_EQ_INT(count("new"), 1, "abort after commit keeps the message");
	rm_all("new");

	/* CRLF split across chunks, lone CRs kept */
	T_EQ_INT(maildir_tmp_open(&t, root, err, sizeof(err)), 0, "tmp_open 2");
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
		maildir_tmp_write(&t, chunks[i], strlen(chunks[i]), err,
		    sizeof(err));
	T_EQ_INT(maildir_tmp_commit(&t, "FS", name, sizeof(name), err,
	    sizeof(err)), 0, "commit into cur/ with flags");
	T_EQ_INT(count("new"), 0, "flags go to cur/, not new/");
	T_EQ_INT(slurp("cur", name, buf, sizeof(buf)), 9, "CRLF -> LF size");
	T_OK(memcmp(buf, "a\nb\r\nc\rd\r", 9) == 0,
	    "CRLF -> LF across chunks, lone CRs kept");
	maildir_parse_name(name, &mn);
	T_EQ_INT(mn.size, 9, "S= after conversion");
	T_EQ_INT(mn.wsize, 11, "W= after conversion");
	T_EQ_STR(mn.flags, "FS", "flags in the name");
	rm_all("cur");

	/* abort */
	T_EQ_INT(maildir_tmp_open(&t, root, err, sizeof(err)), 0, "tmp_open 3");
	maildir_tmp_write(&t, "x\n", 2, err, sizeof(err));
	maildir_tmp_abort(&t);
	maildir_tmp_abort(&t);
	T_EQ_INT(count("tmp") + count("new") + count("cur"), 0,
	    "abort (twice) leaves nothing");

	/* bad flags */
	maildir_tmp_open(&t, root, err, sizeof(err));
	T_EQ_INT(maildir_tmp_commit(&t, "SF", NULL, 0, err, sizeof(err)), -1,
	    "unsorted flags refused");
	T_EQ_INT(count("tmp") + count("cur"), 0, "failed commit cleans tmp/");

	/* a missing Maildir */
	snprintf(p, sizeof(p), "%s/nope", root);
	errno = 0;
	T_EQ_INT(maildir_tmp_open(&t, p, err, sizeof(err)), -1,
	    "tmp_open on a missing Maildir fails");
	T_EQ_INT(errno, ENOENT, "errno ENOENT kept");
	T_OK(strstr(err, "nope/tmp/") != NULL, "error names the path: %s", err);

	/* big message in small pieces */
	maildir_tmp_open(&t, root, err, sizeof(err));
	for (i = 0; i < 100000; i++)
		maildir_tmp_write(&t, "0123456789\r\n", 12, err, sizeof(err));
	T_EQ_INT(maildir_tmp_commit(&t, NULL, name, sizeof(name), err,
	    sizeof(err)), 0, "commit 1.1 MB");
	maildir_parse_name(name, &mn);
	T_EQ_INT(mn.size, 1100000, "S= of the big message");
	T_EQ_INT(mn.wsize, 1200000, "W= of the big message");
	snprintf(p, sizeof(p), "%s/new/%s", root, name);
	T_OK(stat(p, &st) == 0 && st.st_size == 1100000, "size on disk");
	rm_all("new");

	/* folders */
	T_EQ_INT(maildir_make_folder(root, "Archives.2024", err, sizeof(err)),
	    0, "make_folder");
	snprintf(p, sizeof(p), "%s/.Archives.2024/maildirfolder", root);
	T_OK(stat(p, &st) == 0 && S_ISREG(st.st_mode), "maildirfolder file");
	snprintf(p, sizeof(p), "%s/.Archives.2024/cur", root);
	T_OK(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "folder cur/");
	T_EQ_INT(maildir_make_folder(root, "../x", err, sizeof(err)), -1,
	    "folder with .. refused");
	T_EQ_INT(maildir_folder_name_ok("a/b"), 0, "slash refused");
	T_EQ_INT(maildir_folder_name_ok(".a"), 0, "leading dot refused");
	T_EQ_INT(maildir_folder_name_ok("a."), 0, "trailing dot refused");
	T_EQ_INT(maildir_folder_name_ok("a\nb"), 0, "control char refused");
	T_EQ_INT(maildir_folder_name_ok(""), 0, "empty refused");
	T_EQ_INT(maildir_folder_name_ok("Sent Messages"), 1, "space allowed");
	T_EQ_INT(maildir_folder_name_ok("&AOk-t&AOk-"), 1, "mUTF-7 allowed");

	/* names */
	T_EQ_INT(maildir_parse_name("1700000000.M1P2Q3.host,S=120,W=124:2,RS",
	    &mn), 0, "parse Dovecot name");
	T_EQ_STR(mn.base, "1700000000.M1P2Q3.host", "base");
	T_EQ_INT(mn.size, 120, "S");
	T_EQ_INT(mn.wsize, 124, "W");
	T_EQ_STR(mn.flags, "RS", "flags");
	T_EQ_INT(maildir_parse_name("123.abc:2,", &mn), 0, "no S= or W=");
	T_EQ_INT(mn.size, -1, "S absent is -1");
	T_EQ_STR(mn.flags, "", "empty flags");
	T_EQ_INT(maildir_parse_name("1.x,M=5,S=7", &mn), 0, "other fields");
	T_EQ_INT(mn.size, 7, "S after another field");
	T_EQ_INT(maildir_parse_name(".hidden", &mn), -1, "dot file refused");
	T_EQ_INT(maildir_parse_name("a/b", &mn), -1, "slash refused");
	T_EQ_INT(maildir_parse_name("1.x:3,foo", &mn), -1, "unknown info");

	/* delivery keys and the batch steps */
	{
		static struct maildir_tmp	 b[2];
		char				 kroot[300], n0[512];

		snprintf(kroot, sizeof(kroot), "%s/keyed", root);
		T_EQ_INT(maildir_make(kroot, err, sizeof(err)), 0, "keyed maildir");
		T_EQ_INT(maildir_find_key(kroot, "0a1b_2", err, sizeof(err)), 0,
		    "key not there before");
		T_EQ_INT(maildir_tmp_open_key(&b[0], kroot, "0a1b_2", err,
		    sizeof(err)), 0, "open with key");
		T_OK(strstr(b[0].base, "K0a1b_2.") != NULL, "key in the name: %s",
		    b[0].base);
		T_EQ_INT(maildir_tmp_open_key(&b[1], kroot, "0a1b_3", err,
		    sizeof(err)), 0, "open a second one");
		T_EQ_INT(maildir_tmp_write(&b[0], "a\r", 2, err, sizeof(err)), 0,
		    "write with a pending CR");
		T_EQ_INT(maildir_tmp_write(&b[1], "b\n", 2, err, sizeof(err)), 0,
		    "write");
		T_EQ_INT(maildir_tmp_finish(&b[0], err, sizeof(err)), 0, "finish");
		T_EQ_INT(b[0].size, 2, "the pending CR written at finish");
		T_OK(b[0].fd != -1 && fsync(b[0].fd) == 0, "fd open after finish");
		T_EQ_INT(maildir_find_key(kroot, "0a1b_2", err, sizeof(err)), 0,
		    "not found while in tmp/");
		T_EQ_INT(maildir_tmp_link(&b[0], NULL, n0, sizeof(n0), err,
		    sizeof(err)), 0, "link into new/");
		T_EQ_INT(maildir_tmp_link(&b[1], "S", NULL, 0, err,
		    sizeof(err)), 0, "link into cur/ with flags");
		T_EQ_INT(maildir_sync_dir(kroot, "new", err, sizeof(err)), 0,
		    "sync new/");
		T_EQ_INT(maildir_find_key(kroot, "0a1b_2", err, sizeof(err)), 1,
		    "found in new/");
		T_EQ_INT(maildir_find_key(kroot, "0a1b_3", err, sizeof(err)), 1,
		    "found in cur/");
		T_EQ_INT(maildir_find_key(kroot, "0a1b", err, sizeof(err)), 0,
		    "a prefix of a key does not match");
		T_EQ_INT(maildir_find_key(kroot, "a1b_2", err, sizeof(err)), 0,
		    "a suffix of a key does not match");
		T_EQ_INT(maildir_find_key(kroot, "a/b", err, sizeof(err)), -1,
		    "bad key refused");
		T_EQ_INT(maildir_tmp_open_key(&b[0], kroot, "x.y", err,
		    sizeof(err)), -1, "open with a bad key refused");
		T_OK(strstr(n0, ",S=2,W=2") != NULL, "S and W: %s", n0);
	}

	snprintf(p, sizeof(p), "rm -rf %s", root);
	if (system(p) != 0)
		return 1;
	return t_done();
}
