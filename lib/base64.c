/*
 * base64 -- see base64.h. One decoding loop serves the fixed buffer and the
 * growable one, so the strictness rules live in one place.
 */
#include <stdint.h>

#include "base64.h"
#include "buf.h"

static const char tab[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int
base64_encode(const void *in, size_t n, char *out, size_t outsize)
{
	const unsigned char	*p = in;
	size_t			 i, o = 0;
	uint32_t		 v;

	if (n > (SIZE_MAX - 1) / 4 * 3 - 2 || outsize < BASE64_SIZE(n))
		return -1;
	for (i = 0; i < n; i += 3) {
		v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return 0;
}

static int
val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * The one loop: each decoded byte goes to fixed (bounded by fixedsize,
 * keeping room for the NUL) or, when fixed is NULL, to b.
 */
static int
decode(const char *in, size_t inlen, int flags, unsigned char *fixed,
    size_t fixedsize, struct buf *b, size_t *outlen)
{
	size_t		 i, o = 0;
	uint32_t	 acc = 0;
	int		 bits = 0, pad = 0, v;

	if (flags == 0 && inlen % 4 != 0)
		return -1;
	for (i = 0; i < inlen; i++) {
		if ((v = val((unsigned char)in[i])) < 0) {
			if (flags & BASE64_SKIP)
				continue;
			if (in[i] != '=')
				return -1;
			if (flags & BASE64_LOOSE)
				break;
			/* strict: at most two, and only at the end */
			if (inlen - i > 2)
				return -1;
			pad++;
			continue;
		}
		if (pad)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits < 8)
			continue;
		bits -= 8;
		if (fixed == NULL) {
			if (buf_addc(b, (int)((acc >> bits) & 0xff)) == -1)
				return -1;
		} else if (o + 1 >= fixedsize)
			return -1;
		else
			fixed[o] = (acc >> bits) & 0xff;
		o++;
	}
	if (fixed != NULL) {
		if (fixedsize == 0)
			return -1;
		fixed[o] = '\0';
	}
	if (outlen != NULL)
		*outlen = o;
	return 0;
}

int
base64_decode(const char *in, size_t inlen, void *out, size_t outsize,
    size_t *outlen, int flags)
{
	return decode(in, inlen, flags, out, outsize, NULL, outlen);
}

int
base64_decode_buf(struct buf *out, const char *in, size_t inlen, int flags)
{
	return decode(in, inlen, flags, NULL, 0, out, NULL);
}
