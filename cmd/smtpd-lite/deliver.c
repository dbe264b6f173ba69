/*
 * deliver -- one delivery of one recipient, in a child process: the
 * rule's mda command (argv split when the config was read, %{...}
 * substituted into single arguments, exec'd without a shell), lda -M
 * for a maildir action, or an LMTP client. The message file itself is
 * the child's stdin, positioned at the message; the child's stderr comes
 * back to the runner for the log and the bounce. The exit status speaks
 * sysexits; the runner turns it into an SMTP status through lib/smtp.
 */
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include <sys/stat.h>

#include "buf.h"
#include "dns.h"
#include "io.h"
#include "log.h"
#include "priv.h"
#include "smtp.h"
#include "smtpc.h"
#include "smtpd.h"

#define LMTP_TIMEOUT	(300 * 1000)

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vdprintf(2, fmt, ap);
	va_end(ap);
	dprintf(2, "\n");
	_exit(code);
}

/*
 * A connected socket to host:port, [v6]:port or /path (a unix socket);
 * -1 with what failed in err (the deferral's words in the log and queue).
 */
static int
lmtp_connect(const char *target, char *err, size_t errlen)
{
	struct addrinfo		 hints, *res, *ai;
	struct sockaddr_un	 sun;
	char			 host[256], *port;
	int			 fd = -1, gai, saved = EADDRNOTAVAIL;

	if (target[0] == '/') {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (str_lcpy(sun.sun_path, target, sizeof(sun.sun_path)) >=
		    sizeof(sun.sun_path))
			return str_err(err, errlen, "socket path longer than "
			    "%zu bytes", sizeof(sun.sun_path) - 1);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
			return str_err(err, errlen, "socket: %s",
			    strerror(errno));
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
			str_err(err, errlen, "connect: %s", strerror(errno));
			close(fd);
			return -1;
		}
		return fd;
	}
	if (str_lcpy(host, target, sizeof(host)) >= sizeof(host) ||
	    (port = strrchr(host, ':')) == NULL || port == host)
		return str_err(err, errlen, "expected host:port or /socket");
	*port++ = '\0';
	if (host[0] == '[' && port[-2] == ']') {
		port[-2] = '\0';
		memmove(host, host + 1, strlen(host));
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((gai = getaddrinfo(host, port, &hints, &res)) != 0)
		return str_err(err, errlen, "%s", gai_strerror(gai));
	for (ai = res; ai; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
		    0)) == -1) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		str_err(err, errlen, "connect: %s", strerror(saved));
	return fd;
}

/*
 * Reads one (multi-line) reply; returns its code, 0 on error. When ext is
 * not NULL, *has_r says whether a line's text was that extension keyword
 * (alone or with parameters), as an LHLO reply lists them.
 */
static int
lmtp_reply(struct io *io, char *text, size_t len, const char *ext, int *has_r)
{
	char		 line[SMTP_LINE_MAX + 1];
	const char	*t;
	size_t		 elen = ext != NULL ? strlen(ext) : 0;
	int		 code, last, n;

	if (has_r != NULL)
		*has_r = 0;
	for (n = 0; n < 100; n++) {
		if (io_getline(io, line, sizeof(line), LMTP_TIMEOUT, NULL) == -1)
			return 0;
		if (smtp_reply_parse(line, strlen(line), &code, &last, &t) == -1)
			return 0;
		if (ext != NULL && has_r != NULL &&
		    strncasecmp(t, ext, elen) == 0 &&
		    (t[elen] == '\0' || t[elen] == ' '))
			*has_r = 1;
		if (last) {
			str_fmt(text, len, "%s", line);
			return code;
		}
	}
	return 0;
}

static int
exit_of(int code, const char *text)
{
	if (code >= 200 && code < 300)
		return 0;
	if (code >= 400 && code < 500)
		return EX_TEMPFAIL;
	if (code >= 500 && code < 600)
		return strstr(text, "5.1.1") ? EX_NOUSER : EX_UNAVAILABLE;
	return EX_TEMPFAIL;
}

/*
 * In the child: stdin is the message (LF line ends), sent dot-stuffed
 * with CRLF. A reply other than the expected one to the greeting or LHLO
 * is a server that is not ready: temporary, whatever its code; the
 * replies to MAIL, RCPT and the data decide by their class (exit_of).
 */
static void __attribute__((noreturn))
lmtp_child(const struct config *cf, const struct rule *r,
    const struct envelope *e, size_t i)
{
	struct io	*io;
	struct buf	 out;
	char		 text[SMTP_LINE_MAX + 64], chunk[65536];
	int		 fd, code, bol = 1, eightbit = 0, ready = 0;
	ssize_t		 n, k;

	if ((fd = lmtp_connect(r->lmtp, text, sizeof(text))) == -1)
		die(EX_TEMPFAIL, "lmtp %s: %s", r->lmtp, text);
	if ((io = io_new(fd, fd)) == NULL)
		die(EX_TEMPFAIL, "lmtp %s: out of memory", r->lmtp);
	io_set_write_timeout(io, LMTP_TIMEOUT);
	if ((code = lmtp_reply(io, text, sizeof(text), NULL, NULL)) != 220)
		goto fail;
	io_printf(io, "LHLO %s\r\n", cf->hostname);
	if (io_flush(io, LMTP_TIMEOUT) == -1 ||
	    (code = lmtp_reply(io, text, sizeof(text), "8BITMIME",
	    &eightbit)) != 250)
		goto fail;
	ready = 1;
	/* the queue keeps 8-bit text as it came: say so (RFC 6152) */
	io_printf(io, "MAIL FROM:<%s>%s\r\n", e->sender,
	    eightbit ? " BODY=8BITMIME" : "");
	if (io_flush(io, LMTP_TIMEOUT) == -1 ||
	    (code = lmtp_reply(io, text, sizeof(text), NULL, NULL)) != 250)
		goto fail;
	io_printf(io, "RCPT TO:<%s>\r\n", e->dests[i].rcpt);
	if (io_flush(io, LMTP_TIMEOUT) == -1 ||
	    (code = lmtp_reply(io, text, sizeof(text), NULL, NULL)) / 100 != 2)
		goto fail;
	io_printf(io, "DATA\r\n");
	if (io_flush(io, LMTP_TIMEOUT) == -1 ||
	    (code = lmtp_reply(io, text, sizeof(text), NULL, NULL)) != 354)
		goto fail;
	buf_init(&out, 0);
	for (;;) {
		if ((n = read(0, chunk, sizeof(chunk))) == -1 && errno == EINTR)
			continue;
		if (n == -1)	/* never a truncated message with a final dot */
			die(EX_TEMPFAIL, "lmtp %s: queue file: %s", r->lmtp,
			    strerror(errno));
		if (n == 0)
			break;
		buf_reset(&out);
		if (buf_reserve(&out, (size_t)n * 2) == -1)
			die(EX_TEMPFAIL, "lmtp %s: out of memory", r->lmtp);
		for (k = 0; k < n; k++) {
			if (bol && chunk[k] == '.')
				buf_addc(&out, '.');
			bol = chunk[k] == '\n';
			if (bol)
				buf_add(&out, "\r\n", 2);
			else
				buf_addc(&out, chunk[k]);
		}
		if (io_write(io, out.data, out.len) == -1)
			die(EX_TEMPFAIL, "lmtp %s: write: %s", r->lmtp,
			    strerror(errno));
	}
	if (!bol)
		io_puts(io, "\r\n");
	io_puts(io, ".\r\n");
	if (io_flush(io, LMTP_TIMEOUT) == -1)
		die(EX_TEMPFAIL, "lmtp %s: write: %s", r->lmtp, strerror(errno));
	code = lmtp_reply(io, text, sizeof(text), NULL, NULL);
	io_puts(io, "QUIT\r\n");
	io_flush(io, 5000);
	if (code / 100 == 2)
		_exit(0);
fail:
	if (code == 0)
		die(EX_TEMPFAIL, "lmtp %s: connection or protocol error", r->lmtp);
	dprintf(2, "lmtp %s said: %s\n", r->lmtp, text);
	_exit(ready ? exit_of(code, text) : EX_TEMPFAIL);
}

/*
 * Counts the Received: fields of the message's header (fd at off); more
 * than MAX_RECEIVED means a loop (RFC 5321 section 6.3). Reads at most
 * the header's first 256 KB.
 */
#define MAX_RECEIVED	100
static int
count_received(int fd, long long off)
{
	char	 chunk[8192], last = '\n';
	size_t	 k, match = 0, total = 0;
	ssize_t	 n;
	int	 count = 0, bol = 1;
	static const char want[] = "received:";

	while (total < 256 * 1024 &&
	    (n = pread(fd, chunk, sizeof(chunk), (off_t)(off + total))) > 0) {
		for (k = 0; k < (size_t)n; k++) {
			char c = chunk[k];
			if (c == '\r')
				continue;
			if (c == '\n') {
				if (last == '\n')
					return count;	/* end of header */
				bol = 1;
				match = 0;
				last = c;
				continue;
			}
			if (bol && match < sizeof(want) - 1 &&
			    (c | 0x20) == want[match]) {
				if (++match == sizeof(want) - 1) {
					count++;
					bol = 0;
				}
			} else
				bol = 0;
			last = c;
		}
		total += (size_t)n;
	}
	return count;
}

/*
 * Set by deliver_start_relay for the next fork: recipients of one route,
 * from one or several messages (group_fd[k]: item k's message file, 0 for
 * the first message's, which is stdin).
 */
static const struct relay_item	*group;
static size_t			 group_n;
static int			 group_fd[RELAY_GROUP_MAX];
static int			 batch_fd = -1;	/* lda -B's list */

/*
 * In the child, as the session user: stdin is the queue file. The relay
 * (lib/smtpc) says what became of the recipient; its words go to stderr
 * for the bounce and the queue's last error.
 */
static void __attribute__((noreturn))
relay_child(const struct config *cf, const struct rule *r,
    const struct envelope *e, size_t i)
{
	const struct dest	*d = &e->dests[i];
	struct dns_opts		 dopt;
	struct smtpc_opts	 o;
	struct smtpc_route	 route;
	struct smtpc_result	 res;
	struct dns		*dns;
	struct stat		 sb;
	const char		*rcpt1[1] = { d->rcpt }, *at;
	const char		**rcpt = rcpt1;
	struct smtpc_result	*resv = &res;
	size_t			 n = 1, k;
	char			 user[256], pass[256], err[512];

	memset(&dopt, 0, sizeof(dopt));
	memset(&o, 0, sizeof(o));
	memset(&route, 0, sizeof(route));
	dopt.forwarder = cf->resolver;
	o.helo = cf->hostname;
	o.tls = r->relay_tls;
	o.cafile = r->cafile;
	o.timeout_ms = (int)(cf->timeout * 1000);
	o.data_timeout_ms = (int)(cf->data_timeout * 1000);
	route.smarthost = r->smarthost;
	route.domain = (at = strrchr(d->rcpt, '@')) != NULL ? at + 1 : "";
	route.port = r->mx_port;
	if (r->smarthost != NULL && r->smarthost->label[0] != '\0') {
		if (smtpc_credentials(r->secrets, r->smarthost->label, NULL,
		    user, sizeof(user), pass, sizeof(pass), err,
		    sizeof(err)) == -1)
			die(EX_TEMPFAIL, "relay: %s", err);
		o.auth_user = user;
		o.auth_pass = pass;
	}
	if (fstat(0, &sb) == -1)
		die(EX_TEMPFAIL, "relay: queue file: %s", strerror(errno));
	if ((dns = dns_new(&dopt, err, sizeof(err))) == NULL)
		die(EX_TEMPFAIL, "relay: %s", err);
	if (group_n > 1) {
		/*
		 * A transaction per message, one connection for all
		 * (smtpc_deliver_batch); a line per recipient: "K CODE TEXT"
		 * with K its place in the group.
		 */
		struct smtpc_msg	*msgs;
		struct stat		 st;
		size_t			 nm = 0, start, j;
		int			*loop;

		n = group_n;
		if ((rcpt = calloc(n, sizeof(*rcpt))) == NULL ||
		    (resv = calloc(n, sizeof(*resv))) == NULL ||
		    (msgs = calloc(n, sizeof(*msgs))) == NULL ||
		    (loop = calloc(n, sizeof(*loop))) == NULL)
			die(EX_TEMPFAIL, "relay: out of memory");
		for (start = 0; start < n; start = k) {
			const struct envelope *ge = group[start].e;
			for (k = start; k < n && group[k].e == ge; k++)
				rcpt[k] = ge->dests[group[k].i].rcpt;
			if (fstat(group_fd[start], &st) == -1)
				die(EX_TEMPFAIL, "relay: queue file: %s",
				    strerror(errno));
			if (count_received(group_fd[start], ge->body_off) >
			    MAX_RECEIVED) {
				for (j = start; j < k; j++)
					loop[j] = 1;
				continue;
			}
			msgs[nm].sender = ge->sender;
			msgs[nm].rcpts = rcpt + start;
			msgs[nm].n = k - start;
			msgs[nm].fd = group_fd[start];
			msgs[nm].offset = ge->body_off;
			msgs[nm].size = (long long)(st.st_size - ge->body_off);
			msgs[nm].eightbit = 1;
			msgs[nm].results = resv + start;
			nm++;
		}
		if (nm > 0)
			smtpc_deliver_batch(dns, &o, &route, msgs, nm);
		explicit_bzero(pass, sizeof(pass));
		dns_free(dns);
		for (k = 0; k < n; k++)
			if (loop[k])
				dprintf(2, "%zu %d 5.4.6 mail loop: more than %d "
				    "Received header fields\n", k,
				    EX_UNAVAILABLE, MAX_RECEIVED);
			else
				dprintf(2, "%zu %d %s\n", k,
				    resv[k].status == SMTPC_OK ? 0 :
				    resv[k].status == SMTPC_TEMP ? EX_TEMPFAIL :
				    strstr(resv[k].text, "5.1.1") != NULL ?
				    EX_NOUSER : EX_UNAVAILABLE, resv[k].text);
		_exit(0);
	}
	if (count_received(0, e->body_off) > MAX_RECEIVED)
		die(EX_UNAVAILABLE, "5.4.6 mail loop: more than %d Received "
		    "header fields", MAX_RECEIVED);
	smtpc_deliver(dns, &o, &route, e->sender, rcpt, n, 0, e->body_off,
	    (long long)(sb.st_size - e->body_off), 1, resv);
	explicit_bzero(pass, sizeof(pass));
	dns_free(dns);
	if (res.status == SMTPC_OK)
		_exit(0);
	dprintf(2, "%s\n", res.text);
	_exit(res.status == SMTPC_TEMP ? EX_TEMPFAIL :
	    strstr(res.text, "5.1.1") != NULL ? EX_NOUSER : EX_UNAVAILABLE);
}

pid_t
deliver_start_relay(const struct config *cf, const struct relay_item *items,
    size_t n, const char *msgpath, int *errfd_r, char *err, size_t errlen)
{
	char	 path[4096];
	pid_t	 pid = -1;
	size_t	 k;

	if (n > RELAY_GROUP_MAX)
		n = RELAY_GROUP_MAX;
	/* the other messages' files, opened here: the child drops first */
	for (k = 0; k < n; k++) {
		if (items[k].e == items[0].e)
			group_fd[k] = 0;
		else if (k > 0 && items[k].e == items[k - 1].e)
			group_fd[k] = group_fd[k - 1];
		else {
			str_fmt(path, sizeof(path), "%s/msg/%s", cf->queue,
			    items[k].e->id);
			if ((group_fd[k] = open(path, O_RDONLY | O_CLOEXEC)) ==
			    -1) {
				str_fmt(err, errlen, "%s: %s", path,
				    strerror(errno));
				goto out;
			}
		}
	}
	group = items;
	group_n = n;
	pid = deliver_start(cf, items[0].e, items[0].i, msgpath, 0, errfd_r,
	    err, errlen);
out:
	while (k-- > 0)
		if (group_fd[k] > 0 && (k == 0 || group_fd[k] != group_fd[k - 1]))
			close(group_fd[k]);
	group = NULL;
	group_n = 0;
	return pid;
}

pid_t
deliver_start_batch(const struct config *cf, const struct relay_item *items,
    size_t n, const unsigned char *retry, int *errfd_r, char *err,
    size_t errlen)
{
	const struct dest	*d = &items[0].e->dests[items[0].i];
	const struct rule	*r = rules_find(cf, d->rule);
	const struct envelope	*e;
	struct buf		 b;
	char			 path[4096], fval[4096];
	const char		*f;
	pid_t			 pid = -1;
	size_t			 k;

	if (n > RELAY_GROUP_MAX)
		n = RELAY_GROUP_MAX;
	if (r == NULL || !r->batch) {
		str_fmt(err, errlen, "rule %s does not batch", d->rule);
		return -1;
	}
	buf_init(&b, 0);
	buf_adds(&b, "lda-batch 1\n");
	for (k = 0; k < n; k++) {
		e = items[k].e;
		if (k > 0 && e == items[k - 1].e)
			group_fd[k] = group_fd[k - 1];
		else {
			str_fmt(path, sizeof(path), "%s/msg/%s", cf->queue,
			    e->id);
			if ((group_fd[k] = open(path, O_RDONLY | O_CLOEXEC)) ==
			    -1) {
				str_fmt(err, errlen, "%s: %s", path,
				    strerror(errno));
				goto out;
			}
		}
		/* -f's value for this message (the one argument that differs) */
		f = NULL;
		if (r->action == ACT_MAILDIR)
			f = e->sender;
		else if (r->fidx >= 0) {
			if (rules_expand(r->argv[r->fidx], &e->dests[items[k].i],
			    e->sender, fval, sizeof(fval)) == -1) {
				str_fmt(err, errlen, "mda -f: bad %%{}");
				k++;
				goto out;
			}
			f = fval;
		}
		buf_printf(&b, "%d %lld %d %s_%zu ", group_fd[k], e->body_off,
		    retry[k] ? 1 : 0, e->id, items[k].i);
		if (f == NULL)
			buf_adds(&b, "-\n");
		else
			buf_printf(&b, "%zu:%s\n", strlen(f), f);
	}
	if (b.data == NULL || (batch_fd = memfd_create("lda-batch",
	    MFD_CLOEXEC)) == -1 || io_write_all(batch_fd, b.data, b.len) == -1 ||
	    lseek(batch_fd, 0, SEEK_SET) == -1) {
		str_fmt(err, errlen, "batch list: %s", strerror(errno));
		goto out;
	}
	group = items;
	group_n = n;
	pid = deliver_start(cf, items[0].e, items[0].i, NULL, 0, errfd_r, err,
	    errlen);
out:
	buf_free(&b);
	if (batch_fd != -1)
		close(batch_fd);
	batch_fd = -1;
	while (k-- > 0)
		if (k == 0 || group_fd[k] != group_fd[k - 1])
			close(group_fd[k]);
	group = NULL;
	group_n = 0;
	return pid;
}

pid_t
deliver_start(const struct config *cf, const struct envelope *e, size_t i,
    const char *msgpath, int retry, int *errfd_r, char *err, size_t errlen)
{
	const struct rule	*r = rules_find(cf, e->dests[i].rule);
	const struct dest	*d = &e->dests[i];
	static char		 args[MAX_ARGV][4096];
	char			*argv[MAX_ARGV + 1], perr[256];
	char			 envs[7][SMTP_PATH_MAX + 32];
	char			*envp[10];
	int			 p[2], fd, k, n = 0;
	pid_t			 pid;

	if (r == NULL) {
		str_fmt(err, errlen, "rule %s is not in the configuration",
		    d->rule);
		return -1;
	}
	/* the arguments are built before the fork: errors stay here */
	switch (r->action) {
	case ACT_MDA:
		for (k = 0; k < r->argc; k++) {
			if (rules_expand(r->argv[k], d, e->sender, args[k],
			    sizeof(args[k])) == -1) {
				str_fmt(err, errlen, "mda argument %d: bad %%{}", k);
				return -1;
			}
			argv[n++] = args[k];
		}
		break;
	case ACT_MAILDIR:
		if (rules_expand(r->maildir, d, e->sender, args[2],
		    sizeof(args[2])) == -1) {
			str_fmt(err, errlen, "maildir: bad %%{}");
			return -1;
		}
		str_lcpy(args[0], cf->lda, sizeof(args[0]));
		argv[n++] = args[0];
		argv[n++] = "-M";
		argv[n++] = args[2];
		argv[n++] = "-f";
		argv[n++] = (char *)e->sender;
		argv[n++] = "-a";
		argv[n++] = (char *)d->rcpt;
		break;
	case ACT_LMTP:
	case ACT_RELAY:
		break;
	default:
		str_fmt(err, errlen, "rule %s cannot deliver", r->name);
		return -1;
	}
	if (batch_fd != -1)
		argv[n++] = "-B";
	argv[n] = NULL;
	str_fmt(envs[0], sizeof(envs[0]), "SENDER=%s", e->sender);
	str_fmt(envs[1], sizeof(envs[1]), "RECIPIENT=%s", d->rcpt);
	str_fmt(envs[2], sizeof(envs[2]), "ORIGINAL_RECIPIENT=%s", d->orig);
	str_fmt(envs[3], sizeof(envs[3]), "USER=%s", d->user);
	str_fmt(envs[4], sizeof(envs[4]), "QUEUE_ID=%s", e->id);
	/* the key lda puts in the file name: exactly once after a crash */
	str_fmt(envs[5], sizeof(envs[5]), "DELIVERY_ID=%s_%zu", e->id, i);
	str_fmt(envs[6], sizeof(envs[6]), "DELIVERY_RETRY=%d", retry ? 1 : 0);
	envp[0] = "PATH=/usr/bin:/bin";
	for (k = 0; k < (batch_fd != -1 ? 5 : 7); k++)
		envp[k + 1] = envs[k];
	envp[k + 1] = NULL;

	if (batch_fd != -1)
		fd = fcntl(batch_fd, F_DUPFD_CLOEXEC, 3);
	else
		fd = open(msgpath, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		str_fmt(err, errlen, "%s: %s", msgpath ? msgpath : "batch list",
		    strerror(errno));
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		close(fd);
		str_fmt(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		str_fmt(err, errlen, "fork: %s", strerror(errno));
		close(fd);
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		struct sigaction sa;
		int null;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGCHLD, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGPIPE, &sa, NULL);
		/* relay and lmtp children do not exec: no mailctl socket */
		if (cf->control_fd != -1)
			close(cf->control_fd);
		if (lseek(fd, batch_fd != -1 ? 0 : e->body_off, SEEK_SET) == -1)
			_exit(EX_TEMPFAIL);
		if ((null = open("/dev/null", O_RDWR)) == -1 ||
		    dup2(fd, 0) == -1 || dup2(null, 1) == -1 ||
		    dup2(p[1], 2) == -1)
			_exit(EX_OSERR);
		if (group_n > 1 || batch_fd != -1) {
			/* keep the messages' files of a group or batch */
			int	 maxfd = 2, f;
			size_t	 g;

			for (g = 0; g < group_n; g++)
				if (group_fd[g] > maxfd)
					maxfd = group_fd[g];
			for (f = 3; f <= maxfd; f++) {
				for (g = 0; g < group_n; g++)
					if (group_fd[g] == f)
						break;
				if (g == group_n)
					close(f);
				else if (batch_fd != -1)
					fcntl(f, F_SETFD, 0);	/* for lda */
			}
			closefrom(maxfd + 1);
		} else
			closefrom(3);
		if (r->setid && priv_is_root() &&
		    priv_drop(r->uid, r->gid, perr, sizeof(perr)) == -1)
			die(EX_TEMPFAIL, "%s", perr);
		if (r->action == ACT_LMTP) {
			/* it reads what the LMTP server sends: never as
			 * root (a rule without user = runs it as user =) */
			if (!r->setid && priv_is_root() && priv_drop(cf->uid,
			    cf->gid, perr, sizeof(perr)) == -1)
				die(EX_TEMPFAIL, "%s", perr);
			lmtp_child(cf, r, e, i);
		}
		if (r->action == ACT_RELAY) {
			/* it reads what remote servers send: never as root */
			if (priv_is_root() && priv_drop(cf->uid, cf->gid, perr,
			    sizeof(perr)) == -1)
				die(EX_TEMPFAIL, "%s", perr);
			relay_child(cf, r, e, i);
		}
		if (chdir("/") == -1)
			_exit(EX_OSERR);
		execve(argv[0], argv, envp);
		dprintf(2, "%s: exec: %s\n", argv[0], strerror(errno));
		_exit(errno == ENOENT ? EX_CONFIG : EX_OSERR);
	}
	close(fd);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	*errfd_r = p[0];
	return pid;
}
