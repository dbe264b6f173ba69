"""_dovecot.py -- a private Dovecot (IMAP, IMAPS, POP3, POP3S) on loopback
for the fetch tests and benchmark, plus helpers to put messages in its
mailboxes and look at the Maildir fetch fills.

Dovecot runs as root from a temp dir (see shared notes: base_dir,
state_dir, instance_name, log_path set; every listener on a free port);
the mail belongs to nobody (65534), and so does what fetch writes.
"""
import atexit, os, re, shutil, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from common import BIN, TOP, T, Daemon, free_port, mkcerts, scratch, wait_port  # noqa

NOBODY = 65534
DOVECOT = "/usr/sbin/dovecot"


def chown_tree(path, uid=NOBODY, gid=NOBODY):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for f in files:
            os.chown(os.path.join(root, f), uid, gid)


class Dovecot:
    def __init__(self, d, users=(("bob", "secret"),)):
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.certs = os.path.join(d, "certs")
        mkcerts(self.certs)
        self.ca = os.path.join(self.certs, "ca.crt")
        dh = os.path.join(d, "dh.pem")
        subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH",
                        "-pkeyopt", "group:ffdhe2048", "-out", dh],
                       check=True, capture_output=True)
        self.mail = os.path.join(d, "mail")
        os.makedirs(self.mail, exist_ok=True)
        os.chown(self.mail, NOBODY, NOBODY)
        with open(os.path.join(d, "passwd"), "w") as f:
            for u, p in users:
                f.write("%s:{PLAIN}%s::::::\n" % (u, p))
        self.port = {k: free_port() for k in ("imap", "imaps", "pop3", "pop3s")}
        self.conf = os.path.join(d, "dovecot.conf")
        self.log = os.path.join(d, "dovecot.log")
        for sub in ("run", "state"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(CONF % dict(d=d, certs=self.certs, dh=dh, log=self.log,
                                inst="fetchtest%d" % os.getpid(), **self.port))
        self.proc = None
        self.start()

    def start(self):
        self.proc = Daemon([DOVECOT, "-F", "-c", self.conf],
                           log=os.path.join(self.d, "dovecot.out"))
        # registered after T: runs before T's exit, which may os._exit
        atexit.register(self.stop)
        for p in self.port.values():
            if not wait_port(p, 15):
                raise RuntimeError("dovecot did not start:\n" + open(self.log).read())

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None

    def maildir(self, user="bob", folder=None):
        m = os.path.join(self.mail, user, "Maildir")
        if folder:
            m = os.path.join(m, "." + folder)
        return m

    def add(self, user="bob", n=1, size=4096, folder=None, tag="m", start=0):
        """Writes n messages straight into the user's Maildir new/ (what
        an MDA would do); returns their Message-IDs."""
        m = self.maildir(user, folder)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(m, sub), exist_ok=True)
        if folder:
            open(os.path.join(m, "maildirfolder"), "w").close()
        ids = []
        t = int(time.time())
        for i in range(start, start + n):
            mid = "<%s.%d.%d@test>" % (tag, i, os.getpid())
            head = ("From: alice@example.org\nTo: %s@example.org\n"
                    "Subject: test %s %d\nMessage-ID: %s\n"
                    "Date: Sun, 22 Nov 2026 01:00:00 +0000\n\n" % (user, tag, i, mid))
            body_line = "The quick brown fox jumps over the lazy dog %d.\n" % i
            body = ""
            while len(head) + len(body) + len(body_line) <= size:
                body += body_line
            name = "%d.M%dP%d.%s%d.test" % (t, i, os.getpid(), tag, i)
            with open(os.path.join(m, "new", name), "w") as f:
                f.write(head + body)
            ids.append(mid)
        chown_tree(os.path.join(self.mail, user))
        return ids

    def reset_uidvalidity(self, user="bob", newval=None):
        """Makes Dovecot forget its UIDs: a new UIDVALIDITY, every
        message renumbered (what a restored backup does)."""
        m = self.maildir(user)
        ul = os.path.join(m, "dovecot-uidlist")
        text = open(ul).read()
        first, rest = text.split("\n", 1)
        old = int(re.search(r" V(\d+)", first).group(1))
        newval = newval or old + 1000
        lines = []
        # renumber: UIDs start over from 1, as after a rebuild
        entries = [l for l in rest.split("\n") if l.strip()]
        for i, l in enumerate(entries, 1):
            lines.append(re.sub(r"^\d+", str(i), l))
        first = re.sub(r" V\d+", " V%d" % newval, first)
        first = re.sub(r" N\d+", " N%d" % (len(entries) + 1), first)
        with open(ul, "w") as f:
            f.write(first + "\n" + "\n".join(lines) + "\n")
        for f in os.listdir(m):
            if f.startswith("dovecot.index") or f == "dovecot.list.index.log":
                os.unlink(os.path.join(m, f))
        chown_tree(m)
        return old, newval

    def count_server(self, user="bob"):
        m = self.maildir(user)
        return sum(len(os.listdir(os.path.join(m, s))) for s in ("new", "cur"))


def message_ids(maildir):
    """Message-IDs of the messages in a Maildir (new and cur), as a list
    (duplicates kept, so a test can see them)."""
    ids = []
    for sub in ("new", "cur"):
        p = os.path.join(maildir, sub)
        if not os.path.isdir(p):
            continue
        for name in os.listdir(p):
            with open(os.path.join(p, name), "rb") as f:
                for line in f:
                    if line.lower().startswith(b"message-id:"):
                        ids.append(line.split(b":", 1)[1].strip().decode())
                        break
                    if line in (b"\n", b"\r\n"):
                        break
    return ids


def fetch_env():
    env = dict(os.environ)
    env.pop("FETCH_PASSWORD", None)
    return env


def run_fetch(args, env=None, timeout=120, as_nobody=True):
    """Runs build/bin/fetch; as root it is given -u 65534:65534."""
    argv = [os.path.join(BIN, "fetch")]
    if as_nobody and os.geteuid() == 0:
        argv += ["-u", "%d:%d" % (NOBODY, NOBODY)]
    argv += args
    return subprocess.run(argv, env=env or fetch_env(), capture_output=True,
                          text=True, timeout=timeout)


def nobody_dir(path):
    os.makedirs(path, exist_ok=True)
    os.chown(path, NOBODY, NOBODY)
    return path


CONF = """
base_dir = %(d)s/run
state_dir = %(d)s/state
instance_name = %(inst)s
log_path = %(log)s
info_log_path = %(log)s
listen = 127.0.0.1
protocols = imap pop3
ssl = yes
ssl_cert = <%(certs)s/server.crt
ssl_key = <%(certs)s/server.key
ssl_dh = <%(dh)s
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%n %(d)s/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=%(d)s/mail/%%n
}
mail_location = maildir:%(d)s/mail/%%n/Maildir
mail_max_userip_connections = 100
pop3_uidl_format = %%08Xu%%08Xv
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(imap)d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %(imaps)d
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %(pop3)d
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = %(pop3s)d
    ssl = yes
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
"""
