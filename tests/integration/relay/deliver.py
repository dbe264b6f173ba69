"""smtpc_deliver end to end: MX lookup through a private unbound, hosts
tried in order (a closed port, a 554 greeting), final replies, null MX,
NXDOMAIN, SERVFAIL, and a smarthost URL with STARTTLS, verification and
AUTH credentials from a secrets table."""
import os
from _relay import (T, scratch, free_port, build_driver, driver, smtp_server,
                    events, mkcerts, unbound)

t = T()
d = scratch()
drv = build_driver(d)
certs = mkcerts(os.path.join(d, "certs"))
ca = os.path.join(certs, "ca.crt")
tlsopts = ["--cert", os.path.join(certs, "server.crt"),
           "--key", os.path.join(certs, "server.key")]
msg = os.path.join(d, "msg")
with open(msg, "w") as f:
    f.write("Subject: relayed\n\nhello\n")

port = free_port()     # every MX listens (or not) on this port
dnsport = free_port()
z = ['local-zone: "example." static'] + ["local-data: " + x for x in [
    '"multi.example. MX 10 down.multi.example."',
    '"multi.example. MX 20 up.multi.example."',
    '"down.multi.example. A 127.0.0.2"',
    '"up.multi.example. A 127.0.0.3"',
    '"greet.example. MX 10 refuser.greet.example."',
    '"greet.example. MX 20 up.multi.example."',
    '"refuser.greet.example. A 127.0.0.5"',
    '"allrefuse.example. MX 10 refuser.greet.example."',
    '"alldown.example. MX 10 down.multi.example."',
    '"nullmx.example. MX 0 ."',
    '"implicit.example. A 127.0.0.3"',
    '"drop.example. MX 10 dropper.drop.example."',
    '"drop.example. MX 20 up.multi.example."',
    '"dropper.drop.example. A 127.0.0.6"',
    '"selfmx.example. MX 10 me.selfmx.example."',
    '"selfmx.example. MX 20 up.multi.example."',
    '"me.selfmx.example. A 127.0.0.7"',
    '"backup.example. MX 10 up.multi.example."',
    '"backup.example. MX 20 me.backup.example."',
    '"me.backup.example. A 127.0.0.7"',
]] + ['local-zone: "refused.example." refuse']
unbound(d, dnsport, z)
fwd = "127.0.0.1:%d" % dnsport
up, uplog = smtp_server(d, "up", port, addr="127.0.0.3")
refuser, _ = smtp_server(d, "refuser", port, "--greet", "554 5.7.1 not you",
                         addr="127.0.0.5")
dropper, droplog = smtp_server(d, "dropper", port, "--dropdata", addr="127.0.0.6")


def relay(domain, *rcpts, extra=()):
    out, err, res = driver(drv, ["relay", "-F", fwd, "-T", "5000", "-d", domain,
                                 "-p", str(port)] + list(extra) +
                           ["-f", "alice@example.org"] + list(rcpts), msg)
    return out, res


out, res = relay("multi.example", "bob@multi.example", "temp1@multi.example",
                 "perm1@multi.example")
r = res.get((1, "bob@multi.example"), ("?", 0, ""))
t.ok(r[0] == "ok" and "up.multi.example" in r[2],
     "first MX down (closed port), the second one took it: %r" % (r,))
t.eq(res.get((1, "temp1@multi.example"), ("?",))[0], "temp",
     "4xx from the MX: temporary")
r = res.get((1, "perm1@multi.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and r[1] == 550 and "no such user" in r[2],
     "5xx from the MX: permanent, with its text: %r" % (r,))
t.ok("delivered 1" in out, "one recipient delivered")
ms = events(uplog, "message")
t.ok(ms and ms[-1]["rcpts"] == ["bob@multi.example"] and
     ms[-1]["data"] == "Subject: relayed\r\n\r\nhello\r\n", "the MX got the message")

out, res = relay("greet.example", "carol@greet.example")
r = res.get((1, "carol@greet.example"), ("?", 0, ""))
t.ok(r[0] == "ok" and "up.multi.example" in r[2],
     "a 554 greeting sends us to the next MX: %r" % (r,))
out, res = relay("drop.example", "jo@drop.example", "perm3@drop.example")
r = res.get((1, "jo@drop.example"), ("?", 0, ""))
t.ok(r[0] == "ok" and "up.multi.example" in r[2] and events(droplog, "dropped"),
     "connection lost after the data: the next MX gets it: %r" % (r,))
r = res.get((1, "perm3@drop.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and "dropper" in r[2],
     "a recipient refused before the loss keeps its final answer: %r" % (r,))
out, res = relay("selfmx.example", "kim@selfmx.example",
                 extra=("-e", "me.selfmx.example"))
r = res.get((1, "kim@selfmx.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and "loops back" in r[2],
     "we are the best MX: the mail would loop, permanent: %r" % (r,))
out, res = relay("backup.example", "lee@backup.example",
                 extra=("-e", "me.backup.example"))
r = res.get((1, "lee@backup.example"), ("?", 0, ""))
t.ok(r[0] == "ok" and "up.multi.example" in r[2],
     "we are a backup MX: only the better MX is tried: %r" % (r,))
# a batch: one lookup, one connection, three transactions
s0 = len(events(uplog, "session"))
m0 = len(events(uplog, "message"))
out, res = relay("multi.example", "max@multi.example", extra=("-n", "3"))
t.ok(all(res.get((k, "max@multi.example"), ("?",))[0] == "ok" for k in (1, 2, 3))
     and "delivered 3" in out, "a batch of three messages delivered")
t.ok(len(events(uplog, "session")) - s0 == 1 and
     len(events(uplog, "message")) - m0 == 3, "over one connection to the MX")
# a batch whose first host drops the connection: all go to the next MX
d0 = len(events(droplog, "dropped"))
m0 = len(events(uplog, "message"))
out, res = relay("drop.example", "ned@drop.example", extra=("-n", "2"))
t.ok(all(res.get((k, "ned@drop.example"), ("?",))[0] == "ok" for k in (1, 2))
     and len(events(droplog, "dropped")) - d0 == 1 and
     len(events(uplog, "message")) - m0 == 2,
     "a batch interrupted by a lost connection continues on the next MX")
out, res = relay("allrefuse.example", "dan@allrefuse.example")
r = res.get((1, "dan@allrefuse.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and "not you" in r[2],
     "every MX refusing us for good: permanent: %r" % (r,))
out, res = relay("alldown.example", "eve@alldown.example")
r = res.get((1, "eve@alldown.example"), ("?", 0, ""))
t.ok(r[0] == "temp" and "refused" in r[2].lower(),
     "every MX unreachable: temporary, with the last error: %r" % (r,))
out, res = relay("implicit.example", "fay@implicit.example")
t.eq(res.get((1, "fay@implicit.example"), ("?",))[0], "ok",
     "no MX: delivered to the domain's own address")
out, res = relay("nullmx.example", "gus@nullmx.example")
r = res.get((1, "gus@nullmx.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and "7505" in r[2], "null MX: permanent: %r" % (r,))
out, res = relay("nothing.example", "hal@nothing.example")
t.eq(res.get((1, "hal@nothing.example"), ("?",))[0], "perm", "NXDOMAIN: permanent")
out, res = relay("refused.example", "ida@refused.example")
t.eq(res.get((1, "ida@refused.example"), ("?",))[0], "temp", "SERVFAIL: temporary")

# smarthost: STARTTLS required and verified, AUTH from a secrets table
sp = free_port()
smart, slog = smtp_server(d, "smart", sp, "--starttls", "--auth",
                          "relayuser:pa:ss", *tlsopts)
secrets = os.path.join(d, "secrets")
with open(secrets, "w") as f:
    f.write("# label user:password\nprovider relayuser:pa:ss\n")
os.chmod(secrets, 0o600)
out, err, res = driver(drv, ["relay", "-F", fwd, "-T", "5000", "-U",
                             "smtp+tls://provider@localhost:%d" % sp,
                             "-S", "file:" + secrets, "-c", ca,
                             "-f", "alice@example.org", "x@far.example",
                             "y@other.example"], msg)
t.ok(res.get((1, "x@far.example"), ("?",))[0] == "ok" and
     res.get((1, "y@other.example"), ("?",))[0] == "ok",
     "smarthost took recipients of any domain: " + out.strip().replace("\n", " | "))
au = events(slog, "auth")
ms = events(slog, "message")
t.ok(au and au[0]["ok"] and au[0]["user"] == "relayuser" and au[0]["tls"],
     "AUTH with the table's credentials, over TLS")
t.ok(ms and ms[0]["tls"] and ms[0]["auth"] == "relayuser", "message over TLS")
# same smarthost without the CA: not trusted, nothing sent
n0 = len(events(slog, "message"))
out, err, res = driver(drv, ["relay", "-F", fwd, "-T", "5000", "-U",
                             "smtp+tls://provider@localhost:%d" % sp,
                             "-S", "file:" + secrets,
                             "-f", "alice@example.org", "x@far.example"], msg)
r = res.get((1, "x@far.example"), ("?", 0, ""))
t.ok(r[0] == "temp" and "certificate" in r[2] and len(events(slog, "message")) == n0,
     "untrusted smarthost: temporary, nothing sent: %r" % (r,))
# smtps smarthost
tp = free_port()
smtps, tlog = smtp_server(d, "smtps", tp, "--smtps", "--auth", "relayuser:pa:ss",
                          "--mechs", "LOGIN", *tlsopts)
out, err, res = driver(drv, ["relay", "-F", fwd, "-T", "5000", "-U",
                             "smtps://provider@127.0.0.1:%d" % tp,
                             "-S", "file:" + secrets, "-c", ca,
                             "-f", "alice@example.org", "z@far.example"], msg)
t.eq(res.get((1, "z@far.example"), ("?",))[0], "ok", "smtps smarthost with AUTH LOGIN")
