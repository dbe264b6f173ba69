"""Helpers for the smtpd-lite tests: configs, daemons, Maildirs, lda users."""
import os, sys, time, subprocess, socket, glob, pwd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import T, scratch, free_port, wait_port, Daemon, mkcerts, BIN, TOP  # noqa

SMTPD = os.path.join(BIN, "smtpd-lite")
LDA = os.path.join(BIN, "lda")
ROOT = os.geteuid() == 0
# Mail is never written as root: test mailboxes belong to 5001:5001.
MAIL_UID = 5001 if ROOT else os.getuid()
MAIL_GID = 5001 if ROOT else os.getgid()
SESSION_USER = "nobody" if ROOT else pwd.getpwuid(os.getuid()).pw_name


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def global_conf(d, extra=""):
    return ("hostname = mx.test\nuser = %s\nqueue = %s/queue\nlda = %s\n"
            "retry_min = 1\nretry_max = 2\ntimeout = 20\n%s\n"
            % (SESSION_USER, d, LDA, extra))


def users(d, names):
    """Maildirs for names under d/mail, an lda config with a userbase."""
    lines = []
    for n in names:
        home = os.path.join(d, "mail", n)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(home, "Maildir", sub), exist_ok=True)
        lines.append("%s %d:%d:%s" % (n, MAIL_UID, MAIL_GID, home))
        if ROOT:
            for root, dirs, files in os.walk(home):
                os.chown(root, MAIL_UID, MAIL_GID)
                os.chmod(root, 0o700)
    os.makedirs(os.path.join(d, "mail"), exist_ok=True)
    os.chmod(os.path.join(d, "mail"), 0o755)
    write(os.path.join(d, "userbase"), "\n".join(lines) + "\n")
    return write(os.path.join(d, "lda.conf"),
                 "[users]\nuserbase = file:%s/userbase\n" % d)


def maildir(d, user):
    """Contents of the messages in user's Maildir new/ (and cur/)."""
    out = []
    for sub in ("new", "cur"):
        for p in sorted(glob.glob(os.path.join(d, "mail", user, "Maildir", sub, "*"))):
            with open(p, "rb") as f:
                out.append(f.read().decode("utf-8", "replace"))
    return out


def wait_for(pred, limit=15.0):
    end = time.time() + limit
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def start(d, conf_text, ports, name="smtpd.conf"):
    conf = write(os.path.join(d, name), conf_text)
    return Daemon([SMTPD, "-F", "-v", "-c", conf], port=ports[0],
                  log=os.path.join(d, "smtpd.log"))


def queue_files(d):
    return sorted(glob.glob(os.path.join(d, "queue", "msg", "*")))


def passwd_table(d, user, password):
    h = subprocess.run([os.path.join(BIN, "mailpasswd")], input=password + "\n",
                       capture_output=True, text=True)
    hsh = h.stdout.strip()
    if h.returncode != 0 or not hsh:
        import crypt
        hsh = crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))
    return write(os.path.join(d, "smtp_passwd"), "%s %s\n" % (user, hsh), 0o600)


def inetd(conf, data, timeout=20):
    """One session on stdin/stdout: returns (stdout text, stderr text)."""
    p = subprocess.run([SMTPD, "-i", "-c", conf], input=data,
                       capture_output=True, timeout=timeout)
    return p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
