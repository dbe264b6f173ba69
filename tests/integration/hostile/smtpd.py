"""Hostile clients against smtpd-lite started as it is in production (root,
sessions as nobody, delivery through lda as a mail uid): 1 MB lines, NUL
bytes, one byte per segment, pipelining floods, a client that never reads
(memory stays bounded), slowloris (the line deadline closes it), more
connections than the limit, a thousand wrong passwords (the delay holds,
others are served), STARTTLS with pipelined plaintext, SMTP smuggling
(bare LF / bare CR end-of-data forms), open-relay address forms. Each part
ends with a well-behaved client served and nothing stored where it should
not be."""
import glob, os, re, smtplib, socket, ssl, subprocess, time
from _hostile import (T, scratch, free_port, Daemon, mkcerts, BIN, ROOT, Conn,
                      group_pids, rss_kb, wait_for, tree)

t = T()
d = scratch("hostile-smtpd.")
LDA = os.path.join(BIN, "lda")
UID = 5001 if ROOT else os.getuid()
GID = 5001 if ROOT else os.getgid()
SUSER = "nobody" if ROOT else str(os.getuid())
mkcerts(os.path.join(d, "certs"))
os.chmod(os.path.join(d, "certs"), 0o755)
os.makedirs(os.path.join(d, "mail"))
os.chmod(os.path.join(d, "mail"), 0o755)
with open(os.path.join(d, "userbase"), "w") as f:
    for u in ("alice", "bob"):
        home = os.path.join(d, "mail", u)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(home, "Maildir", sub))
        for root_, dirs, files in os.walk(home):
            if ROOT:
                os.chown(root_, UID, GID)
            os.chmod(root_, 0o700)
        f.write("%s %d:%d:%s\n" % (u, UID, GID, home))
with open(os.path.join(d, "lda.conf"), "w") as f:
    f.write("[users]\nuserbase = file:%s/userbase\n" % d)
pw = subprocess.run(["openssl", "passwd", "-6", "goodpw"], capture_output=True,
                    text=True, check=True).stdout.strip()
with open(os.path.join(d, "passwd"), "w") as f:
    f.write("alice %s\n" % pw)
os.chmod(os.path.join(d, "passwd"), 0o600)
port, sport, tport = free_port(), free_port(), free_port()
conf = os.path.join(d, "smtpd.conf")
with open(conf, "w") as f:
    f.write("""hostname = mx.test
user = %(suser)s
queue = %(d)s/queue
lda = %(lda)s
retry_min = 1
retry_max = 2
timeout = 2s
data_timeout = 2s
max_sessions = 6
max_sessions_per_address = 6
max_message_size = 200K

[listener mx]
address = 127.0.0.1
port = %(port)d

[listener sub]
address = 127.0.0.1
port = %(sport)d
auth = file:%(d)s/passwd
auth_plaintext = yes

[listener tls]
address = 127.0.0.1
port = %(tport)d
tls = starttls
cert = %(d)s/certs/server.crt
key = %(d)s/certs/server.key

[rule local]
rcpt_domain = example.org
users = alice, bob
action = mda
mda = %(lda)s -c %(d)s/lda.conf -f %%{sender} -d %%{rcpt.user}
user = %(uid)d:%(gid)d
""" % {"suser": SUSER, "d": d, "lda": LDA, "port": port, "sport": sport,
       "tport": tport, "uid": UID, "gid": GID})
r = subprocess.run([os.path.join(BIN, "smtpd-lite"), "-n", "-c", conf],
                   capture_output=True, text=True)
t.eq(r.returncode, 0, "smtpd-lite -n accepts the configuration " + r.stderr.strip())
srv = Daemon([os.path.join(BIN, "smtpd-lite"), "-F", "-v", "-c", conf], port=port,
             log=os.path.join(d, "smtpd.log"))
before = tree(d, skip=("queue", "mail/alice/Maildir", "mail/bob/Maildir"))


def msgs(user):
    out = []
    for sub in ("new", "cur"):
        for p in sorted(glob.glob(os.path.join(d, "mail", user, "Maildir", sub, "*"))):
            with open(p, "rb") as f:
                out.append(f.read())
    return out


def count(user, needle):
    return sum(1 for m in msgs(user) if needle in m)


def well_behaved(what, user="alice"):
    """A normal client is still served; its message arrives."""
    tag = ("wb-%s-%f" % (what, time.time())).encode()
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=10)
        s.sendmail("x@client.test", ["%s@example.org" % user],
                   b"Subject: " + tag + b"\r\n\r\nfine\r\n")
        s.quit()
    except (OSError, smtplib.SMTPException) as e:
        return t.ok(False, "after %s: a normal client is served (%s)" % (what, e))
    return t.ok(wait_for(lambda: count(user, tag) == 1, 15),
                "after %s: a normal client is served and its mail delivered" % what)


def codes(lines):
    return [l[:3] for l in lines if len(l) >= 4 and l[3:4] == b" "]


def replies(c, n, limit=10.0):
    """Reads n whole replies (multi-line ones count once)."""
    end = time.time() + limit
    while len(codes(c.buf.split(b"\r\n")[:-1])) < n and c._fill(end):
        pass
    cs = codes(c.buf.split(b"\r\n")[:-1])
    c.buf = b""
    return cs


def session_pid(exclude=()):
    """The session process(es): children of the master running as the
    session user (the master and the runner stay root)."""
    import pwd
    uid = pwd.getpwnam("nobody").pw_uid if ROOT else os.getuid()
    out = []
    for p, pp in group_pids(srv.p.pid):
        if pp != srv.p.pid or p in exclude:
            continue
        try:
            st = open("/proc/%d/status" % p).read()
        except OSError:
            continue
        if re.search(r"^Uid:\t%d\t" % uid, st, re.M):
            out.append(p)
    return out


# 1. a 1 MB command line: answered, the session goes on
c = Conn(port)
c.until(b"220 ")
c.send(b"EHLO " + b"A" * (1 << 20) + b"\r\nNOOP\r\n")
r = c.lines(2, 15)
t.ok(len(r) == 2 and r[0][:1] == b"5" and r[1].startswith(b"250"),
     "1 MB command line refused with 5xx, next command served (%r)" % [x[:40] for x in r])
# and a 1 MB line inside DATA: the message is refused, no partial delivery
c.send(b"EHLO ok.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.org>\r\n"
       b"DATA\r\n")
r = c.until(b"354 ", 10)
c.send(b"Subject: longline\r\n\r\n" + b"B" * (1 << 20) + b"\r\n.\r\nNOOP\r\n")
r = c.lines(2, 20)
t.ok(len(r) == 2 and r[0].startswith(b"554") and r[1].startswith(b"250"),
     "1 MB line in DATA: 554 at the dot, session goes on (%r)" % r)
# the same line ending in a bare LF: its "." CRLF is not an end of data (no
# smuggling through a long line); the real CRLF.CRLF is
c.send(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n")
c.until(b"354 ", 10)
c.send(b"Subject: longline\r\n\r\n" + b"C" * (1 << 20) + b"\n.\r\nQUIT\r\n.\r\nNOOP\r\n")
r = c.lines(2, 20)
t.ok(len(r) == 2 and r[0].startswith(b"554") and r[1].startswith(b"250"),
     "1 MB line ending in bare LF, then .CRLF: still data; 554 at the real end "
     "(%r)" % r)
c.close()
t.eq(count("alice", b"longline"), 0, "nothing of the refused message delivered")

# 2. NUL bytes in commands and in data
c = Conn(port)
c.until(b"220 ")
c.send(b"EHLO a\x00b\r\nEHLO ok.test\r\nMAIL FROM:<a\x00@client.test>\r\n"
       b"MAIL FROM:<a@client.test>\r\nRCPT TO:<ali\x00ce@example.org>\r\n"
       b"RCPT TO:<alice@example.org>\r\nDATA\r\n")
r = c.until(b"354 ", 10)
cs = codes(r.split(b"\r\n"))
t.ok(cs == [b"500", b"250", b"500", b"250", b"500", b"250", b"354"],
     "NUL in EHLO, MAIL, RCPT refused; clean commands accepted (%r)" % cs)
c.send(b"Subject: nul-data\r\n\r\nx\x00y\r\n.\r\nQUIT\r\n")
r = c.until(b"221 ", 10)
t.ok(b"221" in r, "NUL inside DATA answered, session ends cleanly (%r)" % r[-60:])
accepted = b"accepted" in r
if accepted:
    wait_for(lambda: count("alice", b"nul-data") >= 1, 15)
got = [m for m in msgs("alice") if b"nul-data" in m]
# smtpd-lite takes a NUL inside DATA as data (RFC 5321 does not allow it
# in text, but refusing it is not required); what must hold is one copy
# when accepted, none when refused.
t.ok(len(got) == (1 if accepted else 0), "NUL inside DATA: %s, %d copy stored%s" % (
    "accepted" if accepted else "refused", len(got),
    " (with its NUL byte)" if got and b"\x00" in got[0] else ""))
c.close()

# 3. a whole transaction one byte per TCP segment
c = Conn(port)
c.until(b"220 ")
c.dribble(b"EHLO slow.test\r\nMAIL FROM:<a@client.test>\r\n"
          b"RCPT TO:<bob@example.org>\r\nDATA\r\n")
r = c.lines(9, 10)
c.dribble(b"Subject: bytewise\r\n\r\nline 1\r\n..dot\r\n.\r\nQUIT\r\n")
r = c.until(b"221 ", 10)
t.ok(re.search(rb"250 [^\r]*\r\n221 ", r) is not None, "one byte per segment: 250 then 221")
t.ok(wait_for(lambda: count("bob", b"Subject: bytewise\n\nline 1\n.dot\n") == 1, 15),
     "one byte per segment: message delivered intact and unstuffed")
c.close()

# 4. pipelining flood: 5000 commands in one write, every one answered in order
N = 5000
c = Conn(port)
c.until(b"220 ")
c.send(b"EHLO flood.test\r\n" + b"NOOP\r\nRSET\r\n" * (N // 2) + b"QUIT\r\n")
data = c.until(b"221 ", 30)
nreplies = data.count(b"\r\n250 ")
t.ok(nreplies >= N and data.rstrip().endswith(b"closing connection") or
     b"221 " in data, "pipelined flood of %d commands all answered (%d)" % (N, nreplies))
c.close()
well_behaved("a pipelining flood")

# 5. a client that never reads: the session's memory stays bounded
c = Conn(port)
c.until(b"220 ")
c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
c.send(b"EHLO reader.test\r\n")
sess = wait_for(lambda: session_pid(), 5)
pid = sess[0] if sess else 0
start_rss = rss_kb(pid)
c.s.setblocking(False)
chunk = b"EHLO x.test\r\n" * 2000          # each answered with ~10 lines
sent, peak, blocked_since, t0 = 0, start_rss, None, time.time()
while time.time() - t0 < 8 and sent < (64 << 20):
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
peak = max(peak, rss_kb(pid))
t.ok(pid and sent > (1 << 20), "non-reading client: the server stopped taking input "
     "after %d KiB sent" % (sent >> 10))
t.ok(pid and peak - start_rss < 16 * 1024,
     "non-reading client: session RSS bounded (%d KiB -> %d KiB peak)" % (start_rss, peak))
t.ok(wait_for(lambda: pid not in session_pid(), 15),
     "non-reading client: the write timeout ends the session")
c.close()
well_behaved("a client that never reads")

# 6. slowloris: one byte every 0.3 s of a line that never ends; timeout = 2s
c = Conn(port)
c.until(b"220 ")
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
t.ok(closed and took < 8, "slowloris: closed by the line deadline after %.1f s "
     "(timeout 2 s)" % took)
c.close()
# a slow DATA (data_timeout = 2s): a byte every 0.3 s
c = Conn(port)
c.until(b"220 ")
c.send(b"EHLO s.test\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<alice@example.org>\r\n"
       b"DATA\r\n")
c.lines(9)
t0 = time.time()
closed = False
for i in range(60):
    try:
        c.s.send(b"Y")
    except OSError:
        closed = True
        break
    if c.closed(0.3):
        closed = True
        break
took = time.time() - t0
t.ok(closed and took < 8, "slowloris in DATA: closed after %.1f s" % took)
c.close()
t.ok(count("alice", b"YYYY") == 0, "slowloris DATA: nothing delivered")
well_behaved("slowloris")

# 7. more connections than max_sessions (6)
held = []
for i in range(6):
    h = Conn(port)
    g = h.until(b"\r\n", 5)
    held.append((h, g))
t.ok(all(g.startswith(b"220 ") for h, g in held), "6 sessions (the limit) greeted")
extra = Conn(port)
g = extra.until(b"\r\n", 5)
t.ok(g.startswith(b"421") and extra.closed(5), "7th connection: 421 and closed (%r)" % g)
extra.close()
for h, g in held:
    h.send(b"QUIT\r\n")
    h.close()
time.sleep(0.2)


def limit_free():
    """All 6 slots free again: 6 new connections greeted, none refused
    (the session processes may stay, idle, for the next connections)."""
    cs = [Conn(port) for i in range(6)]
    gs = [c.until(b"\r\n", 5) for c in cs]
    for c in cs:
        c.send(b"QUIT\r\n")
        c.close()
    return all(g.startswith(b"220 ") for g in gs)


t.ok(wait_for(limit_free, 10), "held sessions ended: the limit is free again")
well_behaved("more connections than the limit")

# 8. a thousand wrong passwords on one connection; another client is served
c = Conn(sport)
c.until(b"220 ")
c.send(b"EHLO brute.test\r\n")
c.until(b"250 ", 5)
import base64
bad = b"".join(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0wrong%d" % i) + b"\r\n"
               for i in range(1000))
t0 = time.time()
try:
    c.send(bad)
except OSError:
    pass
first = c.lines(1, 10)
got_first = time.time() - t0
# while the brute force runs, a good login on another connection
t1 = time.time()
try:
    s = smtplib.SMTP("127.0.0.1", sport, timeout=10)
    s.ehlo("good.test")
    s.login("alice", "goodpw")
    good = True
    s.quit()
except (OSError, smtplib.SMTPException):
    good = False
good_took = time.time() - t1
answers = c.until(b"\x00never", 2.0).count(b"\r\n") + len(first)
t.ok(first and first[0].startswith(b"535") and got_first >= 0.5,
     "wrong password answered 535 after a delay (%.2f s)" % got_first)
t.ok(answers < 20, "1000 pipelined wrong passwords: the delay holds "
     "(%d answers in %.1f s)" % (answers, time.time() - t0))
t.ok(good and good_took < 3, "meanwhile a good login on another connection "
     "takes %.2f s" % good_took)
c.close()

# 9. STARTTLS with pipelined plaintext: the plaintext is discarded
ctx = ssl.create_default_context(cafile=os.path.join(d, "certs", "ca.crt"))
raw = socket.create_connection(("127.0.0.1", tport), 10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO inj.test\r\n")
while not f.readline().startswith(b"250 "):
    pass
raw.sendall(b"STARTTLS\r\nMAIL FROM:<inject@evil.test>\r\n"
            b"RCPT TO:<alice@example.org>\r\n")
line = f.readline()
t.ok(line.startswith(b"220"), "STARTTLS accepted (%r)" % line)
tls = ctx.wrap_socket(raw, server_hostname="localhost")
tls.settimeout(10)
tls.sendall(b"EHLO inj.test\r\n")
buf = b""
while b"250 " not in buf:
    b = tls.recv(4096)
    if not b:
        break
    buf += b
tls.sendall(b"RCPT TO:<alice@example.org>\r\n")
buf = tls.recv(4096)
t.ok(buf[:3] == b"503", "plaintext pipelined before STARTTLS discarded: RCPT "
     "without MAIL after TLS gets 503 (%r)" % buf)
tls.close()

# 10. SMTP smuggling: each malformed end-of-data form, then a smuggled
# transaction, then the real end. Only one message may result, and the
# smuggled one never.
forms = [b"\n.\n", b"\r.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r",
         b"\n.\r", b"\r.\r", b"\n..\n", b"\r\n.\r\r\n", b"\r\n\x00.\r\n"]
for i, form in enumerate(forms):
    c = Conn(port)
    c.until(b"220 ")
    c.send(b"EHLO sm.test\r\nMAIL FROM:<a@client.test>\r\n"
           b"RCPT TO:<alice@example.org>\r\nDATA\r\n")
    c.until(b"354 ", 10)
    c.send(b"Subject: smuggle-%d\r\n\r\nbody" % i + form +
           b"MAIL FROM:<evil@evil.test>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
           b"Subject: smuggled-%d\r\n\r\nevil\r\n" % i + b"\r\n.\r\nQUIT\r\n")
    r = c.until(b"221 ", 10)
    cs = codes(r.split(b"\r\n"))
    t.ok(len(cs) == 2 and cs[0] in (b"250", b"550", b"554") and cs[1] == b"221",
         "smuggling %r: one reply to the data, then 221 (%r)" % (form, cs))
    c.close()
    if cs and cs[0] == b"250":
        t.ok(wait_for(lambda: count("alice", b"smuggle-%d" % i) == 1, 15),
             "smuggling %r: the accepted message delivered once" % form)
for i, form in enumerate(forms):
    t.eq(count("bob", b"smuggled-%d" % i), 0,
         "smuggling %r: no smuggled message created" % form)
well_behaved("smuggling attempts")

# 11. open relay: only example.org's users alice and bob are taken
forms = [b"<evil@evil.test>", b"<alice%evil.test@example.org>",
         b"<evil%example.org@evil.test>", b"<@example.org:evil@evil.test>",
         b"<@example.org,@evil.test:evil@evil.test>", b'<"evil@evil.test"@example.org>',
         b'<"alice"@evil.test>', b"<evil@evil.test@example.org>",
         b"<alice@example.org@evil.test>", b"<evil@evil.test.>",
         b"<alice@example.org.evil.test>", b"<evil@[192.0.2.1]>",
         b"<evil@[IPv6:2001:db8::1]>", b"<evil!evil.test@example.org>",
         b"<evil.test!evil@example.org>", b"<alice@evil.test>",
         b"<alice>", b"<postmaster@evil.test>", b"<alice@example.org.>",
         b"<alice@@example.org>", b"<alice@example..org>", b"<\"\"@example.org>",
         b"<alice@example.org> NOTIFY=NEVER ORCPT=rfc822;evil@evil.test"]
for i in range(0, len(forms), 10):     # under max_errors (20) a session
    c = Conn(port)
    c.until(b"220 ")
    c.send(b"EHLO relay.test\r\nMAIL FROM:<a@client.test>\r\n")
    replies(c, 2)
    part = forms[i:i + 10]
    c.send(b"".join(b"RCPT TO:" + f + b"\r\n" for f in part))
    r = c.lines(len(part), 10)
    for f, l in zip(part, r):
        if f.startswith(b"<alice@example.org> NOTIFY"):
            continue
        t.ok(l[:1] == b"5", "relay attempt RCPT TO:%s refused (%r)" % (
            f.decode(), l[:60]))
    c.send(b"QUIT\r\n")
    c.close()
time.sleep(0.5)
q = []
for p in glob.glob(os.path.join(d, "queue", "*", "*")):
    try:
        q.append(open(p, "rb").read())
    except OSError:
        pass
t.ok(not any(b"evil" in x for x in q), "nothing for evil.test in the queue")
well_behaved("relay attempts", "bob")

# nothing written outside the queue and the two Maildirs
after = tree(d, skip=("queue", "mail/alice/Maildir", "mail/bob/Maildir"))
after.discard("smtpd.log")
t.eq(sorted(after - before), [], "no file created outside the queue and the Maildirs")
for u in ("alice", "bob"):
    top = os.path.join(d, "mail", u, "Maildir")
    extra = [p for p in tree(top) if not re.match(r"^(tmp|new|cur)(/[^/]+)?$", p)
             and p not in ("courriel.uidlist", "dovecot-uidlist")]
    t.eq(extra, [], "%s's Maildir holds only tmp/new/cur entries" % u)
    t.eq(os.listdir(os.path.join(top, "tmp")), [], "%s's tmp/ is empty" % u)
    if ROOT:
        bad = [p for p in glob.glob(top + "/*/*") if os.stat(p).st_uid != UID]
        t.eq(bad, [], "%s's messages all belong to the mail uid" % u)
