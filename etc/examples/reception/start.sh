#!/bin/sh
# start.sh -- seed 001's reception chain under one supervisord: smtpd-lite
# takes mail over LMTP (what Dovecot's LMTP did) into the mailbox of
# dst@dst.test, imapd serves that mailbox (the provider's IMAP server),
# and fetch, as www-data, polls it as a daemon and hands each message to
# lda -M /MAILDIR/Maildir (fetchmail and putmail's job).
#
# In real life the server part is somebody else's; only init.sh and fetch
# (by cron or as a daemon) run on your side. Paths and ports come from the
# environment, with seed 001's defaults.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export CONF_DIR=${CONF_DIR:-$here}
export COURRIEL_BIN=${COURRIEL_BIN:-/usr/local/bin}
export COURRIEL_SBIN=${COURRIEL_SBIN:-/usr/local/sbin}
export SERVER_DIR=${SERVER_DIR:-/var/lib/reception}   # the server's mail, queue, logs
export MAILDIR_VOLUME=${MAILDIR_VOLUME:-/MAILDIR}
export IDFILES_VOLUME=${IDFILES_VOLUME:-/IDFILES}
export LMTP_PORT=${LMTP_PORT:-24} IMAP_PORT=${IMAP_PORT:-143}
export IMAP_HOST=${IMAP_HOST:-localhost}
export IMAP_PASSWORD=${IMAP_PASSWORD:-pass}
export FETCH_INTERVAL=${FETCH_INTERVAL:-60}
export FETCH_USER=${FETCH_USER-www-data}
export DAEMON_USER=${DAEMON_USER:-nobody}
if [ "$(id -u)" = 0 ]; then
	export MAIL_UID=${MAIL_UID:-5000} MAIL_GID=${MAIL_GID:-5000}
	export FETCH_AS="-u $FETCH_USER"
else
	export MAIL_UID=$(id -u) MAIL_GID=$(id -g) FETCH_AS=
fi

# the server side: a certificate for STARTTLS and the mailbox of dst
mkdir -p "$SERVER_DIR/certs" "$SERVER_DIR/log" "$SERVER_DIR/mail"
chmod 755 "$SERVER_DIR" "$SERVER_DIR/certs" "$SERVER_DIR/mail"
if [ ! -f "$SERVER_DIR/certs/server.crt" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
		-keyout "$SERVER_DIR/certs/server.key" \
		-out "$SERVER_DIR/certs/server.crt" -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
	chmod 600 "$SERVER_DIR/certs/server.key"
fi
if [ ! -d "$SERVER_DIR/mail/dst/Maildir" ]; then
	mkdir -p "$SERVER_DIR/mail/dst"
	"$COURRIEL_BIN/maildirmake" "$SERVER_DIR/mail/dst/Maildir"
	[ "$(id -u)" = 0 ] && chown -R "$MAIL_UID:$MAIL_GID" "$SERVER_DIR/mail/dst"
fi

# the client side: seed 001's initializer (idempotent)
sh "$here/init.sh"

exec supervisord -n -c "$CONF_DIR/supervisord.conf"
