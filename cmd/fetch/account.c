/*
 * account.c -- the accounts to poll: `[account NAME]` sections of the
 * config (the global section gives defaults for every key), or one
 * account on the command line as a URL in mutt's form,
 * imap[s]://user[:password]@host[:port][/FOLDER] or pop3[s]://...
 * Options given on the command line override the config.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "fetch.h"

static const char *const account_keys[] = {
	"url", "protocol", "host", "port", "user", "password", "tls",
	"starttls", "cafile", "insecure", "allow_plaintext", "folder",
	"maildir", "mda", "keep", "delete", "state", "idle", "timeout",
	"batch", NULL
};
static const char *const global_keys[] = {
	"url", "protocol", "host", "port", "user", "password", "tls",
	"starttls", "cafile", "insecure", "allow_plaintext", "folder",
	"maildir", "mda", "keep", "delete", "idle", "timeout", "batch",
	"state_dir", "interval", NULL
};

static int
pct_decode(char *s)
{
	char *w = s;

	for (; *s != '\0'; s++) {
		if (*s == '%') {
			int hi, lo;

			if (!isxdigit((unsigned char)s[1]) ||
			    !isxdigit((unsigned char)s[2]))
				return -1;
			hi = isdigit((unsigned char)s[1]) ? s[1] - '0' :
			    (tolower((unsigned char)s[1]) - 'a' + 10);
			lo = isdigit((unsigned char)s[2]) ? s[2] - '0' :
			    (tolower((unsigned char)s[2]) - 'a' + 10);
			if (hi * 16 + lo == 0)
				return -1;
			*w++ = (char)(hi * 16 + lo);
			s += 2;
		} else
			*w++ = *s;
	}
	*w = '\0';
	return 0;
}

static int
set_str(char **dst, const char *v)
{
	char *n = strdup(v);

	if (n == NULL)
		return -1;
	if (*dst != NULL) {
		explicit_bzero(*dst, strlen(*dst));
		free(*dst);
	}
	*dst = n;
	return 0;
}

static int
add_folder(struct account *a, const char *f)
{
	char **n = reallocarray(a->folders, a->nfolders + 2, sizeof(char *));

	if (n == NULL)
		return -1;
	a->folders = n;
	if ((n[a->nfolders] = strdup(f)) == NULL)
		return -1;
	n[++a->nfolders] = NULL;
	return 0;
}

static void
clear_folders(struct account *a)
{
	size_t i;

	for (i = 0; i < a->nfolders; i++)
		free(a->folders[i]);
	free(a->folders);
	a->folders = NULL;
	a->nfolders = 0;
}

static int
scheme(const char *s, size_t n, struct account *a)
{
	if (n == 4 && strncasecmp(s, "imap", 4) == 0) {
		a->proto = PROTO_IMAP;
		a->tls = TLS_OFF;
	} else if (n == 5 && strncasecmp(s, "imaps", 5) == 0) {
		a->proto = PROTO_IMAP;
		a->tls = TLS_IMPLICIT;
	} else if (n == 4 && strncasecmp(s, "pop3", 4) == 0) {
		a->proto = PROTO_POP3;
		a->tls = TLS_OFF;
	} else if (n == 5 && strncasecmp(s, "pop3s", 5) == 0) {
		a->proto = PROTO_POP3;
		a->tls = TLS_IMPLICIT;
	} else if (n == 3 && strncasecmp(s, "pop", 3) == 0) {
		a->proto = PROTO_POP3;
		a->tls = TLS_OFF;
	} else if (n == 4 && strncasecmp(s, "pops", 4) == 0) {
		a->proto = PROTO_POP3;
		a->tls = TLS_IMPLICIT;
	} else
		return -1;
	return 0;
}

int
url_parse(const char *url, struct account *a, char *err, size_t errlen)
{
	char *copy, *p, *at, *hostpart, *slash, *colon;
	const char *sep;
	int rc = -1;

	if ((sep = strstr(url, "://")) == NULL ||
	    scheme(url, (size_t)(sep - url), a) == -1) {
		snprintf(err, errlen, "%s: expected imap://, imaps://, pop3:// "
		    "or pop3s://", url);
		return -1;
	}
	if ((copy = strdup(sep + 3)) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	p = copy;
	/* the path: everything after the first '/' after the authority */
	at = NULL;
	slash = strchr(p, '/');
	/* the userinfo ends at the last '@' before the path */
	{
		char *q;

		for (q = p; *q != '\0' && (slash == NULL || q < slash); q++)
			if (*q == '@')
				at = q;
	}
	if (at != NULL) {
		char *user = p;

		*at = '\0';
		hostpart = at + 1;
		if ((colon = strchr(user, ':')) != NULL) {
			*colon = '\0';
			if (pct_decode(colon + 1) == -1 ||
			    set_str(&a->password, colon + 1) == -1)
				goto bad;
		}
		if (*user == '\0' || pct_decode(user) == -1 ||
		    set_str(&a->user, user) == -1)
			goto bad;
	} else
		hostpart = p;
	if (slash != NULL) {
		*slash = '\0';
		if (slash[1] != '\0') {
			if (a->proto == PROTO_POP3) {
				snprintf(err, errlen, "%s: POP3 has no folders", url);
				goto out;
			}
			if (pct_decode(slash + 1) == -1)
				goto bad;
			clear_folders(a);
			if (add_folder(a, slash + 1) == -1)
				goto bad;
		}
	}
	if (*hostpart == '[') {		/* [IPv6]:port */
		char *end = strchr(hostpart, ']');

		if (end == NULL)
			goto bad;
		*end = '\0';
		if (set_str(&a->host, hostpart + 1) == -1)
			goto bad;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			goto bad;
	} else {
		if ((colon = strrchr(hostpart, ':')) != NULL)
			*colon = '\0';
		if (set_str(&a->host, hostpart) == -1)
			goto bad;
	}
	if (a->host[0] == '\0')
		goto bad;
	if (colon != NULL) {
		char *end;
		long port;

		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (*end != '\0' || errno || port < 1 || port > 65535)
			goto bad;
		if (set_str(&a->port, colon + 1) == -1)
			goto bad;
	}
	rc = 0;
	goto out;
bad:
	snprintf(err, errlen, "%s: malformed URL (expected "
	    "scheme://user@host[:port][/FOLDER])", url);
out:
	explicit_bzero(copy, strlen(sep + 3));
	free(copy);
	return rc;
}

int
mda_split(const char *cmd, char ***argv_r, char *err, size_t errlen)
{
	char **argv = NULL;
	size_t n = 0;
	struct buf w;
	const char *s = cmd;
	int rc = -1;

	buf_init(&w, 65536);
	for (;;) {
		int inword = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0')
			break;
		buf_reset(&w);
		while (*s != '\0' && *s != ' ' && *s != '\t') {
			inword = 1;
			if (*s == '\'') {
				const char *e = strchr(s + 1, '\'');

				if (e == NULL) {
					snprintf(err, errlen, "mda: unbalanced '");
					goto out;
				}
				if (buf_add(&w, s + 1, (size_t)(e - s - 1)) == -1)
					goto nomem;
				s = e + 1;
			} else if (*s == '"') {
				s++;
				while (*s != '"') {
					if (*s == '\0') {
						snprintf(err, errlen,
						    "mda: unbalanced \"");
						goto out;
					}
					if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
						s++;
					if (buf_addc(&w, *s++) == -1)
						goto nomem;
				}
				s++;
			} else if (*s == '\\' && s[1] != '\0') {
				if (buf_addc(&w, s[1]) == -1)
					goto nomem;
				s += 2;
			} else if (buf_addc(&w, *s++) == -1)
				goto nomem;
		}
		if (inword) {
			char **na = reallocarray(argv, n + 2, sizeof(char *));

			if (na == NULL)
				goto nomem;
			argv = na;
			if ((argv[n] = strdup(w.data ? w.data : "")) == NULL)
				goto nomem;
			argv[++n] = NULL;
		}
	}
	if (n == 0) {
		snprintf(err, errlen, "mda: empty command");
		goto out;
	}
	/* proc_spawn wants a path: look a bare name up in PATH */
	if (strchr(argv[0], '/') == NULL) {
		const char *path = getenv("PATH");
		char *dirs, *d, *save = NULL, full[PATH_MAX];
		int found = 0;

		if (path == NULL || *path == '\0')
			path = "/usr/local/bin:/usr/bin:/bin";
		if ((dirs = strdup(path)) == NULL)
			goto nomem;
		for (d = strtok_r(dirs, ":", &save); d != NULL;
		    d = strtok_r(NULL, ":", &save)) {
			if (str_fmt(full, sizeof(full), "%s/%s", d, argv[0]) == 0 &&
			    access(full, X_OK) == 0) {
				found = 1;
				break;
			}
		}
		free(dirs);
		if (!found) {
			snprintf(err, errlen, "mda: %s: not found in PATH", argv[0]);
			goto out;
		}
		free(argv[0]);
		if ((argv[0] = strdup(full)) == NULL)
			goto nomem;
	}
	*argv_r = argv;
	argv = NULL;
	rc = 0;
	goto out;
nomem:
	snprintf(err, errlen, "mda: %s", strerror(errno));
out:
	if (argv != NULL) {
		size_t i;

		for (i = 0; i < n; i++)
			free(argv[i]);
		free(argv);
	}
	buf_free(&w);
	return rc;
}

static void
account_free(struct account *a)
{
	size_t i;

	if (a == NULL)
		return;
	free(a->name);
	free(a->where);
	free(a->host);
	free(a->port);
	free(a->user);
	if (a->password != NULL) {
		explicit_bzero(a->password, strlen(a->password));
		free(a->password);
	}
	free(a->cafile);
	clear_folders(a);
	free(a->maildir);
	if (a->mda != NULL)
		for (i = 0; a->mda[i] != NULL; i++)
			free(a->mda[i]);
	free(a->mda);
	free(a->mda_text);
	free(a->state);
	free(a);
}

void
accounts_free(struct account **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		account_free(v[i]);
	free(v);
}

static struct account *
account_new(void)
{
	struct account *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	a->tls = -1;
	a->proto = -1;
	a->insecure = a->allow_plaintext = a->delete = a->idle = -1;
	a->timeout = -1;
	a->batch = -1;
	return a;
}

/* Reads one key from the section, else from the global section. */
static const struct conf_section *
where_is(const struct conf *cf, const struct conf_section *sec, const char *key)
{
	if (sec != NULL && conf_entry(sec, key) != NULL)
		return sec;
	if (conf_entry(conf_global(cf), key) != NULL)
		return conf_global(cf);
	return NULL;
}

static int
from_conf(struct account *a, const struct conf *cf,
    const struct conf_section *sec, char *err, size_t errlen)
{
	const struct conf_section *s;
	const struct conf_entry *e;
	int b;
	long l;

	if ((s = where_is(cf, sec, "url")) != NULL) {
		char uerr[512];

		e = conf_entry(s, "url");
		if (url_parse(e->value, a, uerr, sizeof(uerr)) == -1)
			return conf_error(cf, e->line, err, errlen, "%s", uerr);
	}
	if ((s = where_is(cf, sec, "protocol")) != NULL) {
		static const char *const w[] = { "imap", "imaps", "pop3",
		    "pop3s", NULL };
		int i;

		if (conf_enum(cf, s, "protocol", w, &i, err, errlen) == -1)
			return -1;
		a->proto = i < 2 ? PROTO_IMAP : PROTO_POP3;
		a->tls = (i % 2) ? TLS_IMPLICIT : TLS_OFF;
	}
	if ((s = where_is(cf, sec, "tls")) != NULL) {
		static const char *const w[] = { "no", "starttls", "yes", NULL };
		int i;

		if (conf_enum(cf, s, "tls", w, &i, err, errlen) == -1)
			return -1;
		a->tls = i;
	}
	if ((s = where_is(cf, sec, "starttls")) != NULL) {
		if (conf_bool(cf, s, "starttls", &b, err, errlen) == -1)
			return -1;
		if (b)
			a->tls = TLS_STARTTLS;
	}
#define STR(key, field) do {						\
	if ((s = where_is(cf, sec, key)) != NULL &&			\
	    set_str(&a->field, conf_get(s, key, "")) == -1)		\
		goto nomem;						\
} while (0)
	STR("host", host);
	STR("port", port);
	STR("user", user);
	STR("cafile", cafile);
	STR("maildir", maildir);
	STR("mda", mda_text);
	if (sec != NULL && conf_entry(sec, "state") != NULL)
		STR("state", state);
#undef STR
	if ((s = where_is(cf, sec, "password")) != NULL) {
		char *pw;

		if (conf_secret(cf, s, "password", &pw, err, errlen) == -1)
			return -1;
		if (a->password != NULL) {
			explicit_bzero(a->password, strlen(a->password));
			free(a->password);
		}
		a->password = pw;
	}
#define BOOL(key, field) do {						\
	if ((s = where_is(cf, sec, key)) != NULL) {			\
		if (conf_bool(cf, s, key, &b, err, errlen) == -1)	\
			return -1;					\
		a->field = b;						\
	}								\
} while (0)
	BOOL("insecure", insecure);
	BOOL("allow_plaintext", allow_plaintext);
	BOOL("delete", delete);
	BOOL("idle", idle);
#undef BOOL
	if ((s = where_is(cf, sec, "keep")) != NULL) {
		if (conf_bool(cf, s, "keep", &b, err, errlen) == -1)
			return -1;
		a->delete = !b;
	}
	if ((s = where_is(cf, sec, "timeout")) != NULL) {
		if (conf_duration(cf, s, "timeout", &l, err, errlen) == -1)
			return -1;
		if (l < 1 || l > 3600)
			return conf_error(cf, conf_entry(s, "timeout")->line, err,
			    errlen, "timeout: expected 1 to 3600 seconds");
		a->timeout = (int)l;
	}
	if ((s = where_is(cf, sec, "batch")) != NULL) {
		if (conf_long(cf, s, "batch", 1, 1000, &l, err, errlen) == -1)
			return -1;
		a->batch = (int)l;
	}
	if ((s = where_is(cf, sec, "folder")) != NULL) {
		clear_folders(a);
		for (e = conf_next(s, "folder", NULL); e != NULL;
		    e = conf_next(s, "folder", e))
			if (add_folder(a, e->value) == -1)
				goto nomem;
	}
	return 0;
nomem:
	snprintf(err, errlen, "%s", strerror(errno));
	return -1;
}

static int
from_options(struct account *a, const struct options *o, char *err,
    size_t errlen)
{
	size_t i;

	if (o->tls != -1)
		a->tls = o->tls;
	if (o->cafile != NULL && set_str(&a->cafile, o->cafile) == -1)
		goto nomem;
	if (o->insecure)
		a->insecure = 1;
	if (o->allow_plaintext)
		a->allow_plaintext = 1;
	if (o->maildir != NULL) {
		if (set_str(&a->maildir, o->maildir) == -1)
			goto nomem;
		free(a->mda_text);
		a->mda_text = NULL;
	}
	if (o->mda != NULL) {
		if (set_str(&a->mda_text, o->mda) == -1)
			goto nomem;
		free(a->maildir);
		a->maildir = NULL;
	}
	if (o->delete != -1)
		a->delete = o->delete;
	if (o->all)
		a->all = 1;
	if (o->mark_seen_now)
		a->mark_seen_now = 1;
	if (o->idle)
		a->idle = 1;
	if (o->nfolders > 0) {
		clear_folders(a);
		for (i = 0; i < o->nfolders; i++)
			if (add_folder(a, o->folders[i]) == -1)
				goto nomem;
	}
	if (o->state != NULL && set_str(&a->state, o->state) == -1)
		goto nomem;
	if (o->timeout > 0)
		a->timeout = (int)o->timeout;
	if (o->batch > 0)
		a->batch = (int)o->batch;
	if (o->password_file != NULL) {
		FILE *fp = fopen(o->password_file, "re");
		char line[1024];

		if (fp == NULL) {
			snprintf(err, errlen, "%s: %s", o->password_file,
			    strerror(errno));
			return -1;
		}
		if (fgets(line, sizeof(line), fp) == NULL) {
			fclose(fp);
			snprintf(err, errlen, "%s: empty", o->password_file);
			return -1;
		}
		fclose(fp);
		line[strcspn(line, "\r\n")] = '\0';
		if (set_str(&a->password, line) == -1) {
			explicit_bzero(line, sizeof(line));
			goto nomem;
		}
		explicit_bzero(line, sizeof(line));
	}
	return 0;
nomem:
	snprintf(err, errlen, "%s", strerror(errno));
	return -1;
}

/* A file name for the state of an account without a `state` key. */
static int
default_state(struct account *a, const char *label, const char *state_dir,
    char *err, size_t errlen)
{
	char dir[PATH_MAX], name[512], path[PATH_MAX];
	size_t i;

	if (state_dir != NULL) {
		if (str_lcpy(dir, state_dir, sizeof(dir)) >= sizeof(dir))
			goto toolong;
	} else {
		const char *xdg = getenv("XDG_STATE_HOME");
		/* not $HOME: sudo -E keeps root's (seed 001) */
		struct passwd *pw = getpwuid(getuid());

		if (xdg != NULL && *xdg == '/') {
			if (str_fmt(dir, sizeof(dir), "%s/courriel-fetch", xdg) == -1)
				goto toolong;
		} else if (pw != NULL && pw->pw_dir != NULL && *pw->pw_dir) {
			if (str_fmt(dir, sizeof(dir),
			    "%s/.local/state/courriel-fetch", pw->pw_dir) == -1)
				goto toolong;
		} else {
			snprintf(err, errlen, "%s: no home directory for the "
			    "state: set state or state_dir", a->name);
			return -1;
		}
	}
	if (label != NULL) {
		if (str_lcpy(name, label, sizeof(name)) >= sizeof(name))
			goto toolong;
	} else if (str_fmt(name, sizeof(name), "%s-%s@%s-%s",
	    a->proto == PROTO_IMAP ? "imap" : "pop3", a->user, a->host,
	    a->port) == -1)
		goto toolong;
	for (i = 0; name[i] != '\0'; i++)
		if (name[i] == '/' || (unsigned char)name[i] < 0x20 ||
		    (i == 0 && name[i] == '.'))
			name[i] = '_';
	if (str_fmt(path, sizeof(path), "%s/%s.state", dir, name) == -1)
		goto toolong;
	return set_str(&a->state, path);
toolong:
	snprintf(err, errlen, "%s: state path too long", a->name);
	return -1;
}

static int
finish(struct account *a, const char *label, const char *state_dir,
    char *err, size_t errlen)
{
	char merr[512];
	const char *envpw;

	if (a->proto == -1) {
		snprintf(err, errlen, "%s: no protocol (url = imaps://... or "
		    "protocol = imap|imaps|pop3|pop3s)", a->where);
		return -1;
	}
	if (a->tls == -1)
		a->tls = TLS_OFF;
	if (a->host == NULL || a->user == NULL) {
		snprintf(err, errlen, "%s: no %s", a->where,
		    a->host == NULL ? "host" : "user");
		return -1;
	}
	if (a->port == NULL) {
		const char *p = a->proto == PROTO_IMAP ?
		    (a->tls == TLS_IMPLICIT ? "993" : "143") :
		    (a->tls == TLS_IMPLICIT ? "995" : "110");

		if (set_str(&a->port, p) == -1)
			goto nomem;
	}
	if (a->password == NULL && (envpw = getenv("FETCH_PASSWORD")) != NULL &&
	    set_str(&a->password, envpw) == -1)
		goto nomem;
	if (a->password == NULL) {
		snprintf(err, errlen, "%s: no password (password =, "
		    "--password-file or FETCH_PASSWORD)", a->where);
		return -1;
	}
	if ((a->maildir == NULL) == (a->mda_text == NULL)) {
		snprintf(err, errlen, "%s: say where mail goes: maildir = DIR "
		    "or mda = COMMAND (one of them)", a->where);
		return -1;
	}
	if (a->mda_text != NULL && mda_split(a->mda_text, &a->mda, merr,
	    sizeof(merr)) == -1) {
		snprintf(err, errlen, "%s: %s", a->where, merr);
		return -1;
	}
	if (a->nfolders == 0 && add_folder(a, "INBOX") == -1)
		goto nomem;
	if (a->insecure == -1)
		a->insecure = 0;
	if (a->allow_plaintext == -1)
		a->allow_plaintext = 0;
	if (a->delete == -1)
		a->delete = 0;
	if (a->idle == -1)
		a->idle = 0;
	if (a->timeout == -1)
		a->timeout = 60;
	if (a->batch == -1)
		a->batch = 256;
	if (a->idle && a->proto != PROTO_IMAP) {
		snprintf(err, errlen, "%s: idle needs IMAP", a->where);
		return -1;
	}
	if (a->name == NULL) {
		char n[1024];

		if (str_fmt(n, sizeof(n), "%s%s://%s@%s:%s",
		    a->proto == PROTO_IMAP ? "imap" : "pop3",
		    a->tls == TLS_IMPLICIT ? "s" : "", a->user, a->host,
		    a->port) == -1 || set_str(&a->name, n) == -1)
			goto nomem;
	}
	if (a->state == NULL &&
	    default_state(a, label, state_dir, err, errlen) == -1)
		return -1;
	return 0;
nomem:
	snprintf(err, errlen, "%s", strerror(errno));
	return -1;
}

static int
push(struct account ***v, size_t *n, struct account *a)
{
	struct account **nv = reallocarray(*v, *n + 1, sizeof(*nv));

	if (nv == NULL)
		return -1;
	*v = nv;
	nv[(*n)++] = a;
	return 0;
}

static int
chosen(const struct options *o, const char *label)
{
	int i;

	if (o->nnames == 0)
		return 1;
	for (i = 0; i < o->nnames; i++)
		if (strcmp(o->names[i], label) == 0)
			return 1;
	return 0;
}

int
accounts_load(const struct options *o, struct account ***accts_r, size_t *n_r,
    long *interval_r, char *err, size_t errlen)
{
	struct conf *cf = NULL;
	struct account **v = NULL, *a = NULL;
	size_t n = 0;
	const struct conf_section *sec = NULL;
	const char *state_dir = NULL;
	char where[PATH_MAX + 32];
	int i;

	*interval_r = 0;
	if (o->config != NULL) {
		const struct conf_section *g;

		if (conf_load(&cf, o->config, err, errlen) == -1)
			return -1;
		g = conf_global(cf);
		if (conf_check_keys(cf, g, global_keys, err, errlen) == -1)
			goto fail;
		state_dir = conf_get(g, "state_dir", NULL);
		if (conf_entry(g, "interval") != NULL &&
		    conf_duration(cf, g, "interval", interval_r, err, errlen) == -1)
			goto fail;
		for (i = 0; (size_t)i < cf->nsections; i++) {
			const char *t = cf->sections[i].type;

			if (*t != '\0' && strcasecmp(t, "account") != 0) {
				conf_error(cf, cf->sections[i].line, err, errlen,
				    "unknown section [%s] (expected [account NAME])",
				    t);
				goto fail;
			}
		}
	}
	if (o->url != NULL) {
		char uerr[512];

		if ((a = account_new()) == NULL)
			goto nomem;
		if ((a->where = strdup("command line")) == NULL)
			goto nomem;
		if (cf != NULL && from_conf(a, cf, NULL, err, errlen) == -1)
			goto fail;
		if (url_parse(o->url, a, uerr, sizeof(uerr)) == -1) {
			snprintf(err, errlen, "%s", uerr);
			goto fail;
		}
		if (from_options(a, o, err, errlen) == -1 ||
		    finish(a, NULL, state_dir, err, errlen) == -1 ||
		    push(&v, &n, a) == -1)
			goto fail;
		a = NULL;
	} else if (cf != NULL) {
		while ((sec = conf_next_section(cf, "account", sec)) != NULL) {
			if (sec->label == NULL || *sec->label == '\0') {
				conf_error(cf, sec->line, err, errlen,
				    "[account] needs a name: [account NAME]");
				goto fail;
			}
			if (conf_check_keys(cf, sec, account_keys, err,
			    errlen) == -1)
				goto fail;
			if (!chosen(o, sec->label))
				continue;
			if ((a = account_new()) == NULL)
				goto nomem;
			snprintf(where, sizeof(where), "%s:%d [account %s]",
			    cf->path, sec->line, sec->label);
			if ((a->where = strdup(where)) == NULL ||
			    (a->name = strdup(sec->label)) == NULL)
				goto nomem;
			if (from_conf(a, cf, sec, err, errlen) == -1 ||
			    from_options(a, o, err, errlen) == -1 ||
			    finish(a, sec->label, state_dir, err, errlen) == -1 ||
			    push(&v, &n, a) == -1)
				goto fail;
			a = NULL;
		}
		for (i = 0; i < o->nnames; i++)
			if (conf_section(cf, "account", o->names[i]) == NULL) {
				snprintf(err, errlen, "%s: no [account %s]",
				    cf->path, o->names[i]);
				goto fail;
			}
		if (n == 0) {
			snprintf(err, errlen, "%s: no [account NAME] section",
			    cf->path);
			goto fail;
		}
	} else {
		snprintf(err, errlen, "no account: give a URL or -c FILE");
		goto fail;
	}
	conf_free(cf);
	*accts_r = v;
	*n_r = n;
	return 0;
nomem:
	snprintf(err, errlen, "%s", strerror(errno));
fail:
	account_free(a);
	accounts_free(v, n);
	conf_free(cf);
	return -1;
}
