"""The TLS policy through the real daemons (issue 9's TLS bullet): imapd and
smtpd-lite refuse a private key that others can read and a key that does
not match, naming the file, when their configuration is checked (-n) and at
start; running, they refuse TLS 1.1 and weak TLS 1.2 ciphers (openssl
s_client, python ssl), on implicit TLS and after STARTTLS, and choose
certificates by SNI."""
import os, shutil, socket, ssl, subprocess, sys, warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import T, scratch, free_port, Daemon, mkcerts, BIN

t = T()
root = os.geteuid() == 0
d = scratch("tlssrv.")
certs = mkcerts(os.path.join(d, "certs"))
other = mkcerts(os.path.join(d, "other"), "other.test")
ca = os.path.join(certs, "ca.crt")
loose = os.path.join(d, "loose.key")
shutil.copy(os.path.join(certs, "server.key"), loose)
os.chmod(loose, 0o644)
IMAPD = os.path.join(BIN, "imapd")
SMTPD = os.path.join(BIN, "smtpd-lite")
user = "nobody" if root else None


def write(name, text, mode=0o644):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)
    return p


write("passwd", "", 0o600)
write("userbase", "")
os.makedirs(os.path.join(d, "queue"), exist_ok=True)


def imapd_conf(name, cert, key, port=None, tport=None):
    return write(name, """listen = 127.0.0.1:%d
listen_tls = 127.0.0.1:%d
cert = %s
key = %s
sni = other.test %s/server.crt %s/server.key
%spasswd = file:%s/passwd
[users]
userbase = file:%s/userbase
""" % (port or free_port(), tport or free_port(), cert, key, other, other,
       "user = nobody\n" if root else "", d, d))


def smtpd_conf(name, cert, key, port=None, sport=None):
    return write(name, """hostname = mx.test
%squeue = %s/queue
lda = %s/lda
timeout = 20

[listener mx]
address = 127.0.0.1
port = %d
tls = starttls
cert = %s
key = %s
sni = other.test %s/server.crt %s/server.key

[listener smtps]
address = 127.0.0.1
port = %d
tls = implicit
cert = %s
key = %s
sni = other.test %s/server.crt %s/server.key

[rule local]
rcpt_domain = example.org
userbase = file:%s/userbase
action = mda
mda = %s/lda -d %%{rcpt.user}
""" % ("user = nobody\n" if root else "", d, BIN, port or free_port(), cert, key,
       other, other, sport or free_port(), cert, key, other, other, d, BIN))


def check(prog, conf):
    p = subprocess.run([prog, "-n", "-c", conf], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


good_cert = os.path.join(certs, "server.crt")
good_key = os.path.join(certs, "server.key")
for prog, mk in (("imapd", imapd_conf), ("smtpd-lite", smtpd_conf)):
    exe = os.path.join(BIN, prog)
    if not t.ok(os.access(exe, os.X_OK), "%s is built" % prog):
        continue
    rc, out = check(exe, mk(prog + "-good.conf", good_cert, good_key))
    t.ok(rc == 0, "%s -n accepts mode-600 keys (%s)" % (prog, out.strip()[:200]))
    rc, out = check(exe, mk(prog + "-loose.conf", good_cert, loose))
    t.ok(rc != 0 and "loose.key" in out and "readable by others" in out,
         "%s -n refuses a world-readable key, naming it (%s)" % (prog, out.strip()[:200]))
    rc, out = check(exe, mk(prog + "-mismatch.conf", good_cert,
                            os.path.join(other, "server.key")))
    t.ok(rc != 0 and "does not match" in out,
         "%s -n refuses a key that does not match (%s)" % (prog, out.strip()[:200]))
    # Started for real, the daemon does not come up with the loose key.
    p = subprocess.run([exe, "-F", "-c", os.path.join(d, prog + "-loose.conf")],
                       capture_output=True, text=True, timeout=30)
    t.ok(p.returncode != 0 and "readable by others" in p.stderr,
         "%s -F exits at start with the world-readable key" % prog)


def s_client(port, *args, starttls=None):
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port]
    if starttls:
        argv += ["-starttls", starttls]
    p = subprocess.run(argv + list(args), input=b"", capture_output=True,
                       timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def policy(name, port, starttls=None):
    rc, out = s_client(port, "-tls1_1", "-cipher", "ALL:@SECLEVEL=0",
                       starttls=starttls)
    t.ok(rc != 0 and "alert protocol version" in out,
         "%s: TLS 1.1 offered and refused" % name)
    rc, out = s_client(port, "-tls1_2", "-cipher",
                       "AES128-SHA:AES256-GCM-SHA384:DES-CBC3-SHA:RC4-SHA:@SECLEVEL=0",
                       starttls=starttls)
    t.ok(rc != 0, "%s: static RSA, 3DES, RC4 refused" % name)
    rc, out = s_client(port, "-tls1_2", "-CAfile", ca, "-verify_return_error",
                       "-servername", "localhost", starttls=starttls)
    t.ok(rc == 0 and "Verify return code: 0 (ok)" in out and "ECDHE" in out,
         "%s: TLS 1.2 with ECDHE, verified" % name)
    rc, out = s_client(port, "-tls1_3", "-CAfile", os.path.join(other, "ca.crt"),
                       "-verify_return_error", "-servername", "other.test",
                       starttls=starttls)
    t.ok(rc == 0 and "TLSv1.3" in out, "%s: TLS 1.3, SNI other.test gets its "
         "certificate" % name)


if os.access(IMAPD, os.X_OK):
    port, tport = free_port(), free_port()
    conf = imapd_conf("imapd-run.conf", good_cert, good_key, port, tport)
    imapd = Daemon([IMAPD, "-F", "-c", conf], port=tport,
                   log=os.path.join(d, "imapd.log"))
    policy("imapd implicit TLS", tport)
    policy("imapd STARTTLS", port, starttls="imap")
    imapd.stop()

if os.access(SMTPD, os.X_OK):
    port, sport = free_port(), free_port()
    conf = smtpd_conf("smtpd-run.conf", good_cert, good_key, port, sport)
    smtpd = Daemon([SMTPD, "-F", "-c", conf], port=sport,
                   log=os.path.join(d, "smtpd.log"))
    policy("smtpd-lite SMTPS", sport)
    policy("smtpd-lite STARTTLS", port, starttls="smtp")
    smtpd.stop()
