"""make run, the way a newcomer meets it: etc/run.sh with a temp RUN_DIR and
free ports, under a real supervisord. Sends with swaks and msmtp (submission,
SMTP, LMTP), reads with python imaplib and fetchmail, checks that the
authenticated user's mail to outside domains is captured into `catchall`
and that unauthenticated relaying is refused, kills smtpd-lite (during a
burst) and imapd with kill -9 and sees supervisord restart them with no
acknowledged mail lost, then stops and starts again on the same RUN_DIR."""
import imaplib, os, shutil, signal, ssl, subprocess, tempfile, threading, time
from _suite import (T, scratch, free_port, wait_port, TOP, BUILD, ROOT, BIN,
                    wait_for, write, ctl, pid_of, alive, kill9, messages, count,
                    swaks, msmtp, Supervised)

t = T()
d = scratch("suite-run.")
run_dir = os.path.join(d, "run")
P = {k: free_port() for k in ("SMTP_PORT", "SUBMISSION_PORT", "SMTPS_PORT",
                              "LMTP_PORT", "IMAP_PORT", "IMAPS_PORT")}
env = dict(os.environ, RUN_DIR=run_dir, MAIL_DOMAIN="lab.test",
           SMTP_USER="crm", SMTP_PASSWD="s3nd pass", IMAP_USER1="alice",
           IMAP_USER2="bob", IMAP_PASSWD="r3ad pass",
           **{k: str(v) for k, v in P.items()})
conf = os.path.join(run_dir, "supervisord.conf")
ca = os.path.join(run_dir, "certs", "ca.crt")
mail = lambda u: os.path.join(run_dir, "mail", u, "Maildir")  # noqa: E731


def start():
    return Supervised(["sh", os.path.join(TOP, "etc", "run.sh"), BUILD], env,
                      [P["SMTP_PORT"], P["SUBMISSION_PORT"], P["SMTPS_PORT"],
                       P["LMTP_PORT"], P["IMAP_PORT"], P["IMAPS_PORT"]],
                      conf, os.path.join(d, "run.out"))


sv = start()
if not t.ok(sv.ok, "etc/run.sh starts supervisord and every port answers"):
    print(sv.log())
    raise SystemExit(1)
out = sv.log()
t.ok("swaks --server localhost:%d" % P["SUBMISSION_PORT"] in out and ca in out
     and "muttrc.alice" in out, "it prints a swaks line, the CA file and a muttrc")
t.ok(os.path.isfile(ca) and all(os.path.isdir(os.path.join(mail(u), "new"))
                                for u in ("alice", "bob", "catchall")),
     "CA and the Maildirs of alice, bob and catchall made")
if ROOT:
    st = os.stat(mail("alice"))
    t.ok(st.st_uid == 5000 and st.st_gid == 5000, "as root, mail belongs to 5000:5000")
st = wait_for(lambda: ctl(conf, "status").count("RUNNING") == 2 and
             ctl(conf, "status"), 10)
t.ok(st and "smtpd-lite" in st and "imapd" in st and st.count("RUNNING") == 2,
     "supervisorctl: smtpd-lite and imapd RUNNING")

# submission with AUTH: to a local user, and to the outside (captured)
rc, o = swaks(P["SUBMISSION_PORT"], ca, "-tls", "-au", "crm", "-ap", "s3nd pass",
              "--from", "crm@lab.test", "--to", "alice@lab.test",
              "--header", "Subject: to-alice")
t.ok(rc == 0, "swaks submission + STARTTLS + AUTH to alice@lab.test")
t.ok(wait_for(lambda: count(mail("alice"), "Subject: to-alice") == 1, 10),
     "it reaches RUN_DIR/mail/alice/Maildir")
rc, o = swaks(P["SUBMISSION_PORT"], ca, "-tls", "-au", "crm", "-ap", "s3nd pass",
              "--from", "newsletter@lab.test", "--to", "customer@example.com",
              "--header", "Subject: campaign-1")
t.ok(rc == 0, "swaks to customer@example.com accepted from the SMTP user")
t.ok(wait_for(lambda: count(mail("catchall"), "Subject: campaign-1") == 1, 10),
     "outside mail captured into catchall")
t.ok(any("Delivered-To: customer@example.com" in m for m in messages(mail("catchall"))),
     "the captured copy says whom it was for")
rc, o = swaks(P["SMTP_PORT"], ca, "--from", "spam@evil.example",
              "--to", "victim@example.net")
t.ok(rc != 0 and "550 5.7.1" in o and "relaying denied" in o,
     "unauthenticated mail to another domain refused (550 5.7.1)")
rc, o = swaks(P["SMTP_PORT"], ca, "-tls", "--from", "friend@example.net",
              "--to", "bob@lab.test", "--header", "Subject: inbound-mx")
t.ok(rc == 0, "unauthenticated mail for a local user accepted on the SMTP port (STARTTLS)")
rc, o = swaks(P["SUBMISSION_PORT"], ca, "-tls", "--to", "bob@lab.test")
t.ok(rc != 0 and "530" in o, "submission without AUTH: 530")
rc, o = swaks(P["SUBMISSION_PORT"], ca, "-tls", "-au", "crm", "-ap", "wrong",
              "--to", "bob@lab.test")
t.ok(rc != 0 and "535" in o, "wrong SMTP password: 535")
rc, o = swaks(P["SMTP_PORT"], ca, "--to", "nobody-here@lab.test")
t.ok(rc != 0 and "550 5.1.1" in o, "unknown local user refused at RCPT")

# msmtp with the generated client file; LMTP; SMTPS with smtplib
rc_file = os.path.join(run_dir, "clients", "msmtprc")
rc, o = msmtp(rc_file, "bob@lab.test", body="Subject: msmtp-sub\n\nhi bob\n")
t.ok(rc == 0, "msmtp -C RUN_DIR/clients/msmtprc (submission) (%s)" % o.strip()[:80])
rc, o = msmtp(rc_file, "-a", "lmtp", "alice@lab.test",
              body="Subject: msmtp-lmtp\n\nvia LMTP\n")
t.ok(rc == 0, "msmtp --protocol=lmtp to the LMTP port (%s)" % o.strip()[:80])
home = tempfile.mkdtemp(prefix="mutt.", dir=d)
p = subprocess.run(["mutt", "-n", "-F", os.path.join(run_dir, "clients", "muttrc.bob"),
                    "-s", "from-mutt", "alice@lab.test"], input="sent by mutt\n",
                   env=dict(env, HOME=home), capture_output=True, text=True,
                   timeout=60)
t.ok(p.returncode == 0, "mutt -n -F RUN_DIR/clients/muttrc.bob sends (rc %d %s)"
     % (p.returncode, (p.stdout + p.stderr).strip()[-100:]))
t.ok(wait_for(lambda: count(mail("alice"), "Subject: from-mutt") == 1, 10),
     "mutt's message delivered to alice")
import smtplib  # noqa: E402
s = smtplib.SMTP_SSL("127.0.0.1", P["SMTPS_PORT"], timeout=20,
                     context=ssl.create_default_context(cafile=ca))
s.login("crm", "s3nd pass")
s.sendmail("crm@lab.test", ["someone@customer.example.org"],
           "Subject: smtps-capture\r\n\r\nhi\r\n")
s.quit()
t.ok(wait_for(lambda: count(mail("bob"), "Subject: msmtp-sub") == 1 and
              count(mail("bob"), "Subject: inbound-mx") == 1 and
              count(mail("alice"), "Subject: msmtp-lmtp") == 1 and
              count(mail("catchall"), "Subject: smtps-capture") == 1, 10),
     "msmtp, LMTP and SMTPS mail delivered (and SMTPS outside mail captured)")

# read: imaplib over STARTTLS and IMAPS
ctx = ssl.create_default_context(cafile=ca)


def imap_subjects(user, tls=True):
    if tls:
        m = imaplib.IMAP4_SSL("127.0.0.1", P["IMAPS_PORT"], ssl_context=ctx)
    else:
        m = imaplib.IMAP4("127.0.0.1", P["IMAP_PORT"])
        m.starttls(ssl_context=ctx)
    m.login(user, "r3ad pass")
    m.select("INBOX", readonly=True)
    typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    m.logout()
    return [x[1].decode().strip() for x in data if isinstance(x, tuple)]


subj = imap_subjects("alice", tls=False)
t.ok("Subject: to-alice" in subj and "Subject: msmtp-lmtp" in subj and
     "Subject: from-mutt" in subj, "imaplib STARTTLS: alice reads her three messages")
subj = imap_subjects("catchall")
t.ok("Subject: campaign-1" in subj and "Subject: smtps-capture" in subj,
     "imaplib IMAPS: catchall reads the captured mail with IMAP_PASSWD")
try:
    m = imaplib.IMAP4_SSL("127.0.0.1", P["IMAPS_PORT"], ssl_context=ctx)
    m.login("crm", "s3nd pass")
    t.ok(False, "the SMTP account is not an IMAP account")
except imaplib.IMAP4.error:
    t.ok(True, "the SMTP account is not an IMAP account")
m = imaplib.IMAP4("127.0.0.1", P["IMAP_PORT"])
t.ok("LOGINDISABLED" in m.capabilities, "no IMAP login before STARTTLS")
m.logout()

# fetchmail from bob's account over STARTTLS through lda -M
home = tempfile.mkdtemp(prefix="fetchmail.", dir=d)
dest = os.path.join(d, "fetched")
os.makedirs(dest)
subprocess.run([os.path.join(BIN, "maildirmake"), os.path.join(dest, "Maildir")],
               check=True)
if ROOT:
    for r, ds, fs in os.walk(dest):
        os.chown(r, 5001, 5001)
fmrc = write(os.path.join(home, "fetchmailrc"),
             'poll 127.0.0.1 protocol IMAP service %d:\n'
             '  user "bob" there password "r3ad pass" keep sslproto "TLS1.2+"\n'
             '  sslcertck sslcommonname "localhost" sslcertfile "%s"\n'
             '  mda "%s/lda -M %s/Maildir -f %%F"\n'
             % (P["IMAP_PORT"], ca, BIN, dest), 0o600)
p = subprocess.run(["fetchmail", "-f", fmrc, "--nosyslog", "-v",
                    "--pidfile", os.path.join(home, "pid"),
                    "-i", os.path.join(home, "ids")],
                   env=dict(os.environ, HOME=home), capture_output=True,
                   text=True, timeout=60)
got = messages(os.path.join(dest, "Maildir"))
t.ok(p.returncode == 0 and len(got) == 2 and
     any("Subject: msmtp-sub" in x for x in got),
     "fetchmail (STARTTLS, sslcertck) fetches bob's 2 messages into lda -M "
     "(rc %d, %d messages)" % (p.returncode, len(got)))
if p.returncode != 0:
    print("# " + (p.stdout + p.stderr)[-600:].replace("\n", "\n# "))

# kill -9 smtpd-lite during a burst: supervisord restarts it; nothing
# acknowledged is lost
old = pid_of(conf, "smtpd-lite")
acked, lock = [], threading.Lock()


def client(n):
    for i in range(8):
        subj = "burst-%d-%d" % (n, i)
        end = time.time() + 5    # while supervisord restarts it
        while time.time() < end:
            try:
                s = smtplib.SMTP("127.0.0.1", P["SMTP_PORT"], timeout=20)
                s.sendmail("friend@example.net", ["alice@lab.test"],
                           "Subject: %s\r\n\r\nburst\r\n" % subj)
                s.quit()
            except Exception:
                time.sleep(0.05)
                continue
            with lock:
                acked.append(subj)
            break


threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
for th in threads:
    th.start()
wait_for(lambda: len(acked) >= 6, 15, 0.005)
kill9(old)
for th in threads:
    th.join()
new = wait_for(lambda: (pid_of(conf, "smtpd-lite") not in (0, old)) and
               pid_of(conf, "smtpd-lite"), 15)
t.ok(new and alive(new) and not alive(old),
     "kill -9 smtpd-lite (pid %d): supervisord started pid %s" % (old, new))
t.ok(wait_port(P["SUBMISSION_PORT"], 10), "submission port answers again")
rc, o = swaks(P["SUBMISSION_PORT"], ca, "-tls", "-au", "crm", "-ap", "s3nd pass",
              "--to", "alice@lab.test", "--header", "Subject: after-kill")
t.ok(rc == 0, "mail accepted by the restarted smtpd-lite")
t.ok(wait_for(lambda: all(count(mail("alice"), "Subject: %s\n" % s) >= 1
                          for s in acked + ["after-kill"]), 30),
     "all %d acknowledged burst messages delivered after kill -9" % len(acked))
print("# burst: %d acknowledged before/after the kill" % len(acked))

old = pid_of(conf, "imapd")
kill9(old)
new = wait_for(lambda: (pid_of(conf, "imapd") not in (0, old)) and
               pid_of(conf, "imapd"), 15)
t.ok(new and not alive(old), "kill -9 imapd: supervisord restarted it (pid %s)" % new)
t.ok(wait_port(P["IMAPS_PORT"], 10) and
     wait_for(lambda: len(imap_subjects("alice")) == len(messages(mail("alice"))), 10),
     "imapd serves alice's mail again, every message listed")
logs = open(os.path.join(run_dir, "log", "smtpd-lite.log")).read()
t.ok("s3nd pass" not in logs and "r3ad pass" not in
     open(os.path.join(run_dir, "log", "imapd.log")).read(),
     "no password in the logs supervisord keeps")

# stop (what Ctrl-C does) and start again on the same RUN_DIR
pids = [pid_of(conf, "smtpd-lite"), pid_of(conf, "imapd")]
with open(ca, "rb") as f:
    ca_bytes = f.read()
n_alice = len(messages(mail("alice")))
rc = sv.stop()
t.ok(rc == 0 and not any(alive(p) for p in pids),
     "SIGTERM stops supervisord and both daemons (status %s)" % rc)
# a fetch.conf in RUN_DIR/etc: the next run starts fetch as a daemon too
fdir = os.path.join(d, "fetched2")
os.makedirs(fdir)
if ROOT:
    os.chown(fdir, 5000, 5000)
write(os.path.join(run_dir, "etc", "fetch.conf"),
      "[account catchall]\n"
      "url = imap://catchall@localhost:%d\npassword = r3ad pass\ntls = starttls\n"
      "cafile = %s\nmaildir = %s/Maildir\nkeep = yes\n"
      % (P["IMAP_PORT"], ca, fdir))
env["FETCH_INTERVAL"] = "1"
sv = start()
t.ok(sv.ok, "a second run on the same RUN_DIR starts")
t.ok(wait_for(lambda: pid_of(conf, "fetch") > 0, 10),
     "with RUN_DIR/etc/fetch.conf, supervisord runs fetch too")
n_catch = len(messages(mail("catchall")))
t.ok(wait_for(lambda: len(messages(os.path.join(fdir, "Maildir"))) == n_catch, 15),
     "fetch (daemon) copied catchall's %d messages" % n_catch)
with open(ca, "rb") as f:
    t.ok(f.read() == ca_bytes, "the CA is kept")
t.ok(len(messages(mail("alice"))) == n_alice and
     len(imap_subjects("alice")) == n_alice, "the mail is kept and readable")
sv.stop()

# a RUN_DIR that is taken: a clear message
if shutil.which("ss"):
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", P["IMAP_PORT"]))
    s.listen(1)
    p = subprocess.run(["sh", os.path.join(TOP, "etc", "run.sh"), BUILD], env=env,
                       capture_output=True, text=True, timeout=60)
    s.close()
    t.ok(p.returncode != 0 and "port %d is taken" % P["IMAP_PORT"] in p.stderr,
         "a port in use is named before anything starts")
for k, v, what in (("SMTP_USER", "a b", "SMTP_USER"), ("IMAPS_PORT", "99999", "IMAPS_PORT"),
                   ("IMAP_USER2", "catchall", "catchall")):
    p = subprocess.run(["sh", os.path.join(TOP, "etc", "run.sh"), BUILD],
                       env=dict(env, **{k: v}), capture_output=True, text=True,
                       timeout=60)
    t.ok(p.returncode != 0 and what in p.stderr, "%s=%r refused: %s"
         % (k, v, p.stderr.strip()[:80]))
