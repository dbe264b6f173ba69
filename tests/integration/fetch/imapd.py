"""fetch against courriel's own imapd over STARTTLS: every message exactly
once and byte for byte (LF on disk, whatever the line ends and names of
the files on the server), a second run fetches nothing, a new message
arrives on the third, and --delete empties the folder of what was
delivered."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _dovecot import (BIN, Daemon, NOBODY, T, chown_tree, free_port, message_ids,
                      mkcerts, nobody_dir, run_fetch, fetch_env, scratch)

t = T()
if not os.path.exists(os.path.join(BIN, "imapd")):
    t.ok(True, "imapd is not built: skipped")
    sys.exit(0)
d = scratch("fetch-imapd.")
certs = mkcerts(os.path.join(d, "certs"))
os.chmod(certs, 0o755)
uid = 5001
maildir = os.path.join(d, "alice", "Maildir")
for sub in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(maildir, sub))
port = free_port()
with open(os.path.join(d, "imapd.conf"), "w") as f:
    f.write("listen = 127.0.0.1:%d\ncert = %s/server.crt\nkey = %s/server.key\n"
            "password = ${IMAP_PASSWD}\npassword_users = alice\nauth_failure_delay = 0\n"
            "[users]\nuserbase = { alice = \"%d:%d:%s/alice\" }\n" % (port, certs, certs, uid, uid, d))

want = {}


def put(i, crlf=False, sub="new"):
    body = "Subject: message %d\nMessage-ID: <imapd.%d@test>\nFrom: a@b.test\n\n" % (i, i)
    body += ("line %d " % i) * (i * 5) + "\nend\n"
    data = body.encode()
    want["<imapd.%d@test>" % i] = data
    if crlf:
        data = data.replace(b"\n", b"\r\n")
    name = "%d.M%dP1.test" % (1700000000 + i, i) + (":2," if sub == "cur" else "")
    with open(os.path.join(maildir, sub, name), "wb") as g:
        g.write(data)
    chown_tree(os.path.join(d, "alice"), uid, uid)


for i in range(25):
    put(i, crlf=(i % 3 == 1), sub="cur" if i % 4 == 0 else "new")
env = dict(os.environ, IMAP_PASSWD="s3cret pass")
Daemon([os.path.join(BIN, "imapd"), "-F", "-c", os.path.join(d, "imapd.conf")],
       port=port, env=env, log=os.path.join(d, "imapd.log"))

out = nobody_dir(os.path.join(d, "out"))
md, st = out + "/Maildir", out + "/state"
fenv = dict(fetch_env(), FETCH_PASSWORD="s3cret pass")
url = "imap://alice@localhost:%d" % port


def fetch(*extra):
    return run_fetch(["--starttls", "--cafile", os.path.join(certs, "ca.crt"), "--maildir", md,
                      "--state", st] + list(extra) + [url], env=fenv)


def contents():
    got = {}
    for sub in ("new", "cur"):
        for n in os.listdir(os.path.join(md, sub)):
            data = open(os.path.join(md, sub, n), "rb").read()
            mid = [l for l in data.split(b"\n") if l.lower().startswith(b"message-id:")][0]
            got.setdefault(mid.split(b":", 1)[1].strip().decode(), []).append(data)
    return got


# leftovers in tmp/: one older than 36 hours (swept), one fresh (kept)
os.makedirs(md + "/tmp")
for name, age in (("old.leftover", 40 * 3600), ("fresh.leftover", 60)):
    open(os.path.join(md, "tmp", name), "w").close()
    then = time.time() - age
    os.utime(os.path.join(md, "tmp", name), (then, then))
chown_tree(out)
r = fetch()
t.eq(r.returncode, 0, "fetch from imapd over STARTTLS: exit 0 (%s)" % r.stderr.strip()[:300])
t.eq(sorted(os.listdir(md + "/tmp")), ["fresh.leftover"], "tmp/ swept of files older than 36 h only")
got = contents()
t.eq(sorted(got), sorted(want), "every message fetched")
t.ok(all(len(v) == 1 for v in got.values()), "each exactly once")
t.ok(all(got[k][0] == want[k] for k in want if k in got), "byte for byte, LF line ends")
r = fetch()
t.ok(r.returncode == 0 and len(message_ids(md)) == 25, "second run fetches nothing")
put(100)
r = fetch()
t.ok(r.returncode == 0 and len(message_ids(md)) == 26, "third run fetches the new one")
r = fetch("--delete")
left = sum(len(os.listdir(os.path.join(maildir, s))) for s in ("new", "cur"))
t.ok(r.returncode == 0 and left == 0, "--delete expunges what was delivered (%d left; %s)"
     % (left, r.stderr.strip()[:200]))
t.eq(len(message_ids(md)), 26, "nothing fetched twice by --delete")
sys.exit(0)
