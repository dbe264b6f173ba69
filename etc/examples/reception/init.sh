#!/bin/sh
# init.sh -- seed 001's volume initializer, run once as root: the Maildir
# and the directory of fetch's state files, both owned by www-data, so that
# fetch never needs root. Does nothing when the Maildir volume is not empty.
set -eu
MAILDIR_VOLUME=${MAILDIR_VOLUME:-/MAILDIR}
IDFILES_VOLUME=${IDFILES_VOLUME:-/IDFILES}
FETCH_USER=${FETCH_USER-www-data}
COURRIEL_BIN=${COURRIEL_BIN:-/usr/local/bin}
mkdir -p "$MAILDIR_VOLUME" "$IDFILES_VOLUME"
if [ -n "$(ls -A "$MAILDIR_VOLUME")" ]; then
	echo "Already initialized"
	exit 0
fi
"$COURRIEL_BIN/maildirmake" "$MAILDIR_VOLUME/Maildir"
mkdir -p "$IDFILES_VOLUME/idfiles"
if [ "$(id -u)" = 0 ] && [ -n "$FETCH_USER" ]; then
	chown -R "$FETCH_USER:" "$IDFILES_VOLUME/idfiles" "$MAILDIR_VOLUME/Maildir"
fi
chmod 700 "$IDFILES_VOLUME/idfiles"
