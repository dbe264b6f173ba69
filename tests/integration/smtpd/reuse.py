"""smtpd-lite session processes serve several connections one after the
other (session_reuse): as many processes as the setting says, nothing of
one connection left for the next (AUTH, TLS, the transaction), a table
changed on disk is seen by the next connection, a process whose client
timed out is not reused, and session_reuse = 1 forks one per connection."""
import os, re, smtplib, ssl, socket, time, base64
from _smtpd import (T, scratch, write, global_conf, start, free_port, users,
                    maildir, wait_for, passwd_table, mkcerts, LDA)

t = T()
d = scratch()
certs = mkcerts(os.path.join(d, "certs"))
ca = os.path.join(certs, "ca.crt")
ldaconf = users(d, ["alice", "bob", "carol", "dave"])
passwd_table(d, "smtpuser", "s3cret pass")
if os.geteuid() == 0:
    os.chown(os.path.join(d, "smtp_passwd"), 0, 0)
valid = write(os.path.join(d, "valid"), "alice\nbob\ncarol\n")
p_mx, p_sub = free_port(), free_port()


def conf_text(reuse):
    return global_conf(d, "session_reuse = %d\ntimeout = 2" % reuse) + """
[listener mx]
address = 127.0.0.1
port = %(p_mx)d
tls = starttls
cert = %(c)s/server.crt
key = %(c)s/server.key
tag = in

[listener submission]
address = 127.0.0.1
port = %(p_sub)d
tls = starttls
cert = %(c)s/server.crt
key = %(c)s/server.key
auth = file:%(d)s/smtp_passwd
tag = out

[rule local]
rcpt_domain = example.org
users = file:%(valid)s
userbase = file:%(d)s/userbase
action = mda
mda = %(lda)s -c %(ldaconf)s -f %%{sender} -d %%{rcpt.user}

[rule out]
tag = out
from = authenticated
action = reject
""" % {"p_mx": p_mx, "p_sub": p_sub, "c": certs, "d": d, "lda": LDA,
       "ldaconf": ldaconf, "valid": valid}


def pids():
    with open(os.path.join(d, "smtpd.log")) as f:
        return re.findall(r"smtpd-lite\[(\d+)\]: session=\S+ connect", f.read())


def send(subject, port=p_mx, tls=False):
    s = smtplib.SMTP("127.0.0.1", port, timeout=20)
    if tls:
        s.starttls(context=ssl.create_default_context(cafile=ca))
    s.sendmail("x@client.test", ["alice@example.org"],
               "Subject: %s\r\n\r\nhi\r\n" % subject)
    s.quit()


def count(user, text):
    return sum(1 for m in maildir(d, user) if text in m)


srv = start(d, conf_text(3), [p_mx, p_sub])
time.sleep(0.5)                         # the readiness probe's session
before = len(pids())
for i in range(9):
    send("reuse-%d" % i)
    time.sleep(0.1)                     # the process says it is idle
new = pids()[before:]
t.eq(len(new), 9, "9 connections, 9 sessions logged")
uses = sorted(new.count(p) for p in set(new))
t.ok(max(uses) <= 3 and max(uses) >= 2 and len(uses) < 9,
     "session_reuse = 3: processes serve several connections, 3 at most (%s)"
     % uses)
t.ok(wait_for(lambda: all(count("alice", "Subject: reuse-%d\n" % i) == 1
                          for i in range(9)), 15), "all 9 delivered once")

# AUTH does not outlive its connection: later clients of the process that
# authenticated one are not authenticated (submission: only authenticated
# clients may relay). Which idle process takes a connection is the
# master's choice, so connect until that one does.
before = len(pids())
s = smtplib.SMTP("127.0.0.1", p_sub, timeout=20)
s.starttls(context=ssl.create_default_context(cafile=ca))
s.login("smtpuser", "s3cret pass")
code, _ = s.docmd("MAIL", "FROM:<smtpuser@example.org>")
t.eq(code, 250, "authenticated client: MAIL accepted")
s.docmd("RSET")
s.quit()
auth_pid = wait_for(lambda: pids()[before:before + 1], 5)
codes, same = [], False
for attempt in range(20):
    time.sleep(0.2)
    n0 = len(pids())
    s = smtplib.SMTP("127.0.0.1", p_sub, timeout=20)
    s.starttls(context=ssl.create_default_context(cafile=ca))
    s.ehlo("next")
    code, msg = s.docmd("MAIL", "FROM:<smtpuser@example.org>")
    if code == 250:
        code, msg = s.docmd("RCPT", "TO:<someone@elsewhere.net>")
    codes.append(code)
    s.quit()
    if pids()[n0:n0 + 1] == auth_pid:
        same = True
        break
t.ok(same, "a later connection went to the process that authenticated one (%s)"
     % auth_pid)
t.ok(all(c in (530, 550) for c in codes), "no later client of it is "
     "authenticated: refused (%s)" % codes)

# TLS does not outlive its connection either: plain text in a process that
# served TLS before, and TLS again after it
served = {}
for i in range(20):
    tls = i % 2 == 0
    n0 = len(pids())
    send("tls-mix-%d" % i, tls=tls)
    pid = pids()[n0]
    served.setdefault(pid, []).append(tls)
    time.sleep(0.2)
    mixed = [p for p, v in served.items() if True in v and False in v]
    if mixed and i >= 2:
        break
t.ok(mixed, "one process served TLS and plain connections (%s)" % served)
t.ok(wait_for(lambda: all(count("alice", "Subject: tls-mix-%d\n" % k) == 1
                          for k in range(i + 1)), 15),
     "plain and TLS connections in reused processes delivered, once each")

# a transaction left open is not carried into the next connection
raw = socket.create_connection(("127.0.0.1", p_mx), 10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO a\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<bob@example.org>\r\nQUIT\r\n")
while f.readline():
    pass
raw.close()
raw = socket.create_connection(("127.0.0.1", p_mx), 10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO b\r\nDATA\r\nQUIT\r\n")
lines = []
while True:
    l = f.readline()
    if not l:
        break
    lines.append(l)
raw.close()
t.ok(any(l.startswith(b"503") for l in lines),
     "DATA without MAIL in the next connection: 503 (%r)" % lines[-2:])

# a table changed on disk: the next connection sees it (no stale copy)
code = None
s = smtplib.SMTP("127.0.0.1", p_mx, timeout=20)
s.ehlo("x")
s.docmd("MAIL", "FROM:<x@client.test>")
code, _ = s.docmd("RCPT", "TO:<dave@example.org>")
s.quit()
t.eq(code, 550, "dave is not in the users table yet")
write(valid, "alice\nbob\ncarol\ndave\n")
time.sleep(1.2)
s = smtplib.SMTP("127.0.0.1", p_mx, timeout=20)
s.ehlo("x")
s.docmd("MAIL", "FROM:<x@client.test>")
code, _ = s.docmd("RCPT", "TO:<dave@example.org>")
s.quit()
t.eq(code, 250, "after the change the next connection accepts dave")

# a client that times out: its process ends, the next one is new
before = len(pids())
raw = socket.create_connection(("127.0.0.1", p_mx), 10)
raw.recv(512)
time.sleep(3)                           # timeout = 2
raw.close()
send("after-timeout")
p4 = pids()[before:]
t.ok(len(p4) == 2 and p4[0] != p4[1], "after a timeout the next connection "
     "is another process's (%s)" % p4)
t.ok(len(p4) == 2 and wait_for(lambda: not os.path.exists("/proc/%s" % p4[0]), 5),
     "and the process whose client timed out has ended")
srv.stop()

# session_reuse = 1: a process per connection
srv = start(d, conf_text(1), [p_mx, p_sub])
time.sleep(0.5)
before = len(pids())
for i in range(4):
    send("single-%d" % i)
    time.sleep(0.1)
p5 = pids()[before:]
t.eq(len(set(p5)), 4, "session_reuse = 1: a new process per connection")
srv.stop()
