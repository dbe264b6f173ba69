/*
 * Fuzz target: what fetch reads from a POP3 server (cmd/fetch/resp.c):
 * status lines, UIDL and LIST lines, and the UIDL sanity rules (1 to 70
 * printable characters).
 */
/* fuzz-sources: cmd/fetch/resp.c */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, *line, *save = NULL;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		unsigned long num;
		unsigned long long oct;
		const char *u;
		size_t ul, i;

		line[strcspn(line, "\r")] = '\0';
		(void)pop3_status(line);
		if (pop3_uidl_line(line, &num, &u, &ul) == 0) {
			if (ul == 0 || ul > 70 || num == 0)
				abort();
			for (i = 0; i < ul; i++)
				if (u[i] < 0x21 || u[i] > 0x7e)
					abort();
		}
		(void)pop3_list_line(line, &num, &oct);
	}
	free(text);
	return 0;
}
