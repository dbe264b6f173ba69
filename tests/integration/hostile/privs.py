"""Privileges of smtpd-lite and imapd started as root, read from /proc while
clients are connected (before and after authentication), against
DESIGN.md and SECURITY.md; what a session's uid can open (another user's
Maildir, the TLS key, the passwd table, the queue); the TLS policy (only
1.2 and 1.3, no weak ciphers) and a world-readable key refused at start."""
import imaplib, os, pwd, re, smtplib, socket, ssl, subprocess, sys, time
from _hostile import (T, scratch, free_port, Daemon, mkcerts, BIN, ROOT, Conn,
                      group_pids, ids, status, wait_for)

t = T()
if not ROOT:
    print("ok - skipped: privilege checks need root")
    sys.exit(0)
NOBODY = pwd.getpwnam("nobody")
d = scratch("hostile-privs.")
mkcerts(os.path.join(d, "certs"))
os.chmod(os.path.join(d, "certs"), 0o755)
KEY = os.path.join(d, "certs", "server.key")
CRT = os.path.join(d, "certs", "server.crt")
CA = os.path.join(d, "certs", "ca.crt")
os.chmod(KEY, 0o600)
UID_A, UID_B = 5001, 5002
os.makedirs(os.path.join(d, "home"))
os.chmod(os.path.join(d, "home"), 0o755)
for u, uid in (("alice", UID_A), ("bob", UID_B)):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(d, "home", u, "Maildir", sub))
    for r_, ds, fs in os.walk(os.path.join(d, "home", u)):
        os.chown(r_, uid, uid)
        os.chmod(r_, 0o700)
with open(os.path.join(d, "home", "bob", "Maildir", "new", "1.1.host"), "w") as f:
    f.write("Subject: bob only\n\nsecret\n")
os.chown(os.path.join(d, "home", "bob", "Maildir", "new", "1.1.host"), UID_B, UID_B)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s/home/alice\nbob %d:%d:%s/home/bob\n" %
            (UID_A, UID_A, d, UID_B, UID_B, d))
pw = subprocess.run(["openssl", "passwd", "-6", "alicepw"], capture_output=True,
                    text=True, check=True).stdout.strip()
PASSWD = os.path.join(d, "passwd")
with open(PASSWD, "w") as f:
    f.write("alice %s\nbob %s\n" % (pw, pw))
os.chmod(PASSWD, 0o600)


def can_open(uid, gid, path, flags=os.O_RDONLY):
    """Whether a process with this uid/gid (no supplementary groups) can
    open path: a forked child drops to it and tries."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            fd = os.open(path, flags)
            os.close(fd)
            os._exit(0)
        except PermissionError:
            os._exit(1)
        except BaseException:
            os._exit(2)
    return os.waitpid(pid, 0)[1] >> 8 == 0


def proc_table(pgid):
    """{pid: (ppid, uids, gids, groups, NoNewPrivs)} for a process group."""
    out = {}
    for p, pp in group_pids(pgid):
        i, st = ids(p), status(p)
        if i and st and not st.get("State", "").startswith("Z"):   # zombies hold nothing
            out[p] = (pp, i[0], i[1], i[2], st.get("NoNewPrivs", "?").strip())
    return out


def all_ids(uids, v):
    return all(x == v for x in uids)


# ---- smtpd-lite ----
# An LMTP server that notes the uid of the process that connects to it
# (found through /proc/net/tcp and the fd links).
import threading
LPORT = free_port()
lmtp_uids = []


def peer_uid(conn):
    cport = conn.getpeername()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            if x[1] == "0100007F:%04X" % cport and x[2] == "0100007F:%04X" % LPORT:
                inode = x[9]
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            for fd in os.listdir("/proc/%s/fd" % e):
                if os.readlink("/proc/%s/fd/%s" % (e, fd)) == "socket:[%s]" % inode:
                    return ids(int(e))[0][0]
        except OSError:
            pass
    return None


def lmtp_server(ls):
    while True:
        try:
            conn, _ = ls.accept()
        except OSError:
            return
        lmtp_uids.append(peer_uid(conn))
        f = conn.makefile("rb")
        conn.sendall(b"220 lmtp.test LMTP\r\n")
        indata = False
        for line in f:
            if indata:
                if line == b".\r\n":
                    indata = False
                    conn.sendall(b"250 2.0.0 ok\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                indata = True
                conn.sendall(b"354 go\r\n")
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                break
            else:
                conn.sendall(b"250 ok\r\n")
        conn.close()


lsock = socket.socket()
lsock.bind(("127.0.0.1", LPORT))
lsock.listen(5)
threading.Thread(target=lmtp_server, args=(lsock,), daemon=True).start()

port, sport = free_port(), free_port()
sconf = os.path.join(d, "smtpd.conf")
with open(sconf, "w") as f:
    f.write("""hostname = mx.test
user = nobody
queue = %(d)s/queue
lda = %(lda)s
timeout = 10s
[listener mx]
address = 127.0.0.1
port = %(port)d
tls = starttls
cert = %(crt)s
key = %(key)s
[listener sub]
address = 127.0.0.1
port = %(sport)d
auth = file:%(pw)s
auth_plaintext = yes
[rule local]
rcpt_domain = example.org
users = alice, bob
action = mda
mda = %(lda)s -c %(d)s/lda.conf -d %%{rcpt.user}
user = %(uid)d:%(uid)d
[rule lmtp-nouser]
rcpt_domain = lmtp.test
action = lmtp
lmtp = 127.0.0.1:%(lport)d
""" % {"d": d, "lda": os.path.join(BIN, "lda"), "port": port, "sport": sport,
       "lport": LPORT,
       "crt": CRT, "key": KEY, "pw": PASSWD, "uid": UID_A})
with open(os.path.join(d, "lda.conf"), "w") as f:
    f.write("[users]\nuserbase = file:%s/userbase\n" % d)
smtpd = Daemon([os.path.join(BIN, "smtpd-lite"), "-F", "-c", sconf], port=port,
               log=os.path.join(d, "smtpd.log"))
master = smtpd.p.pid
c1 = Conn(port)
c1.until(b"220 ")
c2 = Conn(sport)
c2.until(b"220 ")
tab = wait_for(lambda: (lambda tb: tb if sum(1 for v in tb.values()
                                              if v[1][0] == NOBODY.pw_uid) == 2 else None)(
    proc_table(master)), 5) or proc_table(master)
t.ok(master in tab and all_ids(tab[master][1], 0), "smtpd-lite master runs as root")
kids = {p: v for p, v in tab.items() if v[0] == master}
sess = [p for p, v in kids.items() if all_ids(v[1], NOBODY.pw_uid)]
rootkids = [p for p, v in kids.items() if all_ids(v[1], 0)]
t.eq(len(sess), 2, "one session process per connection, as nobody (real, "
     "effective, saved and fs uid)")
t.ok(all(all_ids(tab[p][2], NOBODY.pw_gid) and tab[p][3] in ([], [NOBODY.pw_gid])
         for p in sess), "sessions: gid nobody's, no supplementary groups")
t.eq(len(rootkids), 1, "one more child stays root: the queue runner (it starts "
     "deliveries as each rule's user)")
t.eq(len(tab), 4, "no other process (master, runner, 2 sessions)")
# sessions are not dumpable (the uid change from root made them so): another
# process of the same uid (another session) cannot read their memory
t.ok(all(not can_open(NOBODY.pw_uid, NOBODY.pw_gid, "/proc/%d/mem" % p) for p in sess),
     "a process running as nobody cannot read a session's memory (/proc/PID/mem)")
# after authentication the session is still nobody
c2.send(b"EHLO p.test\r\n")
c2.until(b"250 ", 5)
import base64
c2.send(b"AUTH PLAIN " + base64.b64encode(b"\0alice\0alicepw") + b"\r\n")
r = c2.until(b"\r\n", 5)
t.ok(r.startswith(b"235"), "AUTH PLAIN accepted (%r)" % r)
tab2 = proc_table(master)
t.ok(all(all_ids(tab2[p][1], NOBODY.pw_uid) for p in sess if p in tab2),
     "after AUTH the session is still nobody")
# during a STARTTLS session too
c1.send(b"EHLO p.test\r\nSTARTTLS\r\n")
c1.until(b"220 ", 5)
tls = ssl.create_default_context(cafile=CA).wrap_socket(c1.s, server_hostname="localhost")
tls.sendall(b"EHLO p.test\r\n")
tls.recv(4096)
tab3 = proc_table(master)
t.ok(all(all_ids(tab3[p][1], NOBODY.pw_uid) for p in sess if p in tab3),
     "after STARTTLS the session is still nobody")
# what nobody can open
qdir = os.path.join(d, "queue")
t.ok(not can_open(NOBODY.pw_uid, NOBODY.pw_gid, KEY), "nobody cannot open the TLS key")
t.ok(not can_open(NOBODY.pw_uid, NOBODY.pw_gid, PASSWD),
     "nobody cannot open the AUTH passwd table")
t.ok(not can_open(NOBODY.pw_uid, NOBODY.pw_gid, os.path.join(d, "home", "alice",
                                                             "Maildir", "new")),
     "nobody cannot open a user's Maildir")
msgdir = os.path.join(qdir, "msg")
t.ok(os.path.isdir(msgdir) and not can_open(NOBODY.pw_uid, NOBODY.pw_gid, msgdir),
     "nobody cannot list the queue's committed messages (queue/msg)")
tls.close()
c2.close()
# a delivery runs as the rule's user, never root
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.sendmail("x@client.test", ["alice@example.org"], "Subject: p\r\n\r\nx\r\n")
s.quit()
newdir = os.path.join(d, "home", "alice", "Maildir", "new")
t.ok(wait_for(lambda: os.listdir(newdir), 15), "message delivered")
t.ok(all(os.stat(os.path.join(newdir, n)).st_uid == UID_A for n in os.listdir(newdir)),
     "delivered message owned by the mail user, not root")
# an LMTP delivery of a rule without user = : the client is never root
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.sendmail("x@client.test", ["carol@lmtp.test"], "Subject: l\r\n\r\nx\r\n")
s.quit()
t.ok(wait_for(lambda: lmtp_uids, 15) and lmtp_uids[0] == NOBODY.pw_uid,
     "an LMTP rule without user = delivers as nobody, not root (%r)" % lmtp_uids)
smtpd.stop()

# ---- imapd ----
iport, itport = free_port(), free_port()
iconf = os.path.join(d, "imapd.conf")
with open(iconf, "w") as f:
    f.write("""listen = 127.0.0.1:%d
listen_tls = 127.0.0.1:%d
cert = %s
key = %s
user = nobody
passwd = file:%s
plaintext_auth = yes
auth_failure_delay = 0
[users]
userbase = file:%s/userbase
""" % (iport, itport, CRT, KEY, PASSWD, d))
imapd = Daemon([os.path.join(BIN, "imapd"), "-F", "-c", iconf], port=iport,
               log=os.path.join(d, "imapd.log"))
top = imapd.p.pid


def holders(sock):
    """The live processes holding the server's end of a client socket:
    found through /proc/net/tcp (the server-side socket's inode) and the
    fd links of every process. Forked-ahead idle monitors (prefork) hold
    no client socket, so they do not count."""
    cport = sock.getsockname()[1]
    sport_ = sock.getpeername()[1]
    want = "0100007F:%04X" % cport
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            x = line.split()
            if x[1] == "0100007F:%04X" % sport_ and x[2] == want:
                inode = x[9]
    out = []
    if inode is None:
        return out
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % e)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("/proc/%s/fd/%s" % (e, fd)) == "socket:[%s]" % inode:
                    out.append(int(e))
                    break
            except OSError:
                pass
    tab_ = proc_table(top)
    return [p for p in out if p in tab_]


c = Conn(iport)
c.until(b"\r\n")
tab = proc_table(top)
h = wait_for(lambda: (lambda x: x if any(tab.get(p) and tab[p][1][0] != 0 for p in x)
                      else None)(holders(c.s)), 5) or holders(c.s)
tab = proc_table(top)
pre = [p for p in h if all_ids(tab[p][1], NOBODY.pw_uid)]
mon = [p for p in h if all_ids(tab[p][1], 0)]
t.ok(all_ids(tab[top][1], 0), "imapd daemon runs as root")
t.eq(sorted(tab[p][1][0] for p in h if p not in pre + mon), [],
     "before login: the connection is held only by root and nobody processes")
t.ok(len(pre) == 1 and all_ids(tab[pre[0]][2], NOBODY.pw_gid) and
     tab[pre[0]][3] in ([], [NOBODY.pw_gid]),
     "before login: the protocol is spoken by one process running as nobody")
t.ok(len(pre) == 1 and tab[pre[0]][0] in tab and all_ids(tab[tab[pre[0]][0]][1], 0) and
     tab[tab[pre[0]][0]][0] == top,
     "before login: its parent, the connection's monitor, is root (it checks passwords)")
c.send(b"a LOGIN alice alicepw\r\n")
r = c.until(b"a ", 5)
t.ok(b"a OK" in r, "login")
sess = wait_for(lambda: (lambda x: x if len(x) == 1 else None)(holders(c.s)), 5) or \
    holders(c.s)
tab = proc_table(top)
t.ok(len(sess) == 1 and all_ids(tab[sess[0]][1], UID_A) and
     all_ids(tab[sess[0]][2], UID_A) and tab[sess[0]][3] in ([], [UID_A]),
     "after login (plain): one process holds the connection, as alice's uid/gid only "
     "(%r)" % [tab[p][1:4] for p in sess])
t.ok(len(sess) == 1 and tab[sess[0]][4] == "1", "the session has no_new_privs")
t.ok(len(sess) == 1 and not can_open(UID_A, UID_A, "/proc/%d/mem" % sess[0]),
     "another process of alice's uid cannot read the session's memory")
t.ok(not can_open(NOBODY.pw_uid, NOBODY.pw_gid, "/proc/%d/mem" % top),
     "a process running as nobody cannot read the daemon's memory")
for what, path in (("bob's Maildir", os.path.join(d, "home", "bob", "Maildir", "new")),
                   ("bob's message", os.path.join(d, "home", "bob", "Maildir", "new",
                                                  "1.1.host")),
                   ("the TLS key", KEY), ("the passwd table", PASSWD),
                   ("the config's directory's userbase for writing",
                    os.path.join(d, "userbase"))):
    fl = os.O_WRONLY if "writing" in what else os.O_RDONLY
    t.ok(not can_open(UID_A, UID_A, path, fl), "alice's session uid cannot open %s" % what)
t.ok(can_open(UID_A, UID_A, os.path.join(d, "home", "alice", "Maildir", "new")),
     "alice's session uid can open her own Maildir (the check can succeed)")
# and through the program: bob's Maildir by path
c.send(b"b SELECT ../bob/Maildir\r\nc SELECT {%d+}\r\n%s\r\nd STATUS \"/%s\" (MESSAGES)\r\n"
       % (len(d) + 18, (d + "/home/bob/Maildir").encode(), d.encode()[1:] + b"/home/bob/Maildir"))
r = c.until(b"d ", 5)
t.ok(b"b OK" not in r and b"c OK" not in r and b"d OK" not in r and b"secret" not in r,
     "SELECT/STATUS of bob's Maildir by path refused")
c.close()
# over TLS: the pre-login process stays as the TLS proxy, as nobody
m = imaplib.IMAP4_SSL("127.0.0.1", itport, ssl_context=ssl.create_default_context(cafile=CA))
m.login("alice", "alicepw")
time.sleep(0.2)
h = holders(m.sock)
tab = proc_table(top)
proxy = [p for p in h if all_ids(tab[p][1], NOBODY.pw_uid)]
t.ok(len(proxy) == 1 and tab[proxy[0]][0] in tab and
     all_ids(tab[tab[proxy[0]][0]][1], UID_A),
     "after login over TLS: the TLS proxy runs as nobody, its parent the session as alice")
# (the session may still hold the raw TCP socket it was handed: it cannot
# read the TLS stream, and no root process may hold it)
t.eq(sorted(set(tab[p][1][0] for p in h) - {NOBODY.pw_uid, UID_A}), [],
     "after login over TLS: no other uid holds the connection (%r)" %
     [tab[p][1][0] for p in h])
m.logout()

# ---- TLS policy ----
def s_client(port, *args, starttls=None):
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CA,
            "-servername", "localhost"] + list(args)
    if starttls:
        argv += ["-starttls", starttls]
    try:
        r = subprocess.run(argv, input=b"", capture_output=True, timeout=15)
    except subprocess.TimeoutExpired:
        return False, ""
    out = r.stdout.decode("utf-8", "replace")
    m_ = re.search(r"Cipher is (\S+)", out)
    ok = m_ is not None and m_.group(1) != "(NONE)"
    return ok, out


loose = "DEFAULT:@SECLEVEL=0"     # the client would offer anything
for name, port_, st in (("imapd", itport, None), ("smtpd-lite", None, "smtp")):
    if port_ is None:
        smtpd = Daemon([os.path.join(BIN, "smtpd-lite"), "-F", "-c", sconf], port=port,
                       log=os.path.join(d, "smtpd2.log"))
        port_ = port
    ok12, out = s_client(port_, "-tls1_2", starttls=st)
    t.ok(ok12, "%s: TLS 1.2 handshake" % name)
    ok13, out = s_client(port_, "-tls1_3", starttls=st)
    t.ok(ok13, "%s: TLS 1.3 handshake" % name)
    for v in ("-tls1_1", "-tls1"):
        bad, out = s_client(port_, v, "-cipher", loose, starttls=st)
        t.ok(not bad, "%s: %s refused" % (name, v[1:]))
    for c_ in ("RC4", "3DES", "DES", "NULL", "EXPORT", "aNULL", "MD5", "PSK", "SRP",
               "kRSA", "CAMELLIA", "SEED", "IDEA"):
        bad, out = s_client(port_, "-tls1_2", "-cipher", c_ + ":@SECLEVEL=0", starttls=st)
        t.ok(not bad, "%s: TLS 1.2 with only %s ciphers refused" % (name, c_))

# ---- a world-readable key is refused at start, naming it ----
wkey = os.path.join(d, "certs", "world.key")
with open(KEY, "rb") as a, open(wkey, "wb") as b:
    b.write(a.read())
os.chmod(wkey, 0o644)
with open(os.path.join(d, "imapd-w.conf"), "w") as f:
    f.write(open(iconf).read().replace(KEY, wkey))
r = subprocess.run([os.path.join(BIN, "imapd"), "-n", "-c",
                    os.path.join(d, "imapd-w.conf")], capture_output=True, text=True)
t.ok(r.returncode != 0 and "world.key" in r.stderr and "readable" in r.stderr,
     "imapd refuses a world-readable key: %s" % r.stderr.strip()[:120])
with open(os.path.join(d, "smtpd-w.conf"), "w") as f:
    f.write(open(sconf).read().replace(KEY, wkey).replace("queue = %s/queue" % d,
                                                           "queue = %s/queue2" % d))
r = subprocess.run([os.path.join(BIN, "smtpd-lite"), "-n", "-c",
                    os.path.join(d, "smtpd-w.conf")], capture_output=True, text=True)
t.ok(r.returncode != 0 and "world.key" in r.stderr and "readable" in r.stderr,
     "smtpd-lite refuses a world-readable key: %s" % r.stderr.strip()[:120])
os.chmod(wkey, 0o640)
os.chown(wkey, 0, NOBODY.pw_gid)
r = subprocess.run([os.path.join(BIN, "imapd"), "-n", "-c",
                    os.path.join(d, "imapd-w.conf")], capture_output=True, text=True)
t.ok(r.returncode != 0 and "world.key" in r.stderr,
     "imapd refuses a group-readable key too (%s)" % r.stderr.strip()[:80])
