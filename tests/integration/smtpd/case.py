"""Domains (RFC 5321 2.4) and, as OpenSMTPD, Postfix and Dovecot look them
up, local parts are matched without case: rcpt_domain, users, userbase,
virtual, alias, a rule's sender table and a listener's senders, with
mixed-case addresses from the client and mixed-case keys in the config.
What is delivered is named as the table spells it (or folded), so
%{rcpt.user} and %{user} pick the same Maildir whatever the client's case.
An unauthenticated client still cannot relay, in any case."""
import os, re, subprocess
from _smtpd import (T, scratch, write, global_conf, start, free_port, users,
                    maildir, wait_for, queue_files, passwd_table, MAIL_UID,
                    MAIL_GID)

t = T()
d = scratch("case.")
names = ["alice", "bob", "Erin", "carol", "dave", "Frank"]
users(d, names)
write(os.path.join(d, "virtual"), "Info@Virt.Test carol\nDave dave\n")
write(os.path.join(d, "ub"), "Frank %d:%d:%s/mail/Frank\n" % (MAIL_UID, MAIL_GID, d))
passwd_table(d, "smtpuser", "s3cret")
port, sub = free_port(), free_port()
md = "%s/mail/%%{rcpt.user}/Maildir" % d
conf = global_conf(d) + """
[listener mx]
address = 127.0.0.1
port = %(port)d

[listener sub]
address = 127.0.0.1
port = %(sub)d
auth = file:%(d)s/smtp_passwd
auth_plaintext = yes
senders = smtpuser = "alice@Example.ORG, @Corp.Example"
tag = sub

[rule users]
rcpt_domain = Example.ORG, Other.Example
users = alice, bob, Erin
action = maildir
maildir = %(md)s
user = %(uid)d:%(gid)d

[rule userbase]
rcpt_domain = ub.test
userbase = file:%(d)s/ub
action = maildir
maildir = %(md)s
user = %(uid)d:%(gid)d

[rule virtual]
rcpt_domain = virt.test
virtual = file:%(d)s/virtual
action = maildir
maildir = %(d)s/mail/%%{user}/Maildir
user = %(uid)d:%(gid)d

[rule alias]
rcpt = @Alias.Test
alias = Team = "alice, bob", Boss = dave
action = maildir
maildir = %(md)s
user = %(uid)d:%(gid)d

[rule partner]
sender = @Partner.Example
rcpt_domain = partner-only.test
action = maildir
maildir = %(d)s/mail/alice/Maildir
user = %(uid)d:%(gid)d

[rule out]
from = auth
action = relay
""" % {"port": port, "sub": sub, "d": d, "md": md, "uid": MAIL_UID,
       "gid": MAIL_GID}
srv = start(d, conf, [port, sub])


def swaks(frm, to, subject, *extra, p=None):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % (p or port),
                        "--from", frm, "--to", to, "--helo", "client.test",
                        "--header", "Subject: %s" % subject,
                        "--body", "case test\n", "--timeout", "20"] + list(extra),
                       capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def got(user, subject, n=1):
    return wait_for(lambda: len([m for m in maildir(d, user)
                                 if "Subject: %s\n" % subject in m]) >= n, 15)


def one(user, subject):
    m = [x for x in maildir(d, user) if "Subject: %s\n" % subject in x]
    return m[0] if m else ""


# rcpt_domain and users
rc, out = swaks("Sender@Somewhere.Example", "ALICE@example.org", "s-users")
t.ok(rc == 0, "RCPT <ALICE@example.org> accepted (rcpt_domain = Example.ORG, "
     "users = alice)")
t.ok(got("alice", "s-users"), "delivered into alice's Maildir, not ALICE's")
t.ok(not os.path.exists(os.path.join(d, "mail", "ALICE")), "no Maildir in the client's spelling")
t.ok(re.search(r"^Delivered-To: alice@example.org$", one("alice", "s-users"), re.M),
     "the delivery address is folded: %{rcpt} = alice@example.org")
rc, out = swaks("x@y.example", "erin@OTHER.example", "s-erin")
t.ok(rc == 0 and got("Erin", "s-erin"),
     "users = Erin: <erin@OTHER.example> goes to the table's spelling, Maildir Erin")
rc, out = swaks("x@y.example", "Nobody@Example.org", "s-nobody")
t.ok(rc != 0 and re.search(r"550[ -]5\.1\.1", out),
     "an unknown user of a mixed-case served domain: 550 5.1.1")

# userbase
rc, out = swaks("x@y.example", "FRANK@UB.TEST", "s-ub")
t.ok(rc == 0 and got("Frank", "s-ub"),
     "userbase key Frank matches <FRANK@UB.TEST>, Maildir Frank")

# virtual: a full address key in mixed case, a bare user key
rc, out = swaks("x@y.example", "iNfO@virt.TEST", "s-virt")
t.ok(rc == 0 and got("carol", "s-virt"), "virtual Info@Virt.Test matches <iNfO@virt.TEST>")
t.ok(re.search(r"^Delivered-To: Info@virt.test$", one("carol", "s-virt"), re.M),
     "the virtual address as the table spells it, domain folded")
rc, out = swaks("x@y.example", "DAVE@Virt.Test", "s-virt2")
t.ok(rc == 0 and got("dave", "s-virt2"), "virtual key Dave matches <DAVE@Virt.Test>")
rc, out = swaks("x@y.example", "Eve@VIRT.test", "s-virt3")
t.ok(rc != 0 and re.search(r"550[ -]5\.1\.1", out), "an unknown virtual user: 550 5.1.1")

# alias, with rcpt = @Alias.Test
rc, out = swaks("x@y.example", "tEaM@ALIAS.test", "s-alias")
t.ok(rc == 0 and got("alice", "s-alias") and got("bob", "s-alias"),
     "alias Team matches <tEaM@ALIAS.test>: alice and bob")
rc, out = swaks("x@y.example", "boss@alias.test,BOSS@Alias.Test", "s-alias2")
t.ok(rc == 0 and got("dave", "s-alias2"), "alias Boss in two spellings")
t.eq(len([m for m in maildir(d, "dave") if "Subject: s-alias2\n" in m]), 1,
     "two spellings of one address give one copy")

# a rule's sender table
rc, out = swaks("Someone@PARTNER.example", "a@Partner-Only.Test", "s-sender")
t.ok(rc == 0 and got("alice", "s-sender"), "sender = @Partner.Example matches <Someone@PARTNER.example>")
rc, out = swaks("someone@other.example", "a@partner-only.test", "s-sender2")
t.ok(rc != 0 and re.search(r"550[ -]5\.7\.1", out), "another sender: refused")

# no relay without authentication, whatever the case
for rcpt in ("victim@Remote.Example", "VICTIM@REMOTE.EXAMPLE"):
    rc, out = swaks("alice@example.org", rcpt, "s-relay")
    t.ok(rc != 0 and re.search(r"550[ -]5\.7\.1", out),
         "unauthenticated relay to <%s> refused" % rcpt)
rc, out = swaks("alice@EXAMPLE.ORG", "x@remote.example", "s-relay2")
t.ok(rc != 0 and re.search(r"550[ -]5\.7\.1", out),
     "a sender in a served domain (mixed case) does not open the relay")

# a listener's senders: domains compared without case (session.c compares
# the local part exactly)
auth = ["-a", "PLAIN", "-au", "smtpuser", "-ap", "s3cret"]
rc, out = swaks("alice@EXAMPLE.org", "bob@example.org", "s-senders", *auth, p=sub)
t.ok(rc == 0 and got("bob", "s-senders"), "senders alice@Example.ORG allows <alice@EXAMPLE.org>")
rc, out = swaks("anyone@corp.EXAMPLE", "bob@example.org", "s-senders2", *auth, p=sub)
t.ok(rc == 0 and got("bob", "s-senders2"), "senders @Corp.Example allows <anyone@corp.EXAMPLE>")
rc, out = swaks("mallory@example.org", "bob@example.org", "s-senders3", *auth, p=sub)
t.ok(rc != 0 and re.search(r"553[ -]5\.7\.1", out), "another sender is still refused")

t.ok(wait_for(lambda: len(queue_files(d)) == 0, 10), "the queue drains")
srv.stop()
