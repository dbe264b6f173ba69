/*
 * fetch.h -- what the parts of fetch share: the account, the state, the
 * delivery, the two protocol clients and their response parsers.
 */
#ifndef FETCH_H
#define FETCH_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

struct io;
struct tls_ctx;

/* Exit statuses (sysexits): 0 all went well. */
#define FETCH_OK	0
#define FETCH_FAIL	1	/* an account failed: auth, protocol, refused */

enum fetch_proto { PROTO_IMAP, PROTO_POP3 };
enum fetch_tls { TLS_OFF, TLS_STARTTLS, TLS_IMPLICIT };

struct account {
	char		*name;		/* section label, or the URL */
	char		*where;		/* "file:line" or "command line" */
	int		 proto;		/* enum fetch_proto */
	int		 tls;		/* enum fetch_tls */
	char		*host;
	char		*port;
	char		*user;
	char		*password;	/* wiped when freed */
	char		*cafile;
	int		 insecure;	/* no certificate checks */
	int		 allow_plaintext; /* password over a cleartext link */
	char		**folders;	/* IMAP; NULL-terminated; default INBOX */
	size_t		 nfolders;
	char		*maildir;	/* exactly one of maildir and mda */
	char		**mda;		/* argv, NULL-terminated */
	char		*mda_text;
	int		 delete;	/* 0 keep (default), 1 delete */
	int		 all;		/* fetch what was fetched before too */
	int		 mark_seen_now;	/* record all as fetched, fetch none */
	int		 idle;
	char		*state;		/* state file path */
	int		 timeout;	/* seconds, per read */
	int		 batch;		/* messages per durable batch */
};

/* What the command line says; overrides the config for every account. */
struct options {
	const char	*config;
	int		 check;		/* -n */
	int		 verbose;
	long		 daemon;	/* -d SECONDS, 0 one shot */
	int		 progress;	/* on a terminal */
	const char	*runas;		/* -u USER when started as root */
	/* per-account overrides; NULL / -1 when not given */
	const char	*url;
	int		 tls;		/* -1, or enum fetch_tls */
	const char	*cafile;
	int		 insecure;
	int		 allow_plaintext;
	const char	*password_file;
	const char	*maildir;
	const char	*mda;
	int		 delete;
	int		 all;
	int		 mark_seen_now;
	int		 idle;
	const char	*folders[64];
	size_t		 nfolders;
	const char	*state;
	long		 timeout;
	long		 batch;
	char		**names;	/* accounts chosen by name */
	int		 nnames;
};

/* account.c */
/* Parses imap[s]://user[:pass]@host[:port][/FOLDER] and pop3[s]://...
 * into a (mostly empty) account. 0, or -1 with err. */
int	url_parse(const char *url, struct account *, char *err, size_t errlen);
/* Builds the list of accounts from -c and/or the URL, with the options
 * applied. 0 with the accounts and their count, or -1 with err. */
int	accounts_load(const struct options *, struct account ***accts_r,
	    size_t *n_r, long *interval_r, char *err, size_t errlen);
void	accounts_free(struct account **, size_t);
/* Splits an MDA command into argv (quoting rules in fetch.1). */
int	mda_split(const char *cmd, char ***argv_r, char *err, size_t errlen);

/* resp.c: pure parsers of server responses (fuzzed). */
enum imap_rtype { IMAP_TAGGED, IMAP_UNTAGGED, IMAP_CONT };
enum imap_status { ST_NONE, ST_OK, ST_NO, ST_BAD, ST_PREAUTH, ST_BYE };
struct imap_resp {
	enum imap_rtype	 type;
	char		 tag[32];
	enum imap_status status;	/* OK/NO/BAD/PREAUTH/BYE, or ST_NONE */
	unsigned long	 num;		/* "* N WORD" */
	char		 word[32];	/* EXISTS, FETCH, CAPABILITY, ... */
	char		 code[32];	/* response code word, e.g. UIDVALIDITY */
	const char	*code_arg;	/* after the code word, up to ']' */
	size_t		 code_arglen;
	const char	*text;		/* the rest of the line */
};
/* Parses one response line (without CRLF). 0, or -1 when malformed. */
int	imap_resp_parse(const char *line, struct imap_resp *);

/* A FETCH response, parsed across the literals it carries. */
struct imap_fetch {
	unsigned long	 seq;
	unsigned long	 uid;		/* 0 until seen */
	unsigned long long size;	/* RFC822.SIZE, or 0 */
	int		 depth;		/* paren depth; 0 when complete */
	int		 want;		/* 0 name, 1 value */
	char		 name[64];	/* attribute being read */
	unsigned long long literal;	/* size of the literal that follows */
	int		 literal_body;	/* the literal is the message */
	int		 body_nil;	/* BODY[] NIL */
	const char	*qbody;		/* BODY[] as a quoted string (escaped) */
	size_t		 qbodylen;
	int		 has_body;	/* a body was announced */
};
/*
 * Starts on the text after "* N FETCH ". Returns 1 when a literal of
 * f->literal bytes follows the line, 0 when the response is complete,
 * -1 when malformed.
 */
int	imap_fetch_begin(struct imap_fetch *, unsigned long seq, const char *rest);
/* Goes on with the line read after a literal; same returns. */
int	imap_fetch_continue(struct imap_fetch *, const char *line);
/* 1 when the space-separated capability list caps has cap. */
int	imap_capa_has(const char *caps, const char *cap);

/* POP3: 1 for +OK, 0 for -ERR, -1 malformed. */
int	pop3_status(const char *line);
/* "N UIDL": 0 with *num and the uidl (pointer into line), or -1. */
int	pop3_uidl_line(const char *line, unsigned long *num, const char **uidl,
	    size_t *uidllen);
/* "N OCTETS": 0, or -1. */
int	pop3_list_line(const char *line, unsigned long *num,
	    unsigned long long *octets);

/* uidset in state.c: sorted, disjoint ranges of 32-bit UIDs. */
struct range { unsigned long lo, hi; };
struct uidset {
	struct range	*r;
	size_t		 n, cap;
};
int	uidset_add(struct uidset *, unsigned long lo, unsigned long hi);
int	uidset_has(const struct uidset *, unsigned long);
int	uidset_parse(struct uidset *, const char *);
/* Writes "1:5,7" into out (a buf); 0 or -1. */
struct buf;
int	uidset_format(const struct uidset *, struct buf *);
void	uidset_free(struct uidset *);
/* The lowest UID >= 1 not in the set. */
unsigned long uidset_first_missing(const struct uidset *);

/* The state of one account. */
struct fstate_folder {
	char		*name;
	unsigned long	 uidvalidity;
	struct uidset	 done;
};
struct fstate_pending {
	char		*folder;	/* NULL for POP3 */
	unsigned long	 uid;
	char		*uidl;		/* POP3 */
	char		*base;		/* Maildir unique name */
};
struct fstate {
	char		*path;
	int		 lockfd;
	struct fstate_folder *folders;
	size_t		 nfolders;
	char		**uidls;	/* POP3, sorted */
	size_t		 nuidls, capuidls;
	struct fstate_pending *pending;
	size_t		 npending, cappending;
};
/* Locks (non-blocking unless wait) and loads path; a missing file is an
 * empty state. 1 loaded, 0 locked by another process, -1 with err. */
int	fstate_open(struct fstate *, const char *path, int wait, char *err,
	    size_t errlen);
/* Replaces the file atomically (temp, fsync, rename, fsync dir). */
int	fstate_save(struct fstate *, char *err, size_t errlen);
/* The two halves, for a caller that syncs otherwise (deliver.c): writes
 * PATH.tmp (fsync'd when sync), and renames it over PATH (the directory
 * fsync'd when sync). 0 or -1 with err. */
int	fstate_write_temp(struct fstate *, int sync, char *err, size_t errlen);
int	fstate_install(struct fstate *, int sync, char *err, size_t errlen);
void	fstate_close(struct fstate *);
struct fstate_folder *fstate_folder(struct fstate *, const char *name, int create);
int	fstate_uidl_has(const struct fstate *, const char *uidl);
int	fstate_uidl_add(struct fstate *, const char *uidl);
/* Keeps only the UIDLs for which keep(uidl, arg) is true. */
void	fstate_uidl_prune(struct fstate *, int (*keep)(const char *, void *),
	    void *);
int	fstate_pending_add(struct fstate *, const char *folder, unsigned long uid,
	    const char *uidl, const char *base);
void	fstate_pending_clear(struct fstate *);
/* Resolves pending entries left by a crash against the Maildir: found ones
 * become done, the others are dropped. Returns how many were found. */
int	fstate_recover(struct fstate *, const char *maildir, char *err,
	    size_t errlen);

/* deliver.c */
struct deliver;
struct deliver *deliver_new(const struct account *, struct fstate *, int batch);
void	deliver_free(struct deliver *);
/* Starts a message: 0, or -1 with err (then the poll stops: local trouble). */
int	deliver_begin(struct deliver *, char *err, size_t errlen);
int	deliver_write(struct deliver *, const void *, size_t, char *err,
	    size_t errlen);
/*
 * Ends a complete message (folder/uid for IMAP, uidl for POP3). In
 * Maildir mode it joins the batch; with an MDA it is delivered now.
 * Returns 0 queued or delivered, 1 left on the server for later (MDA
 * said 75), 2 failed for good (reported, poll goes on), -1 local
 * trouble (stop).
 */
int	deliver_end(struct deliver *, const char *folder, unsigned long uid,
	    const char *uidl, char *err, size_t errlen);
/* Drops the message being written (truncated, or aborted). */
void	deliver_abort(struct deliver *);
/* 1 when the batch is full and deliver_flush should run. */
int	deliver_batch_full(const struct deliver *);
/*
 * Makes the batch durable: intents in the state, commit each message,
 * done in the state (see deliver.c). 0 or -1 with err.
 */
int	deliver_flush(struct deliver *, char *err, size_t errlen);
/* Messages delivered since deliver_new, and bytes. */
unsigned long deliver_count(const struct deliver *);
unsigned long long deliver_bytes(const struct deliver *);
/* Temporary MDA failures and permanent ones since deliver_new. */
unsigned long deliver_tempfails(const struct deliver *);
unsigned long deliver_permfails(const struct deliver *);
/* The messages delivered durably and not yet taken (UIDs, or POP3 message
 * numbers), for --delete: the array stays the deliver's, valid until the
 * next delivery. */
size_t	deliver_take_done(struct deliver *, unsigned long **uids_r);

/* net.c: connection, TLS, trace, small helpers. */
struct conn {
	struct io	*io;
	int		 fd;
	struct tls_ctx	*tls;
	const struct account *acct;
	int		 timeout_ms;
	int		 trace;
	char		 line[1 << 20];	/* last line read */
};
/* Connects (and TLS for implicit TLS). 0, or -1 with err. */
int	conn_open(struct conn *, const struct account *, int trace, char *err,
	    size_t errlen);
int	conn_starttls(struct conn *, char *err, size_t errlen);
void	conn_close(struct conn *);
/* Reads a line into c->line (trace shows it). Length, or -1 with err. */
long	conn_getline(struct conn *, char *err, size_t errlen);
/* Sends a line (CRLF added); secret: traced masked from the offset. */
int	conn_send(struct conn *, size_t secret_from, char *err, size_t errlen,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
int	conn_flush(struct conn *, char *err, size_t errlen);

/* The job of one account, as the run loop sees it. */
struct run {
	const struct options *opt;
	volatile sig_atomic_t *stop;	/* SIGTERM: finish the message, stop */
	volatile sig_atomic_t *reload;	/* SIGHUP: re-read the config */
	int		 idle_wait;	/* IMAP IDLE after the poll (seconds) */
	int		 idle_woken;	/* IDLE saw new mail */
	unsigned long	 fetched;
	/* progress line on a terminal */
	const char	*name;
	double		 t0, tlast;
	int		 shown;
};
/* imap.c / pop3.c: one poll of an account. 0 ok, 75 temporary trouble
 * (some messages left for later), 1 failed (message printed). */
int	imap_poll(const struct account *, struct fstate *, struct run *);
int	pop3_poll(const struct account *, struct fstate *, struct run *);

/* daemon.c: the run loop (one shot or daemon) and the progress line. */
int	run_accounts(struct options *, struct account **, size_t, long interval);
void	progress_update(struct run *, unsigned long n, unsigned long long bytes);
void	progress_end(struct run *);

#endif
