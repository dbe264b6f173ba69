/* Unit tests for lib/mime: structure, offsets, defaults, nesting bound. */
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "t.h"

int
main(void)
{
	const char *m =
	    "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
	    "Subject: t\r\n"
	    "\r\n"
	    "preamble\r\n"
	    "--XX\r\n"
	    "\r\n"
	    "plain text\r\n"
	    "--XX\r\n"
	    "Content-Type: text/html; charset=UTF-8\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "Content-Disposition: attachment; filename=\"a b.html\"\r\n"
	    "\r\n"
	    "PGI+\r\n"
	    "--XX\r\n"
	    "Content-Type: message/rfc822\r\n"
	    "\r\n"
	    "Subject: inner\r\n"
	    "Content-Type: multipart/alternative; boundary=YY\r\n"
	    "\r\n"
	    "--YY\r\n"
	    "Content-Type: text/plain\r\n"
	    "\r\n"
	    "alt1\r\n"
	    "--YY--\r\n"
	    "--XX--\r\n"
	    "epilogue\r\n";
	struct mime_part *p, *c;
	struct mime_param *params = NULL;
	size_t		 np = 0;
	char		*first = NULL;

	T_EQ_INT(mime_parse(m, strlen(m), 0, &p), 0, "parse");
	T_EQ_STR(p->type, "multipart", "top type");
	T_EQ_STR(p->subtype, "mixed", "top subtype");
	T_EQ_STR(mime_param(p, "boundary"), "XX", "boundary param");
	T_EQ_INT(p->nchild, 3, "three parts");
	c = &p->child[0];
	T_EQ_STR(c->type, "text", "default type");
	T_EQ_STR(mime_param(c, "charset"), "us-ascii", "default charset");
	T_EQ_INT(c->body_len, 10, "part 1 body length without delimiter CRLF");
	T_OK(memcmp(m + c->body_off, "plain text", 10) == 0, "part 1 offset");
	T_EQ_INT(c->lines, 1, "part 1 lines");
	c = &p->child[1];
	T_EQ_STR(c->subtype, "html", "part 2 subtype");
	T_EQ_STR(c->encoding, "base64", "encoding");
	T_EQ_STR(c->disposition, "attachment", "disposition");
	T_OK(c->ndparams == 1 && strcmp(c->dparams[0].value, "a b.html") == 0,
	    "disposition filename");
	c = &p->child[2];
	T_EQ_STR(c->subtype, "rfc822", "message/rfc822");
	T_EQ_INT(c->nchild, 1, "embedded message");
	T_EQ_STR(c->child->type, "multipart", "embedded multipart");
	T_EQ_INT(c->child->nchild, 1, "embedded alternative has one part");
	T_OK(memcmp(m + c->child->child[0].body_off, "alt1", 4) == 0 &&
	    c->child->child[0].body_len == 4, "nested part offsets");
	mime_free(p);

	T_EQ_INT(mime_parse(m, strlen(m), 1, &p), 0, "parse with depth 1");
	T_EQ_INT(p->child[2].nchild, 0, "depth bound keeps rfc822 a leaf");
	mime_free(p);

	T_EQ_INT(mime_parse("Content-Type: multipart/mixed\n\nx", 33, 0, &p), 0,
	    "multipart without boundary");
	T_EQ_INT(p->nchild, 0, "no parts");
	mime_free(p);

	T_EQ_INT(mime_parse_params("Text/Plain; (c) charset = \"utf-8\" ;format=flowed",
	    &params, &np, &first), 0, "params");
	T_EQ_STR(first, "text/plain", "value lowercased");
	T_EQ_INT(np, 2, "two params");
	T_OK(np == 2 && strcmp(params[0].value, "utf-8") == 0 &&
	    strcmp(params[1].name, "format") == 0, "param values");
	free(first);
	for (size_t i = 0; i < np; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
	return t_done();
}
