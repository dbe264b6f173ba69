"""Messages arrive in new/ while one session has the folder SELECTed (it
moves them to cur/) and another EXAMINEs it (it never moves them): the
examining session must never be told EXPUNGE, since nothing is deleted.
imapd used to list cur/ before new/, so a file moved between the two
listings was in neither and counted as gone (hundreds of false EXPUNGEs
in 8 seconds here); new/ is listed first now, as Dovecot does."""
import imaplib, os, re, sys, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, free_port, Daemon, BIN

t = T()
root = os.geteuid() == 0
d = scratch("imapd-race.")
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
Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
       port=port, log=os.path.join(d, "imapd.log"))
m = imaplib.IMAP4("127.0.0.1", port)
m.login("erin", "pw")       # makes the Maildir
m.select("INBOX")
md = os.path.join(home, "Maildir")
# a few thousand messages in cur/ make a listing take a while
for i in range(3000):
    p = os.path.join(md, "cur", "1700000000.P1Q%d.host,S=10:2,S" % i)
    with open(p, "w") as f:
        f.write("Subject: %d\n\nx\n" % i)
    if root:
        os.chown(p, uid, uid)
m.noop()
stop = threading.Event()
moved = [0]


def mover():
    i = 0
    while not stop.is_set():
        name = "1800000000.P2Q%d.host,S=10" % i
        i += 1
        p = os.path.join(md, "tmp", name)
        with open(p, "w") as f:
            f.write("Subject: m%d\n\nx\n" % i)
        if root:
            os.chown(p, uid, uid)
        os.rename(p, os.path.join(md, "new", name))
        moved[0] += 1
        time.sleep(0.001)


exp = [0, 0]


def poller(k):
    c = imaplib.IMAP4("127.0.0.1", port)
    c.login("erin", "pw")
    c.select("INBOX", readonly=(k == 0))   # EXAMINE: it never moves files
    while not stop.is_set():
        c.noop()
        exp[k] += len(c.untagged_responses.pop("EXPUNGE", []))
    c.logout()


ths = [threading.Thread(target=mover)]
ths += [threading.Thread(target=poller, args=(k,)) for k in range(2)]
for x in ths:
    x.start()
time.sleep(float(os.environ.get("RACE_SECS", "5")))
stop.set()
for x in ths:
    x.join()
t.eq(exp, [0, 0], "no EXPUNGE to the examining or the selecting session while "
     "%d messages arrived and were moved from new/ to cur/" % moved[0])
m.logout()
c = imaplib.IMAP4("127.0.0.1", port)
c.login("erin", "pw")
typ, data = c.select("INBOX")
t.eq(int(data[0]), 3000 + moved[0], "a new session sees every message")
c.logout()
