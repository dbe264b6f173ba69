"""etc/examples/small-domain (seed 002): setup.sh installs into a temp
COURRIEL_ETC, passwords set with mailpasswd -s bcrypt -t, supervisord runs
smtpd-lite and imapd. The MX takes mail for the virtual users of both
domains from anyone (an alias to two users too) and refuses relaying;
submission requires TLS and AUTH and lets each user send only as their
own addresses (the senders table setup.sh writes); their mail to another
domain is relayed to its MX (remote.example in a private unbound, MX
127.0.0.1, a scripted SMTP server on a free port), and a remote 550
bounces into the sender's Maildir; imapd lists the
special-use folders and a client can file into Sent."""
import imaplib, os, re, smtplib, ssl, subprocess, sys
from _suite import (T, scratch, free_port, TOP, BIN, ROOT, wait_for,
                    pid_of, kill9, alive, count, swaks, Supervised)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "relay"))
from _relay import unbound, smtp_server, events  # noqa: E402

t = T()
ex = os.path.join(TOP, "etc", "examples", "small-domain")
d = scratch("suite-domain.")
etc = os.path.join(d, "etc")
# the world outside: remote.example's MX is a scripted server on loopback
# (libunbound answers test., invalid. and localhost. itself: use example.)
dnsport, rport = free_port(), free_port()
dns = unbound(d, dnsport, ['local-zone: "example." static'] + [
    "local-data: " + x for x in ['"remote.example. MX 10 mx.remote.example."',
                                 '"mx.remote.example. A 127.0.0.1"']])
remote, rlog = smtp_server(d, "remote", rport)
P = {k: free_port() for k in ("MX_PORT", "SUBMISSION_PORT", "IMAP_PORT", "IMAPS_PORT")}
env = dict(os.environ, COURRIEL_ETC=etc, COURRIEL_BIN=BIN, COURRIEL_SBIN=BIN,
           VMAIL_DIR=d + "/vmail", VMAIL_UID="5004", VMAIL_GID="5004",
           SPOOL=d + "/spool", LISTEN_ADDRESS="127.0.0.1",
           RESOLVER="127.0.0.1:%d" % dnsport, RELAY_MX_PORT=str(rport),
           **{k: str(v) for k, v in P.items()})
p = subprocess.run(["sh", os.path.join(ex, "setup.sh")], env=env,
                   capture_output=True, text=True, timeout=60)
t.ok(p.returncode == 0 and "mailpasswd -s bcrypt" in p.stdout,
     "setup.sh installs (rc %d %s)" % (p.returncode, p.stderr.strip()[-200:]))
for u, pw in (("alice", "alice pw"), ("bob", "bob pw")):
    p = subprocess.run([os.path.join(BIN, "mailpasswd"), "-s", "bcrypt", "-t",
                        os.path.join(etc, "passwd"), "add", u], input=pw + "\n",
                       capture_output=True, text=True, timeout=30)
    t.ok(p.returncode == 0, "mailpasswd -s bcrypt -t passwd add %s" % u)
with open(os.path.join(etc, "passwd")) as f:
    # (not a count of "$2": a salt may begin with 2, after "$10$")
    t.eq(len(re.findall(r"^\w+\t\$2[aby]\$\d\d\$", f.read(), re.M)), 2,
         "bcrypt hashes in the table")
with open(os.path.join(etc, "senders")) as f:
    t.ok("alice\talice@labomedia.org, contact@labomedia.org" in f.read(),
         "setup.sh writes the senders table from the virtuals")
for prog, conf in (("smtpd-lite", "smtpd-lite.conf"), ("imapd", "imapd.conf")):
    p = subprocess.run([os.path.join(BIN, prog), "-n", "-c", os.path.join(etc, conf)],
                       env=env, capture_output=True, text=True, timeout=30)
    t.ok(p.returncode == 0, "%s -n accepts the installed %s (%s)"
         % (prog, conf, (p.stdout + p.stderr).strip()[-150:]))
conf = os.path.join(etc, "supervisord.conf")
sv = Supervised(["supervisord", "-n", "-c", conf], env, list(P.values()), conf,
                os.path.join(d, "supervisord.out"))
if not t.ok(sv.ok, "supervisord runs smtpd-lite and imapd"):
    print(sv.log())
    raise SystemExit(1)
crt = os.path.join(etc, "mail.crt")
box = lambda u: os.path.join(d, "vmail", u, "Maildir")  # noqa: E731


def mx(*args):
    return swaks(P["MX_PORT"], crt, "-tls", "--from", "friend@example.net", *args)


def sub(*args):
    return swaks(P["SUBMISSION_PORT"], crt, "-tls", *args)


rc, o = mx("--to", "alice@labomedia.org", "--header", "Subject: mx-alice")
t.ok(rc == 0, "MX with STARTTLS: mail for alice@labomedia.org accepted")
rc, o = mx("--to", "contact@labomedia.org", "--header", "Subject: mx-contact")
t.ok(rc == 0, "MX: contact@labomedia.org (virtual: alice, bob) accepted")
t.ok(wait_for(lambda: count(box("alice"), "Subject: mx-alice") == 1 and
              count(box("alice"), "Subject: mx-contact") == 1 and
              count(box("bob"), "Subject: mx-contact") == 1, 10),
     "delivered: alice once, the alias to alice and bob")
if ROOT:
    f = os.listdir(os.path.join(box("bob"), "new"))[0]
    t.eq(os.stat(os.path.join(box("bob"), "new", f)).st_uid, 5004,
         "written as the virtual mail user of the userbase")
rc, o = mx("--to", "nosuch@labomedia.org")
t.ok(rc != 0 and "550 5.1.1" in o, "MX: unknown user of our domain refused (550 5.1.1)")
rc, o = mx("--to", "someone@gmail.com")
t.ok(rc != 0 and "550 5.7.1" in o, "MX: no relaying for strangers (550 5.7.1)")
rc, o = mx("--to", "someone@remote.example")
t.ok(rc != 0 and "550 5.7.1" in o,
     "MX: no relaying to remote.example either, though it resolves (550 5.7.1)")

rc, o = sub("--to", "bob@radio-campus.org")
t.ok(rc != 0 and "530" in o, "submission without AUTH: 530")
rc, o = swaks(P["SUBMISSION_PORT"], crt, "--to", "bob@radio-campus.org")
t.ok(rc != 0 and "530" in o, "submission before STARTTLS: 530")
rc, o = sub("-au", "alice", "-ap", "alice pw", "--from", "alice@labomedia.org",
            "--to", "bob@radio-campus.org", "--header", "Subject: sub-internal")
t.ok(rc == 0, "submission: alice (bcrypt) to bob@radio-campus.org")
t.ok(wait_for(lambda: count(box("bob"), "Subject: sub-internal") == 1, 10),
     "bob has it")
rc, o = sub("-au", "alice", "-ap", "alice pw", "--from", "alice@gmail.com",
            "--to", "bob@radio-campus.org")
t.ok(rc != 0 and "553 5.7.1" in o,
     "submission: a sender outside our domains is refused (553 5.7.1)")
rc, o = sub("-au", "alice", "-ap", "alice pw", "--from", "bob@radio-campus.org",
            "--to", "bob@radio-campus.org")
t.ok(rc != 0 and "553 5.7.1" in o,
     "submission: alice may not send as bob@radio-campus.org (553 5.7.1)")
rc, o = sub("-au", "alice", "-ap", "alice pw", "--from", "someone@elsewhere.example",
            "--to", "someone@remote.example")
t.ok(rc != 0 and "553 5.7.1" in o,
     "submission: nor as someone@elsewhere.example (553 5.7.1)")
rc, o = sub("-au", "alice", "-ap", "alice pw", "--from", "alice@labomedia.org",
            "--to", "someone@remote.example", "--header", "Subject: sub-out")
t.ok(rc == 0, "submission: alice as alice@labomedia.org to someone@remote.example")


def relayed():
    return [m for m in events(rlog, "message") if "Subject: sub-out" in m["data"]]


got = wait_for(relayed, 20)
t.ok(len(got) == 1 and got[0]["mail"].startswith("<alice@labomedia.org>") and
     got[0]["rcpts"] == ["someone@remote.example"],
     "relayed to remote.example's MX (found through DNS), sender kept: %s"
     % [(m["mail"], m["rcpts"]) for m in got])
rc, o = sub("-au", "alice", "-ap", "alice pw", "--from", "alice@labomedia.org",
            "--to", "perm-nobody@remote.example", "--header", "Subject: sub-perm")
t.ok(rc == 0, "submission: alice to perm-nobody@remote.example (the MX will say 550)")
t.ok(wait_for(lambda: count(box("alice"), "Undelivered Mail Returned") == 1 and
              count(box("alice"), "perm-nobody@remote.example") == 1, 20),
     "the remote 550 bounces into alice's Maildir")
t.ok(not any("someone@remote.example" in m["rcpts"] and
             not m["mail"].startswith("<alice@labomedia.org>")
             for m in events(rlog, "message")),
     "nothing refused above reached the remote MX")
rc, o = sub("-au", "alice", "-ap", "bob pw", "--to", "bob@radio-campus.org")
t.ok(rc != 0 and "535" in o, "submission: a wrong password is refused (535)")

ctx = ssl.create_default_context(cafile=crt)
m = imaplib.IMAP4("127.0.0.1", P["IMAP_PORT"])
m.starttls(ssl_context=ctx)
m.login("bob", "bob pw")
typ, boxes = m.list()
flags = b" ".join(boxes)
t.ok(all(f in flags for f in (b"\\Sent", b"\\Drafts", b"\\Junk", b"\\Trash")),
     "LIST: Sent, Drafts, Junk and Trash with their special-use flags")
typ, subs = m.lsub()
t.ok(all(any(n in x for x in subs) for n in (b"Sent", b"Trash")),
     "and they are subscribed")
typ, data = m.select("INBOX")
t.eq(int(data[0]), 2, "bob's INBOX holds his 2 messages")
typ, _ = m.append("Sent", "\\Seen", None,
                  b"From: bob@radio-campus.org\r\nSubject: filed\r\n\r\nx\r\n")
t.eq(typ, "OK", "APPEND to Sent")
typ, data = m.status("Sent", "(MESSAGES)")
t.ok(typ == "OK" and b"MESSAGES 1" in data[0], "Sent holds it")
m.logout()
m = imaplib.IMAP4_SSL("127.0.0.1", P["IMAPS_PORT"], ssl_context=ctx)
m.login("alice", "alice pw")
typ, data = m.select("INBOX", readonly=True)
t.eq(int(data[0]), 3, "IMAPS: alice's INBOX holds her 2 messages and the bounce")
m.logout()

old = pid_of(conf, "smtpd-lite", env)
kill9(old)
new = wait_for(lambda: pid_of(conf, "smtpd-lite", env) not in (0, old) and
               pid_of(conf, "smtpd-lite", env), 15)
t.ok(new and not alive(old), "kill -9 smtpd-lite: supervisord starts it again")
rc, o = mx("--to", "bob@radio-campus.org", "--header", "Subject: after-restart")
t.ok(rc == 0 and wait_for(lambda: count(box("bob"), "Subject: after-restart") == 1, 10),
     "and the MX takes mail again")
t.eq(sv.stop(), 0, "supervisord stops cleanly")
