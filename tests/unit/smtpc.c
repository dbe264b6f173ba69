/*
 * Unit tests for lib/smtpc's parsers: replies, EHLO keywords, the DATA
 * encoder (dot-stuffing, line ends, smuggling), smarthost URLs.
 */
#include <stdlib.h>
#include <string.h>

#include "smtpc.h"
#include "table.h"
#include "t.h"

/* Feeds lines separated by '\n'; returns the last smtpc_reply_line value. */
static int
feed(struct smtpc_reply *r, const char *text)
{
	char line[2048];
	int rv = 0;

	memset(r, 0, sizeof(*r));
	while (*text != '\0') {
		size_t n = strcspn(text, "\n");

		memcpy(line, text, n);
		line[n] = '\0';
		if ((rv = smtpc_reply_line(r, line, n, NULL)) != 0)
			return rv;
		text += n;
		if (*text == '\n')
			text++;
	}
	return rv;
}

static void
test_reply(void)
{
	struct smtpc_reply r;
	char big[SMTPC_LINE_MAX + 10];
	const char *text;
	int i, rv;

	T_EQ_INT(feed(&r, "250 ok"), 1, "one-line reply");
	T_EQ_INT(r.code, 250, "its code");
	T_EQ_STR(r.text, "250 ok", "its text");
	T_EQ_INT(feed(&r, "250-mx.example\n250-PIPELINING\n250 SIZE 100"), 1,
	    "multi-line reply");
	T_EQ_INT(r.nlines, 3, "three lines");
	T_EQ_STR(r.text, "250 mx.example / PIPELINING / SIZE 100", "lines joined");
	T_EQ_INT(feed(&r, "250-a\n250-b"), 0, "continuation wants more");
	T_EQ_INT(feed(&r, "354"), 1, "bare code is a last line");
	T_EQ_INT(r.code, 354, "bare code");
	T_EQ_INT(feed(&r, "250-a\n550 b"), -1, "code changing mid-reply refused");
	T_EQ_INT(feed(&r, "25"), -1, "short line refused");
	T_EQ_INT(feed(&r, "2500 x"), -1, "four digits refused");
	T_EQ_INT(feed(&r, "abc hello"), -1, "letters refused");
	T_EQ_INT(feed(&r, "150 x"), -1, "1xx refused");
	T_EQ_INT(feed(&r, "650 x"), -1, "6xx refused");
	T_EQ_INT(feed(&r, "270 x"), -1, "second digit over 5 refused");
	T_EQ_INT(feed(&r, "250_x"), -1, "bad separator refused");
	T_EQ_INT(feed(&r, "-250 x"), -1, "sign refused");
	T_EQ_INT(feed(&r, " 250 x"), -1, "leading space refused");
	memset(&r, 0, sizeof(r));
	T_EQ_INT(smtpc_reply_line(&r, "250 a", 5, NULL), 1, "done");
	T_EQ_INT(smtpc_reply_line(&r, "250 b", 5, NULL), -1,
	    "a line after the last refused");
	memset(&r, 0, sizeof(r));
	for (i = 0, rv = 0; i < SMTPC_LINES_MAX + 5 && rv == 0; i++)
		rv = smtpc_reply_line(&r, "250-x", 5, NULL);
	T_EQ_INT(rv, -1, "too many lines refused");
	T_EQ_INT(r.nlines, SMTPC_LINES_MAX, "stopped at the limit");
	memset(big, 'a', sizeof(big));
	memcpy(big, "550 ", 4);
	big[SMTPC_LINE_MAX + 1] = '\0';
	memset(&r, 0, sizeof(r));
	T_EQ_INT(smtpc_reply_line(&r, big, SMTPC_LINE_MAX + 1, NULL), -1,
	    "overlong line refused");
	big[600] = '\0';
	memset(&r, 0, sizeof(r));
	T_EQ_INT(smtpc_reply_line(&r, big, 600, NULL), 1, "long line accepted");
	T_EQ_INT(strlen(r.text), SMTPC_TEXT_MAX - 1, "text bounded");
	T_OK(strcmp(r.text + SMTPC_TEXT_MAX - 4, "...") == 0, "truncation marked");
	T_EQ_INT(feed(&r, "550 evil\x01\x1b[31m text"), 1, "control characters");
	T_EQ_STR(r.text, "550 evil??[31m text", "control characters replaced");
	memset(&r, 0, sizeof(r));
	smtpc_reply_line(&r, "250-AUTH PLAIN", 14, &text);
	T_EQ_STR(text, "AUTH PLAIN", "text after the code");
	T_EQ_INT(smtpc_code_status(250), SMTPC_OK, "2xx ok");
	T_EQ_INT(smtpc_code_status(451), SMTPC_TEMP, "4xx temp");
	T_EQ_INT(smtpc_code_status(552), SMTPC_PERM, "5xx perm");
}

static void
test_caps(void)
{
	struct smtpc_caps c;

	memset(&c, 0, sizeof(c));
	smtpc_caps_line(&c, "PIPELINING");
	smtpc_caps_line(&c, "size 35882577");
	smtpc_caps_line(&c, "8BITMIME");
	smtpc_caps_line(&c, "AUTH LOGIN PLAIN XOAUTH2");
	smtpc_caps_line(&c, "STARTTLS");
	smtpc_caps_line(&c, "STARTTLSX");
	T_OK(c.pipelining && c.eightbit && c.starttls, "keywords");
	T_OK(c.size && c.size_max == 35882577ULL, "SIZE value");
	T_OK(c.auth_plain && c.auth_login, "AUTH mechanisms");
	memset(&c, 0, sizeof(c));
	smtpc_caps_line(&c, "AUTH=LOGIN");
	smtpc_caps_line(&c, "SIZE 99999999999999999999999999");
	smtpc_caps_line(&c, "PIPELININGX");
	T_OK(c.auth_login && !c.auth_plain, "old AUTH= form");
	T_OK(c.size && c.size_max == 0, "absurd SIZE is no known limit");
	T_OK(!c.pipelining, "prefix of a keyword is not it");
}

/* Encodes in, split at every position, and checks all give want. */
static void
enc(const char *in, const char *want, const char *what)
{
	char out[4096], esc[8192];
	size_t n = strlen(in), split, o;
	int same = 1;
	struct smtpc_dot st;

	for (split = 0; split <= n; split++) {
		memset(&st, 0, sizeof(st));
		o = smtpc_dot_encode(&st, in, split, out, sizeof(out));
		o += smtpc_dot_encode(&st, in + split, n - split, out + o,
		    sizeof(out) - o);
		o += smtpc_data_end(&st, out + o, sizeof(out) - o);
		out[o] = '\0';
		if (strcmp(out, want) != 0) {
			same = 0;
			break;
		}
	}
	if (same) {
		T_OK(1, "%s", what);
		return;
	}
	/* show the line ends */
	for (n = 0, o = 0; out[n] != '\0' && o + 3 < sizeof(esc); n++) {
		if (out[n] == '\r' || out[n] == '\n') {
			esc[o++] = '\\';
			esc[o++] = out[n] == '\r' ? 'r' : 'n';
		} else
			esc[o++] = out[n];
	}
	esc[o] = '\0';
	T_OK(0, "%s (split %zu: got \"%s\")", what, split, esc);
}

static void
test_dot(void)
{
	enc("", ".\r\n", "empty message");
	enc("a\nb\n", "a\r\nb\r\n.\r\n", "LF to CRLF");
	enc("a\r\nb\r\n", "a\r\nb\r\n.\r\n", "CRLF kept");
	enc("a\nb", "a\r\nb\r\n.\r\n", "missing last line end added");
	enc(".\n", "..\r\n.\r\n", "lone dot stuffed");
	enc(".hidden\n..x\n", "..hidden\r\n...x\r\n.\r\n", "leading dots doubled");
	enc("a.b\n", "a.b\r\n.\r\n", "inner dot untouched");
	/* smuggling: bare LF or CR around a dot never ends the data */
	enc("x\n.\ny\n", "x\r\n..\r\ny\r\n.\r\n", "LF.LF stuffed");
	enc("x\r.\ry\n", "x\r\n..\r\ny\r\n.\r\n", "CR.CR becomes stuffed lines");
	enc("x\r\n.\ry\n", "x\r\n..\r\ny\r\n.\r\n", "CRLF.CR stuffed");
	enc("x\n.\r\ny\n", "x\r\n..\r\ny\r\n.\r\n", "LF.CRLF stuffed");
	enc("x\r\r\n", "x\r\n\r\n.\r\n", "CR CR LF");
}

static void
test_url(void)
{
	struct smtpc_url u;
	char err[256];

	T_EQ_INT(smtpc_url_parse("smtp://mail.example.org", &u, err, sizeof(err)),
	    0, "smtp URL");
	T_OK(u.tls == SMTPC_TLS_MAYBE && u.port == 25 && u.label[0] == '\0',
	    "smtp: opportunistic, port 25");
	T_EQ_STR(u.host, "mail.example.org", "host");
	T_EQ_INT(smtpc_url_parse("smtp+tls://relay@Smtp.Provider.net:2525/", &u,
	    err, sizeof(err)), 0, "smtp+tls URL");
	T_OK(u.tls == SMTPC_TLS_STARTTLS && u.port == 2525, "STARTTLS required, port");
	T_EQ_STR(u.label, "relay", "label");
	T_EQ_STR(u.host, "smtp.provider.net", "host lowercased");
	T_EQ_INT(smtpc_url_parse("smtps://me@example.com@[::1]:4650", &u, err,
	    sizeof(err)), 0, "smtps URL with an IPv6 host");
	T_OK(u.tls == SMTPC_TLS_IMPLICIT && u.port == 4650, "implicit TLS, port");
	T_EQ_STR(u.label, "me@example.com", "label holds an @");
	T_EQ_STR(u.host, "::1", "IPv6 unbracketed");
	T_EQ_INT(smtpc_url_parse("smtp+tls://a%40b@h", &u, err, sizeof(err)), 0,
	    "escaped label");
	T_EQ_STR(u.label, "a@b", "%40 decoded");
	T_EQ_INT(u.port, 587, "smtp+tls default port 587");
	T_EQ_INT(smtpc_url_parse("smtps://h", &u, err, sizeof(err)), 0, "smtps");
	T_EQ_INT(u.port, 465, "smtps default port 465");
	T_EQ_INT(smtpc_url_parse("http://h", &u, err, sizeof(err)), -1,
	    "other scheme refused");
	T_EQ_INT(smtpc_url_parse("smtp://u:secret@h", &u, err, sizeof(err)), -1,
	    "password in URL refused");
	T_EQ_INT(smtpc_url_parse("smtp://h:0", &u, err, sizeof(err)), -1, "port 0");
	T_EQ_INT(smtpc_url_parse("smtp://h:70000", &u, err, sizeof(err)), -1,
	    "port too big");
	T_EQ_INT(smtpc_url_parse("smtp://h:", &u, err, sizeof(err)), -1, "empty port");
	T_EQ_INT(smtpc_url_parse("smtp://", &u, err, sizeof(err)), -1, "no host");
	T_EQ_INT(smtpc_url_parse("smtp://h/x", &u, err, sizeof(err)), -1, "path");
	T_EQ_INT(smtpc_url_parse("smtp://h o", &u, err, sizeof(err)), -1,
	    "space in host");
	T_EQ_INT(smtpc_url_parse("smtp://[::1", &u, err, sizeof(err)), -1,
	    "unclosed bracket");
	T_EQ_INT(smtpc_url_parse("smtp://a%4@h", &u, err, sizeof(err)), -1,
	    "bad escape");
	T_EQ_INT(smtpc_url_parse("smtp://%0a@h", &u, err, sizeof(err)), -1,
	    "escaped newline in label refused");
}

static void
test_credentials(void)
{
	char user[64], pass[64], err[256];
	struct table *t;

	setenv("SMTPC_TEST_PASS", "s3cret", 1);
	T_EQ_INT(smtpc_credentials(NULL, "bob", "SMTPC_TEST_PASS", user,
	    sizeof(user), pass, sizeof(pass), err, sizeof(err)), 0,
	    "credentials from the environment");
	T_EQ_STR(user, "bob", "user is the label");
	T_EQ_STR(pass, "s3cret", "password from the variable");
	unsetenv("SMTPC_TEST_PASS");
	T_EQ_INT(table_open(&t, "relay = bob:pa:ss, bad = nocolon", err,
	    sizeof(err)), 0, "inline secrets table");
	T_EQ_INT(smtpc_credentials(t, "relay", NULL, user, sizeof(user), pass,
	    sizeof(pass), err, sizeof(err)), 0, "credentials from a table");
	T_EQ_STR(user, "bob", "table user");
	T_EQ_STR(pass, "pa:ss", "table password split at the first ':'");
	T_EQ_INT(smtpc_credentials(t, "bad", NULL, user, sizeof(user), pass,
	    sizeof(pass), err, sizeof(err)), -1, "value without ':' refused");
	T_EQ_INT(smtpc_credentials(t, "nope", NULL, user, sizeof(user), pass,
	    sizeof(pass), err, sizeof(err)), -1, "unknown label refused");
	T_EQ_INT(smtpc_credentials(t, "relay", NULL, user, 3, pass,
	    sizeof(pass), err, sizeof(err)), -1, "too long for the buffer");
	table_close(t);
	T_EQ_INT(smtpc_credentials(NULL, "bob", "SMTPC_TEST_PASS", user,
	    sizeof(user), pass, sizeof(pass), err, sizeof(err)), -1,
	    "unset variable is an error");
}

int
main(void)
{
	test_reply();
	test_caps();
	test_dot();
	test_url();
	test_credentials();
	return t_done();
}
