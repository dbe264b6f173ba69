"""imapd and Dovecot side by side on one Maildir (see run).

For each folder size: LOGIN+SELECT cold (first open, no index/uidlist yet)
and warm, UID FETCH 1:* (FLAGS RFC822.SIZE), three header fields of every
message, full download of 1,000 messages, SEARCH (header and body),
memory per logged-in connection (PSS of every server process, 20 idle
connections with the folder selected), and 50 clients at once each
connecting, logging in, fetching 100 headers and logging out. Prints a
table with medians and ratios (Dovecot / imapd: above 1 means imapd is
faster or smaller)."""
import multiprocessing, os, re, shutil, signal, socket, statistics, subprocess
import sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BIN = os.environ.get("COURRIEL_BIN", os.path.join(TOP, "build", "bin"))
SIZES = [int(x) for x in os.environ.get("BENCH_SIZES", "10000,100000").split(",")]
UID = 5001
REPS = int(os.environ.get("BENCH_REPS", "5"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, limit=20):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


class Client:
    """A minimal IMAP client on a raw socket (no imaplib overhead)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), 60)
        self.f = self.s.makefile("rb", buffering=1 << 16)
        self.n = 0
        self.f.readline()

    def cmd(self, text):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        total = 0
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(text)
            total += len(line)
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                k = int(m.group(1))
                self.f.read(k)
                total += k
                continue
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError("%s: %r" % (text, line))
                return total

    def close(self):
        try:
            self.cmd("LOGOUT")
        except Exception:
            pass
        self.s.close()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_maildir(path, n):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    base = 1700000000
    for i in range(n):
        body = ("Return-Path: <user%d@example.org>\n"
                "Received: from mx.example.org by mail.example.net; Tue, 1 Jul 2025 10:00:00 +0000\n"
                "From: User %d <user%d@example.org>\nTo: bench@example.net\n"
                "Subject: message number %d about topic %d\n"
                "Date: Tue, 1 Jul 2025 10:%02d:%02d +0000\n"
                "Message-ID: <%d@example.org>\nMIME-Version: 1.0\n"
                "Content-Type: text/plain; charset=utf-8\n\n"
                % (i % 97, i % 97, i % 97, i, i % 13, i % 60, i % 60, i))
        body += ("Line %d of the message text, some words to search in.\n" % i) * (5 + i % 40)
        if i % 1000 == 7:
            body += "a rare needle word\n"
        data = body.encode()
        name = "%d.M%dP%d.bench,S=%d,W=%d:2,%s" % (base + i, i, i % 1000, len(data),
                                                 len(data) + data.count(b"\n"),
                                                 "S" if i % 3 else "")
        with open(os.path.join(path, "cur", name), "wb") as f:
            f.write(data)
    subprocess.run(["chown", "-R", "%d:%d" % (UID, UID), os.path.dirname(path)],
                   check=True)


def descendants(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True,
                         text=True).stdout.split("\n")
    kids = {}
    for line in out:
        if line.strip():
            p, pp = map(int, line.split())
            kids.setdefault(pp, []).append(p)
    res, todo = [pid], [pid]
    while todo:
        x = todo.pop()
        for k in kids.get(x, []):
            res.append(k)
            todo.append(k)
    return res


def pss_kb(pids):
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name, argv, port, logpath):
        self.name, self.port = name, port
        self.log = open(logpath, "ab")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=self.log,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(port):
            raise RuntimeError("%s did not start (see %s)" % (name, logpath))
        time.sleep(0.5)

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)


def start_imapd(d, port):
    conf = os.path.join(d, "imapd.conf")
    with open(conf, "w") as f:
        f.write("listen = 127.0.0.1:%d\nuser = nobody\npassword = pw\n"
                "plaintext_auth = yes\nauth_failure_delay = 0\nspecial_use = no\n"
                "max_per_address = 1000\nmax_connections = 2000\nprefork = 4\n"
                "[users]\nuserbase = { bench = \"%d:%d:%s/home/bench\" }\n"
                % (port, UID, UID, d))
    return Server("imapd", [os.path.join(BIN, "imapd"), "-F", "-c", conf], port,
                  os.path.join(d, "imapd.log"))


def start_dovecot(d, port):
    conf = os.path.join(d, "dovecot.conf")
    for sub in ("run", "state"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    with open(conf, "w") as f:
        f.write("""base_dir = %(d)s/run
state_dir = %(d)s/state
instance_name = bench%(port)d
log_path = %(d)s/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
mail_max_userip_connections = 2000
first_valid_uid = 1000
passdb {
  driver = static
  args = password=pw
}
userdb {
  driver = static
  args = uid=%(uid)d gid=%(uid)d home=%(d)s/home/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %(port)d
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = 2
  client_limit = 1000
}
service imap {
  service_count = 100
  process_min_avail = 4
  process_limit = 2000
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
default_process_limit = 2000
default_client_limit = 4000
""" % {"d": d, "port": port, "uid": UID})
    return Server("dovecot", ["dovecot", "-F", "-c", conf], port,
                  os.path.join(d, "dovecot.stderr"))


def login_select(port, box="INBOX"):
    c = Client(port)
    c.cmd("LOGIN bench pw")
    c.cmd("SELECT " + box)
    return c


def storm_worker(args):
    port, until, n = args
    done = 0
    while time.time() < until:
        c = Client(port)
        c.cmd("LOGIN bench pw")
        c.cmd("SELECT INBOX")
        c.cmd("FETCH 1:%d (BODY.PEEK[HEADER.FIELDS (From Subject Date)])" % n)
        c.cmd("LOGOUT")
        c.s.close()
        done += 1
    return done


def measure_all(servers, n):
    """Both servers run at once on the same Maildir; each measurement
    alternates between them so that the load of the machine weighs on
    both alike. Returns {name: {benchmark: value}}."""
    res = {srv.name: {} for srv in servers}

    def each(key, fn, reps, agg=statistics.median):
        vals = {srv.name: [] for srv in servers}
        for _ in range(reps):
            for srv in servers:
                vals[srv.name].append(fn(srv))
        for srv in servers:
            res[srv.name][key] = agg(vals[srv.name])

    def ls(srv):
        def f():
            x = login_select(srv.port)
            x.close()
        return timed(f)
    each("LOGIN+SELECT warm", ls, REPS * 2)
    conns = {srv.name: login_select(srv.port) for srv in servers}

    def cmd(text):
        return lambda srv: timed(lambda: conns[srv.name].cmd(text))
    each("UID FETCH 1:* (FLAGS RFC822.SIZE)", cmd("UID FETCH 1:* (FLAGS RFC822.SIZE)"), REPS)
    hdr = "FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date)])"
    each("3 headers of all, first", cmd(hdr), 1)
    each("3 headers of all, again", cmd(hdr), REPS)
    each("full download of 1,000", cmd("FETCH 1:1000 (BODY.PEEK[])"), REPS)
    each("SEARCH FROM (header)", cmd('SEARCH FROM "user42@"'), REPS)
    each("SEARCH BODY (text)", cmd('SEARCH BODY "needle"'), max(1, REPS // 2))
    for c in conns.values():
        c.close()
    # Memory: 20 logged-in connections with the folder selected.
    for srv in servers:
        time.sleep(0.3)
        base = pss_kb(descendants(srv.p.pid))
        cs = [login_select(srv.port) for _ in range(20)]
        time.sleep(0.5)
        used = pss_kb(descendants(srv.p.pid)) - base
        for x in cs:
            x.close()
        res[srv.name]["memory per connection (MB)"] = used / 20 / 1024
    # 50 clients at once, one server after the other.
    for srv in servers:
        dur = 5.0
        until = time.time() + dur
        with multiprocessing.Pool(50) as pool:
            counts = pool.map(storm_worker, [(srv.port, until, min(100, n))] * 50)
        res[srv.name]["50 clients: sessions/s"] = sum(counts) / dur
    return res


def cold(srv):
    c = Client(srv.port)
    c.cmd("LOGIN bench pw")
    t = timed(lambda: c.cmd("SELECT INBOX"))
    c.close()
    return t


def main():
    if os.geteuid() != 0:
        sys.exit("run as root: Dovecot and imapd drop to the mail user")
    rows = []
    for n in SIZES:
        d = tempfile.mkdtemp(prefix="imap-bench.", dir="/var/tmp")
        os.chmod(d, 0o755)
        try:
            print("# %d messages: making the Maildir..." % n, file=sys.stderr)
            make_maildir(os.path.join(d, "home", "bench", "Maildir"), n)
            # Dovecot first on the bare Maildir (it writes dovecot-uidlist),
            # then imapd, which reads that uidlist but has no index yet.
            dov = start_dovecot(d, free_port())
            servers = [dov]
            try:
                print("# %d messages: cold" % n, file=sys.stderr)
                cold_d = cold(dov)
                imd = start_imapd(d, free_port())
                servers.append(imd)
                cold_i = cold(imd)
                print("# %d messages: measuring" % n, file=sys.stderr)
                results = measure_all([imd, dov], n)
                results["imapd"]["LOGIN+SELECT cold"] = cold_i
                results["dovecot"]["LOGIN+SELECT cold"] = cold_d
            finally:
                for srv in servers:
                    srv.stop()
            order = ["LOGIN+SELECT cold"] + [k for k in results["imapd"]
                                             if k != "LOGIN+SELECT cold"]
            for k in order:
                a, b = results["imapd"][k], results["dovecot"][k]
                if "sessions/s" in k:
                    ratio = a / b if b else 0
                    fa, fb = "%.0f" % a, "%.0f" % b
                elif "MB" in k:
                    ratio = b / a if a else 0
                    fa, fb = "%.2f" % a, "%.2f" % b
                else:
                    ratio = b / a if a else 0
                    fa, fb = "%.1f ms" % (a * 1000), "%.1f ms" % (b * 1000)
                rows.append(("%dk: %s" % (n // 1000, k), fa, fb, "%.2f" % ratio))
        finally:
            shutil.rmtree(d, True)
    w = max(len(r[0]) for r in rows)
    print("%-*s  %12s  %12s  %s" % (w, "benchmark", "imapd", "dovecot", "ratio"))
    for r in rows:
        print("%-*s  %12s  %12s  %s" % (w, r[0], r[1], r[2], r[3]))
    print("(ratio: how many times imapd is faster, or smaller; Dovecot %s with "
          "high-performance settings)" % subprocess.run(
              ["dovecot", "--version"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
