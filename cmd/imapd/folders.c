/*
 * folders.c -- the mailbox list of a Maildir++ (INBOX is the Maildir,
 * folder "A.B" is the directory ".A.B", names stay in modified UTF-7 on
 * disk as Dovecot keeps them, '.' is the hierarchy separator): LIST,
 * LSUB (CHILDREN and SPECIAL-USE attributes), CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE, STATUS, and the special-use folders made at
 * login. Subscriptions are Dovecot's "subscriptions" file.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "imap.h"
#include "imapd.h"
#include "log.h"
#include "maildir.h"

#define SUBSCRIPTIONS	"subscriptions"

static const struct {
	const char	*name;
	const char	*attr;
} specials[] = {
	{ "Drafts", "\\Drafts" }, { "Sent", "\\Sent" }, { "Junk", "\\Junk" },
	{ "Trash", "\\Trash" }, { "Archive", "\\Archive" },
};

const char *
special_use_of(const char *name)
{
	for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++)
		if (strcmp(name, specials[i].name) == 0)
			return specials[i].attr;
	return NULL;
}

static const char *
astr(struct session *s, size_t i)
{
	return i < s->args.n && imap_arg_is_string(&s->args.v[i]) ?
	    s->args.v[i].str : NULL;
}

/* Folder names of the Maildir (without INBOX), NUL-separated in b. */
static int
folder_names(const char *root, struct buf *b, size_t *n_r)
{
	DIR		*d;
	struct dirent	*de;

	*n_r = 0;
	if ((d = opendir(root)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || de->d_name[1] == '\0' ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN &&
		    de->d_type != DT_LNK)
			continue;
		if (de->d_type != DT_DIR) {
			char p[4400];
			struct stat st;

			if (str_fmt(p, sizeof(p), "%s/%s", root, de->d_name) == -1 ||
			    stat(p, &st) == -1 || !S_ISDIR(st.st_mode))
				continue;
		}
		if (buf_add(b, de->d_name + 1, strlen(de->d_name)) == -1) {
			closedir(d);
			return -1;
		}
		(*n_r)++;
	}
	closedir(d);
	return 0;
}

/* IMAP LIST pattern matching: '*' anything, '%' anything but '.'. */
static int
match(const char *pat, const char *name)
{
	if (*pat == '\0')
		return *name == '\0';
	if (*pat == '*') {
		for (;; name++) {
			if (match(pat + 1, name))
				return 1;
			if (*name == '\0')
				return 0;
		}
	}
	if (*pat == '%') {
		for (;; name++) {
			if (match(pat + 1, name))
				return 1;
			if (*name == '\0' || *name == '.')
				return 0;
		}
	}
	if (*name == '\0' || *pat != *name)
		return 0;
	return match(pat + 1, name + 1);
}

/* INBOX matches case-insensitively (RFC 3501 5.1). */
static int
match_name(const char *pat, const char *name)
{
	if (strcasecmp(name, "INBOX") == 0) {
		char up[1024];

		str_lcpy(up, pat, sizeof(up));
		if (strncasecmp(up, "INBOX", 5) == 0)
			memcpy(up, "INBOX", 5);
		return match(up, "INBOX");
	}
	return match(pat, name);
}

static int
has_children(const struct buf *names, const char *name)
{
	size_t	len = strlen(name);

	for (size_t off = 0; off < names->len; off += strlen(names->data + off) + 1)
		if (strncmp(names->data + off, name, len) == 0 &&
		    names->data[off + len] == '.')
			return 1;
	return 0;
}

static int
in_list(const struct buf *names, const char *name)
{
	for (size_t off = 0; off < names->len; off += strlen(names->data + off) + 1)
		if (strcmp(names->data + off, name) == 0)
			return 1;
	return 0;
}

static int
read_subscriptions(const char *root, struct buf *b)
{
	char	 path[4200], line[1100];
	FILE	*f;
	int	 first = 1;

	if (str_fmt(path, sizeof(path), "%s/" SUBSCRIPTIONS, root) == -1)
		return -1;
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (first && strncmp(line, "V\t", 2) == 0) {
			/* Dovecot's version 2 header and its empty line. */
			first = 0;
			continue;
		}
		first = 0;
		if (line[0] == '\0')
			continue;
		/* Version 2 separates hierarchy levels with tabs. */
		for (char *c = line; *c != '\0'; c++)
			if (*c == '\t')
				*c = '.';
		if (!in_list(b, line) && buf_add(b, line, strlen(line) + 1) == -1) {
			fclose(f);
			return -1;
		}
	}
	fclose(f);
	return 0;
}

static int
write_subscriptions(const char *root, const struct buf *b)
{
	char	 path[4200], tmp[4300];
	FILE	*f;

	if (str_fmt(path, sizeof(path), "%s/" SUBSCRIPTIONS, root) == -1 ||
	    str_fmt(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) == -1)
		return -1;
	if ((f = fopen(tmp, "we")) == NULL)
		return -1;
	for (size_t off = 0; off < b->len; off += strlen(b->data + off) + 1)
		fprintf(f, "%s\n", b->data + off);
	if (fflush(f) != 0 || fsync(fileno(f)) == -1) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	fclose(f);
	return rename(tmp, path);
}

static int
subscribe(const char *root, const char *name, int sub)
{
	struct buf	b, nb;
	int		rc;

	buf_init(&b, 0);
	buf_init(&nb, 0);
	if (read_subscriptions(root, &b) == -1) {
		buf_free(&b);
		return -1;
	}
	for (size_t off = 0; off < b.len; off += strlen(b.data + off) + 1)
		if (strcmp(b.data + off, name) != 0)
			buf_add(&nb, b.data + off, strlen(b.data + off) + 1);
	if (sub)
		buf_add(&nb, name, strlen(name) + 1);
	rc = write_subscriptions(root, &nb);
	buf_free(&b);
	buf_free(&nb);
	return rc;
}

static void
list_line(struct session *s, const char *cmd, const char *name, const char *attrs)
{
	buf_printf(&s->out, "* %s (%s) \".\" ", cmd, attrs);
	imap_astring(&s->out, name, strlen(name));
	buf_adds(&s->out, "\r\n");
}

int
cmd_list(struct session *s, size_t argi, int lsub)
{
	const char	*ref = astr(s, argi), *pat = astr(s, argi + 1);
	const char	*cmd = lsub ? "LSUB" : "LIST";
	char		 full[2048], attrs[256];
	struct buf	 names, subs, parents;
	size_t		 n, off;

	if (ref == NULL || pat == NULL)
		return session_reply(s, "BAD", "Missing arguments");
	if (*pat == '\0' && !lsub) {
		buf_adds(&s->out, "* LIST (\\Noselect) \".\" \"\"\r\n");
		return session_reply(s, "OK", "LIST completed");
	}
	if (str_fmt(full, sizeof(full), "%s%s", ref, pat) == -1)
		return session_reply(s, "BAD", "Pattern too long");
	buf_init(&names, 0);
	buf_init(&subs, 0);
	buf_init(&parents, 0);
	if (folder_names(s->root, &names, &n) == -1 ||
	    read_subscriptions(s->root, &subs) == -1) {
		buf_free(&names);
		buf_free(&subs);
		return session_reply(s, "NO", "[SERVERBUG] Cannot list mailboxes");
	}
	if (!lsub && match_name(full, "INBOX"))
		list_line(s, cmd, "INBOX", has_children(&names, "INBOX") ?
		    "\\HasChildren" : "\\HasNoChildren");
	if (lsub) {
		for (off = 0; off < subs.len; off += strlen(subs.data + off) + 1) {
			const char *nm = subs.data + off;

			if (!match_name(full, nm))
				continue;
			list_line(s, cmd, nm, strcasecmp(nm, "INBOX") == 0 ||
			    in_list(&names, nm) ? "" : "\\Noselect");
		}
	} else {
		for (off = 0; off < names.len; off += strlen(names.data + off) + 1) {
			const char *nm = names.data + off, *su;
			char parent[1024];

			/* Parents that do not exist themselves. */
			str_lcpy(parent, nm, sizeof(parent));
			for (char *dot = strrchr(parent, '.'); dot != NULL;
			    dot = strrchr(parent, '.')) {
				*dot = '\0';
				if (!in_list(&names, parent) && !in_list(&parents, parent))
					buf_add(&parents, parent, strlen(parent) + 1);
			}
			if (!match_name(full, nm))
				continue;
			su = special_use_of(nm);
			str_fmt(attrs, sizeof(attrs), "%s%s%s",
			    has_children(&names, nm) ? "\\HasChildren" :
			    "\\HasNoChildren", su ? " " : "", su ? su : "");
			list_line(s, cmd, nm, attrs);
		}
		for (off = 0; off < parents.len; off += strlen(parents.data + off) + 1)
			if (match_name(full, parents.data + off))
				list_line(s, cmd, parents.data + off,
				    "\\Noselect \\HasChildren");
	}
	buf_free(&names);
	buf_free(&subs);
	buf_free(&parents);
	return session_reply(s, "OK", "%s completed", cmd);
}

static void
strip_sep(char *name)
{
	size_t	len = strlen(name);

	while (len > 0 && name[len - 1] == '.')
		name[--len] = '\0';
}

int
cmd_create(struct session *s, size_t argi)
{
	const char	*arg = astr(s, argi);
	char		 name[1024], path[4200], err[256];
	struct stat	 st;

	if (arg == NULL)
		return session_reply(s, "BAD", "Missing mailbox name");
	str_lcpy(name, arg, sizeof(name));
	strip_sep(name);
	if (strcasecmp(name, "INBOX") == 0)
		return session_reply(s, "NO", "[ALREADYEXISTS] INBOX exists");
	if (mbox_path(s->root, name, path, sizeof(path)) == -1)
		return session_reply(s, "NO", "[CANNOT] Invalid mailbox name");
	if (stat(path, &st) == 0)
		return session_reply(s, "NO", "[ALREADYEXISTS] Mailbox exists");
	if (maildir_make_folder(s->root, name, err, sizeof(err)) == -1) {
		log_warnx("create %s: %s", name, err);
		return session_reply(s, "NO", "[CANNOT] Cannot create mailbox");
	}
	return session_reply(s, "OK", "CREATE completed");
}

static int
rm_tree_files(const char *dir)
{
	DIR		*d;
	struct dirent	*de;
	char		 p[4400];

	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (str_fmt(p, sizeof(p), "%s/%s", dir, de->d_name) == -1)
			continue;
		if (unlink(p) == -1 && errno == EISDIR)
			rm_tree_files(p);
		else if (errno == EISDIR || errno == EPERM)
			rm_tree_files(p);
	}
	closedir(d);
	return rmdir(dir);
}

int
cmd_delete(struct session *s, size_t argi)
{
	const char	*arg = astr(s, argi);
	char		 name[1024], path[4200];
	struct stat	 st;

	if (arg == NULL)
		return session_reply(s, "BAD", "Missing mailbox name");
	str_lcpy(name, arg, sizeof(name));
	strip_sep(name);
	if (strcasecmp(name, "INBOX") == 0)
		return session_reply(s, "NO", "Cannot delete INBOX");
	if (mbox_path(s->root, name, path, sizeof(path)) == -1)
		return session_reply(s, "NO", "Invalid mailbox name");
	if (stat(path, &st) == -1)
		return session_reply(s, "NO", "[NONEXISTENT] No such mailbox");
	if (s->selected && strcmp(s->mb.path, path) == 0) {
		mbox_close(&s->mb);
		s->selected = 0;
		s->state = S_AUTH;
	}
	if (rm_tree_files(path) == -1 && errno != ENOENT) {
		log_warn("delete %s", path);
		return session_reply(s, "NO", "[SERVERBUG] Cannot delete mailbox");
	}
	subscribe(s->root, name, 0);
	return session_reply(s, "OK", "DELETE completed");
}

int
cmd_rename(struct session *s, size_t argi)
{
	const char	*from = astr(s, argi), *to = astr(s, argi + 1);
	char		 f[1024], t[1024], fp[4200], tp[4200], err[256];
	struct stat	 st;
	struct buf	 names;
	size_t		 n, flen;

	if (from == NULL || to == NULL)
		return session_reply(s, "BAD", "Missing arguments");
	str_lcpy(f, from, sizeof(f));
	str_lcpy(t, to, sizeof(t));
	strip_sep(f);
	strip_sep(t);
	if (strcasecmp(t, "INBOX") == 0)
		return session_reply(s, "NO", "[ALREADYEXISTS] INBOX exists");
	if (mbox_path(s->root, f, fp, sizeof(fp)) == -1 ||
	    mbox_path(s->root, t, tp, sizeof(tp)) == -1)
		return session_reply(s, "NO", "Invalid mailbox name");
	if (stat(fp, &st) == -1)
		return session_reply(s, "NO", "[NONEXISTENT] No such mailbox");
	if (stat(tp, &st) == 0)
		return session_reply(s, "NO", "[ALREADYEXISTS] Target exists");
	if (strcasecmp(f, "INBOX") == 0) {
		/* RFC 3501 6.3.5: INBOX's messages move, INBOX stays. */
		char src[4400], dst[4400];
		DIR *d;
		struct dirent *de;

		if (maildir_make_folder(s->root, t, err, sizeof(err)) == -1)
			return session_reply(s, "NO", "[CANNOT] %s", err);
		for (int k = 0; k < 2; k++) {
			const char *sub = k ? "new" : "cur";

			if (str_fmt(src, sizeof(src), "%s/%s", fp, sub) == -1 ||
			    (d = opendir(src)) == NULL)
				continue;
			while ((de = readdir(d)) != NULL) {
				if (de->d_name[0] == '.')
					continue;
				if (str_fmt(src, sizeof(src), "%s/%s/%s", fp, sub,
				    de->d_name) == 0 &&
				    str_fmt(dst, sizeof(dst), "%s/%s/%s", tp, sub,
				    de->d_name) == 0)
					rename(src, dst);
			}
			closedir(d);
		}
		return session_reply(s, "OK", "RENAME completed");
	}
	if (rename(fp, tp) == -1) {
		log_warn("rename %s", fp);
		return session_reply(s, "NO", "[SERVERBUG] Cannot rename");
	}
	/* Children follow. */
	buf_init(&names, 0);
	flen = strlen(f);
	if (folder_names(s->root, &names, &n) == 0) {
		for (size_t off = 0; off < names.len; off += strlen(names.data + off) + 1) {
			const char *nm = names.data + off;
			char nn[1100], a[4400], b[4400];

			if (strncmp(nm, f, flen) != 0 || nm[flen] != '.')
				continue;
			if (str_fmt(nn, sizeof(nn), "%s%s", t, nm + flen) == -1 ||
			    mbox_path(s->root, nm, a, sizeof(a)) == -1 ||
			    mbox_path(s->root, nn, b, sizeof(b)) == -1)
				continue;
			rename(a, b);
		}
	}
	buf_free(&names);
	if (s->selected && strcmp(s->mb.path, fp) == 0)
		str_lcpy(s->mb.path, tp, sizeof(s->mb.path));
	return session_reply(s, "OK", "RENAME completed");
}

int
cmd_subscribe(struct session *s, size_t argi, int sub)
{
	const char	*arg = astr(s, argi);
	char		 name[1024], path[4200];

	if (arg == NULL)
		return session_reply(s, "BAD", "Missing mailbox name");
	str_lcpy(name, arg, sizeof(name));
	strip_sep(name);
	if (strcasecmp(name, "INBOX") == 0)
		str_lcpy(name, "INBOX", sizeof(name));
	else if (mbox_path(s->root, name, path, sizeof(path)) == -1)
		return session_reply(s, "NO", "Invalid mailbox name");
	if (subscribe(s->root, name, sub) == -1)
		return session_reply(s, "NO", "[SERVERBUG] Cannot save subscriptions");
	return session_reply(s, "OK", "%s completed", sub ? "SUBSCRIBE" :
	    "UNSUBSCRIBE");
}

int
cmd_status(struct session *s, size_t argi)
{
	const char		*name = astr(s, argi);
	const struct imap_arg	*items = argi + 1 < s->args.n ? &s->args.v[argi + 1] : NULL;
	char			 path[4200], err[256];
	struct mbox_status	 st;
	const char		*sep = "";
	size_t			 i;

	if (name == NULL || items == NULL || items->type != IMAP_LIST)
		return session_reply(s, "BAD", "Missing arguments");
	if (mbox_path(s->root, name, path, sizeof(path)) == -1)
		return session_reply(s, "NO", "Invalid mailbox name");
	{
		struct stat sb;

		if (stat(path, &sb) == -1)
			return session_reply(s, "NO", "[NONEXISTENT] No such mailbox");
	}
	for (i = 0; i < items->nlist; i++) {
		const char *it = items->list[i].str;

		if (items->list[i].type != IMAP_ATOM ||
		    (strcasecmp(it, "MESSAGES") != 0 && strcasecmp(it, "RECENT") != 0 &&
		    strcasecmp(it, "UIDNEXT") != 0 && strcasecmp(it, "UIDVALIDITY") != 0 &&
		    strcasecmp(it, "UNSEEN") != 0))
			return session_reply(s, "BAD", "Invalid status item");
	}
	if (mbox_status(path, &st, err, sizeof(err)) == -1)
		return session_reply(s, "NO", "[SERVERBUG] %s", err);
	buf_adds(&s->out, "* STATUS ");
	imap_astring(&s->out, strcasecmp(name, "INBOX") == 0 ? "INBOX" : name,
	    strcasecmp(name, "INBOX") == 0 ? 5 : strlen(name));
	buf_adds(&s->out, " (");
	for (i = 0; i < items->nlist; i++) {
		const char *it = items->list[i].str;
		uint32_t v = strcasecmp(it, "MESSAGES") == 0 ? st.messages :
		    strcasecmp(it, "RECENT") == 0 ? st.recent :
		    strcasecmp(it, "UIDNEXT") == 0 ? st.uidnext :
		    strcasecmp(it, "UIDVALIDITY") == 0 ? st.uidvalidity : st.unseen;
		char up[32];

		str_lcpy(up, it, sizeof(up));
		for (char *c = up; *c; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 'a' + 'A');
		buf_printf(&s->out, "%s%s %u", sep, up, v);
		sep = " ";
	}
	buf_adds(&s->out, ")\r\n");
	session_untagged_updates(s, 1);
	return session_reply(s, "OK", "STATUS completed");
}

/* The Maildir, and the special-use folders (created and subscribed). */
int
folders_autocreate(struct session *s)
{
	char		err[256], path[4200];
	struct stat	st;
	size_t		i;

	static const char *const sub[] = { "cur", "new", "tmp" };
	int		whole = 1;

	for (i = 0; i < 3 && whole; i++)
		if (str_fmt(path, sizeof(path), "%s/%s", s->root, sub[i]) == -1 ||
		    stat(path, &st) == -1 || !S_ISDIR(st.st_mode))
			whole = 0;
	if (!whole && maildir_make(s->root, err, sizeof(err)) == -1) {
		log_warnx("%s: %s", s->root, err);
		return -1;
	}
	if (!s->cfg->special_use)
		return 0;
	for (i = 0; i < 4; i++) {
		const char *nm = specials[i].name;

		if (mbox_path(s->root, nm, path, sizeof(path)) == -1 ||
		    stat(path, &st) == 0)
			continue;
		if (maildir_make_folder(s->root, nm, err, sizeof(err)) == -1) {
			log_warnx("%s: %s", path, err);
			continue;
		}
		subscribe(s->root, nm, 1);
	}
	return 0;
}
