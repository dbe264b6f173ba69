/*
 * smtp -- replies, paths, the exit-status table, DATA and the server
 * session state machine (see smtp.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base64.h"
#include "buf.h"
#include "smtp.h"

/* ------------------------------------------------------------------ */
/* replies */

int
smtp_reply(struct buf *out, int code, const char *esc, const char *fmt, ...)
{
	va_list	 ap;
	int	 r;

	if (esc != NULL)
		r = buf_printf(out, "%03d %s ", code, esc);
	else
		r = buf_printf(out, "%03d ", code);
	if (r == -1)
		return -1;
	va_start(ap, fmt);
	r = buf_vprintf(out, fmt, ap);
	va_end(ap);
	if (r == -1)
		return -1;
	return buf_adds(out, "\r\n");
}

int
smtp_reply_parse(const char *line, size_t len, int *code_r, int *last_r,
    const char **text_r)
{
	size_t	 i;

	if (len < 3 || len > SMTP_LINE_MAX * 8)
		return -1;
	if (line[0] < '2' || line[0] > '5' || !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]))
		return -1;
	for (i = 3; i < len; i++)
		if (((unsigned char)line[i] < 0x20 && line[i] != '\t') ||
		    line[i] == 0x7f)
			return -1;
	*code_r = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3) {
		*last_r = 1;
		*text_r = line + 3;
		return 0;
	}
	if (line[3] != ' ' && line[3] != '-')
		return -1;
	*last_r = line[3] == ' ';
	*text_r = line + 4;
	return 0;
}

/* ------------------------------------------------------------------ */
/* addresses */

static int
is_atext(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of a well-formed UTF-8 sequence at s (1..4), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t	 len, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && s[0] == 0xe0 && s[1] < 0xa0)
		return 0;
	if (len == 3 && s[0] == 0xed && s[1] >= 0xa0)
		return 0;	/* surrogates */
	if (len == 4 && s[0] == 0xf0 && s[1] < 0x90)
		return 0;
	if (len == 4 && s[0] == 0xf4 && s[1] >= 0x90)
		return 0;
	return len;
}

static int
local_ok(const char *s, size_t n, int flags)
{
	size_t	 i, u;
	int	 prevdot = 1;

	if (n == 0 || n > SMTP_LOCAL_MAX)
		return 0;
	if (s[0] == '"') {
		/* quoted-string: qtextSMTP or quoted-pairSMTP */
		if (n < 2 || s[n - 1] != '"')
			return 0;
		for (i = 1; i < n - 1; i++) {
			unsigned char c = s[i];
			if (c == '\\') {
				if (++i >= n - 1 || s[i] < 32 || s[i] > 126)
					return 0;
			} else if (c == '"')
				return 0;
			else if (c >= 0x80) {
				if (!(flags & SMTP_PATH_UTF8) ||
				    (u = utf8_len((const unsigned char *)s + i,
				    n - 1 - i)) == 0)
					return 0;
				i += u - 1;
			} else if (c < 32 || c > 126)
				return 0;
		}
		return 1;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '.') {
			if (prevdot)
				return 0;
			prevdot = 1;
			continue;
		}
		prevdot = 0;
		if (c >= 0x80) {
			if (!(flags & SMTP_PATH_UTF8) ||
			    (u = utf8_len((const unsigned char *)s + i, n - i)) == 0)
				return 0;
			i += u - 1;
		} else if (!is_atext(c))
			return 0;
	}
	return !prevdot;
}

static int
domain_ok_n(const char *s, size_t n, int flags)
{
	size_t	 i, u, lab = 0;
	char	 tmp[SMTP_DOMAIN_MAX + 1];

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	if (s[0] == '[') {
		/* address literal: [1.2.3.4] or [IPv6:...] */
		if (s[n - 1] != ']' || n < 3)
			return 0;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		if (strncasecmp(tmp, "IPv6:", 5) == 0) {
			if (tmp[5] == '\0')
				return 0;
			for (i = 5; tmp[i]; i++)
				if (!isxdigit((unsigned char)tmp[i]) &&
				    tmp[i] != ':' && tmp[i] != '.')
					return 0;
			return 1;
		}
		{
			int	 dots = 0, digits = 0, val = 0;
			for (i = 0; tmp[i]; i++) {
				if (tmp[i] == '.') {
					if (digits == 0)
						return 0;
					dots++;
					digits = val = 0;
				} else if (isdigit((unsigned char)tmp[i])) {
					val = val * 10 + (tmp[i] - '0');
					if (++digits > 3 || val > 255)
						return 0;
				} else
					return 0;
			}
			return dots == 3 && digits > 0;
		}
	}
	for (i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '.') {
			if (lab == 0 || s[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (c >= 0x80) {
			if (!(flags & SMTP_PATH_UTF8) ||
			    (u = utf8_len((const unsigned char *)s + i, n - i)) == 0)
				return 0;
			i += u - 1;
			lab += u;
		} else if (isalnum(c) || c == '_' || (c == '-' && lab > 0))
			lab++;
		else
			return 0;
		if (lab > 63)
			return 0;
	}
	/* a trailing dot is not allowed in SMTP */
	return lab > 0 && s[n - 1] != '-';
}

int
smtp_domain_ok(const char *s, int flags)
{
	return domain_ok_n(s, strlen(s), flags);
}

int
smtp_addr_ok(const char *addr, int flags)
{
	const char	*at;
	size_t		 n = strlen(addr);

	if (n == 0 || n > SMTP_PATH_MAX - 2)
		return 0;
	at = strrchr(addr, '@');
	if (at == NULL)
		return (flags & SMTP_PATH_POSTMASTER) &&
		    strcasecmp(addr, "postmaster") == 0;
	return local_ok(addr, at - addr, flags) &&
	    domain_ok_n(at + 1, n - (at - addr) - 1, flags);
}

int
smtp_addr_split(const char *addr, char *user, size_t userlen, char *domain,
    size_t domainlen)
{
	const char	*at = strrchr(addr, '@');
	size_t		 n;

	n = at ? (size_t)(at - addr) : strlen(addr);
	if (n >= userlen)
		return -1;
	memcpy(user, addr, n);
	user[n] = '\0';
	if (str_lcpy(domain, at ? at + 1 : "", domainlen) >= domainlen)
		return -1;
	str_lower(domain);
	return 0;
}

int
smtp_parse_path(const char *arg, int flags, char *addr, size_t addrlen,
    const char **params_r, char *err, size_t errlen)
{
	const char	*p = arg, *end, *q;
	size_t		 n;

	/* lenient: one space after the colon, as many clients send */
	while (*p == ' ')
		p++;
	if (*p != '<') {
		str_fmt(err, errlen, "path must be enclosed in <>");
		return -1;
	}
	p++;
	/* find the closing '>' outside a quoted string */
	for (end = p; *end && *end != '>'; end++) {
		if (*end == '"') {
			for (end++; *end && *end != '"'; end++)
				if (*end == '\\' && end[1] != '\0')
					end++;
			if (*end == '\0')
				break;
		}
	}
	if (*end != '>') {
		str_fmt(err, errlen, "missing '>'");
		return -1;
	}
	/* source route "@a,@b:" is ignored (RFC 5321 4.1.2, C.) */
	if (*p == '@') {
		q = memchr(p, ':', end - p);
		if (q == NULL) {
			str_fmt(err, errlen, "bad source route");
			return -1;
		}
		p = q + 1;
	}
	n = end - p;
	if (n >= addrlen || n > SMTP_PATH_MAX - 2) {
		str_fmt(err, errlen, "path too long");
		return -1;
	}
	memcpy(addr, p, n);
	addr[n] = '\0';
	if (n == 0) {
		if (!(flags & SMTP_PATH_NULL_OK)) {
			str_fmt(err, errlen, "null path not allowed here");
			return -1;
		}
	} else if (!smtp_addr_ok(addr, flags)) {
		str_fmt(err, errlen, "bad address syntax");
		return -1;
	}
	p = end + 1;
	if (*p != '\0' && *p != ' ') {
		str_fmt(err, errlen, "garbage after path");
		return -1;
	}
	while (*p == ' ')
		p++;
	*params_r = p;
	return 0;
}

/* ------------------------------------------------------------------ */
/* the exit status table */

static const struct smtp_status st_ok = { 250, "2.0.0", "delivered" };
static const struct smtp_status st_temp = { 451, "4.3.0",
	"temporary failure of the delivery agent" };
static const struct exit_entry {
	int			 status;
	struct smtp_status	 st;
} exit_table[] = {
	{ 64, { 554, "5.3.5", "delivery agent usage error" } },		/* EX_USAGE */
	{ 65, { 554, "5.6.0", "message refused by the delivery agent" } },	/* EX_DATAERR */
	{ 66, { 554, "5.3.0", "delivery agent input missing" } },	/* EX_NOINPUT */
	{ 67, { 550, "5.1.1", "no such user" } },			/* EX_NOUSER */
	{ 68, { 550, "5.1.2", "no such host" } },			/* EX_NOHOST */
	{ 69, { 554, "5.2.0", "mailbox unavailable" } },		/* EX_UNAVAILABLE */
	{ 70, { 451, "4.3.0", "internal error in the delivery agent" } },	/* EX_SOFTWARE */
	{ 71, { 451, "4.3.0", "system error in the delivery agent" } },	/* EX_OSERR */
	{ 72, { 451, "4.3.0", "system file missing" } },		/* EX_OSFILE */
	{ 73, { 550, "5.2.0", "cannot create the mailbox file" } },	/* EX_CANTCREAT */
	{ 74, { 451, "4.3.0", "I/O error in the delivery agent" } },	/* EX_IOERR */
	{ 75, { 451, "4.2.0", "mailbox temporarily unavailable" } },	/* EX_TEMPFAIL */
	{ 76, { 554, "5.5.0", "remote protocol error" } },		/* EX_PROTOCOL */
	{ 77, { 550, "5.7.1", "delivery not permitted" } },		/* EX_NOPERM */
	{ 78, { 451, "4.3.5", "delivery agent configuration error" } },	/* EX_CONFIG */
};

const struct smtp_status *
smtp_exit_status(int status)
{
	size_t	 i;

	if (status == 0)
		return &st_ok;
	for (i = 0; i < sizeof(exit_table) / sizeof(exit_table[0]); i++)
		if (exit_table[i].status == status)
			return &exit_table[i].st;
	return &st_temp;	/* signals, -1, anything else: try again */
}

int
smtp_code_permanent(int code)
{
	return code >= 500 && code <= 599;
}

/* ------------------------------------------------------------------ */
/* DATA */

void
smtp_data_init(struct smtp_data *d, unsigned long long max)
{
	d->prev_crlf = 1;	/* the DATA command line ended in CRLF */
	d->flags = 0;
	d->size = 0;
	d->max = max;
}

void
smtp_data_longline(struct smtp_data *d)
{
	d->flags |= SMTP_DATA_LONGLINE;
	d->prev_crlf = 0;
}

int
smtp_data_line(struct smtp_data *d, const char *line, size_t len, int crlf,
    struct buf *out)
{
	int	 prev = d->prev_crlf;

	d->prev_crlf = crlf;
	if (!crlf)
		d->flags |= SMTP_DATA_BARE_LF;
	if (len == 1 && line[0] == '.' && crlf && prev)
		return 1;
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	if (memchr(line, '\r', len) != NULL)
		d->flags |= SMTP_DATA_BARE_CR;
	if (d->flags & (SMTP_DATA_TOOBIG | SMTP_DATA_ERROR))
		return 0;
	if (d->max && (len + 1 > d->max || d->size > d->max - len - 1)) {
		d->flags |= SMTP_DATA_TOOBIG;
		return 0;
	}
	if (buf_add(out, line, len) == -1 || buf_addc(out, '\n') == -1) {
		d->flags |= SMTP_DATA_ERROR;
		return 0;
	}
	d->size += len + 1;
	return 0;
}

int
smtp_data_stuff(struct buf *out, const char *msg, size_t len)
{
	size_t	 i;
	int	 bol = 1;

	for (i = 0; i < len; i++) {
		if (bol && msg[i] == '.' && buf_addc(out, '.') == -1)
			return -1;
		bol = 0;
		if (msg[i] == '\n') {
			if (buf_add(out, "\r\n", 2) == -1)
				return -1;
			bol = 1;
		} else if (msg[i] == '\r')
			continue;
		else if (buf_addc(out, msg[i]) == -1)
			return -1;
	}
	if (!bol && buf_add(out, "\r\n", 2) == -1)
		return -1;
	return buf_add(out, ".\r\n", 3);
}

/* ------------------------------------------------------------------ */
/* the session */

#define R(s, code, esc, ...)	smtp_reply(&(s)->out, code, esc, __VA_ARGS__)

static void
event(struct smtp_session *s, const char *what)
{
	if (s->h.event)
		s->h.event(s->h.arg, s, what);
}

static void
tx_reset(struct smtp_session *s)
{
	if (s->state == SMTP_S_DATA && s->h.data_abort)
		s->h.data_abort(s->h.arg, s);
	s->sender[0] = '\0';
	s->nrcpt = 0;
	s->smtputf8 = 0;
	s->body8bit = 0;
	s->data_failed = 0;
	if (s->state != SMTP_S_GREET)
		s->state = SMTP_S_READY;
}

int
smtp_session_init(struct smtp_session *s, const struct smtp_params *p,
    const struct smtp_hooks *h)
{
	memset(s, 0, sizeof(*s));
	s->p = *p;
	s->h = *h;
	if (s->p.max_rcpt <= 0)
		s->p.max_rcpt = 100;
	if (s->p.max_errors <= 0)
		s->p.max_errors = 20;
	if (s->p.hostname == NULL)
		s->p.hostname = "localhost";
	buf_init(&s->out, 0);
	buf_init(&s->body, 0);
	s->rcpts = calloc(s->p.max_rcpt, sizeof(*s->rcpts));
	if (s->rcpts == NULL)
		return -1;
	s->state = SMTP_S_GREET;
	if (s->p.lmtp)
		R(s, 220, NULL, "%s LMTP ready", s->p.hostname);
	else
		R(s, 220, NULL, "%s ESMTP smtpd-lite", s->p.hostname);
	return 0;
}

void
smtp_session_free(struct smtp_session *s)
{
	if (s->state == SMTP_S_DATA && s->h.data_abort)
		s->h.data_abort(s->h.arg, s);
	buf_free(&s->out);
	buf_free(&s->body);
	free(s->rcpts);
	s->rcpts = NULL;
	explicit_bzero(s->login_user, sizeof(s->login_user));
}

int
smtp_session_in_data(const struct smtp_session *s)
{
	return s->state == SMTP_S_DATA;
}

void
smtp_session_timeout(struct smtp_session *s)
{
	R(s, 421, "4.4.2", "%s timeout, closing", s->p.hostname);
}

void
smtp_session_tls(struct smtp_session *s)
{
	/* RFC 3207 4.2: forget everything learnt before the handshake */
	tx_reset(s);
	s->tls = 1;
	s->state = SMTP_S_GREET;
	s->esmtp = 0;
	s->helo[0] = '\0';
	s->user[0] = '\0';
	event(s, "starttls");
}

static int
auth_allowed(const struct smtp_session *s)
{
	return s->p.auth_offer && s->h.auth != NULL &&
	    (s->tls || s->p.auth_plaintext);
}

static enum smtp_action
count_error(struct smtp_session *s)
{
	if (++s->errors >= s->p.max_errors) {
		R(s, 421, "4.7.0", "%s too many errors, closing", s->p.hostname);
		return SMTP_CLOSE;
	}
	return SMTP_CONTINUE;
}

static enum smtp_action
bad(struct smtp_session *s, int code, const char *esc, const char *text)
{
	R(s, code, esc, "%s", text);
	return count_error(s);
}

static void
ehlo_reply(struct smtp_session *s, const char *verb)
{
	const char	*ext[12];
	char		 size[40];
	int		 n = 0, i;

	(void)verb;
	ext[n++] = "PIPELINING";
	if (s->p.max_size) {
		str_fmt(size, sizeof(size), "SIZE %llu", s->p.max_size);
		ext[n++] = size;
	} else
		ext[n++] = "SIZE";
	ext[n++] = "8BITMIME";
	ext[n++] = "ENHANCEDSTATUSCODES";
	ext[n++] = "SMTPUTF8";
	if (s->p.tls_offer && !s->tls)
		ext[n++] = "STARTTLS";
	if (auth_allowed(s) && s->user[0] == '\0')
		ext[n++] = "AUTH PLAIN LOGIN";
	ext[n++] = "HELP";
	buf_printf(&s->out, "250-%s Hello %s\r\n", s->p.hostname, s->helo);
	for (i = 0; i < n; i++)
		buf_printf(&s->out, "250%c%s\r\n", i == n - 1 ? ' ' : '-', ext[i]);
}

static enum smtp_action
cmd_helo(struct smtp_session *s, const char *verb, const char *arg)
{
	int	 lhlo = strcasecmp(verb, "LHLO") == 0;

	if (s->p.lmtp != lhlo)
		return bad(s, 500, "5.5.1", s->p.lmtp ? "LMTP: use LHLO" :
		    "command unrecognized");
	if (*arg == '\0' || strlen(arg) >= sizeof(s->helo) ||
	    strpbrk(arg, " \t") != NULL)
		return bad(s, 501, "5.5.4", "syntax: EHLO hostname");
	tx_reset(s);
	str_lcpy(s->helo, arg, sizeof(s->helo));
	s->state = SMTP_S_READY;
	if (strcasecmp(verb, "HELO") == 0) {
		s->esmtp = 0;
		R(s, 250, NULL, "%s Hello %s", s->p.hostname, s->helo);
	} else {
		s->esmtp = 1;
		ehlo_reply(s, verb);
	}
	return SMTP_CONTINUE;
}

static int
mail_params(struct smtp_session *s, const char *params, char *err, size_t errlen,
    int *code_r)
{
	char		 tmp[SMTP_LINE_MAX], *p, *tok, *val;
	unsigned long long sz;

	*code_r = 555;
	if (str_lcpy(tmp, params, sizeof(tmp)) >= sizeof(tmp))
		return -1;
	for (p = tmp; (tok = strsep(&p, " ")) != NULL; ) {
		if (*tok == '\0')
			continue;
		if (!s->esmtp) {
			str_fmt(err, errlen, "parameters need EHLO");
			return -1;
		}
		if ((val = strchr(tok, '=')) != NULL)
			*val++ = '\0';
		if (strcasecmp(tok, "SIZE") == 0 && val) {
			if (str_size(val, &sz) == -1 || strspn(val, "0123456789") !=
			    strlen(val)) {
				str_fmt(err, errlen, "bad SIZE value");
				*code_r = 501;
				return -1;
			}
			if (s->p.max_size && sz > s->p.max_size) {
				str_fmt(err, errlen, "message too big (limit %llu)",
				    s->p.max_size);
				*code_r = 552;
				return -1;
			}
		} else if (strcasecmp(tok, "BODY") == 0 && val) {
			if (strcasecmp(val, "8BITMIME") == 0)
				s->body8bit = 1;
			else if (strcasecmp(val, "7BIT") != 0) {
				str_fmt(err, errlen, "unknown BODY type");
				*code_r = 501;
				return -1;
			}
		} else if (strcasecmp(tok, "SMTPUTF8") == 0 && val == NULL)
			s->smtputf8 = 1;
		else if (strcasecmp(tok, "AUTH") == 0 && val)
			;	/* RFC 4954 5: accepted, not trusted */
		else {
			str_fmt(err, errlen, "unsupported parameter");
			return -1;
		}
	}
	return 0;
}

static enum smtp_action
cmd_mail(struct smtp_session *s, const char *arg)
{
	char		 addr[SMTP_PATH_MAX + 1], err[128];
	const char	*params;
	int		 code, flags = SMTP_PATH_NULL_OK;

	if (s->state == SMTP_S_GREET)
		return bad(s, 503, "5.5.1", s->p.lmtp ? "send LHLO first" :
		    "send EHLO first");
	if (s->state != SMTP_S_READY)
		return bad(s, 503, "5.5.1", "nested MAIL command");
	if (s->p.tls_required && !s->tls)
		return bad(s, 530, "5.7.0", "must issue a STARTTLS command first");
	if (s->p.auth_required && s->user[0] == '\0')
		return bad(s, 530, "5.7.0", "authentication required");
	if (strncasecmp(arg, "FROM:", 5) != 0)
		return bad(s, 501, "5.5.4", "syntax: MAIL FROM:<address>");
	/* SMTPUTF8 must be known before the path is checked */
	if (strcasestr(arg, " SMTPUTF8") != NULL)
		flags |= SMTP_PATH_UTF8;
	if (smtp_parse_path(arg + 5, flags, addr, sizeof(addr), &params, err,
	    sizeof(err)) == -1) {
		R(s, 553, "5.1.7", "sender: %s", err);
		return count_error(s);
	}
	s->smtputf8 = s->body8bit = 0;
	if (mail_params(s, params, err, sizeof(err), &code) == -1) {
		R(s, code, code == 552 ? "5.3.4" : code == 501 ? "5.5.4" :
		    "5.5.4", "%s", err);
		s->smtputf8 = s->body8bit = 0;
		return SMTP_CONTINUE;
	}
	if (s->h.mail) {
		int r = s->h.mail(s->h.arg, s, addr, &s->out);
		if (r != 1)
			return SMTP_CONTINUE;
	}
	str_lcpy(s->sender, addr, sizeof(s->sender));
	s->nrcpt = 0;
	s->state = SMTP_S_MAIL;
	R(s, 250, "2.1.0", "sender ok");
	return SMTP_CONTINUE;
}

static enum smtp_action
cmd_rcpt(struct smtp_session *s, const char *arg)
{
	char		 addr[SMTP_PATH_MAX + 1], err[128];
	const char	*params;
	int		 r, flags = SMTP_PATH_POSTMASTER;

	if (s->state != SMTP_S_MAIL && s->state != SMTP_S_RCPT)
		return bad(s, 503, "5.5.1", "need MAIL before RCPT");
	if (strncasecmp(arg, "TO:", 3) != 0)
		return bad(s, 501, "5.5.4", "syntax: RCPT TO:<address>");
	if (s->smtputf8)
		flags |= SMTP_PATH_UTF8;
	if (smtp_parse_path(arg + 3, flags, addr, sizeof(addr), &params, err,
	    sizeof(err)) == -1) {
		R(s, 553, "5.1.3", "recipient: %s", err);
		return count_error(s);
	}
	if (*params != '\0') {
		R(s, 555, "5.5.4", "unsupported parameter");
		return SMTP_CONTINUE;
	}
	if (s->nrcpt >= s->p.max_rcpt) {
		R(s, 452, "4.5.3", "too many recipients");
		return SMTP_CONTINUE;
	}
	r = s->h.rcpt ? s->h.rcpt(s->h.arg, s, addr, &s->out) : 0;
	if (s->h.rcpt == NULL)
		R(s, 550, "5.7.1", "no recipient accepted");
	if (r != 1)
		return SMTP_CONTINUE;
	str_lcpy(s->rcpts[s->nrcpt++], addr, sizeof(s->rcpts[0]));
	s->state = SMTP_S_RCPT;
	R(s, 250, "2.1.5", "recipient ok");
	return SMTP_CONTINUE;
}

static enum smtp_action
cmd_data(struct smtp_session *s, const char *arg)
{
	if (*arg != '\0')
		return bad(s, 501, "5.5.4", "syntax: DATA");
	if (s->state == SMTP_S_MAIL) {
		R(s, 554, "5.5.1", "no valid recipients");
		return SMTP_CONTINUE;
	}
	if (s->state != SMTP_S_RCPT)
		return bad(s, 503, "5.5.1", "need RCPT before DATA");
	if (s->h.data_open && s->h.data_open(s->h.arg, s, &s->out) == -1)
		return SMTP_CONTINUE;
	smtp_data_init(&s->data, s->p.max_size);
	buf_reset(&s->body);
	s->data_failed = 0;
	s->state = SMTP_S_DATA;
	R(s, 354, NULL, "end data with <CR><LF>.<CR><LF>");
	return SMTP_CONTINUE;
}

static void
data_flush(struct smtp_session *s)
{
	if (s->body.len == 0)
		return;
	if (!s->data_failed && s->h.data_write &&
	    s->h.data_write(s->h.arg, s, s->body.data, s->body.len) == -1)
		s->data_failed = 1;
	buf_reset(&s->body);
}

static void
data_reply(struct smtp_session *s, int code, const char *esc, const char *text)
{
	int	 i, n = s->p.lmtp ? s->nrcpt : 1;

	for (i = 0; i < n; i++) {
		if (s->p.lmtp)
			R(s, code, esc, "<%s> %s", s->rcpts[i], text);
		else
			R(s, code, esc, "%s", text);
	}
}

static enum smtp_action
data_end(struct smtp_session *s)
{
	struct buf	 reply;
	char		 id[65] = "";
	int		 i, f = s->data.flags;

	data_flush(s);
	s->msgsize = s->data.size;
	if (f & (SMTP_DATA_TOOBIG | SMTP_DATA_BARE_CR | SMTP_DATA_LONGLINE |
	    SMTP_DATA_ERROR) || s->data_failed) {
		if (s->h.data_abort)
			s->h.data_abort(s->h.arg, s);
		if (f & SMTP_DATA_TOOBIG)
			data_reply(s, 552, "5.3.4", "message too big");
		else if (f & SMTP_DATA_BARE_CR)
			data_reply(s, 554, "5.6.0",
			    "bare CR in message, refused (RFC 5321 2.3.8)");
		else if (f & SMTP_DATA_LONGLINE)
			data_reply(s, 554, "5.6.0", "message line too long");
		else
			data_reply(s, 451, "4.3.0", "local error, try again");
		event(s, "data refused");
		s->state = SMTP_S_READY;
		tx_reset(s);
		return SMTP_CONTINUE;
	}
	buf_init(&reply, 4096);
	if (s->h.data_commit &&
	    s->h.data_commit(s->h.arg, s, id, sizeof(id), &reply) == -1) {
		/* in LMTP, the one reply is repeated per recipient */
		if (s->p.lmtp && reply.len > 0) {
			for (i = 0; i < s->nrcpt; i++)
				buf_add(&s->out, reply.data, reply.len);
		} else if (reply.len > 0)
			buf_add(&s->out, reply.data, reply.len);
		else
			data_reply(s, 451, "4.3.0", "local error, try again");
		buf_free(&reply);
		s->state = SMTP_S_READY;
		tx_reset(s);
		return SMTP_CONTINUE;
	}
	buf_free(&reply);
	str_lcpy(s->msgid, id, sizeof(s->msgid));
	s->nmsg++;
	{
		char	 text[128];
		str_fmt(text, sizeof(text), "message %s accepted", id);
		data_reply(s, 250, "2.0.0", text);
	}
	s->state = SMTP_S_READY;	/* not through tx_reset: no abort */
	tx_reset(s);
	return SMTP_CONTINUE;
}

static void
auth_done(struct smtp_session *s, const char *user, const char *pass)
{
	int	 r;

	if (*user == '\0' || strlen(user) >= sizeof(s->user)) {
		r = 0;
	} else
		r = s->h.auth(s->h.arg, s, user, pass);
	if (r == 1) {
		str_lcpy(s->user, user, sizeof(s->user));
		R(s, 235, "2.7.0", "authentication successful");
		event(s, "auth ok");
	} else if (r == 0) {
		s->auth_failures++;
		s->delay_ms = 1000 * (s->auth_failures < 5 ? s->auth_failures : 5);
		R(s, 535, "5.7.8", "authentication credentials invalid");
		event(s, "auth failed");
	} else {
		R(s, 454, "4.7.0", "temporary authentication failure");
		event(s, "auth error");
	}
	s->state = SMTP_S_READY;
}

/* PLAIN response: [authzid] NUL authcid NUL passwd (RFC 4616 2). */
static void
auth_plain(struct smtp_session *s, const char *b64)
{
	unsigned char	 raw[1024];
	size_t		 n, i, z1 = (size_t)-1, z2 = (size_t)-1;
	const char	*authz, *authc, *pass;

	if (base64_decode(b64, strlen(b64), raw, sizeof(raw), &n, 0) == -1) {
		R(s, 501, "5.5.2", "cannot decode the response");
		s->state = SMTP_S_READY;
		return;
	}
	for (i = 0; i < n; i++) {
		if (raw[i] != '\0')
			continue;
		if (z1 == (size_t)-1)
			z1 = i;
		else if (z2 == (size_t)-1)
			z2 = i;
		else
			z2 = (size_t)-2;
	}
	if (z1 == (size_t)-1 || z2 == (size_t)-1 || z2 == (size_t)-2) {
		explicit_bzero(raw, sizeof(raw));
		R(s, 501, "5.5.2", "malformed PLAIN response");
		s->state = SMTP_S_READY;
		return;
	}
	authz = (const char *)raw;
	authc = (const char *)raw + z1 + 1;
	pass = (const char *)raw + z2 + 1;
	if (*authz != '\0' && strcmp(authz, authc) != 0) {
		/* acting for another user is not supported */
		s->auth_failures++;
		s->delay_ms = 1000;
		R(s, 535, "5.7.8", "authorization identity refused");
		event(s, "auth failed: authzid differs");
		s->state = SMTP_S_READY;
	} else
		auth_done(s, authc, pass);
	explicit_bzero(raw, sizeof(raw));
}

static enum smtp_action
cmd_auth(struct smtp_session *s, const char *arg)
{
	char		 mech[32];
	const char	*sp;
	size_t		 n, len;
	unsigned char	 raw[300];

	if (s->state == SMTP_S_GREET)
		return bad(s, 503, "5.5.1", "send EHLO first");
	if (s->p.tls_required && !s->tls)
		return bad(s, 530, "5.7.0", "must issue a STARTTLS command first");
	if (!s->p.auth_offer || s->h.auth == NULL || !s->esmtp)
		return bad(s, 502, "5.5.1", "AUTH not available");
	if (!s->tls && !s->p.auth_plaintext)
		return bad(s, 538, "5.7.11", "encryption required for AUTH");
	if (s->user[0] != '\0')
		return bad(s, 503, "5.5.1", "already authenticated");
	if (s->state != SMTP_S_READY)
		return bad(s, 503, "5.5.1", "AUTH not allowed in a transaction");
	sp = strchr(arg, ' ');
	n = sp ? (size_t)(sp - arg) : strlen(arg);
	if (n == 0 || n >= sizeof(mech))
		return bad(s, 501, "5.5.4", "syntax: AUTH mechanism");
	memcpy(mech, arg, n);
	mech[n] = '\0';
	sp = sp ? sp + 1 : NULL;
	if (strcasecmp(mech, "PLAIN") == 0) {
		if (sp == NULL) {
			s->state = SMTP_S_AUTH_PLAIN;
			buf_adds(&s->out, "334 \r\n");
		} else if (strcmp(sp, "=") == 0)
			auth_done(s, "", "");
		else
			auth_plain(s, sp);
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		if (sp == NULL) {
			s->state = SMTP_S_AUTH_USER;
			buf_adds(&s->out, "334 VXNlcm5hbWU6\r\n");
		} else {
			if (base64_decode(sp, strlen(sp), raw, sizeof(raw),
			    &len, 0) == -1 || len >= sizeof(s->login_user) ||
			    memchr(raw, '\0', len) != NULL) {
				R(s, 501, "5.5.2", "cannot decode the response");
				return SMTP_CONTINUE;
			}
			memcpy(s->login_user, raw, len + 1);
			s->state = SMTP_S_AUTH_PASS;
			buf_adds(&s->out, "334 UGFzc3dvcmQ6\r\n");
		}
	} else
		R(s, 504, "5.5.4", "mechanism not supported");
	return SMTP_CONTINUE;
}

static enum smtp_action
auth_continue(struct smtp_session *s, const char *line)
{
	unsigned char	 raw[600];
	size_t		 len;

	if (strcmp(line, "*") == 0) {
		explicit_bzero(s->login_user, sizeof(s->login_user));
		s->state = SMTP_S_READY;
		R(s, 501, "5.0.0", "authentication cancelled");
		return SMTP_CONTINUE;
	}
	switch (s->state) {
	case SMTP_S_AUTH_PLAIN:
		auth_plain(s, line);
		break;
	case SMTP_S_AUTH_USER:
		if (base64_decode(line, strlen(line), raw, sizeof(raw), &len,
		    0) == -1 || len >= sizeof(s->login_user) ||
		    memchr(raw, '\0', len) != NULL) {
			s->state = SMTP_S_READY;
			R(s, 501, "5.5.2", "cannot decode the response");
			break;
		}
		memcpy(s->login_user, raw, len + 1);
		s->state = SMTP_S_AUTH_PASS;
		buf_adds(&s->out, "334 UGFzc3dvcmQ6\r\n");
		break;
	case SMTP_S_AUTH_PASS:
		if (base64_decode(line, strlen(line), raw, sizeof(raw), &len,
		    0) == -1 || memchr(raw, '\0', len) != NULL) {
			s->state = SMTP_S_READY;
			R(s, 501, "5.5.2", "cannot decode the response");
		} else
			auth_done(s, s->login_user, (const char *)raw);
		explicit_bzero(s->login_user, sizeof(s->login_user));
		break;
	default:
		break;
	}
	explicit_bzero(raw, sizeof(raw));
	return SMTP_CONTINUE;
}

enum smtp_action
smtp_session_line(struct smtp_session *s, const char *line, size_t len,
    int crlf, int toolong)
{
	char		 verb[16];
	const char	*arg;
	size_t		 n;

	s->delay_ms = 0;
	if (s->state == SMTP_S_DATA) {
		if (toolong) {
			smtp_data_longline(&s->data);
			/* its own end counts for the next line's "." (the
			 * message is refused all the same) */
			s->data.prev_crlf = crlf;
			return SMTP_CONTINUE;
		}
		if (smtp_data_line(&s->data, line, len, crlf, &s->body) == 1)
			return data_end(s);
		if (s->body.len >= 65536)
			data_flush(s);
		return SMTP_CONTINUE;
	}
	if (toolong) {
		if (s->state >= SMTP_S_AUTH_PLAIN)
			s->state = SMTP_S_READY;
		return bad(s, 500, "5.5.2", "line too long");
	}
	if (memchr(line, '\0', len) != NULL)
		return bad(s, 500, "5.5.2", "NUL in command");
	if (s->state >= SMTP_S_AUTH_PLAIN)
		return auth_continue(s, line);
	n = strcspn(line, " ");
	if (n == 0 || n >= sizeof(verb))
		return bad(s, 500, "5.5.1", "command unrecognized");
	memcpy(verb, line, n);
	verb[n] = '\0';
	arg = line + n;
	if (*arg == ' ')
		arg++;

	if (strcasecmp(verb, "EHLO") == 0 || strcasecmp(verb, "HELO") == 0 ||
	    strcasecmp(verb, "LHLO") == 0)
		return cmd_helo(s, verb, arg);
	if (strcasecmp(verb, "MAIL") == 0)
		return cmd_mail(s, arg);
	if (strcasecmp(verb, "RCPT") == 0)
		return cmd_rcpt(s, arg);
	if (strcasecmp(verb, "DATA") == 0)
		return cmd_data(s, arg);
	if (strcasecmp(verb, "RSET") == 0) {
		if (*arg != '\0')
			return bad(s, 501, "5.5.4", "syntax: RSET");
		tx_reset(s);
		R(s, 250, "2.0.0", "reset");
		return SMTP_CONTINUE;
	}
	if (strcasecmp(verb, "NOOP") == 0) {
		R(s, 250, "2.0.0", "ok");
		return SMTP_CONTINUE;
	}
	if (strcasecmp(verb, "QUIT") == 0) {
		R(s, 221, "2.0.0", "%s closing", s->p.hostname);
		return SMTP_CLOSE;
	}
	if (strcasecmp(verb, "VRFY") == 0 || strcasecmp(verb, "EXPN") == 0) {
		R(s, 252, "2.5.0", "cannot verify, but will try delivery");
		return SMTP_CONTINUE;
	}
	if (strcasecmp(verb, "HELP") == 0) {
		R(s, 214, "2.0.0", "see RFC 5321");
		return SMTP_CONTINUE;
	}
	if (strcasecmp(verb, "STARTTLS") == 0) {
		if (*arg != '\0')
			return bad(s, 501, "5.5.4", "syntax: STARTTLS");
		if (!s->p.tls_offer || s->tls)
			return bad(s, 502, "5.5.1", "STARTTLS not available");
		if (s->state != SMTP_S_READY && s->state != SMTP_S_GREET)
			return bad(s, 503, "5.5.1", "STARTTLS in a transaction");
		R(s, 220, "2.0.0", "ready to start TLS");
		return SMTP_STARTTLS;
	}
	if (strcasecmp(verb, "AUTH") == 0)
		return cmd_auth(s, arg);
	if (strcasecmp(verb, "BDAT") == 0)
		return bad(s, 502, "5.5.1", "BDAT: CHUNKING is not offered");
	return bad(s, 500, "5.5.1", "command unrecognized");
}
