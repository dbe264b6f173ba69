#!/bin/sh
# launcher.sh -- the container's entry point (seed 000's launcher.sh and
# smtpd.sh in one): write the SMTP password table from the environment,
# make a certificate when none was mounted, make the IMAP users' Maildirs
# as vmail, then become supervisord, which runs smtpd-lite and imapd.
#
# Everything comes from the environment (docker run -e, Kubernetes env or
# secrets): SMTP_USER, SMTP_PASSWD, IMAP_USER1, IMAP_USER2, IMAP_PASSWD.
# The paths have the container's defaults and may be moved (the tests
# run this script outside a container that way).
set -eu
: "${SMTP_USER:?SMTP_USER is not set}" "${SMTP_PASSWD:?SMTP_PASSWD is not set}"
: "${IMAP_USER1:?IMAP_USER1 is not set}" "${IMAP_USER2:?IMAP_USER2 is not set}"
: "${IMAP_PASSWD:?IMAP_PASSWD is not set}"
export KEYS=${KEYS:-/KEYS}                      # certificate, key, tables
export MAIL_ROOT=${MAIL_ROOT:-/var/mail}        # MAIL_ROOT/user/Maildir
export SPOOL=${SPOOL:-/var/spool/smtpd-lite}    # the queue
export LOG_DIR=${LOG_DIR:-/var/log/courriel}
export CONF_DIR=${CONF_DIR:-/etc/courriel}
export COURRIEL_SBIN=${COURRIEL_SBIN:-/usr/local/sbin}
export COURRIEL_BIN=${COURRIEL_BIN:-/usr/local/bin}
export VMAIL_UID=${VMAIL_UID:-1000} VMAIL_GID=${VMAIL_GID:-1000}
export DAEMON_USER=${DAEMON_USER:-nobody}
export SMTP_PORT=${SMTP_PORT:-25} IMAP_PORT=${IMAP_PORT:-143}
export IMAPS_PORT=${IMAPS_PORT:-993} LISTEN_ADDRESS=${LISTEN_ADDRESS:-0.0.0.0}

mkdir -p "$KEYS" "$MAIL_ROOT" "$LOG_DIR"
if [ ! -f "$KEYS/server.crt" ]; then
	# seed 000 copied a self-signed certificate with these SANs
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
		-keyout "$KEYS/server.key" -out "$KEYS/server.crt" \
		-subj /CN=localhost \
		-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
fi
chmod 400 "$KEYS/server.key"

# smtpctl encrypt's job, done by mailpasswd; the file is replaced whole
h=$(printf '%s\n' "$SMTP_PASSWD" | "$COURRIEL_BIN/mailpasswd")
printf '%s\t%s\n' "$SMTP_USER" "$h" > "$KEYS/smtp_passwd.tmp"
chmod 600 "$KEYS/smtp_passwd.tmp"
mv -f "$KEYS/smtp_passwd.tmp" "$KEYS/smtp_passwd"

for u in "$IMAP_USER1" "$IMAP_USER2"; do
	u=$(printf '%s' "$u" | tr '[:upper:]' '[:lower:]')   # Dovecot's %Lu
	if [ ! -d "$MAIL_ROOT/$u/Maildir" ]; then
		mkdir -p "$MAIL_ROOT/$u"
		"$COURRIEL_BIN/maildirmake" "$MAIL_ROOT/$u/Maildir"
		[ "$(id -u)" = 0 ] && chown -R "$VMAIL_UID:$VMAIL_GID" "$MAIL_ROOT/$u"
	fi
done

exec supervisord -n -c "$CONF_DIR/supervisord.conf"
