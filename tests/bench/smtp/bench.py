"""tests/bench/smtp: smtpd-lite and OpenSMTPD side by side, end to end.

Clients submit 4 KB messages over loopback; the clock stops when every
message is in the Maildirs. The clients are smtpload.c (C, a command at a
time, like Postfix's smtp-source) so that on a 2-core machine they cost
little next to the servers; --python-client uses Python processes. Scenarios:
  reuse: 10 clients, each keeps one connection for all its messages
  new:   50 clients, a new connection per message
smtpd-lite delivers through lda (fsync'd queue before each 250, lda fsyncs
the Maildir); OpenSMTPD with its own maildir delivery and, for the same
work, through lda. OpenSMTPD runs in a private mount namespace (its queue
and control socket paths are compiled in) with a hosts-file resolver.
Prints a table of medians over the runs and the ratios.
"""
import argparse, glob, multiprocessing, os, shutil, signal, socket, statistics
import subprocess, sys, tempfile, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROOT = os.geteuid() == 0
UID, GID = (5001, 5001) if ROOT else (os.getuid(), os.getgid())


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
            time.sleep(0.05)
    return False


BODY = None


def message(i):
    global BODY
    if BODY is None:
        line = "x" * 76 + "\r\n"
        BODY = line * (4096 // len(line))
    return ("From: bench@client.test\r\nTo: user@bench.test\r\n"
            "Subject: bench %d\r\n\r\n%s" % (i, BODY)).encode()


def recv_reply(f):
    while True:
        l = f.readline()
        if not l:
            raise IOError("connection closed")
        if l[3:4] != b"-":
            return l


def smtp_open(port):
    s = socket.create_connection(("127.0.0.1", port), 60)
    f = s.makefile("rb")
    recv_reply(f)
    s.sendall(b"EHLO client.test\r\n")
    recv_reply(f)
    return s, f


def smtp_send(s, f, rcpt, i):
    # command by command: OpenSMTPD answers pipelined commands with 500
    for cmd, want in ((b"MAIL FROM:<bench@client.test>\r\n", b"250"),
                      (b"RCPT TO:<%s>\r\n" % rcpt.encode(), b"250"),
                      (b"DATA\r\n", b"354")):
        s.sendall(cmd)
        r = recv_reply(f)
        if not r.startswith(want):
            raise IOError("unexpected reply %r" % r)
    s.sendall(message(i) + b".\r\n")
    r = recv_reply(f)
    if not r.startswith(b"250"):
        raise IOError("unexpected reply %r" % r)


def client(args):
    port, n, first, nusers, reuse = args
    errors = 0
    s = f = None
    for k in range(n):
        i = first + k
        rcpt = "u%d@bench.test" % (i % nusers)
        for attempt in range(50):
            try:
                if s is None:
                    s, f = smtp_open(port)
                smtp_send(s, f, rcpt, i)
                if not reuse:
                    s.sendall(b"QUIT\r\n")
                    recv_reply(f)
                    s.close()
                    s = None
                break
            except (OSError, IOError):
                errors += 1
                try:
                    s.close()
                except Exception:
                    pass
                s = None
                time.sleep(0.05)
    if s is not None:
        s.sendall(b"QUIT\r\n")
        s.close()
    return errors


def count(mail):
    return sum(len(os.listdir(p)) for p in glob.glob(os.path.join(mail, "*", "Maildir", "new")))


LOADER = None     # the C client (smtpload.c), unless --python-client


def run_load(port, mail, total, clients, reuse, nusers, limit=600):
    before = count(mail)
    per = total // clients
    t0 = time.time()
    if LOADER:
        r = subprocess.run([LOADER, "-p", str(port), "-c", str(clients), "-n",
                            str(per * clients), "-u", str(nusers)] +
                           (["-r"] if reuse else []),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("smtpload failed: %s" % r.stderr)
        errs = int(r.stdout.split()[-1])
    else:
        with multiprocessing.Pool(clients) as pool:
            errs = sum(pool.map(client, [(port, per, c * per, nusers, reuse)
                                         for c in range(clients)]))
    t_acc = time.time() - t0
    want = before + per * clients
    while count(mail) < want and time.time() - t0 < limit:
        time.sleep(0.02)
    t_all = time.time() - t0
    got = count(mail) - before
    return per * clients, got, t_acc, t_all, errs


def setup_mail(d, nusers):
    mail = os.path.join(d, "mail")
    lines = []
    for u in range(nusers):
        home = os.path.join(mail, "u%d" % u)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(home, "Maildir", sub), exist_ok=True)
        lines.append("u%d %d:%d:%s" % (u, UID, GID, home))
    if ROOT:
        for root, dirs, files in os.walk(mail):
            os.chown(root, UID, GID)
    os.chmod(d, 0o755)
    with open(os.path.join(d, "userbase"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(d, "lda.conf"), "w") as f:
        f.write("[users]\nuserbase = file:%s/userbase\n" % d)
    return mail


def clear_mail(mail):
    for p in glob.glob(os.path.join(mail, "*", "Maildir", "new", "*")):
        os.unlink(p)


class Server:
    def __init__(self, argv, port, log):
        self.logf = open(log, "ab")
        self.p = subprocess.Popen(argv, stdout=self.logf, stderr=self.logf,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(port):
            self.stop()
            raise RuntimeError("%s did not start; see %s" % (argv[0], log))

    def stop(self):
        try:
            os.killpg(self.p.pid, signal.SIGTERM)
            self.p.wait(10)
        except Exception:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait()


def smtpd_lite(d, bindir, port, mail):
    conf = os.path.join(d, "smtpd-lite.conf")
    with open(conf, "w") as f:
        f.write("""hostname = mx.bench.test
user = %s
queue = %s/queue
max_sessions = 500
max_sessions_per_address = 500
max_deliveries = 32

[listener mx]
address = 127.0.0.1
port = %d

[rule local]
rcpt_domain = bench.test
action = mda
mda = %s/lda -c %s/lda.conf -d %%{rcpt.user}
""" % ("nobody" if ROOT else os.environ.get("USER", "root"), d, port, bindir, d))
    return Server([os.path.join(bindir, "smtpd-lite"), "-F", "-c", conf], port,
                  os.path.join(d, "smtpd-lite.log"))


def opensmtpd(d, bindir, port, mail, via_lda):
    for sub in ("spool", "run", "etc"):
        os.makedirs(os.path.join(d, "osmtpd", sub), exist_ok=True)
    os.chmod(os.path.join(d, "osmtpd", "spool"), 0o755)
    with open(os.path.join(d, "osmtpd", "etc", "resolv.conf"), "w") as f:
        f.write("lookup file\n")
    ub = os.path.join(d, "osmtpd", "ubase")
    with open(os.path.join(d, "userbase")) as src, open(ub, "w") as dst:
        dst.write(src.read())
    conf = os.path.join(d, "osmtpd", "smtpd.conf")
    if via_lda:
        action = 'action "deliver" mda "%s/lda -c %s/lda.conf -d %%{user.username}" userbase <ubase>' % (bindir, d)
    else:
        action = 'action "deliver" maildir userbase <ubase>'
    with open(conf, "w") as f:
        f.write("""table ubase file:%s
listen on 127.0.0.1 port %d hostname mx.bench.test
%s
match from any for domain "bench.test" action "deliver"
""" % (ub, port, action))
    os.chmod(conf, 0o644)
    script = ("mount --bind %(d)s/osmtpd/spool /var/spool && "
              "mount --bind %(d)s/osmtpd/run /run && "
              "mount --bind %(d)s/osmtpd/etc/resolv.conf /etc/resolv.conf && "
              "exec /usr/sbin/smtpd -d -f %(conf)s") % {"d": d, "conf": conf}
    return Server(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   script], port, os.path.join(d, "opensmtpd.log"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("-n", type=int, default=5000, help="messages per run")
    ap.add_argument("-r", type=int, default=3, help="runs (median)")
    ap.add_argument("--no-opensmtpd-lda", action="store_true")
    ap.add_argument("--no-opensmtpd", action="store_true",
                    help="smtpd-lite alone (quick runs)")
    ap.add_argument("--python-client", action="store_true",
                    help="Python clients instead of smtpload (C)")
    a = ap.parse_args()
    global LOADER
    bindir = os.path.join(os.path.abspath(a.build), "bin")
    d = tempfile.mkdtemp(prefix="bench-smtp.", dir="/tmp")
    os.chmod(d, 0o755)
    if not a.python_client:
        LOADER = os.path.join(d, "smtpload")
        subprocess.run(["cc", "-O2", "-o", LOADER,
                        os.path.join(TOP, "tests", "bench", "smtp", "smtpload.c")],
                       check=True)
    print("# clients: %s" % ("python" if a.python_client else "smtpload (C)"))
    nusers = 10
    mail = setup_mail(d, nusers)
    have_osmtpd = ROOT and os.path.exists("/usr/sbin/smtpd") and not a.no_opensmtpd
    scen = [("reuse", 10, True), ("new", 50, False)]
    servers = [("smtpd-lite+lda", lambda p: smtpd_lite(d, bindir, p, mail))]
    if have_osmtpd:
        servers.append(("OpenSMTPD maildir", lambda p: opensmtpd(d, bindir, p, mail, False)))
        if not a.no_opensmtpd_lda:
            servers.append(("OpenSMTPD+lda", lambda p: opensmtpd(d, bindir, p, mail, True)))
    res = {}
    try:
        for name, mk in servers:
            port = free_port()
            srv = mk(port)
            try:
                # warm up: page cache, first forks
                run_load(port, mail, 100, 10, True, nusers)
                clear_mail(mail)
                for sname, clients, reuse in scen:
                    rates = []
                    for r in range(a.r):
                        sent, got, t_acc, t_all, errs = run_load(
                            port, mail, a.n, clients, reuse, nusers)
                        rate = got / t_all if t_all else 0
                        rates.append(rate)
                        print("# %-18s %-5s run %d: %d sent, %d delivered, "
                              "accepted in %.1fs, delivered in %.1fs (%.0f/s), "
                              "%d client retries" % (name, sname, r + 1, sent, got,
                                                     t_acc, t_all, rate, errs),
                              flush=True)
                        clear_mail(mail)
                    res[(name, sname)] = statistics.median(rates)
            finally:
                srv.stop()
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(d, True)
    print()
    print("%-44s %12s %12s %7s" % ("benchmark (messages/s end to end, median)",
                                  "smtpd-lite", "other", "ratio"))
    for sname, clients, reuse in scen:
        mine = res.get(("smtpd-lite+lda", sname), 0)
        for other in ("OpenSMTPD maildir", "OpenSMTPD+lda"):
            if (other, sname) in res:
                o = res[(other, sname)]
                print("%-44s %12.0f %12.0f %6.1fx" % (
                    "%s: %d clients, %s vs %s" % (
                        sname, clients, "one connection each" if reuse else
                        "new connection per message", other),
                    mine, o, mine / o if o else float("inf")))
        if not have_osmtpd:
            print("%-44s %12.0f %12s" % (sname, mine, "-"))
    r = res.get(("smtpd-lite+lda", "reuse"), 0)
    n = res.get(("smtpd-lite+lda", "new"), 0)
    if r:
        print("smtpd-lite new-connection / reused-connection: %.2f" % (n / r))


if __name__ == "__main__":
    main()
