"""fetch against a private Dovecot over IMAP: STARTTLS and IMAPS, exactly
once across runs, kill -9 in the middle then a rerun, wrong password,
server down, certificate checks, cleartext refusal, UIDVALIDITY change,
--delete, --mark-seen-now, the state lock, a config file with ${VAR} and
file: secrets, running as nobody without -u, daemon mode with IDLE and
SIGTERM."""
import imaplib, os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _dovecot import (BIN, Dovecot, NOBODY, T, message_ids, nobody_dir,
                      run_fetch, fetch_env, scratch, chown_tree)

t = T()
d = scratch()
dv = Dovecot(os.path.join(d, "dv"), users=(("bob", "secret"), ("carol", "pw2"), ("dave", "pw3")))
env = fetch_env()
env["FETCH_PASSWORD"] = "secret"
work = nobody_dir(os.path.join(d, "w"))


def fresh(name):
    p = nobody_dir(os.path.join(work, name))
    return p + "/Maildir", p + "/state"


def url(kind="imap", user="bob", folder=""):
    return "%s://%s@localhost:%d%s" % (kind, user, dv.port[kind], folder)


def fetch(md, st, *extra, u=None, e=None):
    return run_fetch(["--cafile", dv.ca, "--maildir", md, "--state", st]
                     + list(extra) + [u or url()], env=e or env)


# 1. STARTTLS, exactly once across runs; a message already read on the
# server (webmail) is fetched too, and --keep leaves the flags alone
ids = dv.add(n=20, tag="a")
c = imaplib.IMAP4("127.0.0.1", dv.port["imap"])
c.login("bob", "secret")
c.select("INBOX")
c.store("1", "+FLAGS", "(\\Seen)")
c.logout()
md, st = fresh("starttls")
r = fetch(md, st, "--starttls")
t.eq(r.returncode, 0, "IMAP STARTTLS: exit 0")
t.eq(r.stdout + r.stderr, "", "one shot prints nothing when all went well")
got = message_ids(md)
t.eq(sorted(got), sorted(ids), "IMAP STARTTLS: the 20 messages, once each")
c = imaplib.IMAP4("127.0.0.1", dv.port["imap"])
c.login("bob", "secret")
c.select("INBOX", readonly=True)
typ, seen = c.search(None, "SEEN")
c.logout()
t.eq(seen[0].split(), [b"1"], "--keep: flags untouched (only the one read before is \\Seen)")
r = fetch(md, st, "--starttls")
t.eq((r.returncode, len(message_ids(md))), (0, 20), "second run fetches nothing again")
ids += dv.add(n=3, tag="b")
r = fetch(md, st, "--starttls")
got = message_ids(md)
t.ok(r.returncode == 0 and sorted(got) == sorted(ids), "third run fetches only the 3 new ones")
st_text = open(st).read()
t.ok("folder INBOX" in st_text and " 1:23" in st_text, "state keeps UIDs as a range: %r" % st_text.strip())
names = os.listdir(md + "/new")
t.ok(all(",S=" in n for n in names), "Maildir names carry S= sizes")
t.ok(all(os.stat(os.path.join(md, "new", n)).st_uid == NOBODY for n in names), "mail written as nobody")
body = open(os.path.join(md, "new", names[0]), "rb").read()
t.ok(b"\r\n" not in body, "messages stored with LF line ends")

# 2. IMAPS, and the whole mailbox through --all
md2, st2 = fresh("imaps")
r = fetch(md2, st2, u=url("imaps"))
t.ok(r.returncode == 0 and len(message_ids(md2)) == 23, "IMAPS: 23 messages (%s)" % r.stderr.strip())
r = fetch(md2, st2, "--all", u=url("imaps"))
t.eq(len(message_ids(md2)), 46, "--all fetches everything again")

# 3. certificate checks
md3, st3 = fresh("cert")
r = run_fetch(["--maildir", md3, "--state", st3, url("imaps")], env=env)
t.ok(r.returncode != 0 and "certificate" in r.stderr.lower() or "verif" in r.stderr.lower(),
     "unknown CA refused with a clear message: %s" % r.stderr.strip()[:200])
t.eq(len(message_ids(md3)), 0, "nothing fetched over an unverified link")
r = run_fetch(["--insecure", "--maildir", md3, "--state", st3, url("imaps")], env=env)
t.ok(r.returncode == 0 and "WARNING" in r.stderr and "insecure" in r.stderr,
     "--insecure works with a loud warning")
r = run_fetch(["--cafile", dv.ca, "--maildir", md3, "--state", st3,
               "imaps://bob@127.0.0.1:%d" % dv.port["imaps"]], env=env)
t.eq(r.returncode, 0, "an IP address is checked against the IP SAN")

# 4. cleartext refused unless allowed
md4, st4 = fresh("plain")
r = fetch(md4, st4)
t.ok(r.returncode == 1 and "without TLS" in r.stderr, "password not sent in cleartext: %s" % r.stderr.strip())
r = fetch(md4, st4, "--allow-plaintext")
t.ok(r.returncode == 0 and len(message_ids(md4)) == 23, "--allow-plaintext fetches")

# 5. wrong password, server down
md5, st5 = fresh("bad")
r = run_fetch(["--maildir", md5, "--state", st5, "--timeout", "5",
               "imaps://bob@127.0.0.1:1"], env=env)
t.ok(r.returncode == 1 and "connect" in r.stderr and "refused" in r.stderr.lower(),
     "server down: exit 1, clear message: %s" % r.stderr.strip())

# 6. -v traces the protocol with the password masked
md6, st6 = fresh("trace")
r = fetch(md6, st6, "-v", "--starttls")
t.ok("C: f" in r.stderr and "AUTHENTICATE PLAIN" in r.stderr and "secret" not in r.stderr
     and "AGJvYgBzZWNyZXQ" not in r.stderr, "-v trace masks the password")

# 7. kill -9 in the middle of a big fetch, then a rerun: no loss, no duplicate
big = dv.add(user="carol", n=2000, size=4096, tag="k")
md7, st7 = fresh("kill")
e3 = dict(env, FETCH_PASSWORD="pw2")
argv = [os.path.join(BIN, "fetch"), "-u", "65534:65534", "--cafile", dv.ca,
        "--maildir", md7, "--state", st7, "--batch", "16", url("imaps", "carol")]
p = subprocess.Popen(argv, env=e3, stderr=subprocess.PIPE)
end = time.time() + 30
while time.time() < end:
    n = len(os.listdir(md7 + "/new")) if os.path.isdir(md7 + "/new") else 0
    if n >= 200:
        break
    time.sleep(0.005)
p.kill()
p.wait()
mid = len(message_ids(md7))
t.ok(0 < mid < 2000, "killed in the middle (%d of 2000 delivered)" % mid)
r = run_fetch(["--cafile", dv.ca, "--maildir", md7, "--state", st7, url("imaps", "carol")], env=e3)
got = message_ids(md7)
t.eq(r.returncode, 0, "rerun after kill -9: exit 0 (%s)" % r.stderr.strip()[:200])
t.eq(len(got), 2000, "rerun after kill -9: 2000 messages")
t.eq(len(set(got)), 2000, "rerun after kill -9: no duplicate")
t.ok(set(got) == set(big), "rerun after kill -9: no loss")
left = len(os.listdir(md7 + "/tmp"))
t.ok(left <= 16, "at most the killed batch is left in tmp/ (%d; swept after 36 h)" % left)

# 8. the lock: a second run while one holds the state is refused
md8, st8 = fresh("lock")
open(st8 + ".lock", "w").close()
os.chown(st8 + ".lock", NOBODY, NOBODY)
holder = subprocess.Popen(["python3", "-c",
    "import fcntl,os,sys,time; f=open(sys.argv[1],'a'); fcntl.flock(f,fcntl.LOCK_EX); "
    "print('locked',flush=True); time.sleep(30)", st8 + ".lock"], stdout=subprocess.PIPE)
holder.stdout.readline()
r = fetch(md8, st8, "--starttls")
holder.kill()
holder.wait()
t.ok(r.returncode == 75 and "another fetch" in r.stderr and not os.path.isdir(md8 + "/new")
     or (r.returncode == 75 and len(message_ids(md8)) == 0),
     "overlapping run: skipped, exit 75: %s" % r.stderr.strip())
r = fetch(md8, st8, "--starttls")
t.eq((r.returncode, len(message_ids(md8))), (0, 23), "after the lock is gone: fetched")

# 9. UIDVALIDITY change: reported, nothing twice; --mark-seen-now re-bases
old, new = dv.reset_uidvalidity("bob")
ids_c = dv.add(n=2, tag="c")
r = fetch(md, st, "--starttls")
t.ok(r.returncode == 1 and "UIDVALIDITY changed" in r.stderr, "UIDVALIDITY change reported: %s" % r.stderr.strip()[:160])
t.eq(len(message_ids(md)), 23, "UIDVALIDITY change: nothing fetched twice")
r = fetch(md, st, "--starttls", "--mark-seen-now")
t.ok(r.returncode == 0 and str(new) in open(st).read(), "--mark-seen-now takes the new UIDVALIDITY")
ids_d = dv.add(n=2, tag="d")
r = fetch(md, st, "--starttls")
got = message_ids(md)
t.ok(r.returncode == 0 and len(got) == 25 and set(ids_d) <= set(got), "after re-basing, new mail flows again")

# 10. --delete removes only what was delivered (an MDA that refuses one)
dv.add(user="dave", n=10, tag="k")
e5 = dict(env, FETCH_PASSWORD="pw3")
md10, st10 = fresh("delete")
mda = os.path.join(work, "mda.sh")
with open(mda, "w") as f:
    f.write("#!/bin/sh\n# refuses message k.5 for good, delivers the rest into a Maildir\n"
            "m=$(cat)\ncase $m in *'<k.5.'*) exit 65 ;; esac\n"
            "n=%s/new/$(date +%%s.%%N).$$\nprintf '%%s\\n' \"$m\" > %s/tmp/x.$$ && mv %s/tmp/x.$$ $n\n"
            % (md10, md10, md10))
os.chmod(mda, 0o755)
for s in ("tmp", "new", "cur"):
    os.makedirs(os.path.join(md10, s))
chown_tree(os.path.dirname(md10))
before = dv.count_server("dave")
r = run_fetch(["--cafile", dv.ca, "--mda", mda, "--delete", "--state", st10,
               url("imaps", "dave")], env=e5)
t.ok(r.returncode == 1 and "k.5" not in r.stdout, "--delete with one refused message: exit 1")
t.eq(len(message_ids(md10)), before - 1, "MDA mode: all but the refused one delivered")
left = dv.count_server("dave")
t.eq(left, 1, "--delete: only the refused message stays on the server")

# 11. config file: [account], ${VAR} and file: secrets, account by name
pwfile = os.path.join(work, "pw")
with open(pwfile, "w") as f:
    f.write("pw3\n")
os.chown(pwfile, NOBODY, NOBODY)
os.chmod(pwfile, 0o600)
md11, st11 = fresh("conf")
conf = os.path.join(work, "fetch.conf")
with open(conf, "w") as f:
    f.write("state_dir = %s/sd\ncafile = %s\n\n[account work]\nurl = imaps://${IMAP_USER}@localhost:%d/INBOX\n"
            "password = ${IMAP_PASS}\nmaildir = %s\n\n[account other]\nprotocol = imaps\nhost = localhost\n"
            "port = %d\nuser = dave\npassword = file:%s\nmaildir = %s/other\n"
            % (os.path.dirname(md11), dv.ca, dv.port["imaps"], md11, dv.port["imaps"], pwfile, os.path.dirname(md11)))
e4 = fetch_env()
e4.update(IMAP_USER="bob", IMAP_PASS="secret")
r = run_fetch(["-c", conf, "-n"], env=e4)
t.ok(r.returncode == 0 and "work:" in r.stdout and "other:" in r.stdout, "-n checks the config: %s" % (r.stdout + r.stderr).strip()[:200])
r = run_fetch(["-c", conf, "work"], env=e4)
t.ok(r.returncode == 0 and len(message_ids(md11)) == 27, "config account with ${VAR}: fetched (%s)" % r.stderr.strip()[:200])
t.ok(os.path.exists(os.path.dirname(md11) + "/sd/work.state"), "state under state_dir, named after the account")
r = run_fetch(["-c", conf, "other"], env=e4)
t.ok(r.returncode == 0 and len(message_ids(os.path.dirname(md11) + "/other")) == 1, "file: secret password works")
with open(conf, "a") as f:
    f.write("bogus = 1\n")
r = run_fetch(["-c", conf, "-n"], env=e4)
t.ok(r.returncode == 78 and "fetch.conf:" in r.stderr and "bogus" in r.stderr, "unknown key: file:line message")

# 12. as nobody without -u (setpriv), and root without -u refused
md12, st12 = fresh("setpriv")
r = subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups",
                    os.path.join(BIN, "fetch"), "--cafile", dv.ca, "--maildir", md12, "--state", st12,
                    url("imaps")], env=env, capture_output=True, text=True)
t.ok(r.returncode == 0 and len(message_ids(md12)) == 27, "runs as nobody through setpriv: %s" % r.stderr.strip()[:200])
r = run_fetch(["--maildir", md12, url("imaps")], env=env, as_nobody=False)
t.ok(r.returncode != 0 and "root" in r.stderr, "refuses to run as root without -u")

# 13. daemon with IDLE: new mail within seconds; SIGTERM exits
md13, st13 = fresh("idle")
p = subprocess.Popen([os.path.join(BIN, "fetch"), "-u", "65534:65534", "--cafile", dv.ca,
                      "--maildir", md13, "--state", st13, "-d", "600", "--idle", url("imaps")],
                     env=env, stderr=subprocess.PIPE, text=True)


def wait_count(n, limit=15):
    end = time.time() + limit
    while time.time() < end:
        if len(message_ids(md13)) >= n:
            return True
        time.sleep(0.05)
    return False


t.ok(wait_count(27), "daemon: first poll fetched 27")
new_ids = dv.add(n=1, tag="idle")
t0 = time.time()
t.ok(wait_count(28, 20), "IDLE: a new message arrives in %.1f s" % (time.time() - t0))
p.send_signal(signal.SIGHUP)
dv.add(n=1, tag="hup")
t.ok(wait_count(29, 20), "after SIGHUP the daemon goes on fetching")
# the server side of the IDLE connection dies: fetch reconnects (backoff 5 s)
master = dv.proc.p.pid
killed = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        stat = open("/proc/%s/stat" % pid).read()
        cmd = open("/proc/%s/cmdline" % pid, "rb").read()
    except OSError:
        continue
    ppid = int(stat.rsplit(")", 1)[1].split()[1])
    title = cmd.split(b"\0")[0]
    if ppid == master and b"/imap" in title and b"login" not in title:
        os.kill(int(pid), signal.SIGKILL)
        killed += 1
dv.add(n=1, tag="reconnect")
t0 = time.time()
t.ok(killed > 0 and wait_count(30, 30), "IDLE link killed (%d): reconnected, new mail in %.1f s"
     % (killed, time.time() - t0))
p.send_signal(signal.SIGTERM)
try:
    rc = p.wait(10)
except subprocess.TimeoutExpired:
    p.kill()
    rc = None
t.eq(rc, 0, "SIGTERM: the daemon exits 0")
err = p.stderr.read()
t.ok("configuration re-read" in err, "SIGHUP re-read the configuration")
t.ok("connection lost during IDLE" in err and "reconnecting in 5 s" in err,
     "the lost link was reported and retried with a backoff")

# 14. last, since Dovecot slows down logins after a failure
e2 = dict(env, FETCH_PASSWORD="wrong")
r = fetch(md5, st5, "--starttls", e=e2)
t.ok(r.returncode == 1 and "login failed" in r.stderr and "wrong" not in r.stderr,
     "wrong password: exit 1, clear message, password not shown: %s" % r.stderr.strip())
sys.exit(0)
