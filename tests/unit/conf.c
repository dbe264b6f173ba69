/* Unit tests for lib/conf: every rule of courriel.conf(5) and every error. */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "t.h"

static char	dir[] = "/tmp/conf-test.XXXXXX";
static char	err[512];

static struct conf *
load(const char *text)
{
	struct conf	*c = NULL;

	err[0] = '\0';
	if (conf_load_string(&c, "test.conf", text, err, sizeof(err)) == -1)
		return NULL;
	return c;
}

/* Loading fails and the message is exactly want. */
static void
load_fails(const char *text, const char *want, const char *what)
{
	struct conf	*c = load(text);

	T_OK(c == NULL, "%s: load fails", what);
	T_EQ_STR(err, want, what);
	conf_free(c);
}

static void
write_file(const char *path, const char *text)
{
	FILE	*fp = fopen(path, "w");

	if (fp == NULL) {
		perror(path);
		exit(1);
	}
	fputs(text, fp);
	fclose(fp);
}

static void
test_syntax(void)
{
	struct conf			*c;
	const struct conf_section	*s, *g;
	const struct conf_entry		*e;
	int				 n;

	c = load("; top comment\n"
	    "# hash comment\n"
	    "hostname = mail.example.org\n"
	    "\n"
	    "[listener submission]\n"
	    "  port = 587   ; inline comment\n"
	    "Tls=required\n"
	    "auth: yes\n"
	    "[listener smtp]\n"
	    "port = 25\n"
	    "[users]\n"
	    "[Account work]\n"
	    "password = $2b$08$abc$def#x\n"
	    "list = a ;b\n"
	    "list = c\n");
	T_OK(c != NULL, "a config with comments, sections, labels loads (%s)",
	    err);
	if (c == NULL)
		return;
	g = conf_global(c);
	T_EQ_STR(g->type, "", "global section has type \"\"");
	T_OK(g->label == NULL && g->line == 0, "global section: no label, line 0");
	T_EQ_STR(conf_get(g, "hostname", NULL), "mail.example.org",
	    "key before any section is global");
	s = conf_section(c, "listener", "submission");
	T_OK(s != NULL, "[listener submission] found by type and label");
	T_EQ_INT(s ? s->line : 0, 5, "section line number");
	T_EQ_STR(conf_get(s, "port", NULL), "587", "indented key, inline comment stripped");
	T_EQ_STR(conf_get(s, "TLS", NULL), "required", "keys are case-insensitive");
	T_EQ_STR(conf_get(s, "auth", NULL), "yes", "'key: value' accepted");
	e = conf_entry(s, "port");
	T_EQ_INT(e ? e->line : 0, 6, "entry line number");
	T_EQ_STR(conf_get(s, "missing", "dflt"), "dflt", "absent key gives default");
	s = conf_section(c, "listener", NULL);
	T_EQ_STR(s ? s->label : NULL, "submission", "label NULL: first of its type");
	n = 0;
	for (s = NULL; (s = conf_next_section(c, "LISTENER", s)) != NULL;)
		n++;
	T_EQ_INT(n, 2, "conf_next_section walks a type (case-insensitive)");
	s = conf_section(c, "users", NULL);
	T_OK(s != NULL && s->nentries == 0 && s->label == NULL,
	    "an empty section exists");
	s = conf_section(c, "account", "work");
	T_OK(s != NULL, "section type is case-insensitive");
	T_EQ_STR(s ? s->type : NULL, "account", "type stored lowercased");
	T_EQ_STR(conf_get(s, "password", NULL), "$2b$08$abc$def#x",
	    "'$' not before '{' and '#' inside a value are literal");
	T_EQ_STR(conf_get(s, "list", NULL), "c", "conf_get returns the last occurrence");
	e = conf_next(s, "list", NULL);
	T_EQ_STR(e ? e->value : NULL, "a", "conf_next: first occurrence, ' ;' starts a comment");
	e = conf_next(s, "list", e);
	T_EQ_STR(e ? e->value : NULL, "c", "conf_next: second occurrence");
	T_OK(conf_next(s, "list", e) == NULL, "conf_next: end");
	T_OK(conf_section(c, "account", "home") == NULL, "no such label");
	conf_free(c);

	c = load("");
	T_OK(c != NULL && conf_global(c)->nentries == 0, "empty config loads");
	conf_free(c);
	c = load("\xef\xbb\xbf[a]\r\nk = v\r\n");
	T_OK(c != NULL && conf_section(c, "a", NULL) != NULL,
	    "UTF-8 BOM and CRLF line ends");
	T_EQ_STR(c ? conf_get(conf_section(c, "a", NULL), "k", NULL) : NULL,
	    "v", "CR stripped from value");
	conf_free(c);
	c = load("k = v");
	T_EQ_STR(c ? conf_get(conf_global(c), "k", NULL) : NULL, "v",
	    "last line without newline");
	conf_free(c);
	c = load("[users] ; comment\nk =\n");
	T_OK(c != NULL, "comment after a header (%s)", err);
	T_EQ_STR(c ? conf_get(conf_section(c, "users", NULL), "k", NULL) : NULL,
	    "", "empty value");
	conf_free(c);
}

static void
test_errors(void)
{
	char	big[70000 + 16];

	load_fails("a = 1\nnovalue\n",
	    "test.conf:2: expected 'key = value', '[section]' or a comment",
	    "line without '='");
	load_fails("[a]\n[b x]\n[a]\n",
	    "test.conf:3: duplicate section [a] (first at line 1)",
	    "duplicate section");
	load_fails("[b x]\n[b y]\n[b x]\n",
	    "test.conf:3: duplicate section [b x] (first at line 1)",
	    "duplicate section with label");
	load_fails("\n[a\n", "test.conf:2: expected ']' closing the section header",
	    "unclosed header");
	load_fails("[a] x\n", "test.conf:1: unexpected text after the section header",
	    "text after header");
	load_fails("[a b c]\n", "test.conf:1: expected [type] or [type label] "
	    "(type: letters, digits, '_' or '-'; label: one word)",
	    "two labels");
	load_fails("[]\n", "test.conf:1: expected [type] or [type label] "
	    "(type: letters, digits, '_' or '-'; label: one word)",
	    "empty header");
	load_fails("[a/b]\n", "test.conf:1: expected [type] or [type label] "
	    "(type: letters, digits, '_' or '-'; label: one word)",
	    "bad type character");
	load_fails("x\n= v\n", "test.conf:1: expected 'key = value', '[section]' "
	    "or a comment", "first error wins");
	load_fails("ok = 1\n = v\n", "test.conf:2: expected 'key = value' with a "
	    "key of letters, digits, '_', '-' or '.'", "empty key");
	load_fails("a b = v\n", "test.conf:1: expected 'key = value' with a "
	    "key of letters, digits, '_', '-' or '.'", "key with a space");
	{
		char	*many = malloc(10002 * 10 + 1), *p = many;
		int	 i;

		for (i = 0; i < 10001; i++)
			p += sprintf(p, "[s %d]\n", i);
		load_fails(many, "test.conf:10001: too many sections (max 10000)",
		    "number of sections is bounded");
		free(many);
	}
	memset(big, 'x', sizeof(big) - 1);
	memcpy(big, "k = ", 4);
	big[sizeof(big) - 1] = '\0';
	load_fails(big, "test.conf:1: line too long (max 65536 bytes)",
	    "line too long");
	big[60000] = '\0';
	{
		struct conf	*c = load(big);

		T_OK(c != NULL && strlen(conf_get(conf_global(c), "k", "")) ==
		    60000 - 4, "a 60000-byte line loads whole");
		conf_free(c);
	}
}

static void
test_expand(void)
{
	struct conf	*c;
	char		*r;

	setenv("CT_USER", "alice", 1);
	setenv("CT_EMPTY", "", 1);
	unsetenv("CT_UNSET");
	c = load("[account a]\n"
	    "user = ${CT_USER}\n"
	    "pass = x${CT_UNSET:-dflt}y\n"
	    "host = ${CT_EMPTY:-fallback}\n"
	    "empty = <${CT_EMPTY}>\n"
	    "nested = ${CT_UNSET:-${CT_USER}@example.org}\n"
	    "lit = $${CT_USER} $$ $x $\n"
	    "def = ${CT_UNSET:-}\n");
	T_OK(c != NULL, "expansion loads (%s)", err);
	if (c != NULL) {
		const struct conf_section *s = conf_section(c, "account", "a");

		T_EQ_STR(conf_get(s, "user", NULL), "alice", "${VAR}");
		T_EQ_STR(conf_get(s, "pass", NULL), "xdflty", "${UNSET:-default}");
		T_EQ_STR(conf_get(s, "host", NULL), "fallback",
		    "${EMPTY:-default} uses the default");
		T_EQ_STR(conf_get(s, "empty", NULL), "<>", "${EMPTY} is empty, no error");
		T_EQ_STR(conf_get(s, "nested", NULL), "alice@example.org",
		    "default is expanded");
		T_EQ_STR(conf_get(s, "lit", NULL), "${CT_USER} $$ $x $",
		    "$${ is a literal ${, other $ literal");
		T_EQ_STR(conf_get(s, "def", NULL), "", "empty default");
	}
	conf_free(c);
	load_fails("[a]\n\nk = ${CT_UNSET}\n",
	    "test.conf:3: k: environment variable CT_UNSET is not set "
	    "(${CT_UNSET:-default} gives a default)", "unset variable names file:line");
	load_fails("k = ${CT_USER\n", "test.conf:1: k: ${CT_USER: missing '}'",
	    "unterminated ${");
	load_fails("k = ${CT_USER?x}\n", "test.conf:1: k: ${CT_USER: expected "
	    "'}' or ':-default}'", "bad character after the name");
	load_fails("k = ${CT_USER:-abc\n", "test.conf:1: k: ${CT_USER: missing '}'",
	    "unterminated default");
	load_fails("k = ${1A}\n", "test.conf:1: k: expected a variable name after "
	    "'${' ([A-Za-z_][A-Za-z0-9_]*)", "bad variable name");
	load_fails("k = ${}\n", "test.conf:1: k: expected a variable name after "
	    "'${' ([A-Za-z_][A-Za-z0-9_]*)", "empty variable name");
	T_EQ_INT(conf_expand("a${CT_USER}b", &r, err, sizeof(err)), 0, "conf_expand");
	T_EQ_STR(r, "aaliceb", "conf_expand result");
	free(r);
	T_EQ_INT(conf_expand("${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-${A:-x}"
	    "}}}}}}}}}", &r, err, sizeof(err)), -1, "nesting is bounded");
}

static void
test_typed(void)
{
	static const char *const words[] = { "none", "starttls", "tls", NULL };
	struct conf			*c;
	const struct conf_section	*s;
	unsigned long long		 sz;
	long				 v;
	int				 b;

	c = load("[t]\n"
	    "b1 = yes\nb2 = Off\nb3 = 1\nb4 = maybe\n"
	    "n1 = 42\nn2 = -5\nn3 = 12x\nn4 = 99999999999999999999999\nn5 =\n"
	    "s1 = 10K\ns2 = 64m\ns3 = 1G\ns4 = 5X\n"
	    "d1 = 30\nd2 = 5m\nd3 = 2h\nd4 = 1d\nd5 = 1w\nd6 = -3\n"
	    "e1 = STARTTLS\ne2 = ssl\n");
	s = c ? conf_section(c, "t", NULL) : NULL;
	T_OK(s != NULL, "typed config loads");
	if (s == NULL)
		return;
	b = -1;
	T_EQ_INT(conf_bool(c, s, "b1", &b, err, sizeof(err)), 1, "bool yes found");
	T_EQ_INT(b, 1, "yes is 1");
	T_EQ_INT(conf_bool(c, s, "b2", &b, err, sizeof(err)), 1, "bool Off found");
	T_EQ_INT(b, 0, "Off is 0");
	T_OK(conf_bool(c, s, "b3", &b, err, sizeof(err)) == 1 && b == 1, "1 is true");
	b = 7;
	T_EQ_INT(conf_bool(c, s, "bx", &b, err, sizeof(err)), 0, "absent bool");
	T_EQ_INT(b, 7, "absent bool leaves *r");
	T_EQ_INT(conf_bool(c, s, "b4", &b, err, sizeof(err)), -1, "bad bool");
	T_EQ_STR(err, "test.conf:5: b4: expected yes or no, got 'maybe'",
	    "bad bool message");

	T_OK(conf_long(c, s, "n1", 0, 100, &v, err, sizeof(err)) == 1 && v == 42,
	    "long 42");
	T_OK(conf_long(c, s, "n2", -10, 10, &v, err, sizeof(err)) == 1 && v == -5,
	    "long -5");
	T_EQ_INT(conf_long(c, s, "n1", 0, 10, &v, err, sizeof(err)), -1,
	    "long over max");
	T_EQ_STR(err, "test.conf:6: n1: expected an integer from 0 to 10, got '42'",
	    "long range message");
	T_EQ_INT(conf_long(c, s, "n3", 0, 100, &v, err, sizeof(err)), -1,
	    "long with junk");
	T_EQ_INT(conf_long(c, s, "n4", 0, 100, &v, err, sizeof(err)), -1,
	    "long overflow");
	T_EQ_INT(conf_long(c, s, "n5", 0, 100, &v, err, sizeof(err)), -1,
	    "empty long");

	T_OK(conf_size(c, s, "s1", &sz, err, sizeof(err)) == 1 && sz == 10240,
	    "size 10K");
	T_OK(conf_size(c, s, "s2", &sz, err, sizeof(err)) == 1 &&
	    sz == 64ULL << 20, "size 64m");
	T_OK(conf_size(c, s, "s3", &sz, err, sizeof(err)) == 1 &&
	    sz == 1ULL << 30, "size 1G");
	T_EQ_INT(conf_size(c, s, "s4", &sz, err, sizeof(err)), -1, "bad size");
	T_EQ_STR(err, "test.conf:14: s4: expected a size (123, 10K, 64M, 1G), "
	    "got '5X'", "bad size message");

	T_OK(conf_duration(c, s, "d1", &v, err, sizeof(err)) == 1 && v == 30,
	    "duration 30");
	T_OK(conf_duration(c, s, "d2", &v, err, sizeof(err)) == 1 && v == 300,
	    "duration 5m");
	T_OK(conf_duration(c, s, "d3", &v, err, sizeof(err)) == 1 && v == 7200,
	    "duration 2h");
	T_OK(conf_duration(c, s, "d4", &v, err, sizeof(err)) == 1 && v == 86400,
	    "duration 1d");
	T_EQ_INT(conf_duration(c, s, "d5", &v, err, sizeof(err)), -1,
	    "duration 1w is bad");
	T_EQ_STR(err, "test.conf:19: d5: expected a duration (30, 30s, 5m, 2h, "
	    "1d), got '1w'", "bad duration message");
	T_EQ_INT(conf_duration(c, s, "d6", &v, err, sizeof(err)), -1,
	    "negative duration");

	T_OK(conf_enum(c, s, "e1", words, &b, err, sizeof(err)) == 1 && b == 1,
	    "enum, case-insensitive");
	T_EQ_INT(conf_enum(c, s, "e2", words, &b, err, sizeof(err)), -1, "bad enum");
	T_EQ_STR(err, "test.conf:22: e2: expected one of none, starttls, tls, "
	    "got 'ssl'", "bad enum message");
	T_EQ_INT(conf_enum(c, s, "ex", words, &b, err, sizeof(err)), 0,
	    "absent enum");
	conf_free(c);
}

static void
test_check_keys(void)
{
	static const char *const allowed[] = { "port", "tls", NULL };
	struct conf	*c;

	c = load("top = 1\n[listener smtp]\nport = 25\nTLS = no\n\nprot = 1\n");
	T_OK(c != NULL, "check_keys config loads");
	if (c == NULL)
		return;
	T_EQ_INT(conf_check_keys(c, conf_section(c, "listener", NULL), allowed,
	    err, sizeof(err)), -1, "unknown key found");
	T_EQ_STR(err, "test.conf:6: unknown key 'prot' in [listener smtp]",
	    "unknown key names line and section");
	T_EQ_INT(conf_check_keys(c, conf_global(c), allowed, err, sizeof(err)),
	    -1, "unknown global key");
	T_EQ_STR(err, "test.conf:1: unknown key 'top' in the top level",
	    "unknown global key message");
	T_EQ_INT(conf_error(c, 12, err, sizeof(err), "%s: bad", "x"), -1,
	    "conf_error returns -1");
	T_EQ_STR(err, "test.conf:12: x: bad", "conf_error format");
	conf_error(c, 0, err, sizeof(err), "whole file");
	T_EQ_STR(err, "test.conf: whole file", "conf_error without a line");
	conf_free(c);
	c = load("[users]\nport = 1\n");
	T_EQ_INT(c ? conf_check_keys(c, conf_section(c, "users", NULL), allowed,
	    err, sizeof(err)) : -2, 0, "all keys allowed");
	T_EQ_INT(c ? conf_check_keys(c, conf_section(c, "none", NULL), allowed,
	    err, sizeof(err)) : -2, 0, "absent section: no unknown keys");
	T_EQ_STR(conf_get(NULL, "port", "d"), "d", "absent section reads as empty");
	conf_free(c);
}

static void
test_secret(void)
{
	struct conf	*c;
	const struct conf_section *s;
	char		 path[256], text[1024], *r;

	snprintf(path, sizeof(path), "%s/secret", dir);
	write_file(path, "s3cr3t pass\nsecond line\n");
	snprintf(text, sizeof(text), "[a]\n"
	    "plain = hunter2\n"
	    "file = file:%s\n"
	    "crlf = file:%s/crlf\n"
	    "nonl = file:%s/nonl\n"
	    "missing = file:%s/missing\n"
	    "empty = file:%s/empty\n"
	    "nopath = file:\n"
	    "dir = file:%s\n",
	    path, dir, dir, dir, dir, dir);
	snprintf(path, sizeof(path), "%s/crlf", dir);
	write_file(path, "crlf-secret\r\n");
	snprintf(path, sizeof(path), "%s/nonl", dir);
	write_file(path, "no-newline");
	snprintf(path, sizeof(path), "%s/empty", dir);
	write_file(path, "\nx\n");
	c = load(text);
	s = c ? conf_section(c, "a", NULL) : NULL;
	T_OK(s != NULL, "secret config loads (%s)", err);
	if (s == NULL)
		return;
	r = NULL;
	T_EQ_INT(conf_secret(c, s, "plain", &r, err, sizeof(err)), 1, "literal secret");
	T_EQ_STR(r, "hunter2", "literal secret value");
	free(r);
	T_EQ_INT(conf_secret(c, s, "file", &r, err, sizeof(err)), 1, "file: secret");
	T_EQ_STR(r, "s3cr3t pass", "file: secret is the first line, newline stripped");
	free(r);
	T_EQ_INT(conf_secret(c, s, "crlf", &r, err, sizeof(err)), 1, "CRLF secret");
	T_EQ_STR(r, "crlf-secret", "CRLF stripped");
	free(r);
	T_EQ_INT(conf_secret(c, s, "nonl", &r, err, sizeof(err)), 1,
	    "secret without newline");
	T_EQ_STR(r, "no-newline", "secret without newline value");
	free(r);
	T_EQ_INT(conf_secret(c, s, "absent", &r, err, sizeof(err)), 0, "absent secret");
	T_EQ_INT(conf_secret(c, s, "missing", &r, err, sizeof(err)), -1,
	    "missing secret file");
	snprintf(text, sizeof(text), "test.conf:6: missing: %s/missing: No such "
	    "file or directory", dir);
	T_EQ_STR(err, text, "missing secret file message");
	T_EQ_INT(conf_secret(c, s, "empty", &r, err, sizeof(err)), -1,
	    "empty first line");
	snprintf(text, sizeof(text), "test.conf:7: empty: %s/empty: empty first "
	    "line", dir);
	T_EQ_STR(err, text, "empty secret message");
	T_EQ_INT(conf_secret(c, s, "nopath", &r, err, sizeof(err)), -1, "file: alone");
	T_EQ_STR(err, "test.conf:8: nopath: expected a path after 'file:'",
	    "file: alone message");
	T_EQ_INT(conf_secret(c, s, "dir", &r, err, sizeof(err)), -1,
	    "a directory is no secret");
	conf_free(c);
}

static void
test_files(void)
{
	struct conf	*c = NULL;
	char		 path[256], want[512];

	snprintf(path, sizeof(path), "%s/courriel.conf", dir);
	write_file(path, "[users]\nhome = /var/mail/%Lu\n\n[x]\nbad\n");
	T_EQ_INT(conf_load(&c, path, err, sizeof(err)), -1, "file with an error");
	snprintf(want, sizeof(want), "%s:5: expected 'key = value', '[section]' "
	    "or a comment", path);
	T_EQ_STR(err, want, "error names the file path and line");
	T_OK(c == NULL, "no conf on error");
	write_file(path, "[users]\nhome = /var/mail/%Lu\n");
	T_EQ_INT(conf_load(&c, path, err, sizeof(err)), 0, "file loads");
	T_EQ_STR(c ? c->path : NULL, path, "conf keeps its path");
	T_EQ_STR(c ? conf_get(conf_section(c, "users", NULL), "home", NULL) : NULL,
	    "/var/mail/%Lu", "value from file, '%' literal");
	conf_free(c);
	snprintf(path, sizeof(path), "%s/none.conf", dir);
	T_EQ_INT(conf_load(&c, path, err, sizeof(err)), -1, "missing file");
	snprintf(want, sizeof(want), "%s: No such file or directory", path);
	T_EQ_STR(err, want, "missing file message");
	T_EQ_INT(conf_load(&c, dir, err, sizeof(err)), -1, "directory");
	snprintf(path, sizeof(path), "%s/nul.conf", dir);
	{
		FILE *fp = fopen(path, "w");

		fwrite("a = 1\nb = x\0y\n", 1, 14, fp);
		fclose(fp);
	}
	T_EQ_INT(conf_load(&c, path, err, sizeof(err)), -1, "NUL byte in file");
	snprintf(want, sizeof(want), "%s:2: NUL byte in the line", path);
	T_EQ_STR(err, want, "NUL byte message");
}

int
main(void)
{
	char	cmd[300];

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_syntax();
	test_errors();
	test_expand();
	test_typed();
	test_check_keys();
	test_secret();
	test_files();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return t_done();
}
