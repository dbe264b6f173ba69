/*
 * Unit tests for lib/tls (and lib/io over TLS). Certificates are made at
 * run time by tests/integration/mkcerts.sh: three CAs, each with an RSA
 * and an ECDSA server certificate and its own extra names, so that a
 * client verifying against one CA proves which certificate the server
 * chose. A forked child is the server; the parent is the client, through
 * lib/tls or, where the test needs what lib/tls refuses to do (TLS 1.1,
 * weak ciphers, looking at the peer's key), through raw OpenSSL.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "io.h"
#include "tls.h"
#include "t.h"

static char	dir[64];
static char	path_buf[8][512];
static int	path_i;

/* A path under the scratch dir (a ring of static buffers). */
static const char *
P(const char *rel)
{
	char	*p = path_buf[path_i++ % 8];

	snprintf(p, sizeof(path_buf[0]), "%s/%s", dir, rel);
	return p;
}

static long
ms_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
mkcerts(void)
{
	const char	*top = getenv("COURRIEL_TOP");
	char		 cmd[1024];

	if (top == NULL)
		top = ".";
	snprintf(cmd, sizeof(cmd),
	    "sh %s/tests/integration/mkcerts.sh %s/d1 a.example >/dev/null && "
	    "sh %s/tests/integration/mkcerts.sh %s/d2 b.example >/dev/null && "
	    "sh %s/tests/integration/mkcerts.sh %s/d3 c.example '*.wild.example' "
	    ">/dev/null", top, dir, top, dir, top, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
copy_file(const char *from, const char *to, mode_t mode)
{
	char	b[16384];
	ssize_t	n;
	int	in, out;

	if ((in = open(from, O_RDONLY)) == -1)
		return -1;
	unlink(to);
	if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1) {
		close(in);
		return -1;
	}
	while ((n = read(in, b, sizeof(b))) > 0)
		if (write(out, b, (size_t)n) != n)
			n = -1;
	close(in);
	if (fchmod(out, mode) == -1)
		n = -1;
	close(out);
	return n == 0 ? 0 : -1;
}

/*
 * The server child: handshake through io_starttls_server (after a
 * plaintext STARTTLS exchange when starttls), then report
 * "SNI=<name> INFO=<info> FIRST=<first line>" and echo lines until EOF.
 * A failed handshake writes its error to errfd and exits 1.
 */
static pid_t
server(struct tls_ctx *sctx, int fd, int starttls, int errfd, int timeout_ms)
{
	struct io	*io;
	char		 err[256] = "", info[128], line[70000];
	const char	*sni;
	long		 n;
	pid_t		 pid;

	if ((pid = fork()) != 0)
		return pid;
	io = io_new(fd, fd);
	if (starttls) {
		if (io_getline(io, line, sizeof(line), 5000, NULL) < 0 ||
		    strcmp(line, "STARTTLS") != 0)
			_exit(3);
		io_puts(io, "220 go ahead\r\n");
	}
	if (io_starttls_server(io, sctx, timeout_ms, err, sizeof(err)) == -1) {
		if (errfd != -1) {
			if (write(errfd, err, strlen(err)) < 0)
				_exit(2);
		}
		_exit(1);
	}
	if (io_getline(io, line, sizeof(line), 5000, NULL) < 0)
		_exit(4);
	sni = io_tls_servername(io);
	io_printf(io, "SNI=%s INFO=%s FIRST=%s\r\n", sni ? sni : "-",
	    io_tls_info(io, info, sizeof(info)), line);
	io_flush(io, 5000);
	while ((n = io_getline(io, line, sizeof(line), 5000, NULL)) >= 0) {
		io_write(io, line, (size_t)n);
		io_puts(io, "\r\n");
		if (io_pending(io) == 0)
			io_flush(io, 5000);
	}
	io_free(io, 1);
	_exit(0);
}

static int
reap(pid_t pid)
{
	int	st = -1;

	while (waitpid(pid, &st, 0) == -1 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/*
 * Connects through lib/io + lib/tls as a client. Returns 0 and the
 * server's report line in report, or -1 with err.
 */
static int
client(struct tls_ctx *sctx, const char *cafile, int verify,
    const char *servername, char *report, size_t rlen, char *err, size_t errlen,
    char *srverr, size_t srverrlen)
{
	struct tls_ctx	*cctx;
	struct io	*io;
	pid_t		 pid;
	int		 sv[2], ep[2], rc = -1;
	ssize_t		 n;

	report[0] = err[0] = '\0';
	if (srverr)
		srverr[0] = '\0';
	cctx = tls_client_new(cafile, verify, err, errlen);
	if (cctx == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1 || pipe(ep) == -1)
		return -1;
	pid = server(sctx, sv[1], 0, ep[1], 5000);
	close(sv[1]);
	close(ep[1]);
	io = io_new(sv[0], sv[0]);
	if (io_starttls_client(io, cctx, servername, 5000, err, errlen) == 0 &&
	    io_puts(io, "hello\r\n") == 0 && io_flush(io, 5000) == 0 &&
	    io_getline(io, report, rlen, 5000, NULL) > 0)
		rc = 0;
	io_free(io, 1);
	reap(pid);
	if (srverr) {
		n = read(ep[0], srverr, srverrlen - 1);
		srverr[n > 0 ? n : 0] = '\0';
	}
	close(ep[0]);
	tls_ctx_free(cctx);
	return rc;
}

/*
 * A raw OpenSSL client for what lib/tls will not do. maxver 0: any;
 * ciphers NULL: default. Fills keytype ("RSA", "EC") on success.
 */
static int
raw_client(struct tls_ctx *sctx, const char *servername, int maxver,
    const char *ciphers, char *keytype, size_t klen, char *srverr,
    size_t srverrlen, SSL_SESSION **sess, int *reused)
{
	SSL_CTX		*ctx;
	SSL		*ssl;
	X509		*peer;
	pid_t		 pid;
	int		 sv[2], ep[2], rc = -1;
	char		 b[512];
	ssize_t		 n;

	keytype[0] = '\0';
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_security_level(ctx, 0);
	SSL_CTX_set_min_proto_version(ctx, 0);
	if (maxver)
		SSL_CTX_set_max_proto_version(ctx, maxver);
	if (ciphers)
		SSL_CTX_set_cipher_list(ctx, ciphers);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	if (pipe(ep) == -1)
		return -1;
	pid = server(sctx, sv[1], 0, ep[1], 5000);
	close(sv[1]);
	close(ep[1]);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, sv[0]);
	if (servername)
		SSL_set_tlsext_host_name(ssl, servername);
	if (sess && *sess)
		SSL_set_session(ssl, *sess);
	if (SSL_connect(ssl) == 1) {
		peer = SSL_get1_peer_certificate(ssl);
		if (peer != NULL) {
			int id = EVP_PKEY_get_base_id(X509_get0_pubkey(peer));

			snprintf(keytype, klen, "%s", id == EVP_PKEY_RSA ? "RSA" :
			    id == EVP_PKEY_EC ? "EC" : "other");
			X509_free(peer);
		}
		if (reused)
			*reused = SSL_session_reused(ssl);
		/* Read the report so that TLS 1.3 tickets arrive. */
		if (SSL_write(ssl, "hi\r\n", 4) == 4 &&
		    SSL_read(ssl, b, sizeof(b) - 1) > 0)
			rc = 0;
		if (sess) {
			if (*sess)
				SSL_SESSION_free(*sess);
			*sess = SSL_get1_session(ssl);
		}
		SSL_shutdown(ssl);
	}
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(sv[0]);
	reap(pid);
	if (srverr) {
		n = read(ep[0], srverr, srverrlen - 1);
		srverr[n > 0 ? n : 0] = '\0';
	}
	close(ep[0]);
	return rc;
}

static struct tls_ctx *
make_server(void)
{
	struct tls_ctx	*s;
	char		 err[256] = "";
	int		 r;

	s = tls_server_new(err, sizeof(err));
	T_OK(s != NULL, "tls_server_new");
	r = tls_server_add_cert(s, NULL, P("d1/server.crt"), P("d1/server.key"),
	    err, sizeof(err));
	T_OK(r == 0, "default RSA certificate (%s)", r ? err : "");
	r = tls_server_add_cert(s, "B.example", P("d2/ecdsa.crt"),
	    P("d2/ecdsa.key"), err, sizeof(err));
	T_OK(r == 0, "ECDSA certificate for b.example (%s)", r ? err : "");
	r = tls_server_add_cert(s, "*", P("d3/server.crt"), P("d3/server.key"),
	    err, sizeof(err));
	T_OK(r == 0, "certificate for the names in its SAN (%s)", r ? err : "");
	r = tls_server_add_cert(s, "*", P("d3/ecdsa.crt"), P("d3/ecdsa.key"),
	    err, sizeof(err));
	T_OK(r == 0, "its ECDSA twin (%s)", r ? err : "");
	return s;
}

static void
test_sni(struct tls_ctx *s)
{
	char	rep[256], err[256] = "", kt[16];
	int	r;

	r = client(s, P("d1/ca.crt"), 1, "127.0.0.1", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "IP literal verified against the IP SAN (%s)", err);
	T_OK(strncmp(rep, "SNI=- ", 6) == 0, "no SNI sent for an IP (%s)", rep);
	T_OK(strstr(rep, "FIRST=hello") != NULL, "data flows over TLS (%s)", rep);

	r = client(s, P("d1/ca.crt"), 1, "a.example", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "unknown SNI name gets the default certificate (%s)", err);
	T_OK(strncmp(rep, "SNI=a.example ", 14) == 0, "server saw SNI (%s)", rep);
	T_OK(strstr(rep, "INFO=TLSv1.3 TLS_") != NULL, "tls_info (%s)", rep);

	r = client(s, P("d2/ca.crt"), 1, "b.example", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "SNI b.example chooses its certificate (%s)", err);
	r = client(s, P("d2/ca.crt"), 1, "B.EXAMPLE.", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "SNI matching ignores case and a final dot (%s)", err);
	r = client(s, P("d1/ca.crt"), 1, "b.example", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == -1 && strstr(err, "verify failed") != NULL,
	    "and not the default one (%s)", err);

	r = client(s, P("d3/ca.crt"), 1, "c.example", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "\"*\" entry chosen by a SAN name (%s)", err);
	r = client(s, P("d3/ca.crt"), 1, "x.wild.example", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "\"*\" entry chosen by a wildcard SAN (%s)", err);
	r = client(s, P("d1/ca.crt"), 1, "x.y.wild.example", rep, sizeof(rep),
	    err, sizeof(err), NULL, 0);
	T_OK(r == -1 && strstr(err, "hostname mismatch") != NULL,
	    "a wildcard covers one label only (%s)", err);

	r = raw_client(s, "b.example", 0, NULL, kt, sizeof(kt), NULL, 0, NULL,
	    NULL);
	T_OK(r == 0 && strcmp(kt, "EC") == 0, "b.example serves ECDSA (%s)", kt);
	r = raw_client(s, "other.example", 0, NULL, kt, sizeof(kt), NULL, 0,
	    NULL, NULL);
	T_OK(r == 0 && strcmp(kt, "RSA") == 0, "the default serves RSA (%s)", kt);
	r = raw_client(s, "c.example", TLS1_2_VERSION,
	    "ECDHE-RSA-AES128-GCM-SHA256", kt, sizeof(kt), NULL, 0, NULL, NULL);
	T_OK(r == 0 && strcmp(kt, "RSA") == 0,
	    "RSA+ECDSA under one name: an RSA-only client gets RSA (%s)", kt);
	r = raw_client(s, "c.example", TLS1_2_VERSION,
	    "ECDHE-ECDSA-AES128-GCM-SHA256", kt, sizeof(kt), NULL, 0, NULL,
	    NULL);
	T_OK(r == 0 && strcmp(kt, "EC") == 0,
	    "and an ECDSA-only client gets ECDSA (%s)", kt);
}

static void
test_verify(struct tls_ctx *s)
{
	char	rep[256], err[256] = "", srverr[256] = "";
	int	r;

	r = client(s, P("d1/ca.crt"), 1, "nothere.example", rep, sizeof(rep),
	    err, sizeof(err), NULL, 0);
	T_OK(r == -1 && strstr(err, "hostname mismatch") != NULL,
	    "hostname mismatch fails verification (%s)", err);
	r = client(s, P("d1/ca.crt"), 1, "127.0.0.2", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == -1 && strstr(err, "IP address mismatch") != NULL,
	    "IP mismatch fails verification (%s)", err);
	r = client(s, NULL, 1, "localhost", rep, sizeof(rep), err, sizeof(err),
	    srverr, sizeof(srverr));
	T_OK(r == -1 && strstr(err, "verify failed") != NULL,
	    "unknown CA fails with the system store (%s)", err);
	T_OK(srverr[0] != '\0', "and the server sees the alert (%s)", srverr);
	r = client(s, P("d2/ca.crt"), 1, "localhost", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == -1, "a CA file without the issuer fails (%s)", err);
	r = client(s, NULL, 0, "nothere.example", rep, sizeof(rep), err,
	    sizeof(err), NULL, 0);
	T_OK(r == 0, "verify=0 accepts anything (%s)", err);
	T_OK(tls_client_new(P("nonexistent.pem"), 1, err, sizeof(err)) == NULL &&
	    strstr(err, "nonexistent.pem") != NULL,
	    "missing CA file is an error naming it (%s)", err);
}

static void
test_protocols(struct tls_ctx *s)
{
	char		 kt[16], srverr[256] = "";
	SSL_SESSION	*sess = NULL;
	int		 r, reused = -1;

	r = raw_client(s, "localhost", TLS1_1_VERSION, "ALL:@SECLEVEL=0", kt,
	    sizeof(kt), srverr, sizeof(srverr), NULL, NULL);
	T_OK(r == -1, "a TLS 1.1 client is refused");
	T_OK(strstr(srverr, "protocol") != NULL,
	    "server says why (%s)", srverr);
	r = raw_client(s, "localhost", TLS1_2_VERSION,
	    "AES128-SHA:AES256-GCM-SHA384:DES-CBC3-SHA:RC4-SHA:@SECLEVEL=0", kt,
	    sizeof(kt), srverr, sizeof(srverr), NULL, NULL);
	T_OK(r == -1, "static RSA, 3DES and RC4 ciphers are refused (%s)",
	    srverr);
	r = raw_client(s, "localhost", TLS1_2_VERSION,
	    "ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-GCM-SHA256", kt, sizeof(kt),
	    srverr, sizeof(srverr), NULL, NULL);
	T_OK(r == 0, "TLS 1.2 with ECDHE works (%s)", srverr);

	r = raw_client(s, "localhost", 0, NULL, kt, sizeof(kt), NULL, 0, &sess,
	    &reused);
	T_OK(r == 0 && sess != NULL && reused == 0, "first TLS 1.3 session");
	r = raw_client(s, "localhost", 0, NULL, kt, sizeof(kt), NULL, 0, &sess,
	    &reused);
	T_OK(r == 0 && reused == 1,
	    "a second process resumes it with a ticket (reused=%d)", reused);
	SSL_SESSION_free(sess);
	sess = NULL;
	r = raw_client(s, "b.example", TLS1_2_VERSION, NULL, kt, sizeof(kt),
	    NULL, 0, &sess, &reused);
	r = raw_client(s, "b.example", TLS1_2_VERSION, NULL, kt, sizeof(kt),
	    NULL, 0, &sess, &reused);
	T_OK(r == 0 && reused == 1,
	    "TLS 1.2 resumption after an SNI switch (reused=%d)", reused);
	SSL_SESSION_free(sess);
}

static void
test_keys(void)
{
	struct tls_ctx	*s;
	char		 err[256] = "", both[600];
	int		 r, fd;

	s = tls_server_new(err, sizeof(err));
	copy_file(P("d1/server.key"), P("loose.key"), 0644);
	r = tls_server_add_cert(s, NULL, P("d1/server.crt"), P("loose.key"),
	    err, sizeof(err));
	T_OK(r == -1 && strstr(err, "readable by others (mode 0644)") != NULL,
	    "a world-readable key is refused (%s)", err);
	chmod(P("loose.key"), 0640);
	r = tls_server_add_cert(s, NULL, P("d1/server.crt"), P("loose.key"),
	    err, sizeof(err));
	T_OK(r == -1 && strstr(err, "0640") != NULL,
	    "a group-readable key is refused (%s)", err);
	chmod(P("loose.key"), 0400);
	r = tls_server_add_cert(s, NULL, P("d1/server.crt"), P("loose.key"),
	    err, sizeof(err));
	T_OK(r == 0, "mode 0400 is fine (%s)", r ? err : "");
	r = tls_server_add_cert(s, NULL, P("d1/server.crt"), P("d2/server.key"),
	    err, sizeof(err));
	T_OK(r == -1 && strstr(err, "does not match") != NULL,
	    "a key that does not match is refused (%s)", err);
	r = tls_server_add_cert(s, NULL, P("d1/server.crt"), P("d1/ecdsa.key"),
	    err, sizeof(err));
	T_OK(r == -1 && strstr(err, "does not match") != NULL,
	    "an ECDSA key with an RSA certificate too (%s)", err);
	r = tls_server_add_cert(s, NULL, P("d1/nope.crt"), P("d1/server.key"),
	    err, sizeof(err));
	T_OK(r == -1 && strstr(err, "nope.crt") != NULL,
	    "a missing certificate names the file (%s)", err);
	r = tls_server_add_cert(s, NULL, P("d1/server.key"), P("d1/server.key"),
	    err, sizeof(err));
	T_OK(r == -1 && strstr(err, "no certificate") != NULL,
	    "a key given as certificate (%s)", err);
	/* Certificate and key in one file (haproxy style). */
	snprintf(both, sizeof(both), "cat %s %s > %s && chmod 600 %s",
	    P("d1/ecdsa.crt"), P("d1/ecdsa.key"), P("both.pem"), P("both.pem"));
	r = system(both);
	r = tls_server_add_cert(s, "x.example", P("both.pem"), NULL, err,
	    sizeof(err));
	T_OK(r == 0, "certificate and key in one file (%s)", r ? err : "");
	chmod(P("both.pem"), 0644);
	r = tls_server_add_cert(s, "y.example", P("both.pem"), NULL, err,
	    sizeof(err));
	T_OK(r == -1 && strstr(err, "readable by others") != NULL,
	    "and that file is checked like a key (%s)", err);
	/* An encrypted key gives an error, never a prompt. */
	snprintf(both, sizeof(both), "openssl pkey -in %s -aes256 -passout "
	    "pass:secret -out %s 2>/dev/null && chmod 600 %s",
	    P("d1/server.key"), P("enc.key"), P("enc.key"));
	if (system(both) == 0) {
		r = tls_server_add_cert(s, NULL, P("d1/server.crt"),
		    P("enc.key"), err, sizeof(err));
		T_OK(r == -1 && strstr(err, "enc.key") != NULL,
		    "an encrypted key is refused without a prompt (%s)", err);
	}
	tls_ctx_free(s);

	/* "*" with a certificate that names no host; then a good one. */
	snprintf(both, sizeof(both), "openssl req -x509 -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout %s -out %s -subj /O=x "
	    "-addext subjectAltName=IP:127.0.0.1 2>/dev/null && chmod 600 %s",
	    P("ip.key"), P("ip.crt"), P("ip.key"));
	if (system(both) == 0) {
		char rep[256];

		s = tls_server_new(err, sizeof(err));
		r = tls_server_add_cert(s, "*", P("ip.crt"), P("ip.key"), err,
		    sizeof(err));
		T_OK(r == -1 && strstr(err, "no DNS name") != NULL,
		    "\"*\" with a certificate naming no host (%s)", err);
		r = tls_server_add_cert(s, "b.example", P("d2/server.crt"),
		    P("d2/server.key"), err, sizeof(err));
		T_OK(r == 0, "then a named certificate (%s)", r ? err : "");
		r = client(s, P("d2/ca.crt"), 1, "localhost", rep, sizeof(rep),
		    err, sizeof(err), NULL, 0);
		T_OK(r == 0, "is the default, the failed one left nothing (%s)",
		    err);
		tls_ctx_free(s);
	}

	s = tls_server_new(err, sizeof(err));
	fd = -1;
	{
		struct tls_conn *c = tls_accept(s, 0, 100, err, sizeof(err));

		T_OK(c == NULL && strstr(err, "no certificate") != NULL,
		    "accept without a certificate fails (%s)", err);
		(void)fd;
	}
	tls_ctx_free(s);
}

/* STARTTLS with plaintext pipelined after it, and SNI after STARTTLS. */
static void
test_starttls(struct tls_ctx *s)
{
	struct tls_ctx	*cctx;
	struct io	*io;
	char		 line[256], err[256] = "", info[128];
	int		 sv[2], r;
	pid_t		 pid;
	static const char inject[] = "STARTTLS\r\nRCPT TO:<evil@example.org>\r\n";

	cctx = tls_client_new(P("d2/ca.crt"), 1, err, sizeof(err));
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid = server(s, sv[1], 1, -1, 5000);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	io_puts(io, inject);
	io_flush(io, 5000);
	r = io_getline(io, line, sizeof(line), 5000, NULL);
	T_OK(r > 0 && strcmp(line, "220 go ahead") == 0, "220 for STARTTLS");
	r = io_starttls_client(io, cctx, "b.example", 5000, err, sizeof(err));
	T_OK(r == 0, "handshake after STARTTLS with SNI b.example (%s)", err);
	T_EQ_INT(io_is_tls(io), 1, "io_is_tls");
	T_OK(strncmp(io_tls_info(io, info, sizeof(info)), "TLSv1.3 ", 8) == 0,
	    "io_tls_info (%s)", info);
	io_puts(io, "EHLO client\r\n");
	io_flush(io, 5000);
	r = io_getline(io, line, sizeof(line), 5000, NULL);
	T_OK(r > 0 && strstr(line, "SNI=b.example ") != NULL,
	    "SNI honoured after STARTTLS (%s)", line);
	T_OK(r > 0 && strstr(line, "FIRST=EHLO client") != NULL,
	    "plaintext pipelined before the handshake was discarded (%s)", line);

	/* io over TLS: a large echo, lines split over records. */
	{
		char	 big[60001];
		int	 i, ok = 1;

		memset(big, 'z', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		/* One line at a time: the server echoes while we write. */
		for (i = 0; i < 20 && ok; i++) {
			static char got[70000];

			big[0] = (char)('a' + i);
			if (io_puts(io, big) == -1 || io_puts(io, "\r\n") == -1 ||
			    io_flush(io, 5000) == -1)
				ok = 0;
			r = io_getline(io, got, sizeof(got), 5000, NULL);
			if (r != 60000 || got[0] != (char)('a' + i))
				ok = 0;
		}
		T_OK(ok, "1.2 MB of 60 KB lines echoed over TLS");
		io_puts(io, "one\r\ntwo\r\n");
		io_flush(io, 5000);
		r = io_getline(io, line, sizeof(line), 5000, NULL);
		T_OK(r == 3 && strcmp(line, "one") == 0, "short line after them");
		T_OK(io_pending(io) > 0, "the next line is pending (%zu)",
		    io_pending(io));
		T_EQ_INT(io_has_line(io), 1, "io_has_line over TLS");
		r = io_getline(io, line, sizeof(line), 5000, NULL);
		T_OK(r == 3 && strcmp(line, "two") == 0, "and reads");
		errno = 0;
		r = io_getline(io, line, sizeof(line), 200, NULL);
		T_OK(r == -1 && errno == ETIMEDOUT,
		    "a TLS read times out (errno=%d)", errno);
	}
	io_free(io, 1);
	T_EQ_INT(reap(pid), 0, "server saw a clean end");
	tls_ctx_free(cctx);
}

/* A TLS client that stops reading cannot make the server buffer forever. */
static void
test_stalled_reader(struct tls_ctx *s)
{
	struct tls_ctx	*cctx;
	struct io	*io;
	char		 err[256] = "", block[4096];
	int		 sv[2], i, r = 0, go[2];
	long		 t0;
	pid_t		 pid;

	cctx = tls_client_new(NULL, 0, err, sizeof(err));
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	if (pipe(go) == -1)
		return;
	pid = fork();
	if (pid == 0) {
		struct tls_conn *c;
		char x;

		close(go[1]);
		c = tls_connect(cctx, sv[1], "localhost", 5000, err, sizeof(err));
		/* Never read; wait for the parent to say so. */
		if (read(go[0], &x, 1) < 0)
			_exit(2);
		tls_close(c);
		_exit(c != NULL ? 0 : 1);
	}
	close(go[0]);
	close(sv[1]);
	io = io_new(sv[0], sv[0]);
	r = io_starttls_server(io, s, 5000, err, sizeof(err));
	T_OK(r == 0, "handshake with a client that will not read (%s)", err);
	io_set_write_timeout(io, 300);
	memset(block, 'w', sizeof(block));
	t0 = ms_now();
	errno = 0;
	for (i = 0; i < 100000 && r == 0; i++)
		r = io_write(io, block, sizeof(block));
	T_OK(r == -1 && errno == ETIMEDOUT,
	    "TLS io_write to a stalled reader: ETIMEDOUT (errno=%d)", errno);
	T_OK(i < 1000, "after bounded buffering (%d KiB)", i * 4);
	T_OK(ms_now() - t0 < 3000, "within the timeout (%ld ms)", ms_now() - t0);
	close(go[1]);
	io_free(io, 1);
	reap(pid);
	tls_ctx_free(cctx);
}

/* The raw API: non-blocking reads, pending bytes, close_notify as EOF. */
static void
test_raw_api(struct tls_ctx *s)
{
	struct tls_ctx	*cctx;
	struct tls_conn	*c;
	char		 err[256] = "", b[64];
	int		 sv[2], go[2];
	long		 n;
	pid_t		 pid;

	cctx = tls_client_new(P("d1/ca.crt"), 1, err, sizeof(err));
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	if (pipe(go) == -1)
		return;
	pid = fork();
	if (pid == 0) {
		char x;

		close(go[1]);
		c = tls_accept(s, sv[1], 5000, err, sizeof(err));
		if (c == NULL)
			_exit(1);
		if (read(go[0], &x, 1) != 1)	/* after the EAGAIN check */
			_exit(2);
		if (tls_write(c, "0123456789", 10) != 10)
			_exit(3);
		tls_close(c);			/* close_notify */
		_exit(0);
	}
	close(go[0]);
	c = tls_connect(cctx, sv[0], "a.example", 5000, err, sizeof(err));
	T_OK(c != NULL, "tls_connect (%s)", err);
	if (c == NULL)
		return;
	T_EQ_STR(tls_servername(c), "a.example", "client's tls_servername");
	T_EQ_INT(tls_session_reused(c), 0, "a new session");
	errno = 0;
	n = tls_read(c, b, sizeof(b));
	T_OK(n == -1 && errno == EAGAIN && tls_want(c) == POLLIN,
	    "nothing to read: -1 EAGAIN, wants POLLIN (n=%ld errno=%d)", n, errno);
	if (write(go[1], "x", 1) != 1)
		T_OK(0, "write");
	{
		struct pollfd pfd = { sv[0], POLLIN, 0 };

		poll(&pfd, 1, 5000);
	}
	do
		n = tls_read(c, b, 3);
	while (n == -1 && errno == EAGAIN);
	T_OK(n == 3 && memcmp(b, "012", 3) == 0, "a short read");
	T_EQ_INT(tls_pending_bytes(c), 7, "the rest is pending inside TLS");
	T_EQ_INT(tls_pending(c), 1, "tls_pending");
	n = tls_read(c, b, sizeof(b));
	T_OK(n == 7 && memcmp(b, "3456789", 7) == 0, "and read without waiting");
	{
		struct pollfd pfd = { sv[0], POLLIN, 0 };

		poll(&pfd, 1, 5000);
	}
	do
		n = tls_read(c, b, sizeof(b));
	while (n == -1 && errno == EAGAIN);
	T_EQ_INT(n, 0, "close_notify reads as EOF (0)");
	T_EQ_STR(tls_error(c), "", "no error recorded");
	tls_close(c);
	close(go[1]);
	close(sv[0]);
	T_EQ_INT(reap(pid), 0, "server side wrote and closed");
	tls_ctx_free(cctx);
}

/* inetd mode under pipes: TLS over a read pipe and a write pipe. */
static void
test_pipes(struct tls_ctx *s)
{
	struct tls_ctx	*cctx;
	struct io	*io;
	char		 err[256] = "", line[256];
	static char	 big[200001];
	int		 a[2], b[2], r;
	long		 n;
	pid_t		 pid;

	cctx = tls_client_new(P("d1/ca.crt"), 1, err, sizeof(err));
	if (pipe(a) == -1 || pipe(b) == -1)
		return;
	memset(big, 'p', sizeof(big) - 1);
	pid = fork();
	if (pid == 0) {
		/* The client: reads a, writes b. */
		close(a[1]);
		close(b[0]);
		io = io_new(a[0], b[1]);
		if (io_starttls_client(io, cctx, "a.example", 5000, err,
		    sizeof(err)) == -1)
			_exit(1);
		if (io_puts(io, big) == -1 || io_puts(io, "\r\n") == -1 ||
		    io_flush(io, 5000) == -1)
			_exit(2);
		n = io_getline(io, line, sizeof(line), 5000, NULL);
		io_free(io, 1);
		_exit(n > 0 && strcmp(line, "got 200000") == 0 ? 0 : 3);
	}
	close(a[0]);
	close(b[1]);
	io = io_new(b[0], a[1]);
	err[0] = '\0';
	r = io_starttls_server(io, s, 5000, err, sizeof(err));
	T_OK(r == 0, "TLS handshake over two pipes (%s)", err);
	{
		static char got[200010];

		n = io_getline(io, got, sizeof(got), 5000, NULL);
		T_EQ_INT(n, 200000, "a 200 KB line over TLS on pipes");
		io_printf(io, "got %ld\r\n", n);
	}
	io_free(io, 1);
	T_EQ_INT(reap(pid), 0, "the pipe client got the answer");
	tls_ctx_free(cctx);
}

static void
test_timeouts(struct tls_ctx *s)
{
	struct tls_ctx	*cctx;
	struct tls_conn	*c;
	char		 err[256] = "";
	int		 sv[2];
	long		 t0;

	/* A peer that says nothing: both sides time out. */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	t0 = ms_now();
	c = tls_accept(s, sv[0], 200, err, sizeof(err));
	T_OK(c == NULL && errno == ETIMEDOUT && strstr(err, "timed out"),
	    "silent client: accept times out (%s)", err);
	T_OK(ms_now() - t0 >= 190 && ms_now() - t0 < 2000,
	    "in about 200 ms (%ld)", ms_now() - t0);
	cctx = tls_client_new(NULL, 0, err, sizeof(err));
	c = tls_connect(cctx, sv[0], "localhost", 200, err, sizeof(err));
	T_OK(c == NULL && errno == ETIMEDOUT, "silent server: connect times out "
	    "(%s)", err);
	close(sv[1]);
	c = tls_connect(cctx, sv[0], "localhost", 2000, err, sizeof(err));
	T_OK(c == NULL && strstr(err, "closed by peer") != NULL,
	    "server gone: clear error (%s)", err);
	close(sv[0]);
	/* A plaintext client on a TLS port. */
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	if (write(sv[1], "EHLO x\r\n", 8) != 8)
		T_OK(0, "write");
	c = tls_accept(s, sv[0], 2000, err, sizeof(err));
	T_OK(c == NULL && err[0] != '\0', "plaintext on a TLS port: %s", err);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_free(cctx);
}

/*
 * "tls serve DIR PORTFILE": a tiny server for tests/integration/tls_clients.py
 * with the certificates of make_server() from DIR (made by mkcerts.sh as
 * above). Two loopback listeners, plaintext with STARTTLS and implicit
 * TLS; their ports go to PORTFILE. Commands, one per line: STARTTLS,
 * INFO (SNI and tls_info), ECHO text, QUIT. It exits when stdin closes.
 */
static void
serve_session(struct tls_ctx *s, int fd, int implicit)
{
	struct io	*io;
	char		 line[1024], info[128], err[256] = "";
	const char	*sni;

	io = io_new(fd, fd);
	if (implicit && io_starttls_server(io, s, 5000, err, sizeof(err)) == -1)
		_exit(1);
	io_puts(io, "220 ready\r\n");
	io_flush(io, 5000);
	while (io_getline(io, line, sizeof(line), 10000, NULL) >= 0) {
		if (strcmp(line, "STARTTLS") == 0 && !io_is_tls(io)) {
			io_puts(io, "220 go ahead\r\n");
			if (io_starttls_server(io, s, 5000, err, sizeof(err)) == -1)
				_exit(1);
			continue;
		} else if (strcmp(line, "INFO") == 0) {
			sni = io_tls_servername(io);
			io_printf(io, "250 SNI=%s INFO=%s\r\n", sni ? sni : "-",
			    io_tls_info(io, info, sizeof(info)));
		} else if (strncmp(line, "ECHO ", 5) == 0)
			io_printf(io, "250 %s\r\n", line + 5);
		else if (strcmp(line, "QUIT") == 0) {
			io_puts(io, "221 bye\r\n");
			break;
		} else
			io_puts(io, "500 what\r\n");
		if (io_pending(io) == 0 && io_flush(io, 5000) == -1)
			break;
	}
	io_free(io, 1);
	_exit(0);
}

static int
serve(const char *d, const char *portfile)
{
	struct sockaddr_in	 sin;
	socklen_t		 slen;
	struct pollfd		 pfd[3];
	struct tls_ctx		*s;
	FILE			*f;
	int			 ls[2], i, fd;

	snprintf(dir, sizeof(dir), "%s", d);
	signal(SIGCHLD, SIG_IGN);
	s = make_server();
	for (i = 0; i < 2; i++) {
		ls[i] = socket(AF_INET, SOCK_STREAM, 0);
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		slen = sizeof(sin);
		if (bind(ls[i], (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
		    listen(ls[i], 16) == -1 ||
		    getsockname(ls[i], (struct sockaddr *)&sin, &slen) == -1)
			return 1;
		pfd[i].fd = ls[i];
		pfd[i].events = POLLIN;
		if ((f = fopen(portfile, i == 0 ? "w" : "a")) == NULL)
			return 1;
		fprintf(f, "%d%s", ntohs(sin.sin_port), i == 0 ? " " : "\n");
		fclose(f);
	}
	pfd[2].fd = 0;
	pfd[2].events = POLLIN;
	for (;;) {
		if (poll(pfd, 3, -1) == -1)
			continue;
		if (pfd[2].revents)
			return 0;
		for (i = 0; i < 2; i++) {
			if (!pfd[i].revents)
				continue;
			if ((fd = accept(ls[i], NULL, NULL)) == -1)
				continue;
			if (fork() == 0) {
				close(ls[0]);
				close(ls[1]);
				serve_session(s, fd, i == 1);
			}
			close(fd);
		}
	}
}

int
main(int argc, char **argv)
{
	struct tls_ctx	*s;

	if (argc == 4 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], argv[3]);

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);	/* the raw OpenSSL client needs it */
	snprintf(dir, sizeof(dir), "/tmp/courriel-tls.XXXXXX");
	if (mkdtemp(dir) == NULL || mkcerts() == -1) {
		T_OK(0, "mkcerts.sh");
		return t_done();
	}
	s = make_server();
	test_sni(s);
	test_verify(s);
	test_protocols(s);
	test_keys();
	test_starttls(s);
	test_stalled_reader(s);
	test_raw_api(s);
	test_pipes(s);
	test_timeouts(s);
	tls_ctx_free(s);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (getenv("KEEP") == NULL && system(cmd) != 0)
			T_OK(0, "cleanup");
	}
	return t_done();
}
