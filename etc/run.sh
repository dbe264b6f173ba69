#!/bin/sh
# etc/run.sh BUILD -- the courriel mail lab: what `make run` calls.
#
# The first time, it makes a demo environment under RUN_DIR (./run): a
# throwaway CA and a server certificate for localhost and 127.0.0.1, the
# Maildirs of two IMAP users and of a `catchall` account, and the queue.
# At every start it writes the configurations and the password tables from
# the environment (seed 000's SMTP_USER, SMTP_PASSWD, IMAP_USER1,
# IMAP_USER2, IMAP_PASSWD), prints how to connect, and runs supervisord in
# the foreground with smtpd-lite and imapd. Ctrl-C (or a closed terminal)
# stops everything; the next run keeps the certificates, the mail and the queue.
#
# Mail for USER@MAIL_DOMAIN goes to RUN_DIR/mail/USER/Maildir; mail that the
# authenticated SMTP user sends anywhere else is captured into the catchall
# account, never relayed; anyone else's mail to another domain is refused.
#
# As root, the daemons drop to DAEMON_USER (nobody) and the mail belongs to
# MAIL_UID:MAIL_GID (5000:5000, numeric: no system user is created). As
# another user, everything runs as that user.
#
# Environment (defaults): RUN_DIR (./run), MAIL_DOMAIN (example.test),
# SMTP_USER (smtpuser), SMTP_PASSWD (smtppass), IMAP_USER1 (imapuser1),
# IMAP_USER2 (imapuser2), IMAP_PASSWD (imappass), LISTEN_ADDRESS
# (127.0.0.1), SMTP_PORT (2525), SUBMISSION_PORT (2587), SMTPS_PORT (2465),
# LMTP_PORT (2424), IMAP_PORT (1143), IMAPS_PORT (1993), MAIL_UID, MAIL_GID,
# DAEMON_USER, FETCH_INTERVAL (60, when RUN_DIR/etc/fetch.conf exists).
set -eu
umask 022
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$top/$build ;; esac
BIN=$build/bin

die() { echo "run: $*" >&2; exit 1; }

for p in smtpd-lite imapd lda mailpasswd maildirmake; do
	[ -x "$BIN/$p" ] || die "$BIN/$p is missing: run make first"
done
command -v supervisord >/dev/null || die "supervisord is missing: apt-get install supervisor (make deps)"
command -v openssl >/dev/null || die "openssl is missing: apt-get install openssl"

RUN_DIR=${RUN_DIR:-$top/run}
MAIL_DOMAIN=${MAIL_DOMAIN:-example.test}
SMTP_USER=${SMTP_USER:-smtpuser}
SMTP_PASSWD=${SMTP_PASSWD:-smtppass}
IMAP_USER1=${IMAP_USER1:-imapuser1}
IMAP_USER2=${IMAP_USER2:-imapuser2}
IMAP_PASSWD=${IMAP_PASSWD:-imappass}
LISTEN_ADDRESS=${LISTEN_ADDRESS:-127.0.0.1}
SMTP_PORT=${SMTP_PORT:-2525}
SUBMISSION_PORT=${SUBMISSION_PORT:-2587}
SMTPS_PORT=${SMTPS_PORT:-2465}
LMTP_PORT=${LMTP_PORT:-2424}
IMAP_PORT=${IMAP_PORT:-1143}
IMAPS_PORT=${IMAPS_PORT:-1993}
CATCHALL=catchall

# Names end up in tables, paths and URLs: keep them plain.
for v in SMTP_USER IMAP_USER1 IMAP_USER2; do
	eval "x=\$$v"
	case $x in
	''|-*|.*|*[!A-Za-z0-9._-]*) die "$v='$x': use letters, digits, '.', '_', '-'" ;;
	esac
done
case $MAIL_DOMAIN in
''|-*|.*|*[!A-Za-z0-9.-]*) die "MAIL_DOMAIN='$MAIL_DOMAIN' is not a domain name" ;;
esac
for v in SMTP_PORT SUBMISSION_PORT SMTPS_PORT LMTP_PORT IMAP_PORT IMAPS_PORT; do
	eval "x=\$$v"
	case $x in ''|*[!0-9]*) die "$v='$x' is not a port number" ;; esac
	[ "$x" -ge 1 ] && [ "$x" -le 65535 ] || die "$v=$x is out of range"
done
for v in SMTP_PASSWD IMAP_PASSWD; do
	eval "x=\$$v"
	[ -n "$x" ] || die "$v is empty"
	case $x in *"'"*) die "$v: a ' cannot go into the client files" ;; esac
done
[ "$IMAP_USER1" != "$IMAP_USER2" ] || die "IMAP_USER1 and IMAP_USER2 are the same"
for u in "$IMAP_USER1" "$IMAP_USER2"; do
	[ "$u" != $CATCHALL ] || die "$CATCHALL is the capture account's name"
done

mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
case $RUN_DIR in *[!A-Za-z0-9/._+-]*) die "RUN_DIR=$RUN_DIR: use a path without blanks or special characters" ;; esac
ETC=$RUN_DIR/etc CERTS=$RUN_DIR/certs MAIL=$RUN_DIR/mail LOG=$RUN_DIR/log
CLIENTS=$RUN_DIR/clients

if [ -S "$RUN_DIR/supervisor.sock" ] &&
	supervisorctl -c "$RUN_DIR/supervisord.conf" pid >/dev/null 2>&1; then
	die "a mail lab already runs in $RUN_DIR (supervisorctl -c $RUN_DIR/supervisord.conf shutdown)"
fi
if command -v ss >/dev/null; then
	for p in $SMTP_PORT $SUBMISSION_PORT $SMTPS_PORT $LMTP_PORT $IMAP_PORT $IMAPS_PORT; do
		if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
			die "port $p is taken (set SMTP_PORT, SUBMISSION_PORT, SMTPS_PORT, LMTP_PORT, IMAP_PORT or IMAPS_PORT)"
		fi
	done
fi

if [ "$(id -u)" = 0 ]; then
	ROOT=1
	MAIL_UID=${MAIL_UID:-5000}
	MAIL_GID=${MAIL_GID:-$MAIL_UID}
	DAEMON_USER=${DAEMON_USER:-nobody}
	[ "$MAIL_UID" != 0 ] && [ "$MAIL_GID" != 0 ] || die "MAIL_UID and MAIL_GID must not be 0: mail is never written as root"
	id "$DAEMON_USER" >/dev/null 2>&1 || die "DAEMON_USER $DAEMON_USER does not exist"
else
	ROOT=0
	MAIL_UID=$(id -u)
	MAIL_GID=$(id -g)
	DAEMON_USER=$(id -un)
fi

mkdir -p "$ETC" "$CERTS" "$MAIL" "$LOG" "$CLIENTS"
chmod 755 "$RUN_DIR" "$MAIL"
chmod 700 "$ETC" "$CLIENTS"

# The unprivileged users must reach the mail and the queue: a RUN_DIR
# under a private home directory would make every delivery fail.
if [ $ROOT = 1 ] && command -v setpriv >/dev/null; then
	for who in "$MAIL_UID:$MAIL_GID" "$(id -u "$DAEMON_USER"):$(id -g "$DAEMON_USER")"; do
		setpriv --reuid="${who%:*}" --regid="${who#*:}" --clear-groups \
			test -x "$MAIL" ||
			die "uid ${who%:*} cannot reach $MAIL: choose a RUN_DIR whose parents others may enter (RUN_DIR=/var/tmp/courriel-run)"
	done
fi

# A throwaway CA and a server certificate (once).
if [ ! -f "$CERTS/server.crt" ] || [ ! -f "$CERTS/server.key" ]; then
	echo "run: making a throwaway CA and a server certificate in $CERTS"
	(
		cd "$CERTS"
		umask 077
		[ -f ca.key ] || openssl req -x509 -newkey rsa:2048 -nodes \
			-keyout ca.key -out ca.crt -days 3650 \
			-subj "/CN=courriel mail lab CA" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -keyout server.key.new \
			-out server.csr -subj "/CN=localhost" 2>/dev/null
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:%s,DNS:mail.%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
			"$MAIL_DOMAIN" "$MAIL_DOMAIN" > server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key \
			-CAcreateserial -days 3650 -out server.crt \
			-extfile server.ext 2>/dev/null
		mv server.key.new server.key
		rm -f server.csr server.ext
		chmod 644 ca.crt server.crt
		chmod 600 ca.key server.key
	) || die "could not make the certificates"
fi

# Maildirs (once); as root they belong to MAIL_UID:MAIL_GID.
for u in "$IMAP_USER1" "$IMAP_USER2" $CATCHALL; do
	if [ ! -d "$MAIL/$u/Maildir/new" ]; then
		mkdir -p "$MAIL/$u"
		"$BIN/maildirmake" "$MAIL/$u/Maildir"
		[ $ROOT = 1 ] && chown -R "$MAIL_UID:$MAIL_GID" "$MAIL/$u"
		chmod 700 "$MAIL/$u"
	fi
done

# Writes stdin to $1 through a temp file and a rename, mode $2.
put() {
	cat > "$1.tmp"
	chmod "$2" "$1.tmp"
	mv -f "$1.tmp" "$1"
}
pwhash() { printf '%s\n' "$1" | "$BIN/mailpasswd" || die "mailpasswd failed"; }

# Tables and configurations: regenerated at every start from the
# environment, as seed 000's smtpd.sh wrote its tables.
h=$(pwhash "$SMTP_PASSWD")
printf '%s\t%s\n' "$SMTP_USER" "$h" | put "$ETC/smtp_passwd" 600
h=$(pwhash "$IMAP_PASSWD")
printf '%s\t%s\n' "$IMAP_USER1" "$h" "$IMAP_USER2" "$h" "$CATCHALL" "$h" |
	put "$ETC/imap_passwd" 600
for u in "$IMAP_USER1" "$IMAP_USER2" $CATCHALL; do
	printf '%s\t%s:%s:%s\n' "$u" "$MAIL_UID" "$MAIL_GID" "$MAIL/$u"
done | put "$ETC/userbase" 644

put "$ETC/lda.conf" 644 <<EOF
; generated by etc/run.sh at each start
[users]
userbase = file:$ETC/userbase
maildir = Maildir

[lda]
create_folders = yes
EOF

session_user=
[ $ROOT = 1 ] && session_user="user = $DAEMON_USER"
LDA_CMD="$BIN/lda -c $ETC/lda.conf -f %{sender} -a %{rcpt} -d %{user}"
put "$ETC/smtpd-lite.conf" 644 <<EOF
; generated by etc/run.sh at each start: change the environment, not this
hostname = ${MAIL_HOSTNAME:-mail.$MAIL_DOMAIN}
$session_user
queue = $RUN_DIR/queue
lda = $BIN/lda
retry_min = 10s
retry_max = 5m

; port 25's role: STARTTLS offered; AUTH offered after it, not required
[listener smtp]
address = $LISTEN_ADDRESS
port = $SMTP_PORT
tls = starttls
cert = $CERTS/server.crt
key = $CERTS/server.key
auth = file:$ETC/smtp_passwd
auth_required = no
tag = in

; submission: STARTTLS and AUTH required
[listener submission]
address = $LISTEN_ADDRESS
port = $SUBMISSION_PORT
tls = require
cert = $CERTS/server.crt
key = $CERTS/server.key
auth = file:$ETC/smtp_passwd
auth_required = yes
tag = out

; submission over implicit TLS (RFC 8314)
[listener smtps]
address = $LISTEN_ADDRESS
port = $SMTPS_PORT
tls = implicit
cert = $CERTS/server.crt
key = $CERTS/server.key
auth = file:$ETC/smtp_passwd
auth_required = yes
tag = out

[listener lmtp]
address = $LISTEN_ADDRESS
port = $LMTP_PORT
lmtp = yes
tag = lmtp

; mail for the users of $MAIL_DOMAIN, from anyone
[rule local]
rcpt_domain = $MAIL_DOMAIN
userbase = file:$ETC/userbase
action = mda
mda = $LDA_CMD

; the authenticated user's mail to any other domain: captured, never relayed
[rule capture]
from = auth
virtual = { @ = $CATCHALL }
action = mda
mda = $LDA_CMD
EOF

imapd_user=
[ $ROOT = 1 ] && imapd_user="user = $DAEMON_USER"
put "$ETC/imapd.conf" 644 <<EOF
; generated by etc/run.sh at each start: change the environment, not this
listen = $LISTEN_ADDRESS:$IMAP_PORT
listen_tls = $LISTEN_ADDRESS:$IMAPS_PORT
cert = $CERTS/server.crt
key = $CERTS/server.key
passwd = file:$ETC/imap_passwd
$imapd_user

[users]
userbase = file:$ETC/userbase
EOF

out=$("$BIN/smtpd-lite" -n -c "$ETC/smtpd-lite.conf" 2>&1) || die "$out"
out=$("$BIN/imapd" -n -c "$ETC/imapd.conf" 2>&1) || die "$out"

# fetch joins when RUN_DIR/etc/fetch.conf exists (fetch.conf(5)). It runs
# as the mail user, who cannot read RUN_DIR/etc: it gets its own copy and
# its state under RUN_DIR/fetch.
fetch_block=
if [ -f "$ETC/fetch.conf" ] && [ -x "$BIN/fetch" ]; then
	fu=
	[ $ROOT = 1 ] && fu=" -u $MAIL_UID:$MAIL_GID"
	mkdir -p "$RUN_DIR/fetch/state"
	put "$RUN_DIR/fetch/fetch.conf" 600 < "$ETC/fetch.conf"
	[ $ROOT = 1 ] && chown -R "$MAIL_UID:$MAIL_GID" "$RUN_DIR/fetch"
	chmod 700 "$RUN_DIR/fetch"
	fetch_block="
[program:fetch]
command = $BIN/fetch -F$fu -d ${FETCH_INTERVAL:-60} -c $RUN_DIR/fetch/fetch.conf
environment = HOME=\"$RUN_DIR/fetch\",XDG_STATE_HOME=\"$RUN_DIR/fetch/state\"
autorestart = true
stopsignal = TERM
stopasgroup = true
killasgroup = true
redirect_stderr = true
stdout_logfile = $LOG/fetch.log
stdout_logfile_maxbytes = 10MB
stdout_logfile_backups = 3"
fi
suser=
[ $ROOT = 1 ] && suser="user = root"
esc() { printf '%s' "$1" | sed 's/[|&\\]/\\&/g'; }
{
	while IFS= read -r line; do
		case $line in
		@FETCH@) printf '%s\n' "$fetch_block" ;;
		@SUPERVISOR_USER@) printf '%s\n' "$suser" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done < "$top/etc/supervisord.conf"
} | sed -e "s|@RUN_DIR@|$(esc "$RUN_DIR")|g" -e "s|@BIN@|$(esc "$BIN")|g" \
	-e "s|@CTL_PASSWORD@|$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')|g" |
	put "$RUN_DIR/supervisord.conf" 600

# Ready-made client files.
host=localhost
for u in "$IMAP_USER1" "$IMAP_USER2" $CATCHALL; do
	put "$CLIENTS/muttrc.$u" 600 <<EOF
# mutt -n -F $CLIENTS/muttrc.$u
set smtp_url = 'smtp://$SMTP_USER@$host:$SUBMISSION_PORT'
set smtp_pass = '$SMTP_PASSWD'
set imap_user = '$u'
set imap_pass = '$IMAP_PASSWD'
set folder = 'imaps://$u@$host:$IMAPS_PORT/'
set spoolfile = '+INBOX'
set record = '+Sent'
set postponed = '+Drafts'
set mail_check = 60
set realname = '$u'
set from = '$u@$MAIL_DOMAIN'
set ssl_force_tls = yes
set ssl_starttls = yes
set ssl_ca_certificates_file = '$CERTS/ca.crt'
EOF
done
put "$CLIENTS/msmtprc" 600 <<EOF
# msmtp -C $CLIENTS/msmtprc RECIPIENT < message
defaults
tls on
tls_starttls on
tls_trust_file $CERTS/ca.crt
auth on

account lab
host $host
port $SUBMISSION_PORT
user $SMTP_USER
password $SMTP_PASSWD
from $SMTP_USER@$MAIL_DOMAIN

account lmtp
host $host
port $LMTP_PORT
protocol lmtp
tls off
auth off
from lmtp@$MAIL_DOMAIN

account default : lab
EOF

cat <<EOF

courriel mail lab in $RUN_DIR (mail domain $MAIL_DOMAIN)
  SMTP $LISTEN_ADDRESS:$SMTP_PORT (STARTTLS)   submission $SUBMISSION_PORT (STARTTLS + AUTH)   SMTPS $SMTPS_PORT   LMTP $LMTP_PORT
  IMAP $LISTEN_ADDRESS:$IMAP_PORT (STARTTLS)   IMAPS $IMAPS_PORT
  SMTP account:  $SMTP_USER / $SMTP_PASSWD
  IMAP accounts: $IMAP_USER1, $IMAP_USER2, $CATCHALL (mail sent to other domains) / $IMAP_PASSWD
  CA certificate: $CERTS/ca.crt
  Mail: $MAIL/USER/Maildir   Logs: $LOG/   Queue: $RUN_DIR/queue

Send (captured into $CATCHALL, never relayed):
  swaks --server localhost:$SUBMISSION_PORT -tls --tls-ca-path $CERTS/ca.crt \\
        -au $SMTP_USER -ap '$SMTP_PASSWD' --from app@$MAIL_DOMAIN --to customer@example.com
  printf 'Subject: hello\\n\\nhi\\n' | msmtp -C $CLIENTS/msmtprc $IMAP_USER1@$MAIL_DOMAIN
Read:
  mutt -n -F $CLIENTS/muttrc.$IMAP_USER1        (or muttrc.$IMAP_USER2, muttrc.$CATCHALL)
  Thunderbird: IMAP localhost:$IMAPS_PORT SSL/TLS, SMTP localhost:$SUBMISSION_PORT STARTTLS,
  normal password; import $CERTS/ca.crt as a CA first.
Control: supervisorctl -c $RUN_DIR/supervisord.conf status|restart imapd|tail -f smtpd-lite
Ctrl-C stops everything; the next 'make run' keeps certificates, mail and queue.

EOF
[ $ROOT = 1 ] && echo "(running as root: sessions as $DAEMON_USER, mail as uid $MAIL_UID:$MAIL_GID)"
# supervisord takes SIGHUP for "reload": a closed terminal would leave the
# lab running without it. So this shell stays, and turns HUP (and INT,
# TERM) into supervisord's clean stop; Ctrl-C reaches both.
supervisord -n -c "$RUN_DIR/supervisord.conf" &
sup=$!
trap 'kill -TERM "$sup" 2>/dev/null' HUP INT TERM
while :; do
	rc=0
	wait "$sup" || rc=$?
	kill -0 "$sup" 2>/dev/null || break
done
# a wait cut short by a signal says 128+n: the real status comes now
if [ "$rc" -gt 128 ]; then
	r=0
	wait "$sup" 2>/dev/null || r=$?
	[ "$r" = 127 ] || rc=$r
fi
exit "$rc"
