"""Helpers for the relay tests (not a test): builds the driver against the
build's libmail.a, starts the scripted SMTP server and a private unbound."""
import json, os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from common import T, scratch, free_port, wait_port, Daemon, mkcerts, TOP  # noqa

BUILD = os.environ.get("COURRIEL_BUILD") or os.path.join(TOP, "build")


def build_driver(d):
    """Compiles driver.c; under an ASan build, with the sanitizers too."""
    lib = os.path.join(BUILD, "libmail.a")
    libs = ""
    with open(os.path.join(TOP, "config.mk")) as f:
        for ln in f:
            if ln.startswith("LIBS_LDFLAGS"):
                libs = ln.split("=", 1)[1]
    libs = libs.split() + subprocess.run(
        ["pkg-config", "--libs", "libunbound"], capture_output=True,
        text=True, check=True).stdout.split()
    san = []
    nm = subprocess.run(["nm", lib], capture_output=True, text=True).stdout
    if "__asan_" in nm:
        san = ["-fsanitize=address,undefined"]
    out = os.path.join(d, "driver")
    subprocess.run(["cc", "-std=c11", "-g", "-D_GNU_SOURCE", "-Wall",
                    "-I" + os.path.join(TOP, "lib"), "-o", out,
                    os.path.join(HERE, "driver.c"), lib] + libs + san,
                   check=True)
    return out


def driver(drv, args, stdin_path=None, timeout=60):
    """Runs the driver; returns (stdout, stderr, parsed results)."""
    f = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        p = subprocess.run([drv] + args, stdin=f, capture_output=True,
                           text=True, timeout=timeout)
    finally:
        if stdin_path:
            f.close()
    res = {}
    for ln in p.stdout.splitlines():
        w = ln.split(" ", 5)
        if w[0] == "result" and len(w) >= 5:
            res[(int(w[1]), w[2])] = (w[3], int(w[4]), w[5] if len(w) > 5 else "")
    return p.stdout, p.stderr, res


def smtp_server(d, name, port, *opts, addr="127.0.0.1"):
    """Starts the scripted server; returns (daemon, log path)."""
    logp = os.path.join(d, name + ".jsonl")
    open(logp, "w").close()
    argv = [sys.executable, os.path.join(HERE, "_smtpserver.py"),
            "--addr", addr, "--port", str(port), "--log", logp] + list(opts)
    dm = Daemon(argv, log=os.path.join(d, name + ".err"))
    if not wait_port(port, 10, host=addr):
        raise RuntimeError("scripted server did not start: " + dm.log())
    return dm, logp


def events(logp, ev=None):
    out = []
    with open(logp) as f:
        for ln in f:
            e = json.loads(ln)
            if ev is None or e["ev"] == ev:
                out.append(e)
    return out


def unbound(d, port, zone_lines):
    """A private unbound on 127.0.0.1:port serving zone_lines (local-data
    and local-zone lines for the server: section)."""
    conf = os.path.join(d, "unbound.conf")
    with open(conf, "w") as f:
        f.write("""server:
	interface: 127.0.0.1
	port: %d
	do-daemonize: no
	chroot: ""
	username: ""
	directory: "%s"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	do-ip6: no
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
%s
remote-control:
	control-enable: no
""" % (port, d, "".join("\t%s\n" % z for z in zone_lines)))
    dm = Daemon(["unbound", "-d", "-c", conf], log=os.path.join(d, "unbound.log"))
    # readiness: unbound listens on UDP and TCP; the TCP port tells
    if not wait_port(port, 10):
        raise RuntimeError("unbound did not start: " + dm.log())
    return dm
