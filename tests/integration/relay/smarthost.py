"""Relay through a real smarthost: a second smtpd-lite on loopback with a
submission listener (STARTTLS required, AUTH against a passwd table),
reached by smtpc_deliver through an smtp+tls:// URL with certificate
verification and credentials from a secrets table; the message lands in
the smarthost's mailbox. Also its refusals: a wrong password, relaying
denied for an unknown domain, and a client that will not send a password
in plaintext."""
import glob, os, subprocess, time
from _relay import (T, scratch, free_port, build_driver, driver, mkcerts,
                    Daemon, TOP)

t = T()
BIN = os.environ.get("COURRIEL_BIN") or os.path.join(TOP, "build", "bin")
SMTPD = os.path.join(BIN, "smtpd-lite")
if not os.path.exists(SMTPD):
    t.ok(False, "smtpd-lite is built (%s)" % SMTPD)
    raise SystemExit(1)
d = scratch()
drv = build_driver(d)
certs = mkcerts(os.path.join(d, "certs"))
ca = os.path.join(certs, "ca.crt")
root = os.geteuid() == 0
uid, gid = (5001, 5001) if root else (os.getuid(), os.getgid())
out_dir = os.path.join(d, "out")
os.makedirs(out_dir)
if root:
    os.chown(out_dir, uid, gid)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s\n" % (uid, gid, out_dir))

# the smarthost's password table, hashed by mailpasswd
h = subprocess.run([os.path.join(BIN, "mailpasswd")], input="pa:ss word\n",
                   capture_output=True, text=True)
if h.returncode != 0 or not h.stdout.strip():
    import crypt
    hsh = crypt.crypt("pa:ss word", crypt.mksalt(crypt.METHOD_SHA512))
else:
    hsh = h.stdout.strip()
pw = os.path.join(d, "smtp_passwd")
with open(pw, "w") as f:
    f.write("relayuser %s\n" % hsh)
os.chmod(pw, 0o600)

psub = free_port()
conf = os.path.join(d, "smtpd.conf")
with open(conf, "w") as f:
    f.write("""hostname = smarthost.test
user = %(user)s
queue = %(d)s/queue
retry_min = 1
retry_max = 2
timeout = 20

[listener submission]
address = 127.0.0.1
port = %(p)d
tls = require
cert = %(c)s/server.crt
key = %(c)s/server.key
auth = file:%(pw)s
auth_required = yes

[rule local]
rcpt_domain = example.org
userbase = file:%(d)s/userbase
action = mda
mda = /usr/bin/tee %(out)s/%%{rcpt.user}
%(runas)s
""" % {"user": "nobody" if root else os.environ.get("USER", ""), "d": d,
       "p": psub, "c": certs, "pw": pw, "out": out_dir,
       "runas": "user = %d:%d" % (uid, gid) if root else ""})
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=psub,
             log=os.path.join(d, "smtpd.log"))

secrets = os.path.join(d, "secrets")
with open(secrets, "w") as f:
    f.write("provider relayuser:pa:ss word\nbad relayuser:wrong\n")
os.chmod(secrets, 0o600)
msg = os.path.join(d, "msg")
with open(msg, "w") as f:
    f.write("From: me@courriel.test\nSubject: via smarthost\n\n"
            ".a line with a leading dot\nbye\n")


def relay(url, *rcpts, extra=()):
    return driver(drv, ["relay", "-T", "10000", "-U", url, "-S", "file:" + secrets]
                  + list(extra) + ["-f", "me@courriel.test"] + list(rcpts), msg)


out, err, res = relay("smtp+tls://provider@localhost:%d" % psub,
                      "alice@example.org", extra=("-c", ca))
r = res.get((1, "alice@example.org"), ("?", 0, ""))
t.ok(r[0] == "ok" and r[1] == 250, "smarthost accepted over STARTTLS + AUTH, "
     "verified: %r" % (r,))


def mailbox():
    p = os.path.join(out_dir, "alice")
    return open(p).read() if os.path.exists(p) else ""


end = time.time() + 15
while time.time() < end and "via smarthost" not in mailbox():
    time.sleep(0.05)
box = mailbox()
t.ok("Subject: via smarthost" in box, "the smarthost delivered it")
t.ok("\n.a line with a leading dot\n" in box, "dot-stuffing undone on the far side")
t.ok("auth=ok user=relayuser" in srv.log() and "pa:ss word" not in srv.log(),
     "the smarthost authenticated the table's user (no password in its log)")

out, err, res = relay("smtp+tls://bad@localhost:%d" % psub, "alice@example.org",
                      extra=("-c", ca))
r = res.get((1, "alice@example.org"), ("?", 0, ""))
t.ok(r[0] == "temp" and "535" in r[2], "wrong password: temporary, with the "
     "smarthost's reply: %r" % (r,))
out, err, res = relay("smtp+tls://provider@localhost:%d" % psub,
                      "someone@elsewhere.example", extra=("-c", ca))
r = res.get((1, "someone@elsewhere.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and r[1] >= 500, "a recipient the smarthost refuses: "
     "permanent with its reply: %r" % (r,))
out, err, res = relay("smtp+tls://provider@localhost:%d" % psub,
                      "alice@example.org")
r = res.get((1, "alice@example.org"), ("?", 0, ""))
t.ok(r[0] == "temp" and "certificate" in r[2],
     "smarthost certificate from an unknown CA refused: %r" % (r,))
out, err, res = relay("smtp://provider@127.0.0.1:%d" % psub, "alice@example.org",
                      extra=("-c", ca))
r = res.get((1, "alice@example.org"), ("?", 0, ""))
t.ok(r[0] == "ok", "smtp:// (opportunistic) still upgrades and delivers: %r" % (r,))
