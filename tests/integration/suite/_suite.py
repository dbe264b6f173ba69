"""Helpers for the suite tests: start a supervisord setup the way `make run`
does, ask supervisorctl for pids, send with swaks and msmtp, count mail."""
import glob, os, signal, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import T, scratch, free_port, wait_port, Daemon, BIN, TOP  # noqa

BUILD = os.environ.get("COURRIEL_BUILD") or os.path.dirname(BIN)
ROOT = os.geteuid() == 0


def wait_for(pred, limit=15.0, step=0.05):
    end = time.time() + limit
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def ctl(conf, *args, env=None):
    p = subprocess.run(["supervisorctl", "-c", conf] + list(args), env=env,
                       capture_output=True, text=True, timeout=20)
    return p.stdout.strip()


def pid_of(conf, prog, env=None):
    """The pid supervisord runs prog as, once it is RUNNING; else 0."""
    out = ctl(conf, "status", prog, env=env)
    if "RUNNING" not in out:
        return 0
    try:
        return int(out.split("pid", 1)[1].split(",")[0])
    except (IndexError, ValueError):
        return 0


def kill9(pid):
    """kill -9 of one supervised pid (never 0 or -1: that would be us)."""
    if pid > 1:
        os.kill(pid, signal.SIGKILL)
        return True
    return False


def alive(pid):
    if pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def messages(maildir):
    """Contents of the messages in new/ and cur/ of a Maildir."""
    out = []
    for sub in ("new", "cur"):
        for p in sorted(glob.glob(os.path.join(maildir, sub, "*"))):
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
    return out


def count(maildir, text):
    return sum(1 for m in messages(maildir) if text in m)


def swaks(port, ca, *args):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port,
                        "--tls-ca-path", ca, "--hide-informational",
                        "--timeout", "20"] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def msmtp(rc, *args, body="Subject: msmtp\n\nhello\n"):
    p = subprocess.run(["msmtp", "-C", rc] + list(args), input=body,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


class Supervised:
    """Runs a start script (etc/run.sh or an example's) that execs
    supervisord in the foreground; waits for ports; stops it with SIGTERM."""

    def __init__(self, argv, env, ports, conf, log):
        self.conf = conf
        self.d = Daemon(argv, env=env, log=log, wait=0)
        self.ok = all(wait_port(p, 30) for p in ports)

    def log(self):
        return self.d.log()

    def stop(self):
        return self.d.stop(signal.SIGTERM, 30)
