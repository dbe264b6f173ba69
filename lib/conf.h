/*
 * conf -- the configuration language of every courriel program: INI read
 * through inih. At load time `${VAR}` and `${VAR:-default}` are replaced
 * from the environment (an unset ${VAR} without default is an error naming
 * file:line). Values are kept as text with their line numbers; programs
 * walk sections and ask for typed values, and every error names file:line
 * and what was expected.
 *
 * Sections are `[type]` or `[type label]` (`[listener submission]`,
 * `[account work]`); keys before any section belong to the section with
 * type "" (global). A key may repeat; conf_get returns the last value and
 * conf_next walks them all. Key and type names are case-insensitive
 * (stored lowercased); labels compare exactly. The same type and label
 * twice is an error. `$${` is a literal `${`; any other `$` is literal.
 * A NULL section (conf_section found none) reads as an empty one.
 *
 * `file:/path` in a value is NOT resolved at load time, because tables use
 * the same prefix: conf_secret() resolves it for values that are secrets
 * (a password: the file's first line, trailing newline removed), and
 * table_open() reads `file:` tables.
 */
#ifndef CONF_H
#define CONF_H

#include <stddef.h>

struct conf_entry {
	char	*key;
	char	*value;
	int	 line;
};

struct conf_section {
	char			*type;	/* "" for the global section */
	char			*label;	/* NULL when the header had none */
	int			 line;	/* 0 for the global section */
	struct conf_entry	*entries;
	size_t			 nentries;
};

struct conf {
	char			*path;
	struct conf_section	*sections;
	size_t			 nsections;
};

/*
 * Loads path. Returns 0 and sets *confp, or -1 with "file:line: what"
 * in err (a missing file, a syntax error, an unset variable).
 */
int	conf_load(struct conf **confp, const char *path, char *err, size_t errlen);
/* Same from a string (tests, fuzzing); name is used in messages. */
int	conf_load_string(struct conf **confp, const char *name, const char *text,
	    char *err, size_t errlen);
void	conf_free(struct conf *);

/* The global section (always present, maybe empty). */
const struct conf_section *conf_global(const struct conf *);
/* First section of this type and label (label NULL: any), or NULL. */
const struct conf_section *conf_section(const struct conf *, const char *type,
	    const char *label);
/* Iterates sections of a type: pass NULL first, then the previous one. */
const struct conf_section *conf_next_section(const struct conf *,
	    const char *type, const struct conf_section *prev);

/* The entry of the last occurrence of key, or NULL. */
const struct conf_entry *conf_entry(const struct conf_section *, const char *key);
/* Value of the last occurrence of key, or def. */
const char *conf_get(const struct conf_section *, const char *key, const char *def);
/* Iterates occurrences of key: pass NULL first. */
const struct conf_entry *conf_next(const struct conf_section *, const char *key,
	    const struct conf_entry *prev);

/*
 * Typed getters: 1 found and valid, 0 absent (*r untouched), -1 invalid
 * (err says "file:line: key: expected ...").
 * bool: yes/no, true/false, on/off, 1/0. size: 123, 10K, 64M, 1G.
 * duration: seconds, or with s, m, h, d suffix.
 */
int	conf_bool(const struct conf *, const struct conf_section *, const char *key,
	    int *r, char *err, size_t errlen);
int	conf_long(const struct conf *, const struct conf_section *, const char *key,
	    long min, long max, long *r, char *err, size_t errlen);
int	conf_size(const struct conf *, const struct conf_section *, const char *key,
	    unsigned long long *r, char *err, size_t errlen);
int	conf_duration(const struct conf *, const struct conf_section *,
	    const char *key, long *seconds_r, char *err, size_t errlen);
/* One of a NULL-terminated list of words; *r is its index. */
int	conf_enum(const struct conf *, const struct conf_section *, const char *key,
	    const char *const *words, int *r, char *err, size_t errlen);

/*
 * A secret: the value itself, or when it starts with `file:` the first
 * line of that file. Returns 1 and a malloc'd string in *r (the caller
 * wipes and frees it), 0 when absent, -1 with err.
 */
int	conf_secret(const struct conf *, const struct conf_section *, const char *key,
	    char **r, char *err, size_t errlen);

/*
 * Reports keys of a section that are not in the NULL-terminated list
 * allowed: returns 0, or -1 with "file:line: unknown key 'k' in [section]".
 */
int	conf_check_keys(const struct conf *, const struct conf_section *,
	    const char *const *allowed, char *err, size_t errlen);

/* Formats "file:line: " + message into err; returns -1 (for `return conf_error(...)`). */
int	conf_error(const struct conf *, int line, char *err, size_t errlen,
	    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Expands ${VAR} and ${VAR:-def} in s (used by conf_load). */
int	conf_expand(const char *s, char **r, char *err, size_t errlen);

#endif
