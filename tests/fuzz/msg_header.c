/*
 * Fuzz target: lib/msg on a message header -- field iteration, unfolding,
 * address lists (as ENVELOPE builds them) and RFC 2047 decoding.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "msg.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_field	 f;
	struct msg_addr		*a;
	struct buf		 b;
	size_t			 hl, pos = 0, n;
	char			*m;

	if ((m = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(m, data, size);
	hl = msg_header_len(m, size);
	buf_init(&b, 1 << 20);
	while (msg_field_next(m, hl, &pos, &f) == 1) {
		buf_reset(&b);
		(void)msg_unfold(f.value, f.valuelen, &b);
		if (msg_addr_parse(f.value, f.valuelen, 1000, &a, &n) == 0)
			msg_addr_free(a, n);
		buf_reset(&b);
		(void)msg_decode_2047(f.value, f.valuelen, &b);
	}
	(void)msg_field_find(m, hl, "Subject", &f);
	buf_free(&b);
	free(m);
	return 0;
}
