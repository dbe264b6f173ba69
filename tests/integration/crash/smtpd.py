"""smtpd-lite killed with SIGKILL (the whole process group: master,
sessions, runner and the lda deliveries it started) at random points while
clients send mail, many times, restarted each time: every message that got
its 250 is delivered exactly once, no message twice, nothing half-written
in new/ or cur/. Then a full queue file system (a small tmpfs) and an
unwritable Maildir give temporary failures and lose nothing."""
import os, random, signal, smtplib, socket, subprocess, threading, time
from _crash import (T, scratch, free_port, Daemon, BIN, ROOT, UID, GID, make_home,
                    message, scan)

t = T()
d = scratch("crash-smtpd.")
home = make_home(d, "alice")
md = os.path.join(home, "Maildir")
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s\n" % (UID, GID, home))
with open(os.path.join(d, "lda.conf"), "w") as f:
    f.write("[users]\nuserbase = file:%s/userbase\n" % d)
LDA = os.path.join(BIN, "lda")
port = free_port()


def conf_text(queue, p=port):
    return """hostname = mx.test
user = %(su)s
queue = %(q)s
lda = %(lda)s
retry_min = 1
retry_max = 1
timeout = 5s
[listener mx]
address = 127.0.0.1
port = %(port)d
[rule local]
rcpt_domain = example.org
users = alice
action = mda
mda = %(lda)s -c %(d)s/lda.conf -f %%{sender} -d %%{rcpt.user}
user = %(uid)d:%(gid)d
""" % {"su": "nobody" if ROOT else str(os.getuid()), "q": queue, "lda": LDA,
       "port": p, "d": d, "uid": UID, "gid": GID}


conf = os.path.join(d, "smtpd.conf")
with open(conf, "w") as f:
    f.write(conf_text(os.path.join(d, "queue")))
rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
acked, tried, lock = set(), set(), threading.Lock()
counter = [0]


def client(stop):
    while not stop.is_set():
        with lock:
            counter[0] += 1
            tok = "smtp-%d" % counter[0]
            tried.add(tok)
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=5)
            s.sendmail("x@client.test", ["alice@example.org"],
                       message(tok, rng.choice((300, 3000))).replace(b"\n", b"\r\n"))
            with lock:
                acked.add(tok)          # sendmail returned: 250 was read
            s.quit()
            time.sleep(0.02)
        except (OSError, smtplib.SMTPException):
            time.sleep(0.01)


ITER = 25
t0 = time.time()
for i in range(ITER):
    srv = Daemon([os.path.join(BIN, "smtpd-lite"), "-F", "-c", conf], port=port,
                 log=os.path.join(d, "smtpd.log"))
    stop = threading.Event()
    th = [threading.Thread(target=client, args=(stop,)) for k in range(2)]
    for x in th:
        x.start()
    time.sleep(rng.uniform(0.05, 0.4))
    srv.kill()                          # SIGKILL to the whole process group
    stop.set()
    for x in th:
        x.join()
t.ok(len(acked) >= ITER, "%d iterations of kill -9 in %.1f s: %d of %d messages "
     "acknowledged" % (ITER, time.time() - t0, len(acked), len(tried)))
srv = Daemon([os.path.join(BIN, "smtpd-lite"), "-F", "-c", conf], port=port,
             log=os.path.join(d, "smtpd.log"))


def wait_for(pred, limit=15.0):
    end = time.time() + limit
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def queue_empty():
    q = os.path.join(d, "queue", "msg")
    return not [n for n in os.listdir(q) if not n.startswith(".")]


t1 = time.time()
wait_for(lambda: queue_empty() and len(os.listdir(os.path.join(md, "new"))) >= len(acked), 40)
counts, partial = scan(md)
print("# drained in %.1f s" % (time.time() - t1))
t.eq(sorted(tok for tok in acked if not counts.get(tok)), [],
     "after a restart every acknowledged message is delivered (none lost)")
# A delivery that lda finished but the runner had not yet recorded as done
# when the kill came is attempted again after the restart; lda finds the
# delivery key (queue id and recipient) in the Maildir and does not make it
# twice: exactly once.
extra = sum(c - 1 for c in counts.values() if c > 1)
t.eq(extra, 0, "no message delivered twice after %d kills" % ITER)
t.eq(partial, [], "nothing half-written in new/ or cur/")
t.ok(queue_empty(), "the queue drained")
t.eq(os.listdir(os.path.join(d, "queue", "incoming")), [],
     "nothing left in queue/incoming (unacknowledged data removed at start)")

t1 = time.time()
# an unwritable Maildir: delivery retried, nothing lost, delivered once fixed
os.chmod(os.path.join(md, "new"), 0o500)
s = smtplib.SMTP("127.0.0.1", port, timeout=10)
s.sendmail("x@client.test", ["alice@example.org"], message("ro-maildir").replace(b"\n", b"\r\n"))
s.quit()
time.sleep(2.5)
t.ok(not queue_empty() and "ro-maildir" not in scan(md)[0],
     "unwritable Maildir: the message stays queued (temporary failure)")
os.chmod(os.path.join(md, "new"), 0o700)
t.ok(wait_for(lambda: scan(md)[0].get("ro-maildir") == 1, 20),
     "unwritable Maildir fixed: the message delivered by a retry, once")
srv.stop()
print("# unwritable part %.1f s" % (time.time() - t1))
t1 = time.time()

# a full queue file system: 4xx at DATA, nothing acknowledged is lost
if not ROOT:
    print("ok - skipped: a tmpfs needs root")
else:
    full = os.path.join(d, "fullq")
    os.makedirs(full)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k,mode=0755", "tmpfs", full],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("ok - skipped: cannot mount a tmpfs (%s)" % r.stderr.strip())
    else:
        try:
            port2 = free_port()
            conf2 = os.path.join(d, "smtpd2.conf")
            with open(conf2, "w") as f:
                f.write(conf_text(os.path.join(full, "queue"), port2).replace(
                    "max_message_size", "#"))
            srv2 = Daemon([os.path.join(BIN, "smtpd-lite"), "-F", "-c", conf2], port=port2,
                          log=os.path.join(d, "smtpd2.log"))
            s = smtplib.SMTP("127.0.0.1", port2, timeout=20)
            code = None
            try:
                s.sendmail("x@client.test", ["alice@example.org"],
                           message("bigq", 500000).replace(b"\n", b"\r\n"))
                code = 250
            except smtplib.SMTPDataError as e:
                code = e.smtp_code
            except smtplib.SMTPException as e:
                code = getattr(e, "smtp_code", -1)
            t.ok(code is not None and 400 <= code < 500,
                 "full queue file system: DATA answered with a temporary failure (%r)" % code)
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass
            s = smtplib.SMTP("127.0.0.1", port2, timeout=20)
            s.sendmail("x@client.test", ["alice@example.org"],
                       message("smallq").replace(b"\n", b"\r\n"))
            s.quit()
            t.ok(wait_for(lambda: scan(md)[0].get("smallq") == 1, 20),
                 "full queue file system: space freed, the next message accepted and delivered")
            t.ok("bigq" not in scan(md)[0], "the refused message was not delivered")
            srv2.stop()
        finally:
            subprocess.run(["umount", full])
            print("# full part %.1f s" % (time.time() - t1))
