/*
 * smtpd-lite internals: the configuration model, rules, the queue and
 * the processes that share them.
 */
#ifndef SMTPD_H
#define SMTPD_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "smtp.h"

struct conf;
struct smtpc_url;
struct table;
struct tls_ctx;

#define ID_LEN		24	/* hex characters of a queue id */
#define QUEUE_HDR_MAX	(1024 * 1024)
#define MAX_SNI		16
#define MAX_ARGV	64

enum tls_mode { TLS_NONE, TLS_STARTTLS, TLS_REQUIRE, TLS_IMPLICIT };

struct listener {
	char			*name;
	char			*address;	/* numeric; NULL: 0.0.0.0 */
	char			*port;
	enum tls_mode		 tls;
	struct tls_ctx		*tlsctx;
	struct table		*auth;		/* passwd table or NULL */
	struct table		*senders;	/* user -> allowed senders */
	int			 auth_required;
	int			 auth_plaintext;
	char			*tag;		/* or NULL */
	int			 lmtp;
	char			*hostname;	/* or NULL: the global one */
	int			 fd;		/* listening socket */
	int			 line;
};

enum action_kind { ACT_MDA, ACT_MAILDIR, ACT_LMTP, ACT_REJECT, ACT_RELAY };
enum from_kind { FROM_ANY, FROM_LOCAL, FROM_AUTH, FROM_TABLE };

struct rule {
	char			*name;
	int			 line;
	/* match */
	char			*tag;
	enum from_kind		 from;
	struct table		*from_table;	/* networks */
	struct table		*sender;	/* addresses, @domain, domain */
	struct table		*rcpt_domain;
	struct table		*rcpt;		/* addresses or @domain */
	/* recipient expansion and checks */
	struct table		*virtual;	/* addr|user|@domain|@ -> users */
	struct table		*alias;		/* user -> users/addresses */
	struct table		*users;		/* list of valid users */
	struct table		*userbase;	/* user -> uid:gid:home */
	/* action */
	enum action_kind	 action;
	char			*argv[MAX_ARGV];/* mda command, split at load */
	int			 argc;
	char			*maildir;	/* template */
	char			*lmtp;		/* host:port or /socket */
	/* relay: a smarthost (NULL: the recipients' MX hosts) */
	struct smtpc_url	*smarthost;
	struct table		*secrets;	/* label -> user:password */
	char			*cafile;	/* for verified TLS */
	int			 relay_tls;	/* enum smtpc_tls for MX hosts */
	int			 mx_port;	/* 25; other ports for tests */
	int			 batch;		/* courriel's lda: -B batches */
	int			 fidx;		/* argv index of -f's value */
	int			 setid;
	uid_t			 uid;
	gid_t			 gid;
	char			*runas;
};

struct config {
	struct conf		*conf;
	char			*path;
	char			*hostname;
	char			*user;		/* sessions run as this user */
	uid_t			 uid;
	gid_t			 gid;
	int			 dropping;	/* started as root */
	char			*queue;		/* queue directory */
	char			*lda;		/* for maildir actions */
	char			*resolver;	/* DNS forwarder, or NULL */
	char			*control;	/* mailctl socket ("": none) */
	char			*submit;	/* sendmail socket ("": none) */
	int			 control_fd;	/* listening, for the runner */
	unsigned long long	 max_size;
	long			 max_rcpt;
	long			 max_sessions;
	long			 max_per_addr;
	long			 timeout;	/* per command, s */
	long			 data_timeout;
	long			 max_deliveries;/* in parallel */
	long			 session_reuse;	/* connections per session process */
	long			 retry_min;	/* s */
	long			 retry_max;
	long			 lifetime;
	long			 mda_timeout;
	struct listener		*listeners;
	size_t			 nlisteners;
	struct rule		*rules;
	size_t			 nrules;
};

/* config.c */
int	config_load(struct config *, const char *path, char *err, size_t errlen);
int	config_tls(struct config *, char *err, size_t errlen);
/* Re-reads changed tables; a number that moves when any of them did. */
unsigned long config_refresh_tables(struct config *);
void	config_free(struct config *);
/* wipe.c: forget the secrets a forked process does not need. */
void	config_wipe_auth(struct config *);	/* listeners' passwd tables */
void	config_wipe_secrets(struct config *);	/* those and relay secrets */

/* The origin of a message, for the rules. */
struct origin {
	const char		*tag;		/* listener tag or NULL */
	int			 local;		/* loopback, unix, or generated */
	struct sockaddr_storage	 addr;
	int			 has_addr;
	const char		*authuser;	/* "" or NULL when not */
};

/* One resolved recipient: what to deliver where. */
struct dest {
	char	 rcpt[SMTP_PATH_MAX + 1];	/* the address to deliver to */
	char	 orig[SMTP_PATH_MAX + 1];	/* as the client gave it */
	char	 user[SMTP_PATH_MAX + 1];	/* local user (after virtual) */
	char	 rule[128];
};

/* rules.c */
/*
 * Resolves addr for origin and sender: appends the destinations to
 * *dests (grown, at most max in all) and returns 1; or 0 refused with an
 * SMTP reply in out; or -1 temporary error (reply in out).
 */
int	rules_resolve(const struct config *, const struct origin *,
	    const char *sender, const char *addr, struct dest **dests,
	    size_t *ndests, size_t max, struct buf *out);
const struct rule *rules_find(const struct config *, const char *name);
/* Expands %{...} in tmpl for d: into out. 0, or -1 (too long, unknown). */
int	rules_expand(const char *tmpl, const struct dest *d, const char *sender,
	    char *out, size_t outlen);

/* queue.c: the on-disk envelope. */
struct envelope {
	char		 id[ID_LEN + 1];
	char		 sender[SMTP_PATH_MAX + 1];
	long long	 time;
	struct dest	*dests;
	size_t		 ndests;
	unsigned char	*done;		/* per dest: 1 delivered or bounced */
	long long	 body_off;	/* offset of the message in the file */
	long long	 size;
};
void	queue_new_id(char *id);
int	queue_id_ok(const char *id);
/* Writes the envelope header to fd. 0 or -1 (errno). */
int	queue_write_header(int fd, const char *id, const char *sender,
	    long long t, const struct dest *, size_t, const char *helo,
	    const char *client, const char *authuser);
/* Reads msg file path (+ its .done). 0, or -1 with err (bad file). */
int	queue_read(const char *dir, const char *id, struct envelope *,
	    char *err, size_t errlen);
void	queue_envelope_free(struct envelope *);
/*
 * Marks dest i done in ID.done (appended, fdatasync'd); the caller then
 * fsyncs the directory (fsync_dir) before it counts on the mark.
 */
int	queue_mark_done(const char *dir, const char *id, size_t i);
/* Unlinks the message and its .done; the caller fsyncs the directory. */
int	queue_unlink(const char *dir, const char *id);
/* Removes the message and its .done; fsyncs the directory. */
int	queue_remove(const char *dir, const char *id);
int	fsync_dir(const char *dir);
/* Writes a whole new message (bounces) into dir durably. 0 or -1. */
int	queue_inject(const char *dir, const char *sender, const struct dest *,
	    size_t, const char *body, size_t len, char *id_r);

/* session.c */
struct session_ctx {
	const struct config	*cf;
	const struct listener	*l;
	int			 fd;		/* client socket or -1 (inetd) */
	int			 rfd, wfd;
	int			 ctl;		/* to the master */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	char			 client[128];	/* printable address */
	int			 local;
	int			 auth;		/* the listener checks AUTH (the
						   master does: l->auth is wiped) */
};
/*
 * Serves one connection and closes it: 0 when the process may serve
 * another (see session_reuse), else non-zero (its state with the master
 * is unsure: an answer it gave up waiting for may still come).
 */
int	session_run(struct session_ctx *);

/* master.c */
int	master_run(struct config *, int inetd);

/* Frames between a session and the master (fixed, checked). */
struct ctl_frame {
	unsigned int	 type;
	char		 id[ID_LEN + 1];
};
#define CTL_COMMIT	1
#define CTL_OK		2
#define CTL_FAIL	3
/*
 * AUTH: the session sends a struct ctl_auth, the master answers with a
 * struct ctl_frame of type CTL_AUTH_OK, _FAIL (wrong user or password)
 * or _TEMP (454). One in flight per session. The socketpair is
 * SOCK_SEQPACKET: a frame is one message, its length checked exactly.
 */
#define CTL_AUTH	4
#define CTL_AUTH_OK	5
#define CTL_AUTH_FAIL	6
#define CTL_AUTH_TEMP	7
#define CTL_AUTH_USER	256		/* smtp_session's user[] */
#define CTL_AUTH_PASS	512		/* PASSWD_MAXLEN + 1 */
struct ctl_auth {
	unsigned int	 type;
	char		 user[CTL_AUTH_USER];	/* NUL-terminated, not empty */
	char		 pass[CTL_AUTH_PASS];	/* NUL-terminated */
};
/*
 * A session process serves up to session_reuse connections, one after
 * the other: when one ends it sends a ctl_frame CTL_IDLE, and the master
 * hands it the next with a struct ctl_conn and the socket (SCM_RIGHTS),
 * or ends it (SIGTERM) when it has enough idle ones, the tables changed
 * since its fork, or it was idle too long.
 */
#define CTL_IDLE	8
#define CTL_CONN	9
struct ctl_conn {
	unsigned int		 type;
	int			 listener;	/* index; -1: the submit socket */
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	int			 local;
	int			 auth;
	int			 verbose;
	char			 client[128];
};

/* runner.c */
void	runner_run(struct config *, int notify_fd) __attribute__((noreturn));

/*
 * deliver.c: starts one delivery; returns the pid, or -1 with err. With
 * retry set, an earlier attempt may have completed (a restart, a killed
 * or failed attempt): lda is told to look for it before delivering again
 * (DELIVERY_ID, DELIVERY_RETRY).
 */
pid_t	deliver_start(const struct config *, const struct envelope *, size_t i,
	    const char *msgpath, int retry, int *errfd_r, char *err,
	    size_t errlen);
/*
 * Relays items[0..n) (one rule, one route; the items of one message
 * together, items[0]'s file at msgpath) over one connection, a
 * transaction per message. With n > 1 the child writes "K EXITCODE TEXT"
 * lines to the error pipe, one per item, and exits 0.
 */
#define RELAY_GROUP_MAX	100
struct relay_item {
	const struct envelope	*e;
	size_t			 i;	/* dest index in e */
};
/*
 * Delivers items[0..n) (one batchable rule, one recipient, any messages)
 * through one lda -B; retry[k] as for deliver_start. The child writes
 * "K EXITCODE TEXT" lines to the error pipe as a relay group does.
 */
pid_t	deliver_start_batch(const struct config *, const struct relay_item *,
	    size_t n, const unsigned char *retry, int *errfd_r, char *err,
	    size_t errlen);
pid_t	deliver_start_relay(const struct config *, const struct relay_item *,
	    size_t n, const char *msgpath, int *errfd_r, char *err,
	    size_t errlen);

#endif
