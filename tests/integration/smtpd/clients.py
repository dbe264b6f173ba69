"""smtpd-lite with real clients on loopback: swaks (STARTTLS, AUTH PLAIN and
LOGIN, wrong password, relay refused, pipelining), msmtp (submission with TLS
and auth; LMTP), python smtplib (SMTPS, PLAIN with an authorization identity),
STARTTLS injection, SNI with an ECDSA certificate; mail lands in the right
Maildir through lda."""
import base64, os, smtplib, socket, ssl, subprocess, time
from _smtpd import (T, scratch, write, global_conf, start, free_port, mkcerts,
                    users, maildir, wait_for, passwd_table, LDA)

t = T()
d = scratch()
certs = mkcerts(os.path.join(d, "certs"))
ca = os.path.join(certs, "ca.crt")
ldaconf = users(d, ["alice", "bob", "carol"])
passwd_table(d, "smtpuser", "s3cret pass")
if os.geteuid() == 0:
    os.chown(os.path.join(d, "smtp_passwd"), 0, 0)
p_mx, p_sub, p_smtps, p_lmtp = free_port(), free_port(), free_port(), free_port()
conf = global_conf(d) + """
[listener mx]
address = 127.0.0.1
port = %(p_mx)d
tls = starttls
cert = %(c)s/server.crt
key = %(c)s/server.key
tag = in

[listener submission]
address = 127.0.0.1
port = %(p_sub)d
tls = require
cert = %(c)s/server.crt
key = %(c)s/server.key
sni = localhost %(c)s/ecdsa.crt %(c)s/ecdsa.key
auth = file:%(d)s/smtp_passwd
tag = out

[listener smtps]
address = 127.0.0.1
port = %(p_smtps)d
tls = implicit
cert = %(c)s/ecdsa.crt
key = %(c)s/ecdsa.key
auth = file:%(d)s/smtp_passwd
tag = out

[listener lmtp]
address = 127.0.0.1
port = %(p_lmtp)d
lmtp = yes
tag = lmtp

[rule local]
rcpt_domain = example.org
userbase = file:%(d)s/userbase
action = mda
mda = %(lda)s -c %(ldaconf)s -f %%{sender} -d %%{rcpt.user}
""" % {"p_mx": p_mx, "p_sub": p_sub, "p_smtps": p_smtps, "p_lmtp": p_lmtp,
       "c": certs, "d": d, "lda": LDA, "ldaconf": ldaconf}
srv = start(d, conf, [p_mx, p_sub, p_smtps, p_lmtp])
t.ok(os.path.exists(LDA), "lda is built")


def swaks(*args, port=p_sub):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port,
                        "--tls-ca-path", ca, "--hide-informational"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def body_has(user, text):
    return wait_for(lambda: any(text in m for m in maildir(d, user)), 10)


rc, out = swaks("-tls", "-a", "PLAIN", "-au", "smtpuser", "-ap", "s3cret pass",
                "--to", "alice@example.org", "--from", "smtpuser@example.org",
                "--header", "Subject: swaks-plain")
t.ok(rc == 0 and "235 2.7.0" in out, "swaks STARTTLS + AUTH PLAIN")
t.ok(body_has("alice", "Subject: swaks-plain"), "mail in alice's Maildir through lda")
msgs = maildir(d, "alice")
t.ok(msgs and "Received: from" in msgs[0] and "with ESMTPSA" in msgs[0],
     "Received says ESMTPSA")

rc, out = swaks("-tls", "-a", "LOGIN", "-au", "smtpuser", "-ap", "s3cret pass",
                "--to", "bob@example.org", "--header", "Subject: swaks-login")
t.ok(rc == 0 and "235 2.7.0" in out, "swaks AUTH LOGIN")
t.ok(body_has("bob", "Subject: swaks-login"), "mail in bob's Maildir")

t0 = time.time()
rc, out = swaks("-tls", "-a", "PLAIN", "-au", "smtpuser", "-ap", "wrong",
                "--to", "alice@example.org")
t.ok(rc != 0 and "535 5.7.8" in out, "wrong password: 535")
t.ok(time.time() - t0 >= 0.9, "failed AUTH answered after a delay")
t.ok("auth=failed user=smtpuser" in srv.log() and "wrong" not in srv.log(),
     "failure logged without the password")

rc, out = swaks("-tls", "--to", "alice@example.org")
t.ok(rc != 0 and "530 5.7.0 authentication required" in out,
     "submission without AUTH: 530")
rc, out = swaks("--to", "alice@example.org")
t.ok(rc != 0 and "530 5.7.0 must issue a STARTTLS" in out,
     "tls = require: no MAIL before STARTTLS")

rc, out = swaks("-tls", "--to", "someone@elsewhere.net", "--from", "x@spam.net",
                port=p_mx)
t.ok(rc != 0 and "550 5.7.1 <someone@elsewhere.net>: relaying denied" in out,
     "unauthenticated relay refused")
rc, out = swaks("--to", "nosuch@example.org", port=p_mx)
t.ok(rc != 0 and "550 5.1.1" in out, "unknown local user refused at RCPT")

rc, out = swaks("--pipeline", "--to", "carol@example.org", "--header",
                "Subject: pipelined", port=p_mx)
t.ok(rc == 0 and "PIPELINING" in out, "swaks pipelined transaction")
t.ok(body_has("carol", "Subject: pipelined"), "pipelined mail delivered")

# python smtplib: PLAIN with an authorization identity (what mutt sends)
s = smtplib.SMTP("127.0.0.1", p_sub, timeout=20)
s.starttls(context=ssl.create_default_context(cafile=ca))
s.ehlo("py")
code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
    b"other\0smtpuser\0s3cret pass").decode())
t.eq(code, 535, "PLAIN with another user's authzid refused")
code, _ = s.docmd("AUTH", "PLAIN")
t.eq(code, 334, "PLAIN without initial response: 334")
code, _ = s.docmd(base64.b64encode(b"smtpuser\0smtpuser\0s3cret pass").decode())
t.eq(code, 235, "PLAIN with authzid equal to the user, after 334")
s.sendmail("smtpuser@example.org", ["alice@example.org"],
           "Subject: smtplib-authzid\r\n\r\nhi\r\n")
s.quit()
t.ok(body_has("alice", "Subject: smtplib-authzid"), "smtplib message delivered")

# SMTPS with an ECDSA certificate
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP_SSL("127.0.0.1", p_smtps, timeout=20, context=ctx)
s.login("smtpuser", "s3cret pass")
s.sendmail("smtpuser@example.org", ["bob@example.org"],
           "Subject: smtps\r\n\r\nover implicit TLS\r\n")
s.quit()
t.ok(body_has("bob", "Subject: smtps"), "python smtplib over SMTPS (ECDSA key)")

# SNI: localhost gets the ECDSA certificate, the IP the RSA default
def peer_key(name):
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % p_sub,
            "-starttls", "smtp", "-CAfile", ca]
    if name:
        args += ["-servername", name]
    p = subprocess.run(args, input="QUIT\n", capture_output=True, text=True,
                       timeout=20)
    for l in p.stdout.splitlines():
        if "Server public key is" in l:
            return l.strip()
    return p.stdout[-300:]
t.ok("256 bit" in peer_key("localhost"), "SNI localhost: ECDSA certificate")
t.ok("2048 bit" in peer_key(None), "no SNI: RSA certificate")

# STARTTLS injection (CVE-2011-0411): pipelined plaintext is dropped
raw = socket.create_connection(("127.0.0.1", p_mx), 10)
f = raw.makefile("rb")
f.readline()
raw.sendall(b"EHLO x\r\n")
while True:
    l = f.readline()
    if l[3:4] == b" ":
        break
raw.sendall(b"STARTTLS\r\nRSET\r\n")
l = f.readline()
t.ok(l.startswith(b"220"), "STARTTLS answered")
tls = ssl.create_default_context(cafile=ca).wrap_socket(raw, server_hostname="localhost")
tls.sendall(b"NOOP\r\n")
l = tls.recv(1000)
t.ok(l.startswith(b"250 2.0.0 ok"), "injected RSET not answered after the handshake (got %r)" % l[:40])
tls.close()

# msmtp: submission with TLS and auth, and LMTP
rc_file = write(os.path.join(d, "msmtprc"), """defaults
tls_trust_file %s
account sub
host 127.0.0.1
port %d
tls on
tls_starttls on
auth plain
user smtpuser
password s3cret pass
from smtpuser@example.org
account lmtp
host 127.0.0.1
port %d
protocol lmtp
auth off
tls off
from src@src.test
""" % (ca, p_sub, p_lmtp), 0o600)
p = subprocess.run(["msmtp", "-C", rc_file, "-a", "sub", "carol@example.org"],
                   input="Subject: msmtp-sub\n\nhello\n", capture_output=True,
                   text=True, timeout=30)
t.ok(p.returncode == 0, "msmtp submission with TLS and AUTH (%s)" % p.stderr.strip()[:100])
t.ok(body_has("carol", "Subject: msmtp-sub"), "msmtp message delivered")
p = subprocess.run(["msmtp", "-C", rc_file, "-a", "lmtp", "alice@example.org",
                    "bob@example.org"], input="Subject: msmtp-lmtp\n\nvia LMTP\n",
                   capture_output=True, text=True, timeout=30)
t.ok(p.returncode == 0, "msmtp in LMTP mode (%s)" % p.stderr.strip()[:100])
t.ok(body_has("alice", "Subject: msmtp-lmtp") and body_has("bob", "Subject: msmtp-lmtp"),
     "LMTP message delivered to both recipients")

log = srv.log()
t.ok("tls=TLSv1.3" in log or "tls=TLSv1.2" in log, "TLS logged")
t.ok(" delivered" in log and "accepted id=" in log, "acceptance and delivery logged")

# a passwd table changed on disk is seen by new sessions (the master
# re-reads it before each fork: sessions cannot read it themselves)
time.sleep(1.1)
passwd_table(d, "newuser", "fresh pw")
if os.geteuid() == 0:
    os.chown(os.path.join(d, "smtp_passwd"), 0, 0)
time.sleep(1.1)
rc, out = swaks("-tls", "-a", "PLAIN", "-au", "newuser", "-ap", "fresh pw",
                "--to", "alice@example.org", "--header", "Subject: new-user")
t.ok(rc == 0 and "235 2.7.0" in out, "a user added to the passwd table can log in")
