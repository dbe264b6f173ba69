/*
 * tls -- the only file that talks to OpenSSL.
 *
 * Policy: TLS 1.2 and 1.3 only; for TLS 1.2 ECDHE/DHE key exchange with
 * AEAD ciphers first, then ECDHE with AES-CBC for old peers; never RC4,
 * 3DES, export, NULL, anonymous, PSK/SRP or MD5. TLS 1.3 suites are
 * OpenSSL's defaults. No renegotiation, no compression.
 *
 * Servers keep one SSL_CTX per certificate name: the SNI callback moves a
 * connection to the SSL_CTX whose names match (exact, or "*.example.org"
 * for one label), else it stays on the default one. Adding two
 * certificates under the same name (an RSA and an ECDSA one) lets OpenSSL
 * choose by what the client supports. Session tickets are encrypted with
 * the keys of the default SSL_CTX, created before the daemon forks, so
 * resumption works across the per-connection processes.
 *
 * Sockets are driven through a small BIO of our own: recv/send with
 * MSG_DONTWAIT | MSG_NOSIGNAL on sockets (no O_NONBLOCK on the caller's
 * fd, no SIGPIPE), poll-guarded read/write on pipes. So every OpenSSL
 * call here is non-blocking and timeouts are poll(2)'s.
 */
#include <sys/socket.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "buf.h"
#include "io.h"
#include "tls.h"

#define TLS_CIPHERS \
	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:" \
	"!aNULL:!eNULL:!EXPORT:!LOW:!DES:!3DES:!RC4:!MD5:!PSK:!SRP:!DSS:" \
	"!CAMELLIA:!ARIA:!SEED:!IDEA"
#define TLS_FILE_MAX	(1024 * 1024)	/* a PEM file larger than this is not ours */
#define TLS_NAMES_MAX	256		/* SAN names kept per certificate */
static const unsigned char tls_sid_ctx[] = "courriel";

struct tls_entry {
	SSL_CTX		 *ctx;
	char		**names;	/* lowercase; NULL for the default */
	size_t		  nnames;
	int		  is_default;
	int		  from_san;	/* added with hostname "*" */
};

struct tls_ctx {
	int		  server;
	int		  verify;
	SSL_CTX		 *ctx;		/* client; for servers the default entry's */
	struct tls_entry *entries;
	size_t		  nentries;
};

struct tls_conn {
	SSL		*ssl;
	int		 rfd, wfd;
	int		 want;		/* POLLIN or POLLOUT after EAGAIN */
	int		 dead;		/* fatal error: no close_notify */
	char		 err[256];
};

/* --- the BIO ------------------------------------------------------------ */

struct tls_bio {
	int	rfd, wfd;
	int	rsock, wsock;
	int	wfifo;
};

static BIO_METHOD *tls_bio_method;

static void	entry_free_names(struct tls_entry *);

static int
fd_is_socket(int fd)
{
	struct stat	st;

	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int
fd_is_fifo(int fd)
{
	struct stat	st;

	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* 1 when fd is ready for events now. */
static int
fd_ready(int fd, short events)
{
	struct pollfd	pfd;
	int		r;

	pfd.fd = fd;
	pfd.events = events;
	pfd.revents = 0;
	do
		r = poll(&pfd, 1, 0);
	while (r == -1 && errno == EINTR);
	return r > 0;
}

static int
tls_bio_write(BIO *b, const char *data, int len)
{
	struct tls_bio	*tb = BIO_get_data(b);
	ssize_t		 n;
	size_t		 want = (size_t)len;

	BIO_clear_retry_flags(b);
	if (tb->wsock)
		n = send(tb->wfd, data, want, MSG_DONTWAIT | MSG_NOSIGNAL);
	else if (!fd_ready(tb->wfd, POLLOUT)) {
		n = -1;
		errno = EAGAIN;
	} else {
		/* A FIFO with room takes PIPE_BUF bytes without blocking. */
		if (tb->wfifo && want > PIPE_BUF)
			want = PIPE_BUF;
		n = io_write_nosigpipe(tb->wfd, data, want);
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_write(b);
		return -1;
	}
	return (int)n;
}

static int
tls_bio_read(BIO *b, char *data, int len)
{
	struct tls_bio	*tb = BIO_get_data(b);
	ssize_t		 n;

	BIO_clear_retry_flags(b);
	if (tb->rsock)
		n = recv(tb->rfd, data, (size_t)len, MSG_DONTWAIT);
	else if (!fd_ready(tb->rfd, POLLIN)) {
		n = -1;
		errno = EAGAIN;
	} else
		n = read(tb->rfd, data, (size_t)len);
	if (n == -1) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			BIO_set_retry_read(b);
		return -1;
	}
	return (int)n;
}

static int
tls_bio_puts(BIO *b, const char *s)
{
	return tls_bio_write(b, s, (int)strlen(s));
}

static long
tls_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
	case BIO_CTRL_DUP:
		return 1;
	default:
		return 0;
	}
}

static int
tls_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int
tls_bio_destroy(BIO *b)
{
	free(BIO_get_data(b));
	BIO_set_data(b, NULL);
	return 1;
}

static BIO *
tls_bio_new(int rfd, int wfd)
{
	struct tls_bio	*tb;
	BIO		*b;

	if (tls_bio_method == NULL) {
		BIO_METHOD	*m;

		m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
		    "courriel fd");
		if (m == NULL)
			return NULL;
		BIO_meth_set_write(m, tls_bio_write);
		BIO_meth_set_read(m, tls_bio_read);
		BIO_meth_set_puts(m, tls_bio_puts);
		BIO_meth_set_ctrl(m, tls_bio_ctrl);
		BIO_meth_set_create(m, tls_bio_create);
		BIO_meth_set_destroy(m, tls_bio_destroy);
		tls_bio_method = m;
	}
	if ((tb = calloc(1, sizeof(*tb))) == NULL)
		return NULL;
	tb->rfd = rfd;
	tb->wfd = wfd;
	tb->rsock = fd_is_socket(rfd);
	tb->wsock = rfd == wfd ? tb->rsock : fd_is_socket(wfd);
	tb->wfifo = !tb->wsock && fd_is_fifo(wfd);
	if ((b = BIO_new(tls_bio_method)) == NULL) {
		free(tb);
		return NULL;
	}
	BIO_set_data(b, tb);
	return b;
}

/* --- errors ------------------------------------------------------------- */

/* Puts "what: reason" in err, with the most specific OpenSSL reason. */
static void
tls_seterr(char *err, size_t errlen, const char *what)
{
	unsigned long	e, last = 0;
	char		reason[200];

	while ((e = ERR_get_error()) != 0)
		if (last == 0 || ERR_GET_LIB(e) == ERR_LIB_SSL)
			last = e;
	if (err == NULL || errlen == 0)
		return;
	if (last != 0) {
		const char *r = ERR_reason_error_string(last);

		if (r == NULL) {
			ERR_error_string_n(last, reason, sizeof(reason));
			r = reason;
		}
		(void)snprintf(err, errlen, "%s: %s", what, r);
	} else
		(void)snprintf(err, errlen, "%s", what);
}

/* --- contexts ----------------------------------------------------------- */

static int
ctx_common(SSL_CTX *ctx)
{
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION))
		return -1;
	if (!SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS))
		return -1;
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

static int	tls_servername_cb(SSL *, int *, void *);

static SSL_CTX *
server_ctx_new(struct tls_ctx *t)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		return NULL;
	if (ctx_common(ctx) == -1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_PRIORITIZE_CHACHA);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, tls_sid_ctx, sizeof(tls_sid_ctx) - 1);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_timeout(ctx, 3600);
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername_cb);
	SSL_CTX_set_tlsext_servername_arg(ctx, t);
	return ctx;
}

struct tls_ctx *
tls_server_new(char *err, size_t errlen)
{
	struct tls_ctx	*t;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		(void)snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	t->server = 1;
	return t;
}

struct tls_ctx *
tls_client_new(const char *cafile, int verify, char *err, size_t errlen)
{
	struct tls_ctx	*t;
	SSL_CTX		*ctx;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		(void)snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	t->verify = verify;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    ctx_common(ctx) == -1) {
		tls_seterr(err, errlen, "tls: client context");
		SSL_CTX_free(ctx);
		free(t);
		return NULL;
	}
	t->ctx = ctx;
	if (verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (cafile != NULL) {
			if (access(cafile, R_OK) == -1) {
				(void)snprintf(err, errlen, "%s: %s", cafile,
				    strerror(errno));
				tls_ctx_free(t);
				return NULL;
			}
			if (!SSL_CTX_load_verify_locations(ctx, cafile, NULL)) {
				char what[300];

				(void)snprintf(what, sizeof(what),
				    "%s: cannot load CA certificates", cafile);
				tls_seterr(err, errlen, what);
				tls_ctx_free(t);
				return NULL;
			}
		} else if (!SSL_CTX_set_default_verify_paths(ctx)) {
			tls_seterr(err, errlen, "tls: system CA store");
			tls_ctx_free(t);
			return NULL;
		}
	} else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return t;
}

void
tls_ctx_free(struct tls_ctx *t)
{
	size_t	i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nentries; i++) {
		SSL_CTX_free(t->entries[i].ctx);
		entry_free_names(&t->entries[i]);
	}
	free(t->entries);
	if (!t->server)
		SSL_CTX_free(t->ctx);
	free(t);
}

/* --- certificates ------------------------------------------------------- */

/*
 * Reads a whole PEM file into b (wipe it after use). A key file must be a
 * regular file that neither group nor others can read or write. 0 or -1.
 */
static int
read_pem(struct buf *b, const char *path, int is_key, char *err, size_t errlen)
{
	struct stat	 st;
	char		 chunk[8192];
	ssize_t		 n;
	int		 fd;

	buf_init(b, TLS_FILE_MAX);

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		(void)snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (is_key && (st.st_mode & 077) != 0) {
		(void)snprintf(err, errlen, "%s: readable by others (mode %04o); "
		    "a private key must be mode 600 or 400",
		    path, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf_add(b, chunk, (size_t)n) == -1) {
			n = -1;
			break;
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	if (n == -1) {
		(void)snprintf(err, errlen, "%s: %s", path,
		    errno == EMSGSIZE ? "file too large" : strerror(errno));
		close(fd);
		buf_wipe_free(b);
		return -1;
	}
	close(fd);
	return 0;
}

static int
no_password_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Adds the certificate's DNS names (SAN, else CN) to e->names. */
static int
entry_add_name(struct tls_entry *e, const char *name, size_t len)
{
	char	**v, *s;

	if (len == 0 || e->nnames >= TLS_NAMES_MAX)
		return 0;
	if (memchr(name, '\0', len) != NULL)
		return 0;
	if ((s = strndup(name, len)) == NULL)
		return -1;
	str_lower(s);
	if ((v = reallocarray(e->names, e->nnames + 1, sizeof(*v))) == NULL) {
		free(s);
		return -1;
	}
	e->names = v;
	e->names[e->nnames++] = s;
	return 0;
}

static int
entry_add_cert_names(struct tls_entry *e, X509 *x)
{
	GENERAL_NAMES	*sans;
	int		 i, n, r = 0;

	sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (sans != NULL) {
		n = sk_GENERAL_NAME_num(sans);
		for (i = 0; i < n && r == 0; i++) {
			GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);

			if (g->type != GEN_DNS)
				continue;
			r = entry_add_name(e,
			    (const char *)ASN1_STRING_get0_data(g->d.dNSName),
			    (size_t)ASN1_STRING_length(g->d.dNSName));
		}
		GENERAL_NAMES_free(sans);
	}
	if (r == 0 && e->nnames == 0) {
		X509_NAME	*subj = X509_get_subject_name(x);
		int		 idx;

		idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		if (idx >= 0) {
			ASN1_STRING *cn = X509_NAME_ENTRY_get_data(
			    X509_NAME_get_entry(subj, idx));

			r = entry_add_name(e,
			    (const char *)ASN1_STRING_get0_data(cn),
			    (size_t)ASN1_STRING_length(cn));
		}
	}
	return r;
}

/* 1 when a (lowercase pattern, maybe "*.x.y") names host (lowercase). */
static int
name_match(const char *pattern, const char *host)
{
	const char	*dot;

	if (strcmp(pattern, host) == 0)
		return 1;
	if (pattern[0] == '*' && pattern[1] == '.' &&
	    (dot = strchr(host, '.')) != NULL && dot != host &&
	    strcmp(pattern + 1, dot) == 0)
		return 1;
	return 0;
}

static struct tls_entry *
entry_find_name(struct tls_ctx *t, const char *host)
{
	size_t	i, j;

	for (i = 0; i < t->nentries; i++)
		for (j = 0; j < t->entries[i].nnames; j++)
			if (name_match(t->entries[i].names[j], host))
				return &t->entries[i];
	return NULL;
}

static struct tls_entry *
entry_default(struct tls_ctx *t)
{
	size_t	i;

	for (i = 0; i < t->nentries; i++)
		if (t->entries[i].is_default)
			return &t->entries[i];
	return t->nentries > 0 ? &t->entries[0] : NULL;
}

static void
entry_free_names(struct tls_entry *e)
{
	size_t	i;

	for (i = 0; i < e->nnames; i++)
		free(e->names[i]);
	free(e->names);
	e->names = NULL;
	e->nnames = 0;
}

static int
entry_same_names(const struct tls_entry *a, const struct tls_entry *b)
{
	size_t	i;

	if (a->nnames != b->nnames)
		return 0;
	for (i = 0; i < a->nnames; i++)
		if (strcmp(a->names[i], b->names[i]) != 0)
			return 0;
	return 1;
}

/*
 * The entry that a certificate under hostname goes into, made if needed.
 * Certificates added under the same name (or, with "*", with the same
 * names) share an SSL_CTX, so an RSA and an ECDSA one can serve together.
 * NULL on ENOMEM.
 */
static struct tls_entry *
entry_get(struct tls_ctx *t, const char *hostname, X509 *x)
{
	struct tls_entry	 n, *e, *v;
	size_t			 i;

	memset(&n, 0, sizeof(n));
	if (hostname == NULL)
		n.is_default = 1;
	else if (strcmp(hostname, "*") == 0) {
		n.from_san = 1;
		if (entry_add_cert_names(&n, x) == -1) {
			entry_free_names(&n);
			return NULL;
		}
	} else if (entry_add_name(&n, hostname, strlen(hostname)) == -1)
		return NULL;
	for (i = 0; i < t->nentries; i++) {
		e = &t->entries[i];
		if (e->is_default == n.is_default && e->from_san == n.from_san &&
		    entry_same_names(e, &n)) {
			entry_free_names(&n);
			return e;
		}
	}
	if ((n.ctx = server_ctx_new(t)) == NULL ||
	    (v = reallocarray(t->entries, t->nentries + 1, sizeof(*v))) == NULL) {
		SSL_CTX_free(n.ctx);
		entry_free_names(&n);
		return NULL;
	}
	t->entries = v;
	t->entries[t->nentries] = n;
	return &t->entries[t->nentries++];
}

int
tls_server_add_cert(struct tls_ctx *t, const char *hostname,
    const char *certfile, const char *keyfile, char *err, size_t errlen)
{
	STACK_OF(X509)	 *chain = NULL;
	struct tls_entry *e, *def;
	struct buf	  cb, kb;
	EVP_PKEY	 *pkey = NULL;
	X509		 *x = NULL, *ca;
	BIO		 *bio = NULL;
	size_t		  nentries;
	int		  rc = -1;

	if (t == NULL || !t->server) {
		(void)snprintf(err, errlen, "tls: not a server context");
		return -1;
	}
	nentries = t->nentries;
	if (keyfile == NULL)
		keyfile = certfile;
	if (hostname != NULL && hostname[0] == '\0')
		hostname = NULL;
	ERR_clear_error();

	buf_init(&kb, 0);
	if (read_pem(&cb, certfile, keyfile == certfile, err, errlen) == -1)
		return -1;
	if (cb.len == 0 || cb.len > INT_MAX ||
	    (bio = BIO_new_mem_buf(cb.data, (int)cb.len)) == NULL)
		goto oom;
	x = PEM_read_bio_X509_AUX(bio, NULL, no_password_cb, NULL);
	if (x == NULL) {
		char what[300];

		(void)snprintf(what, sizeof(what), "%s: no certificate",
		    certfile);
		tls_seterr(err, errlen, what);
		goto out;
	}
	if ((chain = sk_X509_new_null()) == NULL)
		goto oom;
	while ((ca = PEM_read_bio_X509(bio, NULL, no_password_cb, NULL)) != NULL)
		if (!sk_X509_push(chain, ca)) {
			X509_free(ca);
			goto oom;
		}
	ERR_clear_error();	/* the end of the file */
	BIO_free(bio);
	bio = NULL;
	if (keyfile != certfile) {
		if (read_pem(&kb, keyfile, 1, err, errlen) == -1)
			goto out;
		bio = BIO_new_mem_buf(kb.len > 0 ? kb.data : "", (int)kb.len);
	} else
		bio = BIO_new_mem_buf(cb.data, (int)cb.len);
	if (bio == NULL)
		goto oom;
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password_cb, NULL);
	BIO_free(bio);
	bio = NULL;
	if (pkey == NULL) {
		char what[300];

		(void)snprintf(what, sizeof(what),
		    "%s: no usable private key (encrypted keys are not supported)",
		    keyfile);
		tls_seterr(err, errlen, what);
		goto out;
	}
	ERR_clear_error();
	if (!X509_check_private_key(x, pkey)) {
		ERR_clear_error();
		(void)snprintf(err, errlen, "%s: key does not match %s",
		    keyfile, certfile);
		goto out;
	}

	if ((e = entry_get(t, hostname, x)) == NULL)
		goto oom;
	if (e->from_san && e->nnames == 0) {
		(void)snprintf(err, errlen, "%s: no DNS name in the certificate",
		    certfile);
		goto out;
	}
	if (!SSL_CTX_use_cert_and_key(e->ctx, x, pkey, chain, 1)) {
		char what[300];

		(void)snprintf(what, sizeof(what), "%s: cannot use certificate",
		    certfile);
		tls_seterr(err, errlen, what);
		goto out;
	}
	if (!SSL_CTX_check_private_key(e->ctx)) {
		char what[300];

		(void)snprintf(what, sizeof(what), "%s: key does not match",
		    certfile);
		tls_seterr(err, errlen, what);
		goto out;
	}
	def = entry_default(t);
	t->ctx = def->ctx;
	rc = 0;
	goto out;
oom:
	(void)snprintf(err, errlen, "tls: out of memory");
out:
	if (rc == -1 && t->nentries > nentries) {
		/* A failed first certificate leaves no empty name behind. */
		t->nentries--;
		SSL_CTX_free(t->entries[t->nentries].ctx);
		entry_free_names(&t->entries[t->nentries]);
	}
	BIO_free(bio);
	buf_wipe_free(&cb);
	buf_wipe_free(&kb);
	EVP_PKEY_free(pkey);
	X509_free(x);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	struct tls_ctx		*t = arg;
	struct tls_entry	*e;
	const char		*sni;
	char			 host[256];
	size_t			 len;

	(void)alert;
	sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (sni == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	len = strlen(sni);
	if (len == 0 || len >= sizeof(host))
		return SSL_TLSEXT_ERR_NOACK;
	memcpy(host, sni, len + 1);
	if (host[len - 1] == '.')
		host[len - 1] = '\0';
	str_lower(host);
	if ((e = entry_find_name(t, host)) == NULL)
		return SSL_TLSEXT_ERR_OK;	/* the default certificate */
	if (e->ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, e->ctx) == NULL)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	return SSL_TLSEXT_ERR_OK;
}

/* --- connections -------------------------------------------------------- */

/* Waits for the fd that the last WANT_* asked for. 0, or -1 (ETIMEDOUT). */
static int
conn_wait(struct tls_conn *c, long deadline)
{
	if (io_now_ms() >= deadline) {
		errno = ETIMEDOUT;
		return -1;
	}
	return io_wait_fd(c->want == POLLOUT ? c->wfd : c->rfd, (short)c->want,
	    deadline);
}

/*
 * Maps the outcome of an SSL call to errno. Returns 1 to retry after
 * waiting (want set), 0 on clean EOF, -1 on error.
 */
static int
conn_error(struct tls_conn *c, int ret, int saved_errno)
{
	unsigned long	e;
	const char	*r;

	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		c->want = POLLIN;
		errno = EAGAIN;
		return 1;
	case SSL_ERROR_WANT_WRITE:
		c->want = POLLOUT;
		errno = EAGAIN;
		return 1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		c->dead = 1;
		ERR_clear_error();
		errno = saved_errno != 0 ? saved_errno : ECONNRESET;
		(void)snprintf(c->err, sizeof(c->err), "%s", strerror(errno));
		return -1;
	default:
		c->dead = 1;
		e = ERR_peek_last_error();
		if (ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			errno = ECONNRESET;
			(void)snprintf(c->err, sizeof(c->err),
			    "connection closed without close_notify");
			return -1;
		}
		r = ERR_reason_error_string(e);
		(void)snprintf(c->err, sizeof(c->err), "%s",
		    r != NULL ? r : "protocol error");
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

static void
conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	SSL_free(c->ssl);
	free(c);
}

static int
is_ip_literal(const char *s)
{
	unsigned char	a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static struct tls_conn *
conn_new(struct tls_ctx *t, int rfd, int wfd, char *err, size_t errlen)
{
	struct tls_conn	*c;
	BIO		*bio;

	if (t == NULL || t->ctx == NULL) {
		(void)snprintf(err, errlen, "tls: %s", t != NULL && t->server ?
		    "no certificate configured" : "no context");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		(void)snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	c->rfd = rfd;
	c->wfd = wfd;
	ERR_clear_error();
	if ((c->ssl = SSL_new(t->ctx)) == NULL ||
	    (bio = tls_bio_new(rfd, wfd)) == NULL) {
		tls_seterr(err, errlen, "tls: new connection");
		conn_free(c);
		return NULL;
	}
	SSL_set_bio(c->ssl, bio, bio);
	return c;
}

/* Runs the handshake to its end within timeout_ms. 0, or -1 with err. */
static int
conn_handshake(struct tls_conn *c, int server, int timeout_ms, char *err,
    size_t errlen)
{
	long	deadline = timeout_ms < 0 ? LONG_MAX : io_now_ms() + timeout_ms;
	long	vr;
	int	r, e;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		r = server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);
		if (r == 1)
			return 0;
		e = errno;
		switch (conn_error(c, r, e)) {
		case 1:
			if (conn_wait(c, deadline) == 0)
				continue;
			c->dead = 1;
			(void)snprintf(err, errlen, "TLS handshake: %s",
			    errno == ETIMEDOUT ? "timed out" : strerror(errno));
			return -1;
		case 0:
			c->dead = 1;
			errno = ECONNRESET;
			(void)snprintf(err, errlen,
			    "TLS handshake: connection closed by peer");
			return -1;
		default:
			break;
		}
		vr = SSL_get_verify_result(c->ssl);
		if (!server && vr != X509_V_OK) {
			(void)snprintf(err, errlen,
			    "TLS handshake: certificate verify failed: %s",
			    X509_verify_cert_error_string(vr));
			errno = EPROTO;
		} else if (errno == EPIPE || errno == ECONNRESET)
			(void)snprintf(err, errlen,
			    "TLS handshake: connection closed by peer");
		else
			(void)snprintf(err, errlen, "TLS handshake: %s", c->err);
		return -1;
	}
}

/* conn_handshake, freeing c when it fails (errno kept). c, or NULL. */
static struct tls_conn *
conn_start(struct tls_conn *c, int server, int timeout_ms, char *err,
    size_t errlen)
{
	int	e;

	if (conn_handshake(c, server, timeout_ms, err, errlen) == 0)
		return c;
	e = errno;
	conn_free(c);
	errno = e;
	return NULL;
}

struct tls_conn *
tls_accept_fds(struct tls_ctx *t, int rfd, int wfd, int timeout_ms, char *err,
    size_t errlen)
{
	struct tls_conn	*c;

	if (t != NULL && !t->server) {
		(void)snprintf(err, errlen, "tls: not a server context");
		errno = EINVAL;
		return NULL;
	}
	if ((c = conn_new(t, rfd, wfd, err, errlen)) == NULL)
		return NULL;
	return conn_start(c, 1, timeout_ms, err, errlen);
}

struct tls_conn *
tls_accept(struct tls_ctx *t, int fd, int timeout_ms, char *err, size_t errlen)
{
	return tls_accept_fds(t, fd, fd, timeout_ms, err, errlen);
}

/*
 * Sets the name to send as SNI and to verify: an IP literal is checked
 * against the IP SANs and not sent (RFC 6066 3); a final dot is dropped.
 */
static int
conn_set_peer(struct tls_conn *c, int verify, const char *servername)
{
	char	name[256];
	size_t	len = strlen(servername);

	if (len >= sizeof(name))
		return -1;
	memcpy(name, servername, len + 1);
	if (len > 1 && name[len - 1] == '.')
		name[len - 1] = '\0';
	if (is_ip_literal(name))
		return !verify || X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(c->ssl), name) ? 0 : -1;
	if (!SSL_set_tlsext_host_name(c->ssl, name))
		return -1;
	if (verify) {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (!SSL_set1_host(c->ssl, name))
			return -1;
	}
	return 0;
}

struct tls_conn *
tls_connect_fds(struct tls_ctx *t, int rfd, int wfd, const char *servername,
    int timeout_ms, char *err, size_t errlen)
{
	struct tls_conn	*c;

	if (t != NULL && t->server) {
		(void)snprintf(err, errlen, "tls: not a client context");
		errno = EINVAL;
		return NULL;
	}
	if ((c = conn_new(t, rfd, wfd, err, errlen)) == NULL)
		return NULL;
	if (servername != NULL && servername[0] != '\0' &&
	    conn_set_peer(c, t->verify, servername) == -1) {
		(void)snprintf(err, errlen, "tls: bad server name: %s",
		    servername);
		conn_free(c);
		errno = EINVAL;
		return NULL;
	}
	return conn_start(c, 0, timeout_ms, err, errlen);
}

struct tls_conn *
tls_connect(struct tls_ctx *t, int fd, const char *servername, int timeout_ms,
    char *err, size_t errlen)
{
	return tls_connect_fds(t, fd, fd, servername, timeout_ms, err, errlen);
}

/*
 * One SSL_read_ex into rdata, or SSL_write_ex from wdata when not NULL:
 * the bytes moved, 0 at a clean EOF, or -1 with errno (EAGAIN: wait for
 * tls_want).
 */
static long
conn_rw(struct tls_conn *c, void *rdata, const void *wdata, size_t len)
{
	size_t	n = 0;
	int	r, e;

	if (c->dead) {
		errno = wdata != NULL ? EPIPE : EIO;
		return -1;
	}
	if (len == 0)
		return 0;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	errno = 0;
	if (wdata != NULL)
		r = SSL_write_ex(c->ssl, wdata, len, &n);
	else
		r = SSL_read_ex(c->ssl, rdata, len, &n);
	if (r == 1)
		return (long)n;
	e = errno;
	return conn_error(c, 0, e) == 0 ? 0 : -1;
}

long
tls_read(struct tls_conn *c, void *data, size_t len)
{
	return conn_rw(c, data, NULL, len);
}

long
tls_write(struct tls_conn *c, const void *data, size_t len)
{
	long	r = conn_rw(c, NULL, data, len);

	if (r == 0 && len > 0) {
		errno = EPIPE;	/* the peer closed: cannot write */
		c->dead = 1;
		return -1;
	}
	return r;
}

int
tls_want(const struct tls_conn *c)
{
	return c->want != 0 ? c->want : POLLIN;
}

int
tls_pending(struct tls_conn *c)
{
	return SSL_pending(c->ssl) > 0;
}

size_t
tls_pending_bytes(const struct tls_conn *c)
{
	int	n = SSL_pending(c->ssl);

	return n > 0 ? (size_t)n : 0;
}

const char *
tls_info(struct tls_conn *c, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	(void)snprintf(buf, len, "%s %s", SSL_get_version(c->ssl),
	    SSL_get_cipher_name(c->ssl));
	return buf;
}

const char *
tls_servername(struct tls_conn *c)
{
	return SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
}

const char *
tls_error(const struct tls_conn *c)
{
	return c->err;
}

int
tls_session_reused(struct tls_conn *c)
{
	return SSL_session_reused(c->ssl);
}

void
tls_close(struct tls_conn *c)
{
	if (c == NULL)
		return;
	if (!c->dead && SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl);	/* sends close_notify, no wait */
		ERR_clear_error();
	}
	conn_free(c);
}
