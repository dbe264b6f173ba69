/* Unit tests for lib/base64. */
#include <string.h>

#include "base64.h"
#include "buf.h"
#include "t.h"

static int
dec(const char *in, int flags, char *out, size_t outsize)
{
	size_t n;

	if (base64_decode(in, strlen(in), out, outsize, &n, flags) == -1)
		return -1;
	return (int)n;
}

int
main(void)
{
	char		 out[64];
	struct buf	 b;

	/* RFC 4648 section 10 vectors */
	T_EQ_INT(base64_encode("", 0, out, sizeof(out)), 0, "encode empty");
	T_EQ_STR(out, "", "empty");
	base64_encode("f", 1, out, sizeof(out));
	T_EQ_STR(out, "Zg==", "f");
	base64_encode("fo", 2, out, sizeof(out));
	T_EQ_STR(out, "Zm8=", "fo");
	base64_encode("foobar", 6, out, sizeof(out));
	T_EQ_STR(out, "Zm9vYmFy", "foobar");
	base64_encode("\0alice\0secret", 13, out, sizeof(out));
	T_EQ_STR(out, "AGFsaWNlAHNlY3JldA==", "SASL PLAIN blob");
	base64_encode("\xff\xfe\xfd", 3, out, sizeof(out));
	T_EQ_STR(out, "//79", "high bytes use + and /");
	T_EQ_INT(base64_encode("foo", 3, out, 5), 0, "exact room");
	T_EQ_INT(base64_encode("foo", 3, out, 4), -1, "no room for the NUL");
	T_EQ_INT(BASE64_SIZE(4), 9, "size of 4 bytes");

	/* strict (SASL) */
	T_EQ_INT(dec("Zm9vYg==", 0, out, sizeof(out)), 4, "strict decode");
	T_EQ_STR(out, "foob", "strict value");
	T_EQ_INT(dec("", 0, out, sizeof(out)), 0, "strict empty");
	T_EQ_INT(dec("AGFsaWNlAHNlY3JldA==", 0, out, sizeof(out)), 13,
	    "strict NULs kept");
	T_OK(memcmp(out, "\0alice\0secret", 14) == 0, "NULs and final NUL");
	T_EQ_INT(dec("Zm9vYg=", 0, out, sizeof(out)), -1, "strict: length");
	T_EQ_INT(dec("Zm9vYg", 0, out, sizeof(out)), -1, "strict: no padding");
	T_EQ_INT(dec("Zm9v\r\nYg==", 0, out, sizeof(out)), -1,
	    "strict: line end");
	T_EQ_INT(dec("Zg=a", 0, out, sizeof(out)), -1, "strict: after pad");
	T_EQ_INT(dec("Z===", 0, out, sizeof(out)), -1, "strict: three pads");
	T_EQ_INT(dec("Zg==Zg==", 0, out, sizeof(out)), -1,
	    "strict: pad in the middle");
	T_EQ_INT(dec("Zm9v", 0, out, 4), 3, "exact room");
	T_EQ_INT(dec("Zm9v", 0, out, 3), -1, "no room for the NUL");
	T_EQ_INT(base64_decode("Zm9v", 4, out, 0, NULL, 0), -1, "size 0");

	/* loose (RFC 2047) */
	T_EQ_INT(dec("Zm9vYg", BASE64_LOOSE, out, sizeof(out)), 4,
	    "loose: no padding");
	T_EQ_INT(dec("Zg==junk", BASE64_LOOSE, out, sizeof(out)), 1,
	    "loose: '=' ends the data");
	T_EQ_INT(dec("Zm 9v", BASE64_LOOSE, out, sizeof(out)), -1,
	    "loose: space refused");

	/* skip (MIME bodies) */
	T_EQ_INT(dec("Zm9v\r\nYmFy\n", BASE64_SKIP, out, sizeof(out)), 6,
	    "skip: line ends");
	T_EQ_STR(out, "foobar", "skip value");
	T_EQ_INT(dec("Zg==Zm8=", BASE64_SKIP, out, sizeof(out)), 3,
	    "skip: '=' skipped too");

	/* into a buf */
	buf_init(&b, 4);
	T_EQ_INT(base64_decode_buf(&b, "Zm9v\nYg==", 9, BASE64_SKIP), 0,
	    "buf decode");
	T_OK(b.len == 4 && memcmp(b.data, "foob", 4) == 0, "buf value");
	T_EQ_INT(base64_decode_buf(&b, "Zg==", 4, 0), -1, "buf max");
	buf_reset(&b);
	T_EQ_INT(base64_decode_buf(&b, "Zg=", 3, 0), -1, "buf strict");
	buf_free(&b);
	return t_done();
}
