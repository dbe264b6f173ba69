"""Helpers for the crash tests: Maildirs owned by a mail uid, message
tokens, and checks that a Maildir holds only whole messages."""
import os, re, sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import T, scratch, free_port, wait_port, Daemon, mkcerts, BIN, TOP  # noqa

ROOT = os.geteuid() == 0
UID = 5001 if ROOT else os.getuid()
GID = 5001 if ROOT else os.getgid()


def make_home(d, user, uid=UID, gid=GID):
    home = os.path.join(d, "home", user)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(home, "Maildir", sub), exist_ok=True)
    os.chmod(os.path.join(d, "home"), 0o755)
    for r, ds, fs in os.walk(home):
        if ROOT:
            os.chown(r, uid, gid)
        os.chmod(r, 0o700)
    return home


def message(token, size=2000):
    """A message whose last line names it: a cut one is visible."""
    line = ("filler %s " % token) * 3 + "\n"
    body = line * (size // len(line) + 1)
    return ("Subject: %s\nMessage-ID: <%s@crash.test>\n\n%s\nEND %s\n" %
            (token, token, body, token)).encode()


def scan(maildir):
    """{token: count} of whole messages in new/ and cur/, and the names of
    files there that are not whole messages."""
    counts, partial = {}, []
    for sub in ("new", "cur"):
        p = os.path.join(maildir, sub)
        for n in os.listdir(p):
            with open(os.path.join(p, n), "rb") as f:
                data = f.read().replace(b"\r\n", b"\n")
            m = re.match(rb"Subject: (\S+)\n", data) or \
                re.search(rb"\nSubject: (\S+)\n", data)
            tok = m.group(1).decode() if m else None
            if tok is None or not data.endswith(b"\nEND %s\n" % tok.encode()):
                partial.append(sub + "/" + n)
                continue
            counts[tok] = counts.get(tok, 0) + 1
    return counts, partial
