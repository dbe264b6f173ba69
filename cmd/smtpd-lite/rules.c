/*
 * rules -- which rule takes a recipient, and who it is then: rules are
 * tried in file order and the first whose conditions all hold decides.
 * A recipient is refused here, at RCPT time, when no rule takes it or
 * when the rule's tables do not know the user: nothing is accepted and
 * then bounced for that reason, and nobody gets an open relay.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "smtp.h"
#include "table.h"
#include "smtpd.h"

#define MAX_DEPTH	8
#define VAL_MAX		4096

/*
 * Every address, user and domain lookup compares without case: RFC 5321
 * 2.4 makes domains case-insensitive; local parts formally are not, but
 * OpenSMTPD, Postfix and Dovecot look them up folded, and an admin
 * expects Alice@EXAMPLE.ORG to be alice@example.org. An exact spelling
 * wins over another one. What is delivered locally is then named as the
 * table spells it, or folded (see resolve).
 */
static int
lookup_ci(struct table *t, const char *key, char *val, size_t vallen)
{
	return table_lookup_nocase(t, key, NULL, 0, val, vallen);
}

/*
 * The local part, or else the whole address, in t: 1 with the user as
 * the table spells it in canon, 0, or -1.
 */
static int
lookup_user(struct table *t, const char *user, const char *addr, char *canon,
    size_t len)
{
	char	 key[SMTP_PATH_MAX + 2], *at;
	int	 found;

	if ((found = table_lookup_nocase(t, user, key, sizeof(key), NULL,
	    0)) == 0 && (found = table_lookup_nocase(t, addr, key, sizeof(key),
	    NULL, 0)) == 1 && (at = strrchr(key, '@')) != NULL)
		*at = '\0';
	if (found == 1 && str_lcpy(canon, key, len) >= len)
		return -1;
	return found;
}

/* user@domain, or user alone without a domain. 0, or -1 too long. */
static int
join_addr(char *out, size_t len, const char *user, const char *domain)
{
	return str_fmt(out, len, "%s%s%s", user, *domain ? "@" : "", domain);
}

struct netmatch {
	const struct sockaddr_storage	*ss;
	int				 found;
};

static int
net_one(const char *key, const char *val, void *arg)
{
	struct netmatch		*m = arg;
	char			 net[128], *slash;
	unsigned char		 want[16], have[16];
	int			 bits, len, i, fam;
	const struct sockaddr_storage *ss = m->ss;

	(void)val;
	if (str_lcpy(net, key, sizeof(net)) >= sizeof(net))
		return 0;
	slash = strchr(net, '/');
	if (slash)
		*slash++ = '\0';
	if (inet_pton(AF_INET, net, want) == 1) {
		fam = AF_INET;
		len = 4;
	} else if (inet_pton(AF_INET6, net, want) == 1) {
		fam = AF_INET6;
		len = 16;
	} else
		return 0;
	bits = slash ? atoi(slash) : len * 8;
	if (bits < 0 || bits > len * 8)
		return 0;
	if (ss->ss_family == AF_INET && fam == AF_INET)
		memcpy(have, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	else if (ss->ss_family == AF_INET6 && fam == AF_INET6)
		memcpy(have, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
	else if (ss->ss_family == AF_INET6 && fam == AF_INET &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)ss)->sin6_addr))
		memcpy(have, (const unsigned char *)&((const struct sockaddr_in6 *)
		    ss)->sin6_addr + 12, 4);
	else
		return 0;
	for (i = 0; i < bits / 8; i++)
		if (want[i] != have[i])
			return 0;
	if (bits % 8) {
		unsigned char mask = 0xff << (8 - bits % 8);
		if ((want[i] & mask) != (have[i] & mask))
			return 0;
	}
	m->found = 1;
	return 1;
}

static int
from_ok(const struct rule *r, const struct origin *o)
{
	struct netmatch	 m;

	switch (r->from) {
	case FROM_ANY:
		return 1;
	case FROM_LOCAL:
		return o->local;
	case FROM_AUTH:
		return o->authuser != NULL && o->authuser[0] != '\0';
	case FROM_TABLE:
		if (!o->has_addr)
			return 0;
		m.ss = &o->addr;
		m.found = 0;
		table_foreach(r->from_table, net_one, &m);
		return m.found;
	}
	return 0;
}

/* An address table holds full addresses, "@domain" or bare domains. */
static int
addr_in(struct table *t, const char *addr, const char *domain)
{
	char	 key[SMTP_PATH_MAX + 2];

	if (*addr == '\0')
		return lookup_ci(t, "<>", NULL, 0) == 1;
	if (lookup_ci(t, addr, NULL, 0) == 1)
		return 1;
	if (str_fmt(key, sizeof(key), "@%s", domain) == 0 &&
	    lookup_ci(t, key, NULL, 0) == 1)
		return 1;
	return *domain != '\0' && lookup_ci(t, domain, NULL, 0) == 1;
}

static int
rule_matches(const struct rule *r, const struct origin *o, const char *sender,
    const char *addr, const char *domain)
{
	char	 su[SMTP_PATH_MAX + 1], sd[SMTP_DOMAIN_MAX + 1];

	if (r->tag && (o->tag == NULL || strcmp(r->tag, o->tag) != 0))
		return 0;
	if (!from_ok(r, o))
		return 0;
	if (r->sender) {
		if (smtp_addr_split(sender, su, sizeof(su), sd, sizeof(sd)) == -1 ||
		    !addr_in(r->sender, sender, sd))
			return 0;
	}
	if (r->rcpt_domain && (*domain == '\0' ||
	    lookup_ci(r->rcpt_domain, domain, NULL, 0) != 1))
		return 0;
	if (r->rcpt && !addr_in(r->rcpt, addr, domain))
		return 0;
	return 1;
}

static int
add_dest(const struct rule *r, const char *orig, const char *rcpt,
    const char *user, struct dest **dests, size_t *ndests, size_t max,
    struct buf *out)
{
	struct dest	*d;
	size_t		 i;

	/* the same user through two aliases gets one copy */
	for (i = 0; i < *ndests; i++)
		if (strcmp((*dests)[i].rcpt, rcpt) == 0 &&
		    strcmp((*dests)[i].user, user) == 0 &&
		    strcmp((*dests)[i].rule, r->name) == 0)
			return 1;
	if (*ndests >= max) {
		smtp_reply(out, 452, "4.5.3", "too many recipients");
		return -1;
	}
	d = reallocarray(*dests, *ndests + 1, sizeof(**dests));
	if (d == NULL) {
		smtp_reply(out, 451, "4.3.0", "out of memory");
		return -1;
	}
	*dests = d;
	d = &d[(*ndests)++];
	memset(d, 0, sizeof(*d));
	str_lcpy(d->orig, orig, sizeof(d->orig));
	str_lcpy(d->rcpt, rcpt, sizeof(d->rcpt));
	str_lcpy(d->user, user, sizeof(d->user));
	str_lcpy(d->rule, r->name, sizeof(d->rule));
	return 1;
}

/* A local user name that is safe in a path or as one argument. */
static int
user_ok(const char *u)
{
	return *u != '\0' && *u != '-' && *u != '.' && strchr(u, '/') == NULL &&
	    strlen(u) < 256;
}

static int resolve(const struct config *, const struct origin *, const char *,
    const char *, const char *, int, struct dest **, size_t *, size_t,
    struct buf *);

/* Expands a table value "a, b@c, d" into destinations. */
static int
expand_list(const struct config *cf, const struct origin *o, const char *sender,
    const char *orig, const struct rule *r, const char *addr,
    const char *domain, const char *val, int depth, struct dest **dests,
    size_t *ndests, size_t max, struct buf *out)
{
	char	 list[VAL_MAX], *p, *item, tmp[SMTP_PATH_MAX + 1];
	int	 rv, any = 0;

	str_lcpy(list, val, sizeof(list));
	for (p = list; (item = strsep(&p, ",")) != NULL; ) {
		item = str_trim(item);
		if (*item == '\0')
			continue;
		any = 1;
		if (strchr(item, '@') != NULL) {
			if (!smtp_addr_ok(item, SMTP_PATH_UTF8)) {
				smtp_reply(out, 451, "4.3.5",
				    "bad address in a table for <%s>", addr);
				return -1;
			}
			rv = resolve(cf, o, sender, orig, item, depth + 1, dests,
			    ndests, max, out);
		} else {
			if (!user_ok(item)) {
				smtp_reply(out, 451, "4.3.5",
				    "bad user in a table for <%s>", addr);
				return -1;
			}
			if (r->virtual == NULL) {
				/* an alias to a local user of this domain */
				if (str_fmt(tmp, sizeof(tmp), "%s%s%s", item,
				    *domain ? "@" : "", domain) == -1)
					return -1;
				rv = add_dest(r, orig, tmp, item, dests, ndests,
				    max, out);
			} else
				rv = add_dest(r, orig, addr, item, dests, ndests,
				    max, out);
		}
		if (rv != 1)
			return rv;
	}
	if (!any) {
		smtp_reply(out, 550, "5.1.1", "<%s>: no such user", addr);
		return 0;
	}
	return 1;
}

static int
resolve(const struct config *cf, const struct origin *o, const char *sender,
    const char *orig, const char *addr, int depth, struct dest **dests,
    size_t *ndests, size_t max, struct buf *out)
{
	char			 user[SMTP_PATH_MAX + 1], domain[SMTP_DOMAIN_MAX + 1],
				 key[SMTP_PATH_MAX + 2], val[VAL_MAX],
				 luser[SMTP_PATH_MAX + 1],
				 ldomain[SMTP_DOMAIN_MAX + 1],
				 ubkey[SMTP_PATH_MAX + 2],
				 cuser[SMTP_PATH_MAX + 2], canon[SMTP_PATH_MAX + 1];
	const struct rule	*r;
	size_t			 i;
	int			 found, local;

	if (depth > MAX_DEPTH) {
		smtp_reply(out, 550, "5.4.6", "alias loop for <%s>", orig);
		return 0;
	}
	if (smtp_addr_split(addr, user, sizeof(user), domain, sizeof(domain)) ==
	    -1) {
		smtp_reply(out, 553, "5.1.3", "address too long");
		return 0;
	}
	if (strcasecmp(addr, "postmaster") == 0)
		str_lcpy(user, "postmaster", sizeof(user));
	str_lcpy(luser, user, sizeof(luser));
	str_lower(luser);
	str_lcpy(ldomain, domain, sizeof(ldomain));
	str_lower(ldomain);
	for (i = 0; i < cf->nrules; i++) {
		r = &cf->rules[i];
		if (!rule_matches(r, o, sender, addr, domain))
			continue;
		if (r->action == ACT_REJECT) {
			smtp_reply(out, 550, "5.7.1", "<%s>: refused by policy",
			    addr);
			return 0;
		}
		/*
		 * A local delivery gets the address as the tables spell it,
		 * else folded, so %{rcpt.user} and %{rcpt.domain} name one
		 * Maildir whatever the client's case (%{orig} keeps it). A
		 * relay keeps the local part as given: it is the remote
		 * host's to interpret.
		 */
		local = r->action != ACT_RELAY;
		str_lcpy(cuser, local ? luser : user, sizeof(cuser));
		if (r->virtual) {
			found = table_lookup_nocase(r->virtual, addr, key,
			    sizeof(key), val, sizeof(val));
			if (found == 1 && strrchr(key, '@') != NULL) {
				*strrchr(key, '@') = '\0';
				str_lcpy(cuser, key, sizeof(cuser));
			}
			if (found == 0 && (found = table_lookup_nocase(r->virtual,
			    user, key, sizeof(key), val, sizeof(val))) == 1)
				str_lcpy(cuser, key, sizeof(cuser));
			if (found == 0 && str_fmt(key, sizeof(key), "@%s",
			    domain) == 0)
				found = lookup_ci(r->virtual, key, val,
				    sizeof(val));
			if (found == 0)
				found = table_lookup(r->virtual, "@", val,
				    sizeof(val));
			if (found == -1)
				goto temp;
			if (found == 0) {
				smtp_reply(out, 550, "5.1.1",
				    "<%s>: no such user", addr);
				return 0;
			}
			if (local && join_addr(canon, sizeof(canon), cuser,
			    ldomain) == -1)
				goto toolong;
			return expand_list(cf, o, sender, orig, r,
			    local ? canon : addr, local ? ldomain : domain,
			    val, depth, dests, ndests, max, out);
		}
		if (r->alias) {
			found = lookup_ci(r->alias, user, val, sizeof(val));
			if (found == -1)
				goto temp;
			if (found == 1 && depth < MAX_DEPTH)
				return expand_list(cf, o, sender, orig, r, addr,
				    local ? ldomain : domain, val, depth, dests,
				    ndests, max, out);
		}
		if (!user_ok(user)) {
			smtp_reply(out, 550, "5.1.3", "<%s>: bad user name", addr);
			return 0;
		}
		if ((r->users != NULL && (found = lookup_user(r->users, user,
		    addr, key, sizeof(key))) != 1) ||
		    (r->userbase != NULL && (found = lookup_user(r->userbase,
		    user, addr, ubkey, sizeof(ubkey))) != 1)) {
			if (found == -1)
				goto temp;
			smtp_reply(out, 550, "5.1.1", "<%s>: no such user", addr);
			return 0;
		}
		if (!local)
			return add_dest(r, orig, addr, user, dests, ndests, max,
			    out);
		/* the users table names the user, else the userbase */
		if (r->users != NULL)
			str_lcpy(cuser, key, sizeof(cuser));
		else if (r->userbase != NULL)
			str_lcpy(cuser, ubkey, sizeof(cuser));
		if (join_addr(canon, sizeof(canon), cuser, ldomain) == -1)
			goto toolong;
		return add_dest(r, orig, canon, cuser, dests, ndests, max, out);
	}
	if (o->authuser && o->authuser[0])
		smtp_reply(out, 550, "5.7.1", "<%s>: no rule accepts this "
		    "recipient", addr);
	else
		smtp_reply(out, 550, "5.7.1", "<%s>: relaying denied", addr);
	return 0;
temp:
	smtp_reply(out, 451, "4.3.0", "table lookup failed, try again");
	return -1;
toolong:
	smtp_reply(out, 553, "5.1.3", "address too long");
	return 0;
}

int
rules_resolve(const struct config *cf, const struct origin *o,
    const char *sender, const char *addr, struct dest **dests, size_t *ndests,
    size_t max, struct buf *out)
{
	size_t	 n0 = *ndests;
	int	 r;

	r = resolve(cf, o, sender, addr, addr, 0, dests, ndests, max, out);
	if (r != 1)
		*ndests = n0;	/* all of an address, or nothing */
	return r;
}

const struct rule *
rules_find(const struct config *cf, const char *name)
{
	size_t	 i;

	for (i = 0; i < cf->nrules; i++)
		if (strcmp(cf->rules[i].name, name) == 0)
			return &cf->rules[i];
	return NULL;
}

int
rules_expand(const char *tmpl, const struct dest *d, const char *sender,
    char *out, size_t outlen)
{
	char		 u[SMTP_PATH_MAX + 1], dom[SMTP_DOMAIN_MAX + 1],
			 su[SMTP_PATH_MAX + 1], sd[SMTP_DOMAIN_MAX + 1],
			 name[64], val[SMTP_PATH_MAX + 1];
	const char	*p = tmpl, *e, *v;
	size_t		 o = 0, n;
	int		 lower;

	if (smtp_addr_split(d->rcpt, u, sizeof(u), dom, sizeof(dom)) == -1 ||
	    smtp_addr_split(sender, su, sizeof(su), sd, sizeof(sd)) == -1)
		return -1;
	while (*p) {
		if (p[0] != '%' || p[1] != '{') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = *p++;
			continue;
		}
		if ((e = strchr(p, '}')) == NULL || (size_t)(e - p - 2) >=
		    sizeof(name))
			return -1;
		n = e - p - 2;
		memcpy(name, p + 2, n);
		name[n] = '\0';
		lower = 0;
		if (n > 10 && strcmp(name + n - 10, ":lowercase") == 0) {
			name[n - 10] = '\0';
			lower = 1;
		}
		if (strcmp(name, "rcpt") == 0)
			v = d->rcpt;
		else if (strcmp(name, "rcpt.user") == 0)
			v = u;
		else if (strcmp(name, "rcpt.domain") == 0)
			v = dom;
		else if (strcmp(name, "sender") == 0)
			v = sender;
		else if (strcmp(name, "sender.user") == 0)
			v = su;
		else if (strcmp(name, "sender.domain") == 0)
			v = sd;
		else if (strcmp(name, "user") == 0 ||
		    strcmp(name, "user.username") == 0)
			v = d->user;
		else if (strcmp(name, "orig") == 0)
			v = d->orig;
		else
			return -1;
		str_lcpy(val, v, sizeof(val));
		if (lower)
			str_lower(val);
		if (str_lcpy(out + o, val, outlen - o) >= outlen - o)
			return -1;
		o += strlen(val);
		p = e + 1;
	}
	out[o] = '\0';
	return 0;
}
