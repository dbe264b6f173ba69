"""senders = TABLE on a listener (seed 002): an authenticated user may
only use the MAIL FROM addresses its entry gives (a list, @domain for a
whole domain); anything else is 553 5.7.1. Through python smtplib."""
import os, smtplib, sys, time, crypt
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import T, scratch, free_port, Daemon, BIN  # noqa

t = T()
SMTPD = os.path.join(BIN, "smtpd-lite")
d = scratch()
root = os.geteuid() == 0
uid, gid = (5001, 5001) if root else (os.getuid(), os.getgid())
out = os.path.join(d, "out")
os.makedirs(out)
if root:
    os.chown(out, uid, gid)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("bob %d:%d:%s\n" % (uid, gid, out))
h = crypt.crypt("pw", crypt.mksalt(crypt.METHOD_SHA512))
with open(os.path.join(d, "passwd"), "w") as f:
    f.write("alice %s\ncarl %s\nnobodyelse %s\n" % (h, h, h))
with open(os.path.join(d, "senders"), "w") as f:
    f.write("alice alice@a.test, postmaster@a.test\ncarl @c.test\n")
p = free_port()
conf = os.path.join(d, "smtpd.conf")
with open(conf, "w") as f:
    f.write("""hostname = s.test
user = %(user)s
queue = %(d)s/queue
[listener sub]
address = 127.0.0.1
port = %(p)d
auth = file:%(d)s/passwd
auth_plaintext = yes
auth_required = yes
senders = file:%(d)s/senders
[rule local]
rcpt_domain = b.test
userbase = file:%(d)s/userbase
action = mda
mda = /bin/sh -c "cat >> %(out)s/$USER"
%(runas)s
""" % dict(user="nobody" if root else os.environ.get("USER", ""), d=d, p=p,
           out=out, runas="user = %d:%d" % (uid, gid) if root else ""))
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=p, log=os.path.join(d, "smtpd.log"))


def mail_from(user, sender):
    s = smtplib.SMTP("127.0.0.1", p, timeout=10)
    s.login(user, "pw")
    code, text = s.mail(sender)
    if code == 250:
        code2, _ = s.rcpt("bob@b.test")
        if code2 == 250:
            s.data("Subject: from %s as %s\r\n\r\nx\r\n" % (user, sender))
    s.quit()
    return code, text.decode()


c, _ = mail_from("alice", "alice@a.test")
t.eq(c, 250, "alice may send as alice@a.test")
c, _ = mail_from("alice", "postmaster@A.TEST")
t.eq(c, 250, "alice may send as her second address (domain without case)")
c, txt = mail_from("alice", "ceo@a.test")
t.ok(c == 553 and "5.7.1" in txt, "alice as ceo@a.test: 553 5.7.1 (%d %s)" % (c, txt))
c, _ = mail_from("carl", "anyone@c.test")
t.eq(c, 250, "carl's @c.test entry allows any address of the domain")
c, _ = mail_from("carl", "carl@a.test")
t.eq(c, 553, "carl outside his domain is refused")
c, _ = mail_from("nobodyelse", "x@a.test")
t.eq(c, 553, "a user without an entry may send as no one")
end = time.time() + 10
while time.time() < end and open(os.path.join(out, "bob")).read().count("Subject:") < 3 \
        if os.path.exists(os.path.join(out, "bob")) else time.time() < end:
    time.sleep(0.1)
box = open(os.path.join(out, "bob")).read() if os.path.exists(os.path.join(out, "bob")) else ""
t.ok(box.count("Subject: from") == 3 and "ceo@a.test" not in box,
     "the three allowed messages were delivered, none of the refused")
t.ok("refused from=<ceo@a.test>" in srv.log(), "the refusal is logged")
