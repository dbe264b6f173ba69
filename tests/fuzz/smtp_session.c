/*
 * Fuzz target: the SMTP and LMTP server session (lib/smtp) on what a
 * client sends: command lines (EHLO/LHLO, MAIL/RCPT paths and
 * parameters, AUTH PLAIN and LOGIN, STARTTLS, RSET...), the DATA stream
 * (dot-stuffing, bare CR and LF) and the per-line limits. The first
 * input byte picks the listener's parameters (LMTP, TLS offered or
 * required, AUTH, size limit); the rest is a client's byte stream, split
 * into lines as io_getline does (LF ends a line, a CR before it is
 * dropped and makes crlf 1; a line over the limit is passed as toolong;
 * each line is a NUL-terminated copy, as io_getline gives).
 *
 * Checks (abort() on violation): every reply line is "DDD " or "DDD-"
 * and ends in CRLF; no more messages are committed than the input holds
 * LF "." CRLF sequences (a bare-CR or bare-LF-only end such as "\n.\n"
 * or "\r.\r" never ends a message: no smuggling; the line before the
 * dot may be the DATA command itself, so its CR is not required); a committed
 * message never holds a bare CR; after SMTP_CLOSE nothing more is read.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "smtp.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fx {
	int		 open;
	int		 commits;
	struct buf	 msg;
};

static int
h_rcpt(void *arg, struct smtp_session *s, const char *addr, struct buf *out)
{
	(void)arg;
	(void)s;
	if (strchr(addr, '!') != NULL) {
		smtp_reply(out, 550, "5.1.1", "no");
		return 0;
	}
	if (strchr(addr, '#') != NULL) {
		smtp_reply(out, 451, "4.3.0", "later");
		return -1;
	}
	return 1;
}

static int
h_mail(void *arg, struct smtp_session *s, const char *addr, struct buf *out)
{
	(void)arg;
	(void)s;
	if (strchr(addr, '!') != NULL) {
		smtp_reply(out, 550, "5.7.1", "no");
		return 0;
	}
	return 1;
}

static int
h_auth(void *arg, struct smtp_session *s, const char *user, const char *pw)
{
	(void)arg;
	(void)s;
	return strcmp(user, "u") == 0 && strcmp(pw, "p") == 0;
}

static int
h_data_open(void *arg, struct smtp_session *s, struct buf *out)
{
	struct fx	*f = arg;

	(void)s;
	(void)out;
	if (f->open)
		abort();
	f->open = 1;
	buf_reset(&f->msg);
	return 0;
}

static int
h_data_write(void *arg, struct smtp_session *s, const void *p, size_t n)
{
	struct fx	*f = arg;

	(void)s;
	if (!f->open)
		abort();
	return buf_add(&f->msg, p, n);
}

static int
h_data_commit(void *arg, struct smtp_session *s, char *id, size_t idlen,
    struct buf *out)
{
	struct fx	*f = arg;

	(void)s;
	(void)out;
	if (!f->open)
		abort();
	if (f->msg.len > 0 && memchr(f->msg.data, '\r', f->msg.len) != NULL)
		abort();
	f->open = 0;
	f->commits++;
	snprintf(id, idlen, "id%d", f->commits);
	return 0;
}

static void
h_data_abort(void *arg, struct smtp_session *s)
{
	struct fx	*f = arg;

	(void)s;
	f->open = 0;
}

static void
check_out(struct buf *out)
{
	size_t	 i = 0, e;
	char	*d = out->data;

	while (i < out->len) {
		if (out->len - i < 5)
			abort();
		if (d[i] < '2' || d[i] > '5' || d[i + 1] < '0' || d[i + 1] > '9' ||
		    d[i + 2] < '0' || d[i + 2] > '9' ||
		    (d[i + 3] != ' ' && d[i + 3] != '-'))
			abort();
		for (e = i; e < out->len && d[e] != '\n'; e++)
			;
		if (e == out->len || d[e - 1] != '\r')
			abort();
		i = e + 1;
	}
	buf_reset(out);
}

static size_t
count_ends(const uint8_t *p, size_t n)
{
	size_t	 c = 0;

	for (size_t i = 0; i + 4 <= n; i++)
		if (memcmp(p + i, "\n.\r\n", 4) == 0)
			c++;
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_params	 p;
	struct smtp_hooks	 h;
	struct smtp_session	 s;
	struct fx		 f;
	const uint8_t		*in, *lf;
	size_t			 left, len, max, ends, n;
	char			*line;
	int			 crlf, toolong, closed = 0;
	enum smtp_action	 act;

	if (size < 1 || size > 262144)
		return 0;
	memset(&p, 0, sizeof(p));
	p.hostname = "mx.example.org";
	p.lmtp = data[0] & 1;
	p.tls_offer = (data[0] >> 1) & 1;
	p.tls_required = p.tls_offer && ((data[0] >> 2) & 1);
	p.auth_offer = (data[0] >> 3) & 1;
	p.auth_required = p.auth_offer && ((data[0] >> 4) & 1);
	p.auth_plaintext = (data[0] >> 5) & 1;
	p.max_size = (data[0] >> 6) & 1 ? 300 : 0;
	p.max_rcpt = (data[0] >> 7) & 1 ? 3 : 0;
	memset(&f, 0, sizeof(f));
	buf_init(&f.msg, 1 << 20);
	memset(&h, 0, sizeof(h));
	h.rcpt = h_rcpt;
	h.mail = h_mail;
	h.auth = p.auth_offer ? h_auth : NULL;
	h.data_open = h_data_open;
	h.data_write = h_data_write;
	h.data_commit = h_data_commit;
	h.data_abort = h_data_abort;
	h.arg = &f;
	if (smtp_session_init(&s, &p, &h) == -1) {
		buf_free(&f.msg);
		return 0;
	}
	check_out(&s.out);
	in = data + 1;
	left = size - 1;
	ends = count_ends(in, left);
	while (left > 0 && !closed) {
		max = smtp_session_in_data(&s) ? 65536 : 1000;
		/* an unfinished last line is never delivered (io_getline
		 * gives ECONNRESET at EOF) */
		if ((lf = memchr(in, '\n', left)) == NULL)
			break;
		len = (size_t)(lf - in);
		crlf = len > 0 && in[len - 1] == '\r';
		toolong = (len - (size_t)crlf) > max;
		/* io_getline NUL-terminates the line: so does this copy */
		n = toolong ? 0 : len - (size_t)crlf;
		if ((line = malloc(n + 1)) == NULL)
			break;
		memcpy(line, in, n);
		line[n] = '\0';
		act = smtp_session_line(&s, line, n, crlf, toolong);
		free(line);
		check_out(&s.out);
		if (act == SMTP_CLOSE)
			closed = 1;
		else if (act == SMTP_STARTTLS)
			smtp_session_tls(&s);
		in += len + 1;
		left -= len + 1;
	}
	if ((size_t)f.commits > ends)
		abort();
	smtp_session_free(&s);
	buf_free(&f.msg);
	return 0;
}
