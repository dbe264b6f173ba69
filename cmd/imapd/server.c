/*
 * server.c -- listeners, one process tree per connection, and the
 * privilege separation.
 *
 * Started as root, each connection gets a monitor (a fork of the daemon,
 * still root; with prefork = N, N of them are kept forked ahead, and each
 * gets its connection over a socketpair, SCM_RIGHTS, so that no client
 * waits for fork()) that forks the pre-auth child: unprivileged (user= in the
 * config), it speaks the protocol and TLS, and asks the monitor to check
 * credentials over a socketpair with fixed frames (struct authframe, one
 * int32 answer, then the hand-off mode). After a successful check the
 * monitor itself becomes the session: it frees and wipes the TLS
 * contexts, tables, secrets, configuration text and environment, becomes
 * the mail user for good (no new privileges, not dumpable) and serves the
 * mailbox. Without TLS it takes the client socket and the pre-auth child
 * exits; with TLS the pre-auth child stays as a plain TLS <-> socketpair
 * proxy, so the session never holds TLS state.
 * Started as a normal user, one process serves the connection from the
 * greeting to LOGOUT, as that user.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <netdb.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "imapd.h"
#include "io.h"
#include "log.h"
#include "priv.h"
#include "table.h"
#include "tls.h"
#include "conf.h"
#include "userdb.h"

static volatile sig_atomic_t got_term, got_chld;
static int limit_fd = -1;	/* to the daemon, which counts users */


/* A connection handed from the daemon to a waiting monitor, and from the
 * monitor to its pre-login child: the socket travels as SCM_RIGHTS. */
struct conn_msg {
	int32_t	tls;
	char	peer[64];
};

static int
send_conn(int sock, int fd, const struct conn_msg *m)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr	*c;

	memset(&msg, 0, sizeof(msg));
	memset(&cm, 0, sizeof(cm));
	iov.iov_base = (void *)m;
	iov.iov_len = sizeof(*m);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == (ssize_t)sizeof(*m) ? 0 : -1;
}

static int
recv_conn(int sock, int *fd, struct conn_msg *m)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr	*c;
	ssize_t		 n;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = m;
	iov.iov_len = sizeof(*m);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cm.buf;
	msg.msg_controllen = sizeof(cm.buf);
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(*m) || (c = CMSG_FIRSTHDR(&msg)) == NULL ||
	    c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(fd, CMSG_DATA(c), sizeof(int));
	m->peer[sizeof(m->peer) - 1] = '\0';
	return 0;
}

/*
 * Asks the daemon whether user may have one more connection (it counts
 * the logged-in users of all its children). 1 yes, 0 no. Without a
 * daemon (inetd mode) there is no limit.
 */
int
user_limit_ok(const char *user)
{
	char	frame[256], ok = 0;

	if (limit_fd < 0)
		return 1;
	memset(frame, 0, sizeof(frame));
	str_lcpy(frame, user, sizeof(frame));
	if (write(limit_fd, frame, sizeof(frame)) != (ssize_t)sizeof(frame) ||
	    read(limit_fd, &ok, 1) != 1)
		return 1;	/* the daemon is gone: do not lock users out */
	return ok == 1;
}

static void
on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_chld = 1;
	else
		got_term = 1;
}

/* "addr:port", "[v6]:port", "*:port" or "port". */
static int
open_listener(const char *spec, char *err, size_t errlen)
{
	char		 host[256], *port;
	struct addrinfo	 hints, *res, *ai;
	int		 fd = -1, one = 1, e;

	if (str_lcpy(host, spec, sizeof(host)) >= sizeof(host))
		return -1;
	if (host[0] == '[') {
		char *rb = strchr(host, ']');

		if (rb == NULL || rb[1] != ':') {
			str_fmt(err, errlen, "%s: expected [address]:port", spec);
			return -1;
		}
		*rb = '\0';
		port = rb + 2;
		memmove(host, host + 1, strlen(host));
	} else if ((port = strrchr(host, ':')) != NULL) {
		*port++ = '\0';
	} else {
		port = host;
		memmove(host + 2, host, strlen(host) + 1);
		port = host + 2;
		host[0] = '*';
		host[1] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	if ((e = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints,
	    &res)) != 0) {
		str_fmt(err, errlen, "%s: %s", spec, gai_strerror(e));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 512) == 0)
			break;
		str_fmt(err, errlen, "%s: %s", spec, strerror(errno));
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void
peer_name(int fd, char *out, size_t outlen)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	str_lcpy(out, "local", outlen);
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == -1)
		return;
	getnameinfo((struct sockaddr *)&ss, len, out, (socklen_t)outlen, NULL, 0,
	    NI_NUMERICHOST);
}

/*
 * Copies bytes both ways. When the client stops sending, the session is
 * told (shutdown) and its last answers still go out; it ends when the
 * session closes its side.
 */
static void
proxy(struct io *io, int fd)
{
	char		buf[16384];
	struct pollfd	pfd[2];
	long		n;
	int		client_open = 1;

	for (;;) {
		if (!client_open || io_pending(io) == 0) {
			pfd[0].fd = client_open ? io_fd(io) : -1;
			pfd[0].events = POLLIN;
			pfd[0].revents = 0;
			pfd[1].fd = fd;
			pfd[1].events = POLLIN;
			pfd[1].revents = 0;
			if (poll(pfd, 2, -1) == -1) {
				if (errno == EINTR)
					continue;
				return;
			}
			if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t k = read(fd, buf, sizeof(buf));

				if (k <= 0)
					return;
				if (io_write(io, buf, (size_t)k) == -1 ||
				    io_flush(io, 120000) == -1)
					return;
			}
			if (!client_open ||
			    !(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
		}
		n = io_read_some(io, buf, sizeof(buf), 100);
		if (n == -1) {
			if (errno == ETIMEDOUT)
				continue;
			client_open = 0;
			shutdown(fd, SHUT_WR);
			continue;
		}
		for (long off = 0; off < n;) {
			ssize_t k = write(fd, buf + off, (size_t)(n - off));

			if (k <= 0)
				return;
			off += k;
		}
	}
}

static void
session_init(struct session *s, struct settings *cfg, struct io *io)
{
	memset(s, 0, sizeof(*s));
	s->cfg = cfg;
	s->io = io;
	s->mb.inotify = -1;
	buf_init(&s->out, 0);
	buf_init(&s->cache, 0);
	buf_init(&s->cmd, cfg->max_line * 4 + cfg->max_literals + 65536);
}

/* The session after login, in this process. */
static int
run_session(struct settings *cfg, struct io *io, const char *user,
    const char *maildir, int tls)
{
	struct session	s;

	session_init(&s, cfg, io);
	s.tls = tls;
	s.state = S_AUTH;
	umask(077);
	str_lcpy(s.user, user, sizeof(s.user));
	str_lcpy(s.root, maildir, sizeof(s.root));
	if (folders_autocreate(&s) == -1) {
		io_puts(io, "* BYE [SERVERBUG] Cannot open the mailbox\r\n");
		io_flush(io, 1000);
		return -1;
	}
	return session_run(&s);
}

static int
lookup_user(struct settings *cfg, const char *name, struct user *u)
{
	char	err[512];
	int	r = userdb_lookup(cfg->userdb, name, u, err, sizeof(err));

	if (r == -1)
		log_warnx("user %s: %s", name, err);
	else if (r == 0)
		log_warnx("user %s: authenticated but unknown to [users]", name);
	return r;
}

/*
 * Before the monitor runs as the mail user it frees and wipes what it
 * must not keep: the TLS contexts (OpenSSL clears key material when it
 * frees it), the password tables, the static password, the configuration
 * text and the environment (which may carry IMAP_PASSWD). The pre-login
 * process does the same but keeps the TLS contexts it needs.
 */
static void
forget_secrets(struct settings *cfg, int keep_tls)
{
	extern char	**environ;

	if (cfg->tls != NULL && !keep_tls) {
		tls_ctx_free(cfg->tls);
		cfg->tls = NULL;
	}
	if (cfg->passwd != NULL)
		table_close(cfg->passwd);
	cfg->passwd = NULL;
	if (cfg->static_users != NULL)
		table_close(cfg->static_users);
	cfg->static_users = NULL;
	if (cfg->static_password != NULL) {
		explicit_bzero(cfg->static_password, strlen(cfg->static_password));
		free(cfg->static_password);
	}
	cfg->static_password = NULL;
	if (cfg->conf != NULL) {
		struct conf *c = cfg->conf;

		for (size_t i = 0; i < c->nsections; i++)
			for (size_t j = 0; j < c->sections[i].nentries; j++) {
				char *v = c->sections[i].entries[j].value;

				explicit_bzero(v, strlen(v));
			}
	}
	cfg->nlisten = cfg->nlisten_tls = 0;
	if (limit_fd >= 0)
		close(limit_fd);
	limit_fd = -1;
	for (char **e = environ; e != NULL && *e != NULL; e++)
		explicit_bzero(*e, strlen(*e));
	clearenv();
}

/* Root: the monitor of one connection. Never returns. */
static void
monitor(struct settings *cfg, int rfd, int wfd, int implicit_tls,
    const char *peer, int waitfd)
{
	int		 ctl[2], data[2], status;
	pid_t		 pre;
	struct authframe f;
	struct user	 u;
	ssize_t		 n;
	int32_t		 mode = HANDOFF_PROXY;
	struct conn_msg	 cm;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) == -1 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, data) == -1)
		fatal("socketpair");
	if ((pre = fork()) == -1)
		fatal("fork");
	if (pre == 0) {
		struct session	s;
		struct io	*io;
		char		 err[256];

		log_pid();
		close(ctl[0]);
		close(data[1]);
		/* It needs the TLS keys; the passwords stay with the monitor. */
		forget_secrets(cfg, 1);
		if (priv_drop(cfg->unpriv_uid, cfg->unpriv_gid, err,
		    sizeof(err)) == -1)
			fatalx("pre-auth: %s", err);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		if (waitfd >= 0) {
			/* A spare: the connection comes later, through ctl. */
			if (recv_conn(ctl[1], &rfd, &cm) == -1)
				_exit(0);
			wfd = rfd;
			implicit_tls = cm.tls;
			peer = cm.peer;
		}
		if ((io = io_new(rfd, wfd)) == NULL)
			fatal("io_new");
		if (implicit_tls && io_starttls_server(io, cfg->tls, 30000, err,
		    sizeof(err)) == -1) {
			log_info("tls handshake from %s: %s", peer, err);
			_exit(0);
		}
		memset(&s, 0, sizeof(s));
		if (preauth_run(cfg, io, implicit_tls, ctl[1], &s) == 1) {
			/* Without TLS and with nothing read ahead, the session
			 * takes the socket itself; else this is its proxy. */
			int32_t how = !s.tls && io_pending(io) == 0 ?
			    HANDOFF_DIRECT : HANDOFF_PROXY;

			if (write(ctl[1], &how, sizeof(how)) != sizeof(how))
				_exit(1);
			close(ctl[1]);
			if (how == HANDOFF_DIRECT)
				_exit(0);
			proxy(io, data[0]);
		}
		io_free(io, 1);
		_exit(0);
	}
	close(ctl[1]);
	close(data[0]);
	if (waitfd >= 0) {
		/* A spare monitor: wait for the daemon's connection, pass it
		 * on to the pre-login child, keep it for a direct hand-off. */
		if (recv_conn(waitfd, &rfd, &cm) == -1 ||
		    send_conn(ctl[0], rfd, &cm) == -1)
			_exit(0);
		wfd = rfd;
		peer = cm.peer;
	}
	for (;;) {
		int32_t res;

		n = read(ctl[0], &f, sizeof(f));
		if (n == 0)
			break;
		if (n != (ssize_t)sizeof(f) || f.magic != AUTHFRAME_MAGIC)
			fatalx("pre-auth child sent a malformed frame");
		f.user[sizeof(f.user) - 1] = '\0';
		f.pass[sizeof(f.pass) - 1] = '\0';
		res = auth_check(cfg, f.user, f.pass);
		explicit_bzero(f.pass, sizeof(f.pass));
		if (res == 1 && !user_limit_ok(f.user)) {
			log_warnx("login user=%s from=%s: too many connections",
			    f.user, peer);
			res = 2;
		}
		if (res == 1 && lookup_user(cfg, f.user, &u) != 1)
			res = -1;
		if (res != 1 && res != 2 && cfg->failure_delay_ms > 0) {
			struct timespec ts = { cfg->failure_delay_ms / 1000,
			    (cfg->failure_delay_ms % 1000) * 1000000 };

			nanosleep(&ts, NULL);
		}
		if (res == 1)
			log_info("login user=%s from=%s", f.user, peer);
		if (write(ctl[0], &res, sizeof(res)) != (ssize_t)sizeof(res))
			break;
		if (res == 1)
			break;
	}
	if (n > 0 && (read(ctl[0], &mode, sizeof(mode)) != sizeof(mode) ||
	    (mode != HANDOFF_DIRECT && mode != HANDOFF_PROXY)))
		n = 0;
	if (n > 0) {
		/* The monitor becomes the session: one process per
		 * connection after login (two with TLS, the proxy). */
		struct io *io;
		char err[256];
		int in = mode == HANDOFF_DIRECT ? rfd : data[1];
		int out = mode == HANDOFF_DIRECT ? wfd : data[1];

		close(ctl[0]);
		if (mode == HANDOFF_DIRECT)
			close(data[1]);
		else {
			close(rfd);
			if (wfd != rfd)
				close(wfd);
		}
		forget_secrets(cfg, 0);
		if (priv_drop(u.uid, u.gid, err, sizeof(err)) == -1)
			fatalx("session for %s: %s", f.user, err);
		/* No new privileges, no core dumps, no ptrace by other
		 * processes of the mail user. */
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		if ((io = io_new(in, out)) == NULL)
			fatal("io_new");
		run_session(cfg, io, f.user, u.maildir, mode != HANDOFF_DIRECT);
		io_free(io, 1);
		while (waitpid(pre, &status, 0) == -1 && errno == EINTR)
			;
		_exit(0);
	}
	close(ctl[0]);
	close(data[1]);
	close(rfd);
	if (wfd != rfd)
		close(wfd);
	while (waitpid(-1, &status, 0) > 0 || errno == EINTR)
		;
	_exit(0);
}

int
serve_connection(struct settings *cfg, int rfd, int wfd, int implicit_tls,
    const char *peer)
{
	struct session	 s;
	struct io	*io;
	struct user	 u;
	char		 err[256];

	if (priv_is_root() && cfg->unpriv_user != NULL)
		monitor(cfg, rfd, wfd, implicit_tls, peer, -1);
	if ((io = io_new(rfd, wfd)) == NULL)
		return -1;
	if (implicit_tls && io_starttls_server(io, cfg->tls, 30000, err,
	    sizeof(err)) == -1) {
		log_info("tls handshake from %s: %s", peer, err);
		io_free(io, 1);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	if (preauth_run(cfg, io, implicit_tls, -1, &s) == 1) {
		if (lookup_user(cfg, s.user, &u) == 1) {
			log_info("login user=%s from=%s", s.user, peer);
			run_session(cfg, io, s.user, u.maildir, s.tls);
		} else {
			io_puts(io, "* BYE [UNAVAILABLE] Unknown user\r\n");
			io_flush(io, 1000);
		}
	}
	buf_free(&s.out);
	buf_free(&s.cache);
	io_free(io, 1);
	return 0;
}

struct child {
	pid_t	pid;
	int	idle;		/* a spare waiting for a connection */
	int	fd;		/* connections to it, user-limit questions
				   from it; or -1 */
	char	peer[64];
	char	user[256];	/* once logged in */
};

/* Answers a child's question: may this user log in once more? */
static void
limit_answer(struct settings *cfg, struct child *kids, size_t nkids, size_t k)
{
	char	frame[256], ok;
	ssize_t	n;
	long	same = 0;

	n = read(kids[k].fd, frame, sizeof(frame));
	if (n != (ssize_t)sizeof(frame)) {
		close(kids[k].fd);
		kids[k].fd = -1;
		return;
	}
	frame[sizeof(frame) - 1] = '\0';
	for (size_t i = 0; i < nkids; i++)
		if (i != k && kids[i].pid > 0 && strcmp(kids[i].user, frame) == 0)
			same++;
	ok = same < cfg->max_per_user;
	if (ok)
		str_lcpy(kids[k].user, frame, sizeof(kids[k].user));
	if (write(kids[k].fd, &ok, 1) != 1) {
		close(kids[k].fd);
		kids[k].fd = -1;
	}
}

static long
count_busy(struct child *c, size_t n)
{
	long	k = 0;

	for (size_t i = 0; i < n; i++)
		if (c[i].pid > 0 && !c[i].idle)
			k++;
	return k;
}

static int
count_peer(struct child *c, size_t n, const char *peer)
{
	int	k = 0;

	for (size_t i = 0; i < n; i++)
		if (c[i].pid > 0 && strcmp(c[i].peer, peer) == 0)
			k++;
	return k;
}

/*
 * Forks a spare: a monitor (with its pre-login child) that waits for the
 * daemon to hand it a connection over a socketpair, so that a client
 * does not wait for fork(). Returns its slot, or nkids on failure.
 */
static size_t
spawn_spare(struct settings *cfg, struct pollfd *pfd, int nfd,
    struct child *kids, size_t nkids, size_t *live)
{
	int	lim[2];
	pid_t	pid;
	size_t	slot;

	for (slot = 0; slot < nkids && kids[slot].pid != 0; slot++)
		;
	if (slot == nkids)
		return nkids;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, lim) == -1) {
		log_warn("socketpair");
		return nkids;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(lim[0]);
		close(lim[1]);
		return nkids;
	}
	if (pid == 0) {
		struct conn_msg cm;
		int fd;

		log_pid();
		for (int k = 0; k < nfd; k++)
			close(pfd[k].fd);
		for (size_t k = 0; k < nkids; k++)
			if (kids[k].fd >= 0)
				close(kids[k].fd);
		close(lim[0]);
		limit_fd = lim[1];
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		if (priv_is_root() && cfg->unpriv_user != NULL)
			monitor(cfg, -1, -1, 0, "", limit_fd);
		if (recv_conn(limit_fd, &fd, &cm) == -1)
			_exit(0);
		serve_connection(cfg, fd, fd, cm.tls, cm.peer);
		_exit(0);
	}
	close(lim[1]);
	kids[slot].pid = pid;
	kids[slot].fd = lim[0];
	kids[slot].idle = 1;
	kids[slot].user[0] = '\0';
	kids[slot].peer[0] = '\0';
	(*live)++;
	return slot;
}

int
server_run(struct settings *cfg)
{
	struct pollfd	 pfd[2 * IMAPD_MAX_LISTEN], *pall;
	size_t		*pkid;
	int		 tlsflag[2 * IMAPD_MAX_LISTEN];
	int		 nfd = 0, i;
	struct child	*kids;
	size_t		 nkids, live = 0;
	char		 err[512];
	struct sigaction sa;

	{
		/* One socketpair end per connection stays here. */
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur != RLIM_INFINITY &&
		    (rlim_t)cfg->max_connections + 64 > rl.rlim_cur) {
			cfg->max_connections = (long)rl.rlim_cur - 64;
			log_warnx("max_connections lowered to %ld (open files limit)",
			    cfg->max_connections);
		}
		if (cfg->max_connections < 1)
			cfg->max_connections = 1;
		nkids = (size_t)cfg->max_connections + (size_t)cfg->prefork;
	}
	for (i = 0; i < cfg->nlisten + cfg->nlisten_tls; i++) {
		int t = i >= cfg->nlisten;
		const char *spec = t ? cfg->listen_tls[i - cfg->nlisten] :
		    cfg->listen[i];

		if ((pfd[nfd].fd = open_listener(spec, err, sizeof(err))) == -1)
			fatalx("listen %s", err);
		pfd[nfd].events = POLLIN;
		tlsflag[nfd++] = t;
	}
	if ((kids = calloc(nkids, sizeof(*kids))) == NULL ||
	    (pall = calloc(nkids + (size_t)nfd, sizeof(*pall))) == NULL ||
	    (pkid = calloc(nkids + (size_t)nfd, sizeof(*pkid))) == NULL)
		fatal("calloc");
	for (size_t k = 0; k < nkids; k++)
		kids[k].fd = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_info("listening: %d plain, %d TLS; %s", cfg->nlisten, cfg->nlisten_tls,
	    priv_is_root() ? "privilege separation on" : "running as one user");
	while (!got_term) {
		pid_t pid;
		int st;

		size_t np = 0;

		while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
			for (size_t k = 0; k < nkids; k++)
				if (kids[k].pid == pid) {
					kids[k].pid = 0;
					kids[k].idle = 0;
					if (kids[k].fd >= 0)
						close(kids[k].fd);
					kids[k].fd = -1;
					kids[k].user[0] = '\0';
					live--;
				}
		got_chld = 0;
		/* Spares for the next connections, made off their path. */
		{
			size_t idle = 0;

			for (size_t k = 0; k < nkids; k++)
				idle += kids[k].pid > 0 && kids[k].idle;
			while (idle < (size_t)cfg->prefork && live < nkids &&
			    spawn_spare(cfg, pfd, nfd, kids, nkids, &live) < nkids)
				idle++;
		}
		for (i = 0; i < nfd; i++)
			pall[np++] = pfd[i];
		for (size_t k = 0; k < nkids; k++)
			if (kids[k].pid > 0 && kids[k].fd >= 0) {
				pall[np].fd = kids[k].fd;
				pall[np].events = POLLIN;
				pall[np].revents = 0;
				pkid[np++] = k;
			}
		if (poll(pall, (nfds_t)np, 1000) <= 0)
			continue;
		for (size_t q = (size_t)nfd; q < np; q++)
			if (pall[q].revents & (POLLIN | POLLHUP | POLLERR))
				limit_answer(cfg, kids, nkids, pkid[q]);
		for (i = 0; i < nfd; i++) {
			struct conn_msg cm;
			char peer[64];
			int fd;
			size_t slot;

			pfd[i].revents = pall[i].revents;

			if (!(pfd[i].revents & POLLIN))
				continue;
			if ((fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC)) == -1)
				continue;
			/* Responses go out in one write each; without this,
			 * Nagle and delayed ACKs add 40 ms to many of them. */
			{
				int one = 1;

				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				    sizeof(one));
			}
			peer_name(fd, peer, sizeof(peer));
			if (count_busy(kids, nkids) >= cfg->max_connections) {
				log_warnx("refusing %s: %ld connections", peer,
				    cfg->max_connections);
				dprintf(fd, "* BYE Too many connections\r\n");
				close(fd);
				continue;
			}
			if (count_peer(kids, nkids, peer) >= cfg->max_per_address) {
				log_warnx("refusing %s: too many connections from it",
				    peer);
				dprintf(fd, "* BYE Too many connections from your "
				    "address\r\n");
				close(fd);
				continue;
			}
			/* A waiting spare takes it; else one is made now. */
			slot = nkids;
			for (size_t k = 0; k < nkids; k++)
				if (kids[k].pid > 0 && kids[k].idle && kids[k].fd >= 0) {
					slot = k;
					break;
				}
			if (slot == nkids && (slot = spawn_spare(cfg, pfd, nfd, kids,
			    nkids, &live)) == nkids) {
				close(fd);
				continue;
			}
			memset(&cm, 0, sizeof(cm));
			cm.tls = tlsflag[i];
			str_lcpy(cm.peer, peer, sizeof(cm.peer));
			if (send_conn(kids[slot].fd, fd, &cm) == -1) {
				log_warn("handing a connection to %ld",
				    (long)kids[slot].pid);
				kill(kids[slot].pid, SIGTERM);
				kids[slot].idle = 0;
				close(fd);
				continue;
			}
			close(fd);
			kids[slot].idle = 0;
			str_lcpy(kids[slot].peer, peer, sizeof(kids[slot].peer));
		}
	}
	log_info("terminating");
	for (size_t k = 0; k < nkids; k++)
		if (kids[k].pid > 0)
			kill(kids[k].pid, SIGTERM);
	free(kids);
	free(pall);
	free(pkid);
	return 0;
}
