/*
 * config -- smtpd-lite.conf(5): the global section, [listener NAME] and
 * [rule NAME] sections, read through lib/conf into struct config. Every
 * error names file:line. Tables are opened here, as root, before any
 * privilege is dropped.
 */
#include <sys/un.h>

#include <errno.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "priv.h"
#include "smtpc.h"
#include "table.h"
#include "tls.h"
#include "smtpd.h"

#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef BINDIR
#define BINDIR "/usr/local/bin"
#endif
#ifndef PROGRAM_PREFIX
#define PROGRAM_PREFIX ""
#endif

static const char *const global_keys[] = { "hostname", "user", "queue", "lda",
	"max_message_size", "max_recipients", "max_sessions",
	"max_sessions_per_address", "timeout", "data_timeout", "max_deliveries",
	"retry_min", "retry_max", "queue_lifetime", "mda_timeout", "resolver",
	"control", "submit", "session_reuse", NULL };
static const char *const listener_keys[] = { "address", "port", "tls", "cert",
	"key", "sni", "auth", "auth_required", "auth_plaintext", "tag", "lmtp",
	"hostname", "senders", NULL };
static const char *const rule_keys[] = { "tag", "from", "sender",
	"rcpt_domain", "rcpt", "virtual", "alias", "users", "userbase",
	"action", "mda", "maildir", "lmtp", "user", "relay", "secrets",
	"cafile", "relay_tls", "mx_port", NULL };

static char *
xstrdup(const char *s)
{
	char	*p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

static int
open_table(const struct config *cf, const struct conf_section *sec,
    const char *key, struct table **tp, char *err, size_t errlen)
{
	const struct conf_entry	*e = conf_entry(sec, key);
	char			 terr[256];

	*tp = NULL;
	if (e == NULL)
		return 0;
	if (table_open(tp, e->value, terr, sizeof(terr)) == -1)
		return conf_error(cf->conf, e->line, err, errlen, "%s: %s", key,
		    terr);
	return 1;
}

/* Splits a command into argv at white space; quotes group words. */
static int
split_argv(const char *cmd, struct rule *r)
{
	char		 word[4096];
	size_t		 n;
	const char	*p = cmd;
	char		 q;

	r->argc = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		n = 0;
		while (*p != '\0' && *p != ' ' && *p != '\t') {
			if (*p == '"' || *p == '\'') {
				q = *p++;
				while (*p != '\0' && *p != q) {
					if (n + 1 >= sizeof(word))
						return -1;
					word[n++] = *p++;
				}
				if (*p != q)
					return -1;
				p++;
				continue;
			}
			if (n + 1 >= sizeof(word))
				return -1;
			word[n++] = *p++;
		}
		word[n] = '\0';
		if (r->argc >= MAX_ARGV - 1)
			return -1;
		r->argv[r->argc++] = xstrdup(word);
	}
	r->argv[r->argc] = NULL;
	return r->argc > 0 && r->argv[0][0] == '/' ? 0 : -1;
}

static int
load_listener(struct config *cf, const struct conf_section *sec,
    struct listener *l, char *err, size_t errlen)
{
	static const char *const tlswords[] = { "none", "starttls", "require",
		"implicit", NULL };
	int	 v, r;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->line = sec->line;
	l->name = xstrdup(sec->label ? sec->label : "smtp");
	if (conf_check_keys(cf->conf, sec, listener_keys, err, errlen) == -1)
		return -1;
	l->address = xstrdup(conf_get(sec, "address", "127.0.0.1"));
	l->port = xstrdup(conf_get(sec, "port", "25"));
	v = TLS_NONE;
	if (conf_enum(cf->conf, sec, "tls", tlswords, &v, err, errlen) == -1)
		return -1;
	l->tls = v;
	if (l->tls != TLS_NONE && conf_get(sec, "cert", NULL) == NULL)
		return conf_error(cf->conf, sec->line, err, errlen,
		    "[listener %s]: tls needs cert and key", l->name);
	if ((r = open_table(cf, sec, "auth", &l->auth, err, errlen)) == -1)
		return -1;
	/* user -> the MAIL FROM addresses (or @domain) it may use */
	if (open_table(cf, sec, "senders", &l->senders, err, errlen) == -1)
		return -1;
	if (l->senders != NULL && l->auth == NULL)
		return conf_error(cf->conf, sec->line, err, errlen,
		    "[listener %s]: senders needs auth", l->name);
	v = l->auth != NULL;
	if (conf_bool(cf->conf, sec, "auth_required", &v, err, errlen) == -1)
		return -1;
	l->auth_required = v && l->auth != NULL;
	v = 0;
	if (conf_bool(cf->conf, sec, "auth_plaintext", &v, err, errlen) == -1)
		return -1;
	l->auth_plaintext = v;
	if (l->auth_required && l->tls == TLS_NONE && !l->auth_plaintext)
		return conf_error(cf->conf, sec->line, err, errlen,
		    "[listener %s]: auth without tls needs auth_plaintext = yes",
		    l->name);
	v = 0;
	if (conf_bool(cf->conf, sec, "lmtp", &v, err, errlen) == -1)
		return -1;
	l->lmtp = v;
	if (conf_get(sec, "tag", NULL))
		l->tag = xstrdup(conf_get(sec, "tag", NULL));
	if (conf_get(sec, "hostname", NULL))
		l->hostname = xstrdup(conf_get(sec, "hostname", NULL));
	return 0;
}

/* 1 when path is courriel's lda: the configured one, or basename "lda". */
static int
is_lda(const struct config *cf, const char *path)
{
	const char	*base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return (cf->lda != NULL && strcmp(path, cf->lda) == 0) ||
	    strcmp(base, PROGRAM_PREFIX "lda") == 0 || strcmp(base, "lda") == 0;
}

/*
 * Whether the rule's deliveries can go in batches through lda -B: the
 * maildir action, or an mda that is courriel's lda with %{sender...} only
 * in -f's value (the one argument that may differ within a batch: a
 * batch is one rule and one recipient).
 */
static void
set_batch(const struct config *cf, struct rule *r)
{
	int	 k;

	r->batch = 0;
	r->fidx = -1;
	if (r->action == ACT_MAILDIR) {
		r->batch = 1;
		return;
	}
	if (r->action != ACT_MDA || !is_lda(cf, r->argv[0]))
		return;
	for (k = 1; k < r->argc; k++) {
		if (strcmp(r->argv[k], "-B") == 0)
			return;
		if (strcmp(r->argv[k - 1], "-f") == 0 && r->fidx == -1)
			r->fidx = k;
		else if (strstr(r->argv[k], "%{sender") != NULL)
			return;
	}
	r->batch = 1;
}

static int
load_runas(struct config *cf, const struct conf_section *sec, struct rule *r,
    char *err, size_t errlen)
{
	const struct conf_entry	*e = conf_entry(sec, "user");
	char			 perr[256];

	if (e == NULL) {
		/*
		 * As root, a command needs a user; only our own lda (the
		 * configured one, or a file named lda) drops by itself.
		 */
		if (cf->dropping && r->action == ACT_MDA &&
		    !is_lda(cf, r->argv[0]))
			return conf_error(cf->conf, sec->line, err, errlen,
			    "[rule %s]: mda needs user = (it would run as root)",
			    r->name);
		if (cf->dropping && r->action == ACT_MAILDIR)
			return conf_error(cf->conf, sec->line, err, errlen,
			    "[rule %s]: maildir needs user =", r->name);
		return 0;
	}
	if (priv_lookup(e->value, &r->uid, &r->gid, perr, sizeof(perr)) == -1)
		return conf_error(cf->conf, e->line, err, errlen, "user: %s", perr);
	r->runas = xstrdup(e->value);
	r->setid = 1;
	return 0;
}

/*
 * relay = smtp://[label@]host[:port] | smtp+tls://... | smtps://... (a
 * smarthost; absent: the MX hosts), secrets = TABLE (label user:password),
 * cafile = PEM, relay_tls = no | maybe | require (to MX hosts; default
 * maybe), mx_port = N (tests).
 */
static int
load_relay(struct config *cf, const struct conf_section *sec, struct rule *r,
    char *err, size_t errlen)
{
	static const char *const modes[] = { "no", "maybe", "require", NULL };
	const struct conf_entry	*e;
	char			 why[256];
	long			 port = 25;
	int			 v = 1;

	if ((e = conf_entry(sec, "relay")) != NULL) {
		if ((r->smarthost = calloc(1, sizeof(*r->smarthost))) == NULL)
			abort();
		if (smtpc_url_parse(e->value, r->smarthost, why,
		    sizeof(why)) == -1)
			return conf_error(cf->conf, e->line, err, errlen,
			    "relay: %s", why);
	}
	if (open_table(cf, sec, "secrets", &r->secrets, err, errlen) == -1)
		return -1;
	if (r->smarthost != NULL && r->smarthost->label[0] != '\0' &&
	    r->secrets == NULL)
		return conf_error(cf->conf, e->line, err, errlen,
		    "relay: a label needs secrets = TABLE");
	if (conf_get(sec, "cafile", NULL) != NULL)
		r->cafile = xstrdup(conf_get(sec, "cafile", NULL));
	if (conf_enum(cf->conf, sec, "relay_tls", modes, &v, err, errlen) == -1 ||
	    conf_long(cf->conf, sec, "mx_port", 1, 65535, &port, err,
	    errlen) == -1)
		return -1;
	r->relay_tls = v == 0 ? SMTPC_TLS_NO : v == 1 ? SMTPC_TLS_MAYBE :
	    SMTPC_TLS_STARTTLS;
	r->mx_port = (int)port;
	return 0;
}

static int
load_rule(struct config *cf, const struct conf_section *sec, struct rule *r,
    char *err, size_t errlen)
{
	static const char *const actions[] = { "mda", "maildir", "lmtp",
		"reject", "relay", NULL };
	const struct conf_entry	*e;
	const char		*from;
	int			 v;

	memset(r, 0, sizeof(*r));
	r->line = sec->line;
	r->name = xstrdup(sec->label ? sec->label : "rule");
	if (conf_check_keys(cf->conf, sec, rule_keys, err, errlen) == -1)
		return -1;
	if (conf_get(sec, "tag", NULL))
		r->tag = xstrdup(conf_get(sec, "tag", NULL));
	from = conf_get(sec, "from", "any");
	if (strcasecmp(from, "any") == 0)
		r->from = FROM_ANY;
	else if (strcasecmp(from, "local") == 0)
		r->from = FROM_LOCAL;
	else if (strcasecmp(from, "auth") == 0)
		r->from = FROM_AUTH;
	else {
		r->from = FROM_TABLE;
		if (open_table(cf, sec, "from", &r->from_table, err, errlen) == -1)
			return -1;
	}
	if (open_table(cf, sec, "sender", &r->sender, err, errlen) == -1 ||
	    open_table(cf, sec, "rcpt_domain", &r->rcpt_domain, err, errlen) == -1 ||
	    open_table(cf, sec, "rcpt", &r->rcpt, err, errlen) == -1 ||
	    open_table(cf, sec, "virtual", &r->virtual, err, errlen) == -1 ||
	    open_table(cf, sec, "alias", &r->alias, err, errlen) == -1 ||
	    open_table(cf, sec, "users", &r->users, err, errlen) == -1 ||
	    open_table(cf, sec, "userbase", &r->userbase, err, errlen) == -1)
		return -1;
	if ((e = conf_entry(sec, "action")) == NULL)
		return conf_error(cf->conf, sec->line, err, errlen,
		    "[rule %s]: action = mda | maildir | lmtp | reject expected",
		    r->name);
	if (conf_enum(cf->conf, sec, "action", actions, &v, err, errlen) == -1)
		return -1;
	r->action = v;
	switch (r->action) {
	case ACT_MDA:
		if ((e = conf_entry(sec, "mda")) == NULL)
			return conf_error(cf->conf, sec->line, err, errlen,
			    "[rule %s]: action mda needs mda = COMMAND", r->name);
		if (split_argv(e->value, r) == -1)
			return conf_error(cf->conf, e->line, err, errlen,
			    "mda: expected an absolute path and arguments "
			    "(at most %d, quotes balanced)", MAX_ARGV - 1);
		break;
	case ACT_MAILDIR:
		if ((e = conf_entry(sec, "maildir")) == NULL)
			return conf_error(cf->conf, sec->line, err, errlen,
			    "[rule %s]: action maildir needs maildir = PATH",
			    r->name);
		r->maildir = xstrdup(e->value);
		break;
	case ACT_LMTP:
		if ((e = conf_entry(sec, "lmtp")) == NULL)
			return conf_error(cf->conf, sec->line, err, errlen,
			    "[rule %s]: action lmtp needs lmtp = HOST:PORT or "
			    "/socket", r->name);
		/* found now, not at the first delivery's deferral */
		if (e->value[0] == '/' && strlen(e->value) >=
		    sizeof(((struct sockaddr_un *)0)->sun_path))
			return conf_error(cf->conf, e->line, err, errlen,
			    "lmtp: socket path too long (%zu bytes, a unix "
			    "socket address holds %zu)", strlen(e->value),
			    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		if (e->value[0] != '/' && strrchr(e->value, ':') == NULL)
			return conf_error(cf->conf, e->line, err, errlen,
			    "lmtp: expected HOST:PORT or /socket");
		r->lmtp = xstrdup(e->value);
		break;
	case ACT_RELAY:
		if (load_relay(cf, sec, r, err, errlen) == -1)
			return -1;
		return 0;	/* runs as the session user, see deliver.c */
	case ACT_REJECT:
		break;
	}
	if (r->action != ACT_REJECT && load_runas(cf, sec, r, err, errlen) == -1)
		return -1;
	set_batch(cf, r);
	return 0;
}

static int
get_long(struct config *cf, const struct conf_section *g, const char *key,
    long def, long min, long max, long *r, char *err, size_t errlen)
{
	*r = def;
	return conf_long(cf->conf, g, key, min, max, r, err, errlen) == -1 ? -1 : 0;
}

static int
get_dur(struct config *cf, const struct conf_section *g, const char *key,
    long def, long *r, char *err, size_t errlen)
{
	*r = def;
	return conf_duration(cf->conf, g, key, r, err, errlen) == -1 ? -1 : 0;
}

int
config_load(struct config *cf, const char *path, char *err, size_t errlen)
{
	const struct conf_section	*g, *sec;
	char				 host[256], perr[256];
	size_t				 n;

	memset(cf, 0, sizeof(*cf));
	cf->path = xstrdup(path);
	if (conf_load(&cf->conf, path, err, errlen) == -1)
		return -1;
	g = conf_global(cf->conf);
	if (conf_check_keys(cf->conf, g, global_keys, err, errlen) == -1)
		return -1;
	if (gethostname(host, sizeof(host)) == -1)
		str_lcpy(host, "localhost", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	cf->hostname = xstrdup(conf_get(g, "hostname", host));
	cf->queue = xstrdup(conf_get(g, "queue", LOCALSTATEDIR "/spool/smtpd-lite"));
	cf->lda = xstrdup(conf_get(g, "lda", BINDIR "/" PROGRAM_PREFIX "lda"));
	/* mailctl(8): the admin socket and the local submission socket */
	{
		char	 def[4096];

		str_fmt(def, sizeof(def), "%s/control.sock", cf->queue);
		cf->control = xstrdup(conf_get(g, "control", def));
		str_fmt(def, sizeof(def), "%s/submit.sock", cf->queue);
		cf->submit = xstrdup(conf_get(g, "submit", def));
	}
	cf->control_fd = -1;
	if (conf_get(g, "resolver", NULL) != NULL)
		cf->resolver = xstrdup(conf_get(g, "resolver", NULL));
	cf->dropping = priv_is_root();
	cf->user = xstrdup(conf_get(g, "user", cf->dropping ? "nobody" : ""));
	if (cf->dropping) {
		if (priv_lookup(cf->user, &cf->uid, &cf->gid, perr,
		    sizeof(perr)) == -1)
			return conf_error(cf->conf, 0, err, errlen, "user: %s", perr);
		if (cf->uid == 0)
			return conf_error(cf->conf, 0, err, errlen,
			    "user: sessions must not run as root");
	} else {
		cf->uid = getuid();
		cf->gid = getgid();
	}
	cf->max_size = 35ULL * 1024 * 1024;
	if (conf_size(cf->conf, g, "max_message_size", &cf->max_size, err,
	    errlen) == -1 ||
	    get_long(cf, g, "max_recipients", 100, 1, 10000, &cf->max_rcpt, err,
	    errlen) == -1 ||
	    get_long(cf, g, "max_sessions", 200, 1, 100000, &cf->max_sessions, err,
	    errlen) == -1 ||
	    get_long(cf, g, "max_sessions_per_address", 50, 1, 100000,
	    &cf->max_per_addr, err, errlen) == -1 ||
	    get_dur(cf, g, "timeout", 300, &cf->timeout, err, errlen) == -1 ||
	    get_dur(cf, g, "data_timeout", 600, &cf->data_timeout, err,
	    errlen) == -1 ||
	    get_long(cf, g, "max_deliveries", 16, 1, 1000, &cf->max_deliveries,
	    err, errlen) == -1 ||
	    get_long(cf, g, "session_reuse", 100, 1, 100000, &cf->session_reuse,
	    err, errlen) == -1 ||
	    get_dur(cf, g, "retry_min", 60, &cf->retry_min, err, errlen) == -1 ||
	    get_dur(cf, g, "retry_max", 3600, &cf->retry_max, err, errlen) == -1 ||
	    get_dur(cf, g, "queue_lifetime", 4 * 86400, &cf->lifetime, err,
	    errlen) == -1 ||
	    get_dur(cf, g, "mda_timeout", 600, &cf->mda_timeout, err,
	    errlen) == -1)
		return -1;
	if (cf->timeout < 1)
		cf->timeout = 1;
	if (cf->retry_min < 1)
		cf->retry_min = 1;

	n = 0;
	for (sec = NULL; (sec = conf_next_section(cf->conf, "listener", sec)); )
		n++;
	cf->listeners = calloc(n ? n : 1, sizeof(*cf->listeners));
	for (sec = NULL; (sec = conf_next_section(cf->conf, "listener", sec)); )
		if (load_listener(cf, sec, &cf->listeners[cf->nlisteners++], err,
		    errlen) == -1)
			return -1;
	n = 0;
	for (sec = NULL; (sec = conf_next_section(cf->conf, "rule", sec)); )
		n++;
	cf->rules = calloc(n ? n : 1, sizeof(*cf->rules));
	for (sec = NULL; (sec = conf_next_section(cf->conf, "rule", sec)); )
		if (load_rule(cf, sec, &cf->rules[cf->nrules++], err, errlen) == -1)
			return -1;
	if (cf->nlisteners == 0)
		return conf_error(cf->conf, 0, err, errlen,
		    "no [listener NAME] section");
	return 0;
}

/* Certificates and keys, read as root. */
int
config_tls(struct config *cf, char *err, size_t errlen)
{
	const struct conf_section	*sec = NULL;
	const struct conf_entry		*e;
	struct listener			*l;
	char				 terr[512], host[256], cert[4096],
					 key[4096];
	size_t				 i;

	for (i = 0; i < cf->nlisteners; i++) {
		l = &cf->listeners[i];
		sec = conf_section(cf->conf, "listener", l->name);
		if (l->tls == TLS_NONE || sec == NULL)
			continue;
		if ((l->tlsctx = tls_server_new(terr, sizeof(terr))) == NULL)
			return conf_error(cf->conf, l->line, err, errlen, "tls: %s",
			    terr);
		if (tls_server_add_cert(l->tlsctx, NULL, conf_get(sec, "cert", ""),
		    conf_get(sec, "key", conf_get(sec, "cert", "")), terr,
		    sizeof(terr)) == -1)
			return conf_error(cf->conf, conf_entry(sec, "cert")->line,
			    err, errlen, "cert: %s", terr);
		for (e = NULL; (e = conf_next(sec, "sni", e)) != NULL; ) {
			if (sscanf(e->value, "%255s %4095s %4095s", host, cert,
			    key) != 3)
				return conf_error(cf->conf, e->line, err, errlen,
				    "sni: expected HOSTNAME CERT KEY");
			if (tls_server_add_cert(l->tlsctx, host, cert, key, terr,
			    sizeof(terr)) == -1)
				return conf_error(cf->conf, e->line, err, errlen,
				    "sni: %s", terr);
		}
	}
	return 0;
}

/*
 * Re-reads the file tables that changed on disk (at most a stat a
 * second each). The master calls it before each fork: a session runs
 * as a user that may not read them, so it inherits fresh contents.
 */
unsigned long
config_refresh_tables(struct config *cf)
{
	struct table	*t[10];
	unsigned long	 gen = 0;
	size_t		 i, k;

	for (i = 0; i < cf->nlisteners; i++)
		if (cf->listeners[i].auth)
			gen += table_generation(cf->listeners[i].auth);
	for (i = 0; i < cf->nlisteners; i++)
		if (cf->listeners[i].senders)
			gen += table_generation(cf->listeners[i].senders);
	for (i = 0; i < cf->nrules; i++) {
		const struct rule *r = &cf->rules[i];
		t[0] = r->from_table; t[1] = r->sender; t[2] = r->rcpt_domain;
		t[3] = r->rcpt; t[4] = r->virtual; t[5] = r->alias;
		t[6] = r->users; t[7] = r->userbase;
		for (k = 0; k < 8; k++)
			if (t[k])
				gen += table_generation(t[k]);
	}
	return gen;
}

void
config_free(struct config *cf)
{
	size_t	 i;

	for (i = 0; i < cf->nlisteners; i++)
		if (cf->listeners[i].tlsctx)
			tls_ctx_free(cf->listeners[i].tlsctx);
	if (cf->conf)
		conf_free(cf->conf);
}
