#!/bin/sh
# setup.sh -- install the small-domain example once, as root: copy the
# configurations and tables into COURRIEL_ETC (/etc/courriel) with their
# paths filled in (and RESOLVER, the relay's DNS server, if given), write
# the senders table from the virtuals, make a certificate if none is there,
# and make a Maildir for every user of the userbase, owned by the virtual
# mail user. Files
# already in COURRIEL_ETC are kept (your edits win); passwords are yours
# to set afterwards with mailpasswd(1).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ETC=${COURRIEL_ETC:-/etc/courriel}
BIN=${COURRIEL_BIN:-/usr/local/bin}
SBIN=${COURRIEL_SBIN:-/usr/local/sbin}
VMAIL=${VMAIL_DIR:-/var/vmail}
VMAIL_UID=${VMAIL_UID:-5000} VMAIL_GID=${VMAIL_GID:-5000}
USERS=${USERS:-alice bob}
RESOLVER=${RESOLVER:-}
[ "$(id -u)" = 0 ] || { VMAIL_UID=$(id -u); VMAIL_GID=$(id -g); }
case "$ETC$BIN$SBIN$VMAIL" in *[!A-Za-z0-9/._-]*) echo "setup: use plain paths" >&2; exit 1 ;; esac
case "$RESOLVER" in *[!0-9A-Fa-f.:[\]]*) echo "setup: RESOLVER is IP or IP:port" >&2; exit 1 ;; esac

mkdir -p "$ETC" "$VMAIL" "$ETC/log"
chmod 755 "$VMAIL"
for f in smtpd-lite.conf imapd.conf lda.conf supervisord.conf domains virtuals; do
	[ -e "$ETC/$f" ] && continue
	res=
	[ -n "$RESOLVER" ] && res="s|^;resolver = .*|resolver = $RESOLVER|"
	sed -e "s|@ETC@|$ETC|g" -e "s|@BIN@|$BIN|g" -e "s|@SBIN@|$SBIN|g" \
		-e "s|@VMAIL@|$VMAIL|g" -e "$res" "$here/$f" > "$ETC/$f"
done
# OpenSMTPD's userbase format: user uid:gid:home
if [ ! -e "$ETC/userbase" ]; then
	for u in $USERS; do
		printf '%s\t%s:%s:%s/%s\n' "$u" "$VMAIL_UID" "$VMAIL_GID" "$VMAIL" "$u"
	done > "$ETC/userbase"
fi
# who may send as what (smtpd-lite's senders): each user gets the
# addresses of the virtuals that deliver to them, shared ones included
if [ ! -e "$ETC/senders" ]; then
	awk 'NR == FNR { if (!/^#/ && NF) user[$1] = 1; next }
	/^#/ || !NF { next }
	{
		for (i = 2; i <= NF; i++) {
			u = $i; gsub(/,/, "", u)
			if (!(u in user)) continue
			if (!(u in addrs)) { order[++n] = u; addrs[u] = $1 }
			else addrs[u] = addrs[u] ", " $1
		}
	}
	END { for (i = 1; i <= n; i++) printf "%s\t%s\n", order[i], addrs[order[i]] }' \
		"$ETC/userbase" "$ETC/virtuals" > "$ETC/senders"
fi
touch "$ETC/passwd"
chmod 600 "$ETC/passwd"
for u in $(awk '!/^#/ && NF { print $1 }' "$ETC/userbase"); do
	if [ ! -d "$VMAIL/$u/Maildir" ]; then
		mkdir -p "$VMAIL/$u"
		"$BIN/maildirmake" "$VMAIL/$u/Maildir"
		[ "$(id -u)" = 0 ] && chown -R "$VMAIL_UID:$VMAIL_GID" "$VMAIL/$u"
		chmod 700 "$VMAIL/$u"
	fi
done
if [ ! -f "$ETC/mail.crt" ]; then
	# a stand-in until a real certificate (seed 002: Let's Encrypt) is there
	openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
		-keyout "$ETC/mail.key" -out "$ETC/mail.crt" \
		-subj "/CN=${MAIL_HOSTNAME:-mail.labomedia.org}" \
		-addext "subjectAltName=DNS:${MAIL_HOSTNAME:-mail.labomedia.org},DNS:localhost,IP:127.0.0.1" 2>/dev/null
	chmod 600 "$ETC/mail.key"
fi
echo "setup: done; now set the passwords:"
for u in $(awk '!/^#/ && NF { print $1 }' "$ETC/userbase"); do
	echo "  $BIN/mailpasswd -s bcrypt -t $ETC/passwd add $u"
done
echo "then: supervisord -n -c $ETC/supervisord.conf"
