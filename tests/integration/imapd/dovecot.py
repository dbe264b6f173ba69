"""imapd and Dovecot serving one Maildir at the same time: the same UIDs,
UIDVALIDITY and sizes; flags, keywords, appends and expunges made through
one are seen through the other (Dovecot's Maildir++ layout and its
dovecot-uidlist, shared)."""
import imaplib, os, re, shutil, subprocess, sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, free_port, Daemon, BIN

t = T()
if os.geteuid() != 0 or shutil.which("dovecot") is None:
    print("ok - skipped: needs root and dovecot")
    sys.exit(0)
d = scratch("imapd-dovecot.")
UID = 5003
home = os.path.join(d, "carol")
md = os.path.join(home, "Maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, sub))
for i in range(5):
    data = ("Subject: m%d\nFrom: x@y.test\n\n%s\n" % (i, "body " * (i + 1))).encode()
    name = "%d.M%dP1.host,S=%d,W=%d" % (1700000000 + i, i, len(data),
                                         len(data) + data.count(b"\n"))
    sub = "cur" if i % 2 else "new"
    with open(os.path.join(md, sub, name + (":2,S" if sub == "cur" else "")), "wb") as f:
        f.write(data)
subprocess.run(["chown", "-R", "%d:%d" % (UID, UID), home], check=True)

iport, dport = free_port(), free_port()
with open(os.path.join(d, "imapd.conf"), "w") as f:
    f.write("listen = 127.0.0.1:%d\npassword = pw\nplaintext_auth = yes\n"
            "auth_failure_delay = 0\nspecial_use = no\n"
            "[users]\nuserbase = { carol = \"%d:%d:%s\" }\n" % (iport, UID, UID, home))
for sub in ("run", "state"):
    os.makedirs(os.path.join(d, sub))
with open(os.path.join(d, "dovecot.conf"), "w") as f:
    f.write("""base_dir = %(d)s/run
state_dir = %(d)s/state
instance_name = t%(port)d
log_path = %(d)s/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
mail_location = maildir:~/Maildir
first_valid_uid = 1000
passdb {
  driver = static
  args = password=pw
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(uid)d home=%(home)s
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
""" % {"d": d, "port": dport, "uid": UID, "home": home})
Daemon(["dovecot", "-F", "-c", os.path.join(d, "dovecot.conf")], port=dport,
       log=os.path.join(d, "dovecot.stderr"))
Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
       port=iport, log=os.path.join(d, "imapd.log"))


def login(port):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("carol", "pw")
    return m


def state(m):
    m.select("INBOX")
    uv = m.untagged_responses.get("UIDVALIDITY", [b"?"])[0]
    typ, data = m.uid("FETCH", "1:*", "(FLAGS RFC822.SIZE)")
    msgs = {}
    for x in data:
        if not isinstance(x, bytes):
            continue
        u = int(re.search(rb"UID (\d+)", x).group(1))
        fl = sorted(re.search(rb"FLAGS \(([^)]*)\)", x).group(1).split())
        size = int(re.search(rb"RFC822.SIZE (\d+)", x).group(1))
        msgs[u] = (tuple(f for f in fl if f != b"\\Recent"), size)
    return uv, msgs


dov = login(dport)
uv_d, st_d = state(dov)
imd = login(iport)
uv_i, st_i = state(imd)
t.eq(uv_i, uv_d, "the same UIDVALIDITY through both")
t.eq(st_i, st_d, "the same UIDs, flags and sizes through both")
t.eq(len(st_i), 5, "five messages")

first = min(st_i)
imd.uid("STORE", str(first), "+FLAGS", "(\\Flagged $Label1)")
typ, data = imd.append("INBOX", "(\\Seen)", None, b"Subject: via imapd\r\n\r\nhello\r\n")
new_i = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
uv_d, st_d = state(dov)
t.ok(b"\\Flagged" in st_d[first][0] and b"$Label1" in st_d[first][0],
     "Dovecot sees imapd's flag and keyword")
t.ok(new_i in st_d and b"\\Seen" in st_d[new_i][0],
     "Dovecot sees imapd's APPEND with its UID")

second = sorted(st_d)[1]
third = sorted(st_d)[2]
dov.uid("STORE", str(second), "+FLAGS", "(\\Answered)")
dov.uid("STORE", str(third), "+FLAGS", "(\\Deleted)")
dov.expunge()
typ, data = dov.append("INBOX", None, None, b"Subject: via dovecot\r\n\r\nhi\r\n")
mm = re.search(rb"APPENDUID \d+ (\d+)", data[0])
imd.noop()
uv_i, st_i = state(imd)
uv_d, st_d = state(dov)
t.ok(b"\\Answered" in st_i[second][0], "imapd sees Dovecot's flag")
t.ok(third not in st_i, "imapd sees Dovecot's expunge")
t.ok(mm is None or int(mm.group(1)) in st_i, "imapd sees Dovecot's APPEND with its UID")
t.eq(st_i, st_d, "both agree after changes on both sides")
t.eq(uv_i, uv_d, "UIDVALIDITY unchanged")
dov.logout()
imd.logout()
