/*
 * table -- lookup tables with one syntax in every program:
 *   inline list:  `a, b, c`            (keys only; the value is "")
 *   inline map:   `k1 = v1, k2 = v2`   (split at the first '=' of an item;
 *                                       optional surrounding { }; a key or
 *                                       value may be "quoted" to hold ','
 *                                       or '=', with \" and \\ inside)
 *   file table:   `file:/path`         lines of `key<white space>value`,
 *                 OpenSMTPD's format: '#' comments, blank lines ignored,
 *                 a key alone is a list item, "key: value" (aliases(5)
 *                 style) accepted; the value is the rest of the line,
 *                 trimmed. A file table is re-read when its mtime, size or
 *                 inode changes (checked at most once a second); a
 *                 re-read that fails keeps the old content (table_error).
 * A key repeated in one table is an error (file:line names both).
 * Keys are compared exactly by table_lookup; table_lookup_nocase compares
 * them without regard to ASCII case (domains, and local parts the way mail
 * servers look them up). Lookups return 1 found, 0 not found, -1 error
 * (errno).
 */
#ifndef TABLE_H
#define TABLE_H

#include <stddef.h>

struct table;

/* Opens spec. 0, or -1 with "what: why" in err. */
int	table_open(struct table **tp, const char *spec, char *err, size_t errlen);
void	table_close(struct table *);
/*
 * table_close, with everything the table held (keys, values, an inline
 * table's spec) overwritten with explicit_bzero first: for a process that
 * must not keep secrets (password hashes, relay credentials) it does not
 * need. NULL is a no-op. (Freed contents are always wiped: a reload does
 * not leave the old ones in freed memory either.)
 */
void	table_wipe_free(struct table *);
/* 1 found (value copied into val, NUL-terminated; truncation is -1 ERANGE),
 * 0 not found, -1 error. val may be NULL to test membership. */
int	table_lookup(struct table *, const char *key, char *val, size_t vallen);
/*
 * As table_lookup, with key compared without regard to ASCII case: an
 * exact match wins, else the first such key in file order. key_r, when
 * not NULL, receives the key as the table spells it (the canonical name;
 * truncation is -1 ERANGE, as for val).
 */
int	table_lookup_nocase(struct table *, const char *key, char *key_r,
	    size_t keylen, char *val, size_t vallen);
/* Calls fn for each entry in file order; stops when fn returns non-zero
 * and returns that value. */
int	table_foreach(struct table *, int (*fn)(const char *key,
	    const char *val, void *arg), void *arg);
/* Number of entries (after a refresh). */
size_t	table_count(struct table *);
/*
 * How many times the table was loaded (after a refresh): a process that
 * keeps a copy made earlier (a forked one) knows it is out of date when
 * the number moved.
 */
unsigned long table_generation(struct table *);
/* The spec it was opened with. */
const char *table_spec(const struct table *);
/* Forces a re-read of a file table now: 0, or -1 with err (old content kept). */
int	table_reload(struct table *, char *err, size_t errlen);
/*
 * Re-reads a file table if it changed on disk (checked at most once a
 * second; lookups, foreach and count call it). 0 when current, -1 with
 * err when the last re-read failed (the old content is still served).
 * Daemons may call it from a timer to log the failure.
 */
int	table_refresh(struct table *, char *err, size_t errlen);
/* Why the last re-read of a file table failed, or NULL. */
const char *table_error(const struct table *);

#endif
