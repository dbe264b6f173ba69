/*
 * config.c -- imapd.conf(5): the keys of the top level, the [users]
 * section (userdb, shared with lda), and the TLS certificates (SNI).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "imapd.h"
#include "log.h"
#include "priv.h"
#include "table.h"
#include "tls.h"
#include "userdb.h"

static const char *const global_keys[] = {
	"listen", "listen_tls", "cert", "key", "sni", "user", "passwd",
	"password", "password_users", "plaintext_auth", "auth_failure_delay",
	"max_line", "max_append", "max_literals", "idle_timeout",
	"max_connections", "max_per_address", "max_per_user", "special_use",
	"max_depth", "prefork", NULL
};

static int
get_table(struct conf *c, const struct conf_section *g, const char *key,
    struct table **t, char *err, size_t errlen)
{
	const struct conf_entry	*e = conf_entry(g, key);
	char			 terr[512];

	if (e == NULL)
		return 0;
	if (table_open(t, e->value, terr, sizeof(terr)) == -1)
		return conf_error(c, e->line, err, errlen, "%s: %s", key, terr);
	return 0;
}

int
settings_load(struct settings *cfg, const char *path, int need_tls, char *err,
    size_t errlen)
{
	struct conf			*c;
	const struct conf_section	*g;
	const struct conf_entry		*e;
	unsigned long long		 sz;
	long				 v;
	int				 b;
	char				 terr[512], host[256], cert[4096], key[4096];

	(void)need_tls;
	cfg->conf_path = path;
	if (conf_load(&c, path, err, errlen) == -1)
		return -1;
	cfg->conf = c;
	g = conf_global(c);
	if (conf_check_keys(c, g, global_keys, err, errlen) == -1)
		return -1;
	for (e = NULL; (e = conf_next(g, "listen", e)) != NULL; ) {
		if (cfg->nlisten >= IMAPD_MAX_LISTEN)
			return conf_error(c, e->line, err, errlen, "listen: too many");
		cfg->listen[cfg->nlisten++] = e->value;
	}
	for (e = NULL; (e = conf_next(g, "listen_tls", e)) != NULL; ) {
		if (cfg->nlisten_tls >= IMAPD_MAX_LISTEN)
			return conf_error(c, e->line, err, errlen,
			    "listen_tls: too many");
		cfg->listen_tls[cfg->nlisten_tls++] = e->value;
	}
	cfg->unpriv_user = (char *)conf_get(g, "user", "nobody");
	if (priv_lookup(cfg->unpriv_user, &cfg->unpriv_uid, &cfg->unpriv_gid,
	    terr, sizeof(terr)) == -1) {
		e = conf_entry(g, "user");
		return conf_error(c, e ? e->line : 0, err, errlen, "user: %s", terr);
	}
	if (get_table(c, g, "passwd", &cfg->passwd, err, errlen) == -1 ||
	    get_table(c, g, "password_users", &cfg->static_users, err, errlen) == -1)
		return -1;
	if (conf_secret(c, g, "password", &cfg->static_password, err, errlen) == -1)
		return -1;
	if (cfg->passwd == NULL && cfg->static_password == NULL)
		return conf_error(c, 0, err, errlen,
		    "neither passwd nor password is set: nobody could log in");
	cfg->plaintext_auth = 0;
	if (conf_bool(c, g, "plaintext_auth", &b, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "plaintext_auth") != NULL)
		cfg->plaintext_auth = b;
	cfg->failure_delay_ms = 2000;
	if (conf_duration(c, g, "auth_failure_delay", &v, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "auth_failure_delay") != NULL)
		cfg->failure_delay_ms = v * 1000;
	cfg->max_line = 65536;
	if (conf_size(c, g, "max_line", &sz, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "max_line") != NULL) {
		if (sz < 1024 || sz > 16 * 1024 * 1024)
			return conf_error(c, conf_entry(g, "max_line")->line, err,
			    errlen, "max_line: expected 1K to 16M");
		cfg->max_line = (size_t)sz;
	}
	cfg->max_append = 64ULL * 1024 * 1024;
	if (conf_size(c, g, "max_append", &sz, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "max_append") != NULL)
		cfg->max_append = sz;
	cfg->max_literals = cfg->max_append + 1024 * 1024;
	if (conf_size(c, g, "max_literals", &sz, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "max_literals") != NULL)
		cfg->max_literals = sz;
	cfg->idle_timeout = 30 * 60;
	if (conf_duration(c, g, "idle_timeout", &v, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "idle_timeout") != NULL)
		cfg->idle_timeout = v < 1 ? 1 : v;
	cfg->max_connections = 1024;
	cfg->max_per_address = 50;
	cfg->max_per_user = 50;
	if (conf_long(c, g, "max_connections", 1, 100000, &cfg->max_connections,
	    err, errlen) == -1 ||
	    conf_long(c, g, "max_per_address", 1, 100000, &cfg->max_per_address,
	    err, errlen) == -1 ||
	    conf_long(c, g, "max_per_user", 1, 100000, &cfg->max_per_user,
	    err, errlen) == -1)
		return -1;
	cfg->prefork = 0;
	if (conf_long(c, g, "prefork", 0, 64, &cfg->prefork, err, errlen) == -1)
		return -1;
	cfg->special_use = 1;
	if (conf_bool(c, g, "special_use", &b, err, errlen) == -1)
		return -1;
	else if (conf_entry(g, "special_use") != NULL)
		cfg->special_use = b;
	cfg->max_depth = 16;
	{
		long d = 16;

		if (conf_long(c, g, "max_depth", 1, 100, &d, err, errlen) == -1)
			return -1;
		cfg->max_depth = (int)d;
	}
	if (conf_get(g, "cert", NULL) != NULL) {
		if ((cfg->tls = tls_server_new(terr, sizeof(terr))) == NULL)
			return conf_error(c, conf_entry(g, "cert")->line, err, errlen,
			    "tls: %s", terr);
		if (tls_server_add_cert(cfg->tls, NULL, conf_get(g, "cert", ""),
		    conf_get(g, "key", conf_get(g, "cert", "")), terr,
		    sizeof(terr)) == -1)
			return conf_error(c, conf_entry(g, "cert")->line, err, errlen,
			    "cert: %s", terr);
		for (e = NULL; (e = conf_next(g, "sni", e)) != NULL; ) {
			if (sscanf(e->value, "%255s %4095s %4095s", host, cert,
			    key) != 3)
				return conf_error(c, e->line, err, errlen,
				    "sni: expected HOSTNAME CERT KEY");
			if (tls_server_add_cert(cfg->tls, host, cert, key, terr,
			    sizeof(terr)) == -1)
				return conf_error(c, e->line, err, errlen, "sni: %s",
				    terr);
		}
	} else if (cfg->nlisten_tls > 0)
		return conf_error(c, 0, err, errlen,
		    "listen_tls needs a certificate (cert, key)");
	if (userdb_open(&cfg->userdb, c, err, errlen) == -1)
		return -1;
	return 0;
}
