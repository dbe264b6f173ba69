/*
 * userdb -- where a user's mail lives and with which uid/gid, shared by
 * lda, imapd and smtpd-lite. Configured in a `[users]` section that every
 * program reads the same way (courriel.conf(5)):
 *
 *   [users]
 *   userbase  = file:/etc/courriel/userbase  ; "user  uid:gid:home" lines
 *                                            ; (OpenSMTPD's userbase format)
 *   home      = /var/mail/%Lu                ; template for users not in the
 *                                            ; userbase: %u user, %n local
 *                                            ; part, %d domain, %L lowercases
 *                                            ; the next expansion
 *   mail_user = vmail                        ; uid:gid for template users
 *                                            ; (name or uid:gid)
 *   maildir   = Maildir                      ; relative to home (default), or
 *                                            ; an absolute template
 *   users     = alice, bob                   ; optional table: only these
 *                                            ; template users exist
 *
 * A user absent from the userbase is unknown unless a home template is
 * set. User names are checked against a strict character set before any
 * lookup: [A-Za-z0-9._+-] and one '@' with a domain, no leading '.',
 * no "..", at most 255 bytes.
 */
#ifndef USERDB_H
#define USERDB_H

#include <stddef.h>
#include <sys/types.h>

struct conf;
struct userdb;

struct user {
	char	name[256];	/* as looked up */
	uid_t	uid;
	gid_t	gid;
	char	home[4096];
	char	maildir[4096];	/* absolute path of the Maildir */
};

/* Reads the [users] section (absent: users are the system's passwd
 * entries, home from getpwnam, Maildir under it). 0, or -1 with err
 * naming file:line. */
int	userdb_open(struct userdb **, const struct conf *, char *err, size_t errlen);
void	userdb_close(struct userdb *);
/* 1 when name passes the strict character set. */
int	userdb_name_ok(const char *name);
/* 1 found (u filled), 0 unknown user, -1 error (err). */
int	userdb_lookup(struct userdb *, const char *name, struct user *u, char *err,
	    size_t errlen);

#endif
