#!/bin/sh
# maildirmake: Maildirs and Maildir++ folders as maildrop's maildirmake
# makes them (compared with the real one when it is installed).
. "$(dirname "$0")/lib.sh"
MM=$BIN/maildirmake
cd "$T" || exit 1

layout() { (cd "$1" && find . -printf '%P %y %m\n' | sort); }
rc() { "$@" 2>"$T/err"; echo $?; }

check "maildirmake DIR: exit 0" "$MM" md
check "tmp, new, cur made" test -d md/tmp -a -d md/new -a -d md/cur
check "mode 0700 throughout" [ "$(stat -c %a md md/tmp md/new md/cur | sort -u)" = 700 ]
r=$(rc "$MM" md)
check "existing Maildir: exit 1 (got $r)" [ "$r" = 1 ]
check "existing Maildir: says File exists" grep -q "File exists" "$T/err"
mkdir mount-point
check "an existing empty directory (a mount point) is filled" "$MM" mount-point
check "... into a Maildir" [ -d mount-point/new ]

check "-f Drafts: exit 0" "$MM" -f Drafts md
check "-f makes .Drafts with tmp, new, cur" test -d md/.Drafts/tmp -a -d md/.Drafts/new -a -d md/.Drafts/cur
check "-f makes an empty maildirfolder file" test -f md/.Drafts/maildirfolder -a ! -s md/.Drafts/maildirfolder
check "-f Drafts.Urgent: a subfolder by Maildir++'s dot" "$MM" -f Drafts.Urgent md
check "... as .Drafts.Urgent" [ -f md/.Drafts.Urgent/maildirfolder ]
r=$(rc "$MM" -f Drafts md)
check "existing folder: exit 1 (got $r)" [ "$r" = 1 ]
for bad in 'a/b' '../x' '.x' 'x.' 'a..b' "$(printf 'a\tb')"; do
	r=$(rc "$MM" -f "$bad" md)
	check "-f '$bad' refused (got $r)" [ "$r" = 1 ]
done
check "nothing made by refused names" [ "$(ls -A md | sort | tr '\n' ' ')" = ".Drafts .Drafts.Urgent cur new tmp " ]
r=$(rc "$MM" -f X missing)
check "-f on a missing Maildir: exit 1 (got $r)" [ "$r" = 1 ]
check "-F takes UTF-8 and stores modified UTF-7" "$MM" -F 'Été' md
check "... as .&AMk-t&AOk-" [ -f 'md/.&AMk-t&AOk-/maildirfolder' ]
r=$(rc "$MM" -F "$(printf 'bad\377')" md)
check "-F with invalid UTF-8 refused (got $r)" [ "$r" = 1 ]

check "-q sets a Maildir++ quota on an existing Maildir" "$MM" -q 1000000S,1000C md
check "maildirsize holds the quota" [ "$(head -1 md/maildirsize)" = "1000000S,1000C" ]
check "-q with a new Maildir" "$MM" -q 5000S q
check "... made it and its maildirsize" test -d q/new -a "$(head -1 q/maildirsize 2>/dev/null)" = 5000S
r=$(rc "$MM" -q lots md)
check "bad quota: 64 (got $r)" [ "$r" = 64 ]
check "-S: a sharable (0755) Maildir" "$MM" -S shared
check "... mode 0755" [ "$(stat -c %a shared)" = 755 ]
r=$(rc "$MM" -s read -f X shared)
check "-s (shared folders) refused as unsupported: 64 (got $r)" [ "$r" = 64 ]
r=$(rc "$MM")
check "no argument: 64 (got $r)" [ "$r" = 64 ]

if command -v /usr/bin/maildirmake >/dev/null 2>&1 && /usr/bin/maildirmake 2>&1 | grep -q Usage; then
	/usr/bin/maildirmake theirs && /usr/bin/maildirmake -f Drafts theirs &&
		/usr/bin/maildirmake -f Drafts.Urgent theirs
	"$MM" ours && "$MM" -f Drafts ours && "$MM" -f Drafts.Urgent ours
	check "same layout and modes as maildrop's maildirmake" [ "$(layout theirs)" = "$(layout ours)" ]
	LANG=C.UTF-8 /usr/bin/maildirmake -F 'Été' theirs 2>/dev/null
	"$MM" -F 'Été' ours
	check "-F names the folder as maildrop's does" [ "$(layout theirs)" = "$(layout ours)" ]
else
	ok "comparison with maildrop's maildirmake: skipped (maildrop not installed)"
fi
finish
