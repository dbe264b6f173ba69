"""smtpc_deliver to a real MTA: Debian's OpenSMTPD (plaintext; its TLS is
broken with OpenSSL 3, see shared notes), found through an MX record in a
private unbound, run as root in a private mount namespace so its
compiled-in spool and socket paths stay in the scratch dir. Checks
delivery into its Maildir, a refused recipient, and three messages over
one connection."""
import glob, os, shutil, subprocess, time
from _relay import (T, scratch, free_port, build_driver, driver, Daemon,
                    unbound, wait_port)

t = T()
probe = subprocess.run(["unshare", "--mount", "--propagation", "private",
                        "true"], capture_output=True)
if os.geteuid() != 0 or probe.returncode != 0 or not shutil.which("smtpd"):
    print("ok - # skip: OpenSMTPD needs root, its binary and a private mount "
          "namespace")
    raise SystemExit(0)
d = scratch()
drv = build_driver(d)
for sub in ("spool", "run"):
    os.makedirs(os.path.join(d, sub))
mail = os.path.join(d, "mail")
os.makedirs(mail)
os.chown(mail, 5001, 5001)
with open(os.path.join(d, "ub"), "w") as f:
    f.write("alice 5001:5001:%s\n" % mail)
port = free_port()
conf = os.path.join(d, "smtpd.conf")
with open(conf, "w") as f:
    f.write('table ub file:%s/ub\nlisten on 127.0.0.1 port %d\n'
            'action "local" maildir "%s/Maildir" userbase <ub>\n'
            'match from any for domain "osd.example" action "local"\n'
            % (d, port, mail))
chk = subprocess.run(["smtpd", "-n", "-f", conf], capture_output=True, text=True)
t.ok(chk.returncode == 0, "OpenSMTPD accepts its config: " + chk.stderr.strip())
osd = Daemon(["unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount --bind "$1/spool" /var/spool && mount --bind "$1/run" /run'
              ' && exec smtpd -d -f "$1/smtpd.conf"', "sh", d],
             port=port, log=os.path.join(d, "opensmtpd.log"))
dnsport = free_port()
unbound(d, dnsport, ['local-zone: "example." static',
                     'local-data: "osd.example. MX 10 mx.osd.example."',
                     'local-data: "mx.osd.example. A 127.0.0.1"'])
msg = os.path.join(d, "msg")
with open(msg, "w") as f:
    f.write("Subject: to opensmtpd\n\n.leading dot\nlast\n")

out, err, res = driver(drv, ["relay", "-F", "127.0.0.1:%d" % dnsport, "-T",
                             "10000", "-d", "osd.example", "-p", str(port),
                             "-f", "me@courriel.test", "alice@osd.example",
                             "nobody@osd.example"], msg)
r = res.get((1, "alice@osd.example"), ("?", 0, ""))
t.ok(r[0] == "ok" and "mx.osd.example" in r[2] and "accepted" in r[2].lower(),
     "OpenSMTPD took the message via its MX: %r" % (r,))
r = res.get((1, "nobody@osd.example"), ("?", 0, ""))
t.ok(r[0] == "perm" and r[1] == 550, "and refused an unknown user, permanently: %r" % (r,))


def box():
    out = []
    for p in sorted(glob.glob(os.path.join(mail, "Maildir", "new", "*"))):
        with open(p) as f:
            out.append(f.read())
    return out


end = time.time() + 15
while time.time() < end and not box():
    time.sleep(0.05)
msgs = box()
t.ok(msgs and "Subject: to opensmtpd" in msgs[0] and "\n.leading dot\n" in msgs[0],
     "in its Maildir, dot-stuffing undone")
out, err, res = driver(drv, ["send", "-p", str(port), "-T", "10000", "-n", "3",
                             "-f", "me@courriel.test", "alice@osd.example"], msg)
t.ok(all(res.get((k, "alice@osd.example"), ("?",))[0] == "ok" for k in (1, 2, 3)),
     "three messages over one connection")
end = time.time() + 15
while time.time() < end and len(box()) < 4:
    time.sleep(0.05)
t.eq(len(box()), 4, "four messages delivered in all")
