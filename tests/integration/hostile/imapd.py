"""Hostile clients against imapd started as root (pre-login as nobody, the
session as the mail user): 1 MB lines, literals announcing 4294967295
bytes, NUL bytes, one byte per segment, pipelining floods, a client that
never reads (memory stays bounded), slowloris, more connections than the
limit, a thousand wrong passwords (the delay holds, others are served),
STARTTLS with pipelined plaintext, mailbox names that try to leave the
Maildir, user names with '/' or '..' (imapd LOGIN and lda -d). Each part
ends with a well-behaved client served and nothing written outside the
user's Maildir."""
import imaplib, os, re, socket, ssl, subprocess, time
from _hostile import (T, scratch, free_port, Daemon, mkcerts, BIN, ROOT, Conn,
                      group_pids, rss_kb, wait_for, tree, ids)

t = T()
d = scratch("hostile-imapd.")
mkcerts(os.path.join(d, "certs"))
os.chmod(os.path.join(d, "certs"), 0o755)
UID_A, UID_B = (5001, 5002) if ROOT else (os.getuid(), os.getuid())
for u, uid in (("alice", UID_A), ("bob", UID_B)):
    os.makedirs(os.path.join(d, "home", u))
    if ROOT:
        os.chown(os.path.join(d, "home", u), uid, uid)
os.chmod(os.path.join(d, "home"), 0o755)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s/home/alice\n" % (UID_A, UID_A, d))
    f.write("bob %d:%d:%s/home/bob\n" % (UID_B, UID_B, d))


def crypt6(pw):
    return subprocess.run(["openssl", "passwd", "-6", pw], capture_output=True,
                          text=True, check=True).stdout.strip()


with open(os.path.join(d, "passwd"), "w") as f:
    f.write("alice %s\nbob %s\n" % (crypt6("alicepw"), crypt6("bobpw")))
os.chmod(os.path.join(d, "passwd"), 0o600)
port = free_port()
conf = os.path.join(d, "imapd.conf")
with open(conf, "w") as f:
    f.write("""listen = 127.0.0.1:%d
cert = %s/certs/server.crt
key = %s/certs/server.key
user = nobody
passwd = file:%s/passwd
plaintext_auth = yes
auth_failure_delay = 1s
idle_timeout = 2s
max_connections = 6
max_per_address = 6
max_append = 1M
[users]
userbase = file:%s/userbase
""" % (port, d, d, d, d))
imapd = os.path.join(BIN, "imapd")
srv = Daemon([imapd, "-F", "-c", conf], port=port, log=os.path.join(d, "imapd.log"))
ctx = ssl.create_default_context(cafile=os.path.join(d, "certs", "ca.crt"))

# bob has one message; alice's Maildir is made by the first login
m = imaplib.IMAP4("127.0.0.1", port)
m.login("bob", "bobpw")
m.append("INBOX", None, None, b"Subject: bob's secret\r\n\r\nsecret\r\n")
m.logout()
m = imaplib.IMAP4("127.0.0.1", port)
m.login("alice", "alicepw")
m.append("INBOX", None, None, b"Subject: alice\r\n\r\n" + b"x" * 20000 + b"\r\n")
m.logout()
before = tree(d, skip=("home/alice/Maildir",))


def connect(limit=10.0):
    """imaplib connection; retried while closed connections are still
    counted against max_connections (their processes not yet reaped)."""
    end = time.time() + limit
    while True:
        try:
            return imaplib.IMAP4("127.0.0.1", port)
        except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error) as e:
            if "Too many" not in str(e) or time.time() > end:
                raise
            time.sleep(0.1)


def well_behaved(what):
    try:
        c = connect()
        c.login("alice", "alicepw")
        c.append("INBOX", None, None, b"Subject: wb\r\n\r\nfine\r\n")
        typ, data = c.select("INBOX")
        n = int(data[0])
        typ2, _ = c.fetch(str(n), "(BODY.PEEK[HEADER])")
        c.logout()
        ok = typ == "OK" and typ2 == "OK" and n >= 1
    except (OSError, imaplib.IMAP4.error) as e:
        ok = False
        what += " (%s)" % e
    return t.ok(ok, "after %s: a normal client logs in, selects, fetches" % what)


def login(c, user=b"alice", pw=b"alicepw", greet=True):
    if greet:
        c.until(b"\r\n", 5)
    c.send(b"L LOGIN " + user + b" " + pw + b"\r\n")
    return c.until(b"L ", 5)


def pids_of_uid(uid):
    out = []
    for p, pp in group_pids(srv.p.pid):
        i = ids(p)
        if i and i[0][0] == uid:
            out.append(p)
    return out


# 1. a 1 MB line, before and after login
c = Conn(port)
c.until(b"\r\n")
c.send(b"a " + b"A" * (1 << 20) + b"\r\nb NOOP\r\n")
r = c.until(b"b OK", 15)
t.ok(b"BAD" in r and b"b OK" in r, "1 MB line before login: BAD, session goes on")
login(c, greet=False)
c.send(b"c SELECT " + b"B" * (1 << 20) + b"\r\nd NOOP\r\n")
r = c.until(b"d OK", 15)
t.ok(b"BAD" in r and b"d OK" in r, "1 MB line after login: BAD, session goes on")
c.close()

# 2. literals announcing 4294967295 (and more) bytes
c = Conn(port)
c.until(b"\r\n")
c.send(b"a LOGIN {4294967295}\r\n")
r = c.until(b"\r\n", 5)
t.ok(r.startswith(b"a NO [TOOBIG]") or r.startswith(b"a BAD"),
     "pre-login literal of 4294967295 refused, no continuation (%r)" % r)
c.send(b"b NOOP\r\n")
t.ok(b"b OK" in c.until(b"b OK", 5), "session goes on")
login(c, greet=False)
for lit in (b"{4294967295}", b"{4294967296}", b"{18446744073709551615}",
            b"{99999999999999999999999}", b"{4294967295+}"):
    c.send(b"x APPEND INBOX " + lit + b"\r\n")
    r = c.until(b"\r\n", 5)
    t.ok(r[:4] in (b"x NO", b"x BA") or r.startswith(b"* BYE"),
         "APPEND literal %s refused (%r)" % (lit.decode(), r[:50]))
    if r.startswith(b"* BYE"):
        c.close()
        c = Conn(port)
        login(c)
c.send(b"y NOOP\r\n")
t.ok(b"y OK" in c.until(b"y OK", 5), "after the huge literals the session goes on")
c.close()

# 3. NUL bytes
c = Conn(port)
c.until(b"\r\n")
c.send(b"a LOGIN al\x00ice alicepw\r\nb LOGIN \"alice\x00\" alicepw\r\n"
       b"c LOGIN {6+}\r\nalice\x00 alicepw\r\nd NOOP\r\n")
r = c.until(b"d OK", 10)
t.ok(b"a OK" not in r and b"b OK" not in r and b"c OK" not in r and b"d OK" in r,
     "NUL in LOGIN arguments refused, session goes on (%r)" % r[-120:])
login(c, greet=False)
c.send(b"e SELECT INB\x00OX\r\nf NOOP\r\n")
r = c.until(b"f OK", 5)
t.ok(b"e OK" not in r and b"f OK" in r, "NUL in a mailbox name refused")
c.close()
# a stored message with NUL bytes (SMTP takes them): never a NUL in a literal
nulmsg = os.path.join(d, "home", "alice", "Maildir", "new", "1700000000.nul.test")
with open(nulmsg, "wb") as f:
    f.write(b"Subject: nul\n\nx\x00y\n" + b"a\x00b" * 30000 + b"\n")
if ROOT:
    os.chown(nulmsg, UID_A, UID_A)
c = Conn(port)
login(c)
c.send(b"s SELECT INBOX\r\n")
r = c.until(b"s OK", 5)
n = int(re.search(rb"\* (\d+) EXISTS", r).group(1))
c.send(b"f FETCH %d (BODY.PEEK[] BODY.PEEK[TEXT]<0.100>)\r\ng NOOP\r\n" % n)
r = c.until(b"g OK", 10)
# 30001 NULs in the whole message (sent unbuffered), 33 in the first 100
# bytes of its text (through the reply buffer)
t.ok(b"f OK" in r and b"\x00" not in r and r.count(b"\x80") == 30001 + 33,
     "a stored NUL is sent as 0x80, never inside a literal (RFC 3501 CHAR8)")
c.close()

# 4. one byte per segment
c = Conn(port)
c.until(b"\r\n")
c.dribble(b"a LOGIN alice alicepw\r\nb SELECT INBOX\r\nc FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nd LOGOUT\r\n")
r = c.until(b"d OK", 10)
t.ok(b"a OK" in r and b"b OK" in r and b"Subject: alice" in r and b"d OK" in r,
     "one byte per segment: LOGIN, SELECT, FETCH, LOGOUT")
c.close()

# 5. pipelining flood after login
N = 5000
c = Conn(port)
login(c)
c.send(b"".join(b"n%d NOOP\r\n" % i for i in range(N)) + b"z LOGOUT\r\n")
r = c.until(b"z OK", 30)
t.eq(len(re.findall(rb"\r\nn\d+ OK", b"\r\n" + r)), N, "pipelined flood: every NOOP answered")
c.close()
well_behaved("a pipelining flood")

# 6. a client that never reads: the session's memory stays bounded
c = Conn(port)
c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
login(c)
c.send(b"s SELECT INBOX\r\n")
sess = wait_for(lambda: pids_of_uid(UID_A), 5)
pid = sess[0] if sess else 0
start_rss = rss_kb(pid)
c.s.setblocking(False)
chunk = b"f FETCH 1 BODY.PEEK[]\r\n" * 200      # 20 KB of output each
sent, peak, blocked_since, t0 = 0, start_rss, None, time.time()
while time.time() - t0 < 8 and sent < (32 << 20):
    try:
        sent += c.s.send(chunk)
        blocked_since = None
    except BlockingIOError:
        blocked_since = blocked_since or time.time()
        if time.time() - blocked_since > 1.0:
            break
        time.sleep(0.01)
    except OSError:
        break
    peak = max(peak, rss_kb(pid))
t.ok(pid and sent > 0, "non-reading client: server stopped taking input after "
     "%d KiB" % (sent >> 10))
t.ok(pid and peak - start_rss < 16 * 1024, "non-reading client: session RSS "
     "bounded (%d KiB -> %d KiB peak)" % (start_rss, peak))
c.close()
t.ok(wait_for(lambda: pid not in pids_of_uid(UID_A), 15),
     "non-reading client: its session ends once it is gone")
well_behaved("a client that never reads")

# 7. slowloris: a byte every 0.3 s of a line that never ends (idle 2 s)
for phase in ("before login", "after login"):
    c = Conn(port)
    if phase == "after login":
        login(c)
    else:
        c.until(b"\r\n")
    t0 = time.time()
    closed = False
    for i in range(60):
        try:
            c.s.send(b"X")
        except OSError:
            closed = True
            break
        if c.closed(0.3):
            closed = True
            break
    took = time.time() - t0
    t.ok(closed and took < 8, "slowloris %s: closed after %.1f s (idle 2 s)" % (phase, took))
    c.close()
# a literal dribbled before login: the whole command is due within idle 2 s
c = Conn(port)
c.until(b"\r\n")
c.send(b"a LOGIN {30}\r\n")
cont = c.until(b"\r\n", 3)
t0 = time.time()
closed = False
for i in range(20):
    try:
        c.s.send(b"x")
    except OSError:
        closed = True
        break
    if c.closed(0.5):
        closed = True
        break
took = time.time() - t0
t.ok(cont.startswith(b"+") and closed and took < 5,
     "slowloris through a pre-login literal: closed after %.1f s" % took)
c.close()
well_behaved("slowloris")

# 8. more connections than max_connections (6)

def six_again():
    cs = [Conn(port) for i in range(6)]
    ok = all(c_.until(b"\r\n", 5).startswith(b"* OK") for c_ in cs)
    for c_ in cs:
        c_.close()
    return ok



def grab6(limit=10.0):
    """Six greeted connections, retried while closed ones still count."""
    end = time.time() + limit
    while True:
        cs = [Conn(port) for i in range(6)]
        gs = [c_.until(b"\r\n", 5) for c_ in cs]
        if all(g_.startswith(b"* OK") for g_ in gs) or time.time() > end:
            return cs, gs
        for c_ in cs:
            c_.close()
        time.sleep(0.2)


held, greets = grab6()
t.ok(all(g.startswith(b"* OK") for g in greets), "6 connections (the limit) greeted")
extra = Conn(port)
g = extra.until(b"\r\n", 5)
t.ok(not g.startswith(b"* OK") and extra.closed(5),
     "7th connection refused and closed (%r)" % g)
extra.close()
for h in held:
    h.close()

t.ok(wait_for(six_again, 10), "held connections closed: 6 new ones are served again")
well_behaved("more connections than the limit")

# 9. a thousand wrong passwords on one connection; another client meanwhile
c = Conn(port)
c.until(b"\r\n")
t0 = time.time()
try:
    c.send(b"".join(b"w%d LOGIN alice wrong%d\r\n" % (i, i) for i in range(1000)))
except OSError:
    pass
first = c.until(b"\r\n", 5)
first_t = time.time() - t0
t1 = time.time()
try:
    g = imaplib.IMAP4("127.0.0.1", port)
    g.login("alice", "alicepw")
    g.logout()
    good = True
except (OSError, imaplib.IMAP4.error):
    good = False
good_t = time.time() - t1
more = c.until(b"\x00never", 2.0)
n = (first + more).count(b" NO ")
t.ok(first.startswith(b"w0 NO") and first_t >= 0.8, "wrong password: NO after "
     "the delay (%.2f s)" % first_t)
t.ok(n <= 5, "1000 pipelined wrong passwords: the delay holds (%d answers in "
     "%.1f s)" % (n, time.time() - t0))
t.ok(good and good_t < 3, "meanwhile another client logs in (%.2f s)" % good_t)
c.close()

# 10. STARTTLS with pipelined plaintext: the plaintext is discarded
raw = socket.create_connection(("127.0.0.1", port), 10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"a STARTTLS\r\nb LOGIN alice alicepw\r\n")
line = f.readline()
t.ok(line.startswith(b"a OK"), "STARTTLS accepted (%r)" % line)
tls = ctx.wrap_socket(raw, server_hostname="localhost")
tls.settimeout(5)
tls.sendall(b"c SELECT INBOX\r\nd NOOP\r\n")
buf = b""
while b"d OK" not in buf:
    try:
        b = tls.recv(4096)
    except OSError:
        break
    if not b:
        break
    buf += b
t.ok(b"b OK" not in buf and b"c OK" not in buf and b"d OK" in buf,
     "plaintext LOGIN pipelined before STARTTLS discarded: not logged in (%r)" % buf)
tls.close()

# 11. mailbox names that try to leave the Maildir
c = Conn(port)
login(c)
names = [b"../x", b"../../bob", b"/etc", b"/tmp/evil", b"a/../../b", b"..", b".",
         b"..x", b".x", b"x.", b"x..y", b"INBOX/../../x", b"~bob", b"INBOX..x",
         b"&AC4-&AC4-", b"&AC8-etc", b"a/./b", b"a//b", b"bob/../../bob/Maildir",
         b"\\..\\x", b"INBOX/../..", b"new", b"cur", b"tmp", b"..INBOX"]
ctl = [b"a\x01b", b"a\x7fb", b"a\tb"]
tag = 0
for name in names + ctl:
    for cmd in (b"CREATE", b"SELECT", b"STATUS", b"DELETE", b"SUBSCRIBE"):
        tag += 1
        arg = b"{%d+}\r\n%s" % (len(name), name)
        if cmd == b"STATUS":
            arg += b" (MESSAGES)"
        c.send(b"t%d %s %s\r\n" % (tag, cmd, arg))
    tag += 1
    c.send(b"t%d APPEND {%d+}\r\n%s {12+}\r\nSubject: z\r\n\r\n" % (tag, len(name), name))
    tag += 1
    c.send(b"t%d RENAME INBOX {%d+}\r\n%s\r\n" % (tag, len(name), name))
c.send(b"zz NOOP\r\n")
r = c.until(b"zz OK", 30)
t.ok(b"zz OK" in r, "hostile mailbox names: every command answered, session alive")
c.close()
after = tree(d, skip=("home/alice/Maildir",))
after.discard("imapd.log")
before.discard("imapd.log")
t.eq(sorted(after - before), [], "hostile mailbox names: nothing created outside "
     "alice's Maildir")
t.eq(sorted(before - after), [], "hostile mailbox names: nothing removed outside "
     "alice's Maildir")
top = os.path.join(d, "home", "alice", "Maildir")
bad = []
for e in os.listdir(top):
    p = os.path.join(top, e)
    if not os.path.isdir(p) or e in ("tmp", "new", "cur"):
        continue
    if not e.startswith(".") or e in (".", "..") or ".." in e or \
            any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in e):
        bad.append(e)
t.eq(bad, [], "folders made inside the Maildir are plain Maildir++ names")
t.ok(os.path.isdir(os.path.join(top, "cur")), "alice's INBOX still there")
bobs = os.path.join(d, "home", "bob", "Maildir")
t.ok(len(os.listdir(os.path.join(bobs, "new")) + os.listdir(os.path.join(bobs, "cur")))
     == 1, "bob's message untouched")
well_behaved("hostile mailbox names")

# 12. user names with '/' or '..': imapd LOGIN and lda -d
c = Conn(port)
c.until(b"\r\n")
for i, u in enumerate([b"../bob", b"bob/../alice", b"/etc/passwd", b"alice/..",
                       b"..", b"alice/../bob", b"./alice", b"alice/"]):
    c.send(b"u%d LOGIN {%d+}\r\n%s alicepw\r\n" % (i, len(u), u))
    r = c.until(b"u%d " % i, 5)
    t.ok(b"u%d NO" % i in r or b"u%d BAD" % i in r, "LOGIN %s refused" % u.decode())
c.close()
with open(os.path.join(d, "lda.conf"), "w") as f:
    f.write("[users]\nuserbase = file:%s/userbase\n" % d)
before = tree(d)
for u in ("../bob", "bob/../alice", "/etc/passwd", "alice/..", "..", ".", "a/b",
          "alice/../bob"):
    r = subprocess.run([os.path.join(BIN, "lda"), "-c", os.path.join(d, "lda.conf"),
                        "-d", u], input=b"Subject: evil\n\nx\n", capture_output=True,
                       timeout=20)
    t.ok(r.returncode not in (0, 75), "lda -d %s refused (exit %d: %s)" % (
        u, r.returncode, r.stderr.decode().strip()[:80]))
after = tree(d)
t.eq(sorted(after - before), [], "lda with hostile user names wrote nothing")
well_behaved("hostile user names")
