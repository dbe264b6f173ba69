/*
 * mailctl -- controls a running smtpd-lite over its unix sockets, and is
 * sendmail(8) and mailq(1) when called by those names.
 *
 *   mailctl [-c config] show queue|show stats|schedule all|ID|remove ID|
 *           pause|resume|log verbose|brief|trace SUBSYSTEM
 *
 * The admin socket (control = ..., mode 0600) takes one text line and
 * answers in text. As sendmail, the message read on stdin is submitted
 * with SMTP over the submission socket (submit = ..., mode 0666): the
 * daemon writes and fsyncs it into the queue, as for any SMTP client,
 * before it answers 250, and only then does sendmail exit 0.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "io.h"
#include "msg.h"
#include "smtp.h"

#define MAX_MESSAGE	(64ULL * 1024 * 1024)
#define MAX_RCPT	1000
#define REPLY_TIMEOUT	(5 * 60 * 1000)

static const char	*progname = "mailctl";
static char		 control_path[4096], submit_path[4096], hostname[256];

static void __attribute__((noreturn, format(printf, 2, 3)))
die(int code, const char *fmt, ...)
{
	va_list	 ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* The socket paths and host name from smtpd-lite's config (if readable). */
static void
load_config(const char *path)
{
	struct conf			*c = NULL;
	const struct conf_section	*g;
	const char			*q = LOCALSTATEDIR "/spool/smtpd-lite";
	char				 err[1024];

	if (gethostname(hostname, sizeof(hostname) - 1) == -1)
		str_lcpy(hostname, "localhost", sizeof(hostname));
	if (path == NULL)
		path = getenv("SMTPD_LITE_CONF");
	if (path == NULL)
		path = SYSCONFDIR "/courriel/smtpd-lite.conf";
	if (conf_load(&c, path, err, sizeof(err)) == -1) {
		if (errno != ENOENT && errno != EACCES)
			die(EX_CONFIG, "%s", err);
		c = NULL;
	}
	g = c ? conf_global(c) : NULL;
	if (g != NULL) {
		q = conf_get(g, "queue", q);
		str_lcpy(hostname, conf_get(g, "hostname", hostname),
		    sizeof(hostname));
	}
	str_fmt(control_path, sizeof(control_path), "%s/control.sock", q);
	str_fmt(submit_path, sizeof(submit_path), "%s/submit.sock", q);
	if (g != NULL) {
		str_lcpy(control_path, conf_get(g, "control", control_path),
		    sizeof(control_path));
		str_lcpy(submit_path, conf_get(g, "submit", submit_path),
		    sizeof(submit_path));
	}
	if (c)
		conf_free(c);
}

static int
connect_unix(const char *path)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_lcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		die(EX_CONFIG, "%s: path too long", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die(EX_OSERR, "socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1)
		die(EX_TEMPFAIL, "%s: %s (is smtpd-lite running?)", path,
		    strerror(errno));
	return fd;
}

/* One admin request; its answer to stdout. 0, or 1 when it is an error. */
static int
control(const char *req)
{
	char	 line[256], rbuf[8192];
	ssize_t	 n;
	int	 fd, first = 1, bad = 0;

	if (str_fmt(line, sizeof(line), "%s\n", req) == -1)
		die(EX_USAGE, "request too long");
	fd = connect_unix(control_path);
	if (io_write_all(fd, line, strlen(line)) == -1)
		die(EX_IOERR, "%s: %s", control_path, strerror(errno));
	while ((n = read(fd, rbuf, sizeof(rbuf))) > 0) {
		if (first && n >= 6 && memcmp(rbuf, "error:", 6) == 0)
			bad = 1;
		first = 0;
		fwrite(rbuf, 1, (size_t)n, bad ? stderr : stdout);
	}
	close(fd);
	if (first)
		die(EX_UNAVAILABLE, "%s: no answer", control_path);
	return bad;
}

/* ---- sendmail ---- */

struct smtpcl {
	int		 fd;
	char		 in[4096];
	size_t		 inlen;
	char		 last[1024];
};

/* Reads one reply (all its lines); returns its code, or -1. */
static int
reply(struct smtpcl *c)
{
	struct pollfd	 p;
	char		*nl;
	ssize_t		 n;
	const char	*text;
	size_t		 len;
	int		 code, last;

	for (;;) {
		while ((nl = memchr(c->in, '\n', c->inlen)) == NULL) {
			if (c->inlen == sizeof(c->in))
				return -1;
			p.fd = c->fd;
			p.events = POLLIN;
			if (poll(&p, 1, REPLY_TIMEOUT) != 1)
				return -1;
			if ((n = read(c->fd, c->in + c->inlen,
			    sizeof(c->in) - c->inlen)) <= 0)
				return -1;
			c->inlen += (size_t)n;
		}
		len = (size_t)(nl - c->in) + 1;
		if (smtp_reply_parse(c->in, len - 1 - (len > 1 &&
		    c->in[len - 2] == '\r'), &code, &last, &text) == -1)
			return -1;
		memcpy(c->last, c->in, len < sizeof(c->last) ? len :
		    sizeof(c->last) - 1);
		c->last[len < sizeof(c->last) ? len : sizeof(c->last) - 1] = '\0';
		c->last[strcspn(c->last, "\r\n")] = '\0';
		memmove(c->in, c->in + len, c->inlen - len);
		c->inlen -= len;
		if (last)
			return code;
	}
}

static int
command(struct smtpcl *c, const char *verb, const char *arg, const char *end)
{
	char	 line[2048];

	if (str_fmt(line, sizeof(line), "%s%s%s\r\n", verb, arg, end) == -1)
		return -1;
	if (io_write_all(c->fd, line, strlen(line)) == -1)
		return -1;
	return reply(c);
}

/* Appends each address of a header value (a list) to rcpts. */
static void
header_addresses(const char *v, char **rcpts, size_t *n)
{
	char	 tok[1024];
	size_t	 k = 0;
	int	 quote = 0, angle = 0, paren = 0;
	const char *p;

	for (p = v;; p++) {
		int end = *p == '\0' || (*p == ',' && !quote && !angle && !paren);
		if (!end) {
			if (*p == '"' && !angle)
				quote = !quote;
			else if (*p == '(' && !quote)
				paren++;
			else if (*p == ')' && !quote && paren)
				paren--;
			else if (*p == '<' && !quote)
				angle = 1;
			else if (*p == '>' && !quote)
				angle = 0;
			if (k < sizeof(tok) - 1)
				tok[k++] = *p;
			continue;
		}
		tok[k] = '\0';
		{
			char *a = tok, *lt = NULL, *gt;
			/* <addr> wins; else the bare token */
			if (!quote && (lt = strrchr(tok, '<')) != NULL &&
			    (gt = strchr(lt, '>')) != NULL) {
				*gt = '\0';
				a = lt + 1;
			} else {
				char *c = strchr(tok, '(');
				if (c)
					*c = '\0';
			}
			while (isspace((unsigned char)*a))
				a++;
			k = strlen(a);
			while (k > 0 && isspace((unsigned char)a[k - 1]))
				a[--k] = '\0';
			if (*a != '\0' && strchr(a, ':') == NULL &&
			    *n < MAX_RCPT)
				rcpts[(*n)++] = strdup(a);
			/* a group "name: a, b;" is rare in scripts; skipped */
		}
		k = 0;
		quote = angle = paren = 0;
		if (*p == '\0')
			break;
	}
}

static int
hdr_is(const char *line, const char *name)
{
	size_t	 n = strlen(name);

	return strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static void __attribute__((noreturn))
sendmail_bs(void)
{
	struct pollfd	 p[2];
	char		 b[8192];
	ssize_t		 n;
	int		 fd = connect_unix(submit_path), in_open = 1;

	for (;;) {
		p[0].fd = in_open ? 0 : -1;
		p[0].events = POLLIN;
		p[1].fd = fd;
		p[1].events = POLLIN;
		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			exit(EX_OSERR);
		}
		if (p[1].revents) {
			if ((n = read(fd, b, sizeof(b))) <= 0)
				exit(0);
			if (io_write_all(1, b, (size_t)n) == -1)
				exit(EX_IOERR);
		}
		if (p[0].revents) {
			if ((n = read(0, b, sizeof(b))) <= 0) {
				shutdown(fd, SHUT_WR);
				in_open = 0;
			} else if (io_write_all(fd, b, (size_t)n) == -1)
				exit(EX_IOERR);
		}
	}
}

static int
sendmail_main(int argc, char *argv[])
{
	struct buf	 msg, hdr, data;
	struct smtpcl	 c;
	struct passwd	*pw;
	char		*rcpts[MAX_RCPT], sender[1024], fullname[256] = "";
	char		*line = NULL, *from = NULL, *conf = NULL;
	size_t		 linecap = 0;
	ssize_t		 got;
	const char	*fname = NULL, *body;
	size_t		 nr = 0, i, hlen;
	int		 ch, opt_t = 0, opt_i = 0, mode = 'm', code;
	int		 has_from = 0, has_date = 0, has_msgid = 0, in_bcc = 0;
	int		 in_hdr = 1, first = 1;

	/* sendmail's options; the legacy ones it ignores are ignored here */
	opterr = 0;
	while ((ch = getopt(argc, argv, "A:B:b:C:d:F:f:h:iL:N:no:O:p:q:R:r:tUV:vX:"))
	    != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "s") == 0 || strcmp(optarg, "p") == 0 ||
			    strcmp(optarg, "m") == 0)
				mode = optarg[0];
			else
				die(EX_USAGE, "-b%s: not supported", optarg);
			break;
		case 'C':
			conf = optarg;
			break;
		case 'F':
			fname = optarg;
			break;
		case 'f':
		case 'r':
			from = optarg;
			break;
		case 'i':
			opt_i = 1;
			break;
		case 'o':
			if (strcmp(optarg, "i") == 0)
				opt_i = 1;
			break;	/* -oem, -odb, -oQ... ignored */
		case 't':
			opt_t = 1;
			break;
		case '?':
			die(EX_USAGE, "unknown option -%c", optopt);
		default:
			break;	/* -v, -U, -N, -B, -A...: accepted, ignored */
		}
	}
	load_config(conf);
	if (mode == 'p')
		return control("show queue");
	if (mode == 's')
		sendmail_bs();

	pw = getpwuid(getuid());
	if (from != NULL)
		str_lcpy(sender, from, sizeof(sender));
	else
		str_fmt(sender, sizeof(sender), "%s@%s", pw ? pw->pw_name :
		    "nobody", hostname);
	if (fname == NULL && from == NULL && pw != NULL && pw->pw_gecos) {
		str_lcpy(fullname, pw->pw_gecos, sizeof(fullname));
		fullname[strcspn(fullname, ",")] = '\0';
		fname = fullname;
	}
	for (i = (size_t)optind; i < (size_t)argc && nr < MAX_RCPT; i++)
		header_addresses(argv[i], rcpts, &nr);

	/* the message: header (Bcc dropped), then the body as it is */
	buf_init(&msg, MAX_MESSAGE);
	buf_init(&hdr, 1024 * 1024);
	/* getline: a line of any length stays one line (bounded by msg) */
	while ((got = getline(&line, &linecap, stdin)) != -1) {
		size_t len = (size_t)got;
		if (len > MAX_MESSAGE)
			die(EX_DATAERR, "message too large");
		if (memchr(line, '\0', len) != NULL)
			die(EX_DATAERR, "a NUL byte in the message");
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
			if (len > 0 && line[len - 1] == '\r')
				line[--len] = '\0';
		}
		if (!opt_i && strcmp(line, ".") == 0)
			break;
		if (first && strncmp(line, "From ", 5) == 0) {
			first = 0;
			continue;	/* an mbox separator */
		}
		first = 0;
		if (in_hdr) {
			if (len == 0) {
				in_hdr = 0;
				if (buf_add(&msg, "\n", 1) == -1)
					die(EX_DATAERR, "message too large");
				continue;
			}
			if ((line[0] == ' ' || line[0] == '\t') && hdr.len > 0) {
				/* a continuation: in_bcc as for its field */
			} else if (strchr(line, ':') == NULL) {
				/* not a header line: the body starts here */
				in_hdr = 0;
				if (buf_add(&msg, "\n", 1) == -1)
					die(EX_DATAERR, "message too large");
				goto body;
			} else {
				in_bcc = hdr_is(line, "Bcc") || hdr_is(line,
				    "Resent-Bcc");
				has_from |= hdr_is(line, "From");
				has_date |= hdr_is(line, "Date");
				has_msgid |= hdr_is(line, "Message-ID");
			}
			/* collect recipient headers for -t */
			if (buf_printf(&hdr, "%s\n", line) == -1)
				die(EX_DATAERR, "header too large");
			if (in_bcc)
				continue;
			if (buf_printf(&msg, "%s\n", line) == -1)
				die(EX_DATAERR, "message too large");
			continue;
		}
body:
		if (buf_printf(&msg, "%s\n", line) == -1)
			die(EX_DATAERR, "message too large");
	}
	if (ferror(stdin))
		die(EX_IOERR, "stdin: %s", strerror(errno));
	if (in_hdr && buf_add(&msg, "\n", 1) == -1)
		die(EX_DATAERR, "message too large");
	if (opt_t && hdr.len > 0) {
		/* unfold, then take To, Cc, Bcc (and their Resent- forms) */
		char *h, *p, *save = NULL, *start;
		if (buf_add(&hdr, "", 1) == -1)
			die(EX_DATAERR, "header too large");
		h = hdr.data;
		for (p = h; *p; p++)
			if (*p == '\n' && (p[1] == ' ' || p[1] == '\t'))
				*p = ' ';
		for (start = strtok_r(h, "\n", &save); start != NULL;
		    start = strtok_r(NULL, "\n", &save))
			if (hdr_is(start, "To") || hdr_is(start, "Cc") ||
			    hdr_is(start, "Bcc"))
				header_addresses(strchr(start, ':') + 1, rcpts, &nr);
	}
	if (nr == 0)
		die(EX_USAGE, "no recipients (give addresses, or -t)");

	/* added header fields, as sendmail does */
	buf_init(&data, MAX_MESSAGE + 4096);
	if (!has_from) {
		if (fname != NULL && *fname)
			buf_printf(&data, "From: \"%s\" <%s>\n", fname, sender);
		else
			buf_printf(&data, "From: <%s>\n", sender);
	}
	if (!has_date) {
		char d[64];

		buf_printf(&data, "Date: %s\n", msg_date(d, sizeof(d),
		    time(NULL)));
	}
	if (!has_msgid)
		buf_printf(&data, "Message-ID: <%lld.%ld@%s>\n",
		    (long long)time(NULL), (long)getpid(), hostname);
	body = msg.data ? msg.data : "";
	hlen = msg.len;
	if (smtp_data_stuff(&data, body, hlen) == -1)
		die(EX_DATAERR, "message too large");

	memset(&c, 0, sizeof(c));
	c.fd = connect_unix(submit_path);
	if ((code = reply(&c)) != 220)
		goto fail;
	if ((code = command(&c, "EHLO ", "localhost", "")) != 250)
		goto fail;
	if ((code = command(&c, "MAIL FROM:<", sender, ">")) != 250)
		goto fail;
	for (i = 0; i < nr; i++)
		if ((code = command(&c, "RCPT TO:<", rcpts[i], ">")) != 250 &&
		    code != 251)
			goto fail;
	if ((code = command(&c, "DATA", "", "")) != 354)
		goto fail;
	if (io_write_all(c.fd, data.data, data.len) == -1 ||
	    (code = reply(&c)) != 250)
		goto fail;
	(void)command(&c, "QUIT", "", "");
	close(c.fd);
	return 0;
fail:
	if (code == -1)
		die(EX_TEMPFAIL, "%s: connection lost", submit_path);
	die(code >= 500 ? EX_UNAVAILABLE : EX_TEMPFAIL, "refused: %s", c.last);
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: mailctl [-c config] show queue | show stats | "
	    "schedule all|ID | remove ID\n"
	    "               | pause | resume | log verbose|brief | "
	    "trace smtp|queue|deliver|relay\n");
	exit(EX_USAGE);
}

int
main(int argc, char *argv[])
{
	const char	*base = strrchr(argv[0], '/');
	char		 req[256];
	int		 ch, i;
	const char	*conf = NULL;

	base = base ? base + 1 : argv[0];
	if (strcmp(base, "sendmail") == 0) {
		progname = "sendmail";
		return sendmail_main(argc, argv);
	}
	if (strcmp(base, "mailq") == 0) {
		progname = "mailq";
		load_config(NULL);
		return control("show queue");
	}
	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			conf = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind == argc)
		usage();
	load_config(conf);
	req[0] = '\0';
	for (i = optind; i < argc; i++) {
		if (strpbrk(argv[i], "\r\n") != NULL)
			usage();
		if (i > optind)
			str_lcat(req, " ", sizeof(req));
		if (str_lcat(req, argv[i], sizeof(req)) >= sizeof(req) - 1)
			die(EX_USAGE, "request too long");
	}
	return control(req);
}
