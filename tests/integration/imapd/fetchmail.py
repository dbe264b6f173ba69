"""fetchmail with keep against imapd over STARTTLS into a Maildir (seed
001): each message exactly once, a second run fetches nothing, and never
"was not the expected length" (the size mismatch that ruled out
localmail), whatever the line ends and names of the files on disk."""
import os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, free_port, Daemon, mkcerts, BIN

t = T()
root = os.geteuid() == 0
d = scratch("imapd-fetchmail.")
mkcerts(os.path.join(d, "certs"))
os.chmod(os.path.join(d, "certs"), 0o755)
uid = 5001 if root else os.getuid()
maildir = os.path.join(d, "alice", "Maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(maildir, sub))
port = free_port()
with open(os.path.join(d, "imapd.conf"), "w") as f:
    f.write("""listen = 127.0.0.1:%d
cert = %s/certs/server.crt
key = %s/certs/server.key
password = ${IMAP_PASSWD}
password_users = alice
auth_failure_delay = 0
[users]
userbase = { alice = "%d:%d:%s/alice" }
""" % (port, d, d, uid, uid, d))

# Messages as several writers leave them: lda's names with S= and W=, bare
# names, CRLF already on disk, a last line without a line end, long lines.
msgs = []
for i in range(30):
    body = "Subject: message %d\nFrom: a@b.test\n\n" % i
    body += ("line %d " % i) * (i * 7) + "\n"
    if i % 5 == 0:
        body += "x" * 2000 + "\n"
    data = body.encode()
    if i % 3 == 1:
        data = data.replace(b"\n", b"\r\n")
    if i % 7 == 3:
        data = data.rstrip(b"\n")
    lf = data.count(b"\n") - data.count(b"\r\n")
    if i % 2 == 0:
        name = "%d.M%dP1.test,S=%d,W=%d" % (1700000000 + i, i, len(data), len(data) + lf)
    else:
        name = "%d.M%dP1.test" % (1700000000 + i, i)
    sub = "new" if i % 4 else "cur"
    if sub == "cur":
        name += ":2,"
    with open(os.path.join(maildir, sub, name), "wb") as g:
        g.write(data)
    msgs.append(data)
if root:
    for dp, dn, fn in os.walk(os.path.join(d, "alice")):
        os.chown(dp, uid, uid)
        for x in fn:
            os.chown(os.path.join(dp, x), uid, uid)

env = dict(os.environ, IMAP_PASSWD="s3cret pass")
daemon = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
                port=port, env=env, log=os.path.join(d, "imapd.log"))

out = os.path.join(d, "out")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(out, sub))
home = os.path.join(d, "home")
os.makedirs(home)
rc = os.path.join(home, ".fetchmailrc")
mda = os.path.join(d, "mda.sh")
with open(mda, "w") as f:
    f.write('#!/bin/sh\nf=$(mktemp -p %s/tmp) && cat > "$f" && mv "$f" %s/new/\n'
            % (out, out))
os.chmod(mda, 0o755)
with open(rc, "w") as f:
    f.write('set no syslog\n'
            'poll localhost protocol IMAP port %d auth password\n'
            '  user "alice" there with password "s3cret pass" is root here\n'
            '  keep sslproto "TLS1.2+" sslcertck sslcertfile "%s/certs/ca.crt"\n'
            '  mda "%s"\n' % (port, d, mda))
os.chmod(rc, 0o600)


def fetchmail():
    return subprocess.run(["fetchmail", "-v", "-f", rc, "--nosyslog"],
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, HOME=home))


r1 = fetchmail()
t.eq(r1.returncode, 0, "fetchmail fetched (exit 0)")
got = sorted(open(os.path.join(out, "new", x), "rb").read()
             for x in os.listdir(os.path.join(out, "new")))
t.eq(len(got), len(msgs), "each message fetched once")
t.ok("not the expected length" not in r1.stdout + r1.stderr,
     "no size mismatch reported by fetchmail")
t.ok("STARTTLS" in r1.stdout + r1.stderr or "TLS" in r1.stdout + r1.stderr,
     "fetchmail used STARTTLS")
bodies = [m.replace(b"\r\n", b"\n") for m in msgs]
missing = [b[:20] for b in bodies
           if not any(b.rstrip(b"\r\n") in g.replace(b"\r\n", b"\n") for g in got)]
t.ok(not missing, "every message arrived whole (%r)" % missing)
r2 = fetchmail()
t.eq(r2.returncode, 1, "second run: no mail (exit 1)")
t.eq(len(os.listdir(os.path.join(out, "new"))), len(msgs),
     "second run fetched nothing")
t.ok("not the expected length" not in r2.stdout + r2.stderr,
     "no size mismatch on the second run")
