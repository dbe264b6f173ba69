/*
 * passwd -- password hashes through libxcrypt.
 *
 * Only schemes that are still sound are verified: bcrypt, SHA-crypt
 * (SHA-256 and SHA-512) and yescrypt. Everything else -- DES, MD5-crypt,
 * NT-hash, Dovecot's unsalted digests -- is an error with a reason, so an
 * administrator learns that a table holds a weak hash instead of seeing
 * users fail to log in for no visible cause.
 */
#include <ctype.h>
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "passwd.h"
#include "table.h"

/* The crypt(3) identifiers we verify, and what each is called. */
static const struct ident {
	const char	*ident;
	const char	*family;	/* for a Dovecot prefix check */
} idents[] = {
	{ "$y$",  "yescrypt" },
	{ "$2b$", "bcrypt" },
	{ "$2y$", "bcrypt" },
	{ "$2a$", "bcrypt" },
	{ "$6$",  "sha512" },
	{ "$5$",  "sha256" },
};

/* The schemes passwd_hash makes. */
static const struct scheme {
	const char	*name;
	const char	*alias;		/* Dovecot's name */
	const char	*gensalt;	/* prefix for crypt_gensalt */
	unsigned long	 count;		/* cost; 0: libxcrypt's default */
	const char	*dovecot;	/* prefix printed with -p */
} schemes[] = {
	{ "yescrypt",     "CRYPT",        "$y$",  0,  "{CRYPT}" },
	/*
	 * $2y$ is the same algorithm as $2b$ and is what Dovecot and PHP
	 * write; every verifier we know accepts it. Cost 10 (1024 rounds)
	 * rather than libxcrypt's default of 5, which is too cheap today.
	 */
	{ "bcrypt",       "BLF-CRYPT",    "$2y$", 10, "{BLF-CRYPT}" },
	{ "sha512-crypt", "SHA512-CRYPT", "$6$",  0,  "{SHA512-CRYPT}" },
	{ "sha256-crypt", "SHA256-CRYPT", "$5$",  0,  "{SHA256-CRYPT}" },
};

/* Dovecot scheme prefixes: which crypt family each one must hold. */
static const struct prefix {
	const char	*name;
	const char	*family;	/* NULL: any we accept; "plain" */
} prefixes[] = {
	{ "CRYPT",        NULL },
	{ "BLF-CRYPT",    "bcrypt" },
	{ "SHA512-CRYPT", "sha512" },
	{ "SHA256-CRYPT", "sha256" },
	{ "PLAIN",        "plain" },
	{ "CLEAR",        "plain" },
};

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * A yescrypt hash (libxcrypt's default cost) of a random password nobody
 * knows: what an unknown user's password is checked against when the
 * table has no usable hash to borrow.
 */
static const char dummy_hash[] =
    "$y$j9T$zL4bpku95agE2x3R5g8yP/$8oMHtO5IGtoG.sY0POgNzPNB1964wuFOnRrRf.PayP/";

static const struct ident *
find_ident(const char *h)
{
	size_t	i;

	for (i = 0; i < nitems(idents); i++)
		if (strncmp(h, idents[i].ident, strlen(idents[i].ident)) == 0)
			return &idents[i];
	return NULL;
}

/*
 * Splits a stored hash into its Dovecot prefix (or NULL) and the rest.
 * Returns the reason it is unusable, or NULL.
 */
static const char *
parse(const char *hash, int flags, const struct prefix **pp, const char **rest)
{
	const struct prefix	*p = NULL;
	const struct ident	*id;
	const char		*h = hash, *e;
	size_t			 i, n;

	*pp = NULL;
	*rest = hash;
	if (hash == NULL || *hash == '\0')
		return "empty hash";
	if (*h == '{') {
		if ((e = strchr(h, '}')) == NULL)
			return "unterminated {SCHEME} prefix";
		n = e - (h + 1);
		for (i = 0; i < nitems(prefixes); i++)
			if (strlen(prefixes[i].name) == n &&
			    strncasecmp(h + 1, prefixes[i].name, n) == 0)
				p = &prefixes[i];
		if (p == NULL)
			return "unsupported Dovecot scheme (only {CRYPT}, "
			    "{BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT})";
		h = e + 1;
		*pp = p;
		*rest = h;
		if (p->family != NULL && strcmp(p->family, "plain") == 0) {
			if (!(flags & PASSWD_ALLOW_PLAIN))
				return "{PLAIN} passwords are not allowed here";
			return NULL;
		}
	}
	if (*h == '!' || *h == '*')
		return NULL;	/* locked: verifies as a mismatch */
	if (strlen(h) >= CRYPT_OUTPUT_SIZE)
		return "hash too long";
	if ((id = find_ident(h)) == NULL) {
		if (strncmp(h, "$1$", 3) == 0)
			return "MD5-crypt ($1$) is weak and refused";
		if (strncmp(h, "$3$", 3) == 0)
			return "NT-hash ($3$) is weak and refused";
		if (strncmp(h, "$md5", 4) == 0 || strncmp(h, "$sha1$", 6) == 0)
			return "Sun MD5 and SHA-1 crypt are weak and refused";
		if (*h == '_')
			return "BSDi DES crypt is weak and refused";
		if (*h != '$' && strlen(h) == 13)
			return "DES crypt is weak and refused";
		if (*h == '$')
			return "unsupported crypt scheme (only $y$, $2b$, "
			    "$2y$, $2a$, $6$, $5$)";
		return "not a crypt hash (plain text needs {PLAIN})";
	}
	if (p != NULL && p->family != NULL && strcmp(p->family, id->family))
		return "hash does not match its {SCHEME} prefix";
	return NULL;
}

const char *
passwd_why(const char *hash, int flags)
{
	const struct prefix	*p;
	const char		*rest;

	return parse(hash, flags, &p, &rest);
}

/*
 * Constant time over the stored value; the loop length depends only on
 * it, the password's length leaks nothing beyond what its owner knows.
 */
static int
plain_eq(const char *stored, const char *pw)
{
	const volatile unsigned char	*s = (const unsigned char *)stored;
	const unsigned char		*p = (const unsigned char *)pw;
	size_t				 sl = strlen(stored), pl = strlen(pw), i;
	unsigned char			 d;

	d = sl != pl;
	for (i = 0; i < sl; i++)
		d |= s[i] ^ p[i < pl ? i : 0];
	return d == 0;
}

int
passwd_verify(const char *hash, const char *password, int flags)
{
	const struct prefix	*p;
	struct crypt_data	*cd;
	const char		*h, *r;
	size_t			 hl;
	int			 ok;

	if (parse(hash, flags, &p, &h) != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (p != NULL && p->family != NULL && strcmp(p->family, "plain") == 0)
		return plain_eq(h, password);
	if (*h == '!' || *h == '*')
		return 0;
	if (strlen(password) > PASSWD_MAXLEN)
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return -1;
	r = crypt_rn(password, h, cd, sizeof(*cd));
	if (r == NULL || *r == '*') {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
		errno = EINVAL;
		return -1;
	}
	hl = strlen(h);
	ok = strlen(r) == hl && mem_eq_ct(r, h, hl) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return ok;
}

static const struct scheme *
find_scheme(const char *name)
{
	size_t	i;

	if (name == NULL)
		return &schemes[0];
	for (i = 0; i < nitems(schemes); i++)
		if (strcasecmp(name, schemes[i].name) == 0 ||
		    strcasecmp(name, schemes[i].alias) == 0)
			return &schemes[i];
	return NULL;
}

const char *
passwd_scheme(const char *name)
{
	const struct scheme	*s;

	return (s = find_scheme(name)) ? s->name : NULL;
}

int
passwd_hash(const char *scheme, const char *password, int prefix,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const struct scheme	*s;
	struct crypt_data	*cd;
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*r;
	int			 rc = -1;

	if ((s = find_scheme(scheme)) == NULL) {
		snprintf(err, errlen, "%s: unknown scheme (yescrypt, bcrypt, "
		    "sha512-crypt or sha256-crypt)", scheme);
		return -1;
	}
	if (*password == '\0') {
		snprintf(err, errlen, "empty password refused");
		return -1;
	}
	if (strlen(password) > PASSWD_MAXLEN) {
		snprintf(err, errlen, "password longer than %d bytes",
		    PASSWD_MAXLEN);
		return -1;
	}
	/* No random bytes given: libxcrypt takes them from the OS. */
	if (crypt_gensalt_rn(s->gensalt, s->count, NULL, 0, salt,
	    sizeof(salt)) == NULL) {
		snprintf(err, errlen, "%s: making a salt: %s", s->name,
		    strerror(errno));
		return -1;
	}
	if ((cd = calloc(1, sizeof(*cd))) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	errno = 0;
	r = crypt_rn(password, salt, cd, sizeof(*cd));
	if (r == NULL || *r == '*' ||
	    strncmp(r, s->gensalt, strlen(s->gensalt)) != 0)
		snprintf(err, errlen, "%s: hashing failed: %s", s->name,
		    strerror(errno ? errno : EINVAL));
	else if (str_fmt(out, outlen, "%s%s", prefix ? s->dovecot : "", r))
		snprintf(err, errlen, "%s: hash too long for its buffer",
		    s->name);
	else
		rc = 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

/* The hash field of a table value: see passwd.h. NULL when too long. */
static const char *
hash_field(const char *user, const char *val, char *hash, size_t hashlen)
{
	size_t	ul = strlen(user), n;

	while (*val == ' ' || *val == '\t')
		val++;
	if (strncmp(val, user, ul) == 0 && val[ul] == ':')
		val += ul + 1;
	n = strcspn(val, " \t:");
	if (n >= hashlen)
		return NULL;
	memcpy(hash, val, n);
	hash[n] = '\0';
	return hash;
}

int
passwd_lookup(struct table *t, const char *user, char *hash, size_t hashlen)
{
	char	val[2048];
	int	r;

	if ((r = table_lookup(t, user, val, sizeof(val))) != 1)
		return r;
	if (hash_field(user, val, hash, hashlen) == NULL) {
		explicit_bzero(val, sizeof(val));
		errno = ERANGE;
		return -1;
	}
	explicit_bzero(val, sizeof(val));
	return 1;
}

struct borrow {
	char	hash[CRYPT_OUTPUT_SIZE];
	int	flags;
};

static int
borrow_one(const char *key, const char *val, void *arg)
{
	struct borrow	*b = arg;
	char		 h[CRYPT_OUTPUT_SIZE];

	if (hash_field(key, val, h, sizeof(h)) == NULL || *h == '!' ||
	    *h == '*' || passwd_why(h, b->flags) != NULL)
		return 0;
	memcpy(b->hash, h, sizeof(b->hash));
	return 1;
}

int
passwd_check(struct table *t, const char *user, const char *password,
    int flags)
{
	struct borrow	b;
	char		hash[CRYPT_OUTPUT_SIZE + 32];
	int		r;

	r = passwd_lookup(t, user, hash, sizeof(hash));
	if (r == 1) {
		r = passwd_verify(hash, password, flags);
		explicit_bzero(hash, sizeof(hash));
		return r;
	}
	if (r == -1)
		return -1;
	/*
	 * Unknown user: spend the time a wrong password would cost, on a
	 * hash of the scheme and cost the table uses (its first usable
	 * one), so timing does not tell which users exist.
	 */
	b.flags = flags;
	if (table_foreach(t, borrow_one, &b) != 1)
		str_lcpy(b.hash, dummy_hash, sizeof(b.hash));
	(void)passwd_verify(b.hash, password, flags);
	explicit_bzero(&b, sizeof(b));
	return 0;
}
