/*
 * Unit tests for table_lookup_nocase: keys compared without ASCII case,
 * an exact match first, else the first in file order; the table's own
 * spelling returned; exact lookups unchanged.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "table.h"
#include "t.h"

int
main(void)
{
	struct table	*t;
	char		 err[256], key[64], val[64], path[] = "/tmp/tnocase.XXXXXX";
	FILE		*fp;
	int		 fd, i, r;

	T_OK(table_open(&t, "Alice@Example.ORG = alice, example.org, "
	    "bob = B1, BOB = B2, Bob = B3, @Example.Net = catch", err,
	    sizeof(err)) == 0, "inline table opens: %s", err);
	/* exact lookups are as before */
	T_EQ_INT(table_lookup(t, "alice@example.org", NULL, 0), 0,
	    "table_lookup stays exact");
	T_EQ_INT(table_lookup(t, "Alice@Example.ORG", val, sizeof(val)), 1,
	    "table_lookup finds the exact spelling");
	/* without case */
	key[0] = val[0] = '\0';
	r = table_lookup_nocase(t, "ALICE@example.org", key, sizeof(key), val,
	    sizeof(val));
	T_EQ_INT(r, 1, "nocase finds a key spelled differently");
	T_EQ_STR(key, "Alice@Example.ORG", "and returns the table's spelling");
	T_EQ_STR(val, "alice", "and its value");
	T_EQ_INT(table_lookup_nocase(t, "EXAMPLE.ORG", NULL, 0, NULL, 0), 1,
	    "a domain in upper case");
	T_EQ_INT(table_lookup_nocase(t, "@example.net", key, sizeof(key), NULL,
	    0), 1, "an @domain key");
	T_EQ_STR(key, "@Example.Net", "its spelling");
	T_EQ_INT(table_lookup_nocase(t, "example.com", NULL, 0, NULL, 0), 0,
	    "a missing key is 0");
	T_EQ_INT(table_lookup_nocase(t, "alice@example.or", NULL, 0, NULL, 0), 0,
	    "a prefix is not a match");
	/* case variants: exact first, else the first in file order */
	T_EQ_INT(table_lookup_nocase(t, "BOB", NULL, 0, val, sizeof(val)), 1,
	    "exact variant");
	T_EQ_STR(val, "B2", "the exact spelling wins");
	T_EQ_INT(table_lookup_nocase(t, "bOB", key, sizeof(key), val,
	    sizeof(val)), 1, "no exact variant");
	T_EQ_STR(key, "bob", "the first in file order");
	T_EQ_STR(val, "B1", "its value");
	/* truncation */
	errno = 0;
	T_EQ_INT(table_lookup_nocase(t, "alice@example.org", key, 4, NULL, 0),
	    -1, "a key_r too small is an error");
	T_EQ_INT(errno, ERANGE, "ERANGE");
	/* non-ASCII bytes are compared exactly */
	table_close(t);
	T_OK(table_open(&t, "\xc3\x89t\xc3\xa9 = x", err, sizeof(err)) == 0,
	    "UTF-8 key");
	T_EQ_INT(table_lookup_nocase(t, "\xc3\x89T\xc3\xa9", NULL, 0, NULL, 0),
	    1, "ASCII letters folded around UTF-8");
	T_EQ_INT(table_lookup_nocase(t, "\xc3\xa9t\xc3\xa9", NULL, 0, NULL, 0),
	    0, "non-ASCII letters are not folded");
	table_close(t);

	/* a file table with many keys: every key found in upper case */
	if ((fd = mkstemp(path)) == -1 || (fp = fdopen(fd, "w")) == NULL) {
		perror(path);
		return 1;
	}
	for (i = 0; i < 5000; i++)
		fprintf(fp, "user%d@Domain%d.example u%d\n", i, i % 7, i);
	fclose(fp);
	{
		char spec[64];

		snprintf(spec, sizeof(spec), "file:%s", path);
		T_OK(table_open(&t, spec, err, sizeof(err)) == 0,
		    "file table opens: %s", err);
	}
	for (i = 0, r = 0; i < 5000; i++) {
		char	 k[64], want[16];

		snprintf(k, sizeof(k), "USER%d@domain%d.EXAMPLE", i, i % 7);
		snprintf(want, sizeof(want), "u%d", i);
		if (table_lookup_nocase(t, k, NULL, 0, val, sizeof(val)) == 1 &&
		    strcmp(val, want) == 0)
			r++;
	}
	T_EQ_INT(r, 5000, "all 5000 file keys found without case");
	table_close(t);
	unlink(path);
	return t_done();
}
