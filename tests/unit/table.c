/* Unit tests for lib/table: inline and file tables, reload, errors, speed. */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "table.h"
#include "t.h"

static char	dir[] = "/tmp/table-test.XXXXXX";
static char	err[512];

static void
write_file(const char *path, const char *text)
{
	char	tmp[300];
	FILE	*fp;

	/* Replace atomically, as an admin's tool would (new inode). */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL || fputs(text, fp) == EOF ||
	    fclose(fp) == EOF || rename(tmp, path) == -1) {
		perror(path);
		exit(1);
	}
}

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Looks key up; returns the value or "(absent)" / "(error)". */
static const char *
get(struct table *t, const char *key)
{
	static char	val[256];
	int		rc = table_lookup(t, key, val, sizeof(val));

	return rc == 1 ? val : rc == 0 ? "(absent)" : "(error)";
}

static struct table *
open_ok(const char *spec, const char *what)
{
	struct table	*t = NULL;

	err[0] = '\0';
	T_EQ_INT(table_open(&t, spec, err, sizeof(err)), 0, what);
	if (t == NULL)
		printf("# %s\n", err);
	return t;
}

static void
open_fails(const char *spec, const char *want, const char *what)
{
	struct table	*t = NULL;

	err[0] = '\0';
	T_EQ_INT(table_open(&t, spec, err, sizeof(err)), -1, what);
	T_EQ_STR(err, want, what);
	T_OK(t == NULL, "%s: no table", what);
	table_close(t);
}

struct walk {
	char	text[512];
	int	stop_at;
	int	n;
};

static int
walk_fn(const char *key, const char *val, void *arg)
{
	struct walk	*w = arg;
	size_t		 len = strlen(w->text);

	snprintf(w->text + len, sizeof(w->text) - len, "%s%s=%s",
	    len ? "," : "", key, val);
	if (++w->n == w->stop_at)
		return 42;
	return 0;
}

static void
test_inline(void)
{
	struct table	*t;
	struct walk	 w;
	char		 small[4];

	t = open_ok("alice, bob,carol", "inline list");
	T_EQ_INT(t ? table_count(t) : 0, 3, "inline list count");
	T_EQ_STR(get(t, "bob"), "", "list item value is empty");
	T_EQ_STR(get(t, "carol"), "", "item without space after comma");
	T_EQ_STR(get(t, "dave"), "(absent)", "absent key");
	T_EQ_STR(get(t, "Bob"), "(absent)", "keys compare exactly");
	T_EQ_INT(t ? table_lookup(t, "alice", NULL, 0) : -2, 1,
	    "membership without a value buffer");
	T_EQ_STR(t ? table_spec(t) : NULL, "alice, bob,carol", "table_spec");
	table_close(t);

	t = open_ok("{ imapuser1 = vmail , imapuser2=vmail, k = a b = c }",
	    "inline map in { } (seed 000)");
	T_EQ_STR(get(t, "imapuser1"), "vmail", "map value, spaces trimmed");
	T_EQ_STR(get(t, "imapuser2"), "vmail", "map without spaces");
	T_EQ_STR(get(t, "k"), "a b = c", "split at the first '=', spaces inside kept");
	if (t != NULL) {
		T_EQ_INT(table_lookup(t, "imapuser1", small, sizeof(small)), -1,
		    "value longer than the buffer");
		T_EQ_INT(errno, ERANGE, "truncation is ERANGE");
	}
	table_close(t);

	t = open_ok("alice = $2b$08$1f4SvI3pbJcJG60M/PHoEO, \"a, b\" = \"x=\\\"y\\\"\", "
	    "solo, \"q\\\\\" ,", "quoted keys and values, trailing comma");
	T_EQ_INT(t ? table_count(t) : 0, 4, "quoted table count");
	T_EQ_STR(get(t, "alice"), "$2b$08$1f4SvI3pbJcJG60M/PHoEO", "hash value");
	T_EQ_STR(get(t, "a, b"), "x=\"y\"", "quoted key with ',' and value with '=', '\"'");
	T_EQ_STR(get(t, "q\\"), "", "backslash escape in a quoted key");
	T_EQ_STR(get(t, "solo"), "", "list item in a map");
	memset(&w, 0, sizeof(w));
	T_EQ_INT(t ? table_foreach(t, walk_fn, &w) : -1, 0, "foreach returns 0");
	T_EQ_STR(w.text, "alice=$2b$08$1f4SvI3pbJcJG60M/PHoEO,a, b=x=\"y\",solo=,q\\=",
	    "foreach in order");
	memset(&w, 0, sizeof(w));
	w.stop_at = 2;
	T_EQ_INT(t ? table_foreach(t, walk_fn, &w) : -1, 42,
	    "foreach stops on non-zero and returns it");
	T_EQ_INT(w.n, 2, "foreach stopped after 2");
	table_close(t);

	t = open_ok("", "empty spec");
	T_EQ_INT(t ? table_count(t) : 9, 0, "empty table");
	table_close(t);
	t = open_ok("{ }", "empty braces");
	T_EQ_INT(t ? table_count(t) : 9, 0, "empty table in braces");
	table_close(t);

	open_fails("a,,b", "inline table: item 2: empty key", "empty item");
	open_fails(", a", "inline table: item 1: empty key", "leading comma");
	open_fails("= v", "inline table: item 1: empty key", "empty key");
	open_fails("a, b, a", "inline table: item 3: duplicate key 'a'",
	    "duplicate key in an inline list");
	open_fails("{ a = 1", "inline table: missing closing '}'", "missing }");
	open_fails("\"abc", "inline table: item 1: missing closing '\"'",
	    "unterminated quote");
	open_fails("\"a\" b", "inline table: item 1: unexpected 'b' after a "
	    "quoted string", "text after a quoted string");
	open_fails("file:", "table: expected a path after 'file:'", "file: alone");
}

static void
test_file(void)
{
	struct table	*t;
	struct walk	 w;
	char		 path[256], spec[300], want[512];

	snprintf(path, sizeof(path), "%s/aliases", dir);
	write_file(path,
	    "# aliases, OpenSMTPD table format\n"
	    "\n"
	    "root\t\talice\n"
	    "   postmaster    root   \n"
	    "abuse: root, bob\r\n"
	    "# a comment\n"
	    "  # an indented comment\n"
	    "listonly\n"
	    "::1\n"
	    "a:b c\n"
	    "smtpuser $6$salt$hash#notacomment\n"
	    "empty:\n");
	snprintf(spec, sizeof(spec), "file:%s", path);
	t = open_ok(spec, "file table");
	T_EQ_INT(t ? table_count(t) : 0, 8, "comments and blank lines skipped");
	T_EQ_STR(get(t, "root"), "alice", "key TAB value");
	T_EQ_STR(get(t, "postmaster"), "root", "leading and trailing space trimmed");
	T_EQ_STR(get(t, "abuse"), "root, bob", "'key: value', rest of line, CR stripped");
	T_EQ_STR(get(t, "listonly"), "", "key alone is a list item");
	T_EQ_STR(get(t, "::1"), "", "':' not followed by space stays in the key");
	T_EQ_STR(get(t, "a:b"), "c", "key with ':' inside");
	T_EQ_STR(get(t, "smtpuser"), "$6$salt$hash#notacomment",
	    "'#' inside a value is not a comment");
	T_EQ_STR(get(t, "empty"), "", "'key:' alone");
	T_EQ_STR(get(t, "# a comment"), "(absent)", "comment is no key");
	memset(&w, 0, sizeof(w));
	w.stop_at = 3;
	table_foreach(t, walk_fn, &w);
	T_EQ_STR(w.text, "root=alice,postmaster=root,abuse=root, bob",
	    "file table foreach in file order");
	table_close(t);

	snprintf(path, sizeof(path), "%s/dup", dir);
	write_file(path, "a 1\nb 2\n\nb 3\n");
	snprintf(spec, sizeof(spec), "file:%s", path);
	snprintf(want, sizeof(want), "%s:4: duplicate key 'b' (first at line 2)",
	    path);
	open_fails(spec, want, "duplicate key in a file names both lines");

	snprintf(spec, sizeof(spec), "file:%s/missing", dir);
	snprintf(want, sizeof(want), "%s/missing: No such file or directory", dir);
	open_fails(spec, want, "missing file");
	snprintf(spec, sizeof(spec), "file:%s", dir);
	snprintf(want, sizeof(want), "%s: not a regular file", dir);
	open_fails(spec, want, "directory");

	snprintf(path, sizeof(path), "%s/nul", dir);
	{
		FILE *fp = fopen(path, "w");

		fwrite("a 1\nb 2\nc\0d\n", 1, 12, fp);
		fclose(fp);
	}
	snprintf(spec, sizeof(spec), "file:%s", path);
	snprintf(want, sizeof(want), "%s:3: NUL byte", path);
	open_fails(spec, want, "NUL byte in a file");
}

static void
test_reload(void)
{
	struct table	*t;
	char		 path[256], spec[300];
	double		 t0;
	unsigned long	 gen;

	snprintf(path, sizeof(path), "%s/vusers", dir);
	write_file(path, "alice vmail\n");
	snprintf(spec, sizeof(spec), "file:%s", path);
	t0 = now();
	t = open_ok(spec, "reload: open");
	if (t == NULL)
		return;
	T_EQ_STR(get(t, "alice"), "vmail", "reload: first content");
	gen = table_generation(t);
	write_file(path, "alice vmail\nbob vmail2\n");
	if (now() - t0 < 0.5)
		T_EQ_STR(get(t, "bob"), "(absent)",
		    "no re-read within a second of the last check");
	T_EQ_INT(table_reload(t, err, sizeof(err)), 0, "table_reload forces a re-read");
	T_EQ_STR(get(t, "bob"), "vmail2", "forced re-read sees the change");
	T_OK(table_generation(t) == gen + 1, "a re-read moves the generation");
	gen = table_generation(t);

	/* The automatic path: the check runs again after a second. */
	write_file(path, "carol vmail3\n");
	t0 = now();
	while (now() - t0 < 3 && strcmp(get(t, "carol"), "vmail3") != 0)
		usleep(50000);
	T_EQ_STR(get(t, "carol"), "vmail3", "changed file is re-read on lookup");
	T_OK(now() - t0 >= 0.9, "not before a second (%.2fs)", now() - t0);
	T_EQ_STR(get(t, "alice"), "(absent)", "old keys gone after re-read");
	T_EQ_INT(table_count(t), 1, "count after re-read");

	/* A broken file keeps the old content and says why. */
	write_file(path, "carol x\ncarol y\n");
	T_EQ_INT(table_reload(t, err, sizeof(err)), -1, "broken re-read fails");
	T_OK(table_generation(t) > gen, "the automatic re-read moved it too");
	gen = table_generation(t);
	T_OK(strstr(err, "duplicate key 'carol'") != NULL, "error says why: %s", err);
	T_EQ_STR(get(t, "carol"), "vmail3", "old content kept");
	T_OK(table_generation(t) == gen, "a failed re-read does not move it");
	T_OK(table_error(t) != NULL && strstr(table_error(t), "duplicate") != NULL,
	    "table_error reports the failed re-read");
	unlink(path);
	sleep(1);
	T_EQ_INT(table_refresh(t, err, sizeof(err)), -1, "deleted file: refresh fails");
	T_OK(strstr(err, "No such file") != NULL, "deleted file message: %s", err);
	T_EQ_STR(get(t, "carol"), "vmail3", "deleted file: old content kept");
	write_file(path, "dave d\n");
	T_EQ_INT(table_reload(t, err, sizeof(err)), 0, "file back: re-read works");
	T_OK(table_error(t) == NULL, "error cleared after a good re-read");
	T_EQ_STR(get(t, "dave"), "d", "new content after the file came back");
	table_close(t);
}

static void
test_big(void)
{
	struct table	*t;
	char		 path[256], spec[300], key[64];
	FILE		*fp;
	double		 t0, dt;
	int		 i, found = 0;

	snprintf(path, sizeof(path), "%s/big", dir);
	if ((fp = fopen(path, "w")) == NULL)
		return;
	for (i = 0; i < 100000; i++)
		fprintf(fp, "user%d@example.org\t$2b$08$%053d\n", i, i);
	fclose(fp);
	snprintf(spec, sizeof(spec), "file:%s", path);
	t0 = now();
	t = open_ok(spec, "100,000-entry table");
	dt = now() - t0;
	T_OK(dt < 0.5, "100,000 entries load in %.3f s (< 0.5 s)", dt);
	if (t == NULL)
		return;
	T_EQ_INT(table_count(t), 100000, "100,000 entries counted");
	t0 = now();
	for (i = 0; i < 200000; i++) {
		snprintf(key, sizeof(key), "user%ld@example.org", (i * 7919L) % 200000);
		found += table_lookup(t, key, NULL, 0);
	}
	dt = now() - t0;
	T_EQ_INT(found, 100000, "half of the keys found");
	T_OK(dt < 1.0, "200,000 lookups in %.3f s (O(1))", dt);
	T_EQ_STR(get(t, "user99999@example.org"),
	    "$2b$08$00000000000000000000000000000000000000000000000099999",
	    "last entry's value");
	table_close(t);
}

int
main(void)
{
	char	cmd[300];

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_inline();
	test_file();
	test_reload();
	test_big();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return 1;
	return t_done();
}
