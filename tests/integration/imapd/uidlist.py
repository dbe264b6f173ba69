"""dovecot-uidlist over time: records of expunged messages are dropped
once they far outnumber the live ones, without touching a live UID or
ever lowering the next UID; the index snapshot and the header cache can
be deleted at any time."""
import imaplib, os, re, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, free_port, Daemon, BIN

t = T()
root = os.geteuid() == 0
d = scratch("imapd-uidlist.")
uid = 5006 if root else os.getuid()
home = os.path.join(d, "fay")
md = os.path.join(home, "Maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, sub))
N = 1200
for i in range(N):
    data = b"Message-ID: <%d@u>\nSubject: %d\n\nx\n" % (i, i)
    with open(os.path.join(md, "cur", "%d.M%dP1.h,S=%d:2,S" % (1700000000 + i, i,
                                                            len(data))), "wb") as f:
        f.write(data)
if root:
    subprocess.run(["chown", "-R", "%d:%d" % (uid, uid), home], check=True)
port = free_port()
with open(os.path.join(d, "imapd.conf"), "w") as f:
    f.write("listen = 127.0.0.1:%d\npassword = pw\nplaintext_auth = yes\n"
            "auth_failure_delay = 0\nspecial_use = no\n"
            "[users]\nuserbase = { fay = \"%d:%d:%s\" }\n" % (port, uid, uid, home))
daemon = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
                port=port, log=os.path.join(d, "imapd.log"))
m = imaplib.IMAP4("127.0.0.1", port)
m.login("fay", "pw")
m.select("INBOX")


def uids():
    typ, data = m.uid("SEARCH", "ALL")
    return [int(x) for x in data[0].split()]


def records():
    with open(os.path.join(md, "dovecot-uidlist")) as f:
        lines = f.read().splitlines()
    return lines[0], lines[1:]


t.eq(len(uids()), N, "%d messages got UIDs" % N)
m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (Message-ID)])")   # fills the cache
m.store("6:*", "+FLAGS.SILENT", "(\\Deleted)")
m.expunge()
kept = uids()
t.eq(kept, [1, 2, 3, 4, 5], "five left after EXPUNGE")
hdr, recs = records()
t.eq(len(recs), N, "records stay until there are many more dead than live")
data = b"Message-ID: <new@u>\nSubject: new\n\nx\n"
name = os.path.join(md, "new", "1800000000.M1P1.h")
with open(name, "wb") as f:
    f.write(data)
if root:
    os.chown(name, uid, uid)
m.noop()
hdr, recs = records()
t.ok(len(recs) == 6, "the next sync compacts the uidlist to the live records (%d)" % len(recs))
t.ok(re.search(r" N(\d+)", hdr) and int(re.search(r" N(\d+)", hdr).group(1)) > N,
     "the next UID stays above every UID ever given (%s)" % hdr)
now = uids()
t.eq(now[:5], kept, "live UIDs unchanged by the compaction")
t.ok(len(now) == 6 and now[5] == N + 1, "the new message gets the next UID (%s)" % now[5:])
typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (Message-ID)])")
ids = [x[1].strip() for x in data if isinstance(x, tuple)]
t.eq(ids, [b"Message-ID: <%d@u>" % i for i in range(5)] + [b"Message-ID: <new@u>"],
     "headers right after the expunge (cache keyed by UID)")
m.logout()
for f in ("courriel.index", "courriel.cache"):
    if os.path.exists(os.path.join(md, f)):
        os.unlink(os.path.join(md, f))
m = imaplib.IMAP4("127.0.0.1", port)
m.login("fay", "pw")
m.select("INBOX")
t.eq(uids(), now, "same UIDs with the snapshot and the cache deleted")
typ, data = m.fetch("6", "(BODY.PEEK[HEADER.FIELDS (Message-ID)])")
t.ok(b"<new@u>" in data[0][1], "headers read afresh")
m.logout()
t.ok("compacted from %d to 6 records" % (N + 1) in daemon.log(),
     "the compaction is logged")
