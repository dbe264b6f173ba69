/* Unit tests for lib/msg: header fields, unfolding, addresses, RFC 2047. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "msg.h"
#include "t.h"

int
main(void)
{
	const char	*m = "From: \"Joe Q. Public\" <john.q.public@example.com>\n"
	    "Subject: a\n long\n\tsubject\n"
	    "To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n"
	    "Cc: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\n"
	    "Bcc: <@route1,@route2:user@host.test> (comment)\n"
	    "\n"
	    "body\n";
	const char	*crlf = "A: 1\r\nB: 2\r\n\r\nbody";
	struct msg_field f;
	struct msg_addr	*a;
	struct buf	 b;
	size_t		 n, pos = 0, hl;
	int		 count = 0;

	hl = msg_header_len(m, strlen(m));
	T_OK(strcmp(m + hl, "body\n") == 0, "header length (LF)");
	T_EQ_INT(msg_header_len(crlf, strlen(crlf)), 14, "header length (CRLF)");
	T_EQ_INT(msg_header_len("A: 1\n", 5), 5, "all header");
	T_EQ_INT(msg_header_len("\nbody", 5), 1, "no header");
	while (msg_field_next(m, hl, &pos, &f) == 1)
		count++;
	T_EQ_INT(count, 5, "five fields");
	T_EQ_INT(msg_field_find(m, hl, "subject", &f), 1, "find is case-insensitive");
	buf_init(&b, 0);
	msg_unfold(f.value, f.valuelen, &b);
	T_EQ_STR(b.data, "a long\tsubject", "unfolded");
	T_EQ_INT(msg_field_find(m, hl, "X-None", &f), 0, "absent field");

	T_EQ_INT(msg_field_find(m, hl, "From", &f), 1, "from");
	msg_addr_parse(f.value, f.valuelen, 100, &a, &n);
	T_EQ_INT(n, 1, "one from");
	T_EQ_STR(a[0].name, "Joe Q. Public", "display name unquoted");
	T_EQ_STR(a[0].mailbox, "john.q.public", "local part");
	T_EQ_STR(a[0].host, "example.com", "domain");
	msg_addr_free(a, n);

	msg_field_find(m, hl, "To", &f);
	msg_addr_parse(f.value, f.valuelen, 100, &a, &n);
	T_EQ_INT(n, 3, "three to");
	T_OK(n == 3 && a[1].name == NULL && strcmp(a[1].mailbox, "jdoe") == 0,
	    "bare addr-spec");
	T_OK(n == 3 && strcmp(a[2].name, "Who?") == 0, "name with ?");
	msg_addr_free(a, n);

	msg_field_find(m, hl, "Cc", &f);
	msg_addr_parse(f.value, f.valuelen, 100, &a, &n);
	T_EQ_INT(n, 5, "group: start, 3 members, end");
	T_OK(n == 5 && a[0].group && strcmp(a[0].mailbox, "A Group") == 0,
	    "group start");
	T_OK(n == 5 && a[4].group && a[4].mailbox == NULL, "group end");
	T_OK(n == 5 && strcmp(a[2].mailbox, "joe") == 0, "member in group");
	msg_addr_free(a, n);

	msg_field_find(m, hl, "Bcc", &f);
	msg_addr_parse(f.value, f.valuelen, 100, &a, &n);
	T_EQ_INT(n, 1, "route addr");
	T_OK(n == 1 && a[0].adl && strcmp(a[0].adl, "@route1,@route2") == 0,
	    "source route kept");
	T_OK(n == 1 && strcmp(a[0].host, "host.test") == 0, "host after route");
	msg_addr_free(a, n);

	msg_addr_parse("a@b, c@d, e@f", 13, 2, &a, &n);
	T_EQ_INT(n, 2, "max items honoured");
	msg_addr_free(a, n);
	msg_addr_parse("<<<>>>,,;;::\"", 13, 100, &a, &n);
	T_OK(1, "garbage address list survives (%zu items)", n);
	msg_addr_free(a, n);

	buf_reset(&b);
	msg_decode_2047("=?ISO-8859-1?Q?Andr=E9?= Pirard", 31, &b);
	T_EQ_STR(b.data, "André Pirard", "Q latin-1");
	buf_reset(&b);
	msg_decode_2047("=?UTF-8?B?w6l0w6k=?= =?utf-8?q?_x?=", 36, &b);
	T_EQ_STR(b.data, "été x", "B utf-8 and space between words dropped");
	buf_reset(&b);
	msg_decode_2047("=?bogus?Q?x?= y", 15, &b);
	T_EQ_STR(b.data, "=?bogus?Q?x?= y", "unknown charset kept");
	buf_reset(&b);
	msg_decode_2047("a =?utf-8?q?b?", 14, &b);
	T_EQ_STR(b.data, "a =?utf-8?q?b?", "unterminated word kept");
	buf_free(&b);

	{
		char d[64];

		setenv("TZ", "UTC", 1);
		tzset();
		T_EQ_STR(msg_date(d, sizeof(d), 86400 * 366),
		    "Sat, 02 Jan 1971 00:00:00 +0000", "RFC 5322 date");
		T_EQ_STR(msg_date(d, 10, 0), "", "date too long for buf");
	}
	return t_done();
}
