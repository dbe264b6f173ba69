/*
 * dns.c -- the answer side of dns.h: MX rdata, ordering, null MX. Kept
 * apart from the resolver (dns_unbound.c) so that unit tests and the fuzz
 * target link without libunbound. What comes from DNS is hostile: names
 * are checked to be host names before anyone logs or connects to them.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "dns.h"

int
dns_name_valid(const char *s)
{
	size_t n, label = 0;

	n = strlen(s);
	if (n == 0 || n > DNS_NAME_MAX)
		return 0;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0;
}

int
dns_mx_rdata(const unsigned char *rd, size_t len, unsigned *pref_r,
    char *name, size_t namelen)
{
	size_t i = 2, o = 0;

	if (rd == NULL || len < 3 || namelen == 0)
		return -1;
	*pref_r = (unsigned)rd[0] << 8 | rd[1];
	for (;;) {
		size_t l, j;

		if (i >= len)
			return -1;
		l = rd[i++];
		if (l == 0)
			break;
		if (l > 63 || l > len - i)	/* 0xc0: compression */
			return -1;
		if (o != 0) {
			if (o + 1 >= namelen)
				return -1;
			name[o++] = '.';
		}
		for (j = 0; j < l; j++) {
			unsigned char c = rd[i + j];

			if (c >= 'A' && c <= 'Z')
				c = (unsigned char)(c - 'A' + 'a');
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			    c == '-' || c == '_'))
				return -1;
			if (o + 1 >= namelen)
				return -1;
			name[o++] = (char)c;
		}
		i += l;
	}
	if (i != len)		/* trailing bytes */
		return -1;
	name[o] = '\0';
	if (o != 0 && !dns_name_valid(name))
		return -1;
	return 0;
}

int
dns_addr_rdata(int family, const unsigned char *rd, size_t len, char *out,
    size_t outlen)
{
	if ((family == AF_INET && len != 4) || (family == AF_INET6 &&
	    len != 16) || (family != AF_INET && family != AF_INET6))
		return -1;
	if (inet_ntop(family, rd, out, (socklen_t)outlen) == NULL)
		return -1;
	return 0;
}

/* Inserts h into hosts[0..*n) sorted by (pref, key), keeping at most max. */
static void
insert_host(struct dns_host *hosts, uint32_t *keys, size_t *n, size_t max,
    const char *name, unsigned pref, uint32_t key)
{
	size_t i, at;

	for (i = 0; i < *n; i++) {
		if (strcmp(hosts[i].name, name) != 0)
			continue;
		if (hosts[i].pref <= pref)
			return;
		/* the same host again with a better preference */
		memmove(&hosts[i], &hosts[i + 1], (*n - i - 1) * sizeof(*hosts));
		memmove(&keys[i], &keys[i + 1], (*n - i - 1) * sizeof(*keys));
		(*n)--;
		break;
	}
	for (at = 0; at < *n; at++)
		if (pref < hosts[at].pref || (pref == hosts[at].pref &&
		    key < keys[at]))
			break;
	if (at >= max)
		return;
	if (*n == max)
		(*n)--;		/* the worst one falls off */
	memmove(&hosts[at + 1], &hosts[at], (*n - at) * sizeof(*hosts));
	memmove(&keys[at + 1], &keys[at], (*n - at) * sizeof(*keys));
	memset(&hosts[at], 0, sizeof(hosts[at]));
	str_lcpy(hosts[at].name, name, sizeof(hosts[at].name));
	hosts[at].pref = pref;
	keys[at] = key;
	(*n)++;
}

void
dns_mx_order(struct dns_host *hosts, size_t n)
{
	uint32_t keys[DNS_MAX_HOSTS];
	struct dns_host tmp;
	size_t i, j;

	if (n > DNS_MAX_HOSTS)
		n = DNS_MAX_HOSTS;
	for (i = 0; i < n; i++)
		keys[i] = arc4random();
	/* insertion sort: n is at most DNS_MAX_HOSTS */
	for (i = 1; i < n; i++) {
		uint32_t k = keys[i];

		tmp = hosts[i];
		for (j = i; j > 0 && (hosts[j - 1].pref > tmp.pref ||
		    (hosts[j - 1].pref == tmp.pref && keys[j - 1] > k)); j--) {
			hosts[j] = hosts[j - 1];
			keys[j] = keys[j - 1];
		}
		hosts[j] = tmp;
		keys[j] = k;
	}
}

int
dns_mx_answer(struct dns_mx *mx, const unsigned char *const *rd,
    const size_t *len, size_t n, size_t max_hosts, char *err, size_t errlen)
{
	uint32_t keys[DNS_MAX_HOSTS];
	char name[DNS_NAME_MAX + 1];
	size_t i, bad = 0;
	unsigned pref;

	memset(mx, 0, sizeof(*mx));
	if (max_hosts == 0 || max_hosts > DNS_MAX_HOSTS)
		max_hosts = DNS_MAX_HOSTS;
	for (i = 0; i < n; i++) {
		if (dns_mx_rdata(rd[i], len[i], &pref, name, sizeof(name)) == -1) {
			bad++;
			continue;
		}
		if (name[0] == '\0') {
			/* RFC 7505: "0 ." says the domain takes no mail */
			str_fmt(err, errlen, "null MX: the domain accepts no mail"
			    " (RFC 7505)");
			mx->nhosts = 0;
			return DNS_PERM;
		}
		insert_host(mx->hosts, keys, &mx->nhosts, max_hosts, name, pref,
		    arc4random());
	}
	if (mx->nhosts == 0) {
		str_fmt(err, errlen, "no usable MX record (%zu malformed)", bad);
		return DNS_PERM;
	}
	return DNS_OK;
}
