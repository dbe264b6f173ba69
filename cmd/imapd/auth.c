/*
 * auth.c -- the not-authenticated state: greeting, CAPABILITY, STARTTLS,
 * LOGIN, AUTHENTICATE PLAIN (with SASL-IR; an authorization identity
 * must equal the user), and the credential check itself (a passwd table,
 * or a static password for a list of users), answered after a delay when
 * it fails. This code reads what the network sends before anyone is
 * known: as root it runs in an unprivileged child that asks the monitor
 * to check credentials (server.c) and never sees a password table.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base64.h"
#include "buf.h"
#include "imap.h"
#include "imapd.h"
#include "io.h"
#include "log.h"
#include "passwd.h"
#include "table.h"
#include "userdb.h"

int	session_any_state(struct session *, const char *);

/*
 * 1 the user may log in with this password, 0 refused, -1 error. The
 * name is checked against the strict character set before any lookup.
 */
int
auth_check(struct settings *cfg, const char *user, const char *pass)
{
	int	r;

	if (!userdb_name_ok(user) || strlen(pass) > 1024)
		return 0;
	if (cfg->static_password != NULL) {
		if (cfg->static_users != NULL &&
		    table_lookup(cfg->static_users, user, NULL, 0) != 1) {
			/* Same work as a match, so timing tells nothing. */
			(void)mem_eq_ct(cfg->static_password, cfg->static_password,
			    strlen(cfg->static_password));
			return 0;
		}
		if (strlen(pass) != strlen(cfg->static_password))
			return 0;
		return mem_eq_ct(pass, cfg->static_password, strlen(pass)) == 0;
	}
	if (cfg->passwd == NULL)
		return 0;
	r = passwd_check(cfg->passwd, user, pass, 0);
	return r;
}

/* Verifies through the monitor (fd >= 0) or here. */
static int
verify(struct settings *cfg, int privsep_fd, const char *user, const char *pass)
{
	struct authframe	 f;
	int32_t			 res;
	ssize_t			 n;

	if (privsep_fd < 0) {
		int r = auth_check(cfg, user, pass);

		if (r == 1 && !user_limit_ok(user))
			return 2;

		if (r != 1 && cfg->failure_delay_ms > 0) {
			struct timespec ts = { cfg->failure_delay_ms / 1000,
			    (cfg->failure_delay_ms % 1000) * 1000000 };

			nanosleep(&ts, NULL);
		}
		return r;
	}
	memset(&f, 0, sizeof(f));
	f.magic = AUTHFRAME_MAGIC;
	if (str_lcpy(f.user, user, sizeof(f.user)) >= sizeof(f.user) ||
	    str_lcpy(f.pass, pass, sizeof(f.pass)) >= sizeof(f.pass)) {
		explicit_bzero(&f, sizeof(f));
		return 0;
	}
	n = write(privsep_fd, &f, sizeof(f));
	explicit_bzero(&f, sizeof(f));
	if (n != (ssize_t)sizeof(f))
		return -1;
	n = read(privsep_fd, &res, sizeof(res));
	if (n != (ssize_t)sizeof(res))
		return -1;
	return res;
}

static int
login_done(struct session *s, const char *user, int r)
{
	if (r == 1) {
		str_lcpy(s->user, user, sizeof(s->user));
		s->state = S_AUTH;
		return session_reply(s, "OK", "[CAPABILITY %s] Logged in",
		    (s->state = S_AUTH, session_capability(s)));
	}
	if (r == 2)
		return session_reply(s, "NO", "[LIMIT] Too many connections for "
		    "this user");
	if (r == 0) {
		log_info("login failed user=%s", userdb_name_ok(user) ? user :
		    "(invalid name)");
		return session_reply(s, "NO", "[AUTHENTICATIONFAILED] "
		    "Authentication failed.");
	}
	log_warnx("login user=%s: authentication service error", user);
	return session_reply(s, "NO", "[UNAVAILABLE] Temporary authentication "
	    "failure");
}

static int
cmd_authenticate(struct session *s, int privsep_fd)
{
	const char	*mech = s->args.n > 2 ? s->args.v[2].str : NULL;
	char		 line[2048], dec[1600], *authz, *authc, *pass;
	const char	*ir = NULL;
	long		 n, len;
	size_t		 dlen;
	int		 r;

	if (mech == NULL || s->args.v[2].type != IMAP_ATOM)
		return session_reply(s, "BAD", "Missing mechanism");
	if (strcasecmp(mech, "PLAIN") != 0)
		return session_reply(s, "NO", "Unsupported authentication mechanism");
	if (!s->tls && !s->cfg->plaintext_auth)
		return session_reply(s, "NO", "[PRIVACYREQUIRED] Plaintext "
		    "authentication disallowed on non-secure connection");
	if (s->args.n > 3)
		ir = s->args.v[3].str;
	if (ir == NULL) {
		io_puts(s->io, "+ \r\n");
		if (io_flush(s->io, 60000) == -1)
			return -1;
		n = io_getline(s->io, line, sizeof(line), 60000, NULL);
		if (n == -1)
			return errno == EMSGSIZE ? session_reply(s, "BAD",
			    "Response too long") : -1;
		ir = line;
	}
	if (strcmp(ir, "*") == 0)
		return session_reply(s, "BAD", "Authentication aborted");
	if (strcmp(ir, "=") == 0)
		ir = "";
	len = base64_decode(ir, strlen(ir), dec, sizeof(dec), &dlen, 0) == 0 ?
	    (long)dlen : -1;
	explicit_bzero(line, sizeof(line));
	if (len < 0)
		return session_reply(s, "BAD", "Invalid base64");
	authz = dec;
	authc = memchr(dec, '\0', (size_t)len);
	pass = authc ? memchr(authc + 1, '\0', (size_t)(dec + len - authc - 1)) : NULL;
	if (authc == NULL || pass == NULL) {
		explicit_bzero(dec, sizeof(dec));
		return session_reply(s, "BAD", "Invalid PLAIN response");
	}
	authc++;
	pass++;
	if (*authz != '\0' && strcmp(authz, authc) != 0) {
		explicit_bzero(dec, sizeof(dec));
		log_info("login failed user=%s: authorization identity differs",
		    userdb_name_ok(authc) ? authc : "(invalid name)");
		return session_reply(s, "NO", "[AUTHORIZATIONFAILED] Authorization "
		    "identity must be the user");
	}
	r = verify(s->cfg, privsep_fd, authc, pass);
	explicit_bzero(dec + (pass - dec), strlen(pass));
	r = login_done(s, authc, r);
	explicit_bzero(dec, sizeof(dec));
	return r;
}

static int
cmd_login(struct session *s, int privsep_fd)
{
	struct imap_arg	*u, *p;
	int		 r;

	if (s->args.n != 4 || !imap_arg_is_string(&s->args.v[2]) ||
	    !imap_arg_is_string(&s->args.v[3]))
		return session_reply(s, "BAD", "LOGIN needs a user and a password");
	if (!s->tls && !s->cfg->plaintext_auth)
		return session_reply(s, "NO", "[PRIVACYREQUIRED] Plaintext "
		    "authentication disallowed on non-secure connection");
	u = &s->args.v[2];
	p = &s->args.v[3];
	if (strlen(u->str) != u->len || strlen(p->str) != p->len)
		return login_done(s, "", 0);
	r = verify(s->cfg, privsep_fd, u->str, p->str);
	explicit_bzero(p->str, p->len);
	return login_done(s, u->str, r);
}

/*
 * Runs the not-authenticated state on io. Returns 1 when a user logged
 * in (s->user set, the tagged OK sent), 0 when the client left, -1 on
 * error. s must be zeroed with cfg and io set.
 */
int
preauth_run(struct settings *cfg, struct io *io, int tls_now, int privsep_fd,
    struct session *s)
{
	char	err[128];
	int	r;

	s->cfg = cfg;
	s->io = io;
	s->state = S_NOTAUTH;
	s->tls = tls_now;
	buf_init(&s->out, 0);
	buf_init(&s->cmd, cfg->max_line * 4 + 65536);
	buf_init(&s->cache, 0);
	buf_printf(&s->out, "* OK [CAPABILITY %s] courriel imapd ready.\r\n",
	    session_capability(s));
	if (session_flush(s) == -1)
		return 0;
	for (;;) {
		const char *cmd;

		if ((r = session_read_command(s, err, sizeof(err))) == -1)
			return 0;
		if (r == 1)
			continue;
		cmd = s->args.v[1].str;
		if ((r = session_any_state(s, cmd)) != 0) {
			if (r == -1)
				return 0;
			continue;
		}
		if (strcasecmp(cmd, "STARTTLS") == 0) {
			char terr[256];

			if (s->tls || cfg->tls == NULL) {
				session_reply(s, "BAD", "TLS is %s",
				    s->tls ? "already active" : "not available");
				continue;
			}
			if (session_reply(s, "OK", "Begin TLS negotiation now") == -1)
				return 0;
			if (io_starttls_server(io, cfg->tls, 30000, terr,
			    sizeof(terr)) == -1) {
				log_warnx("starttls: %s", terr);
				return 0;
			}
			s->tls = 1;
			continue;
		}
		if (strcasecmp(cmd, "LOGIN") == 0)
			r = cmd_login(s, privsep_fd);
		else if (strcasecmp(cmd, "AUTHENTICATE") == 0)
			r = cmd_authenticate(s, privsep_fd);
		else {
			session_reply(s, "BAD", "Log in first");
			continue;
		}
		if (r == -1)
			return 0;
		if (s->state == S_AUTH) {
			imap_args_free(&s->args);
			buf_wipe_free(&s->cmd);
			return 1;
		}
	}
}
