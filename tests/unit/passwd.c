/* Unit tests for lib/passwd. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "passwd.h"
#include "table.h"
#include "t.h"

/* Hashes of "pw" made by the real programs (Debian 12). */
#define SMTPCTL_SHA512	"$6$zetMT/5bpaRBieRk$iJh4sOz4w.dgQItd1LSI0jcTTKNqxbRZno7jAcG.pqPYKhhkBhxnKz4olDW0r6bkdDqi9vJyRcAcDqAynONsX."
#define DOVEADM_SHA512	"{SHA512-CRYPT}$6$qVBKeQgsBX9ty3ME$Xn.1Vg63lN0xOynWYyBXN9lxQtBgbCAv3JQ7PZ7zsJNfpECL1UL8IF8q/gLGph20G/onAiaxUISaFRT8eKuig1"
#define DOVEADM_BLF	"{BLF-CRYPT}$2y$05$WW9VAAbxI4gyAUqqahidUuN27VkxnErL0FmTIJJQMDglWa7zItLI2"

static void
verify(const char *hash, const char *pw, int flags, int want, const char *what)
{
	char	msg[200];

	snprintf(msg, sizeof(msg), "%s: %s", what, hash);
	T_EQ_INT(passwd_verify(hash, pw, flags), want, msg);
}

static void
roundtrip(const char *scheme, int prefix, const char *start)
{
	char	h[512], h2[512], err[200], what[800];
	int	r;

	err[0] = '\0';
	r = passwd_hash(scheme, "s3cret pass", prefix, h, sizeof(h), err,
	    sizeof(err));
	snprintf(what, sizeof(what), "hash %s%s: %s", scheme ? scheme :
	    "(default)", prefix ? " -p" : "", err);
	T_EQ_INT(r, 0, what);
	snprintf(what, sizeof(what), "%s starts with %s", h, start);
	T_OK(strncmp(h, start, strlen(start)) == 0, "%s", what);
	verify(h, "s3cret pass", 0, 1, "own hash verifies");
	verify(h, "s3cret pasS", 0, 0, "own hash, wrong password");
	verify(h, "", 0, 0, "own hash, empty password");
	passwd_hash(scheme, "s3cret pass", prefix, h2, sizeof(h2), err,
	    sizeof(err));
	T_OK(strcmp(h, h2) != 0, "two hashes of %s differ (fresh salt)",
	    scheme ? scheme : "yescrypt");
}

/*
 * CPU time, not wall time: the test asks whether the same work is done,
 * and a loaded machine must not make it fail.
 */
static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/*
 * Median CPU times of passwd_check on a known user with a wrong password
 * and on an unknown user, measured alternately.
 */
static void
median_checks(struct table *t, const char *known, double *k, double *u)
{
	double	dk[7], du[7], t0;
	int	i, bad = 0;

	for (i = 0; i < 7; i++) {
		t0 = now();
		bad += passwd_check(t, known, "wrong", 0) != 0;
		dk[i] = now() - t0;
		t0 = now();
		bad += passwd_check(t, "nouser", "wrong", 0) != 0;
		du[i] = now() - t0;
	}
	T_EQ_INT(bad, 0, "passwd_check refuses while timing");
	qsort(dk, 7, sizeof(dk[0]), cmp_double);
	qsort(du, 7, sizeof(du[0]), cmp_double);
	*k = dk[3];
	*u = du[3];
}

static struct table *
file_table(const char *dir, const char *name, const char *content)
{
	struct table	*t;
	char		 path[512], spec[600], err[256];
	FILE		*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return NULL;
	fputs(content, f);
	fclose(f);
	snprintf(spec, sizeof(spec), "file:%s", path);
	if (table_open(&t, spec, err, sizeof(err)) == -1) {
		printf("# %s\n", err);
		return NULL;
	}
	return t;
}

/* Lookups and checks over file tables, and their timing. */
static void
tables(void)
{
	struct table	*t;
	char		 dir[] = "/tmp/passwd-unit.XXXXXX", h[512], cmd[600];
	double		 known, unknown;

	if (mkdtemp(dir) == NULL) {
		T_OK(0, "mkdtemp");
		return;
	}
	t = file_table(dir, "creds",
	    "# OpenSMTPD credentials\n"
	    "alice\t" SMTPCTL_SHA512 "\n"
	    "bob: " DOVEADM_BLF "\n"
	    "carol " DOVEADM_SHA512 " extra fields\n"
	    "dave abzlUXK5ed5rs\n"
	    "erin {PLAIN}pw\n");
	T_OK(t != NULL, "file table opens");
	if (t == NULL)
		return;
	T_EQ_INT(passwd_lookup(t, "alice", h, sizeof(h)), 1, "lookup alice");
	T_EQ_STR(h, SMTPCTL_SHA512, "alice's hash");
	T_EQ_INT(passwd_lookup(t, "carol", h, sizeof(h)), 1, "lookup carol");
	T_EQ_STR(h, DOVEADM_SHA512, "first field only");
	T_EQ_INT(passwd_lookup(t, "nobody", h, sizeof(h)), 0, "lookup unknown");
	errno = 0;
	T_EQ_INT(passwd_lookup(t, "alice", h, 20), -1, "small buffer is -1");
	T_EQ_INT(errno, ERANGE, "small buffer is ERANGE");

	T_EQ_INT(passwd_check(t, "alice", "pw", 0), 1, "alice with pw");
	T_EQ_INT(passwd_check(t, "alice", "px", 0), 0, "alice wrong");
	T_EQ_INT(passwd_check(t, "bob", "pw", 0), 1, "bob (aliases style)");
	T_EQ_INT(passwd_check(t, "carol", "pw", 0), 1, "carol (prefixed)");
	T_EQ_INT(passwd_check(t, "zoe", "pw", 0), 0, "unknown user refused");
	T_EQ_INT(passwd_check(t, "dave", "pw", 0), -1, "DES entry is an error");
	T_EQ_INT(passwd_check(t, "erin", "pw", 0), -1, "{PLAIN} not allowed");
	T_EQ_INT(passwd_check(t, "erin", "pw", PASSWD_ALLOW_PLAIN), 1,
	    "{PLAIN} allowed");
	table_close(t);

	/* Dovecot passwd-file style values ("user:hash:uid:gid..."). */
	t = file_table(dir, "dove", "frank frank:" DOVEADM_SHA512
	    ":5001:5001::/home/frank::\n");
	T_EQ_INT(passwd_lookup(t, "frank", h, sizeof(h)), 1, "lookup frank");
	T_EQ_STR(h, DOVEADM_SHA512, "user: and trailing fields cut");
	T_EQ_INT(passwd_check(t, "frank", "pw", 0), 1, "frank checks");
	table_close(t);

	/*
	 * An unknown user costs what a wrong password costs: a table of
	 * bcrypt hashes (cost 10, tens of ms) and one of SHA-512 hashes (a
	 * few ms) must each time the same for both.
	 */
	if (passwd_hash("bcrypt", "pw", 0, h, sizeof(h), cmd, sizeof(cmd)) == 0) {
		char	content[2048];

		snprintf(content, sizeof(content), "# first\nuser1 %s\n", h);
		t = file_table(dir, "bcrypt", content);
		median_checks(t, "user1", &known, &unknown);
		T_OK(unknown > known * 0.6 && unknown < known * 1.6,
		    "bcrypt table: unknown user %.1f ms, wrong password %.1f ms",
		    unknown * 1e3, known * 1e3);
		table_close(t);
	}
	t = file_table(dir, "sha", "u1 " DOVEADM_SHA512 "\nu2 " DOVEADM_SHA512
	    "\n");
	median_checks(t, "u1", &known, &unknown);
	T_OK(unknown > known * 0.4 && unknown < known * 2.5,
	    "{SHA512-CRYPT} table: unknown user %.2f ms, wrong password %.2f ms",
	    unknown * 1e3, known * 1e3);
	table_close(t);
	/* No usable hash to borrow: the built-in yescrypt dummy is used. */
	t = file_table(dir, "empty", "# nobody here\n");
	median_checks(t, "nouser", &known, &unknown);
	T_OK(unknown > 0.002, "empty table: unknown user still costs a hash "
	    "(%.1f ms)", unknown * 1e3);
	table_close(t);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		T_OK(0, "cleanup %s", dir);
}

int
main(void)
{
	char	h[512], err[200], longpw[PASSWD_MAXLEN + 2];

	/* Known vectors: openwall's bcrypt, Drepper's SHA-crypt. */
	verify("$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
	    "U*U", 0, 1, "bcrypt $2a$ vector");
	verify("$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
	    "U*U", 0, 1, "bcrypt $2b$ vector");
	verify("$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
	    "U*U", 0, 1, "bcrypt $2y$ vector");
	verify("$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
	    "U*V", 0, 0, "bcrypt wrong password");
	verify("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
	    "Hello world!", 0, 1, "sha256-crypt vector");
	verify("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
	    "Hello world!", 0, 1, "sha512-crypt vector");
	verify("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
	    "Hello world?", 0, 0, "sha512-crypt wrong password");
	verify("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL5",
	    "pw", 0, 1, "yescrypt");
	verify("{CRYPT}$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL5",
	    "pw", 0, 1, "yescrypt with {CRYPT}");
	verify("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$U4SOHmDd8SvW5vCUKSMR6N835VPwFAtgYNhQ9mFFeL4",
	    "pw", 0, 0, "yescrypt, last character changed");
	verify(SMTPCTL_SHA512, "pw", 0, 1, "smtpctl encrypt");
	verify("{CRYPT}" SMTPCTL_SHA512, "pw", 0, 1, "smtpctl with {CRYPT}");
	verify(DOVEADM_SHA512, "pw", 0, 1, "doveadm SHA512-CRYPT");
	verify(DOVEADM_SHA512, "pW", 0, 0, "doveadm SHA512-CRYPT, wrong");
	verify(DOVEADM_BLF, "pw", 0, 1, "doveadm BLF-CRYPT");
	verify("{blf-crypt}$2y$05$WW9VAAbxI4gyAUqqahidUuN27VkxnErL0FmTIJJQMDglWa7zItLI2",
	    "pw", 0, 1, "scheme names are case-insensitive");

	/* Refused: weak, unknown, mismatched, plain when not allowed. */
	errno = 0;
	verify("abzlUXK5ed5rs", "pw", 0, -1, "DES refused");
	T_EQ_INT(errno, EINVAL, "refusal sets EINVAL");
	T_OK(passwd_why("abzlUXK5ed5rs", 0) != NULL &&
	    strstr(passwd_why("abzlUXK5ed5rs", 0), "DES") != NULL,
	    "DES refusal names DES: %s", passwd_why("abzlUXK5ed5rs", 0));
	verify("$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.", "pw", 0, -1, "MD5 refused");
	T_OK(strstr(passwd_why("$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.", 0),
	    "MD5") != NULL, "MD5 refusal names MD5");
	verify("{CRYPT}$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.", "pw", 0, -1,
	    "MD5 behind {CRYPT} refused");
	verify("{CRYPT}abzlUXK5ed5rs", "pw", 0, -1, "DES behind {CRYPT} refused");
	verify("{SHA512-CRYPT}$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
	    "Hello world!", 0, -1, "prefix and hash disagree");
	verify("{BLF-CRYPT}" SMTPCTL_SHA512, "pw", 0, -1,
	    "BLF-CRYPT prefix on SHA-512 refused");
	verify("{SSHA}abcdefgh", "pw", 0, -1, "{SSHA} refused");
	verify("{MD5-CRYPT}$1$abcdefgh$IQtUouv7y7Q9dRWkQEPCc.", "pw", 0, -1,
	    "{MD5-CRYPT} refused");
	verify("{SHA512-CRYPT", "pw", 0, -1, "unterminated prefix");
	verify("", "pw", 0, -1, "empty hash");
	verify("$7$abc", "pw", 0, -1, "unknown $7$ refused");
	verify("$y$garbage", "pw", 0, -1, "malformed yescrypt is an error");
	verify("pw", "pw", 0, -1, "bare text is not a hash");
	verify("pw", "pw", PASSWD_ALLOW_PLAIN, -1, "bare text needs {PLAIN}");
	verify("{PLAIN}pw", "pw", 0, -1, "{PLAIN} refused by default");
	T_OK(passwd_why("{PLAIN}pw", 0) != NULL, "{PLAIN} refusal explained");
	verify("{PLAIN}pw", "pw", PASSWD_ALLOW_PLAIN, 1, "{PLAIN} when allowed");
	verify("{CLEAR}pw", "pw", PASSWD_ALLOW_PLAIN, 1, "{CLEAR} when allowed");
	verify("{PLAIN}pw", "pw2", PASSWD_ALLOW_PLAIN, 0, "{PLAIN} longer");
	verify("{PLAIN}pw", "p", PASSWD_ALLOW_PLAIN, 0, "{PLAIN} shorter");
	verify("{PLAIN}pw", "pW", PASSWD_ALLOW_PLAIN, 0, "{PLAIN} differs");
	verify("{PLAIN}", "", PASSWD_ALLOW_PLAIN, 1, "{PLAIN} empty");
	verify("!" SMTPCTL_SHA512, "pw", 0, 0, "locked hash never matches");
	verify("*", "pw", 0, 0, "'*' never matches");
	T_OK(passwd_why(SMTPCTL_SHA512, 0) == NULL, "usable hash has no why");

	memset(longpw, 'a', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	verify("{PLAIN}x", longpw, PASSWD_ALLOW_PLAIN, 0, "long password");
	verify(SMTPCTL_SHA512, longpw, 0, 0, "over-long password never matches");

	/* Making hashes. */
	roundtrip(NULL, 0, "$y$");
	roundtrip("yescrypt", 1, "{CRYPT}$y$");
	roundtrip("bcrypt", 0, "$2y$10$");
	roundtrip("bcrypt", 1, "{BLF-CRYPT}$2y$");
	roundtrip("sha512-crypt", 0, "$6$");
	roundtrip("SHA512-CRYPT", 1, "{SHA512-CRYPT}$6$");
	roundtrip("sha256-crypt", 0, "$5$");
	roundtrip("sha256-crypt", 1, "{SHA256-CRYPT}$5$");

	T_EQ_INT(passwd_hash("md5-crypt", "pw", 0, h, sizeof(h), err,
	    sizeof(err)), -1, "md5-crypt not offered");
	T_OK(strstr(err, "unknown scheme") != NULL, "unknown scheme: %s", err);
	T_EQ_INT(passwd_hash(NULL, "", 0, h, sizeof(h), err, sizeof(err)), -1,
	    "empty password not hashed");
	T_OK(strstr(err, "empty") != NULL, "empty password: %s", err);
	T_EQ_INT(passwd_hash(NULL, longpw, 0, h, sizeof(h), err, sizeof(err)),
	    -1, "over-long password not hashed");
	T_EQ_INT(passwd_hash("sha512-crypt", "pw", 1, h, 20, err, sizeof(err)),
	    -1, "small output buffer is an error");

	tables();
	return t_done();
}
