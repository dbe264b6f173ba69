"""fetch killed with SIGKILL at random points of a run, many times, then
run to the end: every message of the server is in the local Maildir
exactly once (its state file and intents make a killed delivery neither
lost nor doubled), nothing half-written in new/ or cur/. With --delete, a
message is gone from the server only once it is delivered: killed runs
lose nothing."""
import os, random, signal, subprocess, sys, time
from _crash import (T, scratch, free_port, Daemon, mkcerts, BIN, ROOT, UID, GID,
                    make_home, message, scan)

t = T()
if not os.path.exists(os.path.join(BIN, "fetch")):
    print("ok - skipped: fetch is not built")
    sys.exit(0)
d = scratch("crash-fetch.")
certs = mkcerts(os.path.join(d, "certs"))
os.chmod(certs, 0o755)
home = make_home(d, "alice")
src = os.path.join(home, "Maildir")
N = [0]


def add_messages(n):
    """New mail on the server, so that every run has work to be killed in."""
    for k in range(n):
        i = N[0]
        N[0] += 1
        p = os.path.join(src, "new", "%d.M%dP1.test" % (1700000000 + i, i))
        with open(p, "wb") as f:
            f.write(message("fetch-%d" % i, (300, 5000, 60000)[i % 3]))
        if ROOT:
            os.chown(p, UID, GID)


add_messages(20)
port = free_port()
with open(os.path.join(d, "imapd.conf"), "w") as f:
    f.write("listen = 127.0.0.1:%d\ncert = %s/server.crt\nkey = %s/server.key\n"
            "password = pw\npassword_users = alice\nauth_failure_delay = 0\n%s"
            "[users]\nuserbase = { alice = \"%d:%d:%s\" }\n"
            % (port, certs, certs, "user = nobody\n" if ROOT else "", UID, GID, home))
Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
       port=port, log=os.path.join(d, "imapd.log"))
NOBODY = 65534
rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)


def out_dir(name):
    o = os.path.join(d, name)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(o, "Maildir", sub))
    if ROOT:
        for r, ds, fs in os.walk(o):
            os.chown(r, NOBODY, NOBODY)
    return o


def fetch_argv(o, *extra):
    argv = [os.path.join(BIN, "fetch")]
    if ROOT:
        argv += ["-u", "%d:%d" % (NOBODY, NOBODY)]
    return argv + ["--starttls", "--cafile", os.path.join(certs, "ca.crt"),
                   "--maildir", o + "/Maildir", "--state", o + "/state"] + list(extra) + \
        ["imap://alice@localhost:%d" % port]


env = dict(os.environ, FETCH_PASSWORD="pw")


def killed_runs(o, n, *extra):
    kills = completed = 0
    for i in range(n):
        add_messages(5)
        p = subprocess.Popen(fetch_argv(o, *extra), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = p.wait(rng.uniform(0.01, 0.12))
            completed += 1
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            kills += 1
    return kills, completed


# 1. keep the messages on the server
o = out_dir("out1")
t0 = time.time()
kills, done = killed_runs(o, 30)
r = subprocess.run(fetch_argv(o), env=env, capture_output=True, text=True, timeout=120)
t.eq(r.returncode, 0, "after %d kills (%d runs finished) in %.1f s, a last run "
     "completes (%s)" % (kills, done, time.time() - t0, r.stderr.strip()[:200]))
counts, partial = scan(o + "/Maildir")
t.eq(sorted(k for k in ("fetch-%d" % i for i in range(N[0])) if counts.get(k) != 1), [],
     "every server message in the local Maildir exactly once")
t.eq(partial, [], "nothing half-written in new/ or cur/")
r = subprocess.run(fetch_argv(o), env=env, capture_output=True, text=True, timeout=120)
t.ok(r.returncode == 0 and scan(o + "/Maildir")[0] == counts,
     "one more run fetches nothing again")

# 2. --delete: killed runs never delete what is not delivered
o = out_dir("out2")
t0 = time.time()
kills, done = killed_runs(o, 30, "--delete")
r = subprocess.run(fetch_argv(o, "--delete"), env=env, capture_output=True, text=True,
                   timeout=120)
t.eq(r.returncode, 0, "--delete: after %d kills in %.1f s a last run completes (%s)"
     % (kills, time.time() - t0, r.stderr.strip()[:200]))
counts, partial = scan(o + "/Maildir")
left, _ = scan(src)
t.eq(sorted(k for k in ("fetch-%d" % i for i in range(N[0])) if counts.get(k) != 1), [],
     "--delete: every message delivered exactly once")
t.eq(sorted(left), [], "--delete: the server's folder is empty at the end")
t.eq(partial, [], "--delete: nothing half-written in new/ or cur/")
