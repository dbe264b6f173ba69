/*
 * maildir -- Maildir and Maildir++ (Dovecot's layout): making them,
 * delivering into them durably, and reading their file names.
 *
 * Delivery: maildir_tmp_open creates tmp/<unique> (O_EXCL, mode 0600);
 * the caller writes the message with maildir_tmp_write (LF line ends on
 * disk: CRLF from the wire is turned into LF; S counts bytes on disk, W
 * the bytes with CRLF ends, i.e. S + number of LFs); maildir_tmp_commit
 * fsyncs the file, links it into new/ (or cur/ with flags) as
 * <unique>,S=<S>,W=<W>[:2,FLAGS], removes the tmp name and fsyncs the
 * directory. Only then is the message delivered. maildir_tmp_abort
 * removes the temp file. The unique name is
 * <sec>.M<usec>P<pid>Q<counter>R<random>[K<key>].<host> (host with '/'
 * and ':' escaped as Dovecot does, \057 and \072).
 */
#ifndef MAILDIR_H
#define MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

/* Makes path/{tmp,new,cur} (and path) with mode 0700. 0 or -1 with err;
 * existing directories are fine. */
int	maildir_make(const char *path, char *err, size_t errlen);
/*
 * Makes the Maildir++ folder root/.NAME (NAME already in modified UTF-7,
 * hierarchy separated by '.') with its maildirfolder file. Refuses names
 * with '/', "..", leading '.', or control characters (-1, EINVAL).
 */
int	maildir_make_folder(const char *root, const char *name, char *err,
	    size_t errlen);
/* 1 when name is a safe Maildir++ folder name (see above). */
int	maildir_folder_name_ok(const char *name);

struct maildir_tmp {
	int			 fd;
	char			 dir[4096];	/* the Maildir */
	char			 base[256];	/* unique base name */
	unsigned long long	 size;		/* S: bytes on disk */
	unsigned long long	 wsize;		/* W: bytes with CRLF */
	int			 pending_cr;	/* a CR seen at a chunk end */
	char			 wbuf[65536];
	size_t			 wlen;
};

/* 0, or -1 with err (errno kept: ENOSPC, EDQUOT, EACCES...). */
int	maildir_tmp_open(struct maildir_tmp *, const char *maildir, char *err,
	    size_t errlen);
/* Writes message bytes (any chunking; CRLF -> LF). 0 or -1 with err. */
int	maildir_tmp_write(struct maildir_tmp *, const void *, size_t, char *err,
	    size_t errlen);
/*
 * Delivers: into new/ when flags is NULL, else into cur/ with ":2,FLAGS"
 * (flags sorted, e.g. "S" or "FS"). The final name (not the path) is
 * copied into name_r when not NULL. 0, or -1 with err and nothing left in
 * new/ or cur/.
 */
int	maildir_tmp_commit(struct maildir_tmp *, const char *flags, char *name_r,
	    size_t namelen, char *err, size_t errlen);
/* Removes the temp file; safe to call after a failed commit or twice. */
void	maildir_tmp_abort(struct maildir_tmp *);

/*
 * Batches (several messages made durable together) use the steps of
 * maildir_tmp_commit one by one: maildir_tmp_finish writes out what is
 * buffered (the fd stays open for the caller's fsync), maildir_tmp_link
 * closes the file and links it into new/ (or cur/ with flags) without
 * any sync (the caller has synced the data before, and syncs the
 * directory after with maildir_sync_dir). 0, or -1 with err; after a
 * failed link the temp file is still there for maildir_tmp_abort.
 */
int	maildir_tmp_finish(struct maildir_tmp *, char *err, size_t errlen);
int	maildir_tmp_link(struct maildir_tmp *, const char *flags, char *name_r,
	    size_t namelen, char *err, size_t errlen);
/* fsyncs maildir/sub ("new", "cur"). 0, or -1 with err. */
int	maildir_sync_dir(const char *maildir, const char *sub, char *err,
	    size_t errlen);

/*
 * Exactly-once delivery: maildir_tmp_open_key puts a delivery key (1 to
 * 64 of [0-9A-Za-z_-], e.g. a queue id and a recipient index) into the
 * unique name as "K<key>"; maildir_find_key says whether a message with
 * that key is in new/ or cur/ (1), not (0), or -1 with err. A sender that
 * does not know whether an earlier attempt completed (a crash between
 * the delivery and its own record of it) asks before delivering again.
 */
int	maildir_tmp_open_key(struct maildir_tmp *, const char *maildir,
	    const char *key, char *err, size_t errlen);
int	maildir_find_key(const char *maildir, const char *key, char *err,
	    size_t errlen);

/* What a Maildir file name says. */
struct maildir_name {
	char			 base[256];	/* up to ',' or ':' */
	long long		 size;		/* S=, or -1 */
	long long		 wsize;		/* W=, or -1 */
	char			 flags[64];	/* after ":2," ("" if none) */
};
/* Parses name (no directory). 0, or -1 when it is not a message name. */
int	maildir_parse_name(const char *name, struct maildir_name *);

#endif
