/* Unit tests for lib/imap: tokenizer, literals, sequence sets, dates,
 * quoting and modified UTF-7. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "imap.h"
#include "t.h"

static int
parse(const char *s, struct imap_args *a, char *err)
{
	return imap_parse(s, strlen(s), 0, a, err, 128);
}

static void
utf7_round(const char *utf8, const char *utf7)
{
	struct buf	b;

	buf_init(&b, 0);
	T_EQ_INT(imap_utf7_encode(utf8, &b), 0, "utf7 encode ok");
	T_EQ_STR(b.data ? b.data : "", utf7, "utf7 encode");
	buf_reset(&b);
	T_EQ_INT(imap_utf7_decode(utf7, &b), 0, "utf7 decode ok");
	T_EQ_STR(b.data ? b.data : "", utf8, "utf7 decode");
	buf_free(&b);
}

int
main(void)
{
	struct imap_args	 a;
	struct imap_seqset	 set;
	struct buf		 b;
	char			 err[128], deep[200];
	uint64_t		 n;
	int			 ns, i;
	time_t			 t;
	uint32_t		 v[] = { 1, 2, 3, 5, 7, 8 };

	T_EQ_INT(parse("a1 LOGIN \"jo\\\"e\" {1}\r\nx", &a, err), 0,
	    "command with quoted and literal");
	T_EQ_INT(a.n, 4, "four arguments");
	T_EQ_STR(a.v[2].str, "jo\"e", "quoted unescaped");
	T_EQ_INT(a.v[3].type, IMAP_LITERAL, "literal type");
	T_EQ_INT(a.v[3].len, 1, "literal length");
	imap_args_free(&a);

	T_EQ_INT(imap_parse("a {3}\r\nx\0y", 10, 0, &a, err, sizeof(err)), 0,
	    "literal with NUL inside");
	T_EQ_INT(a.v[1].len, 3, "literal keeps its NUL byte");
	imap_args_free(&a);

	T_EQ_INT(parse("a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)",
	    &a, err), 0, "fetch with section");
	T_EQ_INT(a.n, 4, "fetch has 4 args");
	T_EQ_INT(a.v[3].type, IMAP_LIST, "attribute list");
	T_EQ_INT(a.v[3].nlist, 2, "two attributes");
	T_EQ_STR(a.v[3].list[1].str, "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>",
	    "section kept whole in one atom");
	imap_args_free(&a);

	T_EQ_INT(parse("a STORE 1 +FLAGS (\\Seen \\Deleted)", &a, err), 0, "flags");
	T_EQ_STR(a.v[4].list[0].str, "\\Seen", "flag atom");
	imap_args_free(&a);

	T_EQ_INT(parse("a LIST \"\" *", &a, err), 0, "list wildcard");
	T_EQ_STR(a.v[3].str, "*", "wildcard atom");
	T_EQ_INT(a.v[2].len, 0, "empty quoted");
	imap_args_free(&a);

	T_EQ_INT(parse("a (b (c)", &a, err), -1, "unbalanced (");
	imap_args_free(&a);
	T_EQ_INT(parse("a b)", &a, err), -1, "unbalanced )");
	imap_args_free(&a);
	T_EQ_INT(parse("a \"b", &a, err), -1, "unterminated quote");
	imap_args_free(&a);
	T_EQ_INT(parse("a \"b\\x\"", &a, err), -1, "bad escape");
	imap_args_free(&a);
	T_EQ_INT(parse("a {5}\r\nab", &a, err), -1, "short literal");
	imap_args_free(&a);
	T_EQ_INT(parse("a {99999999999}\r\nab", &a, err), -1, "huge literal");
	imap_args_free(&a);
	T_EQ_INT(parse("a \"x\"y", &a, err), -1, "no space after string");
	imap_args_free(&a);
	for (i = 0; i < 100; i++)
		deep[i] = '(';
	deep[100] = '\0';
	T_EQ_INT(parse(deep, &a, err), -1, "deep nesting refused");
	T_OK(strstr(err, "deep") != NULL, "error says too deep: %s", err);
	imap_args_free(&a);
	T_EQ_INT(parse("a BODY[HEADER", &a, err), -1, "unterminated [");
	imap_args_free(&a);

	T_EQ_INT(imap_literal_marker("a APPEND x {12}", 15, &n, &ns), 1, "marker");
	T_EQ_INT(n, 12, "marker size");
	T_EQ_INT(ns, 0, "synchronizing");
	T_EQ_INT(imap_literal_marker("x {7+}", 6, &n, &ns), 1, "nonsync marker");
	T_EQ_INT(ns, 1, "non-synchronizing");
	T_EQ_INT(imap_literal_marker("x {}", 4, &n, &ns), 0, "empty braces");
	T_EQ_INT(imap_literal_marker("x 12}", 5, &n, &ns), 0, "no brace");
	T_EQ_INT(imap_literal_marker("x {99999999999}", 15, &n, &ns), -1,
	    "marker too large");

	T_EQ_INT(imap_seqset_parse("1:3,5,*:7", 10, &set), 0, "seqset parse");
	imap_seqset_resolve(&set, 10);
	T_OK(imap_seqset_has(&set, 2) && imap_seqset_has(&set, 9) &&
	    !imap_seqset_has(&set, 4) && !imap_seqset_has(&set, 11),
	    "seqset membership with *");
	imap_seqset_free(&set);
	T_EQ_INT(imap_seqset_parse("0", 10, &set), -1, "zero refused");
	T_EQ_INT(imap_seqset_parse("1,", 10, &set), -1, "trailing comma");
	T_EQ_INT(imap_seqset_parse("1:", 10, &set), -1, "open range");
	T_EQ_INT(imap_seqset_parse("1,2,3", 2, &set), -1, "too many ranges");
	T_EQ_INT(imap_seqset_parse("4294967296", 2, &set), -1, "over 2^32");
	buf_init(&b, 0);
	imap_seqset_format(&b, v, 6);
	T_EQ_STR(b.data, "1:3,5,7:8", "seqset format");
	buf_reset(&b);

	T_EQ_INT(imap_parse_date("1-Feb-1994", &t), 0, "date");
	T_EQ_INT(t, 760060800, "date value");
	T_EQ_INT(imap_parse_date("1-Fev-1994", &t), -1, "bad month");
	T_EQ_INT(imap_parse_datetime(" 1-Feb-1994 21:52:25 +0100", &t), 0,
	    "date-time");
	T_EQ_INT(t, 760060800 + 20 * 3600 + 52 * 60 + 25, "date-time value");
	T_EQ_INT(imap_parse_datetime("01-Feb-1994 21:52:25", &t), -1,
	    "date-time without zone");

	imap_quote(&b, "a\"b", 3);
	T_EQ_STR(b.data, "\"a\\\"b\"", "quote escapes");
	buf_reset(&b);
	imap_quote(&b, "a\nb", 3);
	T_OK(strcmp(b.data, "{3}\r\na\nb") == 0, "newline makes a literal");
	buf_reset(&b);
	imap_astring(&b, "INBOX", 5);
	T_EQ_STR(b.data, "INBOX", "astring atom");
	buf_reset(&b);
	imap_astring(&b, "My Box", 6);
	T_EQ_STR(b.data, "\"My Box\"", "astring quoted");
	buf_free(&b);

	utf7_round("Envoyés", "Envoy&AOk-s");
	utf7_round("A&B", "A&-B");
	utf7_round("日本語", "&ZeVnLIqe-");
	utf7_round("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	utf7_round("😀", "&2D3eAA-");
	T_OK(!imap_utf7_valid("&AGE-"), "encoded ASCII refused");
	T_OK(!imap_utf7_valid("&AOk"), "unterminated shift refused");
	T_OK(!imap_utf7_valid("&-&AOk-&AOk-"), "adjacent shifts refused");
	T_OK(imap_utf7_valid("&AOk-x&AOk-"), "two separate shifts");
	T_OK(!imap_utf7_valid("a\x01"), "control refused");
	T_OK(!imap_utf7_valid("&2D0-"), "lone surrogate refused");
	buf_init(&b, 0);
	T_EQ_INT(imap_utf7_encode("\xff", &b), -1, "bad UTF-8 refused");
	buf_free(&b);
	return t_done();
}
