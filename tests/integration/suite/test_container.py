"""etc/examples/test-container (seed 000): launcher.sh under a real
supervisord, outside a container, with the paths moved into a temp dir
through the environment. Credentials come from the environment only;
mutt sends with seed 000's muttrc (STARTTLS + AUTH PLAIN with an
authorization identity); imaplib reads with the static IMAP password;
unauthenticated mail is refused; kill -9 of imapd is survived."""
import imaplib, os, signal, ssl, subprocess
from _suite import (T, scratch, free_port, TOP, BIN, ROOT, wait_for, write,
                    ctl, pid_of, alive, kill9, messages, count, swaks, Supervised)

t = T()
ex = os.path.join(TOP, "etc", "examples", "test-container")
d = scratch("suite-container.")
P = {k: free_port() for k in ("SMTP_PORT", "IMAP_PORT", "IMAPS_PORT")}
vmail = 5002 if ROOT else os.getuid()
vgid = 5002 if ROOT else os.getgid()
env = dict(os.environ, SMTP_USER="smtpUsername", SMTP_PASSWD="smtp Password",
           IMAP_USER1="imapuser1", IMAP_USER2="imapuser2",
           IMAP_PASSWD="imap Password", KEYS=d + "/KEYS", MAIL_ROOT=d + "/mail",
           SPOOL=d + "/spool", LOG_DIR=d + "/log", CONF_DIR=ex,
           COURRIEL_SBIN=BIN, COURRIEL_BIN=BIN, VMAIL_UID=str(vmail),
           VMAIL_GID=str(vgid), LISTEN_ADDRESS="127.0.0.1", HOSTNAME="mail.test.test",
           **{k: str(v) for k, v in P.items()})
conf = os.path.join(ex, "supervisord.conf")
sv = Supervised(["sh", os.path.join(ex, "launcher.sh")], env, list(P.values()),
                conf, os.path.join(d, "launcher.out"))
if not t.ok(sv.ok, "launcher.sh: supervisord runs smtpd-lite and imapd"):
    print(sv.log())
    for f in ("smtpd.log", "imapd.log"):
        p = os.path.join(d, "log", f)
        if os.path.exists(p):
            print(open(p).read())
    raise SystemExit(1)
cert = os.path.join(d, "KEYS", "server.crt")
ctx = ssl.create_default_context(cafile=cert)
box = lambda u: os.path.join(d, "mail", u, "Maildir")  # noqa: E731
t.ok(os.path.isdir(box("imapuser2")), "Maildirs made for both IMAP users")
with open(os.path.join(d, "KEYS", "smtp_passwd")) as f:
    line = f.read()
t.ok(line.startswith("smtpUsername\t$") and "smtp Password" not in line,
     "smtp_passwd written from SMTP_USER/SMTP_PASSWD, hashed")

# mutt with seed 000's muttrc (only the ports and /KEYS moved)
with open(os.path.join(ex, "muttrc_user1")) as f:
    rc = f.read()
rc = rc.replace("localhost:25\"", "localhost:%d\"" % P["SMTP_PORT"])
rc = rc.replace("localhost:993/", "localhost:%d/" % P["IMAPS_PORT"])
rc = rc.replace("/KEYS/", d + "/KEYS/")
muttrc = write(os.path.join(d, "muttrc_user1"), rc, 0o600)
home = os.path.join(d, "home")
os.makedirs(home)
p = subprocess.run(["mutt", "-n", "-F", muttrc, "-s", "from-mutt",
                    "imapuser2@test.test"], input="sent by mutt\n",
                   env=dict(env, HOME=home), capture_output=True, text=True,
                   timeout=60)
t.ok(p.returncode == 0, "mutt sends over STARTTLS + AUTH PLAIN (rc %d %s)"
     % (p.returncode, (p.stdout + p.stderr).strip()[-120:]))
t.ok(wait_for(lambda: count(box("imapuser2"), "Subject: from-mutt") == 1, 10),
     "delivered to imapuser2 through lda -M, as vmail")
if ROOT:
    for m in os.listdir(os.path.join(box("imapuser2"), "new")):
        st = os.stat(os.path.join(box("imapuser2"), "new", m))
        t.ok(st.st_uid == 5002, "the message belongs to the vmail uid, not root")
        break

rc, o = swaks(P["SMTP_PORT"], cert, "-tls", "-au", "smtpUsername", "-ap",
              "smtp Password", "--to", "imapuser1@other.test",
              "--header", "Subject: any-domain")
t.ok(rc == 0 and wait_for(lambda: count(box("imapuser1"), "Subject: any-domain"), 10),
     "match auth from any for any: imapuser1@other.test reaches imapuser1")
rc, o = swaks(P["SMTP_PORT"], cert, "-tls", "--to", "imapuser1@test.test")
t.ok(rc != 0 and "530" in o, "without AUTH: refused (530)")
rc, o = swaks(P["SMTP_PORT"], cert, "-tls", "-au", "smtpUsername", "-ap",
              "smtp Password", "--to", "stranger@test.test")
t.ok(rc != 0 and "550" in o, "a recipient that is not an IMAP user: 550")


def _safe(f):
    try:
        return f()
    except Exception:
        return False


def imap_count(user, pw="imap Password"):
    m = imaplib.IMAP4_SSL("127.0.0.1", P["IMAPS_PORT"], ssl_context=ctx)
    m.login(user, pw)
    typ, data = m.select("INBOX", readonly=True)
    m.logout()
    return int(data[0])


t.eq(imap_count("imapuser2"), 1, "imaplib IMAPS: imapuser2 logs in with IMAP_PASSWD")
t.eq(imap_count("imapuser1"), 1, "imapuser1 too")
try:
    imap_count("imapuser1", "wrong")
    t.ok(False, "a wrong IMAP password is refused")
except imaplib.IMAP4.error:
    t.ok(True, "a wrong IMAP password is refused")
try:
    imap_count("smtpUsername", "imap Password")
    t.ok(False, "a user outside password_users is refused")
except imaplib.IMAP4.error:
    t.ok(True, "a user outside password_users is refused")

old = pid_of(conf, "imapd", env)
t.ok(kill9(old), "supervisorctl gives imapd's pid")
new = wait_for(lambda: pid_of(conf, "imapd", env) not in (0, old) and
               pid_of(conf, "imapd", env), 15)
t.ok(new and not alive(old), "kill -9 imapd: supervisord starts it again")
t.ok(wait_for(lambda: _safe(lambda: imap_count("imapuser1") == 1), 10),
     "and it serves the mail again")

t.eq(sv.stop(), 0, "supervisord stops cleanly")
