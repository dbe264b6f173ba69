/*
 * smtpc -- the SMTP client that relays mail to MX hosts and smarthosts
 * (RFC 5321), with STARTTLS (RFC 3207), implicit TLS (RFC 8314), AUTH
 * PLAIN and LOGIN (RFC 4954, 4616), PIPELINING (RFC 2920), SIZE (RFC
 * 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531). Blocking, one connection per object,
 * over lib/io and lib/tls; every read has a timeout and every reply is
 * bounded (line length, number of lines, code syntax: OpenSMTPD's
 * CVE-2020-8794 came from a lax reply parser).
 *
 * Outcomes are classified once, here: SMTPC_OK (2xx), SMTPC_TEMP (4xx,
 * a connection or TLS failure, a timeout: retry later), SMTPC_PERM (5xx:
 * bounce). Functions that talk return 0, or -1 (temporary) / -2
 * (permanent) with "host: what happened" in err; the server's own words
 * are kept (bounded, control characters replaced) for bounces and for
 * `mailctl show queue`.
 */
#ifndef SMTPC_H
#define SMTPC_H

#include <stddef.h>
#include <sys/types.h>

struct dns;
struct table;
struct tls_ctx;

#define SMTPC_OK	0
#define SMTPC_TEMP	(-1)
#define SMTPC_PERM	(-2)

#define SMTPC_LINE_MAX	1000	/* one reply line, CRLF included (4.5.3.1.5) */
#define SMTPC_LINES_MAX	64	/* lines in one multi-line reply */
#define SMTPC_TEXT_MAX	512	/* text kept from a reply */

/* A reply: its code and text ("550 5.1.1 <x@y>: no such user"). */
struct smtpc_reply {
	int	 code;			/* 200..599; 0 before the first line */
	size_t	 nlines;
	int	 done;			/* the last line was seen */
	char	 text[SMTPC_TEXT_MAX];	/* lines joined by " / ", sanitized */
};

enum smtpc_tls {
	SMTPC_TLS_NO,		/* never (tests, broken peers) */
	SMTPC_TLS_MAYBE,	/* STARTTLS when offered, unverified (MX) */
	SMTPC_TLS_STARTTLS,	/* STARTTLS required, verified (smtp+tls://) */
	SMTPC_TLS_IMPLICIT	/* TLS from the first byte (smtps://) */
};

/* What the server's EHLO reply offered. */
struct smtpc_caps {
	int		 esmtp;		/* EHLO worked (else HELO) */
	int		 starttls;
	int		 pipelining;
	int		 eightbit;	/* 8BITMIME */
	int		 smtputf8;
	int		 enhanced;	/* ENHANCEDSTATUSCODES */
	int		 auth_plain;
	int		 auth_login;
	int		 size;		/* SIZE was offered */
	unsigned long long size_max;	/* 0: no limit given */
};

struct smtpc_opts {
	const char	*helo;		/* our name in EHLO/HELO (required) */
	enum smtpc_tls	 tls;
	/*
	 * SMTPC_TLS_STARTTLS and IMPLICIT verify the certificate and the
	 * host name unless noverify is 1 (callers warn loudly). MAYBE never
	 * verifies: an MX host's name proves nothing without DANE.
	 */
	int		 noverify;
	const char	*cafile;	/* NULL: the system's store */
	/*
	 * A client context to share between connections (its verify mode
	 * must be what the above says); NULL makes one per connection.
	 */
	struct tls_ctx	*tls_ctx;
	/* credentials for AUTH; NULL user: no AUTH */
	const char	*auth_user;
	const char	*auth_pass;
	/* allow AUTH without TLS (tests against a plaintext peer) */
	int		 auth_plaintext;
	int		 connect_timeout_ms;	/* 0: 30 s */
	int		 timeout_ms;		/* each reply; 0: 300 s (4.5.3.2) */
	int		 data_timeout_ms;	/* reply to the final dot; 0: 600 s */
	/*
	 * Optional protocol trace (mailctl trace smtp): called with 'C' for
	 * each line sent (AUTH payloads masked) and 'S' for each line read.
	 */
	void		(*trace)(void *arg, int dir, const char *line);
	void		*trace_arg;
};

/* The outcome for one recipient. */
struct smtpc_result {
	int	 status;		/* SMTPC_OK, SMTPC_TEMP, SMTPC_PERM */
	int	 code;			/* the reply code, 0 without a reply */
	char	 text[SMTPC_TEXT_MAX];	/* "host said: 550 5.1.1 ..." or why */
};

struct smtpc;

/*
 * Connects to addr (a numeric IPv4 or IPv6 address) at port within the
 * connect timeout, reads the greeting, EHLO (HELO when EHLO gets a 5xx),
 * then STARTTLS as opts->tls says (anything read before the handshake is
 * discarded; EHLO again after it; SNI and verification use host), then
 * AUTH when credentials are given. host names the peer in messages and
 * in TLS; it may be addr itself. opts is copied, but the strings and the
 * context it points to must outlive the connection.
 * Returns 0 and *c_r, or SMTPC_TEMP with err (connection refused or timed
 * out, a 4xx greeting, TLS required but not offered or failed,
 * certificate not trusted, AUTH not offered or refused: all of these are
 * about this host or our configuration, not about the message) or
 * SMTPC_PERM with err (a 5xx greeting or EHLO/HELO refusal: the host says
 * it takes no mail from us; try the next MX, bounce after the last).
 * A failed opportunistic STARTTLS (MAYBE) is retried once on a new
 * plaintext connection.
 */
int	smtpc_connect(struct smtpc **c_r, const struct smtpc_opts *,
	    const char *host, const char *addr, int port, char *err, size_t errlen);

/*
 * Reads the message: up to len bytes into buf. Returns the count, 0 at
 * the end, -1 on error (errno).
 */
typedef long (*smtpc_reader)(void *arg, char *buf, size_t len);

/*
 * One transaction: MAIL FROM:<sender> (SIZE=size when offered and size
 * >= 0, BODY=8BITMIME when offered and eightbit, SMTPUTF8 when offered
 * and an address is not ASCII; without it such an address fails with
 * 553, RFC 6531 3.4), RCPT TO for each of
 * rcpts[0..n) (pipelined when offered), then DATA with the message read
 * through reader: LF-terminated lines (CRLF accepted) are sent with CRLF,
 * a lone CR is turned into a line end too, lines starting with '.' are
 * dot-stuffed, so nothing in a message can end the data early (SMTP
 * smuggling). results[i] tells what became of rcpts[i].
 * Returns 0 when the transaction completed, whatever the recipients'
 * outcomes (the connection can carry another one), or SMTPC_TEMP when the
 * connection broke, timed out, or the reader failed; then results with no
 * outcome yet are set to SMTPC_TEMP with err, and the connection must be
 * closed with smtpc_close (smtpc_quit says nothing on it).
 */
int	smtpc_send(struct smtpc *, const char *sender, const char *const *rcpts,
	    size_t n, smtpc_reader reader, void *arg, long long size, int eightbit,
	    struct smtpc_result *results, char *err, size_t errlen);
/* smtpc_send with the message read from fd until its end. */
int	smtpc_send_fd(struct smtpc *, const char *sender, const char *const *rcpts,
	    size_t n, int fd, long long size, int eightbit,
	    struct smtpc_result *results, char *err, size_t errlen);

/* RSET. 0, or SMTPC_TEMP / SMTPC_PERM with err. */
int	smtpc_rset(struct smtpc *, char *err, size_t errlen);
/* QUIT (its reply waited for briefly), then closes and frees. */
void	smtpc_quit(struct smtpc *);
/* Closes and frees without a word (after an error). NULL is fine. */
void	smtpc_close(struct smtpc *);

/* What the server offered (after STARTTLS: the second EHLO's answer). */
const struct smtpc_caps *smtpc_caps(const struct smtpc *);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" without TLS. */
const char *smtpc_tls_info(struct smtpc *, char *buf, size_t len);
/* 1 when the connection is usable for another smtpc_send. */
int	smtpc_usable(const struct smtpc *);

/* --- parsers (no network; unit tests and fuzzers use them) --- */

/*
 * Feeds one reply line (without its line end; line[len] is NUL) to r
 * (zeroed before the first line). Returns 1 when it was the last line of the reply, 0 when
 * more lines follow, -1 when the line is malformed (not three digits in
 * 200..599 then ' ', '-' or the end; a code that differs from the first
 * line's; too many lines). *text_r (may be NULL) points at the line's
 * text after the code, for EHLO keywords.
 */
int	smtpc_reply_line(struct smtpc_reply *r, const char *line, size_t len,
	    const char **text_r);
/* Records one EHLO keyword line ("PIPELINING", "SIZE 1000", "AUTH PLAIN"). */
void	smtpc_caps_line(struct smtpc_caps *, const char *text);
/* The class of a reply code: SMTPC_OK, SMTPC_TEMP or SMTPC_PERM. */
int	smtpc_code_status(int code);

/*
 * Encodes message bytes for DATA: LF or CRLF or a lone CR end a line and
 * become CRLF; a '.' starting a line is doubled. The state carries the
 * position across calls (zeroed at the start; any split of the input
 * gives the same output). Writes at most outlen bytes (it must be >=
 * 2 * inlen) and returns the count. smtpc_data_end then writes the
 * terminator (with a CRLF first when the last line had none) into out
 * (>= 5 bytes) and returns its length.
 */
struct smtpc_dot {
	int	 midline;	/* not at the beginning of a line */
	int	 cr;		/* the previous byte was a CR (line end sent) */
};
size_t	smtpc_dot_encode(struct smtpc_dot *, const char *in, size_t inlen,
	    char *out, size_t outlen);
size_t	smtpc_data_end(struct smtpc_dot *, char *out, size_t outlen);

/* --- smarthosts --- */

struct smtpc_url {
	enum smtpc_tls	 tls;		/* smtp: MAYBE, smtp+tls: STARTTLS,
					   smtps: IMPLICIT */
	char		 host[256];	/* name or address (IPv6 unbracketed) */
	int		 port;		/* default 25, 587 or 465 */
	char		 label[256];	/* the user part, "" if none */
};

/*
 * Parses "smtp://[label@]host[:port]" with schemes smtp, smtp+tls (also
 * smtp+starttls) and smtps; host may be "[IPv6]"; the label may hold '@'
 * (the last '@' ends it) and %XX escapes; a password in the URL is
 * refused. 0, or -1 with err.
 */
int	smtpc_url_parse(const char *url, struct smtpc_url *, char *err,
	    size_t errlen);

/*
 * Credentials for a label. With a table (OpenSMTPD's secrets format:
 * "label user:password"), the label's value split at the first ':'.
 * Without one, user is the label and the password is the value of the
 * environment variable passenv (e.g. "SMTP_PASSWORD"). user and pass are
 * NUL-terminated; the caller wipes pass (explicit_bzero). 0, or -1 with
 * err (no such label, no ':', the variable unset, too long).
 */
int	smtpc_credentials(struct table *secrets, const char *label,
	    const char *passenv, char *user, size_t userlen, char *pass,
	    size_t passlen, char *err, size_t errlen);

/* --- the relay action: one message to one domain --- */

struct smtpc_route {
	/* a smarthost, or NULL for the MX hosts of domain */
	const struct smtpc_url	*smarthost;
	const char		*domain;	/* the recipients' domain */
	int			 port;		/* MX port: 0 means 25 */
};

/*
 * Delivers the message in fd (read from offset to the end, again for
 * each host tried) to rcpts[0..n), all in route->domain or all for the
 * smarthost: resolves the MX hosts (or the smarthost's addresses), then
 * tries each address in order until one takes the transaction. A host
 * that cannot be reached, greets with an error, fails TLS or AUTH, or
 * drops the connection mid-way is skipped for the next one; a reply to
 * RCPT or DATA is final for this run. When opts->helo is one of the MX
 * hosts, only those with a better preference are tried (none left: the
 * mail loops back to us, SMTPC_PERM). With a smarthost, opts->tls is
 * replaced by the URL's. results[i] is always set: SMTPC_OK, SMTPC_TEMP
 * (retry later), SMTPC_PERM (bounce: 5xx, NXDOMAIN, null MX). Returns
 * the number of recipients delivered. Programs that call it link
 * libunbound (through lib/dns).
 */
size_t	smtpc_deliver(struct dns *, const struct smtpc_opts *,
	    const struct smtpc_route *, const char *sender,
	    const char *const *rcpts, size_t n, int fd, off_t offset,
	    long long size, int eightbit, struct smtpc_result *results);

/* One message of a batch. */
struct smtpc_msg {
	const char		*sender;
	const char *const	*rcpts;
	size_t			 n;
	int			 fd;		/* read from offset to the end */
	off_t			 offset;
	long long		 size;		/* for SIZE=; -1 unknown */
	int			 eightbit;
	struct smtpc_result	*results;	/* n entries, always set */
};

/*
 * smtpc_deliver for several messages to the same route (the same domain
 * or smarthost): one lookup, one connection carrying them in turn (a
 * transaction each); when it breaks, what is left goes to the next
 * address. Returns the number of recipients delivered in all.
 */
size_t	smtpc_deliver_batch(struct dns *, const struct smtpc_opts *,
	    const struct smtpc_route *, const struct smtpc_msg *msgs,
	    size_t nmsgs);

#endif
