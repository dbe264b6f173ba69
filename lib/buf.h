/*
 * buf -- one growable byte buffer with a hard maximum per use, and bounded
 * string helpers. Going past the maximum is an ordinary error (-1, errno
 * EMSGSIZE), never an abort. The data is always NUL-terminated (the NUL is
 * not counted in len), so text in a buf can be used as a C string.
 */
#ifndef BUF_H
#define BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char	*data;		/* owned; NULL until the first append */
	size_t	 len;		/* bytes in use */
	size_t	 cap;		/* bytes allocated */
	size_t	 max;		/* hard limit on len; 0 means SIZE_MAX/2 */
};

/* Initializes an empty buffer that may hold at most max bytes. */
void	buf_init(struct buf *, size_t max);
/* Frees the data, after wiping it when it held a secret. */
void	buf_free(struct buf *);
void	buf_wipe_free(struct buf *);
/* Sets len to 0, keeping the memory. */
void	buf_reset(struct buf *);
/* Makes room for n more bytes. 0, or -1 with errno EMSGSIZE or ENOMEM. */
int	buf_reserve(struct buf *, size_t n);
/* Appends; 0, or -1 with errno EMSGSIZE (over max) or ENOMEM. */
int	buf_add(struct buf *, const void *, size_t);
int	buf_addc(struct buf *, int c);
int	buf_adds(struct buf *, const char *);
int	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
int	buf_vprintf(struct buf *, const char *, va_list)
	    __attribute__((format(printf, 2, 0)));
/* Removes the first n bytes (n <= len). */
void	buf_consume(struct buf *, size_t n);
/* Returns the data and gives it to the caller (free(3) it); buf is reset. */
char	*buf_release(struct buf *);

/*
 * Bounded string helpers. strlcpy/strlcat semantics: they return the length
 * they tried to create; the caller checks it against the size.
 */
size_t	str_lcpy(char *dst, const char *src, size_t size);
size_t	str_lcat(char *dst, const char *src, size_t size);
/* snprintf that returns 0, or -1 when the output was truncated or failed. */
int	str_fmt(char *dst, size_t size, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/*
 * Puts an error message in a caller's buffer: nothing when err is NULL or
 * errlen 0, truncated silently, errno kept. Always -1, so that a function
 * can end with "return str_err(...)".
 */
int	str_err(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
/* Lowercases ASCII in place; returns s. */
char	*str_lower(char *s);
/* Strips leading and trailing ASCII white space in place; returns start. */
char	*str_trim(char *s);
/* Case-insensitive ASCII prefix test: 1 if s starts with prefix. */
int	str_prefix(const char *s, const char *prefix);
/* Constant-time comparison of n bytes: 0 when equal. */
int	mem_eq_ct(const void *a, const void *b, size_t n);
/* Size-checked multiply for allocations: 0, or -1 on overflow. */
int	size_mul(size_t a, size_t b, size_t *r);
/*
 * Parses an unsigned decimal number with an optional K, M or G suffix
 * (1024-based), with overflow checking. 0, or -1 on a malformed value.
 */
int	str_size(const char *s, unsigned long long *r);

#endif
