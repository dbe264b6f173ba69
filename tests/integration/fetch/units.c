/*
 * Unit tests of fetch's own code (cmd/fetch is not in libmail, so
 * tests/unit cannot reach it): URL parsing, MDA command splitting, UID
 * sets, the state file (save, load, intents and their recovery), and the
 * IMAP and POP3 response parsers. Built and run by units.sh.
 */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "fetch.h"
#include "t.h"

static void
test_url(void)
{
	struct account a;
	char err[256];

	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("imaps://bob@mail.example.org/INBOX", &a, err,
	    sizeof(err)), 0, "imaps URL parses");
	T_EQ_INT(a.proto, PROTO_IMAP, "imaps: IMAP");
	T_EQ_INT(a.tls, TLS_IMPLICIT, "imaps: implicit TLS");
	T_EQ_STR(a.host, "mail.example.org", "host");
	T_EQ_STR(a.user, "bob", "user");
	T_OK(a.port == NULL, "no port: default later");
	T_EQ_STR(a.folders[0], "INBOX", "folder");

	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("imap://dst@dst.test:p%40ss@dovecot:143", &a, err,
	    sizeof(err)), 0, "user with @ and a password");
	T_EQ_STR(a.user, "dst@dst.test", "user keeps its @ (last @ separates)");
	T_EQ_STR(a.password, "p@ss", "password %-decoded");
	T_EQ_STR(a.host, "dovecot", "host after the last @");
	T_EQ_STR(a.port, "143", "port");

	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("pop3s://u@[::1]:995", &a, err, sizeof(err)), 0,
	    "IPv6 literal");
	T_EQ_STR(a.host, "::1", "IPv6 host");
	T_EQ_INT(a.proto, PROTO_POP3, "pop3s: POP3");

	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("pop3://u@h/INBOX", &a, err, sizeof(err)), -1,
	    "POP3 with a folder refused");
	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("http://u@h", &a, err, sizeof(err)), -1,
	    "unknown scheme refused");
	T_OK(strstr(err, "imap://") != NULL, "error names the schemes: %s", err);
	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("imap://u@h:99999", &a, err, sizeof(err)), -1,
	    "port out of range refused");
	memset(&a, 0, sizeof(a));
	T_EQ_INT(url_parse("imap://u%00x@h", &a, err, sizeof(err)), -1,
	    "%00 refused");
}

static void
test_mda(void)
{
	char **argv, err[256];

	T_EQ_INT(mda_split("/bin/echo 'a b' \"c \\\"d\\\"\" e\\ f", &argv, err,
	    sizeof(err)), 0, "MDA command splits");
	T_EQ_STR(argv[0], "/bin/echo", "argv[0]");
	T_EQ_STR(argv[1], "a b", "single quotes");
	T_EQ_STR(argv[2], "c \"d\"", "double quotes with escapes");
	T_EQ_STR(argv[3], "e f", "backslash outside quotes");
	T_OK(argv[4] == NULL, "argv ends");
	T_EQ_INT(mda_split("sh -c 'x", &argv, err, sizeof(err)), -1,
	    "unbalanced quote refused");
	T_EQ_INT(mda_split("   ", &argv, err, sizeof(err)), -1, "empty refused");
	T_EQ_INT(mda_split("sh", &argv, err, sizeof(err)), 0, "bare name");
	T_OK(argv[0][0] == '/', "looked up in PATH: %s", argv[0]);
}

static void
test_uidset(void)
{
	struct uidset s = { 0 };
	struct buf b;

	buf_init(&b, 4096);
	uidset_add(&s, 1, 1);
	uidset_add(&s, 2, 2);
	uidset_add(&s, 5, 9);
	uidset_add(&s, 3, 3);
	uidset_add(&s, 20, 20);
	uidset_format(&s, &b);
	T_EQ_STR(b.data, "1:3,5:9,20", "ranges merge");
	uidset_add(&s, 4, 19);
	buf_reset(&b);
	uidset_format(&s, &b);
	T_EQ_STR(b.data, "1:20", "a range bridges the gaps");
	T_EQ_INT(uidset_first_missing(&s), 21, "first missing");
	T_OK(uidset_has(&s, 7) && !uidset_has(&s, 21), "membership");
	uidset_free(&s);
	T_EQ_INT(uidset_parse(&s, "7,1:3,10:12"), 0, "parse");
	T_EQ_INT(uidset_first_missing(&s), 4, "first missing after parse");
	T_EQ_INT(uidset_parse(&s, "1:x"), -1, "bad set refused");
	uidset_free(&s);
	buf_free(&b);
}

static void
test_state(const char *dir)
{
	struct fstate st, st2;
	struct fstate_folder *f;
	char path[512], md[512], p[600], err[256];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/sub/acct.state", dir);
	T_EQ_INT(fstate_open(&st, path, 0, err, sizeof(err)), 1, "new state");
	T_EQ_INT(fstate_open(&st2, path, 0, err, sizeof(err)), 0,
	    "second open sees the lock");
	fstate_close(&st2);
	f = fstate_folder(&st, "Sent items %", 1);
	f->uidvalidity = 42;
	uidset_add(&f->done, 1, 100);
	fstate_uidl_add(&st, "UID-b");
	fstate_uidl_add(&st, "UID-a");
	fstate_pending_add(&st, "Sent items %", 101, NULL, "100.M1P1.host");
	fstate_pending_add(&st, "Sent items %", 102, NULL, "100.M2P1.host");
	T_EQ_INT(fstate_save(&st, err, sizeof(err)), 0, "save");
	fstate_close(&st);

	snprintf(md, sizeof(md), "%s/Maildir", dir);
	snprintf(p, sizeof(p), "%s/new", md);
	mkdir(md, 0700);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/new/100.M1P1.host,S=5,W=6", md);
	fp = fopen(p, "w");
	fclose(fp);

	T_EQ_INT(fstate_open(&st, path, 0, err, sizeof(err)), 1, "reload");
	f = fstate_folder(&st, "Sent items %", 0);
	T_OK(f != NULL && f->uidvalidity == 42, "folder name with blanks and %% kept");
	T_OK(f != NULL && uidset_has(&f->done, 100) && !uidset_has(&f->done, 101),
	    "UIDs kept");
	T_OK(fstate_uidl_has(&st, "UID-a") && fstate_uidl_has(&st, "UID-b") &&
	    !fstate_uidl_has(&st, "UID-c"), "UIDLs kept");
	T_EQ_INT(st.npending, 2, "intents kept");
	T_EQ_INT(fstate_recover(&st, md, err, sizeof(err)), 1,
	    "recovery finds the one delivered");
	f = fstate_folder(&st, "Sent items %", 0);
	T_OK(uidset_has(&f->done, 101) && !uidset_has(&f->done, 102),
	    "delivered intent recorded, the other dropped");
	T_EQ_INT(st.npending, 0, "no intent left");
	fstate_close(&st);

	fp = fopen(path, "w");
	fputs("folder INBOX x\n", fp);
	fclose(fp);
	T_EQ_INT(fstate_open(&st, path, 0, err, sizeof(err)), -1,
	    "a damaged state is an error, not an empty state");
	T_OK(strstr(err, ":1:") != NULL, "names the line: %s", err);
	fstate_close(&st);
}

static void
test_imap_resp(void)
{
	struct imap_resp r;
	struct imap_fetch f;

	T_EQ_INT(imap_resp_parse("* OK [UIDVALIDITY 1795311922] UIDs valid", &r),
	    0, "untagged OK");
	T_EQ_STR(r.code, "UIDVALIDITY", "response code");
	T_EQ_INT(strtoul(r.code_arg, NULL, 10), 1795311922, "code argument");
	T_EQ_INT(imap_resp_parse("f12 NO [AUTHENTICATIONFAILED] nope", &r), 0,
	    "tagged NO");
	T_OK(r.type == IMAP_TAGGED && r.status == ST_NO &&
	    strcmp(r.tag, "f12") == 0, "tag and status");
	T_EQ_INT(imap_resp_parse("* 23 EXISTS", &r), 0, "EXISTS");
	T_OK(r.num == 23 && strcmp(r.word, "EXISTS") == 0, "number and word");
	T_EQ_INT(imap_resp_parse("* 99999999999 EXISTS", &r), -1,
	    "number over 32 bits refused");
	T_EQ_INT(imap_resp_parse("f1 HUH", &r), -1, "unknown tagged status refused");

	T_EQ_INT(imap_fetch_begin(&f, 1, "(UID 7 BODY[] {4168}"), 1,
	    "FETCH announces the body literal");
	T_OK(f.uid == 7 && f.literal == 4168 && f.literal_body, "UID, size, body");
	T_EQ_INT(imap_fetch_continue(&f, ")"), 0, "and ends");
	T_EQ_INT(imap_fetch_begin(&f, 1, "(BODY[] {5}"), 1, "UID after the body");
	T_EQ_INT(imap_fetch_continue(&f, " UID 9 FLAGS (\\Seen))"), 0,
	    "the rest after the literal");
	T_EQ_INT(f.uid, 9, "UID found after the literal");
	T_EQ_INT(imap_fetch_begin(&f, 1, "(UID 3 ENVELOPE (\"d\" {3}"), 1,
	    "a literal inside ENVELOPE");
	T_OK(!f.literal_body, "is not the body");
	T_EQ_INT(imap_fetch_continue(&f, " NIL) BODY[] \"a \\\"b\\\"\")"), 0,
	    "quoted body after it");
	T_OK(f.qbody != NULL && f.qbodylen == 7, "quoted body found");
	T_EQ_INT(imap_fetch_begin(&f, 1, "(UID 3 BODY[] NIL)"), 0, "BODY[] NIL");
	T_OK(f.body_nil && !f.has_body, "NIL is no body");
	T_EQ_INT(imap_fetch_begin(&f, 1, "(UID 3 BODY[] {99999999999999}"), -1,
	    "absurd literal refused");
	T_EQ_INT(imap_fetch_begin(&f, 1, "(UID 3"), -1, "unterminated list refused");
	T_EQ_INT(imap_fetch_begin(&f, 1, "(UID 0)"), -1, "UID 0 refused");
	T_OK(imap_capa_has("IMAP4rev1 IDLE AUTH=PLAIN", "auth=plain"),
	    "capability lookup, any case");
	T_OK(!imap_capa_has("IMAP4rev1 IDLER", "IDLE"), "whole words only");
}

static void
test_pop3_resp(void)
{
	unsigned long n;
	unsigned long long o;
	const char *u;
	size_t ul;

	T_EQ_INT(pop3_status("+OK ready"), 1, "+OK");
	T_EQ_INT(pop3_status("-ERR no"), 0, "-ERR");
	T_EQ_INT(pop3_status("+OKAY"), -1, "+OKAY is not +OK");
	T_EQ_INT(pop3_uidl_line("3 000000036b024bf8", &n, &u, &ul), 0, "UIDL line");
	T_OK(n == 3 && ul == 16 && strncmp(u, "000000036b024bf8", ul) == 0,
	    "number and UIDL");
	T_EQ_INT(pop3_uidl_line("3 a\tb", &n, &u, &ul), -1, "control in UIDL refused");
	T_EQ_INT(pop3_uidl_line("0 abc", &n, &u, &ul), -1, "message 0 refused");
	T_EQ_INT(pop3_list_line("2 4168", &n, &o), 0, "LIST line");
	T_OK(n == 2 && o == 4168, "LIST values");
}

int
main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: units DIR\n");
		return 2;
	}
	test_url();
	test_mda();
	test_uidset();
	test_state(argv[1]);
	test_imap_resp();
	test_pop3_resp();
	return t_done();
}
