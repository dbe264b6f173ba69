"""etc/examples/reception (seed 001): start.sh under a real supervisord.
Mail goes in with seed 001's send.sh (msmtp over LMTP) to smtpd-lite,
which delivers it into dst's Maildir served by imapd; fetch, as www-data
(as root) or as the running user, polls that account over STARTTLS as a
daemon and hands each message to lda -M /MAILDIR/Maildir; then, the daemon
stopped, the cron form (one poll per run) goes on where it left off; lda
alone replaces putmail in a pipeline. Every message arrives exactly once."""
import os, pwd, shutil, subprocess
from _suite import (T, scratch, free_port, TOP, BIN, ROOT, wait_for, write,
                    ctl, pid_of, messages, count, Supervised)

t = T()
ex = os.path.join(TOP, "etc", "examples", "reception")
d = scratch("suite-reception.")
P = {"LMTP_PORT": free_port(), "IMAP_PORT": free_port()}
fetch_user = ""
if ROOT:
    try:
        pwd.getpwnam("www-data")
        fetch_user = "www-data"
    except KeyError:
        fetch_user = "nobody"
env = dict(os.environ, SERVER_DIR=d + "/server", MAILDIR_VOLUME=d + "/MAILDIR",
           IDFILES_VOLUME=d + "/IDFILES", COURRIEL_BIN=BIN, COURRIEL_SBIN=BIN,
           IMAP_PASSWORD="pass word", FETCH_INTERVAL="1", FETCH_USER=fetch_user,
           MAIL_UID="5003", MAIL_GID="5003",
           **{k: str(v) for k, v in P.items()})
conf = os.path.join(ex, "supervisord.conf")
sv = Supervised(["sh", os.path.join(ex, "start.sh")], env, list(P.values()),
                conf, os.path.join(d, "start.out"))
if not t.ok(sv.ok, "start.sh: supervisord runs smtpd-lite (LMTP), imapd and fetch"):
    print(sv.log())
    raise SystemExit(1)
server_box = os.path.join(d, "server", "mail", "dst", "Maildir")
box = os.path.join(d, "MAILDIR", "Maildir")
t.ok(os.path.isdir(os.path.join(box, "new")) and
     os.path.isdir(os.path.join(d, "IDFILES", "idfiles")),
     "init.sh made /MAILDIR/Maildir and /IDFILES/idfiles")
if ROOT:
    want = pwd.getpwnam(fetch_user).pw_uid
    t.ok(os.stat(box).st_uid == want and
         os.stat(os.path.join(d, "IDFILES", "idfiles")).st_uid == want,
         "both belong to %s" % fetch_user)
p = subprocess.run(["sh", os.path.join(ex, "init.sh")], env=env,
                   capture_output=True, text=True, timeout=30)
t.ok(p.returncode == 0 and "Already initialized" in p.stdout,
     "init.sh a second time: Already initialized")

# seed 001's send.sh: msmtp -t over LMTP
with open(os.path.join(ex, "msmtprc")) as f:
    rc = f.read().replace("port 24", "port %d" % P["LMTP_PORT"])
msmtprc = write(os.path.join(d, "msmtprc"), rc, 0o600)
p = subprocess.run(["sh", os.path.join(ex, "send.sh")],
                   env=dict(env, MSMTPCONFIGFILE=msmtprc), capture_output=True,
                   text=True, timeout=60)
t.ok(p.returncode == 0, "send.sh: msmtp --protocol=lmtp (rc %d %s)"
     % (p.returncode, (p.stdout + p.stderr).strip()[-100:]))
t.ok(wait_for(lambda: count(server_box, "Subject: test") == 1, 10),
     "LMTP delivered into dst's Maildir on the server")
t.ok(wait_for(lambda: count(box, "Subject: test") == 1, 15),
     "fetch (daemon, as %s) brought it into /MAILDIR/Maildir through lda -M"
     % (fetch_user or "this user"))
if ROOT:
    names = os.listdir(os.path.join(box, "new"))
    t.ok(names and os.stat(os.path.join(box, "new", names[0])).st_uid ==
         pwd.getpwnam(fetch_user).pw_uid, "the fetched message belongs to %s" % fetch_user)
m = [x for x in messages(box) if "Subject: test" in x]
t.ok(bool(m) and "From: src@src.test" in m[0] and m[0].rstrip().endswith("Message"),
     "the message is whole")
p = subprocess.run(["msmtp", "-C", msmtprc, "-f", "src@src.test", "dst@dst.test",
                    "other@elsewhere.test"],
                   input="Subject: second\n\nsecond\n", capture_output=True,
                   text=True, timeout=60)
t.ok(p.returncode != 0 and "elsewhere.test" in (p.stdout + p.stderr),
     "LMTP refuses a recipient of another domain")
p = subprocess.run(["msmtp", "-C", msmtprc, "-f", "src@src.test", "dst@dst.test"],
                   input="Subject: second\n\nsecond\n", capture_output=True,
                   text=True, timeout=60)
t.ok(wait_for(lambda: count(box, "Subject: second") == 1, 15),
     "the daemon fetches the next message on its next poll")
t.eq(count(box, "Subject: test"), 1, "the first one is not fetched again (keep, state)")

# the cron form: the daemon stopped, one poll per run
ctl(conf, "stop", "fetch", env=env)
t.ok(wait_for(lambda: "STOPPED" in ctl(conf, "status", "fetch", env=env), 10),
     "supervisorctl stop fetch")
subprocess.run(["msmtp", "-C", msmtprc, "-f", "src@src.test", "dst@dst.test"],
               input="Subject: third\n\nthird\n", capture_output=True, text=True,
               timeout=60)
wait_for(lambda: count(server_box, "Subject: third") == 1, 10)
cron = [os.path.join(BIN, "fetch"), "-q", "-c", os.path.join(ex, "fetch.conf")]
if ROOT:
    pw = pwd.getpwnam(fetch_user)
    cron = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
            "--clear-groups"] + cron
cenv = dict(env, HOME=d)
p = subprocess.run(cron, env=cenv, capture_output=True, text=True, timeout=60)
t.ok(p.returncode == 0 and count(box, "Subject: third") == 1,
     "cron form: one run as %s fetches the new message (rc %d %s)"
     % (fetch_user or "this user", p.returncode, p.stderr.strip()[-100:]))
p = subprocess.run(cron, env=cenv, capture_output=True, text=True, timeout=60)
t.ok(p.returncode == 0 and len(messages(box)) == 3,
     "a second run fetches nothing: 3 messages, each once")

# lda in a pipeline, putmail's job: cat test1.txt | lda -M /MAILDIR/Maildir
lda = [os.path.join(BIN, "lda"), "-M", box]
if ROOT:
    lda = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
           "--clear-groups"] + lda
with open(os.path.join(ex, "test1.txt"), "rb") as f:
    p = subprocess.run(lda, stdin=f, capture_output=True, timeout=30)
t.ok(p.returncode == 0 and len(messages(box)) == 4,
     "cat test1.txt | lda -M /MAILDIR/Maildir (putmail --no-config)")

t.eq(sv.stop(), 0, "supervisord stops cleanly")
