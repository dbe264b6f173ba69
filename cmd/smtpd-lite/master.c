/*
 * master -- the privileged process: it binds the listeners, accepts,
 * forks one session process per connection (which drops to the
 * unprivileged user at once), enforces the session limits, and moves
 * messages the sessions finished from queue/incoming into queue/msg,
 * fsyncing that directory (once for all commits that arrived together)
 * before it lets the sessions say 250. It starts the queue runner and
 * tells it about each new message.
 *
 * AUTH is checked here, not in the session (which holds no password
 * hash: see wipe.c): the session sends user and password in a
 * CTL_AUTH frame, and the master forks a short-lived checker, which
 * still has the tables (a fork of the master, after the table was
 * refreshed), runs passwd_check, wipes and exits with the verdict as its
 * status. A fork per check rather than one auth process: the check
 * always sees the tables the master just refreshed, a crypt that crashes
 * or hangs takes nothing else down, and AUTH is once per session. The
 * master never runs crypt (tens of ms for yescrypt or bcrypt, while it
 * accepts and commits for everyone): at most AUTH_CHECKERS checkers run,
 * further requests wait their turn (at most AUTH_WAIT_MAX seconds, then
 * 454), a checker is killed after AUTH_CHECK_TIMEOUT seconds (454).
 */
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "passwd.h"
#include "priv.h"
#include "smtpd.h"
#include "table.h"

#define AUTH_CHECKERS		8	/* crypt runs at once, at most */
#define AUTH_CHECK_TIMEOUT	10	/* s, then the checker is killed */
#define AUTH_WAIT_MAX		20	/* s waiting for a free checker */

_Static_assert(CTL_AUTH_PASS == PASSWD_MAXLEN + 1, "ctl_auth pass size");

/* A session's AUTH request; the password only until a checker has it. */
struct authreq {
	char		 user[CTL_AUTH_USER];
	char		 pass[CTL_AUTH_PASS];
	unsigned long	 seq;		/* first come, first served */
	time_t		 since;		/* monotonic */
	pid_t		 checker;	/* 0: waiting */
};

struct child {
	pid_t		 pid;
	int		 ctl;
	char		 addr[64];	/* its client's; "" when idle */
	const struct listener *l;
	struct authreq	*auth;		/* in flight, or NULL */
	int		 busy;		/* serving a connection */
	int		 dying;		/* told to end (SIGTERM) */
	unsigned long	 gen;		/* the tables it was forked with */
	time_t		 idle_since;	/* monotonic */
};

/*
 * A session process serves up to session_reuse connections, one after
 * the other (as Postfix's smtpd does; a fork and an exit per connection
 * cost more than the rest of a short session on a small machine). Idle
 * ones wait in a pool for the next connection, SESSION_IDLE_MAX at
 * most, SESSION_IDLE_SECS at most; one forked before the tables changed
 * is not used again.
 */
#define SESSION_IDLE_MAX	64
#define SESSION_IDLE_SECS	30

/* Checkers running; kid is the session's pid (it may have gone since). */
static struct {
	pid_t	 pid;
	pid_t	 kid;
	time_t	 started;
	int	 killed;
} checkers[AUTH_CHECKERS];
static size_t		 nchecking, nwaiting;
static unsigned long	 auth_seq;

static time_t		 mono(void);
static struct child	*kids;
static size_t		 nkids, maxkids;
static int		 sigpipe[2] = { -1, -1 };
static volatile sig_atomic_t quit;
static pid_t		 runner_pid = -1;
static int		 runner_fd = -1;
static struct listener	 submit_l = { .fd = -1 };	/* sendmail's socket */

static void
on_signal(int sig)
{
	int	 e = errno;
	char	 c = (char)sig;

	if (sig == SIGTERM || sig == SIGINT)
		quit = 1;
	(void)!write(sigpipe[1], &c, 1);
	errno = e;
}

static void
set_signals(void)
{
	struct sigaction	 sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);	/* mailctl: log verbose, trace smtp */
	sigaction(SIGUSR2, &sa, NULL);	/* mailctl: log brief */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void
mkdir_mode(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	if (mkdir(path, mode) == -1 && errno != EEXIST)
		fatal("queue: mkdir %s", path);
	if (chmod(path, mode) == -1)
		fatal("queue: chmod %s", path);
	if (priv_is_root() && chown(path, uid, gid) == -1)
		fatal("queue: chown %s", path);
}

/* queue/ reachable by sessions; incoming/ writable, not readable, by them. */
static void queue_lock(const struct config *);
#define QUEUE_LOCK_WAIT	30	/* seconds a new daemon waits for the old one */

static void
queue_setup(const struct config *cf, int daemon)
{
	char		 path[4096];
	DIR		*d;
	struct dirent	*de;

	mkdir_mode(cf->queue, cf->dropping ? 0711 : 0700, geteuid(), getegid());
	str_fmt(path, sizeof(path), "%s/incoming", cf->queue);
	mkdir_mode(path, cf->dropping ? 01733 : 0700, geteuid(), getegid());
	if (!daemon)
		goto msg;	/* -i: a running daemon may own incoming/ */
	queue_lock(cf);
	/* nothing in incoming/ was acknowledged: a session died there */
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL)
			if (de->d_name[0] != '.')
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
msg:
	str_fmt(path, sizeof(path), "%s/msg", cf->queue);
	mkdir_mode(path, 0700, geteuid(), getegid());
}

/*
 * One daemon per queue: two runners on one queue would deliver each
 * message twice. The lock lives as long as the master and the runner;
 * sessions close it (a session of a master killed with -9 may live on
 * until its client leaves, and must not keep a restarted daemon out),
 * deliveries do not inherit it (close-on-exec). A runner whose master
 * died finishes quickly; a new daemon waits for it a little while.
 */
static int	lock_fd = -1;

static void
queue_lock(const struct config *cf)
{
	char	 path[4096];
	int	 i;

	str_fmt(path, sizeof(path), "%s/lock", cf->queue);
	if ((lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		fatal("queue: %s", path);
	for (i = 0; flock(lock_fd, LOCK_EX | LOCK_NB) == -1; i++) {
		if (errno != EWOULDBLOCK || i == QUEUE_LOCK_WAIT * 10)
			fatalx("queue %s is in use by another smtpd-lite",
			    cf->queue);
		if (i == 0)
			log_info("queue %s: waiting for the previous "
			    "smtpd-lite to let go", cf->queue);
		usleep(100000);
	}
}

/*
 * A unix socket for mailctl (mode 0600: the daemon's owner) or for
 * sendmail (0666: any local user, as sendmail(8) is). The queue lock is
 * held, so a stale socket left by a dead daemon can go.
 */
static int
unix_listen(const char *path, mode_t mode)
{
	struct sockaddr_un	 sun;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_lcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		fatalx("socket %s: path too long", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		fatal("socket %s", path);
	if (unlink(path) == -1 && errno != ENOENT)
		fatal("socket %s: unlink", path);
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		umask(old);
		fatal("socket %s: bind", path);
	}
	umask(old);
	if (chmod(path, mode) == -1 || listen(fd, 128) == -1)
		fatal("socket %s", path);
	log_info("listening socket=%s mode=%03o", path, (unsigned)mode);
	return fd;
}

static void
bind_local(struct config *cf)
{
	if (cf->control[0] != '\0')
		cf->control_fd = unix_listen(cf->control, 0600);
	if (cf->submit[0] != '\0') {
		submit_l.name = "submit";
		submit_l.address = "local";
		submit_l.port = cf->submit;
		submit_l.tls = TLS_NONE;
		submit_l.fd = unix_listen(cf->submit, 0666);
	}
}

static void
bind_listeners(struct config *cf)
{
	struct addrinfo	 hints, *res, *ai;
	struct listener	*l;
	size_t		 i;
	int		 fd, on = 1, e;

	for (i = 0; i < cf->nlisteners; i++) {
		l = &cf->listeners[i];
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
		if ((e = getaddrinfo(l->address, l->port, &hints, &res)) != 0)
			fatalx("listener %s: %s port %s: %s", l->name, l->address,
			    l->port, gai_strerror(e));
		fd = -1;
		for (ai = res; ai != NULL; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
			    SOCK_CLOEXEC, 0);
			if (fd == -1)
				continue;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
			if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
			    listen(fd, 4096) == 0)
				break;
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
		if (fd == -1)
			fatal("listener %s: bind %s port %s", l->name, l->address,
			    l->port);
		l->fd = fd;
		log_info("listening listener=%s address=%s port=%s tls=%s%s%s",
		    l->name, l->address, l->port,
		    (const char *[]){ "none", "starttls", "require",
		    "implicit" }[l->tls], l->lmtp ? " lmtp=yes" : "",
		    l->auth ? " auth=yes" : "");
	}
}

static void
addr_string(const struct sockaddr_storage *ss, socklen_t len, char *buf,
    size_t buflen, int *local)
{
	*local = 0;
	if (ss->ss_family == AF_UNIX || len == 0) {
		str_lcpy(buf, "local", buflen);
		*local = 1;
		return;
	}
	if (getnameinfo((const struct sockaddr *)ss, len, buf, buflen, NULL, 0,
	    NI_NUMERICHOST) != 0)
		str_lcpy(buf, "unknown", buflen);
	if (ss->ss_family == AF_INET)
		*local = (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr)
		    >> 24) == 127;
	else if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a =
		    &((const struct sockaddr_in6 *)ss)->sin6_addr;
		*local = IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) &&
		    a->s6_addr[12] == 127);
	}
}

static void
authreq_free(struct authreq *a)
{
	if (a == NULL)
		return;
	if (a->checker == 0)
		nwaiting--;
	explicit_bzero(a, sizeof(*a));
	free(a);
}

/* In a child: other sessions' AUTH requests are none of its business. */
static void
forget_auth_requests(void)
{
	size_t	 i;

	for (i = 0; i < nkids; i++) {
		authreq_free(kids[i].auth);
		kids[i].auth = NULL;
	}
}

/* A ctl_conn frame and the one descriptor that goes with it. */
union fdmsg {
	struct cmsghdr	 h;
	char		 buf[CMSG_SPACE(sizeof(int))];
};

static void
fdmsg_init(struct msghdr *mh, struct iovec *iov, struct ctl_conn *c,
    union fdmsg *cm)
{
	memset(mh, 0, sizeof(*mh));
	memset(cm, 0, sizeof(*cm));
	iov->iov_base = c;
	iov->iov_len = sizeof(*c);
	mh->msg_iov = iov;
	mh->msg_iovlen = 1;
	mh->msg_control = cm->buf;
	mh->msg_controllen = sizeof(cm->buf);
}

/*
 * In a session process whose connection ended: tells the master it is
 * idle and waits for the next connection (its socket comes with it), or
 * ends when the master says so.
 */
static void
next_connection(struct config *cf, struct session_ctx *ctx)
{
	struct ctl_frame	 f;
	struct ctl_conn		 c;
	struct msghdr		 mh;
	struct iovec		 iov;
	struct cmsghdr		*ch;
	union fdmsg		 cm;
	ssize_t			 n;
	int			 fd;

	memset(&f, 0, sizeof(f));
	f.type = CTL_IDLE;
	if (send(ctx->ctl, &f, sizeof(f), MSG_NOSIGNAL) != (ssize_t)sizeof(f))
		_exit(0);
	for (;;) {
		memset(&c, 0, sizeof(c));
		fdmsg_init(&mh, &iov, &c, &cm);
		if ((n = recvmsg(ctx->ctl, &mh, MSG_CMSG_CLOEXEC)) == -1 &&
		    errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);	/* the master has gone */
		fd = -1;
		for (ch = CMSG_FIRSTHDR(&mh); ch != NULL; ch = CMSG_NXTHDR(&mh, ch))
			if (ch->cmsg_level == SOL_SOCKET &&
			    ch->cmsg_type == SCM_RIGHTS &&
			    ch->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(&fd, CMSG_DATA(ch), sizeof(int));
		if (n == (ssize_t)sizeof(c) && c.type == CTL_CONN && fd != -1 &&
		    !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			break;
		/* a late answer for the last connection: skipped */
		if (fd != -1)
			close(fd);
	}
	if (c.listener < -1 || c.listener >= (int)cf->nlisteners ||
	    c.addrlen > sizeof(c.addr))
		_exit(0);
	ctx->l = c.listener == -1 ? &submit_l : &cf->listeners[c.listener];
	ctx->fd = ctx->rfd = ctx->wfd = fd;
	ctx->addr = c.addr;
	ctx->addrlen = c.addrlen;
	ctx->local = c.local;
	ctx->auth = c.auth;
	c.client[sizeof(c.client) - 1] = '\0';
	str_lcpy(ctx->client, c.client, sizeof(ctx->client));
	log_setverbose(c.verbose);
}

/*
 * In any process the master forks: its own pid in the log lines, none of
 * the master's listening sockets nor its signal pipe, and (but for the
 * runner, which handles its own) the default signal actions.
 */
static void
forked(struct config *cf, int default_signals)
{
	struct sigaction	 sa;
	size_t			 i;

	log_pid();
	if (default_signals) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGCHLD, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
	}
	for (i = 0; i < cf->nlisteners; i++)
		if (cf->listeners[i].fd != -1)
			close(cf->listeners[i].fd);
	close(sigpipe[0]);
	close(sigpipe[1]);
	if (submit_l.fd != -1)
		close(submit_l.fd);
}

/* In the child: forget the master's descriptors, drop, run the session. */
static void __attribute__((noreturn))
child_session(struct config *cf, struct session_ctx *ctx)
{
	char			 err[256];
	size_t			 i;
	long			 uses;

	forked(cf, 1);
	for (i = 0; i < nkids; i++)
		close(kids[i].ctl);
	if (runner_fd != -1)
		close(runner_fd);
	if (cf->control_fd != -1)
		close(cf->control_fd);
	/* no hash, no relay secret, no other session's password */
	ctx->auth = ctx->l->auth != NULL;
	forget_auth_requests();
	config_wipe_secrets(cf);
	if (priv_drop(cf->uid, cf->gid, err, sizeof(err)) == -1)
		fatalx("session: %s", err);
	for (uses = 1;; uses++) {
		if (session_run(ctx) != 0 || uses >= cf->session_reuse ||
		    ctx->fd == -1)	/* -i: one connection on stdin */
			_exit(0);
		next_connection(cf, ctx);
	}
}

static void
spawn_runner(struct config *cf)
{
	int	 p[2];

	if (pipe2(p, O_CLOEXEC) == -1)
		fatal("pipe");
	switch ((runner_pid = fork())) {
	case -1:
		fatal("fork");
	case 0:
		forked(cf, 0);
		close(p[1]);
		/* it relays (keeps the secrets) but checks no password */
		forget_auth_requests();
		config_wipe_auth(cf);
		runner_run(cf, p[0]);
	}
	close(p[0]);
	runner_fd = p[1];
	fcntl(runner_fd, F_SETFL, O_NONBLOCK);
}

/* Ends a session process (idle, or to be dropped when it is). */
static void
retire(struct child *k)
{
	k->dying = 1;
	k->busy = 0;
	k->addr[0] = '\0';
	kill(k->pid, SIGTERM);
}

/* Gives the connection fd to the idle session process k: 0, or -1. */
static int
hand_over(struct config *cf, struct child *k, struct listener *l, int fd,
    const struct sockaddr_storage *ss, socklen_t sslen, const char *addr,
    int local)
{
	struct ctl_conn		 c;
	struct msghdr		 mh;
	struct iovec		 iov;
	struct cmsghdr		*ch;
	union fdmsg		 cm;

	memset(&c, 0, sizeof(c));
	c.type = CTL_CONN;
	c.listener = l == &submit_l ? -1 : (int)(l - cf->listeners);
	c.addr = *ss;
	c.addrlen = sslen;
	c.local = local;
	c.auth = l->auth != NULL;
	c.verbose = log_getverbose();
	str_lcpy(c.client, addr, sizeof(c.client));
	fdmsg_init(&mh, &iov, &c, &cm);
	ch = CMSG_FIRSTHDR(&mh);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(ch), &fd, sizeof(int));
	if (sendmsg(k->ctl, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(c))
		return -1;
	k->busy = 1;
	k->l = l;
	str_lcpy(k->addr, addr, sizeof(k->addr));
	return 0;
}

/*
 * Session process k says its connection ended: kept idle for the next
 * one, or ended (too many idle, tables changed since its fork, or an
 * AUTH check of its last connection still running).
 */
static void
kid_idle(struct config *cf, struct child *k)
{
	size_t	 i, nidle = 0;

	if (!k->busy || k->dying)
		return;
	for (i = 0; i < nkids; i++)
		if (!kids[i].busy && !kids[i].dying)
			nidle++;
	if (k->auth != NULL || nidle >= SESSION_IDLE_MAX ||
	    k->gen != config_refresh_tables(cf)) {
		authreq_free(k->auth);
		k->auth = NULL;
		retire(k);
		return;
	}
	k->busy = 0;
	k->addr[0] = '\0';
	k->idle_since = mono();
}

/* Ends the session processes idle for too long; 1 when some stay idle. */
static int
idle_timeouts(void)
{
	time_t	 now = mono();
	size_t	 i;
	int	 left = 0;

	for (i = 0; i < nkids; i++) {
		if (kids[i].busy || kids[i].dying)
			continue;
		if (now - kids[i].idle_since >= SESSION_IDLE_SECS)
			retire(&kids[i]);
		else
			left = 1;
	}
	return left;
}

static int
new_session(struct config *cf, struct listener *l, int fd,
    struct sockaddr_storage *ss, socklen_t sslen)
{
	static struct session_ctx ctx;
	struct child	*k;
	size_t		 i, same = 0, nbusy = 0;
	unsigned long	 gen;
	int		 sp[2], local;
	char		 addr[64];
	pid_t		 pid;
	static const char busy[] = "421 4.7.0 too many sessions, try later\r\n";

	addr_string(ss, sslen, addr, sizeof(addr), &local);
	if (ss->ss_family == AF_UNIX) {
		struct ucred	 uc;
		socklen_t	 ul = sizeof(uc);

		/* sendmail: who is submitting (limits and Received: per uid) */
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul) == 0)
			str_fmt(addr, sizeof(addr), "local uid=%u",
			    (unsigned)uc.uid);
	}
	for (i = 0; i < nkids; i++) {
		if (kids[i].busy && !kids[i].dying)
			nbusy++;
		if (kids[i].busy && strcmp(kids[i].addr, addr) == 0)
			same++;
	}
	if (nbusy >= (size_t)cf->max_sessions ||
	    same >= (size_t)cf->max_per_addr) {
		log_info("session=%s refused: too many sessions (%zu, %zu from it)",
		    addr, nbusy, same);
		(void)!write(fd, busy, sizeof(busy) - 1);
		close(fd);
		return 0;
	}
	if (runner_fd != -1) {
		/* counted by the runner for mailctl show stats */
		static const char rec[ID_LEN] = "SSSSSSSSSSSSSSSSSSSSSSSS";
		(void)!write(runner_fd, rec, ID_LEN);
	}
	gen = config_refresh_tables(cf);
	/* an idle session process, forked since the tables last changed */
	for (i = 0; i < nkids; i++) {
		if (kids[i].busy || kids[i].dying)
			continue;
		if (kids[i].gen == gen && hand_over(cf, &kids[i], l, fd, ss,
		    sslen, addr, local) == 0) {
			close(fd);
			return 0;
		}
		retire(&kids[i]);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("socketpair");
		close(fd);
		return -1;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.cf = cf;
	ctx.l = l;
	ctx.fd = fd;
	ctx.rfd = ctx.wfd = fd;
	ctx.ctl = sp[1];
	ctx.addr = *ss;
	ctx.addrlen = sslen;
	ctx.local = local;
	str_lcpy(ctx.client, addr, sizeof(ctx.client));
	if ((pid = fork()) == -1) {
		log_warn("fork");
		close(fd);
		close(sp[0]);
		close(sp[1]);
		return -1;
	}
	if (pid == 0) {
		close(sp[0]);
		if (lock_fd != -1)
			close(lock_fd);
		child_session(cf, &ctx);
	}
	close(fd);
	close(sp[1]);
	if (nkids == maxkids) {
		maxkids = maxkids ? maxkids * 2 : 64;
		if ((k = reallocarray(kids, maxkids, sizeof(*kids))) == NULL)
			fatal("reallocarray");
		kids = k;
	}
	k = &kids[nkids++];
	memset(k, 0, sizeof(*k));
	k->pid = pid;
	k->ctl = sp[0];
	k->l = l;
	k->auth = NULL;
	k->busy = 1;
	k->gen = gen;
	str_lcpy(k->addr, addr, sizeof(k->addr));
	return 0;
}

static time_t
mono(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static struct child *
kid_by_pid(pid_t pid)
{
	size_t	 i;

	for (i = 0; i < nkids; i++)
		if (kids[i].pid == pid)
			return &kids[i];
	return NULL;
}

/* Never blocks: a session that does not read its replies is killed. */
static void
kid_send(struct child *k, const struct ctl_frame *f)
{
	if (send(k->ctl, f, sizeof(*f), MSG_DONTWAIT | MSG_NOSIGNAL) ==
	    (ssize_t)sizeof(*f) || errno == EPIPE || errno == ECONNRESET)
		return;
	log_warn("session pid %ld: reply not sent, killing it", (long)k->pid);
	kill(k->pid, SIGKILL);
}

static void
auth_answer(struct child *k, unsigned int type)
{
	struct ctl_frame	 f;

	authreq_free(k->auth);
	k->auth = NULL;
	memset(&f, 0, sizeof(f));
	f.type = type;
	kid_send(k, &f);
}

/* The checker: a fork of the master, with its tables; exits 0 ok, 1 no. */
static void __attribute__((noreturn))
checker_run(struct config *cf, struct table *t, struct authreq *a)
{
	int	 r;

	forked(cf, 1);
	if (lock_fd != -1)
		close(lock_fd);
	r = passwd_check(t, a->user, a->pass, 0);
	if (r == -1)
		log_warn("auth check user=%s: table %s", a->user, table_spec(t));
	explicit_bzero(a, sizeof(*a));
	_exit(r == 1 ? 0 : r == 0 ? 1 : 2);
}

/* Starts checkers for the oldest waiting requests while there is room. */
static void
auth_schedule(struct config *cf)
{
	struct authreq	*a;
	struct child	*k;
	size_t		 i, slot;
	pid_t		 pid;

	while (nwaiting > 0 && nchecking < AUTH_CHECKERS) {
		for (k = NULL, i = 0; i < nkids; i++)
			if (kids[i].auth != NULL && kids[i].auth->checker == 0 &&
			    (k == NULL || kids[i].auth->seq < k->auth->seq))
				k = &kids[i];
		if (k == NULL)
			return;
		a = k->auth;
		for (slot = 0; checkers[slot].pid != 0; slot++)
			;
		(void)table_count(k->l->auth);	/* a fresh table for it */
		if ((pid = fork()) == -1) {
			log_warn("auth: fork");
			auth_answer(k, CTL_AUTH_TEMP);
			continue;
		}
		if (pid == 0)
			checker_run(cf, k->l->auth, a);
		explicit_bzero(a->pass, sizeof(a->pass));
		a->checker = pid;
		nwaiting--;
		checkers[slot].pid = pid;
		checkers[slot].kid = k->pid;
		checkers[slot].started = mono();
		checkers[slot].killed = 0;
		nchecking++;
		log_debug("auth check pid %ld for session pid %ld (%zu running, "
		    "%zu waiting)", (long)pid, (long)k->pid, nchecking, nwaiting);
	}
}

/* 1 when pid was a checker: its verdict goes to its session. */
static int
auth_reaped(pid_t pid, int st)
{
	struct child	*k;
	size_t		 slot;
	unsigned int	 type;

	for (slot = 0; slot < AUTH_CHECKERS; slot++)
		if (checkers[slot].pid == pid)
			break;
	if (slot == AUTH_CHECKERS)
		return 0;
	k = kid_by_pid(checkers[slot].kid);
	checkers[slot].pid = 0;
	nchecking--;
	if (k == NULL || k->auth == NULL || k->auth->checker != pid)
		return 1;	/* the session has gone */
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		type = CTL_AUTH_OK;
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 1)
		type = CTL_AUTH_FAIL;
	else {
		if (!WIFEXITED(st))
			log_warnx("auth check for session pid %ld: %s", (long)k->pid,
			    checkers[slot].killed ? "timed out" : "crashed");
		type = CTL_AUTH_TEMP;
	}
	auth_answer(k, type);
	return 1;
}

/* Kills checkers past their time, answers 454 to who waited too long. */
static void
auth_timeouts(void)
{
	time_t	 now = mono();
	size_t	 i;

	for (i = 0; i < AUTH_CHECKERS; i++)
		if (checkers[i].pid != 0 && !checkers[i].killed &&
		    now - checkers[i].started >= AUTH_CHECK_TIMEOUT) {
			kill(checkers[i].pid, SIGKILL);
			checkers[i].killed = 1;
		}
	for (i = 0; i < nkids; i++)
		if (kids[i].auth != NULL && kids[i].auth->checker == 0 &&
		    now - kids[i].auth->since >= AUTH_WAIT_MAX) {
			log_warnx("auth for session pid %ld: no free checker "
			    "in %d s", (long)kids[i].pid, AUTH_WAIT_MAX);
			auth_answer(&kids[i], CTL_AUTH_TEMP);
		}
}

/*
 * A CTL_AUTH frame from session k, checked as hostile: 0, or -1 (the
 * caller kills the session).
 */
static int
auth_request(struct child *k, const struct ctl_auth *m)
{
	struct authreq	*a;

	if (k->auth != NULL || k->l == NULL || k->l->auth == NULL ||
	    m->user[0] == '\0' || memchr(m->user, '\0', sizeof(m->user)) ==
	    NULL || memchr(m->pass, '\0', sizeof(m->pass)) == NULL)
		return -1;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		log_warn("auth: calloc");
		k->auth = NULL;
		auth_answer(k, CTL_AUTH_TEMP);
		return 0;
	}
	memcpy(a->user, m->user, sizeof(a->user));
	memcpy(a->pass, m->pass, sizeof(a->pass));
	a->seq = ++auth_seq;
	a->since = mono();
	k->auth = a;
	nwaiting++;
	return 0;
}

static void
reap(struct config *cf)
{
	pid_t	 pid;
	int	 st;
	size_t	 i;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		if (auth_reaped(pid, st))
			continue;
		if (pid == runner_pid) {
			log_warnx("runner exited (status %d), restarting",
			    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			close(runner_fd);
			runner_fd = -1;
			runner_pid = -1;
			if (!quit) {
				sleep(1);
				spawn_runner(cf);
			}
			continue;
		}
		for (i = 0; i < nkids; i++)
			if (kids[i].pid == pid) {
				close(kids[i].ctl);
				authreq_free(kids[i].auth);
				kids[i] = kids[--nkids];
				break;
			}
	}
	auth_schedule(cf);
}

/*
 * Frames from sessions: AUTH requests are queued for the checkers;
 * commits are renamed each, msg/ is fsync'd once, each is answered.
 */
static void
commits(struct config *cf, struct pollfd *pfd, size_t npfd, size_t first)
{
	union {
		struct ctl_frame	 f;
		struct ctl_auth		 a;
	}			 u;
	struct ctl_frame	 f;
	char			 from[4096], to[4096], msgdir[4096];
	size_t			 i, k;
	ssize_t			 n;
	int			 ok[1024], who[1024], nok = 0, synced, bad;
	char			 ids[1024][ID_LEN + 1];

	str_fmt(msgdir, sizeof(msgdir), "%s/msg", cf->queue);
	for (i = first; i < npfd && nok < 1024; i++) {
		if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		for (k = 0; k < nkids; k++)
			if (kids[k].ctl == pfd[i].fd)
				break;
		if (k == nkids)
			continue;
		/* one frame a message; MSG_TRUNC: its real length */
		n = recv(pfd[i].fd, &u, sizeof(u), MSG_TRUNC | MSG_DONTWAIT);
		if (n <= 0)
			continue;	/* the session ended; reaped later */
		if (n == (ssize_t)sizeof(u.f) && u.f.type == CTL_IDLE) {
			kid_idle(cf, &kids[k]);
			continue;
		}
		if (n == (ssize_t)sizeof(u.a) && u.f.type == CTL_AUTH) {
			bad = auth_request(&kids[k], &u.a) == -1;
			explicit_bzero(&u, sizeof(u));
			if (!bad)
				continue;
		} else
			bad = n != (ssize_t)sizeof(u.f) || u.f.type != CTL_COMMIT ||
			    u.f.id[ID_LEN] != '\0' || !queue_id_ok(u.f.id);
		if (bad) {
			explicit_bzero(&u, sizeof(u));
			log_warnx("session pid %ld: malformed frame, killing it",
			    (long)kids[k].pid);
			kill(kids[k].pid, SIGKILL);
			continue;
		}
		f = u.f;
		str_fmt(from, sizeof(from), "%s/incoming/%s", cf->queue, f.id);
		str_fmt(to, sizeof(to), "%s/%s", msgdir, f.id);
		ok[nok] = rename(from, to) == 0;
		if (!ok[nok])
			log_warn("queue: rename %s", from);
		who[nok] = pfd[i].fd;
		memcpy(ids[nok], f.id, sizeof(ids[0]));
		nok++;
	}
	auth_schedule(cf);
	if (nok == 0)
		return;
	synced = fsync_dir(msgdir) == 0;
	if (!synced)
		log_warn("queue: fsync %s", msgdir);
	for (i = 0; i < (size_t)nok; i++) {
		memset(&f, 0, sizeof(f));
		f.type = ok[i] && synced ? CTL_OK : CTL_FAIL;
		memcpy(f.id, ids[i], sizeof(f.id));
		for (k = 0; k < nkids; k++)
			if (kids[k].ctl == who[i])
				kid_send(&kids[k], &f);
		if (f.type == CTL_OK && runner_fd != -1 &&
		    write(runner_fd, f.id, ID_LEN) != ID_LEN)
			log_debug("runner notification dropped (it rescans)");
	}
}

static void
shutdown_all(void)
{
	size_t	 i;

	for (i = 0; i < nkids; i++)
		kill(kids[i].pid, SIGTERM);
	for (i = 0; i < AUTH_CHECKERS; i++)
		if (checkers[i].pid != 0)
			kill(checkers[i].pid, SIGKILL);
	if (runner_pid != -1)
		kill(runner_pid, SIGTERM);
	if (runner_pid != -1)
		waitpid(runner_pid, NULL, 0);
}

int
master_run(struct config *cf, int inetd)
{
	struct pollfd		*pfd = NULL;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	size_t			 i, n, npfd;
	int			 fd;
	char			 c;

	if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) == -1)
		fatal("pipe");
	set_signals();
	queue_setup(cf, !inetd);
	if (inetd) {
		/* one session on stdin/stdout; no runner, the daemon delivers */
		memset(&ss, 0, sizeof(ss));
		sslen = sizeof(ss);
		if (getpeername(0, (struct sockaddr *)&ss, &sslen) == -1)
			sslen = 0;
		{
			static struct session_ctx ctx;
			int	 sp[2], local;
			pid_t	 pid;

			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
			    sp) == -1)
				fatal("socketpair");
			memset(&ctx, 0, sizeof(ctx));
			ctx.cf = cf;
			ctx.l = &cf->listeners[0];
			ctx.fd = -1;
			ctx.rfd = 0;
			ctx.wfd = 1;
			ctx.ctl = sp[1];
			ctx.addr = ss;
			ctx.addrlen = sslen;
			addr_string(&ss, sslen, ctx.client, sizeof(ctx.client),
			    &local);
			ctx.local = local;
			if ((pid = fork()) == -1)
				fatal("fork");
			if (pid == 0) {
				close(sp[0]);
				child_session(cf, &ctx);
			}
			close(sp[1]);
			close(0);
			close(1);
			open("/dev/null", O_RDWR);
			open("/dev/null", O_RDWR);
			kids = calloc(1, sizeof(*kids));
			kids[0].pid = pid;
			kids[0].ctl = sp[0];
			kids[0].l = ctx.l;
			kids[0].busy = 1;
			nkids = maxkids = 1;
		}
	} else {
		bind_listeners(cf);
		bind_local(cf);
		spawn_runner(cf);
	}

	while (!quit) {
		npfd = 1 + (inetd ? 0 : cf->nlisteners) + nkids +
		    (submit_l.fd != -1 ? 1 : 0);
		free(pfd);
		if ((pfd = calloc(npfd, sizeof(*pfd))) == NULL)
			fatal("calloc");
		pfd[0].fd = sigpipe[0];
		pfd[0].events = POLLIN;
		n = 1;
		if (!inetd)
			for (i = 0; i < cf->nlisteners; i++, n++) {
				pfd[n].fd = cf->listeners[i].fd;
				pfd[n].events = POLLIN;
			}
		for (i = 0; i < nkids; i++, n++) {
			pfd[n].fd = kids[i].ctl;
			pfd[n].events = POLLIN;
		}
		if (submit_l.fd != -1) {
			pfd[n].fd = submit_l.fd;
			pfd[n++].events = POLLIN;
		}
		/* a tick while AUTH checks run or wait, or sessions idle,
		 * for their timeouts */
		if (poll(pfd, npfd, nchecking + nwaiting > 0 || idle_timeouts() ?
		    1000 : -1) == -1) {
			if (errno == EINTR)
				continue;
			fatal("poll");
		}
		if (nchecking + nwaiting > 0) {
			auth_timeouts();
			auth_schedule(cf);
		}
		if (pfd[0].revents & POLLIN) {
			while (read(sigpipe[0], &c, 1) == 1)
				if (c == SIGUSR1 || c == SIGUSR2) {
					log_setverbose(c == SIGUSR1);
					log_info("log %s (mailctl)",
					    c == SIGUSR1 ? "verbose" : "brief");
				}
			reap(cf);
			if (inetd && nkids == 0)
				break;
		}
		commits(cf, pfd, npfd, 1 + (inetd ? 0 : cf->nlisteners));
		if (inetd)
			continue;
		for (i = 0; i < cf->nlisteners; i++) {
			if (!(pfd[1 + i].revents & POLLIN))
				continue;
			/* a few at a time per listener, then serve commits */
			for (n = 0; n < 64; n++) {
				sslen = sizeof(ss);
				fd = accept4(cf->listeners[i].fd,
				    (struct sockaddr *)&ss, &sslen, SOCK_CLOEXEC);
				if (fd == -1)
					break;
				new_session(cf, &cf->listeners[i], fd, &ss, sslen);
			}
		}
		if (submit_l.fd != -1 && (pfd[npfd - 1].revents & POLLIN))
			for (n = 0; n < 64; n++) {
				sslen = sizeof(ss);
				fd = accept4(submit_l.fd, (struct sockaddr *)&ss,
				    &sslen, SOCK_CLOEXEC);
				if (fd == -1)
					break;
				new_session(cf, &submit_l, fd, &ss, sslen);
			}
	}
	free(pfd);
	shutdown_all();
	log_info("exiting");
	return 0;
}
