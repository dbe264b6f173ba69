"""imapd -i: protocol dialogues on stdin/stdout (inetd mode), pipelined,
as root (privilege separation, the pre-login process relaying what was
read ahead) and as a plain user (one process)."""
import os, re, shutil, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, BIN

t = T()
root = os.geteuid() == 0
d = scratch("imapd-inetd.")
uid = 5004 if root else os.getuid()
home = os.path.join(d, "dan")
os.makedirs(home)
if root:
    os.chown(home, uid, uid)
conf = os.path.join(d, "imapd.conf")
with open(conf, "w") as f:
    f.write("password = ${T_PW}\npassword_users = dan\nplaintext_auth = yes\n"
            "auth_failure_delay = 0\nmax_line = 2K\n"
            "[users]\nuserbase = { dan = \"%d:%d:%s\" }\n" % (uid, uid, home))
env = dict(os.environ, T_PW="p w")


def dialogue(text, as_user=False):
    argv = [os.path.join(BIN, "imapd"), "-i", "-c", conf]
    if as_user:
        argv = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid,
                "--clear-groups"] + argv
    r = subprocess.run(argv, input=text, capture_output=True, timeout=30, env=env)
    return r.stdout


msg = b"Subject: x\r\n\r\nhello\r\n"
script = (b"a CAPABILITY\r\n"
          b"b SELECT INBOX\r\n"
          b'c LOGIN dan "p w"\r\n'
          b"d APPEND INBOX {%d+}\r\n%s\r\n"
          b"e SELECT INBOX\r\n"
          b"f FETCH 1 (RFC822.SIZE BODY.PEEK[])\r\n"
          b"g FETCH 1 (BODY[HEADER.FIELDS (Subject)\r\n"
          b"h " + b"X" * 3000 + b"\r\n"
          b"i NOOP\r\n"
          b"j LOGOUT\r\n") % (len(msg), msg)
for as_user in ([False, True] if root else [False]):
    who = "as a plain user" if as_user else ("as root" if root else "")
    out = dialogue(script, as_user)
    t.ok(out.startswith(b"* OK [CAPABILITY IMAP4rev1"), "greeting %s" % who)
    t.ok(b"a OK" in out and b"AUTH=PLAIN" in out, "CAPABILITY before login %s" % who)
    t.ok(b"b BAD" in out, "SELECT before login is refused %s" % who)
    t.ok(b"c OK [CAPABILITY" in out, "LOGIN with a static password from ${VAR} %s" % who)
    t.ok(re.search(rb"d OK \[APPENDUID \d+ 1\]", out) is not None,
         "pipelined APPEND with LITERAL+ %s" % who)
    t.ok(b"* 1 EXISTS" in out, "SELECT %s" % who)
    t.ok(b"RFC822.SIZE %d BODY[] {%d}\r\n%s)" % (len(msg), len(msg), msg) in out,
         "FETCH: size and body agree %s" % who)
    t.ok(b"g BAD" in out, "unbalanced bracket: BAD %s" % who)
    t.ok(b"BAD Line too long" in out, "over max_line: BAD %s" % who)
    t.ok(b"i OK" in out and b"j OK" in out, "session goes on to LOGOUT %s" % who)
    shutil.rmtree(os.path.join(home, "Maildir"), True)
out = dialogue(b"a LOGIN dan wrong\r\nb LOGIN ../dan x\r\nc LOGOUT\r\n")
t.ok(b"a NO [AUTHENTICATIONFAILED]" in out and b"b NO" in out and b"c OK" in out,
     "wrong password and bad names refused")
r = subprocess.run([os.path.join(BIN, "imapd"), "-n", "-c", conf], capture_output=True,
                   env=dict(os.environ))
t.ok(r.returncode == 78 and b"T_PW" in r.stderr,
     "-n: an unset ${VAR} is a configuration error naming it (exit 78)")
with open(os.path.join(d, "bad.conf"), "w") as f:
    f.write("password = x\nlisten = 127.0.0.1:1\nfrobnicate = 1\n")
r = subprocess.run([os.path.join(BIN, "imapd"), "-n", "-c", os.path.join(d, "bad.conf")],
                   capture_output=True)
t.ok(r.returncode == 78 and b"bad.conf:3" in r.stderr, "-n: unknown key names file:line")
