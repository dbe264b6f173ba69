/*
 * passwd -- password hashes through libxcrypt.
 * Accepted: bcrypt ($2b$, $2y$, $2a$), SHA-512 ($6$), SHA-256 ($5$),
 * yescrypt ($y$), bare or with Dovecot's scheme prefixes {BLF-CRYPT},
 * {SHA512-CRYPT}, {SHA256-CRYPT}, {CRYPT}; {PLAIN} only when allowed.
 * Comparison is in constant time. Weak or unknown schemes (DES, MD5,
 * {PLAIN} when not allowed) are refused as errors, not as mismatches.
 */
#ifndef PASSWD_H
#define PASSWD_H

#include <stddef.h>

#define PASSWD_ALLOW_PLAIN	0x01
/* Longer passwords never verify and are not hashed (libxcrypt's limit). */
#define PASSWD_MAXLEN		511

/*
 * 1 the password matches, 0 it does not, -1 hash unusable (errno EINVAL).
 * A locked hash (starting with '!' or '*', after any prefix) is 0.
 */
int	passwd_verify(const char *hash, const char *password, int flags);
/*
 * Why passwd_verify cannot use hash with these flags ("MD5-crypt ($1$) is
 * weak and refused", ...): a static string, or NULL when it can.
 */
const char *passwd_why(const char *hash, int flags);

/*
 * Hashes password with scheme "yescrypt" (default when NULL), "bcrypt",
 * "sha512-crypt" or "sha256-crypt" and a fresh salt; with prefix set the
 * Dovecot form ({CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT}).
 * 0, or -1 with err.
 */
int	passwd_hash(const char *scheme, const char *password, int prefix,
	    char *out, size_t outlen, char *err, size_t errlen);

/*
 * The canonical name ("yescrypt", "bcrypt", "sha512-crypt", "sha256-crypt")
 * of a scheme passwd_hash makes, given that name or Dovecot's (CRYPT,
 * BLF-CRYPT, SHA512-CRYPT, SHA256-CRYPT), case-insensitive; NULL gives
 * the default; NULL when unknown.
 */
const char *passwd_scheme(const char *name);

/*
 * The hash of user in a passwd table value: the first white-space or ':'
 * separated field after an optional "user:" (Dovecot passwd-file lines).
 * Copies it into hash. 1, 0 no such user, -1 error.
 */
struct table;
int	passwd_lookup(struct table *, const char *user, char *hash, size_t hashlen);

/*
 * Checks user/password against a table: 1 ok, 0 refused (unknown user or
 * wrong password, indistinguishable and taking the same time), -1 error.
 */
int	passwd_check(struct table *, const char *user, const char *password,
	    int flags);

#endif
