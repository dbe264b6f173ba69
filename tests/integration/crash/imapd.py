"""imapd killed with SIGKILL (daemon, monitors and sessions) at random
points while clients APPEND, set flags and expunge, many times, restarted
each time: every APPEND that got its OK is in the mailbox exactly once,
with the UID its APPENDUID said and the same UIDVALIDITY; UIDs are unique;
nothing half-written in new/ or cur/. Then APPEND into a full file system
(a small tmpfs) and into an unwritable Maildir get NO, and lose nothing
that was there."""
import imaplib, os, random, re, subprocess, threading, time
from _crash import (T, scratch, free_port, Daemon, BIN, ROOT, UID, GID, make_home,
                    message, scan)

t = T()
d = scratch("crash-imapd.")
home = make_home(d, "alice")
md = os.path.join(home, "Maildir")
port = free_port()
conf = os.path.join(d, "imapd.conf")
with open(conf, "w") as f:
    f.write("listen = 127.0.0.1:%d\npassword = pw\npassword_users = alice\n"
            "plaintext_auth = yes\nauth_failure_delay = 0\n%s"
            "[users]\nuserbase = { alice = \"%d:%d:%s\" }\n"
            % (port, "user = nobody\n" if ROOT else "", UID, GID, home))
rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
acked, lock, counter = {}, threading.Lock(), [0]
validity = set()


def appender(stop):
    while not stop.is_set():
        try:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=5)
            m.login("alice", "pw")
            while not stop.is_set():
                with lock:
                    counter[0] += 1
                    tok = "imap-%d" % counter[0]
                typ, data = m.append("INBOX", None, None,
                                     message(tok, rng.choice((300, 20000))))
                if typ == "OK":
                    r = re.search(rb"APPENDUID (\d+) (\d+)", data[0] or b"")
                    with lock:
                        acked[tok] = (int(r.group(1)), int(r.group(2))) if r else None
        except (OSError, imaplib.IMAP4.error, EOFError):
            time.sleep(0.01)


def flagger(stop):
    while not stop.is_set():
        try:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=5)
            m.login("alice", "pw")
            while not stop.is_set():
                m.select("INBOX")
                m.store("1:*", "+FLAGS", "\\Seen")
                m.store("1:*", "-FLAGS", "\\Seen")
        except (OSError, imaplib.IMAP4.error, EOFError):
            time.sleep(0.01)


def age_lock():
    """A session killed while it held dovecot-uidlist.lock leaves it behind;
    imapd (like Dovecot) takes such a lock for stale only after two minutes,
    and until then SELECT and APPEND get NO. The test does not wait: it
    ages the file, as two minutes would."""
    lk = os.path.join(md, "dovecot-uidlist.lock")
    if os.path.exists(lk):
        old = time.time() - 600
        os.utime(lk, (old, old))
        stale[0] += 1


stale = [0]
ITER = 20
t0 = time.time()
for i in range(ITER):
    srv = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", conf], port=port,
                 log=os.path.join(d, "imapd.log"))
    stop = threading.Event()
    th = [threading.Thread(target=appender, args=(stop,)),
          threading.Thread(target=appender, args=(stop,)),
          threading.Thread(target=flagger, args=(stop,))]
    for x in th:
        x.start()
    time.sleep(rng.uniform(0.1, 0.4))
    srv.kill()
    stop.set()
    for x in th:
        x.join()
    age_lock()
t.ok(len(acked) >= ITER, "%d kills in %.1f s: %d APPENDs acknowledged (%d kills "
     "left a uidlist lock)" % (ITER, time.time() - t0, len(acked), stale[0]))
srv = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", conf], port=port,
             log=os.path.join(d, "imapd.log"))
m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
m.login("alice", "pw")
t0 = time.time()
typ, data = m.select("INBOX")
t.eq(typ, "OK", "SELECT after the kills (%s, %.1f s)" % (data, time.time() - t0))
typ, data = m.response("UIDVALIDITY")
uv = int(data[0]) if data and data[0] else None
typ, data = m.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
uids, by_tok = [], {}
for item in data:
    if isinstance(item, tuple):
        u = int(re.search(rb"UID (\d+)", item[0]).group(1))
        s = re.search(rb"Subject: (\S+)", item[1])
        uids.append(u)
        if s:
            by_tok.setdefault(s.group(1).decode(), []).append(u)
m.logout()
t.eq(len(uids), len(set(uids)), "UIDs are unique after %d kills" % ITER)
t.eq(sorted(k for k in acked if len(by_tok.get(k, [])) != 1), [],
     "every acknowledged APPEND is in the mailbox exactly once")
t.eq(sorted(k for k, v in by_tok.items() if len(v) > 1), [], "no message twice")
moved = sorted(k for k, v in acked.items() if v and k in by_tok and
               (v[0] != uv or by_tok[k][0] != v[1]))
t.eq(moved, [], "each keeps the UIDVALIDITY and UID its APPENDUID announced")
counts, partial = scan(md)
t.eq(partial, [], "nothing half-written in new/ or cur/")
t.ok(sorted(counts) == sorted(by_tok), "the server lists exactly what is on disk "
     "(%d messages)" % len(counts))

# the lock a killed session leaves, while it is not yet stale: SELECT says
# NO [INUSE] (temporary, RFC 5530) after imapd's 10 s wait, not a bug
lk = os.path.join(md, "dovecot-uidlist.lock")
with open(lk, "w") as f:
    f.write("3 V1 N1\n")
if ROOT:
    os.chown(lk, UID, GID)
nm = os.path.join(md, "new", "1700000000.locked.test")   # needs a new UID
with open(nm, "wb") as f:
    f.write(message("locked"))
if ROOT:
    os.chown(nm, UID, GID)
m = imaplib.IMAP4("127.0.0.1", port, timeout=30)
m.login("alice", "pw")
typ, data = m.select("INBOX")
t.ok(typ == "NO" and b"[INUSE]" in (data[0] or b""),
     "a fresh uidlist lock left by a killed session: SELECT gets NO [INUSE] (%s %s)"
     % (typ, data))
os.unlink(lk)
typ, data = m.select("INBOX")
t.ok(typ == "OK" and int(data[0]) == len(uids) + 1,
     "once the lock is gone SELECT works and sees the new message")
m.logout()

# an unwritable Maildir (tmp/ read-only): APPEND gets NO, the rest is kept
m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
m.login("alice", "pw")
os.chmod(os.path.join(md, "tmp"), 0o500)
try:
    typ, data = m.append("INBOX", None, None, message("ro"))
except imaplib.IMAP4.error as e:
    typ = "NO?" + str(e)
t.ok(typ != "OK", "APPEND into an unwritable Maildir refused (%s)" % typ)
os.chmod(os.path.join(md, "tmp"), 0o700)
typ, data = m.select("INBOX")
t.eq(int(data[0]), len(uids) + 1, "the mailbox is intact")
m.logout()
srv.stop()

if not ROOT:
    print("ok - skipped: a tmpfs needs root")
else:
    full = os.path.join(d, "full")
    os.makedirs(full)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k,mode=0755", "tmpfs", full],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("ok - skipped: cannot mount a tmpfs (%s)" % r.stderr.strip())
    else:
        try:
            fhome = make_home(full, "bob")
            conf2 = os.path.join(d, "imapd2.conf")
            port2 = free_port()
            with open(conf2, "w") as f:
                f.write(open(conf).read().replace(str(port), str(port2)).replace(
                    home, fhome))
            srv2 = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", conf2], port=port2,
                          log=os.path.join(d, "imapd2.log"))
            m = imaplib.IMAP4("127.0.0.1", port2, timeout=20)
            m.login("alice", "pw")
            typ, _ = m.append("INBOX", None, None, message("small"))
            t.eq(typ, "OK", "tmpfs: a small APPEND fits")
            try:
                typ, data = m.append("INBOX", None, None, message("huge", 500000))
            except imaplib.IMAP4.error as e:
                typ = "NO?" + str(e)
            t.ok(typ != "OK", "full file system: APPEND refused (%s)" % typ)
            typ, data = m.select("INBOX")
            c, p = scan(os.path.join(fhome, "Maildir"))
            t.ok(int(data[0]) == 1 and c == {"small": 1} and p == [],
                 "full file system: the mailbox holds the earlier message, nothing partial")
            typ, _ = m.append("INBOX", None, None, message("small2"))
            t.eq(typ, "OK", "full file system: the session goes on, a small APPEND works")
            m.logout()
            srv2.stop()
        finally:
            subprocess.run(["umount", full])
