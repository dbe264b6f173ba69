"""smtpd-lite's relay action end to end: a message submitted to smtpd-lite
for a remote domain is relayed to that domain's MX (found through a
private unbound; the first MX is down), a 4xx answer is retried, a 5xx
answer and a null MX bounce to the sender's mailbox with a DSN."""
import os, smtplib, subprocess, time
from _relay import (T, scratch, free_port, smtp_server, events, unbound,
                    Daemon, TOP)

t = T()
BIN = os.environ.get("COURRIEL_BIN") or os.path.join(TOP, "build", "bin")
SMTPD = os.path.join(BIN, "smtpd-lite")
d = scratch()
root = os.geteuid() == 0
uid, gid = (5001, 5001) if root else (os.getuid(), os.getgid())
out_dir = os.path.join(d, "out")
os.makedirs(out_dir)
if root:
    os.chown(out_dir, uid, gid)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s\n" % (uid, gid, out_dir))

mxport = free_port()
dnsport = free_port()
unbound(d, dnsport, ['local-zone: "example." static'] + ["local-data: " + x for x in [
    '"multi.example. MX 10 down.multi.example."',
    '"multi.example. MX 20 up.multi.example."',
    '"down.multi.example. A 127.0.0.2"',
    '"up.multi.example. A 127.0.0.3"',
    '"nullmx.example. MX 0 ."']])
up, uplog = smtp_server(d, "up", mxport, addr="127.0.0.3")

p = free_port()
conf = os.path.join(d, "smtpd.conf")
with open(conf, "w") as f:
    f.write("""hostname = relay.test
user = %(user)s
queue = %(d)s/queue
resolver = 127.0.0.1:%(dns)d
retry_min = 1
retry_max = 2
timeout = 20

[listener in]
address = 127.0.0.1
port = %(p)d

[rule local]
rcpt_domain = local.test
userbase = file:%(d)s/userbase
action = mda
mda = /bin/sh -c "cat >> %(out)s/$USER"
%(runas)s

[rule out]
rcpt_domain = multi.example, nullmx.example
action = relay
mx_port = %(mx)d
""" % {"user": "nobody" if root else os.environ.get("USER", ""), "d": d,
       "dns": dnsport, "p": p, "out": out_dir, "mx": mxport,
       "runas": "user = %d:%d" % (uid, gid) if root else ""})
probe = os.path.join(d, "probe.conf")
with open(probe, "w") as f:
    f.write("queue = %s/probe\n[rule out]\nrcpt_domain = x.example\n"
            "action = relay\n" % d)
chk = subprocess.run([SMTPD, "-n", "-c", probe], capture_output=True, text=True)
if "not supported yet" in chk.stderr:
    # the wiring (docs/relay.md) is not in smtpd-lite yet
    print("ok - # skip: smtpd-lite has no relay action yet")
    raise SystemExit(0)
chk = subprocess.run([SMTPD, "-n", "-c", conf], capture_output=True, text=True)
t.ok(chk.returncode == 0, "relay rule accepted by the config check: " +
     chk.stderr.strip())
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=p, log=os.path.join(d, "smtpd.log"))


def submit(rcpt, subject):
    s = smtplib.SMTP("127.0.0.1", p, timeout=10)
    s.sendmail("alice@local.test", [rcpt], "Subject: %s\r\n\r\nbody\r\n" % subject)
    s.quit()


def wait(pred, limit=20):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def mbox():
    q = os.path.join(out_dir, "alice")
    return open(q).read() if os.path.exists(q) else ""


submit("bob@multi.example", "relayed by smtpd-lite")
t.ok(wait(lambda: any("relayed by smtpd-lite" in m["data"]
                      for m in events(uplog, "message"))),
     "smtpd-lite relayed to the second MX (the first is down)")
submit("perm1@multi.example", "will bounce")
t.ok(wait(lambda: "will bounce" in mbox()), "a 5xx answer bounced to the sender")
box = mbox()
t.ok("message/delivery-status" in box and "perm1@multi.example" in box and
     "no such user" in box, "the bounce is a DSN with the MX's words")
submit("temp1@multi.example", "will be retried")
t.ok(wait(lambda: sum(1 for e in events(uplog, "cmd")
                      if e["line"] == "RCPT TO:<temp1@multi.example>") >= 2),
     "a 4xx answer is retried")
submit("carl@nullmx.example", "null mx")
t.ok(wait(lambda: "null mx" in mbox() and "7505" in mbox()),
     "a null MX bounces with its reason")
