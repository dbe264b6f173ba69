#!/bin/sh
# tests/deps.sh install|ensure -- install the Debian packages of deps.txt.
# "ensure" installs only when something is missing, and only as root on a
# system with apt-get; otherwise it says what is missing and goes on.
# Server packages must not start their system daemons (they would take the
# ports the tests use): a policy-rc.d that says no is put in place meanwhile.
set -u
cd "$(dirname "$0")/.." || exit 1
pkgs=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' deps.txt)

missing() {
	for p in $pkgs; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			printf '%s\n' "$p"
	done
}

install() {
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
		echo "deps: cannot install (need root and apt-get); missing: $*" >&2
		return 1
	fi
	had_policy=0
	[ -e /usr/sbin/policy-rc.d ] && had_policy=1
	if [ $had_policy = 0 ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
	fi
	export DEBIAN_FRONTEND=noninteractive
	rc=0
	apt-get update -q || rc=$?
	[ $rc = 0 ] && { apt-get install -y -q --no-install-recommends "$@" || rc=$?; }
	[ $had_policy = 0 ] && rm -f /usr/sbin/policy-rc.d
	# Debian's opensmtpd and dovecot start nothing under policy-rc.d, but
	# make sure no system instance holds a port a test wants.
	for d in opensmtpd dovecot; do
		command -v service >/dev/null 2>&1 && service "$d" stop >/dev/null 2>&1
	done
	return $rc
}

case ${1:-ensure} in
install)
	# shellcheck disable=SC2086
	install $pkgs
	;;
ensure)
	m=$(missing)
	if [ -n "$m" ]; then
		echo "deps: installing missing packages:" $m
		# shellcheck disable=SC2086
		install $m || exit 1
		[ -f config.mk ] && grep -q '^MISSING = *[^ ]' config.mk && ./configure >/dev/null
	fi
	[ -f config.mk ] || ./configure >/dev/null
	if grep -q '^MISSING =.*[a-z]' config.mk; then ./configure >/dev/null; fi
	exit 0
	;;
*) echo "usage: tests/deps.sh install|ensure" >&2; exit 2 ;;
esac
