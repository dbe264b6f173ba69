"""smtpd-lite's relay action through a smarthost: a second smtpd-lite
(STARTTLS required, AUTH against a passwd table) reached with an
smtp+tls:// URL, the certificate verified against the test CA and the
credentials from a secrets table. Also: a message with more than 100
Received fields is a loop and bounces; a relay that keeps failing bounces
once queue_lifetime is over; a queued message survives a restart."""
import os, re, smtplib, subprocess, sys, time, crypt
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import T, scratch, free_port, Daemon, mkcerts, BIN  # noqa
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "smtpd"))
from _smtpd import users, maildir, LDA  # noqa

t = T()
SMTPD = os.path.join(BIN, "smtpd-lite")
d = scratch()
certs = mkcerts(os.path.join(d, "certs"))
root = os.geteuid() == 0
uid, gid = (5001, 5001) if root else (os.getuid(), os.getgid())
user = "nobody" if root else os.environ.get("USER", "")
runas = "user = %d:%d" % (uid, gid) if root else ""
out = os.path.join(d, "out")
os.makedirs(out)
if root:
    os.chown(out, uid, gid)
with open(os.path.join(d, "userbase.smart"), "w") as f:
    f.write("alice %d:%d:%s\nbob %d:%d:%s\ncarl %d:%d:%s\n"
            % (uid, gid, out, uid, gid, out, uid, gid, out))
pw = os.path.join(d, "passwd")
with open(pw, "w") as f:
    f.write("relayuser %s\n" % crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_SHA512)))
secrets = os.path.join(d, "secrets")
with open(secrets, "w") as f:
    f.write("provider relayuser:s3cret\n")
os.chmod(secrets, 0o600)   # root only: loaded before the daemon drops

# the smarthost: delivers example.org to bob
ps = free_port()
with open(os.path.join(d, "smart.conf"), "w") as f:
    f.write("""hostname = smarthost.test
user = %(user)s
queue = %(d)s/smartq
[listener sub]
address = 127.0.0.1
port = %(p)d
tls = require
cert = %(c)s/server.crt
key = %(c)s/server.key
auth = file:%(pw)s
auth_required = yes
[rule local]
rcpt_domain = example.org
userbase = file:%(d)s/userbase.smart
action = mda
mda = /bin/sh -c "cat >> %(out)s/smart-$USER"
%(runas)s
""" % dict(user=user, d=d, p=ps, c=certs, pw=pw, out=out, runas=runas))
smart = Daemon([SMTPD, "-F", "-v", "-c", os.path.join(d, "smart.conf")],
               port=ps, log=os.path.join(d, "smart.log"))

p = free_port()
dead = free_port()
conf = os.path.join(d, "smtpd.conf")


users(d, ["alice"])


def config(lifetime, smart_port):
    with open(conf, "w") as f:
        f.write("""hostname = relay.test
user = %(user)s
queue = %(d)s/queue
lda = %(lda)s
retry_min = 1
retry_max = 1
queue_lifetime = %(life)d
timeout = 10
[listener in]
address = 127.0.0.1
port = %(p)d
[rule local]
rcpt_domain = local.test
action = maildir
maildir = %(d)s/mail/%%{rcpt.user}/Maildir
user = %(uid)d:%(gid)d
[rule smart]
rcpt_domain = example.org
action = relay
relay = smtp+tls://provider@localhost:%(sp)d
secrets = file:%(d)s/secrets
cafile = %(c)s/ca.crt
[rule dead]
rcpt_domain = dead.example
action = relay
relay = smtp://127.0.0.1:%(dead)d
""" % dict(user=user, d=d, p=p, out=out, runas=runas, sp=smart_port,
           c=certs, dead=dead, life=lifetime, lda=LDA, uid=uid, gid=gid,
           ))


def wait(pred, limit=20):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def box(name):
    if name == "alice":
        return "\n".join(maildir(d, "alice"))
    q = os.path.join(out, name)
    return open(q, errors="replace").read() if os.path.exists(q) else ""


def submit(rcpt, msg):
    s = smtplib.SMTP("127.0.0.1", p, timeout=10)
    s.sendmail("alice@local.test", [rcpt], msg)
    s.quit()


def queued():
    q = os.path.join(d, "queue", "msg")
    return [n for n in os.listdir(q) if len(n) == 24] if os.path.isdir(q) else []


config(3, ps)
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=p, log=os.path.join(d, "smtpd.log"))
submit("bob@example.org", "Subject: via the smarthost\r\n\r\nhello\r\n")
t.ok(wait(lambda: "via the smarthost" in box("smart-bob")),
     "relayed through the smarthost over verified STARTTLS with AUTH")
t.ok("auth=ok user=relayuser" in smart.log() and "s3cret" not in smart.log()
     and "s3cret" not in srv.log(), "the smarthost saw the table's user; no password logged")

s = smtplib.SMTP("127.0.0.1", p, timeout=10)
s.sendmail("alice@local.test", ["bob@example.org", "carl@example.org", "ghost@example.org"],
           "Subject: grouped\r\n\r\none transaction\r\n")
s.quit()
t.ok(wait(lambda: "grouped" in box("smart-bob") and "grouped" in box("smart-carl")),
     "a message to three recipients of one route: the two valid ones delivered")
t.ok(wait(lambda: "ghost@example.org" in box("alice") and "5.1.1" in box("alice")),
     "the refused one bounced alone")
t.ok("message/delivery-status" in box("alice") and
     "Final-Recipient: rfc822; ghost@example.org" in box("alice") and
     "Action: failed" in box("alice"), "the bounce is an RFC 3464 DSN in the sender's Maildir")
t.ok(len(re.findall(r"auth=ok user=relayuser", smart.log())) == 2 and
     re.search(r"accepted id=\S+ from=<alice@local.test> rcpts=2", smart.log()),
     "the route's recipients went in one connection and one transaction")

# two messages for one route while deliveries are paused: one connection
MAILCTL = os.path.join(BIN, "mailctl")
subprocess.run([MAILCTL, "-c", conf, "pause"], check=True, capture_output=True)
submit("bob@example.org", "Subject: batch one\r\n\r\n1\r\n")
submit("carl@example.org", "Subject: batch two\r\n\r\n2\r\n")
subprocess.run([MAILCTL, "-c", conf, "resume"], check=True, capture_output=True)
t.ok(wait(lambda: "batch one" in box("smart-bob") and "batch two" in box("smart-carl")),
     "two queued messages for one smarthost delivered")
sess = re.findall(r"smtpd-lite\[(\d+)\]: session=\S+ accepted id=\S+ from=<alice@local.test> rcpts=1",
                  smart.log())
t.ok(len(re.findall(r"auth=ok user=relayuser", smart.log())) == 3 and len(sess) >= 3
     and sess[-1] == sess[-2],
     "both went over one connection, a transaction each (smtpc_deliver_batch)")

loop = "".join("Received: from hop%d by x; Sun, 1 Jan 2026 00:00:00 +0000\r\n" % i
               for i in range(101))
submit("bob@example.org", loop + "Subject: looping\r\n\r\nround and round\r\n")
t.ok(wait(lambda: "looping" in box("alice") and "5.4.6" in box("alice")),
     "101 Received fields: bounced as a loop (5.4.6) to the sender's Maildir")
t.ok("round and round" not in box("smart-bob"), "the looping message was not relayed")

submit("carol@dead.example", "Subject: never\r\n\r\nx\r\n")
t.ok(wait(lambda: "deferred" in srv.log() and "carol@dead.example" in srv.log()),
     "a relay that cannot connect is deferred")
t.ok(wait(lambda: "Subject: never" in box("alice") and "5.4.7" in box("alice"), 15),
     "after queue_lifetime the recipient bounces (5.4.7) to the sender")

# restart: a message kept for a smarthost that is down survives
srv.stop()
config(3600, dead)
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=p, log=os.path.join(d, "smtpd.log"))
submit("bob@example.org", "Subject: survives\r\n\r\nkept\r\n")
t.ok(wait(lambda: "rcpt=<bob@example.org> rule=smart deferred" in srv.log())
     and len(queued()) == 1, "the message waits in the queue while the smarthost is unreachable")
srv.stop()
t.ok(len(queued()) == 1, "the queue file is still there after the daemon stopped")
config(3600, ps)
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=p, log=os.path.join(d, "smtpd.log"))
t.ok(wait(lambda: "survives" in box("smart-bob")) and wait(lambda: not queued()),
     "after a restart it is delivered and leaves the queue")
