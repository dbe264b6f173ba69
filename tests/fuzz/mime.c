/*
 * Fuzz target: lib/mime on a whole message -- the MIME tree (multipart
 * boundaries, message/rfc822 nesting, parameters) with offsets checked
 * against the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(const struct mime_part *p, size_t size)
{
	if (p->hdr_off + p->hdr_len > size || p->body_off + p->body_len > size)
		abort();
	(void)mime_param(p, "charset");
	for (size_t i = 0; i < p->nchild; i++)
		check(&p->child[i], size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_part	*p;
	char			*m;

	if ((m = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(m, data, size);
	if (mime_parse(m, size, 20, &p) == 0) {
		check(p, size);
		mime_free(p);
	}
	free(m);
	return 0;
}
