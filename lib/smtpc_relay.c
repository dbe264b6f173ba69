/*
 * smtpc_relay.c -- the relay action (see smtpc_deliver in smtpc.h): DNS
 * first, then the hosts in order, the message re-read from its file for
 * each attempt. Kept apart from smtpc.c because it needs lib/dns and so
 * libunbound.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "dns.h"
#include "smtpc.h"

struct offreader {
	int	 fd;
};

static void
all(struct smtpc_result *results, const char *pending, size_t n, int status,
    const char *text)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (pending == NULL || pending[i]) {
			results[i].status = status;
			results[i].code = 0;
			str_fmt(results[i].text, sizeof(results[i].text), "%s",
			    text);
		}
}

/*
 * One attempt on one address with the recipients still pending. Returns
 * 1 when the transaction ran (their outcomes are final), 0 when the next
 * address should be tried (err says why; *perm_r when the host refused
 * us permanently).
 */
static int
attempt(const struct smtpc_opts *o, const char *host, const char *addr,
    int port, const char *sender, const char *const *rcpts, char *pending,
    size_t n, int fd, off_t offset, long long size, int eightbit,
    struct smtpc_result *results, int *perm_r, char *err, size_t errlen)
{
	struct smtpc *c;
	struct smtpc_result *res;
	const char **list;
	size_t i, k, m = 0;
	int rv;

	*perm_r = 0;
	for (i = 0; i < n; i++)
		m += pending[i] != 0;
	if (m == 0)
		return 1;
	rv = smtpc_connect(&c, o, host, addr, port, err, errlen);
	if (rv != 0) {
		*perm_r = rv == SMTPC_PERM;
		return 0;
	}
	if (lseek(fd, offset, SEEK_SET) == -1) {
		str_fmt(err, errlen, "message file: %s", strerror(errno));
		smtpc_quit(c);
		return 0;
	}
	list = calloc(m, sizeof(*list));
	res = calloc(m, sizeof(*res));
	if (list == NULL || res == NULL) {
		str_fmt(err, errlen, "relay: %s", strerror(errno));
		free(list);
		free(res);
		smtpc_quit(c);
		return 0;
	}
	for (i = 0, k = 0; i < n; i++)
		if (pending[i])
			list[k++] = rcpts[i];
	rv = smtpc_send_fd(c, sender, list, m, fd, size, eightbit, res, err,
	    errlen);
	for (i = 0, k = 0; i < n; i++) {
		if (!pending[i])
			continue;
		/*
		 * When the connection broke, the recipients without a
		 * reply go to the next host; a reply is final.
		 */
		if (rv == 0 || res[k].code != 0) {
			results[i] = res[k];
			pending[i] = 0;
		}
		k++;
	}
	free(list);
	free(res);
	if (rv == 0)
		smtpc_quit(c);
	else
		smtpc_close(c);
	return rv == 0;
}

/*
 * RFC 5321 5.1: when we are one of the MX hosts, only the better ones
 * may be tried; drops ourselves and every host at or above our
 * preference. 1 when none is left (the mail would loop).
 */
static int
self_mx(struct dns_mx *mx, const char *self)
{
	size_t i;

	for (i = 0; i < mx->nhosts; i++)
		if (strcasecmp(mx->hosts[i].name, self) == 0)
			break;
	if (i == mx->nhosts)
		return 0;
	while (i > 0 && mx->hosts[i - 1].pref >= mx->hosts[i].pref)
		i--;	/* shuffled ties: drop those equal to us too */
	mx->nhosts = i;
	return i == 0;
}

size_t
smtpc_deliver(struct dns *dns, const struct smtpc_opts *opts,
    const struct smtpc_route *route, const char *sender,
    const char *const *rcpts, size_t n, int fd, off_t offset,
    long long size, int eightbit, struct smtpc_result *results)
{
	struct smtpc_opts o = *opts;
	struct dns_mx *mx;
	char err[SMTPC_TEXT_MAX], last[SMTPC_TEXT_MAX], *pending;
	size_t i, j, done = 0, tries = 0, perms = 0;
	int port, perm, st;

	if (n == 0)
		return 0;
	if ((mx = calloc(1, sizeof(*mx))) == NULL ||
	    (pending = calloc(n, 1)) == NULL) {
		free(mx);
		all(results, NULL, n, SMTPC_TEMP, "relay: out of memory");
		return 0;
	}
	memset(pending, 1, n);
	err[0] = last[0] = '\0';
	if (route->smarthost != NULL) {
		o.tls = route->smarthost->tls;
		port = route->smarthost->port;
		mx->nhosts = 1;
		st = dns_resolve_host(dns, route->smarthost->host, &mx->hosts[0],
		    err, sizeof(err));
	} else {
		port = route->port > 0 ? route->port : 25;
		st = dns_resolve_mx(dns, route->domain, mx, err, sizeof(err));
	}
	if (st != DNS_OK) {
		all(results, NULL, n, st == DNS_PERM ? SMTPC_PERM : SMTPC_TEMP,
		    err);
		goto out;
	}
	if (route->smarthost == NULL && !mx->implicit && self_mx(mx, o.helo)) {
		str_fmt(err, sizeof(err), "mail for %s loops back to myself (%s"
		    " is its best MX)", route->domain, o.helo);
		all(results, NULL, n, SMTPC_PERM, err);
		goto out;
	}
	for (i = 0; i < mx->nhosts; i++) {
		const struct dns_host *h = &mx->hosts[i];

		for (j = 0; j < h->naddrs; j++) {
			tries++;
			if (attempt(&o, h->name, h->addrs[j], port, sender,
			    rcpts, pending, n, fd, offset, size, eightbit,
			    results, &perm, err, sizeof(err)))
				goto out;
			perms += perm;
			/*
			 * What a server said (TLS, AUTH, a greeting) tells
			 * more than a later refused connection: keep it.
			 */
			if (last[0] == '\0' || strstr(err, ": connect to ") ==
			    NULL || strstr(last, ": connect to ") != NULL)
				str_lcpy(last, err, sizeof(last));
			/* a host that refused us permanently: next host */
			if (perm)
				break;
		}
		if (h->naddrs == 0 && h->temp) {
			tries++;
			str_fmt(last, sizeof(last), "%s: address lookup failed"
			    " temporarily", h->name);
		}
	}
	/* nobody took it: every host refusing us for good is a bounce */
	all(results, pending, n, tries > 0 && perms == tries ? SMTPC_PERM :
	    SMTPC_TEMP, last[0] != '\0' ? last : "no host could be reached");
out:
	for (i = 0; i < n; i++)
		done += results[i].status == SMTPC_OK;
	free(pending);
	free(mx);
	return done;
}
