/*
 * io -- buffered line and literal I/O over a socket, a pipe or TLS, with
 * a timeout on every read and length limits on every line. Blocking
 * model: one session per process (smtpd-lite, imapd and fetch fork per
 * connection), poll(2) for the timeouts.
 *
 * Timeouts: io_getline's is a deadline for the whole line; io_read_full,
 * io_read_some and io_flush wait at most timeout_ms for each read or
 * write to progress (a negative timeout waits forever, as in poll(2)). A
 * line cut by a timeout stays buffered for the next call. A peer that went away gives EPIPE, never SIGPIPE (MSG_NOSIGNAL
 * on sockets, SIGPIPE blocked around writes to pipes). At most 32 KiB of
 * output is buffered.
 */
#ifndef IO_H
#define IO_H

#include <stddef.h>
#include <sys/types.h>

struct io;
struct tls_ctx;

/* Wraps fds (rfd == wfd for a socket; 0 and 1 for inetd mode). NULL on ENOMEM. */
struct io *io_new(int rfd, int wfd);
/*
 * Frees (its buffers wiped); closes the fds when close_fds. Closes TLS
 * first. Output still buffered is flushed best-effort (at most 2 s, or
 * the write timeout).
 */
void	io_free(struct io *, int close_fds);

/*
 * Reads one line ending in LF (CRLF or bare LF) into buf, without the
 * line end, NUL-terminated. Returns its length; *crlf_r (may be NULL) is
 * 1 when it ended in CRLF. -1 with errno: ETIMEDOUT, ECONNRESET on EOF,
 * EMSGSIZE when the line is longer than size-1 (the rest of the line is
 * read and discarded, so the session can answer and go on; *crlf_r then
 * says whether the dropped line ended in CRLF).
 */
long	io_getline(struct io *, char *buf, size_t size, int timeout_ms, int *crlf_r);
/* Reads exactly n bytes (literals, DATA). 0, or -1 with errno. */
int	io_read_full(struct io *, void *, size_t n, int timeout_ms);
/* Reads what is available (at least 1 byte, at most n). >0, or -1 (EOF: ECONNRESET). */
long	io_read_some(struct io *, void *, size_t n, int timeout_ms);
/* Bytes already read from the peer and buffered (pipelining). */
size_t	io_pending(const struct io *);
/*
 * 1 when a whole line (up to LF) is already buffered, so io_getline will
 * not wait for the network; decrypted TLS bytes are pulled in first.
 * Servers flush their replies when this is 0 (RFC 2920: before waiting
 * for input): io_pending alone stays above 0 while a peer that never
 * reads keeps sending partial lines, and replies would pile up.
 */
int	io_has_line(struct io *);
/* Drops buffered input (after STARTTLS: CVE-2011-0411). */
void	io_discard_input(struct io *);

/*
 * write(2) on a raw fd without dying of SIGPIPE when the reader is gone:
 * SIGPIPE is blocked around the call and, after EPIPE, the one it raised
 * is taken back (unless one was already pending). As write(2); for io and
 * for tls.c's socket BIO.
 */
ssize_t	io_write_nosigpipe(int fd, const void *, size_t n);
/* Milliseconds on CLOCK_MONOTONIC, for deadlines. */
long	io_now_ms(void);
/*
 * Waits until fd has events or io_now_ms() passes deadline (LONG_MAX:
 * never); a passed deadline still polls once. 0 (ready, or hung up: the
 * read or write says), or -1 with errno ETIMEDOUT or poll's.
 */
int	io_wait_fd(int fd, short events, long deadline);
/* Writes all n bytes to a raw fd, again after EINTR. 0, or -1 with errno. */
int	io_write_all(int fd, const void *, size_t n);

/* Buffers output; flushes when the buffer is full. 0 or -1. */
int	io_write(struct io *, const void *, size_t);
int	io_puts(struct io *, const char *);
int	io_printf(struct io *, const char *, ...) __attribute__((format(printf, 2, 3)));
/* Writes everything buffered within timeout_ms. 0 or -1 (ETIMEDOUT). */
int	io_flush(struct io *, int timeout_ms);
/* Default timeout for flushes done implicitly by io_write (ms). */
void	io_set_write_timeout(struct io *, int timeout_ms);

/*
 * Starts TLS on the connection (server or client side). Pending plaintext
 * input is discarded first. 0, or -1 with err.
 */
int	io_starttls_server(struct io *, struct tls_ctx *, int timeout_ms, char *err,
	    size_t errlen);
int	io_starttls_client(struct io *, struct tls_ctx *, const char *servername,
	    int timeout_ms, char *err, size_t errlen);
/* 1 when TLS is active. */
int	io_is_tls(const struct io *);
/* The TLS description (tls_info) or "" without TLS. */
const char *io_tls_info(struct io *, char *buf, size_t len);
/* The SNI name the client sent, or NULL. */
const char *io_tls_servername(struct io *);
/* The read fd (for poll in IDLE loops). */
int	io_fd(const struct io *);

#endif
