/*
 * base64 -- RFC 4648 section 4 base64, the one encoder and decoder of the
 * suite (SMTP and IMAP AUTH, RFC 2047 encoded words, MIME bodies). IMAP's
 * modified UTF-7 (RFC 3501 5.1.3) has its own alphabet and stays in imap.c.
 */
#ifndef BASE64_H
#define BASE64_H

#include <stddef.h>

struct buf;

/* Bytes base64_encode needs for n input bytes, the NUL included. */
#define BASE64_SIZE(n)	(((n) + 2) / 3 * 4 + 1)

/*
 * Encodes n bytes of in into out (outsize bytes), padded and
 * NUL-terminated. 0, or -1 when out is smaller than BASE64_SIZE(n).
 */
int	base64_encode(const void *in, size_t n, char *out, size_t outsize);

/*
 * Decoding flags. Without any, decoding is strict, as SASL wants it
 * (RFC 4648 3.3, RFC 4954 4): the length is a multiple of 4, at most two
 * '=' and only at the end, nothing outside the alphabet.
 */
#define BASE64_LOOSE	0x1	/* padding optional; the first '=' ends the
				   data (RFC 2047 encoded words) */
#define BASE64_SKIP	0x2	/* characters outside the alphabet, '='
				   included, are skipped (MIME bodies,
				   RFC 2045 6.8: line ends, whitespace) */

/*
 * Decodes inlen characters of in into out (outsize bytes), NUL-terminated,
 * the length in *outlen. Bits left over after the last whole byte are
 * dropped. 0, or -1 on input the flags do not allow or when the bytes and
 * the NUL do not fit; out is then undefined (wipe it if it held a secret).
 */
int	base64_decode(const char *in, size_t inlen, void *out, size_t outsize,
	    size_t *outlen, int flags);
/* The same, appending to out. 0, or -1 (bad input, or errno EMSGSIZE or
   ENOMEM from buf, with what was decoded so far appended). */
int	base64_decode_buf(struct buf *out, const char *in, size_t inlen,
	    int flags);

#endif
