"""smtpd-lite protocol dialogues in inetd mode (-i): no ports, no runner,
so what a session queued stays in queue/msg where the test reads it."""
import os, re, subprocess
from _smtpd import (T, scratch, write, global_conf, inetd, queue_files, SMTPD,
                    ROOT)

t = T()
d = scratch()
os.makedirs(os.path.join(d, "bin"))
mda = write(os.path.join(d, "bin", "mda"), "#!/bin/sh\ncat >/dev/null\n", 0o755)
write(os.path.join(d, "vusers"), "imapuser1 vmail\nimapuser2 vmail\n")
write(os.path.join(d, "aliases"), "# aliases(5)\nroot: alice\npostmaster: alice\n"
      "team: alice, bob@example.org\n")
conf = write(os.path.join(d, "smtpd.conf"), global_conf(d, "max_message_size = 2000\nmax_recipients = 3") + """
[listener mx]
address = 127.0.0.1
port = 25
tag = in

[rule vusers]
rcpt_domain = test.test
virtual = file:%(d)s/vusers
action = mda
mda = %(mda)s -d %%{rcpt.user}
user = nobody

[rule aliases]
rcpt_domain = example.org
alias = file:%(d)s/aliases
users = alice, bob
action = mda
mda = %(mda)s %%{rcpt.user}
user = nobody

[rule spam]
rcpt = spam@example.net
action = reject
""" % {"d": d, "mda": mda})


def msgs():
    out = []
    for p in queue_files(d):
        with open(p, "rb") as f:
            out.append(f.read().decode("utf-8", "replace"))
    return out


def clear():
    for p in queue_files(d):
        os.unlink(p)


def codes(out):
    return [l[:3] for l in out.split("\r\n") if l and l[3:4] == " "]


# 1. a whole pipelined transaction written at once: answers in order
out, err = inetd(conf, b"EHLO c.test\r\nMAIL FROM:<a@b.org>\r\n"
                 b"RCPT TO:<alice@example.org>\r\nRCPT TO:<x@elsewhere.net>\r\n"
                 b"RCPT TO:<imapuser1@test.test>\r\nDATA\r\n"
                 b"Subject: one\r\n\r\n..leading dot\r\nbare lf\nline\r\n.\r\n"
                 b"QUIT\r\n")
t.eq(codes(out), ["220", "250", "250", "250", "550", "250", "354", "250", "221"],
     "pipelined replies in order")
t.ok("250-PIPELINING" in out and "250-8BITMIME" in out and "250-SMTPUTF8" in out
     and "250-ENHANCEDSTATUSCODES" in out and "250-SIZE 2000" in out,
     "EHLO lists the extensions")
t.ok("550 5.7.1 <x@elsewhere.net>: relaying denied" in out, "no open relay")
m = msgs()
t.eq(len(m), 1, "one message queued")
body = m[0].split("body\n", 1)[1] if m else ""
t.ok(body.startswith("Received: from c.test (local)"), "Received header first")
t.ok(body.endswith("Subject: one\n\n.leading dot\nbare lf\nline\n"),
     "dot-unstuffed, LF line ends on disk")
t.ok("dest 17:alice@example.org\n" in m[0] and
     "dest 19:imapuser1@test.test\n" in m[0] and "user 5:vmail\nrule 6:vusers" in m[0],
     "envelope has length-prefixed destinations")
t.ok("accepted id=" in err and "rcpts=2" in err, "acceptance logged")
clear()

# 2. SMTP smuggling: <LF>.<LF> and <LF>.<CR><LF> never end the data
out, err = inetd(conf, b"EHLO c\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<alice@example.org>\r\n"
                 b"DATA\r\nhello\n.\nMAIL FROM:<evil@x.org>\r\nhi\n.\r\nmore\r\n.\r\nQUIT\r\n")
t.eq(codes(out), ["220", "250", "250", "250", "354", "250", "221"],
     "smuggled commands are data")
m = msgs()
t.ok(len(m) == 1 and "MAIL FROM:<evil@x.org>\nhi\n\nmore\n" in m[0],
     "one message holding the smuggled text")
clear()

# 3. bare CR is refused, the session goes on
out, err = inetd(conf, b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<alice@example.org>\r\n"
                 b"DATA\r\na\rb\r\n.\r\nNOOP\r\nQUIT\r\n")
t.ok("554 5.6.0 bare CR" in out and codes(out)[-2:] == ["250", "221"],
     "bare CR refused and the session continues")
t.eq(len(msgs()), 0, "nothing queued for a refused message")

# 4. limits and malformed commands
out, err = inetd(conf, b"EHLO c\r\n" + b"NOOP " + b"x" * 2000 + b"\r\n"
                 b"MAIL FROM:bob\r\nRCPT TO:<alice@example.org>\r\nFOO\r\n"
                 b"MAIL FROM:<a@b.org> SIZE=5000\r\nMAIL FROM:<a@b.org> BAR=1\r\n"
                 b"MAIL FROM:<a@b.org>\r\nRCPT TO:<alice@example.org>\r\n"
                 b"RCPT TO:<spam@example.net>\r\nRCPT TO:<bob@example.org>\r\n"
                 b"RCPT TO:<root@example.org>\r\nRCPT TO:<team@example.org>\r\n"
                 b"DATA\r\n" + (b"y" * 100 + b"\r\n") * 30 + b".\r\nNOOP\r\nQUIT\r\n")
c = codes(out)
t.ok("500 5.5.2 line too long" in out, "line over 1000 octets: 500")
t.ok("553 5.1.7" in out, "MAIL without <>: 553")
t.ok("503 5.5.1 need MAIL" in out, "RCPT before MAIL: 503")
t.ok("500 5.5.1 command unrecognized" in out, "unknown command: 500")
t.ok("552 5.3.4 message too big (limit 2000)" in out, "SIZE over the limit: 552")
t.ok("555 5.5.4" in out, "unknown MAIL parameter: 555")
t.ok("550 5.7.1 <spam@example.net>: refused by policy" in out, "reject rule")
t.ok("452 4.5.3 too many recipients" in out, "max_recipients: 452")
t.ok("552 5.3.4 message too big\r\n" in out, "data over max_message_size: 552")
t.eq(c[-2:], ["250", "221"], "session alive after every error")
t.eq(len(msgs()), 0, "nothing queued")

# 5. tables: unknown users refused at RCPT, aliases expanded
out, err = inetd(conf, b"EHLO c\r\nMAIL FROM:<a@b.org>\r\n"
                 b"RCPT TO:<nobody@test.test>\r\nRCPT TO:<carol@example.org>\r\n"
                 b"RCPT TO:<postmaster>\r\nRCPT TO:<team@example.org>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")
t.ok("550 5.1.1 <nobody@test.test>: no such user" in out, "virtual table: unknown user 5.1.1")
t.ok("550 5.1.1 <carol@example.org>: no such user" in out, "users table: unknown user 5.1.1")
t.ok("550 5.7.1 <postmaster>: relaying denied" in out, "postmaster without domain matches no domain rule")
m = msgs()
t.ok(len(m) == 1 and "dest 17:alice@example.org" in m[0] and
     "dest 15:bob@example.org" in m[0] and "orig 16:team@example.org" in m[0],
     "alias expanded to a local user and an address")
clear()

# 6. LMTP: LHLO, one reply per recipient after DATA
lconf = write(os.path.join(d, "lmtp.conf"), open(conf).read().replace(
    "tag = in", "tag = in\nlmtp = yes"))
out, err = inetd(lconf, b"EHLO c\r\nLHLO c\r\nMAIL FROM:<a@b.org>\r\n"
                 b"RCPT TO:<alice@example.org>\r\nRCPT TO:<bob@example.org>\r\n"
                 b"DATA\r\nhi\r\n.\r\nQUIT\r\n")
t.ok("220 mx.test LMTP" in out and "500 5.5.1 LMTP: use LHLO" in out, "LMTP wants LHLO")
t.ok(re.search(r"250 2\.0\.0 <alice@example.org> message \w+ accepted\r\n"
               r"250 2\.0\.0 <bob@example.org> message \w+ accepted", out),
     "one LMTP reply per recipient")
clear()

# 7. SMTPUTF8 addresses only with the parameter
out, err = inetd(conf, "EHLO c\r\nMAIL FROM:<jé@b.org>\r\nMAIL FROM:<jé@b.org> SMTPUTF8\r\nQUIT\r\n".encode())
t.ok("553 5.1.7" in out and "250 2.1.0" in out, "UTF-8 sender needs SMTPUTF8")

# 8. configuration check
bad = write(os.path.join(d, "bad.conf"), "[listener a]\nport = 25\ntls = maybe\n")
p = subprocess.run([SMTPD, "-n", "-c", bad], capture_output=True, text=True)
t.ok(p.returncode == 78 and "bad.conf:3" in p.stderr, "bad config: exit 78 naming file:line")
p = subprocess.run([SMTPD, "-n", "-c", conf], capture_output=True, text=True)
t.ok(p.returncode == 0, "good config: -n exits 0")
if ROOT:
    st = os.stat(os.path.join(d, "queue", "incoming"))
    t.ok(oct(st.st_mode & 0o7777) == "0o1733", "incoming/ writable, not readable, by sessions")
