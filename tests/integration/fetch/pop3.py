"""fetch against a private Dovecot over POP3: STLS and POP3S, exactly once
across runs (UIDL), kill -9 in the middle then a rerun, --delete removes
only what was delivered, wrong password, cleartext refusal, and --mda with
an MDA that says 75 (the message stays for the next poll)."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _dovecot import (BIN, Dovecot, NOBODY, T, message_ids, nobody_dir,
                      run_fetch, fetch_env, scratch, chown_tree)

t = T()
d = scratch()
dv = Dovecot(os.path.join(d, "dv"), users=(("bob", "secret"), ("carol", "pw2"),
                                             ("dave", "pw3")))
env = fetch_env()
env["FETCH_PASSWORD"] = "secret"
work = nobody_dir(os.path.join(d, "w"))


def fresh(name):
    p = nobody_dir(os.path.join(work, name))
    return p + "/Maildir", p + "/state"


def url(kind="pop3", user="bob"):
    return "%s://%s@localhost:%d" % (kind, user, dv.port[kind])


def fetch(md, st, *extra, u=None, e=None):
    return run_fetch(["--cafile", dv.ca, "--maildir", md, "--state", st]
                     + list(extra) + [u or url()], env=e or env)


# 1. STLS, exactly once across runs
ids = dv.add(n=15, tag="a")
md, st = fresh("stls")
r = fetch(md, st, "--starttls")
t.ok(r.returncode == 0 and r.stderr == "", "POP3 STLS: exit 0, silent (%s)" % r.stderr.strip()[:200])
t.eq(sorted(message_ids(md)), sorted(ids), "POP3 STLS: the 15 messages, once each")
r = fetch(md, st, "--starttls")
t.eq((r.returncode, len(message_ids(md))), (0, 15), "second run fetches nothing again")
ids += dv.add(n=4, tag="b")
r = fetch(md, st, "--starttls")
t.ok(r.returncode == 0 and sorted(message_ids(md)) == sorted(ids), "third run: only the 4 new ones")
t.eq(open(st).read().count("\nuidl "), 19, "state lists 19 UIDLs")
t.eq(dv.count_server("bob"), 19, "--keep (default): the server still has them all")

# 2. POP3S
md2, st2 = fresh("pop3s")
r = fetch(md2, st2, u=url("pop3s"))
t.ok(r.returncode == 0 and len(message_ids(md2)) == 19, "POP3S: 19 messages (%s)" % r.stderr.strip()[:200])

# 2b. --mark-seen-now on an old account: nothing fetched, then only new mail
mdm, stm = fresh("markseen")
r = fetch(mdm, stm, "--mark-seen-now", u=url("pop3s"))
t.ok(r.returncode == 0 and len(message_ids(mdm)) == 0 and "19 messages recorded" in r.stderr,
     "--mark-seen-now: 19 recorded, none fetched (%s)" % r.stderr.strip()[:200])
newone = dv.add(n=1, tag="after")
r = fetch(mdm, stm, u=url("pop3s"))
t.ok(r.returncode == 0 and message_ids(mdm) == newone, "then only the new message comes")

# 3. cleartext refused; wrong password
md3, st3 = fresh("plain")
r = fetch(md3, st3)
t.ok(r.returncode == 1 and "without TLS" in r.stderr, "POP3 password not sent in cleartext")
r = fetch(md3, st3, "--allow-plaintext", "-v")
t.ok(r.returncode == 0 and len(message_ids(md3)) == 20 and "PASS ****" in r.stderr
     and "secret" not in r.stderr, "--allow-plaintext works, -v masks PASS")

# 4. kill -9 in the middle, then a rerun
big = dv.add(user="carol", n=1200, tag="k")
md4, st4 = fresh("kill")
e3 = dict(env, FETCH_PASSWORD="pw2")
p = subprocess.Popen([os.path.join(BIN, "fetch"), "-u", "65534:65534", "--cafile", dv.ca,
                      "--maildir", md4, "--state", st4, "--batch", "16", url("pop3s", "carol")],
                     env=e3, stderr=subprocess.PIPE)
end = time.time() + 30
while time.time() < end:
    n = len(os.listdir(md4 + "/new")) if os.path.isdir(md4 + "/new") else 0
    if n >= 150:
        break
    time.sleep(0.005)
p.kill()
p.wait()
mid = len(message_ids(md4))
t.ok(0 < mid < 1200, "killed in the middle (%d of 1200)" % mid)
r = fetch(md4, st4, u=url("pop3s", "carol"), e=e3)
got = message_ids(md4)
t.ok(r.returncode == 0 and len(got) == 1200 and set(got) == set(big),
     "rerun after kill -9: 1200 messages, no duplicate, no loss (%d, %d distinct)" % (len(got), len(set(got))))

# 5. --delete with an MDA: 75 leaves the message, 0 deletes it
md5 = os.path.join(work, "mda", "Maildir")
for s in ("tmp", "new", "cur"):
    os.makedirs(os.path.join(md5, s))
flag = os.path.join(work, "mda", "tempfail")
mda = os.path.join(work, "mda.sh")
with open(mda, "w") as f:
    f.write("#!/bin/sh\n# says 75 for message d.2 while %s exists\nm=$(cat)\n"
            "case $m in *'<d.2.'*) [ -e %s ] && exit 75 ;; esac\n"
            "printf '%%s\\n' \"$m\" > %s/tmp/x.$$ && mv %s/tmp/x.$$ %s/new/$(date +%%s.%%N).$$\n"
            % (flag, flag, md5, md5, md5))
os.chmod(mda, 0o755)
open(flag, "w").close()
chown_tree(os.path.join(work, "mda"))
dv.add(user="dave", n=5, tag="d")
e5 = dict(env, FETCH_PASSWORD="pw3")
st5 = os.path.join(work, "mda", "state")
r = run_fetch(["--cafile", dv.ca, "--mda", mda + " --unused-arg", "--delete", "--state", st5,
               url("pop3s", "dave")], env=e5)
t.ok(r.returncode == 75 and "left on the server" in r.stderr, "MDA exit 75: exit 75, reported (%s)" % r.stderr.strip()[:200])
t.eq(len(message_ids(md5)), 4, "MDA mode: 4 of 5 delivered")
t.eq(dv.count_server("dave"), 1, "--delete: the 4 delivered are gone, the deferred one stays")
os.unlink(flag)
r = run_fetch(["--cafile", dv.ca, "--mda", mda, "--delete", "--state", st5,
               url("pop3s", "dave")], env=e5)
t.ok(r.returncode == 0 and len(message_ids(md5)) == 5 and len(set(message_ids(md5))) == 5,
     "next poll delivers the deferred one, once")
t.eq(dv.count_server("dave"), 0, "--delete: the server is empty")

# 6. --mda with lda, when it is built
lda = os.path.join(BIN, "lda")
if os.path.exists(lda):
    dv.add(user="dave", n=3, tag="l")
    md6 = os.path.join(work, "lda", "Maildir")
    nobody_dir(os.path.dirname(md6))
    r = run_fetch(["--cafile", dv.ca, "--mda", "%s -M %s" % (lda, md6), "--state",
                   os.path.join(work, "lda", "state"), url("pop3s", "dave")], env=e5)
    t.ok(r.returncode == 0 and len(message_ids(md6)) == 3,
         "--mda 'lda -M MAILDIR': 3 messages (%s)" % r.stderr.strip()[:300])
# last, since Dovecot slows down logins after a failure
r = fetch(md3, st3, u=url("pop3s"), e=dict(env, FETCH_PASSWORD="nope"))
t.ok(r.returncode == 1 and "login failed" in r.stderr, "POP3 wrong password: exit 1, clear message")
sys.exit(0)
