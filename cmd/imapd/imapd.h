/*
 * imapd.h -- what the parts of imapd share: settings, the session, the
 * selected mailbox and its index.
 */
#ifndef IMAPD_H
#define IMAPD_H

#include <sys/types.h>

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "imap.h"

struct io;
struct table;
struct tls_ctx;
struct userdb;
struct conf;

#define IMAPD_MAX_LISTEN	8

struct settings {
	const char	*conf_path;
	char		*listen[IMAPD_MAX_LISTEN];	/* plain + STARTTLS */
	int		 nlisten;
	char		*listen_tls[IMAPD_MAX_LISTEN];	/* implicit TLS */
	int		 nlisten_tls;
	char		*unpriv_user;		/* pre-auth processes */
	uid_t		 unpriv_uid;
	gid_t		 unpriv_gid;
	struct table	*passwd;		/* passwd table, or NULL */
	char		*static_password;	/* or a static password */
	struct table	*static_users;		/* ... for these users */
	int		 plaintext_auth;	/* LOGIN before TLS */
	long		 failure_delay_ms;
	size_t		 max_line;
	uint64_t	 max_append;		/* one literal (APPEND) */
	uint64_t	 max_literals;		/* all literals of a command */
	long		 idle_timeout;		/* seconds, not logged in too */
	long		 max_connections;
	long		 max_per_address;
	long		 max_per_user;
	long		 prefork;		/* monitors forked ahead */
	int		 special_use;		/* create Sent, Drafts, ... */
	int		 max_depth;		/* nesting of lists */
	struct tls_ctx	*tls;
	struct userdb	*userdb;
	struct conf	*conf;
	int		 foreground;
	int		 verbose;
};

/* config.c */
int	settings_load(struct settings *, const char *path, int need_tls,
	    char *err, size_t errlen);

/* One message of the selected mailbox. */
struct mmsg {
	uint32_t	 uid;
	uint32_t	 name;		/* offset of its file name in names */
	uint64_t	 vsize;		/* RFC822.SIZE; UINT64_MAX unknown */
	uint32_t	 kw;		/* keywords: bit i is letter 'a'+i */
	uint8_t		 flags;		/* F_* below */
	uint8_t		 newdir;	/* file is in new/ */
	uint8_t		 recent;
	uint8_t		 seen_scan;	/* mark during a rescan */
	uint32_t	 hdr_off;	/* its header in courriel.cache */
	uint32_t	 hdr_len;	/* 0: not cached */
};

#define F_SEEN		0x01
#define F_ANSWERED	0x02
#define F_FLAGGED	0x04
#define F_DELETED	0x08
#define F_DRAFT		0x10

#define MAX_KEYWORDS	26

struct mailbox {
	char		 name[1024];	/* IMAP name (modified UTF-7) */
	char		 path[4096];	/* the Maildir (folder) */
	int		 readonly;
	uint32_t	 uidvalidity;
	uint32_t	 uidnext;
	struct mmsg	*msgs;
	size_t		 n, cap;
	struct buf	 names;		/* NUL-separated file names */
	char		*map;		/* courriel.index, mapped privately */
	size_t		 maplen;
	int		 msgs_in_map;	/* msgs points into map */
	const char	*ro_names;	/* names in map: offsets < ro_len */
	size_t		 ro_len;
	uint64_t	 snap_hc_ino, snap_hc_size;
	int		 hc_learned;	/* header offsets found since load */
	char		*keywords[MAX_KEYWORDS];
	size_t		 nkeywords;
	struct timespec	 cur_mtime, new_mtime;
	/* uidlist state */
	off_t		 ul_size;
	struct timespec	 ul_mtime;
	ino_t		 ul_ino;
	int		 inotify;	/* -1 when not watching */
	int		 hc_fd;		/* courriel.cache, or -1 */
	off_t		 hc_scanned;	/* indexed up to here */
	struct buf	 hc_pending;	/* records not written yet */
};

/* mailbox.c */
int	mbox_open(struct mailbox *, const char *root, const char *name,
	    int readonly, int select, char *err, size_t errlen);
void	mbox_close(struct mailbox *);
const char *mbox_msg_name(const struct mailbox *, const struct mmsg *);
int	mbox_msg_path(const struct mailbox *, const struct mmsg *, char *,
	    size_t);
/* The size with CRLF line ends (computed and kept when unknown). */
uint64_t mbox_msg_vsize(struct mailbox *, struct mmsg *);
/* Index of the first message with a UID of uid or more (msgs in UID order). */
size_t	mbox_uid_lower_bound(const struct mailbox *, uint32_t uid);
/* Sets flags/keywords of message i (renames the file). 0, or -1. */
int	mbox_set_flags(struct mailbox *, size_t i, uint8_t flags, uint32_t kw);
/* Index of a keyword (created when create and room is left), or -1. */
int	mbox_keyword(struct mailbox *, const char *kw, int create);
/*
 * Rescans the folder. Calls expunged(seq) for each vanished message
 * (highest first, already removed from the index), flagchange(seq) for
 * changed flags; returns the new message count or -1.
 */
struct mbox_events {
	void	(*expunged)(void *, size_t seq);
	void	(*flags)(void *, size_t seq);
	void	*arg;
};
int	mbox_sync(struct mailbox *, const struct mbox_events *);
/* Removes the files of \Deleted messages (set: UIDs, or NULL for all);
 * reports each through ev->expunged. 0 or -1. */
int	mbox_expunge(struct mailbox *, const struct imap_seqset *uids,
	    const struct mbox_events *);
/* Delivers a message into folder path; returns its UID in *uid_r and
 * the folder's uidvalidity; appends its file name (in cur/) to names
 * when not NULL. */
int	mbox_append(const char *path, const char *data, size_t len,
	    uint8_t flags, const char *kwnames, time_t when, uint32_t *uidv_r,
	    uint32_t *uid_r, struct buf *names, char *err, size_t errlen);
/* Reads the message into out with CRLF line ends; header_only stops
 * after the header. 0, or -1 (errno ENOENT when expunged). */
int	mbox_read(struct mailbox *, struct mmsg *, int header_only,
	    struct buf *out);
/* The header block (CRLF) of a message, from the header cache when it
 * is there (and added to it otherwise). 0, or -1 (errno ENOENT when
 * expunged). mbox_cache_flush writes what was added. */
int	mbox_header(struct mailbox *, struct mmsg *, struct buf *out);
void	mbox_cache_flush(struct mailbox *);
/* Received date (file mtime). */
time_t	mbox_msg_time(struct mailbox *, struct mmsg *);
/* STATUS without selecting: counts. 0 or -1. */
struct mbox_status {
	uint32_t	messages, recent, unseen, uidnext, uidvalidity;
};
int	mbox_status(const char *path, struct mbox_status *, char *err,
	    size_t errlen);
/* Flag names helpers. */
int	flags_format(struct buf *, const struct mailbox *, uint8_t flags,
	    uint32_t kw, int recent);
/* Maildir folder path for an IMAP name (INBOX is the root). 0, or -1
 * when the name is not acceptable. */
int	mbox_path(const char *root, const char *name, char *out, size_t outlen);

/* Session. */
enum sstate { S_NOTAUTH, S_AUTH, S_SELECTED, S_LOGOUT };

struct session {
	struct io		*io;
	struct settings		*cfg;
	enum sstate		 state;
	int			 tls;
	char			 user[256];
	char			 root[4096];	/* the user's Maildir */
	struct mailbox		 mb;
	int			 selected;
	struct buf		 cmd;		/* the command being read */
	struct buf		 out;		/* response being built */
	struct imap_args	 args;
	char			 tag[128];
	int			 uid;		/* UID command */
	size_t			 exists_sent;	/* EXISTS the client knows */
	uint32_t		*pending_exp;	/* unused */
	/* counters for the logout line */
	unsigned long		 n_fetch, n_expunged, n_appended;
	uint64_t		 bytes_out;
	/* message cache for FETCH */
	uint32_t		 cache_uid;
	int			 cache_full;
	struct buf		 cache;
};

/* session.c */
int	session_read_command(struct session *, char *err, size_t errlen);
int	session_run(struct session *);
void	session_untagged_updates(struct session *, int allow_expunge);
int	session_reply(struct session *, const char *status, const char *fmt,
	    ...) __attribute__((format(printf, 3, 4)));
const char *session_capability(const struct session *);
int	session_flush(struct session *);

/* fetch.c */
int	cmd_fetch(struct session *, size_t argi);
int	cmd_store(struct session *, size_t argi);
/* search.c */
int	cmd_search(struct session *, size_t argi);
/* folders.c */
int	cmd_list(struct session *, size_t argi, int lsub);
int	cmd_create(struct session *, size_t argi);
int	cmd_delete(struct session *, size_t argi);
int	cmd_rename(struct session *, size_t argi);
int	cmd_subscribe(struct session *, size_t argi, int sub);
int	cmd_status(struct session *, size_t argi);
int	folders_autocreate(struct session *);
const char *special_use_of(const char *name);

/* Sequence set of the command, resolved against the mailbox: a sorted
 * list of message indexes (0-based) in *idx_r. 0, or -1 (BAD). */
int	session_msgset(struct session *, const char *set, int uid,
	    size_t **idx_r, size_t *n_r);

/* auth.c; frames between the pre-auth child and its monitor */
#define HANDOFF_DIRECT	1	/* the session takes the client socket */
#define HANDOFF_PROXY	2	/* the pre-auth child relays (TLS) */
#define AUTHFRAME_MAGIC	0x494d4150u
struct authframe {
	uint32_t	magic;
	char		user[256];
	char		pass[1100];
};
int	auth_check(struct settings *, const char *user, const char *pass);
int	preauth_run(struct settings *, struct io *, int tls_now,
	    int privsep_fd, struct session *s_r);

/* server.c */
int	user_limit_ok(const char *user);
int	server_run(struct settings *);
int	serve_connection(struct settings *, int rfd, int wfd, int implicit_tls,
	    const char *peer);

#endif
