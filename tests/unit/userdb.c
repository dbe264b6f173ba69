/* Unit tests for lib/userdb. */
#include <stdlib.h>
#include <unistd.h>

#include "conf.h"
#include "userdb.h"
#include "t.h"

static struct userdb *
open_text(const char *text, char *err, size_t errlen)
{
	struct conf	*c = NULL;
	struct userdb	*db = NULL;

	if (conf_load_string(&c, "t.conf", text, err, errlen) == -1)
		return NULL;
	if (userdb_open(&db, c, err, errlen) == -1)
		db = NULL;
	conf_free(c);
	return db;
}

int
main(void)
{
	struct userdb	*db;
	struct user	 u;
	char		 err[512], path[256], text[1024];
	FILE		*f;

	T_EQ_INT(userdb_name_ok("alice"), 1, "plain name");
	T_EQ_INT(userdb_name_ok("Alice.B+tag@Example.org"), 1, "address");
	T_EQ_INT(userdb_name_ok("../root"), 0, "dot dot refused");
	T_EQ_INT(userdb_name_ok("a/b"), 0, "slash refused");
	T_EQ_INT(userdb_name_ok(".alice"), 0, "leading dot refused");
	T_EQ_INT(userdb_name_ok("a@b@c"), 0, "two @ refused");
	T_EQ_INT(userdb_name_ok("a@"), 0, "empty domain refused");
	T_EQ_INT(userdb_name_ok("@b"), 0, "empty local part refused");
	T_EQ_INT(userdb_name_ok("a\nb"), 0, "control char refused");
	T_EQ_INT(userdb_name_ok("a b"), 0, "space refused");
	T_EQ_INT(userdb_name_ok("\xc3\xa9t\xc3\xa9"), 0, "8-bit refused");
	T_EQ_INT(userdb_name_ok(""), 0, "empty refused");

	/* template, as seed 000: mail_home=/var/mail/%Lu, mail_uid 1000 */
	db = open_text("[users]\nhome = /var/mail/%Lu\nmail_user = 1000:1000\n",
	    err, sizeof(err));
	T_OK(db != NULL, "template config opens: %s", db ? "" : err);
	if (db != NULL) {
		T_EQ_INT(userdb_lookup(db, "Alice@Example.org", &u, err,
		    sizeof(err)), 1, "template user found");
		T_EQ_STR(u.home, "/var/mail/alice@example.org", "%Lu lowercases");
		T_EQ_STR(u.maildir, "/var/mail/alice@example.org/Maildir",
		    "Maildir under home");
		T_EQ_INT(u.uid, 1000, "mail_user uid");
		T_EQ_INT(u.gid, 1000, "mail_user gid");
		T_EQ_INT(userdb_lookup(db, "../etc", &u, err, sizeof(err)), 0,
		    "bad name is unknown, before any lookup");
		userdb_close(db);
	}
	db = open_text("[users]\nhome = /srv/%d/%n\nmaildir = /m/%Ld/%Ln/%h\n",
	    err, sizeof(err));
	T_OK(db != NULL, "absolute maildir template opens");
	if (db != NULL) {
		userdb_lookup(db, "Bob@Dom.example", &u, err, sizeof(err));
		T_EQ_STR(u.home, "/srv/Dom.example/Bob", "%d and %n");
		T_EQ_STR(u.maildir, "/m/dom.example/bob//srv/Dom.example/Bob",
		    "%Ld %Ln %h in an absolute maildir");
		T_EQ_INT(u.uid, getuid(), "no mail_user: own uid");
		userdb_close(db);
	}

	/* userbase */
	snprintf(path, sizeof(path), "/tmp/t-userdb.%ld", (long)getpid());
	if ((f = fopen(path, "w")) == NULL)
		return 1;
	fprintf(f, "# comment\nalice  5001:5002:/home/alice\n"
	    "bob 5003:5003:/home/bob:x\nbad 12:/nohome\n"
	    "carol 7:7:relative\n");
	fclose(f);
	snprintf(text, sizeof(text), "[users]\nuserbase = file:%s\n"
	    "maildir = Mail/Inbox\n", path);
	db = open_text(text, err, sizeof(err));
	T_OK(db != NULL, "userbase config opens: %s", db ? "" : err);
	if (db != NULL) {
		T_EQ_INT(userdb_lookup(db, "alice", &u, err, sizeof(err)), 1,
		    "userbase user found");
		T_EQ_INT(u.uid, 5001, "userbase uid");
		T_EQ_INT(u.gid, 5002, "userbase gid");
		T_EQ_STR(u.maildir, "/home/alice/Mail/Inbox", "relative maildir");
		T_EQ_INT(userdb_lookup(db, "ALICE", &u, err, sizeof(err)), 1,
		    "lowercased retry");
		T_EQ_INT(userdb_lookup(db, "bob", &u, err, sizeof(err)), 1,
		    "home with a colon");
		T_EQ_STR(u.home, "/home/bob:x", "home keeps its colon");
		T_EQ_INT(userdb_lookup(db, "dave", &u, err, sizeof(err)), 0,
		    "absent from userbase and no template: unknown");
		T_EQ_INT(userdb_lookup(db, "bad", &u, err, sizeof(err)), -1,
		    "malformed entry is an error");
		T_OK(strstr(err, "expected uid:gid:/home") != NULL,
		    "error says what was expected: %s", err);
		T_EQ_INT(userdb_lookup(db, "carol", &u, err, sizeof(err)), -1,
		    "relative home is an error");
		userdb_close(db);
	}
	snprintf(text, sizeof(text), "[users]\nuserbase = file:%s\n"
	    "home = /var/vmail/%%n\nusers = dave, erin\nmail_user = 9:9\n",
	    path);
	db = open_text(text, err, sizeof(err));
	T_OK(db != NULL, "userbase + template + users opens: %s", db ? "" : err);
	if (db != NULL) {
		T_EQ_INT(userdb_lookup(db, "alice", &u, err, sizeof(err)), 1,
		    "userbase first");
		T_EQ_INT(u.uid, 5001, "userbase wins over template");
		T_EQ_INT(userdb_lookup(db, "dave", &u, err, sizeof(err)), 1,
		    "template user in users");
		T_EQ_STR(u.maildir, "/var/vmail/dave/Maildir", "template maildir");
		T_EQ_INT(u.uid, 9, "template uid");
		T_EQ_INT(userdb_lookup(db, "frank", &u, err, sizeof(err)), 0,
		    "template user not in users: unknown");
		userdb_close(db);
	}
	unlink(path);

	/* errors name file:line */
	db = open_text("[users]\n\nhome = relative/%u\n", err, sizeof(err));
	T_OK(db == NULL && strstr(err, "t.conf:3") != NULL,
	    "relative home refused with file:line: %s", err);
	db = open_text("[users]\nhome = /x/%q\n", err, sizeof(err));
	T_OK(db == NULL && strstr(err, "t.conf:2") != NULL,
	    "unknown %% escape refused: %s", err);
	db = open_text("[users]\nhomedir = /x\n", err, sizeof(err));
	T_OK(db == NULL && strstr(err, "t.conf:2") != NULL,
	    "unknown key refused: %s", err);
	db = open_text("[users]\nuserbase = file:/nonexistent/ub\n", err,
	    sizeof(err));
	T_OK(db == NULL && strstr(err, "t.conf:2") != NULL,
	    "missing userbase file refused: %s", err);

	/* system users */
	T_EQ_INT(userdb_open(&db, NULL, err, sizeof(err)), 0, "no config: system");
	if (db != NULL) {
		T_EQ_INT(userdb_lookup(db, "root", &u, err, sizeof(err)), 1,
		    "root from passwd");
		T_EQ_INT(u.uid, 0, "root uid");
		T_EQ_STR(u.maildir, "/root/Maildir", "home/Maildir");
		T_EQ_INT(userdb_lookup(db, "no-such-user-here", &u, err,
		    sizeof(err)), 0, "unknown system user");
		userdb_close(db);
	}
	return t_done();
}
