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

static size_t
npending(const char *pending, size_t n)
{
	size_t i, m = 0;

	for (i = 0; i < n; i++)
		m += pending[i] != 0;
	return m;
}

/*
 * Sends one message to its pending recipients on c. Returns 1 when the
 * transaction ran (their outcomes are final), 0 when the connection
 * broke or the message could not be read: those without a reply stay
 * pending for the next host (err says why).
 */
static int
send_msg(struct smtpc *c, const struct smtpc_msg *m, char *pending,
    char *err, size_t errlen)
{
	struct smtpc_result *res;
	const char **list;
	size_t i, k, np = npending(pending, m->n);
	int rv;

	if (np == 0)
		return 1;
	if (lseek(m->fd, m->offset, SEEK_SET) == -1) {
		str_fmt(err, errlen, "message file: %s", strerror(errno));
		return 0;
	}
	list = calloc(np, sizeof(*list));
	res = calloc(np, sizeof(*res));
	if (list == NULL || res == NULL) {
		str_fmt(err, errlen, "relay: %s", strerror(errno));
		free(list);
		free(res);
		return 0;
	}
	for (i = 0, k = 0; i < m->n; i++)
		if (pending[i])
			list[k++] = m->rcpts[i];
	rv = smtpc_send_fd(c, m->sender, list, np, m->fd, m->size, m->eightbit,
	    res, err, errlen);
	for (i = 0, k = 0; i < m->n; i++) {
		if (!pending[i])
			continue;
		/*
		 * When the connection broke, the recipients without a
		 * reply go to the next host; a reply is final.
		 */
		if (rv == 0 || res[k].code != 0) {
			m->results[i] = res[k];
			pending[i] = 0;
		}
		k++;
	}
	free(list);
	free(res);
	return rv == 0;
}

/*
 * One connection to one address, carrying every message with pending
 * recipients in turn. Returns 1 when all of them ran, 0 when the next
 * address should be tried (err says why; *perm_r when the host refused
 * us permanently).
 */
static int
attempt(const struct smtpc_opts *o, const char *host, const char *addr,
    int port, const struct smtpc_msg *msgs, char **pending, size_t nmsgs,
    int *perm_r, char *err, size_t errlen)
{
	struct smtpc *c;
	size_t j, left = 0;
	int rv;

	*perm_r = 0;
	for (j = 0; j < nmsgs; j++)
		left += npending(pending[j], msgs[j].n);
	if (left == 0)
		return 1;
	rv = smtpc_connect(&c, o, host, addr, port, err, errlen);
	if (rv != 0) {
		*perm_r = rv == SMTPC_PERM;
		return 0;
	}
	for (j = 0; j < nmsgs; j++) {
		if (send_msg(c, &msgs[j], pending[j], err, errlen))
			continue;
		if (smtpc_usable(c))
			smtpc_quit(c);
		else
			smtpc_close(c);
		return 0;
	}
	smtpc_quit(c);
	return 1;
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
smtpc_deliver_batch(struct dns *dns, const struct smtpc_opts *opts,
    const struct smtpc_route *route, const struct smtpc_msg *msgs,
    size_t nmsgs)
{
	struct smtpc_opts o = *opts;
	struct dns_mx *mx;
	char err[SMTPC_TEXT_MAX], last[SMTPC_TEXT_MAX], **pending;
	size_t i, j, done = 0, tries = 0, perms = 0;
	int port, perm, st;

	if (nmsgs == 0)
		return 0;
	mx = calloc(1, sizeof(*mx));
	pending = calloc(nmsgs, sizeof(*pending));
	for (j = 0; pending != NULL && j < nmsgs; j++)
		if ((pending[j] = malloc(msgs[j].n ? msgs[j].n : 1)) == NULL)
			break;
	if (mx == NULL || pending == NULL || j < nmsgs) {
		for (j = 0; j < nmsgs; j++)
			all(msgs[j].results, NULL, msgs[j].n, SMTPC_TEMP,
			    "relay: out of memory");
		goto out;
	}
	for (j = 0; j < nmsgs; j++)
		memset(pending[j], 1, msgs[j].n);
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
	if (st == DNS_OK && route->smarthost == NULL && !mx->implicit &&
	    self_mx(mx, o.helo)) {
		str_fmt(err, sizeof(err), "mail for %s loops back to myself (%s"
		    " is its best MX)", route->domain, o.helo);
		st = DNS_PERM;
	}
	if (st != DNS_OK) {
		for (j = 0; j < nmsgs; j++)
			all(msgs[j].results, NULL, msgs[j].n, st == DNS_PERM ?
			    SMTPC_PERM : SMTPC_TEMP, err);
		goto out;
	}
	for (i = 0; i < mx->nhosts; i++) {
		const struct dns_host *h = &mx->hosts[i];
		size_t a;

		for (a = 0; a < h->naddrs; a++) {
			tries++;
			if (attempt(&o, h->name, h->addrs[a], port, msgs, pending,
			    nmsgs, &perm, err, sizeof(err)))
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
	/* nobody took them: every host refusing us for good is a bounce */
	for (j = 0; j < nmsgs; j++)
		all(msgs[j].results, pending[j], msgs[j].n, tries > 0 &&
		    perms == tries ? SMTPC_PERM : SMTPC_TEMP, last[0] != '\0' ?
		    last : "no host could be reached");
out:
	for (j = 0; j < nmsgs; j++) {
		for (i = 0; i < msgs[j].n; i++)
			done += msgs[j].results[i].status == SMTPC_OK;
		if (pending != NULL)
			free(pending[j]);
	}
	free(pending);
	free(mx);
	return done;
}

size_t
smtpc_deliver(struct dns *dns, const struct smtpc_opts *opts,
    const struct smtpc_route *route, const char *sender,
    const char *const *rcpts, size_t n, int fd, off_t offset,
    long long size, int eightbit, struct smtpc_result *results)
{
	struct smtpc_msg m;

	m.sender = sender;
	m.rcpts = rcpts;
	m.n = n;
	m.fd = fd;
	m.offset = offset;
	m.size = size;
	m.eightbit = eightbit;
	m.results = results;
	return smtpc_deliver_batch(dns, opts, route, &m, 1);
}
