"""Several sessions and lda on one folder at once: deliveries in parallel
with sessions that select, search and append, then every session agrees
on one UID per message, UIDs are unique, and none is ever reused."""
import imaplib, os, re, subprocess, sys, threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, free_port, Daemon, BIN

t = T()
root = os.geteuid() == 0
lda = os.path.join(BIN, "lda")
d = scratch("imapd-conc.")
uid = 5005 if root else os.getuid()
home = os.path.join(d, "erin")
os.makedirs(home)
if root:
    os.chown(home, uid, uid)
port = free_port()
with open(os.path.join(d, "imapd.conf"), "w") as f:
    f.write("listen = 127.0.0.1:%d\npassword = pw\nplaintext_auth = yes\n"
            "auth_failure_delay = 0\n[users]\nuserbase = { erin = \"%d:%d:%s\" }\n"
            % (port, uid, uid, home))
with open(os.path.join(d, "lda.conf"), "w") as f:
    f.write("[users]\nuserbase = { erin = \"%d:%d:%s\" }\n" % (uid, uid, home))
Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
       port=port, log=os.path.join(d, "imapd.log"))


def login():
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login("erin", "pw")
    return m


login().logout()    # makes the Maildir
N = 30
errors = []


def deliver(i):
    msg = b"Message-ID: <%d@conc>\nSubject: n%d\n\nbody %d\n" % (i, i, i)
    if os.path.exists(lda):
        r = subprocess.run([lda, "-c", os.path.join(d, "lda.conf"), "-d", "erin"],
                           input=msg, capture_output=True)
        if r.returncode != 0:
            errors.append(r.stderr)
    else:
        m = login()
        m.append("INBOX", None, None, msg.replace(b"\n", b"\r\n"))
        m.logout()


def reader(k):
    m = login()
    for _ in range(15):
        m.select("INBOX")
        m.search(None, "ALL")
        m.noop()
    m.append("INBOX", None, None, b"Message-ID: <r%d@conc>\r\n\r\nx\r\n" % k)
    m.logout()


threads = [threading.Thread(target=deliver, args=(i,)) for i in range(N)]
threads += [threading.Thread(target=reader, args=(k,)) for k in range(3)]
for th in threads:
    th.start()
for th in threads:
    th.join()
t.eq(errors, [], "every delivery succeeded")


def uid_map(m):
    m.select("INBOX")
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (Message-ID)])")
    res = {}
    for x in data:
        if isinstance(x, tuple):
            u = int(re.search(rb"UID (\d+)", x[0]).group(1))
            res[u] = x[1].strip()
    return res


a, b = login(), login()
ma, mb = uid_map(a), uid_map(b)
t.eq(len(ma), N + 3, "every message is there once")
t.eq(len(set(ma.values())), N + 3, "no message got two UIDs")
t.ok(ma == mb, "two sessions agree on every UID")
top = max(ma)
a.store("1:*", "+FLAGS", "(\\Deleted)")
a.expunge()
a.append("INBOX", None, None, b"Message-ID: <after@conc>\r\n\r\nx\r\n")
b.noop()
mb = uid_map(b)
t.ok(list(mb) == [top + 1] or (len(mb) == 1 and min(mb) > top),
     "after an expunge the next UID is higher than any before (%s)" % list(mb))
a.logout()
b.logout()
