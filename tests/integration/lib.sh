# tests/integration/lib.sh -- sourced by the shell tests.
# Gives: ok/fail/check, a scratch dir $T removed at exit (with the
# processes started through `bg`), free_port, wait_port, mkcerts.
# COURRIEL_BIN points at the built programs (tests/run sets it).
set -u
: "${COURRIEL_TOP:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${COURRIEL_BIN:=$COURRIEL_TOP/build/bin}"
BIN=$COURRIEL_BIN
T=$(mktemp -d /tmp/courriel-test.XXXXXX)
chmod 755 "$T"
_pids=
_nfail=0

cleanup() {
	for p in $_pids; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
	for p in $_pids; do kill -KILL -- "-$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ok() { echo "ok - $*"; }
fail() { echo "not ok - $*"; _nfail=$((_nfail + 1)); }
# check "what" command...: ok when the command succeeds
check() { what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }
# Exit status of the test: non-zero when something failed.
finish() { [ "$_nfail" = 0 ]; exit $?; }

# Starts a command in the background in its own process group; killed at exit.
bg() { setsid "$@" & _pids="$_pids $!"; LAST_PID=$!; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: waits until something accepts on 127.0.0.1:PORT.
wait_port() {
	python3 - "$1" "${2:-10}" <<'PY'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.02)
sys.exit(1)
PY
}

# mkcerts DIR: a CA (DIR/ca.crt) and server certificates for localhost and
# 127.0.0.1: RSA (DIR/server.crt, server.key) and ECDSA (DIR/ecdsa.crt,
# ecdsa.key); keys mode 0600.
mkcerts() {
	sh "$COURRIEL_TOP/tests/integration/mkcerts.sh" "$1"
}
