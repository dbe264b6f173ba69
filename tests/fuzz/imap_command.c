/*
 * Fuzz target: lib/imap as imapd uses it on what a client sends -- the
 * literal marker at a line end, the tokenizer (lists, quoted strings,
 * literals, bracketed sections), sequence sets, dates and modified UTF-7.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "imap.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
walk(const struct imap_arg *v, size_t n, struct buf *b)
{
	for (size_t i = 0; i < n; i++) {
		struct imap_seqset set;
		time_t t;
		uint32_t u;

		if (v[i].type == IMAP_LIST) {
			walk(v[i].list, v[i].nlist, b);
			continue;
		}
		if (imap_seqset_parse(v[i].str, 1000, &set) == 0) {
			imap_seqset_resolve(&set, 100);
			(void)imap_seqset_has(&set, 50);
			imap_seqset_free(&set);
		}
		(void)imap_parse_date(v[i].str, &t);
		(void)imap_parse_datetime(v[i].str, &t);
		(void)imap_number(v[i].str, &u);
		buf_reset(b);
		if (imap_utf7_decode(v[i].str, b) == 0) {
			struct buf back;

			buf_init(&back, 0);
			(void)imap_utf7_encode(b->data ? b->data : "", &back);
			buf_free(&back);
		}
		buf_reset(b);
		(void)imap_quote(b, v[i].str, v[i].len);
		(void)imap_astring(b, v[i].str, v[i].len);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_args	 a;
	struct buf		 b;
	char			 err[128], *s;
	uint64_t		 n;
	int			 ns;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	(void)imap_literal_marker(s, size, &n, &ns);
	buf_init(&b, 1 << 20);
	if (imap_parse(s, size, 0, &a, err, sizeof(err)) == 0)
		walk(a.v, a.n, &b);
	imap_args_free(&a);
	buf_free(&b);
	free(s);
	return 0;
}
