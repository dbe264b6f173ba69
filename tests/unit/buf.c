/* Unit tests for lib/buf. */
#include <errno.h>
#include <stdlib.h>

#include "buf.h"
#include "t.h"

int
main(void)
{
	struct buf		 b;
	char			 s[8], t[] = "  Hello World \r\n";
	unsigned long long	 v;
	size_t			 r;
	char			*p;

	buf_init(&b, 10);
	T_EQ_INT(buf_adds(&b, "hello"), 0, "append within max");
	T_EQ_INT(buf_printf(&b, "%d", 1234), 0, "printf within max");
	T_EQ_STR(b.data, "hello1234", "content is NUL-terminated");
	errno = 0;
	T_EQ_INT(buf_adds(&b, "xy"), -1, "append over max fails");
	T_EQ_INT(errno, EMSGSIZE, "errno EMSGSIZE over max");
	T_EQ_INT(b.len, 9, "failed append leaves len");
	T_EQ_INT(buf_addc(&b, '!'), 0, "exactly max fits");
	buf_consume(&b, 5);
	T_EQ_STR(b.data, "1234!", "consume shifts");
	p = buf_release(&b);
	T_EQ_STR(p, "1234!", "release gives data");
	free(p);
	T_EQ_INT(b.len, 0, "release resets");

	buf_init(&b, 0);
	for (r = 0; r < 100000; r++)
		if (buf_addc(&b, 'a') == -1)
			break;
	T_EQ_INT(b.len, 100000, "unbounded buffer grows");
	buf_wipe_free(&b);

	T_EQ_INT(str_lcpy(s, "abcdefghij", sizeof(s)), 10, "lcpy returns source length");
	T_EQ_STR(s, "abcdefg", "lcpy truncates");
	T_EQ_INT(str_fmt(s, sizeof(s), "%s", "abcdefgh"), -1, "fmt reports truncation");
	T_EQ_INT(str_fmt(s, sizeof(s), "%s", "abc"), 0, "fmt fits");
	str_lcpy(s, "ab", sizeof(s));
	T_OK(str_lcat(s, "cdefghi", sizeof(s)) >= sizeof(s), "lcat reports truncation");
	T_EQ_STR(str_trim(t), "Hello World", "trim");
	T_EQ_STR(str_lower(t + 2), "hello world", "lower");
	T_OK(str_prefix("MAIL FROM:<a>", "mail from:"), "prefix is case-insensitive");
	T_OK(mem_eq_ct("abc", "abc", 3) == 0 && mem_eq_ct("abc", "abd", 3) != 0,
	    "constant-time compare");
	T_OK(size_mul((size_t)-1, 2, &r) == -1, "size_mul overflow");
	T_OK(str_size("10M", &v) == 0 && v == 10485760ULL, "size with suffix");
	T_OK(str_size("12x", &v) == -1 && str_size("", &v) == -1, "bad sizes refused");
	T_OK(str_size("99999999999999999999999", &v) == -1, "size overflow refused");
	return t_done();
}
