"""valgrind (memcheck) over lda delivering a few messages and over a short
imapd session in inetd mode (-i) with a scripted dialogue: no invalid
reads or writes, no use of uninitialised values, no definite leaks.
Skips when valgrind is absent (deps.txt lists it)."""
import os, re, shutil, subprocess, sys
from _hostile import T, scratch, BIN, ROOT

t = T()
vg = shutil.which("valgrind")
if vg is None:
    print("ok - skipped: valgrind is not installed")
    sys.exit(0)
with open(os.path.join(BIN, "lda"), "rb") as f:
    if b"__asan_init" in f.read():
        print("ok - skipped: a sanitizer build (valgrind cannot run ASan binaries)")
        sys.exit(0)
d = scratch("valgrind.")
uid = 5005 if ROOT else os.getuid()
home = os.path.join(d, "carol")
os.makedirs(home)
if ROOT:
    os.chown(home, uid, uid)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("carol %d:%d:%s\n" % (uid, uid, home))
with open(os.path.join(d, "lda.conf"), "w") as f:
    f.write("[users]\nuserbase = file:%s/userbase\n" % d)
VG = [vg, "-q", "--error-exitcode=99", "--leak-check=full",
      "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
      "--track-origins=yes",
      "--suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                       "valgrind.supp")]


def verdict(what, r, logpath):
    with open(logpath) as f:
        log = f.read()
    bad = re.findall(r"(Invalid (?:read|write|free)|uninitialised|definitely lost"
                     r"|Mismatched free|overlap)", log)
    t.ok(r.returncode != 99 and not bad, "%s: valgrind clean%s" % (
        what, "" if not bad else " -- " + log[:1500]))


msgs = [b"Subject: one\n\nhello\n",
        b"From: a@b.test\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\n" + b"x" * 100000 + b"\r\n",
        b"From nobody Sat Jan  1 00:00:00 2000\nSubject: mbox line\n\n>From here\n"]
for i, m in enumerate(msgs):
    logp = os.path.join(d, "lda%d.vg" % i)
    r = subprocess.run(VG + ["--log-file=" + logp, os.path.join(BIN, "lda"), "-c",
                             os.path.join(d, "lda.conf"), "-f", "s@x.test", "-d", "carol"],
                       input=m, capture_output=True, timeout=120)
    t.eq(r.returncode, 0, "lda under valgrind delivers message %d (%s)" % (
        i, r.stderr.decode().strip()[:200]))
    verdict("lda message %d" % i, r, logp)
logp = os.path.join(d, "lda-unknown.vg")
r = subprocess.run(VG + ["--log-file=" + logp, os.path.join(BIN, "lda"), "-c",
                         os.path.join(d, "lda.conf"), "-d", "nosuchuser"],
                   input=msgs[0], capture_output=True, timeout=120)
t.eq(r.returncode, 67, "lda under valgrind: unknown user exit 67")
verdict("lda unknown user", r, logp)

# imapd -i as the mail user (one process), a scripted dialogue
conf = os.path.join(d, "imapd.conf")
with open(conf, "w") as f:
    f.write("password = pw\npassword_users = carol\nplaintext_auth = yes\n"
            "auth_failure_delay = 0\n[users]\nuserbase = file:%s/userbase\n" % d)
body = b"From: Ann <ann@example.org>\r\nSubject: vg\r\nMIME-Version: 1.0\r\n" \
       b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n" \
       b"Content-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
script = (b"a CAPABILITY\r\nb LOGIN carol wrong\r\nc LOGIN carol pw\r\n"
          b"d APPEND INBOX (\\Seen) {%d+}\r\n%s\r\n"
          b"e CREATE Archive\r\nf LIST \"\" \"*\"\r\ng SELECT INBOX\r\n"
          b"h FETCH 1:* (FLAGS UID RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[1] "
          b"BODY.PEEK[HEADER.FIELDS (Subject)])\r\n"
          b"i SEARCH OR SUBJECT vg BODY hello\r\nj STORE 1 +FLAGS (\\Flagged $Work)\r\n"
          b"k UID COPY 1:* Archive\r\nl MOVE 1 Archive\r\nm EXPUNGE\r\n"
          b"n STATUS Archive (MESSAGES UIDNEXT UNSEEN)\r\no X" + b"y" * 70000 + b"\r\n"
          b"p APPEND INBOX {4294967295}\r\nq LOGOUT\r\n") % (len(body), body)
argv = VG + ["--log-file=" + os.path.join(d, "imapd.vg"), os.path.join(BIN, "imapd"),
             "-i", "-c", conf]
if ROOT:
    argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"] + argv
    os.chmod(d, 0o777)
r = subprocess.run(argv, input=script, capture_output=True, timeout=180)
out = r.stdout
t.ok(b"c OK" in out and b"h OK" in out and b"l OK" in out and b"q OK" in out,
     "imapd -i under valgrind: the dialogue completes (%r)" % out[-300:])
verdict("imapd -i session", r, os.path.join(d, "imapd.vg"))
