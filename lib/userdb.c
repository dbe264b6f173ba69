/*
 * userdb -- the [users] section: a userbase table, a home template, or
 * the system's passwd entries. See userdb.h for the contract.
 *
 * Names are checked before anything else so that a template can never
 * be made to point outside the directory it names ("../root", "a/b"),
 * and so that no table or NSS lookup ever sees a hostile string.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "priv.h"
#include "table.h"
#include "userdb.h"

struct userdb {
	int		 system;	/* no userbase and no template */
	struct table	*userbase;
	struct table	*users;
	char		*home;		/* template, or NULL */
	char		*maildir;	/* "Maildir" or a template */
	char		*mail_user;	/* resolved on first use */
	int		 mail_user_line;
	int		 have_ids;
	uid_t		 uid;
	gid_t		 gid;
	char		*conf_path;
};

static const char *const users_keys[] = {
	"userbase", "home", "mail_user", "maildir", "users", NULL
};

int
userdb_name_ok(const char *name)
{
	const char	*p, *at = NULL;
	size_t		 n;

	if (name == NULL || (n = strlen(name)) == 0 || n > 255)
		return 0;
	if (name[0] == '.' || name[0] == '@' || name[0] == '-' ||
	    strstr(name, "..") != NULL)
		return 0;
	for (p = name; *p != '\0'; p++) {
		if (*p == '@') {
			if (at != NULL)
				return 0;
			at = p;
			continue;
		}
		if (!(isascii((unsigned char)*p) &&
		    (isalnum((unsigned char)*p) || *p == '.' || *p == '_' ||
		    *p == '+' || *p == '-')))
			return 0;
	}
	if (at != NULL) {
		/* A domain: not empty, no leading or trailing dot. */
		if (at[1] == '\0' || at[1] == '.' || name[n - 1] == '.' ||
		    at[-1] == '.')
			return 0;
	}
	return 1;
}

/* Checks that a template uses only %u %n %d %h %% and %L before u n d. */
static int
template_ok(const char *t, int allow_home)
{
	const char	*p;

	for (p = t; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p == 'L')
			p++;
		if (*p == 'u' || *p == 'n' || *p == 'd' ||
		    (*p == 'h' && allow_home && p[-1] == '%') ||
		    (*p == '%' && p[-1] == '%'))
			continue;
		return 0;
	}
	return 1;
}

/* Expands a checked template for name into out. 0, or -1 (too long). */
static int
expand(const char *t, const char *name, const char *home, char *out,
    size_t outlen)
{
	const char	*p, *at, *v;
	size_t		 o = 0, vlen, i;
	int		 lower;

	at = strchr(name, '@');
	for (p = t; *p != '\0'; p++) {
		if (*p != '%') {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = *p;
			continue;
		}
		p++;
		lower = 0;
		if (*p == 'L') {
			lower = 1;
			p++;
		}
		switch (*p) {
		case 'u':
			v = name;
			vlen = strlen(name);
			break;
		case 'n':
			v = name;
			vlen = at ? (size_t)(at - name) : strlen(name);
			break;
		case 'd':
			v = at ? at + 1 : "";
			vlen = strlen(v);
			break;
		case 'h':
			v = home ? home : "";
			vlen = strlen(v);
			break;
		default:	/* "%%" (template_ok let nothing else by) */
			v = "%";
			vlen = 1;
			break;
		}
		if (o + vlen >= outlen)
			return -1;
		for (i = 0; i < vlen; i++)
			out[o++] = lower ? (char)tolower((unsigned char)v[i]) :
			    v[i];
	}
	out[o] = '\0';
	return 0;
}

void
userdb_close(struct userdb *db)
{
	if (db == NULL)
		return;
	table_close(db->userbase);
	table_close(db->users);
	free(db->home);
	free(db->maildir);
	free(db->mail_user);
	free(db->conf_path);
	free(db);
}

static int
dupval(char **r, const char *v)
{
	if (v == NULL)
		return 0;
	if ((*r = strdup(v)) == NULL)
		return -1;
	return 0;
}

/* Opens a table named by key of sec; errors name the config file:line. */
static int
open_table(const struct conf *conf, const struct conf_section *sec,
    const char *key, struct table **tp, char *err, size_t errlen)
{
	const struct conf_entry	*e;
	char			 e2[512];

	if ((e = conf_entry(sec, key)) == NULL)
		return 0;
	if (table_open(tp, e->value, e2, sizeof(e2)) == -1)
		return conf_error(conf, e->line, err, errlen, "%s: %s", key, e2);
	return 0;
}

int
userdb_open(struct userdb **dbp, const struct conf *conf, char *err,
    size_t errlen)
{
	const struct conf_section	*sec = NULL;
	const struct conf_entry		*e;
	struct userdb			*db;

	*dbp = NULL;
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return str_err(err, errlen, "userdb: out of memory");
	if (conf != NULL)
		sec = conf_section(conf, "users", NULL);
	if (sec == NULL) {
		db->system = 1;
		if ((db->maildir = strdup("Maildir")) == NULL)
			goto nomem;
		*dbp = db;
		return 0;
	}
	if (conf_check_keys(conf, sec, users_keys, err, errlen) == -1)
		goto fail;
	if (dupval(&db->maildir, conf_get(sec, "maildir", "Maildir")) == -1 ||
	    dupval(&db->home, conf_get(sec, "home", NULL)) == -1 ||
	    dupval(&db->mail_user, conf_get(sec, "mail_user", NULL)) == -1 ||
	    dupval(&db->conf_path, conf->path) == -1)
		goto nomem;
	if ((e = conf_entry(sec, "maildir")) != NULL &&
	    (e->value[0] == '\0' || !template_ok(e->value, 1))) {
		conf_error(conf, e->line, err, errlen, "maildir: expected a "
		    "path (relative to home, or absolute) using only %%u %%n "
		    "%%d %%h %%L %%%%");
		goto fail;
	}
	if ((e = conf_entry(sec, "home")) != NULL &&
	    (e->value[0] != '/' || !template_ok(e->value, 0))) {
		conf_error(conf, e->line, err, errlen, "home: expected an "
		    "absolute path template using only %%u %%n %%d %%L %%%%");
		goto fail;
	}
	if ((e = conf_entry(sec, "mail_user")) != NULL) {
		db->mail_user_line = e->line;
		if (e->value[0] == '\0') {
			conf_error(conf, e->line, err, errlen, "mail_user: "
			    "expected a user name or uid:gid");
			goto fail;
		}
	}
	if (open_table(conf, sec, "userbase", &db->userbase, err,
	    errlen) == -1 ||
	    open_table(conf, sec, "users", &db->users, err, errlen) == -1)
		goto fail;
	if (db->users != NULL && db->home == NULL) {
		conf_error(conf, conf_entry(sec, "users")->line, err, errlen,
		    "users: needs a home template");
		goto fail;
	}
	if (db->userbase == NULL && db->home == NULL)
		db->system = 1;
	*dbp = db;
	return 0;
nomem:
	str_err(err, errlen, "userdb: out of memory");
fail:
	userdb_close(db);
	return -1;
}

/* "uid:gid" with plain decimal numbers. */
static int
parse_ids(const char *s, size_t n, uid_t *uid, gid_t *gid)
{
	unsigned long	v[2] = { 0, 0 };
	size_t		i;
	int		k = 0, digits = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == ':' && k == 0 && digits > 0) {
			k = 1;
			digits = 0;
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || ++digits > 10)
			return -1;
		v[k] = v[k] * 10 + (unsigned long)(s[i] - '0');
	}
	if (k != 1 || digits == 0 || v[0] >= 0xffffffffUL ||
	    v[1] >= 0xffffffffUL)
		return -1;
	*uid = (uid_t)v[0];
	*gid = (gid_t)v[1];
	return 0;
}

/* The maildir of u from its home and the maildir setting. */
static int
set_maildir(struct userdb *db, struct user *u, char *err, size_t errlen)
{
	char	rel[4096];
	size_t	h;

	if (db->maildir[0] == '/') {
		if (expand(db->maildir, u->name, u->home, u->maildir,
		    sizeof(u->maildir)) == -1)
			return str_err(err, errlen, "%s: maildir path too long",
			    u->name);
		return 0;
	}
	if (expand(db->maildir, u->name, u->home, rel, sizeof(rel)) == -1 ||
	    (h = strlen(u->home)) + 1 + strlen(rel) >= sizeof(u->maildir))
		return str_err(err, errlen,
		    "%s: maildir path too long", u->name);
	/* (no snprintf on lda's path: see maildir.c) */
	memcpy(u->maildir, u->home, h);
	u->maildir[h] = '/';
	memcpy(u->maildir + h + 1, rel, strlen(rel) + 1);
	return 0;
}

static int
lookup_system(struct userdb *db, const char *name, struct user *u, char *err,
    size_t errlen)
{
	struct passwd	 pw, *res;
	char		 buf[4096];
	int		 e;

	e = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (res == NULL) {
		if (e == 0 || e == ENOENT || e == ESRCH || e == EBADF ||
		    e == EPERM)
			return 0;
		return str_err(err, errlen,
		    "getpwnam %s: %s", name, strerror(e));
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	if (pw.pw_dir == NULL || pw.pw_dir[0] != '/' ||
	    str_lcpy(u->home, pw.pw_dir, sizeof(u->home)) >= sizeof(u->home))
		return str_err(err, errlen, "%s: bad home directory in passwd",
		    name);
	return set_maildir(db, u, err, errlen) == -1 ? -1 : 1;
}

/* Looks name up in t, exactly then lowercased. 1, 0, -1. */
static int
table_find(struct table *t, const char *name, char *val, size_t vallen)
{
	char	low[256];
	int	r;

	if ((r = table_lookup(t, name, val, vallen)) != 0)
		return r;
	if (str_lcpy(low, name, sizeof(low)) >= sizeof(low))
		return 0;
	str_lower(low);
	if (strcmp(low, name) == 0)
		return 0;
	return table_lookup(t, low, val, vallen);
}

static int
lookup_userbase(struct userdb *db, const char *name, struct user *u,
    char *err, size_t errlen)
{
	char		 val[4400];
	const char	*c1, *c2;
	int		 r;

	r = table_find(db->userbase, name, val, sizeof(val));
	if (r == -1)
		return str_err(err, errlen, "%s: lookup %s: %s",
		    table_spec(db->userbase), name, strerror(errno));
	if (r == 0)
		return 0;
	/* uid:gid:home, the home being the rest (it may hold ':'). */
	if ((c1 = strchr(val, ':')) == NULL ||
	    (c2 = strchr(c1 + 1, ':')) == NULL ||
	    parse_ids(val, (size_t)(c2 - val), &u->uid, &u->gid) == -1 ||
	    c2[1] != '/' ||
	    str_lcpy(u->home, c2 + 1, sizeof(u->home)) >= sizeof(u->home))
		return str_err(err, errlen, "%s: %s: expected uid:gid:/home, "
		    "got \"%s\"", table_spec(db->userbase), name, val);
	return set_maildir(db, u, err, errlen) == -1 ? -1 : 1;
}

static int
mail_ids(struct userdb *db, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	char	e[256];

	if (db->have_ids) {
		*uid = db->uid;
		*gid = db->gid;
		return 0;
	}
	if (db->mail_user == NULL) {
		db->uid = getuid();
		db->gid = getgid();
	} else if (parse_ids(db->mail_user, strlen(db->mail_user), &db->uid,
	    &db->gid) == -1 &&
	    priv_lookup(db->mail_user, &db->uid, &db->gid, e, sizeof(e)) == -1)
		return str_err(err, errlen, "%s:%d: mail_user: %s",
		    db->conf_path ? db->conf_path : "config",
		    db->mail_user_line, e);
	db->have_ids = 1;
	*uid = db->uid;
	*gid = db->gid;
	return 0;
}

static int
lookup_template(struct userdb *db, const char *name, struct user *u,
    char *err, size_t errlen)
{
	int	r;

	if (db->users != NULL) {
		r = table_find(db->users, name, NULL, 0);
		if (r == -1)
			return str_err(err, errlen, "%s: lookup %s: %s",
			    table_spec(db->users), name, strerror(errno));
		if (r == 0)
			return 0;
	}
	if (mail_ids(db, &u->uid, &u->gid, err, errlen) == -1)
		return -1;
	if (expand(db->home, name, NULL, u->home, sizeof(u->home)) == -1)
		return str_err(err, errlen, "%s: home path too long", name);
	return set_maildir(db, u, err, errlen) == -1 ? -1 : 1;
}

int
userdb_lookup(struct userdb *db, const char *name, struct user *u, char *err,
    size_t errlen)
{
	int	r;

	memset(u, 0, sizeof(*u));
	if (!userdb_name_ok(name)) {
		str_err(err, errlen, "bad user name");
		return 0;
	}
	memcpy(u->name, name, strlen(name) + 1);
	if (db->system)
		return lookup_system(db, name, u, err, errlen);
	if (db->userbase != NULL &&
	    (r = lookup_userbase(db, name, u, err, errlen)) != 0)
		return r;
	if (db->home != NULL)
		return lookup_template(db, name, u, err, errlen);
	return 0;
}
