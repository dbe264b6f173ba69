"""lib/smtpc against a scripted SMTP server on loopback: pipelining, SIZE,
8BITMIME, per-recipient 4xx/5xx, several messages on one connection,
dot-stuffing and smuggling, STARTTLS (verified, injected plaintext,
failed), smtps, AUTH PLAIN and LOGIN, bad replies, timeouts."""
import os, time
from _relay import (T, scratch, free_port, build_driver, driver, smtp_server,
                    events, mkcerts)

t = T()
d = scratch()
drv = build_driver(d)
certs = mkcerts(os.path.join(d, "certs"))
ca = os.path.join(certs, "ca.crt")
tlsopts = ["--cert", os.path.join(certs, "server.crt"),
           "--key", os.path.join(certs, "server.key")]
env_pass = "RELAY_TEST_PASS"
os.environ[env_pass] = "s3cret pass"

msg = os.path.join(d, "msg")
body = ("From: a@example.org\nTo: b@example.net\nSubject: relay test\n\n"
        "line one\n.starts with a dot\n.\nlast line without end")
with open(msg, "w") as f:
    f.write(body)
wire = body.replace("\n", "\r\n").replace("\r\n.", "\r\n..") + "\r\n"


def send(port, *args, rcpts=("bob@example.net",), sender="alice@example.org",
         m=msg):
    return driver(drv, ["send", "-p", str(port), "-T", "5000"] + list(args) +
                  ["-f", sender] + list(rcpts), m)


# 1. plaintext, pipelined, SIZE and BODY=8BITMIME
p = free_port()
srv, lg = smtp_server(d, "plain", p)
out, err, res = send(p, "-8", rcpts=("bob@example.net", "carol@example.net"))
t.eq(res.get((1, "bob@example.net"), ("?",))[0], "ok", "delivered to bob")
t.eq(res.get((1, "carol@example.net"), ("?",))[0], "ok", "delivered to carol")
ms = events(lg, "message")
t.eq(len(ms), 1, "one message received")
if ms:
    t.eq(ms[0]["data"], wire, "body arrives with CRLF and dot-stuffing")
    t.ok(ms[0]["pipelined"], "MAIL and RCPTs pipelined")
    t.eq(ms[0]["rcpts"], ["bob@example.net", "carol@example.net"], "envelope")
cmds = [e["line"] for e in events(lg, "cmd")]
mailcmd = [c for c in cmds if c.startswith("MAIL")]
t.ok(mailcmd and "SIZE=%d" % len(body) in mailcmd[0] and
     "BODY=8BITMIME" in mailcmd[0], "MAIL has SIZE= and BODY=8BITMIME: %s" %
     (mailcmd[:1],))
t.ok(cmds[-1] == "QUIT", "QUIT at the end")
srv.stop()

# 2. per-recipient 4xx and 5xx, server text kept
p = free_port()
srv, lg = smtp_server(d, "mixed", p, "--nopipelining")
out, err, res = send(p, rcpts=("ok@example.net", "temp1@example.net",
                               "perm1@example.net"))
t.eq(res.get((1, "ok@example.net"), ("?",))[0], "ok", "2xx: delivered")
r = res.get((1, "temp1@example.net"), ("?", 0, ""))
t.ok(r[0] == "temp" and r[1] == 451 and "try again later" in r[2],
     "4xx: temporary with the server's text: %r" % (r,))
r = res.get((1, "perm1@example.net"), ("?", 0, ""))
t.ok(r[0] == "perm" and r[1] == 550 and "no such user" in r[2] and
     "RCPT" in r[2], "5xx: permanent with the server's text: %r" % (r,))
ms = events(lg, "message")
t.ok(len(ms) == 1 and ms[0]["rcpts"] == ["ok@example.net"] and
     not ms[0]["pipelined"], "only the accepted recipient got it, unpipelined")
# all refused: no DATA, RSET instead
out, err, res = send(p, rcpts=("perm2@example.net",))
cmds = [e["line"] for e in events(lg, "cmd")]
t.ok(res.get((1, "perm2@example.net"), ("?",))[0] == "perm" and
     "RSET" in cmds[-3:] and cmds.count("DATA") == 1,
     "all recipients refused: RSET, no DATA")
srv.stop()

# 3. several messages on one connection
p = free_port()
srv, lg = smtp_server(d, "multi", p)
out, err, res = send(p, "-n", "3")
t.ok(all(res.get((k, "bob@example.net"), ("?",))[0] == "ok" for k in (1, 2, 3)),
     "three messages sent")
# (the readiness probe of smtp_server is a session too)
t.eq(len(events(lg, "session")) - 1, 1, "over one connection")
t.eq(len(events(lg, "message")), 3, "three messages received")
srv.stop()

# 4. smuggling: bare LF/CR dots inside never end the data
smug = os.path.join(d, "smuggle")
with open(smug, "wb") as f:
    f.write(b"Subject: s\n\nA\n.\nMAIL FROM:<x>\r.\rB\r\n.\r\nC\n.\r\nD\n")
p = free_port()
srv, lg = smtp_server(d, "smuggle", p)
out, err, res = send(p, m=smug)
ms = events(lg, "message")
t.ok(len(ms) == 1 and ms[0]["data"].endswith("D\r\n") and
     "MAIL FROM:<x>" in ms[0]["data"], "smuggled dots stay inside one message")
t.eq(len([c for c in (e["line"] for e in events(lg, "cmd"))
          if c.startswith("MAIL")]), 1, "the server saw one MAIL command")
if ms:
    t.eq(ms[0]["data"], "Subject: s\r\n\r\nA\r\n..\r\nMAIL FROM:<x>\r\n..\r\n"
         "B\r\n..\r\nC\r\n..\r\nD\r\n", "every line end became CRLF, every dot stuffed")
srv.stop()

# 5. STARTTLS required and verified, AUTH PLAIN
p = free_port()
srv, lg = smtp_server(d, "starttls", p, "--starttls", "--auth",
                      "alice:s3cret pass", "--mechs", "PLAIN", *tlsopts)
out, err, res = send(p, "-H", "localhost", "-t", "starttls", "-c", ca,
                     "-u", "alice", "-w", env_pass)
t.eq(res.get((1, "bob@example.net"), ("?",))[0], "ok",
     "STARTTLS + AUTH PLAIN delivery: " + out.strip().replace("\n", " | "))
t.ok("tls TLSv1." in out, "TLS in use: " + out.splitlines()[1] if "\n" in out else out)
au = events(lg, "auth")
t.ok(au and au[0]["ok"] and au[0]["tls"], "AUTH PLAIN after TLS")
ms = events(lg, "message")
t.ok(ms and ms[0]["tls"] and ms[0]["auth"] == "alice", "message went over TLS")
ehlos = [e["line"] for e in events(lg, "cmd") if e["line"].startswith("EHLO")]
t.eq(len(ehlos), 2, "EHLO again after STARTTLS")
# unknown CA: refused
out, err, res = send(p, "-H", "localhost", "-t", "starttls",
                     "-u", "alice", "-w", env_pass)
t.ok(out.startswith("connect temp") and "TLS" in out,
     "untrusted certificate: temporary failure: " + out.strip())
# wrong name
out, err, res = send(p, "-H", "mail.example.org", "-t", "starttls", "-c", ca,
                     "-u", "alice", "-w", env_pass)
t.ok(out.startswith("connect temp"), "certificate for another name refused: " +
     out.strip())
# wrong password
os.environ["WRONG_PASS"] = "nope"
out, err, res = send(p, "-H", "localhost", "-t", "starttls", "-c", ca,
                     "-u", "alice", "-w", "WRONG_PASS")
t.ok(out.startswith("connect temp") and "535" in out,
     "refused AUTH is a temporary failure with the reply: " + out.strip())
srv.stop()

# 6. plaintext injected after 220 to STARTTLS is dropped
p = free_port()
srv, lg = smtp_server(d, "inject", p, "--starttls", "--inject", "--auth",
                      "alice:s3cret pass", *tlsopts)
out, err, res = send(p, "-H", "localhost", "-t", "starttls", "-c", ca,
                     "-u", "alice", "-w", env_pass, "-x")
t.eq(res.get((1, "bob@example.net"), ("?",))[0], "ok",
     "injected plaintext does not confuse the client: " +
     out.strip().replace("\n", " | "))
t.ok("plaintext after 220 to STARTTLS dropped" in err, "the injection was seen and dropped")
t.ok(events(lg, "auth") and events(lg, "auth")[0]["ok"],
     "AUTH used the real post-TLS EHLO reply")
srv.stop()

# 7. smtps with AUTH LOGIN only
p = free_port()
srv, lg = smtp_server(d, "smtps", p, "--smtps", "--auth", "alice:s3cret pass",
                      "--mechs", "LOGIN", *tlsopts)
out, err, res = send(p, "-H", "127.0.0.1", "-t", "implicit", "-c", ca,
                     "-u", "alice", "-w", env_pass)
t.eq(res.get((1, "bob@example.net"), ("?",))[0], "ok", "smtps + AUTH LOGIN: " +
     out.strip().replace("\n", " | "))
t.ok(events(lg, "auth") and events(lg, "auth")[0]["ok"], "AUTH LOGIN accepted")
srv.stop()

# 8. opportunistic STARTTLS that fails: delivered in plaintext on a new connection
p = free_port()
srv, lg = smtp_server(d, "badtls", p, "--badtls")
out, err, res = send(p, "-t", "maybe")
t.eq(res.get((1, "bob@example.net"), ("?",))[0], "ok",
     "failed opportunistic TLS falls back to plaintext")
t.eq(len(events(lg, "session")) - 1, 2, "on a second connection")
# no password over plaintext
out, err, res = send(p, "-u", "alice", "-w", env_pass)
t.ok(out.startswith("connect temp") and "without TLS" in out,
     "no AUTH without TLS: " + out.strip())
srv.stop()

# 9. opportunistic STARTTLS that works (unverified: no CA given)
p = free_port()
srv, lg = smtp_server(d, "maybe", p, "--starttls", *tlsopts)
out, err, res = send(p, "-t", "maybe", "-H", "mx.example.net")
t.ok(res.get((1, "bob@example.net"), ("?",))[0] == "ok" and
     events(lg, "message") and events(lg, "message")[0]["tls"],
     "opportunistic TLS to an MX, certificate not checked")
srv.stop()

# 10. greetings, HELO fallback, SIZE limit, bad replies, silence
p = free_port()
srv, lg = smtp_server(d, "g554", p, "--greet", "554 5.7.1 go away")
out, err, res = send(p)
t.ok(out.startswith("connect perm") and "go away" in out,
     "554 greeting is permanent for this host: " + out.strip())
srv.stop()
p = free_port()
srv, lg = smtp_server(d, "g421", p, "--greet", "421 4.3.2 busy")
out, err, res = send(p)
t.ok(out.startswith("connect temp") and "busy" in out, "421 greeting is temporary")
srv.stop()
p = free_port()
srv, lg = smtp_server(d, "helo", p, "--noehlo")
out, err, res = send(p)
t.ok(res.get((1, "bob@example.net"), ("?",))[0] == "ok" and
     any(e["line"].startswith("HELO") for e in events(lg, "cmd")),
     "HELO when EHLO is refused")
srv.stop()
p = free_port()
srv, lg = smtp_server(d, "size", p, "--size", "50")
out, err, res = send(p)
r = res.get((1, "bob@example.net"), ("?", 0, ""))
t.ok(r[0] == "perm" and r[1] == 552 and not events(lg, "message"),
     "message over the announced SIZE is not sent: %r" % (r,))
srv.stop()
for name, raw in (("mixed codes", r"250-a\r\n550 b\r\n"),
                  ("letters", r"2x0 hello\r\n"),
                  ("overlong", "250 " + "x" * 1200 + r"\r\n")):
    p = free_port()
    srv, lg = smtp_server(d, "bad", p, "--badreply", raw)
    out, err, res = send(p)
    t.ok(out.startswith("connect temp"), "malformed reply (%s) is a temporary"
         " failure: %s" % (name, out.strip()[:120]))
    srv.stop()
p = free_port()
srv, lg = smtp_server(d, "silent", p, "--silent")
t0 = time.time()
out, err, res = driver(drv, ["send", "-p", str(p), "-T", "1000", "-f", "a@b",
                             "c@d"], msg)
t.ok(out.startswith("connect temp") and "timed out" in out and
     time.time() - t0 < 5, "a silent server times out: " + out.strip())
srv.stop()
# connection refused
out, err, res = send(free_port())
t.ok(out.startswith("connect temp") and "refused" in out.lower(),
     "closed port: temporary: " + out.strip())
# addresses that cannot go on the wire
p = free_port()
srv, lg = smtp_server(d, "addr", p)
out, err, res = send(p, rcpts=("bad>rcpt@example.net", "good@example.net"))
t.ok(res.get((1, "bad>rcpt@example.net"), ("?",))[0] == "perm" and
     res.get((1, "good@example.net"), ("?",))[0] == "ok",
     "an unsendable recipient is refused, the others go")
srv.stop()

# SMTPUTF8: a non-ASCII address goes only to a server that offers it
uni = "j\u00f6s\u00e9@example.net"
p = free_port()
srv, lg = smtp_server(d, "ascii", p)
out, err, res = send(p, rcpts=(uni, "plain@example.net"))
r = res.get((1, uni), ("?", 0, ""))
t.ok(r[0] == "perm" and "SMTPUTF8" in r[2] and
     res.get((1, "plain@example.net"), ("?",))[0] == "ok",
     "non-ASCII recipient without SMTPUTF8: permanent, the others go: %r" % (r,))
srv.stop()
p = free_port()
srv, lg = smtp_server(d, "utf8", p, "--smtputf8")
out, err, res = send(p, rcpts=(uni,))
mailcmd = [e["line"] for e in events(lg, "cmd") if e["line"].startswith("MAIL")]
t.ok(res.get((1, uni), ("?",))[0] == "ok" and mailcmd and
     " SMTPUTF8" in mailcmd[0], "with SMTPUTF8 offered: MAIL says SMTPUTF8")
srv.stop()

# IPv6 (where the loopback has it)
try:
    s6 = __import__("socket").socket(__import__("socket").AF_INET6)
    s6.bind(("::1", 0))
    p = s6.getsockname()[1]
    s6.close()
    have6 = True
except OSError:
    have6 = False
if have6:
    srv, lg = smtp_server(d, "v6", p, addr="::1")
    out, err, res = driver(drv, ["send", "-a", "::1", "-p", str(p), "-T", "5000",
                                 "-f", "a@example.org", "b@example.net"], msg)
    t.eq(res.get((1, "b@example.net"), ("?",))[0], "ok", "delivery over IPv6")
    srv.stop()
else:
    print("ok - # skip: no IPv6 loopback")
