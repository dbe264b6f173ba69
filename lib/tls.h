/*
 * tls -- every use of OpenSSL is in tls.c. TLS 1.2 minimum, no weak
 * ciphers, verification on by default. Servers choose a certificate by
 * SNI among several (RSA and ECDSA keys both work). Private keys that
 * others can read are refused at load time.
 */
#ifndef TLS_H
#define TLS_H

#include <stddef.h>

struct tls_ctx;
struct tls_conn;

/* A server context with no certificate yet. NULL with err. */
struct tls_ctx *tls_server_new(char *err, size_t errlen);
/*
 * Adds a certificate chain and key (PEM). hostname NULL makes it the
 * default; otherwise it is chosen when SNI names hostname (or a name in
 * the certificate's SAN when hostname is "*"). 0, or -1 with err
 * ("key.pem: readable by others (mode 0644)", "cert.pem: key does not match").
 * keyfile NULL: the key is in certfile (which is then checked like a key).
 * Certificates added under the same name (or with "*", the same SAN
 * names) are served together, so an RSA and an ECDSA one can coexist and
 * OpenSSL picks by what the client supports. Without a NULL-hostname
 * certificate the first one added is the default. Names match exactly
 * (case-insensitive) or as "*.example.org" for one label; the first
 * entry added wins. Call before forking: session tickets then resume in
 * any child.
 */
int	tls_server_add_cert(struct tls_ctx *, const char *hostname,
	    const char *certfile, const char *keyfile, char *err, size_t errlen);
/*
 * A client context: cafile NULL uses the system store; verify 0 skips
 * certificate checks (callers warn loudly). NULL with err.
 */
struct tls_ctx *tls_client_new(const char *cafile, int verify, char *err,
	    size_t errlen);
void	tls_ctx_free(struct tls_ctx *);

/*
 * Handshakes on a connected socket fd (blocking with timeout_ms).
 * Client: servername is sent as SNI and checked against the certificate;
 * an IP literal is checked against the IP SANs and not sent as SNI; a
 * final dot is ignored; NULL checks the chain only. Returns the
 * connection or NULL with err (errno ETIMEDOUT when it timed out). The fd
 * stays the caller's, its flags untouched.
 */
struct tls_conn *tls_accept(struct tls_ctx *, int fd, int timeout_ms, char *err,
	    size_t errlen);
struct tls_conn *tls_connect(struct tls_ctx *, int fd, const char *servername,
	    int timeout_ms, char *err, size_t errlen);
/* >0 bytes, 0 clean EOF, -1 error (errno; EAGAIN when it would block). */
long	tls_read(struct tls_conn *, void *, size_t);
long	tls_write(struct tls_conn *, const void *, size_t);
/* 1 when bytes are decrypted and waiting inside OpenSSL. */
int	tls_pending(struct tls_conn *);
/* Describes the session: "TLSv1.3 TLS_AES_256_GCM_SHA384". */
const char *tls_info(struct tls_conn *, char *buf, size_t len);
/* The SNI name the client sent, or NULL. */
const char *tls_servername(struct tls_conn *);
/* Sends close_notify (best effort) and frees. */
void	tls_close(struct tls_conn *);

/*
 * Additions (helper "tls"). The calls above never block: the fd stays
 * blocking (its flags are not touched) and the library reads and writes
 * it with MSG_DONTWAIT | MSG_NOSIGNAL (poll-guarded read/write on pipes,
 * SIGPIPE blocked around pipe writes), so tls_read and tls_write return
 * -1 EAGAIN instead of blocking, and writes to a closed peer give EPIPE,
 * never SIGPIPE.
 */
/* tls_accept and tls_connect over two fds (inetd mode: 0 and 1). */
struct tls_conn *tls_accept_fds(struct tls_ctx *, int rfd, int wfd,
	    int timeout_ms, char *err, size_t errlen);
struct tls_conn *tls_connect_fds(struct tls_ctx *, int rfd, int wfd,
	    const char *servername, int timeout_ms, char *err, size_t errlen);
/* After EAGAIN: the poll(2) events to wait for (POLLIN or POLLOUT). */
int	tls_want(const struct tls_conn *);
/* Decrypted bytes waiting inside OpenSSL. */
size_t	tls_pending_bytes(const struct tls_conn *);
/* Text of the last fatal error on the connection ("" when none). */
const char *tls_error(const struct tls_conn *);
/* 1 when the handshake resumed an earlier session (ticket or cache). */
int	tls_session_reused(struct tls_conn *);

#endif
