/*
 * Fuzz target: what an SMTP server sends the relay client (lib/smtpc).
 * The input is split into lines at LF (a CR before it dropped, as
 * io_getline does); each line goes to the bounded reply parser, a new
 * reply starting after each complete or refused one, and every line's
 * text to the EHLO keyword parser. The same bytes are also run through
 * the DATA encoder (which must never produce CRLF.CRLF before its own
 * terminator) and, as one string, through the smarthost URL parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
replies(const char *text, size_t size)
{
	struct smtpc_reply r;
	struct smtpc_caps caps;
	const char *p = text, *end = text + size, *t;
	char *line;
	int rv;

	memset(&r, 0, sizeof(r));
	memset(&caps, 0, sizeof(caps));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl != NULL ? nl : end) - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		/* exactly n + 1 bytes, so ASan sees an overread */
		if ((line = malloc(n + 1)) == NULL)
			return;
		memcpy(line, p, n);
		line[n] = '\0';
		t = NULL;
		rv = smtpc_reply_line(&r, line, n, &t);
		if (rv >= 0 && t != NULL)
			smtpc_caps_line(&caps, t);
		if (rv != 0) {
			if (rv == 1 && (r.code < 200 || r.code > 599 ||
			    strlen(r.text) >= sizeof(r.text)))
				abort();
			memset(&r, 0, sizeof(r));
		}
		free(line);
		p = nl != NULL ? nl + 1 : end;
	}
}

static void
encode(const char *in, size_t size)
{
	struct smtpc_dot st;
	char *out;
	size_t o, cap = 2 * size + 8, i;

	if ((out = malloc(cap)) == NULL)
		return;
	memset(&st, 0, sizeof(st));
	/* two halves: the state must carry across calls */
	o = smtpc_dot_encode(&st, in, size / 2, out, cap);
	o += smtpc_dot_encode(&st, in + size / 2, size - size / 2, out + o,
	    cap - o);
	o += smtpc_data_end(&st, out + o, cap - o);
	if (o > cap)
		abort();
	/* the only CRLF.CRLF is the terminator; no bare CR or LF at all */
	for (i = 0; i + 5 <= o; i++)
		if (memcmp(out + i, "\r\n.\r\n", 5) == 0 && i + 5 != o)
			abort();
	if (o >= 3 && memcmp(out + o - 3, ".\r\n", 3) != 0)
		abort();
	for (i = 0; i < o; i++) {
		if (out[i] == '\r' && (i + 1 >= o || out[i + 1] != '\n'))
			abort();
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpc_url u;
	char err[256], *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	replies(text, size);
	encode(text, size);
	if (smtpc_url_parse(text, &u, err, sizeof(err)) == 0 &&
	    (u.port < 1 || u.port > 65535 || u.host[0] == '\0'))
		abort();
	free(text);
	return 0;
}
