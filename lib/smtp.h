/*
 * smtp -- what the SMTP/LMTP server and the SMTP client share: reply
 * formatting and parsing, MAIL/RCPT path parsing and validation, the
 * exit status -> SMTP reply table (RFC 3463 enhanced codes), the DATA
 * dot-stuffing state machine, and the server session state machine.
 *
 * The session is library code driven through a connection object: the
 * caller reads lines from the network (or a unit test feeds strings) and
 * calls smtp_session_line(); replies accumulate in s->out, which the
 * caller writes and flushes when its input buffer is empty (PIPELINING).
 * Everything that needs the outside world (recipient policy, password
 * checks, the queue) goes through struct smtp_hooks.
 */
#ifndef SMTP_H
#define SMTP_H

#include <stddef.h>

#include "buf.h"

#define SMTP_LINE_MAX	1000	/* a command or text line with its CRLF */
#define SMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3 */
#define SMTP_LOCAL_MAX	64
#define SMTP_DOMAIN_MAX	255

/* ---- replies ---- */

/* Appends "CODE ESC TEXT\r\n" to out (esc may be NULL). 0 or -1. */
int	smtp_reply(struct buf *out, int code, const char *esc, const char *fmt, ...)
	    __attribute__((format(printf, 4, 5)));
/*
 * Parses one reply line (without CRLF): "250-text", "250 text" or "250".
 * Sets *code_r, *last_r (0 for "250-"), *text_r (points into line). 0, or
 * -1 when the line is not a reply (bad code, bad separator, control
 * characters other than tab).
 */
int	smtp_reply_parse(const char *line, size_t len, int *code_r, int *last_r,
	    const char **text_r);

/* ---- addresses ---- */

#define SMTP_PATH_NULL_OK	0x01	/* "<>" accepted (MAIL FROM) */
#define SMTP_PATH_UTF8		0x02	/* UTF-8 allowed (SMTPUTF8 was given) */
#define SMTP_PATH_POSTMASTER	0x04	/* bare "<postmaster>" accepted (RCPT) */
/*
 * Parses the argument of "MAIL FROM:" or "RCPT TO:" (the text after the
 * colon): "<path> [params]". A source route is dropped (RFC 5321 4.1.2).
 * Copies the address (without <>; "" for the null path) into addr
 * (SMTP_PATH_MAX + 1 bytes) and sets *params_r to the parameter text
 * ("" when none). 0, or -1 with a reason in err (the caller answers 501
 * or 553).
 */
int	smtp_parse_path(const char *arg, int flags, char *addr, size_t addrlen,
	    const char **params_r, char *err, size_t errlen);
/* 1 when addr is local@domain (or postmaster) with a valid syntax. */
int	smtp_addr_ok(const char *addr, int flags);
/*
 * Splits addr at its last '@' into user and domain (domain lowercased;
 * "" when there is none). 0, or -1 when a part does not fit.
 */
int	smtp_addr_split(const char *addr, char *user, size_t userlen, char *domain,
	    size_t domainlen);
/* 1 when s is a syntactically valid domain name or address literal. */
int	smtp_domain_ok(const char *s, int flags);

/* ---- delivery status -> reply ---- */

struct smtp_status {
	int		 code;		/* 250, 451, 550... */
	const char	*esc;		/* RFC 3463: "2.0.0", "4.3.0"... */
	const char	*text;
};
/*
 * The one table from a delivery agent's exit status (sysexits, or
 * 128+signal, or -1) to an SMTP reply. Anything unknown is temporary.
 */
const struct smtp_status *smtp_exit_status(int status);
/* 1 when an SMTP reply code is permanent (5xx). */
int	smtp_code_permanent(int code);

/* ---- DATA ---- */

/*
 * The DATA state machine, line by line as the transport reads them (line
 * without its end; crlf 1 when it ended in CRLF, 0 for a bare LF). End
 * of data is only "." on a line that ended in CRLF, right after a line
 * that ended in CRLF (CRLF.CRLF). Other lines are unstuffed (a leading
 * '.' removed) and appended to out with a LF end; a bare LF is taken as a
 * line end ("normalize", as Postfix does) but can never end the data. A
 * bare CR inside a line marks the message bad (flag SMTP_DATA_BARE_CR):
 * it could be turned into a line end by another program.
 */
struct smtp_data {
	int		 prev_crlf;	/* the previous line ended in CRLF */
	int		 flags;
	unsigned long long size;	/* bytes appended (LF ends) */
	unsigned long long max;		/* 0: no limit */
};
#define SMTP_DATA_TOOBIG	0x01	/* over max: nothing more is appended */
#define SMTP_DATA_BARE_CR	0x02
#define SMTP_DATA_LONGLINE	0x04
#define SMTP_DATA_BARE_LF	0x08	/* seen (normalized; informational) */
#define SMTP_DATA_ERROR		0x10	/* out could not grow */

void	smtp_data_init(struct smtp_data *, unsigned long long max);
/* 1 at the end of data, 0 otherwise (content appended to out). */
int	smtp_data_line(struct smtp_data *, const char *line, size_t len, int crlf,
	    struct buf *out);
/* The caller tells it a line was longer than its buffer (and dropped). */
void	smtp_data_longline(struct smtp_data *);
/*
 * Writes msg (LF line ends) as SMTP DATA: CRLF ends, dot-stuffed, bare CR
 * dropped, ending with ".\r\n" (for clients; out grows).
 */
int	smtp_data_stuff(struct buf *out, const char *msg, size_t len);

/* ---- the server session ---- */

struct smtp_session;

struct smtp_hooks {
	/*
	 * A recipient (already syntax-checked). Returns 1 accepted, 0
	 * refused (reply set by the hook in out through smtp_reply), -1
	 * temporary error (idem).
	 */
	int	(*rcpt)(void *arg, struct smtp_session *, const char *addr,
		    struct buf *out);
	/* The sender at MAIL (may be ""); same return as rcpt; may be NULL. */
	int	(*mail)(void *arg, struct smtp_session *, const char *addr,
		    struct buf *out);
	/* user/password: 1 good, 0 refused, -1 error. May be NULL (no AUTH). */
	int	(*auth)(void *arg, struct smtp_session *, const char *user,
		    const char *password);
	/* Start of message data. 0, or -1 with a reply in out (451). */
	int	(*data_open)(void *arg, struct smtp_session *, struct buf *out);
	/* Message bytes (LF line ends). 0 or -1 (remembered; 451 at the end). */
	int	(*data_write)(void *arg, struct smtp_session *, const void *,
		    size_t);
	/*
	 * End of data, message good: make it durable. 0 accepted (the hook
	 * puts the id, up to 64 bytes, in id), or -1 with a reply in out.
	 */
	int	(*data_commit)(void *arg, struct smtp_session *, char *id,
		    size_t idlen, struct buf *out);
	/* Drop the message being received (error, RSET, session end). */
	void	(*data_abort)(void *arg, struct smtp_session *);
	/* One line per event for the log (may be NULL). */
	void	(*event)(void *arg, struct smtp_session *, const char *what);
	void	*arg;
};

struct smtp_params {
	const char		*hostname;	/* in the greeting and EHLO */
	unsigned long long	 max_size;	/* message size; 0 no limit */
	int			 max_rcpt;	/* per transaction; 0 default 100 */
	int			 max_errors;	/* bad commands before 421; 0: 20 */
	int			 lmtp;		/* LHLO, one reply per recipient */
	int			 tls_offer;	/* STARTTLS can be offered */
	int			 tls_required;	/* no MAIL/AUTH before TLS */
	int			 auth_offer;	/* AUTH configured */
	int			 auth_required;	/* no MAIL before AUTH */
	int			 auth_plaintext;/* AUTH allowed without TLS */
};

/* What the caller must do after a line. */
enum smtp_action {
	SMTP_CONTINUE,		/* write s->out when input is drained */
	SMTP_STARTTLS,		/* flush out, discard input, handshake, call
				   smtp_session_tls() */
	SMTP_CLOSE		/* flush out and close */
};

enum smtp_state {
	SMTP_S_GREET,		/* before EHLO/HELO/LHLO */
	SMTP_S_READY,		/* after EHLO, no transaction */
	SMTP_S_MAIL,		/* after MAIL */
	SMTP_S_RCPT,		/* at least one RCPT accepted */
	SMTP_S_DATA,		/* receiving data */
	SMTP_S_AUTH_PLAIN,	/* waiting for the PLAIN response */
	SMTP_S_AUTH_USER,	/* LOGIN: waiting for the user */
	SMTP_S_AUTH_PASS	/* LOGIN: waiting for the password */
};

struct smtp_session {
	struct smtp_params	 p;
	struct smtp_hooks	 h;
	struct buf		 out;		/* replies to send */
	enum smtp_state		 state;
	int			 tls;		/* TLS is active */
	int			 esmtp;		/* EHLO/LHLO (not HELO) */
	char			 helo[256];
	char			 user[256];	/* authenticated user, or "" */
	char			 sender[SMTP_PATH_MAX + 1];
	int			 smtputf8;	/* MAIL ... SMTPUTF8 */
	int			 body8bit;	/* BODY=8BITMIME */
	char		       (*rcpts)[SMTP_PATH_MAX + 1];
	int			 nrcpt;
	int			 errors;	/* bad commands so far */
	int			 auth_failures;
	int			 delay_ms;	/* the caller waits before
						   writing out (failed AUTH) */
	struct smtp_data	 data;
	struct buf		 body;		/* data chunk handed to the hook */
	int			 data_failed;	/* a hook failed during DATA */
	char			 login_user[256];
	char			 msgid[65];	/* last accepted message */
	unsigned long long	 msgsize;
	int			 nmsg;		/* messages accepted */
};

/*
 * Sets up a session and puts the greeting in s->out. params and hooks
 * are copied (their strings must outlive the session). 0 or -1 (ENOMEM).
 */
int	smtp_session_init(struct smtp_session *, const struct smtp_params *,
	    const struct smtp_hooks *);
/* Frees (aborting a message in progress) and wipes the secrets. */
void	smtp_session_free(struct smtp_session *);
/*
 * One input line without its line end; crlf as for smtp_data_line.
 * toolong: the line was longer than the caller's buffer and was dropped
 * (line is then ignored; crlf still says how it ended, as io_getline
 * reports it). Returns what to do next.
 */
enum smtp_action smtp_session_line(struct smtp_session *, const char *line,
	    size_t len, int crlf, int toolong);
/* The TLS handshake after SMTP_STARTTLS succeeded: the session restarts. */
void	smtp_session_tls(struct smtp_session *);
/* Reply for a timeout or a shutdown ("421 4.4.2 ..."), put in out. */
void	smtp_session_timeout(struct smtp_session *);
/* 1 when the session is inside DATA (the caller may read bigger lines). */
int	smtp_session_in_data(const struct smtp_session *);

#endif
