"""Sessions that start together all find the stale uidlist lock a killed
imapd left: only one may break it, every APPEND keeps its APPENDUID."""
import imaplib, os, re, threading, time

from _crash import T, scratch, free_port, Daemon, BIN, ROOT, UID, GID, make_home, message

t = T()
d = scratch("crash-stale.")
home = make_home(d, "alice")
md = os.path.join(home, "Maildir")
port = free_port()
conf = os.path.join(d, "imapd.conf")
with open(conf, "w") as f:
    f.write("listen = 127.0.0.1:%d\npassword = pw\npassword_users = alice\n"
            "plaintext_auth = yes\nauth_failure_delay = 0\n%s"
            "[users]\nuserbase = { alice = \"%d:%d:%s\" }\n"
            % (port, "user = nobody\n" if ROOT else "", UID, GID, home))
srv = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", conf], port=port,
             log=os.path.join(d, "imapd.log"))
N, ROUNDS = 6, int(os.environ.get("ROUNDS", "15"))
acked = {}
lk = os.path.join(md, "dovecot-uidlist.lock")
conns = []
for i in range(N):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    m.login("alice", "pw")
    conns.append(m)
for r in range(ROUNDS):
    with open(lk, "w") as f:
        f.write("3 V1 N1\n")
    if ROOT:
        os.chown(lk, UID, GID)
    os.utime(lk, (time.time() - 600, time.time() - 600))
    bar = threading.Barrier(N)

    def go(i, m):
        tok = "st-%d-%d" % (r, i)
        bar.wait()
        typ, data = m.append("INBOX", None, None, message(tok, 300))
        if typ == "OK":
            x = re.search(rb"APPENDUID (\d+) (\d+)", data[0] or b"")
            acked[tok] = (int(x.group(1)), int(x.group(2))) if x else None
    th = [threading.Thread(target=go, args=(i, conns[i])) for i in range(N)]
    for x in th:
        x.start()
    for x in th:
        x.join()
for m in conns:
    m.logout()
m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
m.login("alice", "pw")
typ, data = m.select("INBOX")
uv = int(m.response("UIDVALIDITY")[1][0])
typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
by_tok = {}
for item in data:
    if isinstance(item, tuple):
        u = int(re.search(rb"UID (\d+)", item[0]).group(1))
        s = re.search(rb"Subject: (\S+)", item[1])
        by_tok.setdefault(s.group(1).decode(), []).append(u)
m.logout()
srv.stop()
t.eq(len(acked), N * ROUNDS, "%d APPENDs behind a stale lock acknowledged" % (N * ROUNDS))
moved = sorted(k for k, v in acked.items() if v and (v[0] != uv or by_tok.get(k) != [v[1]]))
t.eq(moved, [], "each keeps its APPENDUID (%d with one)" % sum(1 for v in acked.values() if v))
t.ok(os.listdir(md) and not [n for n in os.listdir(md) if ".stale." in n],
     "no lock left aside")
