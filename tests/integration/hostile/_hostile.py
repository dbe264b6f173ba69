"""Helpers for the hostile-client tests: raw sockets with deadlines, the
processes of a daemon read from /proc, a snapshot of a directory tree."""
import os, socket, sys, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import T, scratch, free_port, wait_port, Daemon, mkcerts, BIN, TOP  # noqa

ROOT = os.geteuid() == 0


class Conn:
    """A raw client: every read has a deadline, nothing blocks forever."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.s = socket.create_connection((host, port), timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.s.sendall(data)

    def dribble(self, data, pause=0.0):
        """One byte per send (one TCP segment each with TCP_NODELAY)."""
        for i in range(len(data)):
            self.s.sendall(data[i:i + 1])
            if pause:
                time.sleep(pause)

    def _fill(self, deadline):
        left = deadline - time.time()
        if left <= 0 or self.eof:
            return False
        self.s.settimeout(left)
        try:
            b = self.s.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            self.eof = True
            return False
        if not b:
            self.eof = True
            return False
        self.buf += b
        return True

    def until(self, marker, limit=10.0):
        """Reads until marker (bytes) is in what was read; returns all read
        so far (consumed), or what was read when the deadline passed."""
        end = time.time() + limit
        while marker not in self.buf:
            if not self._fill(end):
                break
        out, self.buf = self.buf, b""
        return out

    def lines(self, n, limit=10.0):
        """n CRLF-terminated lines (fewer at the deadline or EOF)."""
        end = time.time() + limit
        while self.buf.count(b"\r\n") < n:
            if not self._fill(end):
                break
        parts = self.buf.split(b"\r\n")
        got = parts[:min(n, len(parts) - 1)]
        self.buf = b"\r\n".join(parts[len(got):])
        return got

    def closed(self, limit=10.0):
        """True when the peer closes within limit (what it sent is dropped)."""
        end = time.time() + limit
        while not self.eof and time.time() < end:
            self._fill(end)
            self.buf = b""
        return self.eof

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def status(pid):
    """/proc/PID/status as a dict (None when the process is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
    except OSError:
        return None


def ids(pid):
    """(real, effective, saved, fs) uids and gids, and the groups list."""
    st = status(pid)
    if st is None:
        return None
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            sorted(int(x) for x in st["Groups"].split()))


def rss_kb(pid):
    st = status(pid)
    return int(st["VmRSS"].split()[0]) if st and "VmRSS" in st else 0


def group_pids(pgid):
    """Every process of a process group (a Daemon runs in its own)."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % e) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            out.append((int(e), int(fields[1])))   # (pid, ppid)
    return out


def children(pgid, ppid):
    return [p for p, pp in group_pids(pgid) if pp == ppid]


def wait_for(pred, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def tree(top, skip=()):
    """Every path under top (relative), except under the skipped ones."""
    out = set()
    for root, dirs, files in os.walk(top):
        rel = os.path.relpath(root, top)
        if any(rel == s or rel.startswith(s + "/") for s in skip):
            continue
        for n in dirs + files:
            out.add(os.path.normpath(os.path.join(rel, n)))
    return out
