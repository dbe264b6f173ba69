"""tests/integration/common.py -- shared helpers for the python tests.

T: a TAP-like reporter (t.ok(cond, what)); scratch(): a temp dir removed at
exit; free_port(); wait_port(); Daemon: starts a program in its own process
group, waits for its port, kills it at exit; mkcerts(dir).
"""
import atexit, os, shutil, signal, socket, subprocess, sys, tempfile, time

TOP = os.environ.get("COURRIEL_TOP") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("COURRIEL_BIN") or os.path.join(TOP, "build", "bin")


class T:
    def __init__(self):
        self.failed = 0
        atexit.register(self._exit)

    def ok(self, cond, what):
        if cond:
            print("ok - " + what, flush=True)
        else:
            self.failed += 1
            print("not ok - " + what, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, "%s (got %r, want %r)" % (what, got, want))

    def _exit(self):
        if self.failed:
            # os._exit skips the other atexit handlers: stop the daemons first.
            _kill_all()
            os._exit(1)


def scratch(prefix="courriel-test."):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    if not os.environ.get("KEEP"):
        atexit.register(shutil.rmtree, d, True)
    return d


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, limit=10.0, host="127.0.0.1"):
    end = time.time() + limit
    while time.time() < end:
        try:
            socket.create_connection((host, port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.02)
    return False


_procs = []


def _kill_all():
    for p in _procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except OSError:
            pass
    for p in _procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass


atexit.register(_kill_all)


class Daemon:
    """Starts argv in its own session; .stop(), .kill(), .log (stderr file)."""

    def __init__(self, argv, port=None, log=None, env=None, wait=10.0):
        self.argv = argv
        self.logpath = log or tempfile.mktemp(prefix="daemon.", suffix=".log")
        self.logf = open(self.logpath, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=self.logf, stderr=self.logf,
                                  env=env, start_new_session=True)
        _procs.append(self.p)
        if port is not None and not wait_port(port, wait):
            raise RuntimeError("%s did not listen on %d; log:\n%s" %
                               (argv[0], port, self.log()))

    def log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        try:
            os.killpg(self.p.pid, sig)
        except OSError:
            pass
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            return self.p.wait()

    def kill(self):
        return self.stop(signal.SIGKILL)


def mkcerts(d, *names):
    subprocess.run(["sh", os.path.join(TOP, "tests", "integration", "mkcerts.sh"), d]
                   + list(names), check=True)
    return d
