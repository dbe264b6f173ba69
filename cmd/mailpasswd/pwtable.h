/*
 * pwtable -- edits a passwd table file (OpenSMTPD's credentials format:
 * `user<white space>hash` lines, '#' comments) in place, atomically: the
 * new content goes to a temporary file in the same directory, is synced,
 * renamed over the old one, and the directory is synced. Every other line
 * is kept byte for byte. The file ends up mode 0600 with its old owner.
 * Concurrent editors are serialized with flock(2) on the table.
 *
 * The functions return a sysexits code (EX_OK on success) and put a
 * message naming the file in err.
 */
#ifndef PWTABLE_H
#define PWTABLE_H

#include <stddef.h>

/* Sets user's hash: replaces its line (and drops duplicates) or appends
 * one; creates the file when missing. */
int	pwtable_set(const char *path, const char *user, const char *hash,
	    char *err, size_t errlen);
/* Removes user's line(s); EX_NOUSER when there is none. */
int	pwtable_del(const char *path, const char *user, char *err,
	    size_t errlen);
/* 1 when name can be a table key (no white space, control characters,
 * ':', or leading '#'; at most 255 bytes). */
int	pwtable_user_ok(const char *name);

#endif
