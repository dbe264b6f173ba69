/*
 * dns_unbound.c -- the resolver side of dns.h, through libunbound. All
 * the queries of a lookup run at once (asynchronously, in libunbound's
 * thread) under one deadline; what has not answered by then is cancelled
 * and counts as a temporary failure. No DNSSEC validation yet (no trust
 * anchor is loaded); DANE would add one.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unbound.h>

#include "buf.h"
#include "dns.h"
#include "io.h"

#define T_A	1
#define T_MX	15
#define T_AAAA	28
#define C_IN	1
#define RCODE_SERVFAIL	2
#define RCODE_NXDOMAIN	3

struct dns {
	struct ub_ctx	*ctx;
	int		 timeout_ms;
	size_t		 max_hosts;
	size_t		 max_addrs;
	int		 family;
};

struct query {
	int		 type;
	int		 id;
	int		 pending;
	int		 err;		/* libunbound error, 0 if none */
	struct ub_result *res;
};

static int
forwarder_addr(const char *fwd, char *out, size_t outlen)
{
	char host[DNS_ADDR_MAX + 8];
	const char *addr = host, *port = NULL;
	unsigned char bin[16];
	char *p, *end;
	long n;

	if (str_lcpy(host, fwd, sizeof(host)) >= sizeof(host))
		return -1;
	if (host[0] == '[') {		/* [IPv6]:port */
		if ((p = strchr(host, ']')) == NULL)
			return -1;
		*p++ = '\0';
		addr = host + 1;
		if (*p == ':')
			port = p + 1;
		else if (*p != '\0')
			return -1;
	} else if ((p = strchr(host, ':')) != NULL && strchr(p + 1, ':') == NULL) {
		*p = '\0';	/* IPv4:port; a bare IPv6 has several colons */
		port = p + 1;
	}
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr,
	    bin) != 1)
		return -1;
	if (port == NULL)
		return str_fmt(out, outlen, "%s", addr);
	errno = 0;
	n = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || errno || n < 1 || n > 65535)
		return -1;
	return str_fmt(out, outlen, "%s@%ld", addr, n);
}

struct dns *
dns_new(const struct dns_opts *o, char *err, size_t errlen)
{
	struct dns *d;
	char fwd[DNS_ADDR_MAX + 16];
	int r;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		str_fmt(err, errlen, "dns: %s", strerror(errno));
		return NULL;
	}
	d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	d->max_hosts = o->max_hosts == 0 || o->max_hosts > DNS_MAX_HOSTS ?
	    DNS_MAX_HOSTS : o->max_hosts;
	d->max_addrs = o->max_addrs == 0 || o->max_addrs > DNS_MAX_ADDRS ?
	    DNS_MAX_ADDRS : o->max_addrs;
	d->family = o->family;
	if ((d->ctx = ub_ctx_create()) == NULL) {
		str_fmt(err, errlen, "libunbound: cannot create a context");
		free(d);
		return NULL;
	}
	if (o->forwarder != NULL) {
		if (forwarder_addr(o->forwarder, fwd, sizeof(fwd)) == -1) {
			str_fmt(err, errlen, "forwarder '%s': not IP or IP:port",
			    o->forwarder);
			goto fail;
		}
		/* a resolver on loopback is the usual case (and the tests') */
		if ((r = ub_ctx_set_option(d->ctx, "do-not-query-localhost:",
		    "no")) != 0 || (r = ub_ctx_set_fwd(d->ctx, fwd)) != 0) {
			str_fmt(err, errlen, "forwarder %s: %s", o->forwarder,
			    ub_strerror(r));
			goto fail;
		}
	} else if (ub_ctx_resolvconf(d->ctx, NULL) != 0) {
		/* no usable resolv.conf: resolve from the root hints */
	}
	(void)ub_ctx_hosts(d->ctx, NULL);
	/* a thread, not a forked process, for asynchronous queries */
	if ((r = ub_ctx_async(d->ctx, 1)) != 0) {
		str_fmt(err, errlen, "libunbound: %s", ub_strerror(r));
		goto fail;
	}
	return d;
fail:
	ub_ctx_delete(d->ctx);
	free(d);
	return NULL;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	ub_ctx_delete(d->ctx);
	free(d);
}

static void
query_done(void *arg, int err, struct ub_result *res)
{
	struct query *q = arg;

	q->pending = 0;
	q->err = err;
	q->res = res;
}

/*
 * Runs the n queries named by names[i] and q[i].type at once, until all
 * answered or the deadline passed (those left get err UB_TIMEOUT-like -1
 * with no result). 0, or -1 when the resolver itself fails (err set).
 */
static int
run_queries(struct dns *d, const char *const *names, struct query *q, size_t n,
    char *err, size_t errlen)
{
	struct pollfd pfd;
	size_t i, left = 0;
	long deadline = io_now_ms() + d->timeout_ms, wait;
	int r;

	for (i = 0; i < n; i++) {
		q[i].pending = 1;
		q[i].err = 0;
		q[i].res = NULL;
		r = ub_resolve_async(d->ctx, names[i], q[i].type, C_IN, &q[i],
		    query_done, &q[i].id);
		if (r != 0) {
			q[i].pending = 0;
			q[i].err = r;
			continue;
		}
		left++;
	}
	pfd.fd = ub_fd(d->ctx);
	pfd.events = POLLIN;
	while (left > 0) {
		if ((wait = deadline - io_now_ms()) <= 0)
			break;
		r = poll(&pfd, 1, (int)wait);
		if (r == -1 && errno != EINTR) {
			str_fmt(err, errlen, "dns: poll: %s", strerror(errno));
			break;
		}
		if (r <= 0)
			continue;
		if ((r = ub_process(d->ctx)) != 0) {
			str_fmt(err, errlen, "libunbound: %s", ub_strerror(r));
			break;
		}
		for (left = 0, i = 0; i < n; i++)
			left += q[i].pending;
	}
	for (i = 0; i < n; i++) {
		if (!q[i].pending)
			continue;
		(void)ub_cancel(d->ctx, q[i].id);
		q[i].pending = 0;
		q[i].err = UB_SERVFAIL;
		q[i].res = NULL;
		if (left > 0 && err[0] == '\0')
			str_fmt(err, errlen, "timed out after %d ms",
			    d->timeout_ms);
	}
	return 0;
}

static void
free_queries(struct query *q, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (q[i].res != NULL) {
			ub_resolve_free(q[i].res);
			q[i].res = NULL;
		}
}

/* DNS_OK with data, DNS_PERM for NXDOMAIN or no data, DNS_TEMP else. */
static int
query_status(const struct query *q, const char *name, const char *what,
    char *err, size_t errlen)
{
	if (q->err != 0 || q->res == NULL) {
		if (q->err != 0 && q->err != UB_SERVFAIL)
			str_fmt(err, errlen, "%s %s: %s", name, what,
			    ub_strerror(q->err));
		else if (err[0] == '\0')
			str_fmt(err, errlen, "%s %s: no answer", name, what);
		return DNS_TEMP;
	}
	if (q->res->nxdomain || q->res->rcode == RCODE_NXDOMAIN) {
		str_fmt(err, errlen, "%s: no such domain", name);
		return DNS_PERM;
	}
	if (q->res->rcode != 0) {
		str_fmt(err, errlen, "%s %s: server failure (rcode %d)", name,
		    what, q->res->rcode);
		return DNS_TEMP;
	}
	if (q->res->bogus) {
		str_fmt(err, errlen, "%s %s: DNSSEC validation failed", name,
		    what);
		return DNS_TEMP;
	}
	if (!q->res->havedata) {
		str_fmt(err, errlen, "%s: no %s record", name, what);
		return DNS_PERM;
	}
	return DNS_OK;
}

static void
add_addrs(struct dns *d, struct dns_host *h, const struct query *q, int family)
{
	size_t i;

	if (q->res == NULL || !q->res->havedata)
		return;
	for (i = 0; q->res->data[i] != NULL && h->naddrs < d->max_addrs; i++) {
		if (q->res->len[i] < 0)
			continue;
		if (dns_addr_rdata(family, (unsigned char *)q->res->data[i],
		    (size_t)q->res->len[i], h->addrs[h->naddrs],
		    sizeof(h->addrs[0])) == 0)
			h->naddrs++;
	}
}

/* An address literal ("192.0.2.1", "[2001:db8::1]", "[IPv6:...]"). */
static int
literal(const char *s, struct dns_host *h)
{
	char tmp[DNS_ADDR_MAX + 8];
	unsigned char bin[16];
	size_t n;

	if (s[0] == '[') {
		n = strlen(s);
		if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
	} else if (str_lcpy(tmp, s, sizeof(tmp)) >= sizeof(tmp))
		return 0;
	s = str_prefix(tmp, "IPv6:") ? tmp + 5 : tmp;
	if (inet_pton(AF_INET, s, bin) != 1 && inet_pton(AF_INET6, s, bin) != 1)
		return 0;
	memset(h, 0, sizeof(*h));
	str_lcpy(h->name, s, sizeof(h->name));
	str_lcpy(h->addrs[0], s, sizeof(h->addrs[0]));
	h->naddrs = 1;
	return 1;
}

/* Normalizes a domain into out (lowercase, no final dot). 0 or -1. */
static int
domain_name(const char *in, char *out, size_t outlen)
{
	size_t n;

	if (str_lcpy(out, in, outlen) >= outlen)
		return -1;
	n = strlen(out);
	if (n > 1 && out[n - 1] == '.')
		out[n - 1] = '\0';
	str_lower(out);
	return dns_name_valid(out) ? 0 : -1;
}

/*
 * Resolves the addresses of hosts[0..n) at once. Returns the number of
 * addresses found; *temp_r tells whether a lookup failed temporarily.
 */
static size_t
resolve_hosts(struct dns *d, struct dns_host *hosts, size_t n, int *temp_r,
    char *err, size_t errlen)
{
	struct query q[DNS_MAX_HOSTS * 2];
	const char *names[DNS_MAX_HOSTS * 2] = { NULL };
	char why[256];
	size_t i, nq = 0, total = 0;
	int st4, st6;

	*temp_r = 0;
	if (n > DNS_MAX_HOSTS)
		n = DNS_MAX_HOSTS;
	for (i = 0; i < n; i++) {
		names[nq] = hosts[i].name;
		q[nq++].type = T_A;
		names[nq] = hosts[i].name;
		q[nq++].type = T_AAAA;
	}
	why[0] = '\0';
	run_queries(d, names, q, nq, why, sizeof(why));
	for (i = 0; i < n; i++) {
		struct query *q4 = &q[2 * i], *q6 = &q[2 * i + 1];
		char e4[256] = "", e6[256] = "";

		hosts[i].naddrs = 0;
		st4 = query_status(q4, hosts[i].name, "A", e4, sizeof(e4));
		st6 = query_status(q6, hosts[i].name, "AAAA", e6, sizeof(e6));
		if (d->family != AF_INET6)
			add_addrs(d, &hosts[i], q4, AF_INET);
		if (d->family != AF_INET)
			add_addrs(d, &hosts[i], q6, AF_INET6);
		total += hosts[i].naddrs;
		if (hosts[i].naddrs == 0) {
			int want4 = d->family != AF_INET6;
			int want6 = d->family != AF_INET;

			hosts[i].temp = (want4 && st4 == DNS_TEMP) ||
			    (want6 && st6 == DNS_TEMP);
			*temp_r |= hosts[i].temp;
			if (err[0] == '\0' || hosts[i].temp)
				str_fmt(err, errlen, "%s", hosts[i].temp ?
				    (want4 && st4 == DNS_TEMP ? e4 : e6) :
				    (want4 ? e4 : e6));
		}
	}
	free_queries(q, nq);
	if (total == 0 && *temp_r && why[0] != '\0')
		str_fmt(err, errlen, "%s", why);
	return total;
}

int
dns_resolve_mx(struct dns *d, const char *domain, struct dns_mx *mx,
    char *err, size_t errlen)
{
	char name[DNS_NAME_MAX + 2], why[256] = "";
	const char *names[1];
	const unsigned char *rd[64];
	size_t len[64], n, total;
	struct query q;
	int st, temp;

	memset(mx, 0, sizeof(*mx));
	if (errlen > 0)
		err[0] = '\0';
	if (literal(domain, &mx->hosts[0]) && domain[0] == '[') {
		mx->implicit = 1;
		mx->nhosts = 1;
		return DNS_OK;
	}
	if (domain_name(domain, name, sizeof(name)) == -1) {
		str_fmt(err, errlen, "'%.100s': not a valid domain", domain);
		return DNS_PERM;
	}
	names[0] = name;
	q.type = T_MX;
	run_queries(d, names, &q, 1, why, sizeof(why));
	st = query_status(&q, name, "MX", err, errlen);
	if (st == DNS_TEMP && why[0] != '\0')
		str_fmt(err, errlen, "%s MX: %s", name, why);
	if (st == DNS_TEMP || (st == DNS_PERM && q.res != NULL &&
	    (q.res->nxdomain || q.res->rcode == RCODE_NXDOMAIN))) {
		free_queries(&q, 1);
		return st;
	}
	if (st == DNS_OK) {
		/* an answer holds at most 64 MX records worth looking at */
		for (n = 0; n < 64 && q.res->data[n] != NULL; n++) {
			rd[n] = (const unsigned char *)q.res->data[n];
			len[n] = q.res->len[n] < 0 ? 0 : (size_t)q.res->len[n];
		}
		st = dns_mx_answer(mx, rd, len, n, d->max_hosts, err, errlen);
		free_queries(&q, 1);
		if (st != DNS_OK) {
			char tmp[256];

			str_fmt(tmp, sizeof(tmp), "%s: %s", name, err);
			str_fmt(err, errlen, "%s", tmp);
			return st;
		}
	} else {
		/* no MX record: the domain is its own mail host (5.1) */
		free_queries(&q, 1);
		mx->implicit = 1;
		mx->nhosts = 1;
		str_lcpy(mx->hosts[0].name, name, sizeof(mx->hosts[0].name));
	}
	if (errlen > 0)
		err[0] = '\0';
	total = resolve_hosts(d, mx->hosts, mx->nhosts, &temp, err, errlen);
	if (total > 0) {
		if (errlen > 0)
			err[0] = '\0';
		return DNS_OK;
	}
	if (temp)
		return DNS_TEMP;
	if (mx->implicit)
		str_fmt(err, errlen, "%s: no MX and no address record", name);
	else
		str_fmt(err, errlen, "%s: none of its %zu MX hosts has an"
		    " address (%s)", name, mx->nhosts, mx->hosts[0].name);
	return DNS_PERM;
}

int
dns_resolve_host(struct dns *d, const char *host, struct dns_host *h,
    char *err, size_t errlen)
{
	char name[DNS_NAME_MAX + 2];
	int temp;

	if (errlen > 0)
		err[0] = '\0';
	if (literal(host, h))
		return DNS_OK;
	memset(h, 0, sizeof(*h));
	if (domain_name(host, name, sizeof(name)) == -1) {
		str_fmt(err, errlen, "'%.100s': not a valid host name", host);
		return DNS_PERM;
	}
	str_lcpy(h->name, name, sizeof(h->name));
	if (resolve_hosts(d, h, 1, &temp, err, errlen) > 0) {
		if (errlen > 0)
			err[0] = '\0';
		return DNS_OK;
	}
	return temp ? DNS_TEMP : DNS_PERM;
}
