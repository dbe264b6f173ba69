/* Unit tests for lib/smtp: paths, replies, DATA, and the session fed strings. */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "smtp.h"
#include "t.h"

struct fake {
	struct buf	 msg;
	int		 opened, committed, aborted;
};

static int
f_rcpt(void *arg, struct smtp_session *s, const char *addr, struct buf *out)
{
	(void)arg; (void)s;
	if (strstr(addr, "@example.org") != NULL || strcmp(addr, "postmaster") == 0)
		return 1;
	smtp_reply(out, 550, "5.7.1", "relay denied");
	return 0;
}

static int
f_auth(void *arg, struct smtp_session *s, const char *user, const char *pass)
{
	(void)arg; (void)s;
	return strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0;
}

static int
f_open(void *arg, struct smtp_session *s, struct buf *out)
{
	struct fake *f = arg;
	(void)s; (void)out;
	f->opened++;
	buf_reset(&f->msg);
	return 0;
}

static int
f_write(void *arg, struct smtp_session *s, const void *p, size_t n)
{
	struct fake *f = arg;
	(void)s;
	return buf_add(&f->msg, p, n);
}

static int
f_commit(void *arg, struct smtp_session *s, char *id, size_t idlen, struct buf *out)
{
	struct fake *f = arg;
	(void)s; (void)out;
	f->committed++;
	str_fmt(id, idlen, "ID%d", f->committed);
	return 0;
}

static void
f_abort(void *arg, struct smtp_session *s)
{
	struct fake *f = arg;
	(void)s;
	f->aborted++;
}

static struct fake	 fk;
static struct smtp_session ss;

/* Feeds text (lines separated by \r\n or \n) and returns the output. */
static const char *
feed(const char *text)
{
	const char	*p = text, *nl;
	static char	 line[2048];
	size_t		 n;
	int		 crlf;

	buf_reset(&ss.out);
	while (*p) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			break;
		n = nl - p;
		crlf = n > 0 && p[n - 1] == '\r';
		if (crlf)
			n--;
		memcpy(line, p, n);
		line[n] = '\0';
		if (smtp_session_line(&ss, line, n, crlf, 0) != SMTP_CONTINUE)
			break;
		p = nl + 1;
	}
	return ss.out.data ? ss.out.data : "";
}

static void
start(int lmtp, int tls_offer, int auth_plaintext)
{
	struct smtp_params	 p;
	struct smtp_hooks	 h = { f_rcpt, NULL, f_auth, f_open, f_write,
	    f_commit, f_abort, NULL, &fk };

	memset(&p, 0, sizeof(p));
	p.hostname = "mx.test";
	p.max_size = 1000;
	p.max_rcpt = 3;
	p.lmtp = lmtp;
	p.tls_offer = tls_offer;
	p.auth_offer = 1;
	p.auth_plaintext = auth_plaintext;
	smtp_session_free(&ss);
	smtp_session_init(&ss, &p, &h);
}

#define SEQ(a, b, what)	T_OK(strcmp((a), (b)) == 0, "%s", what)
#define HAS(out, s, what)	T_OK(strstr((out), (s)) != NULL, "%s", what)

int
main(void)
{
	char		 addr[300], err[100], b64[200];
	const char	*params, *o, *text;
	int		 code, last;
	struct smtp_data d;
	struct buf	 b;

	/* paths */
	T_EQ_INT(smtp_parse_path("<a@b.org>", 0, addr, sizeof(addr), &params,
	    err, sizeof(err)), 0, "simple path");
	T_EQ_STR(addr, "a@b.org", "address without <>");
	T_EQ_INT(smtp_parse_path(" <a@b.org> SIZE=10 BODY=8BITMIME", 0, addr,
	    sizeof(addr), &params, err, sizeof(err)), 0, "path with params");
	T_EQ_STR(params, "SIZE=10 BODY=8BITMIME", "params after path");
	T_EQ_INT(smtp_parse_path("<@r1,@r2:u@d.org>", 0, addr, sizeof(addr),
	    &params, err, sizeof(err)), 0, "source route");
	T_EQ_STR(addr, "u@d.org", "source route dropped");
	T_EQ_INT(smtp_parse_path("<>", 0, addr, sizeof(addr), &params, err,
	    sizeof(err)), -1, "null path refused for RCPT");
	T_EQ_INT(smtp_parse_path("<>", SMTP_PATH_NULL_OK, addr, sizeof(addr),
	    &params, err, sizeof(err)), 0, "null path for MAIL");
	T_EQ_INT(smtp_parse_path("a@b.org", 0, addr, sizeof(addr), &params, err,
	    sizeof(err)), -1, "no brackets");
	T_EQ_INT(smtp_parse_path("<a..b@c.org>", 0, addr, sizeof(addr), &params,
	    err, sizeof(err)), -1, "double dot");
	T_EQ_INT(smtp_parse_path("<a@b.org>x", 0, addr, sizeof(addr), &params,
	    err, sizeof(err)), -1, "garbage after path");
	T_EQ_INT(smtp_parse_path("<\"a b\\\"c\"@b.org>", 0, addr, sizeof(addr),
	    &params, err, sizeof(err)), 0, "quoted local part");
	T_EQ_INT(smtp_addr_ok("a@[127.0.0.1]", 0), 1, "IPv4 literal");
	T_EQ_INT(smtp_addr_ok("a@[300.0.0.1]", 0), 0, "bad IPv4 literal");
	T_EQ_INT(smtp_addr_ok("a@[IPv6:::1]", 0), 1, "IPv6 literal");
	T_EQ_INT(smtp_addr_ok("a@-b.org", 0), 0, "label starting with -");
	T_EQ_INT(smtp_addr_ok("a@b.org.", 0), 0, "trailing dot");
	T_EQ_INT(smtp_addr_ok("j\xc3\xa9@b.org", 0), 0, "UTF-8 needs SMTPUTF8");
	T_EQ_INT(smtp_addr_ok("j\xc3\xa9@b.org", SMTP_PATH_UTF8), 1,
	    "UTF-8 with SMTPUTF8");
	T_EQ_INT(smtp_addr_ok("j\xc3@b.org", SMTP_PATH_UTF8), 0, "bad UTF-8");
	T_EQ_INT(smtp_addr_ok("a\r@b.org", 0), 0, "CR in address");
	T_EQ_INT(smtp_addr_ok("postmaster", SMTP_PATH_POSTMASTER), 1,
	    "bare postmaster");
	{
		char u[65], dom[256];
		T_EQ_INT(smtp_addr_split("Bob@Example.ORG", u, sizeof(u), dom,
		    sizeof(dom)), 0, "split");
		T_EQ_STR(u, "Bob", "split user keeps case");
		T_EQ_STR(dom, "example.org", "split domain lowercased");
	}

	/* replies */
	T_EQ_INT(smtp_reply_parse("250-PIPELINING", 14, &code, &last, &text), 0,
	    "reply continuation");
	T_OK(code == 250 && !last && strcmp(text, "PIPELINING") == 0,
	    "reply fields");
	T_EQ_INT(smtp_reply_parse("354", 3, &code, &last, &text), 0, "bare code");
	T_EQ_INT(smtp_reply_parse("25x ok", 6, &code, &last, &text), -1,
	    "bad code");
	T_EQ_INT(smtp_reply_parse("250 a\rb", 7, &code, &last, &text), -1,
	    "CR in reply");
	T_EQ_INT(smtp_reply_parse("250_ok", 6, &code, &last, &text), -1,
	    "bad separator");

	/* exit table */
	T_EQ_INT(smtp_exit_status(0)->code, 250, "exit 0 delivered");
	T_EQ_INT(smtp_exit_status(75)->code, 451, "exit 75 temporary");
	T_EQ_STR(smtp_exit_status(67)->esc, "5.1.1", "exit 67 is 5.1.1");
	T_EQ_INT(smtp_exit_status(137)->code, 451, "signal is temporary");
	T_EQ_INT(smtp_exit_status(42)->code, 451, "unknown is temporary");

	/* DATA state machine */
	buf_init(&b, 0);
	smtp_data_init(&d, 0);
	T_EQ_INT(smtp_data_line(&d, "..x", 3, 1, &b), 0, "stuffed line");
	T_EQ_INT(smtp_data_line(&d, ".", 1, 0, &b), 0, "dot with bare LF no end");
	T_EQ_INT(smtp_data_line(&d, ".", 1, 1, &b), 0,
	    "dot after a bare-LF line no end");
	T_EQ_INT(smtp_data_line(&d, ".", 1, 1, &b), 1, "CRLF.CRLF ends");
	SEQ(b.data, ".x\n\n\n", "unstuffed content");
	T_OK(d.flags & SMTP_DATA_BARE_LF, "bare LF seen");
	buf_reset(&b);
	smtp_data_init(&d, 5);
	smtp_data_line(&d, "123456", 6, 1, &b);
	T_OK(d.flags & SMTP_DATA_TOOBIG, "over the size limit");
	buf_reset(&b);
	T_EQ_INT(smtp_data_stuff(&b, ".a\nb\n", 5), 0, "stuff");
	SEQ(b.data, "..a\r\nb\r\n.\r\n", "stuffed output");
	buf_free(&b);

	/* base64 */
	T_EQ_INT(base64_encode("\0alice\0secret", 13, b64, sizeof(b64)), 0,
	    "b64 encode");
	T_EQ_STR(b64, "AGFsaWNlAHNlY3JldA==", "b64 value");

	/* session: a plain SMTP transaction with pipelining */
	buf_init(&fk.msg, 0);
	start(0, 1, 0);
	HAS(ss.out.data, "220 mx.test ESMTP", "greeting");
	o = feed("MAIL FROM:<a@b.org>\r\n");
	HAS(o, "503 5.5.1", "MAIL before EHLO refused");
	o = feed("EHLO client.test\r\n");
	HAS(o, "250-PIPELINING", "EHLO offers PIPELINING");
	HAS(o, "250-STARTTLS", "EHLO offers STARTTLS");
	T_OK(strstr(o, "AUTH") == NULL, "no AUTH before TLS");
	HAS(o, "250-SIZE 1000", "SIZE");
	HAS(o, "250 HELP\r\n", "last EHLO line");
	o = feed("MAIL FROM:<a@b.org> SIZE=100\r\nRCPT TO:<x@example.org>\r\n"
	    "RCPT TO:<y@elsewhere.net>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n"
	    "bare\nstill data\r\n.\r\n");
	SEQ(o, "250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n"
	    "550 5.7.1 relay denied\r\n354 end data with <CR><LF>.<CR><LF>\r\n"
	    "250 2.0.0 message ID1 accepted\r\n", "pipelined transaction");
	SEQ(fk.msg.data, "Subject: hi\n\n.dot\nbare\nstill data\n",
	    "message body");
	o = feed("MAIL FROM:<a@b.org> SIZE=5000\r\n");
	HAS(o, "552 5.3.4", "SIZE over the limit");
	o = feed("MAIL FROM:<a@b.org> FOO=1\r\n");
	HAS(o, "555 5.5.4", "unknown parameter");
	o = feed("MAIL FROM:<a@b.org>\r\nDATA\r\n");
	HAS(o, "554 5.5.1", "DATA without recipients");
	o = feed("RSET\r\nRCPT TO:<x@example.org>\r\n");
	HAS(o, "503 5.5.1", "RCPT after RSET");
	o = feed("MAIL FROM:<>\r\nRCPT TO:<x@example.org>\r\nDATA\r\na\rb\r\n.\r\n");
	HAS(o, "554 5.6.0 bare CR", "bare CR refused");
	T_EQ_INT(fk.aborted, 1, "message aborted");
	o = feed("MAIL FROM:<>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\n"
	    "RCPT TO:<z@example.org>\r\nRCPT TO:<w@example.org>\r\n");
	HAS(o, "452 4.5.3", "recipient limit");
	o = feed("DATA\r\n");
	feed("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
	{
		int i;
		for (i = 0; i < 20; i++)
			feed("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
	}
	o = feed(".\r\n");
	HAS(o, "552 5.3.4", "message over max_size");
	o = feed("FOO bar\r\n");
	HAS(o, "500 5.5.1", "unknown command");
	o = feed("NOOP\r\n");
	HAS(o, "250 2.0.0", "session goes on after an error");
	T_EQ_INT(smtp_session_line(&ss, "", 0, 1, 1), SMTP_CONTINUE, "too long");
	HAS(ss.out.data, "500 5.5.2 line too long", "line too long answered");
	o = feed("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	HAS(o, "538 5.7.11", "AUTH refused without TLS");
	o = feed("STARTTLS\r\n");
	HAS(o, "220 2.0.0", "STARTTLS accepted");
	smtp_session_tls(&ss);
	o = feed("MAIL FROM:<a@b.org>\r\n");
	HAS(o, "503", "EHLO needed again after STARTTLS");
	o = feed("EHLO c\r\n");
	HAS(o, "250-AUTH PLAIN LOGIN", "AUTH offered over TLS");
	T_OK(strstr(o, "STARTTLS") == NULL, "no STARTTLS twice");
	o = feed("AUTH PLAIN AGFsaWNlAHdyb25n\r\n");
	HAS(o, "535 5.7.8", "wrong password");
	T_OK(ss.delay_ms > 0, "delay after a failed AUTH");
	base64_encode("bob\0alice\0secret", 16, b64,
	    sizeof(b64));
	{
		char l[300];
		str_fmt(l, sizeof(l), "AUTH PLAIN %s\r\n", b64);
		o = feed(l);
		HAS(o, "535 5.7.8 authorization identity", "other authzid refused");
		base64_encode("alice\0alice\0secret", 18,
		    b64, sizeof(b64));
		str_fmt(l, sizeof(l), "AUTH PLAIN\r\n%s\r\n", b64);
		o = feed(l);
		HAS(o, "334 \r\n235 2.7.0", "PLAIN with authzid after 334");
	}
	o = feed("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
	HAS(o, "503 5.5.1", "AUTH twice refused");
	o = feed("EHLO again\r\n");
	T_OK(strstr(o, "AUTH") == NULL, "authenticated: AUTH not offered again");

	start(0, 0, 1);
	o = feed("EHLO c\r\nAUTH LOGIN\r\nYWxpY2U=\r\nc2VjcmV0\r\n");
	HAS(o, "334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 2.7.0",
	    "AUTH LOGIN in three steps");
	start(0, 0, 1);
	o = feed("EHLO c\r\nAUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\n");
	HAS(o, "334 UGFzc3dvcmQ6\r\n235 2.7.0", "AUTH LOGIN with initial user");
	start(0, 0, 1);
	o = feed("EHLO c\r\nAUTH PLAIN\r\n*\r\n");
	HAS(o, "501 5.0.0", "AUTH cancelled");
	o = feed("AUTH PLAIN !!!!\r\n");
	HAS(o, "501 5.5.2", "bad base64");
	o = feed("MAIL FROM:<a@b.org>\r\nEHLO c\r\nRCPT TO:<x@example.org>\r\n");
	HAS(o, "503 5.5.1 need MAIL", "second EHLO resets the transaction");

	/* LMTP */
	start(1, 0, 0);
	HAS(ss.out.data, "LMTP", "LMTP greeting");
	o = feed("EHLO c\r\n");
	HAS(o, "500 5.5.1", "EHLO refused in LMTP");
	o = feed("LHLO c\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@example.org>\r\n"
	    "RCPT TO:<y@example.org>\r\nDATA\r\nhello\r\n.\r\n");
	HAS(o, "<x@example.org> message ID", "LMTP reply for the first rcpt");
	HAS(o, "<y@example.org> message ID", "LMTP reply for the second rcpt");

	/* too many errors close the session */
	start(0, 0, 0);
	{
		int i, r = SMTP_CONTINUE;
		for (i = 0; i < 25 && r == SMTP_CONTINUE; i++)
			r = smtp_session_line(&ss, "X", 1, 1, 0);
		T_EQ_INT(r, SMTP_CLOSE, "closed after too many errors");
		HAS(ss.out.data, "421 4.7.0", "421 on too many errors");
	}
	T_EQ_INT(smtp_session_line(&ss, "QUIT", 4, 1, 0), SMTP_CLOSE, "QUIT");
	smtp_session_free(&ss);
	buf_free(&fk.msg);
	return t_done();
}
