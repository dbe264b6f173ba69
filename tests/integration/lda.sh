#!/bin/sh
# lda: every exit status, durability (kill -9, full file system), ,S=/,W=,
# userbase and template lookups, -M, -m, loops, privileges, concurrency.
. "$(dirname "$0")/lib.sh"
LDA=$BIN/lda

if [ "$(id -u)" = 0 ]; then ROOT=1; U=5001; G=5001; else ROOT=; U=$(id -u); G=$(id -g); fi
# Runs a command as the mail user (root makes the files as that user).
as_user() { if [ -n "$ROOT" ]; then setpriv --reuid=$U --regid=$G --clear-groups "$@"; else "$@"; fi; }

mkdir -p "$T/home/alice" "$T/vmail" "$T/spool"
chown -R $U:$G "$T/home" "$T/vmail" "$T/spool"
cat >"$T/userbase" <<EOF
# user uid:gid:home
alice	$U:$G:$T/home/alice
zero	0:0:$T/home/zero
EOF
cat >"$T/lda.conf" <<EOF
[users]
userbase = file:$T/userbase
[lda]
max_size = 100K
create_folders = yes
EOF
cat >"$T/tpl.conf" <<EOF
[users]
home = $T/vmail/%Lu
mail_user = $U:$G
users = bob, carol
EOF
C="-c $T/lda.conf"
NEW=$T/home/alice/Maildir/new

# count DIR: number of entries
count() { ls -A "$1" 2>/dev/null | wc -l | tr -d ' '; }
# lda_rc ARGS < input: exit status, stderr in $T/err
lda_rc() { "$LDA" "$@" 2>"$T/err"; echo $?; }
# newest file in a directory
newest() { ls -t "$1" | head -1; }
# checks that a Maildir file's ,S= and ,W= match its bytes
sw_ok() { # path
	f=$1; b=${f##*/}
	s=$(echo "$b" | sed -n 's/.*,S=\([0-9]*\).*/\1/p')
	w=$(echo "$b" | sed -n 's/.*,W=\([0-9]*\).*/\1/p')
	size=$(wc -c <"$f" | tr -d ' ')
	lf=$(tr -cd '\n' <"$f" | wc -c | tr -d ' ')
	[ -n "$s" ] && [ "$s" = "$size" ] && [ "$w" = $((size + lf)) ]
}

printf 'From: x@example.org\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n' >"$T/crlf.eml"
printf 'From: x@example.org\nSubject: lf\n\nbody\n' >"$T/lf.eml"

# --- 0: delivered ---------------------------------------------------------
rc=$(lda_rc $C -d alice -f sender@example.org -a alice@example.org <"$T/crlf.eml")
check "exit 0 for a delivery (got $rc: $(cat "$T/err"))" [ "$rc" = 0 ]
check "one file in new/" [ "$(count "$NEW")" = 1 ]
f=$NEW/$(newest "$NEW")
check "Return-Path is the first line" [ "$(sed -n 1p "$f")" = "Return-Path: <sender@example.org>" ]
check "Delivered-To is the second line" [ "$(sed -n 2p "$f")" = "Delivered-To: alice@example.org" ]
check "CRLF stored as LF" [ "$(tr -cd '\r' <"$f" | wc -c | tr -d ' ')" = 0 ]
check "body kept" grep -qx 'line two' "$f"
check ",S= and ,W= match the bytes (CRLF input)" sw_ok "$f"
check "tmp/ is empty after delivery" [ "$(count "$T/home/alice/Maildir/tmp")" = 0 ]
if [ -n "$ROOT" ]; then
	check "file owned by the userbase uid 5001" [ "$(stat -c %u:%g "$f")" = "5001:5001" ]
	check "Maildir made by the user, not root" [ "$(stat -c %u "$T/home/alice/Maildir/new")" = 5001 ]
fi
rm -f "$NEW"/*
rc=$(lda_rc $C -d alice -f '' <"$T/lf.eml")
f=$NEW/$(newest "$NEW")
check "-f '' (a bounce) gives Return-Path: <>" [ "$(sed -n 1p "$f")" = "Return-Path: <>" ]
rm -f "$NEW"/*
rc=$(lda_rc $C -d alice <"$T/lf.eml")
f=$NEW/$(newest "$NEW")
check "LF input delivered" [ "$rc" = 0 ]
check ",S= and ,W= match the bytes (LF input)" sw_ok "$f"
check "without -a, Delivered-To names the -d user" grep -qx 'Delivered-To: alice' "$f"
check "without -f, no Return-Path added" sh -c "! grep -q '^Return-Path' '$f'"
rm -f "$NEW"/*
printf 'From bounce@example.org Mon Jan  1 00:00:00 2024\nSubject: mbox\n\nx\n' |
	"$LDA" $C -d alice
f=$NEW/$(newest "$NEW")
check "an mbox From_ line becomes Return-Path" [ "$(sed -n 1p "$f")" = "Return-Path: <bounce@example.org>" ]
check "the From_ line is not stored" sh -c "! grep -q '^From ' '$f'"
rm -f "$NEW"/*
{ printf 'From bounce@exa'; sleep 0.2; printf 'mple.org Mon Jan  1 00:00:00 2024\nSubject: split\n\nx\n'; } |
	"$LDA" $C -d alice -f env@example.org
f=$NEW/$(newest "$NEW")
check "a From_ line written in pieces is still dropped" sh -c "! grep -q '^From ' '$f'"
check "-f wins over the From_ line" [ "$(sed -n 1p "$f")" = "Return-Path: <env@example.org>" ]
rm -f "$NEW"/*

# --- 65: refused for good -------------------------------------------------
rc=$(lda_rc $C -d alice </dev/null)
check "empty message: 65 (got $rc)" [ "$rc" = 65 ]
check "empty message: one line on stderr" [ "$(wc -l <"$T/err")" = 1 ]
head -c 150000 /dev/zero | tr '\0' 'a' | fold -w 70 >"$T/big.eml"
rc=$(lda_rc $C -d alice <"$T/big.eml")
check "over max_size: 65 (got $rc)" [ "$rc" = 65 ]
check "over max_size: stderr says why" grep -q max_size "$T/err"
check "over max_size: nothing in new/ or tmp/" [ "$(count "$NEW")$(count "$T/home/alice/Maildir/tmp")" = 00 ]
printf 'Received: by x\nDelivered-To: <Alice@Example.org>\nSubject: loop\n\nx\n' >"$T/loop.eml"
rc=$(lda_rc $C -d alice -a alice@example.org <"$T/loop.eml")
check "loop (Delivered-To for this recipient): 65 (got $rc)" [ "$rc" = 65 ]
check "loop: stderr says loop" grep -q loop "$T/err"
check "loop: nothing in new/ or tmp/" [ "$(count "$NEW")$(count "$T/home/alice/Maildir/tmp")" = 00 ]
rc=$(lda_rc $C -d alice -a other@example.org <"$T/loop.eml")
check "another recipient's Delivered-To is no loop (got $rc)" [ "$rc" = 0 ]
printf 'Subject: x\n\nDelivered-To: alice@example.org\n' >"$T/body-dt.eml"
rc=$(lda_rc $C -d alice -a alice@example.org <"$T/body-dt.eml")
check "Delivered-To in the body is no loop (got $rc)" [ "$rc" = 0 ]
printf 'Subject: x\r\nDelivered-To:\r\n\t<alice@example.org>\r\n\r\nx\r\n' >"$T/fold.eml"
rc=$(lda_rc $C -d alice -a alice@example.org <"$T/fold.eml")
check "a folded Delivered-To is a loop too (got $rc)" [ "$rc" = 65 ]
printf 'Subject: x\nDelivered-To: alice@example.org\n' >"$T/last.eml"
rc=$(lda_rc $C -d alice -a alice@example.org <"$T/last.eml")
check "a Delivered-To on the last line, no body, is a loop (got $rc)" [ "$rc" = 65 ]
printf 'Delivered-To: alice@example.org\n .invalid\nSubject: x\n\nx\n' >"$T/fold2.eml"
rc=$(lda_rc $C -d alice -a alice@example.org <"$T/fold2.eml")
check "a Delivered-To folded into another address is no loop (got $rc)" [ "$rc" = 0 ]
rm -f "$NEW"/*

# --- 67: unknown user -----------------------------------------------------
rc=$(lda_rc $C -d nobody-here <"$T/lf.eml")
check "unknown user: 67 (got $rc)" [ "$rc" = 67 ]
check "unknown user: stderr names the user" grep -q nobody-here "$T/err"
rc=$(lda_rc $C -d ../alice <"$T/lf.eml")
check "user name with .. : 67 (got $rc)" [ "$rc" = 67 ]
rc=$(lda_rc $C -d 'alice/x' <"$T/lf.eml")
check "user name with / : 67 (got $rc)" [ "$rc" = 67 ]

# --- 78: bad configuration ------------------------------------------------
printf '[lda]\n\nmax_size = lots\n' >"$T/bad.conf"
rc=$(lda_rc -c "$T/bad.conf" -d alice <"$T/lf.eml")
check "bad config: 78 (got $rc)" [ "$rc" = 78 ]
check "bad config: file:line on stderr ($(cat "$T/err"))" grep -q "bad.conf:3" "$T/err"
printf '[users]\nhome = relative/%%u\n' >"$T/bad2.conf"
rc=$(lda_rc -c "$T/bad2.conf" -d alice <"$T/lf.eml")
check "bad [users]: 78 with file:line" sh -c "[ $rc = 78 ] && grep -q bad2.conf:2 '$T/err'"
rc=$(lda_rc -c "$T/nonexistent.conf" -d alice <"$T/lf.eml")
check "missing -c file: 78 (got $rc)" [ "$rc" = 78 ]
check "lda -n accepts a good config" "$LDA" -n $C
check "lda -n refuses a bad one" sh -c "! '$LDA' -n -c '$T/bad.conf' 2>/dev/null"
if [ -n "$ROOT" ]; then
	rc=$(lda_rc $C -d zero <"$T/lf.eml")
	check "user mapped to uid 0: refused with 78 (got $rc)" [ "$rc" = 78 ]
	check "nothing made for the uid 0 user" [ ! -e "$T/home/zero" ]
fi

# --- system users (a config without [users]) -------------------------------
: >"$T/empty.conf"
rc=$(lda_rc -c "$T/empty.conf" -d no-such-user-here <"$T/lf.eml")
check "system users: unknown user 67 (got $rc)" [ "$rc" = 67 ]
if [ -n "$ROOT" ]; then
	rc=$(lda_rc -c "$T/empty.conf" -d root <"$T/lf.eml")
	check "system users: root refused with 78 (got $rc)" [ "$rc" = 78 ]
fi

# --- 64: usage ------------------------------------------------------------
rc=$(lda_rc $C <"$T/lf.eml")
check "no -d nor -M: 64 (got $rc)" [ "$rc" = 64 ]
rc=$(lda_rc $C -d alice -f "$(printf 'a\nb')" <"$T/lf.eml")
check "newline in -f: 64 (got $rc)" [ "$rc" = 64 ]

# --- templates ------------------------------------------------------------
rc=$(lda_rc -c "$T/tpl.conf" -d Bob <"$T/lf.eml")
check "template user: 0 (got $rc: $(cat "$T/err"))" [ "$rc" = 0 ]
check "template %Lu: delivered into vmail/bob/Maildir" [ "$(count "$T/vmail/bob/Maildir/new")" = 1 ]
[ -n "$ROOT" ] && check "template user: file owned by mail_user" \
	[ "$(stat -c %u "$T/vmail/bob/Maildir/new/$(newest "$T/vmail/bob/Maildir/new")")" = 5001 ]
rc=$(lda_rc -c "$T/tpl.conf" -d dave <"$T/lf.eml")
check "template user not in users: 67 (got $rc)" [ "$rc" = 67 ]

# --- -M -------------------------------------------------------------------
as_user mkdir "$T/spool/direct"
rc=$(lda_rc -M "$T/spool/direct/Maildir" <"$T/lf.eml")
check "-M: 0 (got $rc: $(cat "$T/err"))" [ "$rc" = 0 ]
check "-M: made the Maildir and delivered" [ "$(count "$T/spool/direct/Maildir/new")" = 1 ]
[ -n "$ROOT" ] && check "-M as root: writes as the directory's owner" \
	[ "$(stat -c %u "$T/spool/direct/Maildir/new")" = 5001 ]

# --- -m -------------------------------------------------------------------
rc=$(lda_rc $C -d alice -m Archives/2024 <"$T/lf.eml")
check "-m with create_folders: 0 (got $rc)" [ "$rc" = 0 ]
check "-m made .Archives.2024 and delivered there" [ "$(count "$T/home/alice/Maildir/.Archives.2024/new")" = 1 ]
check "-m: maildirfolder file" [ -f "$T/home/alice/Maildir/.Archives.2024/maildirfolder" ]
rc=$(lda_rc -M "$T/spool/direct/Maildir" -m Été <"$T/lf.eml")
check "-m without create_folders: INBOX (got $rc)" sh -c "[ $rc = 0 ] && [ $(count "$T/spool/direct/Maildir/new") = 2 ]"
check "-m without create_folders: a warning" grep -q INBOX "$T/err"
rc=$(lda_rc $C -d alice -m Été <"$T/lf.eml")
check "-m stores a UTF-8 name in modified UTF-7" [ -d "$T/home/alice/Maildir/.&AMk-t&AOk-/new" ]
rc=$(lda_rc $C -d alice -m ../../etc <"$T/lf.eml")
check "-m with .. goes to INBOX, not elsewhere" sh -c "[ $rc = 0 ] && [ ! -e '$T/home/etc' ]"
rm -f "$NEW"/*

# --- 200 parallel deliveries ----------------------------------------------
i=0
while [ $i -lt 200 ]; do
	{ printf 'Subject: par %d\n\n' $i; head -c 3000 /dev/zero | tr '\0' 'p' | fold -w 60; printf '\nend %d\n' $i; } |
		"$LDA" $C -d alice 2>>"$T/par.err" &
	i=$((i + 1))
done
wait
check "200 parallel lda: 200 files in new/" [ "$(count "$NEW")" = 200 ]
check "200 parallel lda: 200 distinct subjects" [ "$(cat "$NEW"/* | grep '^Subject: par' | sort -u | wc -l)" = 200 ]
check "200 parallel lda: every file complete" [ "$(cat "$NEW"/* | grep -c '^end ')" = 200 ]
bad=0; for f in "$NEW"/*; do sw_ok "$f" || bad=$((bad + 1)); done
check "200 parallel lda: every ,S=/,W= right ($bad wrong)" [ "$bad" = 0 ]
check "200 parallel lda: no error printed" [ ! -s "$T/par.err" ]
rm -f "$NEW"/*

# --- kill -9 in the middle of a write -------------------------------------
mkfifo "$T/fifo"
"$LDA" $C -d alice <"$T/fifo" 2>/dev/null &
lpid=$!
exec 7>"$T/fifo"
printf 'Subject: slow\n\n' >&7
head -c 70000 /dev/zero | tr '\0' 's' | fold -w 70 >&7
# wait until the temp file exists and holds data (a readiness check)
n=0
while [ $n -lt 500 ] && [ -z "$(find "$T/home/alice/Maildir/tmp" -type f -size +1k 2>/dev/null)" ]; do
	sleep 0.01; n=$((n + 1))
done
check "mid-write: the temp file is being written" [ $n -lt 500 ]
kill -9 $lpid; wait $lpid 2>/dev/null
exec 7>&-
check "kill -9 mid-write: nothing in new/" [ "$(count "$NEW")" = 0 ]
rm -f "$T/home/alice/Maildir/tmp"/*
"$LDA" $C -d alice <"$T/fifo" 2>/dev/null &
lpid=$!
exec 7>"$T/fifo"
printf 'Subject: slow\n\n' >&7
head -c 70000 /dev/zero | tr '\0' 's' | fold -w 70 >&7
n=0
while [ $n -lt 500 ] && [ -z "$(find "$T/home/alice/Maildir/tmp" -type f -size +1k 2>/dev/null)" ]; do
	sleep 0.01; n=$((n + 1))
done
kill -TERM $lpid; wait $lpid; rc=$?
exec 7>&-
check "SIGTERM mid-write: 75 (got $rc)" [ "$rc" = 75 ]
check "SIGTERM mid-write: nothing in new/ and tmp/ cleaned" [ "$(count "$NEW")$(count "$T/home/alice/Maildir/tmp")" = 00 ]

# --- a full file system ---------------------------------------------------
if [ -n "$ROOT" ] && mkdir "$T/full" && mount -t tmpfs -o size=64k,mode=0755 tmpfs "$T/full" 2>/dev/null; then
	as_user mkdir "$T/full/Maildir" 2>/dev/null || chown $U:$G "$T/full"
	chown $U:$G "$T/full"
	head -c 200000 /dev/zero | tr '\0' 'f' | fold -w 70 >"$T/200k.eml"
	rc=$(lda_rc -M "$T/full/Maildir" <"$T/200k.eml")
	check "full file system: 75 (got $rc: $(cat "$T/err"))" [ "$rc" = 75 ]
	check "full file system: one line on stderr naming the cause" grep -q "No space left" "$T/err"
	check "full file system: nothing in new/, tmp/ cleaned" [ "$(count "$T/full/Maildir/new")$(count "$T/full/Maildir/tmp")" = 00 ]
	umount "$T/full"
else
	ok "full file system: skipped (needs root and mount -t tmpfs)"
fi

# --- constant memory --------------------------------------------------------
[ -x /usr/bin/time ] || TIMECMD=none
case ${TIMECMD:-}$BIN in
none*) ok "peak RSS: skipped (no /usr/bin/time)" ;;
*asan*) ok "peak RSS: skipped under the sanitizers" ;;
*)
	head -c 30000000 /dev/zero | tr '\0' 'm' | fold -w 76 >"$T/30m.eml"
	printf '[users]\nuserbase = file:%s\n' "$T/userbase" >"$T/nolimit.conf"
	# the least of three runs: other processes' noise only adds
	rss=99999
	for k in 1 2 3; do
		/usr/bin/time -f '%M' -o "$T/rss" "$LDA" -c "$T/nolimit.conf" -d alice <"$T/30m.eml"
		r=$(tail -1 "$T/rss")
		[ "$r" -lt "$rss" ] && rss=$r
	done
	check "30 MB message delivered with peak RSS under 2 MB (${rss} KB)" [ "$rss" -lt 2048 ]
	check "30 MB messages: all three delivered" [ "$(count "$NEW")" = 3 ]
	f=$NEW/$(newest "$NEW")
	check "30 MB message: ,S=/,W= right" sw_ok "$f"
	rm -f "$NEW"/* "$T/30m.eml"
	;;
esac

# -B: smtpd-lite's batches (inherited fds and offsets, a line per message)
rm -f "$NEW"/*
printf 'ENVELOPE\nSubject: b1\n\none\n' >"$T/b1"
printf 'Subject: b2\r\n\r\ntwo\r\n' >"$T/b2"
printf 'Delivered-To: alice@example.org\nSubject: b3\n\nloop\n' >"$T/b3"
printf 'lda-batch 1\n3 9 0 q1_0 -\n4 0 0 q2_0 13:bob@sender.ex\n5 0 0 - -\n' >"$T/list"
"$LDA" $C -d alice -a alice@example.org -f cmd@line.ex -B <"$T/list" \
    3<"$T/b1" 4<"$T/b2" 5<"$T/b3" 2>"$T/err"
rc=$?
check "-B exits 0 with a line per message" [ "$rc.$(wc -l <"$T/err")" = 0.3 ]
check "-B: two delivered (0 0, 1 0)" [ "$(grep -c '^[01] 0 $' "$T/err")" = 2 ]
check "-B: the loop refused on its own (2 65)" grep -q '^2 65 message refused: mail loop' "$T/err"
check "-B: two files in new/" [ "$(count "$NEW")" = 2 ]
f1=$(ls "$NEW" | grep 'Kq1_0\.')
f2=$(ls "$NEW" | grep 'Kq2_0\.')
check "-B: the delivery ids are in the names" [ -n "$f1" -a -n "$f2" ]
check "-B: read from the offset, -f of the command line kept" \
    sh -c "head -1 '$NEW/$f1' | grep -qx 'Return-Path: <cmd@line.ex>' && ! grep -q ENVELOPE '$NEW/$f1'"
check "-B: the message's own -f" grep -qx 'Return-Path: <bob@sender.ex>' "$NEW/$f2"
check "-B: ,S=/,W= right" sw_ok "$NEW/$f2"
printf 'lda-batch 1\n3 9 1 q1_0 -\n4 0 1 q9_0 -\n' >"$T/list"
"$LDA" $C -d alice -B <"$T/list" 3<"$T/b1" 4<"$T/b2" 2>"$T/err"
check "-B retry: the one already delivered is not made twice" \
    grep -q '^0 0 already delivered' "$T/err"
check "-B retry: the other is delivered" [ "$(count "$NEW")" = 3 ]
rc=$(printf 'lda-batch 1\n7 0 0 - -\n' | lda_rc $C -d alice -B)
check "-B: a list naming a closed fd fails whole with 75" [ "$rc" = 75 ]
rc=$(printf 'garbage\n' | lda_rc $C -d alice -B)
check "-B: not a list: 75, nothing delivered" [ "$rc.$(count "$NEW")" = 75.3 ]
# DELIVERY_ID / DELIVERY_RETRY for single deliveries
rc=$(printf 'Subject: s\n\nx\n' | DELIVERY_ID=qs_1 DELIVERY_RETRY=0 lda_rc $C -d alice)
check "DELIVERY_ID: delivered with the id in the name" [ "$rc.$(ls "$NEW" | grep -c 'Kqs_1\.')" = 0.1 ]
rc=$(printf 'Subject: s\n\nx\n' | DELIVERY_ID=qs_1 DELIVERY_RETRY=1 lda_rc $C -d alice)
check "DELIVERY_RETRY=1: found, exit 0, not delivered twice" [ "$rc.$(ls "$NEW" | grep -c 'Kqs_1\.')" = 0.1 ]
rc=$(printf 'Subject: s\n\nx\n' | DELIVERY_ID='../x' DELIVERY_RETRY=1 lda_rc $C -d alice)
check "a DELIVERY_ID that is not a key is ignored (delivered, no key)" [ "$rc.$(count "$NEW")" = 0.5 ]
rm -f "$NEW"/*

finish
