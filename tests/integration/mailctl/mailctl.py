"""mailctl against a running smtpd-lite: show queue lists a message a
failing relay keeps (with its last error), schedule retries it now,
remove drops it, pause/resume hold and release deliveries, show stats
moves, log/trace answer; the control socket is the owner's only.
sendmail (a symlink to mailctl): -t from a shell pipeline reaches a
Maildir with Bcc removed, -bs speaks SMTP on stdin/stdout, -bp and mailq
show the queue."""
import os, pwd, smtplib, subprocess, sys, re
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "smtpd"))
from _smtpd import (T, scratch, free_port, BIN, ROOT, MAIL_UID, MAIL_GID,  # noqa
                    global_conf, users, maildir, wait_for, start, queue_files, write)

t = T()
MAILCTL = os.path.join(BIN, "mailctl")
d = scratch()
users(d, ["bob", "carl"])
port, dead = free_port(), free_port()
conf_text = global_conf(d, "retry_min = 60\nretry_max = 60\n") + """
[listener in]
address = 127.0.0.1
port = %(port)d

[rule md]
rcpt_domain = local.test
action = maildir
maildir = %(d)s/mail/%%{rcpt.user:lowercase}/Maildir
user = %(uid)d:%(gid)d

[rule dead]
rcpt_domain = dead.example
action = relay
relay = smtp://127.0.0.1:%(dead)d
""" % dict(port=port, d=d, uid=MAIL_UID, gid=MAIL_GID, dead=dead)
srv = start(d, conf_text, [port])
conf = os.path.join(d, "smtpd.conf")
bindir = os.path.join(d, "bin")
os.makedirs(bindir)
os.chmod(bindir, 0o755)
for name in ("sendmail", "mailq"):
    os.symlink(MAILCTL, os.path.join(bindir, name))
env = dict(os.environ, SMTPD_LITE_CONF=conf, PATH=bindir + ":" + os.environ["PATH"])


def ctl(*args, user=None):
    pre = None
    if user is not None:
        pre = lambda: (os.setgid(user), os.setuid(user))  # noqa
    return subprocess.run([MAILCTL, "-c", conf] + list(args), capture_output=True,
                          text=True, timeout=20, preexec_fn=pre)


def stats():
    out = ctl("show", "stats").stdout
    return dict(l.split("=", 1) for l in out.split())


def send(rcpt, subject):
    s = smtplib.SMTP("127.0.0.1", port, timeout=10)
    s.sendmail("alice@local.test", [rcpt], "Subject: %s\r\n\r\nhi\r\n" % subject)
    s.quit()


t.ok(wait_for(lambda: os.path.exists(os.path.join(d, "queue", "control.sock"))),
     "the control socket exists")
st = os.stat(os.path.join(d, "queue", "control.sock"))
t.eq(st.st_mode & 0o777, 0o600, "control socket mode")
send("carol@dead.example", "stuck")
t.ok(wait_for(lambda: "last_error=" in ctl("show", "queue").stdout),
     "the failing relay's message shows with its last error")
q = ctl("show", "queue").stdout
m = re.match(r"([0-9a-f]{24}) age=\S+ from=<alice@local.test> recipients=1", q)
t.ok(m is not None and "to=<carol@dead.example>" in q and "attempts=1" in q
     and "next=" in q, "show queue: id, sender, recipient, attempts, next try: " + q)
qid = m.group(1) if m else "0" * 24
s1 = stats()
t.ok(s1.get("accepted") == "1" and s1.get("in_queue") == "1" and
     int(s1.get("sessions", 0)) >= 1 and "uptime" in s1, "show stats: %r" % s1)
r = ctl("schedule", qid)
t.ok(r.returncode == 0 and "scheduled 1" in r.stdout, "schedule ID: " + r.stdout)
t.ok(wait_for(lambda: "attempts=2" in ctl("show", "queue").stdout),
     "schedule retried it at once (retry_min is 60 s)")
r = ctl("schedule", "all")
t.ok(r.returncode == 0 and wait_for(lambda: "attempts=3" in ctl("show", "queue").stdout),
     "schedule all retries it too")
r = ctl("schedule", "f" * 24)
t.ok(r.returncode != 0 and "no message" in r.stderr, "schedule of an unknown id fails")

# pause / resume, with a local message held
t.ok("paused" in ctl("pause").stdout and stats().get("paused") == "yes", "pause")
send("bob@local.test", "held")
t.ok(wait_for(lambda: "to=<bob@local.test> state=paused" in ctl("show", "queue").stdout),
     "a new message waits while paused")
mq = subprocess.run(["sh", "-c", "mailq"], env=env, capture_output=True, text=True)
t.ok(mq.returncode == 0 and "to=<bob@local.test>" in mq.stdout, "mailq shows the queue")
bp = subprocess.run(["sh", "-c", "sendmail -bp"], env=env, capture_output=True, text=True)
t.ok(bp.returncode == 0 and qid in bp.stdout, "sendmail -bp shows the queue")
t.ok(not maildir(d, "bob"), "nothing delivered while paused")
t.ok("resumed" in ctl("resume").stdout, "resume")
t.ok(wait_for(lambda: any("Subject: held" in x for x in maildir(d, "bob"))),
     "resumed: the held message is delivered")
t.ok(wait_for(lambda: int(stats().get("delivered", 0)) >= 1), "stats: delivered counted")

r = ctl("remove", qid)
t.ok(r.returncode == 0 and "removed" in r.stdout, "remove ID")
t.ok("queue empty" in ctl("show", "queue").stdout and not queue_files(d),
     "the removed message is gone from the queue and the disk")
t.ok(ctl("remove", qid).returncode != 0, "removing it again fails")

t.ok("log verbose" in ctl("log", "verbose").stdout and
     "log brief" in ctl("log", "brief").stdout, "log verbose|brief")
t.ok("tracing relay" in ctl("trace", "relay").stdout and
     "tracing smtp" in ctl("trace", "smtp").stdout, "trace relay, trace smtp")
r = ctl("trace", "bogus")
t.ok(r.returncode != 0 and "error" in r.stderr, "an unknown subsystem is an error")
r = ctl("frobnicate")
t.ok(r.returncode != 0, "an unknown command is an error")
if ROOT:
    r = ctl("show", "queue", user=65534)
    t.ok(r.returncode != 0 and "ermission denied" in r.stderr,
         "another user cannot use the control socket: " + r.stderr.strip())

# sendmail -t from a shell pipeline
p = subprocess.run(["sh", "-c", "printf 'To: Bob <bob@local.test>\\nBcc: carl@local.test\\n"
                    "Subject: from cron\\n\\nline one\\n.\\nafter a dot\\n' | sendmail -t -i"],
                   env=env, capture_output=True, text=True, timeout=30)
t.ok(p.returncode == 0, "sendmail -t exits 0: " + p.stderr)
got = wait_for(lambda: [x for x in maildir(d, "bob") if "from cron" in x])
t.ok(bool(got) and "after a dot" in got[0] and "\n.\n" in got[0].replace("\r\n", "\n"),
     "sendmail -t -i reached bob's Maildir, a lone dot line kept")
t.ok(bool(got) and "Bcc" not in got[0] and "Message-ID:" in got[0] and "Date:" in got[0]
     and "From:" in got[0], "Bcc removed; From, Date, Message-ID added")
me = pwd.getpwuid(os.getuid()).pw_name
t.ok(bool(got) and ("<%s@mx.test>" % me) in got[0], "the sender defaults to the caller@hostname")
t.ok(wait_for(lambda: any("from cron" in x for x in maildir(d, "carl"))),
     "the Bcc recipient got it too")
p = subprocess.run(["sh", "-c", "printf 'Subject: args\\n\\nx\\n.\\nnot sent\\n' | "
                    "sendmail -oem -odb -f robot@local.test -F 'The Robot' carl@local.test"],
                   env=env, capture_output=True, text=True, timeout=30)
got = wait_for(lambda: [x for x in maildir(d, "carl") if "Subject: args" in x])
t.ok(p.returncode == 0 and bool(got) and "not sent" not in got[0] and
     '"The Robot" <robot@local.test>' in got[0],
     "recipients as arguments, -f/-F, legacy -o ignored, a lone dot ends input")
if ROOT:
    p = subprocess.run(["sh", "-c", "printf 'Subject: from nobody\\n\\nx\\n' | sendmail bob@local.test"],
                       env=env, capture_output=True, text=True, timeout=30,
                       preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    got = wait_for(lambda: [x for x in maildir(d, "bob") if "from nobody" in x])
    t.ok(p.returncode == 0 and bool(got) and "uid=65534" in got[0],
         "any local user can submit; Received: names its uid")

long = "x" * 60000
p = subprocess.run(["sendmail", "-i", "bob@local.test"], env=env, capture_output=True,
                   text=True, timeout=30, input="Subject: long line\n\n%s\nend\n" % long)
got = wait_for(lambda: [x for x in maildir(d, "bob") if "long line" in x])
t.ok(p.returncode == 0 and bool(got) and
     re.search("\n" + long + "\r?\nend", got[0]) is not None, "a 60 KB line stays one line")
p = subprocess.run(["sendmail", "-i", "bob@local.test"], env=env, capture_output=True,
                   text=True, timeout=30, input="Subject: too long\n\n%s\n" % ("y" * 100000))
t.ok(p.returncode == 69 and "too long" in p.stderr,
     "a line over the daemon's limit: exit 69 with its reason: " + p.stderr.strip())

# sendmail -bs
dialog = ("EHLO me\r\nMAIL FROM:<alice@local.test>\r\nRCPT TO:<bob@local.test>\r\n"
          "DATA\r\nSubject: via -bs\r\n\r\nbs body\r\n.\r\nQUIT\r\n")
p = subprocess.run(["sendmail", "-bs"], input=dialog, env=env, capture_output=True,
                   text=True, timeout=30)
codes = re.findall(r"^(\d{3}) ", p.stdout, re.M)
t.ok(p.returncode == 0 and codes[:1] == ["220"] and codes.count("250") >= 4 and
     codes[-1] == "221", "sendmail -bs: an SMTP dialogue on stdin/stdout: %r" % codes)
t.ok(wait_for(lambda: any("via -bs" in x for x in maildir(d, "bob"))), "-bs message delivered")

p = subprocess.run(["sh", "-c", "printf 'Subject: x\\n\\nx\\n' | sendmail -t"], env=env,
                   capture_output=True, text=True, timeout=30)
t.ok(p.returncode != 0 and "no recipients" in p.stderr, "sendmail -t without recipients fails")
bad = write(os.path.join(d, "nodaemon.conf"), "queue = %s/nowhere\n" % d)
p = subprocess.run(["sh", "-c", "printf 'Subject: x\\n\\nx\\n' | sendmail bob@local.test"],
                   env=dict(env, SMTPD_LITE_CONF=bad), capture_output=True, text=True, timeout=30)
t.ok(p.returncode == 75 and "running" in p.stderr,
     "no daemon: sendmail exits 75 (EX_TEMPFAIL) so cron can retry: " + p.stderr.strip())
s2 = stats()
t.ok(int(s2["accepted"]) >= 6 and int(s2["sessions"]) > int(s1["sessions"]),
     "stats moved: %r" % s2)
