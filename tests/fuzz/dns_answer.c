/*
 * Fuzz target: DNS answers as the relay sees them (lib/dns, the part
 * without the resolver). The input is a list of records, each a length
 * byte then that many bytes of rdata: all of them go to dns_mx_answer
 * (MX rdata, null MX, ordering, bounds) and each to dns_addr_rdata as A
 * and AAAA. The hosts that come out must be valid host names, in
 * preference order, at most DNS_MAX_HOSTS.
 */
#include <sys/socket.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define MAXREC	64

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *rec[MAXREC];
	const unsigned char *rd[MAXREC];
	size_t len[MAXREC], n = 0, i, max;
	struct dns_mx *mx;
	char err[256], addr[DNS_ADDR_MAX];

	if (size == 0)
		return 0;
	max = data[0] % (DNS_MAX_HOSTS + 2);	/* 0 and too big included */
	data++;
	size--;
	while (size > 0 && n < MAXREC) {
		size_t l = data[0];

		data++;
		size--;
		if (l > size)
			l = size;
		/* each record its own exact allocation, for ASan */
		if ((rec[n] = malloc(l ? l : 1)) == NULL)
			break;
		memcpy(rec[n], data, l);
		rd[n] = rec[n];
		len[n] = l;
		n++;
		data += l;
		size -= l;
	}
	if ((mx = malloc(sizeof(*mx))) != NULL) {
		if (dns_mx_answer(mx, rd, len, n, max, err, sizeof(err)) ==
		    DNS_OK) {
			if (mx->nhosts == 0 || mx->nhosts > DNS_MAX_HOSTS ||
			    (max != 0 && max <= DNS_MAX_HOSTS && mx->nhosts > max))
				abort();
			for (i = 0; i < mx->nhosts; i++) {
				if (!dns_name_valid(mx->hosts[i].name))
					abort();
				if (i > 0 && mx->hosts[i].pref <
				    mx->hosts[i - 1].pref)
					abort();
			}
		} else if (strlen(err) >= sizeof(err))
			abort();
		free(mx);
	}
	for (i = 0; i < n; i++) {
		(void)dns_addr_rdata(AF_INET, rd[i], len[i], addr, sizeof(addr));
		(void)dns_addr_rdata(AF_INET6, rd[i], len[i], addr, sizeof(addr));
		free(rec[i]);
	}
	return 0;
}
