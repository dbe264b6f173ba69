# mailpasswd: hashes cross-checked with the real smtpctl and doveadm, table
# editing (atomic, 0600, comments kept, concurrent editors), exit statuses,
# and the terminal path (no echo, asked twice) through a pseudo-terminal.
. "$(dirname "$0")/lib.sh"
MP=$BIN/mailpasswd
PW='c0rrect horse:b@ttery staple'

# doveadm reads /etc/dovecot unless told otherwise: give it an empty config.
mkdir -p "$T/dovecot"
printf 'base_dir = %s/dovecot\nssl = no\n' "$T" > "$T/dovecot.conf"
doveadm_t() { doveadm -c "$T/dovecot.conf" pw -t "$1" -p "$2" >/dev/null 2>&1; }

# status CMD...: runs CMD, prints its exit status (stdout/stderr dropped).
status() { "$@" >/dev/null 2>&1; echo $?; }
is() { # is "what" got want
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1 (got '$2', want '$3')"; fi
}

# --- hashes made by mailpasswd, verified by Dovecot -----------------------
for s in yescrypt bcrypt sha512-crypt sha256-crypt; do
	h=$(printf '%s\n' "$PW" | "$MP" -p -s $s)
	case $s in
	yescrypt) want='{CRYPT}$y$' ;;
	bcrypt) want='{BLF-CRYPT}$2y$' ;;
	sha512-crypt) want='{SHA512-CRYPT}$6$' ;;
	sha256-crypt) want='{SHA256-CRYPT}$5$' ;;
	esac
	case $h in "$want"*) ok "-p -s $s prints $want..." ;;
	*) fail "-p -s $s printed '$h'" ;; esac
	check "doveadm pw -t verifies mailpasswd's $s" doveadm_t "$h" "$PW"
	if doveadm_t "$h" "${PW}x"; then
		fail "doveadm accepted a wrong password for $s"
	else ok "doveadm refuses a wrong password for $s"; fi
done
h=$(printf '%s\n' "$PW" | "$MP")
case $h in '$y$'*) ok "default is bare yescrypt" ;; *) fail "default: '$h'" ;; esac
check "doveadm verifies the bare default as {CRYPT}" doveadm_t "{CRYPT}$h" "$PW"
h2=$(printf '%s\n' "$PW" | "$MP")
[ "$h" != "$h2" ] && ok "two hashes differ (fresh salt)" || fail "same salt twice"
h=$(printf '%s' "$PW" | "$MP" -s SHA512-CRYPT)
case $h in '$6$'*) ok "Dovecot scheme names accepted, last line without newline" ;;
*) fail "SHA512-CRYPT: '$h'" ;; esac
check "doveadm verifies a password piped without newline" doveadm_t "{SHA512-CRYPT}$h" "$PW"
h=$(printf '%s\r\n' "$PW" | "$MP" -p)
check "a CRLF line end is not part of the password" doveadm_t "$h" "$PW"

# --- hashes made by smtpctl and doveadm, checked by mailpasswd ------------
tab=$T/creds
{
	echo "# made by the real programs"
	printf 'smtpctl-arg\t%s\n' "$(smtpctl encrypt "$PW")"
	printf 'smtpctl-stdin %s\n' "$(printf '%s\n' "$PW" | smtpctl encrypt)"
	for s in SHA512-CRYPT BLF-CRYPT SHA256-CRYPT CRYPT; do
		printf 'dove-%s %s\n' "$s" "$(doveadm -c "$T/dovecot.conf" pw -s $s -p "$PW")"
	done
	echo "weak \$1\$abcdefgh\$IQtUouv7y7Q9dRWkQEPCc."
	echo "des abzlUXK5ed5rs"
} > "$tab"
chmod 600 "$tab"
grep -q '^dove-BLF-CRYPT {BLF-CRYPT}\$2' "$tab" && ok "doveadm made a BLF-CRYPT hash" ||
	fail "doveadm BLF-CRYPT: $(grep BLF "$tab")"
for u in smtpctl-arg smtpctl-stdin dove-SHA512-CRYPT dove-BLF-CRYPT \
    dove-SHA256-CRYPT dove-CRYPT; do
	is "check $u's hash, right password" \
	    "$(printf '%s\n' "$PW" | status "$MP" -t "$tab" check $u)" 0
	is "check $u's hash, wrong password exits 1" \
	    "$(printf '%s\n' "${PW}!" | status "$MP" -t "$tab" check $u)" 1
done
msg=$(echo x | "$MP" -t "$tab" check smtpctl-arg 2>&1)
case $msg in *"wrong password"*) ok "mismatch says so: $msg" ;;
*) fail "mismatch message: '$msg'" ;; esac
is "MD5 hash in the table exits 65" \
    "$(printf '%s\n' "$PW" | status "$MP" -t "$tab" check weak)" 65
msg=$(printf '%s\n' "$PW" | "$MP" -t "$tab" check weak 2>&1)
case $msg in *MD5*weak*) ok "weak hash named: $msg" ;; *) fail "weak: '$msg'" ;; esac
msg=$(printf '%s\n' "$PW" | "$MP" -t "$tab" check des 2>&1)
case $msg in *DES*) ok "DES named: $msg" ;; *) fail "DES: '$msg'" ;; esac
is "unknown user exits 67" "$(echo x | status "$MP" -t "$tab" check nosuch)" 67
is "missing table exits 66" "$(echo x | status "$MP" -t "$T/none" check a)" 66
is "file: prefix accepted" \
    "$(printf '%s\n' "$PW" | status "$MP" -t "file:$tab" check smtpctl-arg)" 0

# --- editing ---------------------------------------------------------------
t=$T/passwd
cat > "$t" <<'EOF'
# passwd table for smtpd
   # indented comment

alice	$6$zetMT/5bpaRBieRk$iJh4sOz4w.dgQItd1LSI0jcTTKNqxbRZno7jAcG.pqPYKhhkBhxnKz4olDW0r6bkdDqi9vJyRcAcDqAynONsX.
bob: $6$zetMT/5bpaRBieRk$iJh4sOz4w.dgQItd1LSI0jcTTKNqxbRZno7jAcG.pqPYKhhkBhxnKz4olDW0r6bkdDqi9vJyRcAcDqAynONsX.
carolyn $6$zetMT/5bpaRBieRk$iJh4sOz4w.dgQItd1LSI0jcTTKNqxbRZno7jAcG.pqPYKhhkBhxnKz4olDW0r6bkdDqi9vJyRcAcDqAynONsX.
EOF
printf 'last-line-without-newline $6$x' >> "$t"
chmod 644 "$t"
cp "$t" "$T/orig"
ino=$(stat -c %i "$t")
is "add a new user" "$(echo newpw | status "$MP" -t "$t" add carol)" 0
is "mode forced to 0600" "$(stat -c %a "$t")" 600
[ "$(stat -c %i "$t")" != "$ino" ] && ok "replaced by rename (new inode)" ||
	fail "table rewritten in place"
is "no temporary file left" "$(ls "$T" | grep -c '^passwd\.')" 0
head -c "$(wc -c < "$T/orig")" "$t" | cmp -s - "$T/orig" &&
	ok "every old line kept byte for byte" || fail "old lines changed"
is "newline added before the appended line" "$(sed -n '$p' "$t" | cut -f1)" carol
is "new user checks" "$(echo newpw | status "$MP" -t "$t" check carol)" 0
is "carolyn untouched by carol" "$(grep -c '^carolyn ' "$t")" 1
is "add replaces bob's hash" "$(echo bobpw | status "$MP" -p -s bcrypt -t "$t" add bob)" 0
is "bob has one line" "$(grep -c '^bob' "$t")" 1
grep -q '^bob	{BLF-CRYPT}[$]2y[$]' "$t" && ok "bob's line rewritten with -p -s bcrypt" ||
	fail "bob's line: $(grep '^bob' "$t")"
is "bob's line stays in place" "$(grep -n '^bob' "$t" | cut -d: -f1)" 5
is "bob's new password checks" "$(echo bobpw | status "$MP" -t "$t" check bob)" 0
is "bob's old password no longer" "$(echo pw | status "$MP" -t "$t" check bob)" 1
grep -q '^# passwd table for smtpd$' "$t" && grep -q '^   # indented comment$' "$t" &&
	ok "comments kept" || fail "comments lost"
is "del alice" "$(status "$MP" -t "$t" del alice)" 0
is "alice gone" "$(grep -c '^alice' "$t")" 0
is "del of a missing user exits 67" "$(status "$MP" -t "$t" del alice)" 67
msg=$("$MP" -t "$t" del alice 2>&1)
case $msg in *alice*"no such user"*) ok "del missing says: $msg" ;;
*) fail "del missing: '$msg'" ;; esac
is "del on a missing table exits 66" "$(status "$MP" -t "$T/nofile" del x)" 66
cp "$t" "$T/before"
is "empty password refused" "$(echo | status "$MP" -t "$t" add dave)" 65
msg=$(echo | "$MP" -t "$t" add dave 2>&1)
case $msg in *empty*) ok "empty password message: $msg" ;; *) fail "empty: '$msg'" ;; esac
is "no password at all refused" "$(status "$MP" -t "$t" add dave </dev/null)" 65
cmp -s "$t" "$T/before" && ok "refused add leaves the table alone" ||
	fail "table changed by a refused add"
is "password on the command line is a usage error" "$(status "$MP" secret)" 64
is "unknown scheme exits 64" "$(echo x | status "$MP" -s md5-crypt)" 64
is "unknown operation exits 64" "$(echo x | status "$MP" -t "$t" list bob)" 64
is "user name with white space refused" "$(echo x | status "$MP" -t "$t" add 'a b')" 64
is "-s with del refused" "$(status "$MP" -s bcrypt -t "$t" del bob)" 64
long=$(head -c 600 /dev/zero | tr '\0' a)
is "over-long password refused" "$(echo "$long" | status "$MP")" 65

# A new table is created 0600; the owner of an existing one is kept.
is "add creates a missing table" "$(echo pw | status "$MP" -t "$T/new" add u)" 0
is "new table is 0600" "$(stat -c %a "$T/new")" 600
if [ "$(id -u)" = 0 ]; then
	chown 5001:5002 "$t"
	echo pw | "$MP" -t "$t" add erin
	is "owner kept across add (as root)" "$(stat -c %u:%g "$t")" 5001:5002
else
	ok "owner kept: skipped, not root"
fi
# A symlinked table: the file it points to is replaced, the link stays.
ln -s "$T/new" "$T/link"
echo pw2 | "$MP" -t "$T/link" add v
[ -L "$T/link" ] && grep -q '^v	' "$T/new" && ok "symlink followed and kept" ||
	fail "symlink replaced"

# Concurrent editors: flock serializes them; nothing is lost.
: > "$T/conc"
i=0; pids=
while [ $i -lt 16 ]; do
	echo "pw$i" | "$MP" -s sha256-crypt -t "$T/conc" add "user$i" & pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do wait "$p"; done
is "16 concurrent adds all present" "$(grep -c '^user' "$T/conc")" 16
is "check after concurrent adds" "$(echo pw7 | status "$MP" -t "$T/conc" check user7)" 0

# --- the terminal: no echo, asked twice --------------------------------------
python3 - "$MP" "$T/tty" <<'PY'
import os, pty, sys, select, time
mp, tab = sys.argv[1], sys.argv[2]

def run(args, answers):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(mp, [mp] + args)
    out = b""
    end = time.time() + 10
    for a in answers:
        while not out.rstrip().endswith(b":") and time.time() < end:
            r, _, _ = select.select([fd], [], [], 0.5)
            if r:
                out += os.read(fd, 1024)
        out += b"|"     # mark where we answered
        os.write(fd, a.encode() + b"\n")
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            d = os.read(fd, 1024)
        except OSError:
            break
        if not d:
            break
        out += d
    p, st = os.waitpid(pid, os.WNOHANG)
    while p == 0 and time.time() < end + 5:
        time.sleep(0.01)    # the pty said EOF; the exit is on its way
        p, st = os.waitpid(pid, os.WNOHANG)
    if p == 0:
        os.kill(pid, 9)
        print("not ok - terminal: %s hung: %r" % (args, out))
        _, st = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(st), out.decode(errors="replace")

def t(cond, what):
    print(("ok - " if cond else "not ok - ") + what)

rc, out = run([], ["tty secret", "tty secret"])
t(rc == 0, "terminal: hash made after two entries (exit %d)" % rc)
t("Password:" in out and "Again:" in out, "terminal: asked twice: %r" % out)
t("tty secret" not in out, "terminal: password not echoed")
t("$y$" in out, "terminal: hash printed")
rc, out = run([], ["one", "two"])
t(rc == 65, "terminal: entries that differ exit 65 (%d)" % rc)
t("differ" in out, "terminal: says they differ")
rc, out = run(["-t", tab, "add", "tty"], ["tty secret", "tty secret"])
t(rc == 0, "terminal: add")
rc, out = run(["-t", tab, "check", "tty"], ["tty secret"])
t(rc == 0, "terminal: check asks once and matches")
t(out.count(":") == 1, "terminal: check asked only once: %r" % out)
PY
finish
