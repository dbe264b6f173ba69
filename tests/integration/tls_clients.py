"""Real TLS clients (python's ssl, openssl s_client) against lib/tls and
lib/io, through the small server that the tls unit test binary runs with
`tls serve DIR PORTFILE`: implicit TLS and STARTTLS, SNI choosing among an
RSA default, an ECDSA certificate for b.example and a "*" certificate
pair for the names in its SAN; protocol floor, verification, resumption."""
import os, socket, ssl, subprocess, sys, threading, time, warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import T, scratch, mkcerts, _procs

t = T()
build = os.environ.get("COURRIEL_BUILD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
server_bin = os.path.join(build, "tests", "tls")
if not t.ok(os.access(server_bin, os.X_OK), "tls test server built (%s)" % server_bin):
    sys.exit(1)

d = scratch()
mkcerts(os.path.join(d, "d1"), "a.example")
mkcerts(os.path.join(d, "d2"), "b.example")
mkcerts(os.path.join(d, "d3"), "c.example", "*.wild.example")
portfile = os.path.join(d, "ports")
log = open(os.path.join(d, "server.log"), "wb")
srv = subprocess.Popen([server_bin, "serve", d, portfile], stdin=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, stderr=log,
                       start_new_session=True)
_procs.append(srv)
end = time.time() + 10
ports = None
while time.time() < end and ports is None:
    try:
        with open(portfile) as f:
            s = f.read()
        if s.endswith("\n"):
            ports = [int(x) for x in s.split()]
    except OSError:
        pass
    if ports is None:
        time.sleep(0.02)
if not t.ok(ports is not None, "test server listening"):
    sys.exit(1)
plain_port, tls_port = ports


def ca(n):
    return os.path.join(d, n, "ca.crt")


def ctx_for(cafile, maxver=None, minver=None):
    c = ssl.create_default_context(cafile=cafile)
    if maxver:
        c.maximum_version = maxver
    if minver:
        c.minimum_version = minver
    return c


def readline(f):
    return f.readline().decode("ascii", "replace").rstrip("\r\n")


def implicit(cafile, name, ctx=None, session=None):
    """Connects to the implicit TLS port; returns (sslsock, file, INFO)."""
    c = ctx or ctx_for(cafile)
    raw = socket.create_connection(("127.0.0.1", tls_port), 5)
    s = c.wrap_socket(raw, server_hostname=name, session=session)
    f = s.makefile("rb")
    greet = readline(f)
    s.sendall(b"INFO\r\n")
    info = readline(f)
    return s, f, greet, info


# Implicit TLS, SNI and certificate choice.
s, f, greet, info = implicit(ca("d1"), "a.example")
t.eq(greet, "220 ready", "python ssl: implicit TLS greeting")
t.ok("SNI=a.example INFO=TLSv1.3" in info, "SNI seen, TLS 1.3 (%s)" % info)
t.eq(s.version(), "TLSv1.3", "python negotiates TLS 1.3")
s.close()

s, f, greet, info = implicit(ca("d2"), "b.example")
san = [v for k, v in s.getpeercert().get("subjectAltName", ()) if k == "DNS"]
t.ok("b.example" in san, "SNI b.example: its certificate, verified (%s)" % san)
s.close()

s, f, greet, info = implicit(ca("d3"), "mail.wild.example")
t.ok("SNI=mail.wild.example" in info, "wildcard SAN of a \"*\" certificate (%s)" % info)
s.close()

s, f, greet, info = implicit(ca("d1"), "127.0.0.1")
t.ok(info.startswith("250 SNI=- "), "IP literal: verified, no SNI sent (%s)" % info)
s.close()

try:
    implicit(ca("d1"), "nothere.example")
    t.ok(False, "hostname mismatch refused by python")
except ssl.SSLCertVerificationError as e:
    t.ok("mismatch" in str(e), "hostname mismatch refused by python (%s)" % e.verify_message)

try:
    implicit(ca("d2"), "a.example")
    t.ok(False, "unknown CA refused by python")
except ssl.SSLCertVerificationError as e:
    t.ok(True, "unknown CA refused by python (%s)" % e.verify_message)

# TLS 1.2: a forward-secret AEAD suite.
s, f, greet, info = implicit(ca("d1"), "a.example",
                             ctx=ctx_for(ca("d1"), maxver=ssl.TLSVersion.TLSv1_2))
name, proto, bits = s.cipher()
t.ok(proto == "TLSv1.2" and name.startswith("ECDHE-") and
     ("GCM" in name or "CHACHA20" in name), "TLS 1.2 gets ECDHE + AEAD (%s)" % name)
s.close()

# TLS 1.1 is refused even by a client willing to use it.
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
c.check_hostname = False
c.verify_mode = ssl.CERT_NONE
try:
    c.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        c.minimum_version = ssl.TLSVersion.TLSv1
        c.maximum_version = ssl.TLSVersion.TLSv1_1
    implicit(None, "a.example", ctx=c)
    t.ok(False, "TLS 1.1 client refused")
except (ssl.SSLError, OSError) as e:
    t.ok(True, "TLS 1.1 client refused (%s)" % e)

# Resumption across the server's per-connection processes (tickets).
c = ctx_for(ca("d1"))
s, f, greet, info = implicit(ca("d1"), "a.example", ctx=c)
sess = s.session
s.sendall(b"QUIT\r\n")
readline(f)
s.close()
s, f, greet, info = implicit(ca("d1"), "a.example", ctx=c, session=sess)
t.ok(s.session_reused, "TLS 1.3 session resumed in another server process")
s.close()

# STARTTLS with plaintext pipelined behind it: dropped, never answered.
raw = socket.create_connection(("127.0.0.1", plain_port), 5)
rf = raw.makefile("rb")
t.eq(readline(rf), "220 ready", "plaintext greeting")
raw.sendall(b"STARTTLS\r\nECHO injected\r\n")
t.eq(readline(rf), "220 go ahead", "220 to STARTTLS")
s = ctx_for(ca("d2")).wrap_socket(raw, server_hostname="b.example")
f = s.makefile("rb")
s.sendall(b"ECHO real\r\nINFO\r\n")
t.eq(readline(f), "250 real", "pipelined plaintext discarded by io_starttls_server")
t.ok("SNI=b.example" in readline(f), "SNI honoured after STARTTLS")
s.close()

# openssl s_client: the ECDSA certificate for b.example, and no TLS 1.1.
def s_client(*args):
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port]
                       + list(args), input=b"QUIT\r\n", capture_output=True, timeout=20)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

rc, out = s_client("-servername", "b.example", "-CAfile", ca("d2"),
                   "-verify_hostname", "b.example", "-verify_return_error")
t.ok(rc == 0 and "Verify return code: 0 (ok)" in out and "ECDSA" in out.upper(),
     "openssl s_client: verified ECDSA certificate for b.example")
rc, out = s_client("-servername", "c.example", "-CAfile", ca("d3"), "-tls1_2",
                   "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256", "-verify_return_error")
t.ok(rc == 0 and "Server public key is 2048 bit" in out,
     "openssl s_client: RSA twin of the \"*\" pair for an RSA-only client")
rc, out = s_client("-servername", "a.example", "-tls1_1", "-cipher", "ALL:@SECLEVEL=0")
t.ok(rc != 0, "openssl s_client -tls1_1 refused")

# Twenty clients at once.
results = []
def one(i):
    try:
        s, f, greet, info = implicit(ca("d2"), "b.example")
        s.sendall(b"ECHO %d\r\n" % i)
        results.append(readline(f) == "250 %d" % i)
        s.close()
    except Exception as e:
        results.append(False)
th = [threading.Thread(target=one, args=(i,)) for i in range(20)]
for x in th:
    x.start()
for x in th:
    x.join()
t.ok(len(results) == 20 and all(results), "20 concurrent TLS sessions")

srv.stdin.close()
srv.wait(10)
