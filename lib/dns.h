/*
 * dns -- where to deliver mail for a domain: its MX hosts in preference
 * order (RFC 5321 section 5.1), each with its addresses, through
 * libunbound. Everything is bounded: at most DNS_MAX_HOSTS hosts and
 * DNS_MAX_ADDRS addresses per host, and one overall timeout for all the
 * queries of a lookup (they run concurrently).
 *
 * Two files: dns.c handles answers (MX rdata, ordering, null MX) and needs
 * no library, so tests and fuzzers can use it alone; dns_unbound.c holds
 * the resolver. A program that calls dns_new() links libunbound (its
 * cmd/NAME/libs names `libunbound`).
 *
 * Lookups return DNS_OK (0), DNS_TEMP (-1: SERVFAIL, timeout, resolver
 * trouble: try again later) or DNS_PERM (-2: NXDOMAIN, null MX, no
 * address at all: bounce), with the reason in err.
 */
#ifndef DNS_H
#define DNS_H

#include <stddef.h>

#define DNS_OK		0
#define DNS_TEMP	(-1)
#define DNS_PERM	(-2)

#define DNS_NAME_MAX	253	/* a host name as text, without the final dot */
#define DNS_ADDR_MAX	46	/* INET6_ADDRSTRLEN */
#define DNS_MAX_HOSTS	10
#define DNS_MAX_ADDRS	8

struct dns_host {
	char	 name[DNS_NAME_MAX + 1];	/* lowercase, no final dot */
	unsigned pref;				/* MX preference; 0 if implicit */
	int	 temp;		/* its address lookup failed temporarily */
	size_t	 naddrs;
	char	 addrs[DNS_MAX_ADDRS][DNS_ADDR_MAX];	/* numeric, v4 first */
};

struct dns_mx {
	int		 implicit;	/* no MX record: the domain itself */
	size_t		 nhosts;
	struct dns_host	 hosts[DNS_MAX_HOSTS];	/* preference order */
};

struct dns_opts {
	/*
	 * "IP" or "IP:port" or "[IPv6]:port" of a recursive resolver to
	 * forward every query to; NULL reads /etc/resolv.conf (and resolves
	 * from the root when it names nothing). /etc/hosts is always read.
	 */
	const char	*forwarder;
	int		 timeout_ms;	/* whole lookup; 0 means 10000 */
	size_t		 max_hosts;	/* 0 or > DNS_MAX_HOSTS: DNS_MAX_HOSTS */
	size_t		 max_addrs;	/* per host; 0 or > DNS_MAX_ADDRS: DNS_MAX_ADDRS */
	int		 family;	/* AF_UNSPEC (0), AF_INET or AF_INET6 */
};

struct dns;

/*
 * A resolver. NULL with err ("forwarder 'x': not IP or IP:port",
 * "libunbound: ..."). It runs a thread for its queries: make it after
 * fork(), in the process that uses it, and free it there.
 */
struct dns *dns_new(const struct dns_opts *, char *err, size_t errlen);
void	dns_free(struct dns *);

/*
 * Fills mx for a mail domain: its MX hosts sorted by preference (equal
 * preferences shuffled), each with its A and AAAA addresses; without MX
 * records, the domain itself as the implicit MX; "[192.0.2.1]" (an
 * address literal) as itself. Hosts whose addresses could not be found
 * stay in the list with naddrs 0 (temp set when that was temporary).
 * DNS_OK when at least one address was found; DNS_PERM for NXDOMAIN, a
 * null MX (RFC 7505), a malformed domain, or no address anywhere;
 * DNS_TEMP otherwise.
 */
int	dns_resolve_mx(struct dns *, const char *domain, struct dns_mx *mx,
	    char *err, size_t errlen);
/*
 * The addresses of one host (a smarthost): A and AAAA, or an IP literal
 * as itself. DNS_OK, DNS_TEMP or DNS_PERM as above.
 */
int	dns_resolve_host(struct dns *, const char *host, struct dns_host *h,
	    char *err, size_t errlen);

/* --- answer handling (dns.c; no resolver needed) --- */

/*
 * Parses MX rdata (preference, uncompressed wire-format name) into pref_r
 * and name (lowercase text, "" for the root). 0, or -1 when malformed
 * (short, a compression pointer, a label of characters a host name
 * cannot hold, a name too long for namelen).
 */
int	dns_mx_rdata(const unsigned char *rd, size_t len, unsigned *pref_r,
	    char *name, size_t namelen);
/*
 * Turns the MX rdata of an answer into mx->hosts (names and preferences,
 * no addresses yet): malformed records are skipped, the rest sorted by
 * preference with ties shuffled, duplicates dropped, at most max_hosts
 * kept. DNS_OK with at least one host, DNS_PERM for a null MX ("0 ."),
 * or for records that are all unusable.
 */
int	dns_mx_answer(struct dns_mx *mx, const unsigned char *const *rd,
	    const size_t *len, size_t n, size_t max_hosts, char *err, size_t errlen);
/*
 * An A (4 bytes) or AAAA (16 bytes) rdata as text into out. 0, or -1 if
 * the length does not match family.
 */
int	dns_addr_rdata(int family, const unsigned char *rd, size_t len,
	    char *out, size_t outlen);
/* 1 when s is a syntactically valid host name (LDH labels, <= 253). */
int	dns_name_valid(const char *s);
/*
 * Sorts hosts by preference, shuffling equal ones (arc4random), in place.
 */
void	dns_mx_order(struct dns_host *hosts, size_t n);

#endif
