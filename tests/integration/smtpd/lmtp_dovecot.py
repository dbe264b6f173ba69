"""smtpd-lite's `action = lmtp` against Dovecot's LMTP server (seed 001's
MDA), through a unix socket and through TCP: mail sent with swaks lands in
the Dovecot user's Maildir byte for byte (dot-stuffing, a long line, 8-bit
text, no final newline), a user Dovecot does not know is bounced (LMTP 550,
RFC 3464 report in the sender's Maildir, delivered by Dovecot too), a
stopped Dovecot defers the delivery until it is back, and a socket path too
long for sun_path is refused when the config is read."""
import glob, os, re, subprocess, sys, time
from _smtpd import (T, scratch, write, free_port, wait_port, Daemon, wait_for,
                    queue_files, SMTPD, BIN, ROOT)

t = T()
DOVECOT = "/usr/sbin/dovecot"
if not ROOT or not os.path.exists(DOVECOT):
    print("ok - skipped: needs root and dovecot (dovecot-lmtpd)")
    sys.exit(0)

UID = 5001
d = scratch("lmtp-dc.")
sock = os.path.join(d, "lmtp")
homes = os.path.join(d, "home")
os.makedirs(homes)
os.chmod(homes, 0o755)
users = ("alice", "bob", "carol")
for u in users:
    h = os.path.join(homes, u)
    os.makedirs(h)
    os.chown(h, UID, UID)      # Dovecot creates the Maildir as the user
    os.chmod(h, 0o700)
write(os.path.join(d, "dpasswd"), "".join(
    "%s:{PLAIN}x:%d:%d::%s/%s::\n" % (u, UID, UID, homes, u) for u in users))
for sub in ("run", "state"):
    os.makedirs(os.path.join(d, sub))
dc_port, port = free_port(), free_port()
dconf = write(os.path.join(d, "dovecot.conf"), """\
base_dir = %(d)s/run
state_dir = %(d)s/state
instance_name = lmtpdc%(pid)d
log_path = %(d)s/dovecot.log
listen = 127.0.0.1
protocols = lmtp
ssl = no
first_valid_uid = 1000
# LMTP recipients carry a domain, the passwd-file users do not
auth_username_format = %%Ln
passdb {
  driver = passwd-file
  args = %(d)s/dpasswd
}
userdb {
  driver = passwd-file
  args = %(d)s/dpasswd
}
mail_location = maildir:~/Maildir
service lmtp {
  unix_listener %(sock)s {
    mode = 0666
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %(dc_port)d
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
""" % {"d": d, "pid": os.getpid(), "sock": sock, "dc_port": dc_port})


class Dovecot:
    def __init__(self):
        self.p = None

    def start(self):
        self.p = Daemon([DOVECOT, "-F", "-c", dconf], port=dc_port,
                        log=os.path.join(d, "dovecot.out"), wait=15)
        if not wait_for(lambda: os.path.exists(sock), 10):
            raise RuntimeError("no LMTP socket")

    def stop(self):
        if self.p:
            self.p.stop()
            self.p = None


dc = Dovecot()
dc.start()

conf_text = """\
hostname = mx.test
user = nobody
queue = %(d)s/queue
retry_min = 1
retry_max = 2
timeout = 20

[listener mx]
address = 127.0.0.1
port = %(port)d

[rule tcp]
rcpt_domain = tcp.example.org
action = lmtp
lmtp = 127.0.0.1:%(dc_port)d

[rule dovecot]
rcpt_domain = example.org
action = lmtp
lmtp = %(sock)s
""" % {"d": d, "port": port, "dc_port": dc_port, "sock": sock}
conf = write(os.path.join(d, "smtpd.conf"), conf_text)
srv = Daemon([SMTPD, "-F", "-v", "-c", conf], port=port,
             log=os.path.join(d, "smtpd.log"))


def mails(user):
    out = []
    for sub in ("new", "cur"):
        for p in sorted(glob.glob(os.path.join(homes, user, "Maildir", sub, "*"))):
            with open(p, "rb") as f:
                out.append((p, f.read()))
    return out


def find(user, marker):
    return [m for m in mails(user) if marker in m[1]]


def swaks(frm, to, data):
    path = os.path.join(d, "data.eml")
    with open(path, "wb") as f:
        f.write(data)
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port,
                        "--from", frm, "--to", to, "--data", "@" + path,
                        "--helo", "client.test", "--timeout", "20"],
                       capture_output=True, text=True, errors="replace")
    return p.returncode, p.stdout + p.stderr


def split_added(raw, original):
    """(added header block, rest) when raw ends with original."""
    if not raw.endswith(original):
        return None, None
    return raw[:len(raw) - len(original)], original


# 1. through the unix socket, byte for byte
long_line = b"L" * 998
body = (b"From: Alice <alice@example.org>\n"
        b"To: bob@example.org\n"
        b"Subject: dovecot-sock\n"
        b"MIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n"
        b"\n"
        b"first line\n"
        b".a line that starts with a dot\n"
        b"..two dots\n"
        b".\n"
        b" .space then dot\n"
        + long_line + b"\n"
        + "8-bit: Grüße, ça marche, 日本語\n".encode("utf-8")
        + b"raw high bytes: \xe9\xff\x80\n"
        + b"the last line has no newline")
rc, out = swaks("alice@example.org", "bob@example.org", body)
t.ok(rc == 0, "swaks sent the message to smtpd-lite: rc=%d" % rc)
got = wait_for(lambda: find("bob", b"Subject: dovecot-sock"), 15)
t.ok(got, "delivered through Dovecot's LMTP unix socket into bob's Maildir")
raw = got[0][1] if got else b""
st = os.stat(got[0][0]) if got else None
t.ok(st is not None and st.st_uid == UID, "the file belongs to the Dovecot user (5001)")
added, rest = split_added(raw, body + b"\n")
t.ok(added is not None, "the message is byte-identical after the added "
     "header fields (dots, 998-octet line, 8-bit, final newline added)")
added = added or b""
t.ok(re.search(rb"^Return-Path: <alice@example.org>\n", added, re.M),
     "Dovecot's Return-Path carries the envelope sender")
t.ok(re.search(rb"^Delivered-To: bob@example.org\n", added, re.M),
     "Dovecot's Delivered-To names the recipient")
t.ok(b"with LMTP" in added and b"by mx.test" in added,
     "both hops in the trace: Dovecot's LMTP and smtpd-lite")
t.ok(all(re.match(rb"[A-Za-z-]+: |[ \t]", l) for l in added.split(b"\n")[:-1]),
     "only header fields were added")
t.ok(wait_for(lambda: re.search(r"rcpt=<bob@example.org> rule=dovecot delivered",
                                srv.log()), 5),
     "smtpd-lite logs the delivery")

# 2. a message larger than the LMTP client's 64 KB read, a dot at a line's
# start across every chunk boundary
big = (b"Subject: dovecot-big\n\n" + b".\n" * 40000 + b"x" * 500 + b"\n"
       + b".dot after\n" * 5000 + b"end")
rc, out = swaks("alice@example.org", "carol@example.org", big)
got = wait_for(lambda: find("carol", b"Subject: dovecot-big"), 20)
t.ok(rc == 0 and got and got[0][1].endswith(big + b"\n"),
     "a 140 KB message of dot lines arrives intact (dot-stuffing across reads)")

# 3. through Dovecot's TCP listener
rc, out = swaks("alice@example.org", "carol@tcp.example.org",
                b"Subject: dovecot-tcp\n\nover TCP\n.x")
got = wait_for(lambda: find("carol", b"Subject: dovecot-tcp"), 15)
t.ok(got, "delivered through Dovecot's LMTP TCP listener (lmtp = host:port)")
t.ok(got and got[0][1].endswith(b"\nover TCP\n.x\n") and
     b"Delivered-To: carol@tcp.example.org" in got[0][1],
     "TCP form: body intact, Dovecot's Delivered-To")
t.ok(wait_for(lambda: re.search(r"rcpt=<carol@tcp.example.org> rule=tcp delivered",
                                srv.log()), 5),
     "smtpd-lite logs the TCP delivery")

# 4. a user Dovecot does not know: 550 from LMTP, a bounce to the sender
before = len(mails("alice"))
rc, out = swaks("alice@example.org", "nosuch@example.org",
                b"Subject: to-nobody\n\nlost\n")
t.ok(rc == 0, "smtpd-lite accepts a recipient of a domain it hands to Dovecot")
dsn = wait_for(lambda: [m for m in mails("alice")[0:] if b"to-nobody" in m[1]
                        and b"multipart/report" in m[1]], 20)
t.ok(dsn, "the LMTP 550 bounced into the sender's Maildir (through Dovecot)")
dsn = dsn[0][1] if dsn else b""
t.ok(b"report-type=delivery-status" in dsn and
     b"Content-Type: message/delivery-status" in dsn and
     b"Final-Recipient: rfc822; nosuch@example.org" in dsn and
     b"Action: failed" in dsn and b"Status: 5.1.1" in dsn,
     "the bounce is an RFC 3464 report: failed, 5.1.1")
t.ok(re.search(rb"550[ -]5\.1\.1", dsn) is not None,
     "the bounce quotes Dovecot's 550 5.1.1")
t.ok(re.search(rb"^Return-Path: <>", dsn, re.M),
     "the bounce comes from the null sender (Dovecot's Return-Path: <>)")
t.ok(len(mails("alice")) == before + 1, "exactly one bounce")
t.ok(wait_for(lambda: len(queue_files(d)) == 0, 10), "the queue drains")

# 5. Dovecot stopped: deferred, then delivered once it is back
dc.stop()
mark = len(srv.log())
rc, out = swaks("alice@example.org", "bob@example.org",
                b"Subject: dovecot-later\n\nwait for me\n")
t.ok(rc == 0, "smtpd-lite accepts mail while Dovecot is down")
t.ok(wait_for(lambda: re.search(r"rcpt=<bob@example.org> rule=dovecot deferred",
                                srv.log()[mark:]), 10),
     "the delivery is deferred (log line 'deferred')")
m = re.search(r"rcpt=<bob@example.org> rule=dovecot deferred[^\n]*", srv.log()[mark:])
t.ok(m and ("lmtp %s" % sock) in m.group(0) and
     ("No such file" in m.group(0) or "refused" in m.group(0)),
     "the deferral says which socket and why: %s" % (m.group(0) if m else ""))
q = subprocess.run([os.path.join(BIN, "mailctl"), "-c", conf, "show", "queue"],
                   capture_output=True, text=True)
t.ok(q.returncode == 0 and "bob@example.org" in q.stdout,
     "mailctl show queue lists the waiting recipient")
t.ok(not find("bob", b"dovecot-later"), "nothing delivered while Dovecot is down")
dc.start()
t.ok(wait_for(lambda: find("bob", b"Subject: dovecot-later"), 20),
     "delivered once Dovecot is back")
t.ok(wait_for(lambda: len(queue_files(d)) == 0, 10), "the queue drains again")
t.eq(len(find("bob", b"Subject: dovecot-later")), 1, "delivered once")

# 6. a socket path too long for sun_path is a config error with file:line
longp = "/tmp/" + "s" * 110
bad = write(os.path.join(d, "bad.conf"), conf_text.replace(
    "lmtp = %s" % sock, "lmtp = %s" % longp))
p = subprocess.run([SMTPD, "-n", "-c", bad], capture_output=True, text=True)
lineno = conf_text.replace("lmtp = %s" % sock, "lmtp = %s" % longp) \
    .split("\n").index("lmtp = %s" % longp) + 1
t.ok(p.returncode != 0 and ("%s:%d" % (bad, lineno)) in p.stderr and
     "too long" in p.stderr,
     "a socket path of %d bytes is refused at config time: %s" %
     (len(longp), p.stderr.strip()))
ok = subprocess.run([SMTPD, "-n", "-c", conf], capture_output=True, text=True)
t.ok(ok.returncode == 0, "the test's own config passes -n: " + ok.stderr.strip())

srv.stop()
dc.stop()
