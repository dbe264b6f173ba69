"""lda killed with SIGKILL at random points of a delivery, many times:
every delivery that exited 0 is in the Maildir exactly once, nothing
half-written is ever visible in new/ or cur/, and a later delivery still
works. Then an unwritable Maildir and a full file system (a small tmpfs,
as root) give exit 75 and leave nothing in new/."""
import os, random, signal, subprocess, time
from _crash import T, scratch, BIN, ROOT, UID, GID, make_home, message, scan

t = T()
d = scratch("crash-lda.")
home = make_home(d, "alice")
md = os.path.join(home, "Maildir")
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s\n" % (UID, GID, home))
conf = os.path.join(d, "lda.conf")
with open(conf, "w") as f:
    f.write("[users]\nuserbase = file:%s/userbase\n" % d)
LDA = [os.path.join(BIN, "lda"), "-c", conf, "-d", "alice"]
rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
acked, tried = set(), set()
N = 50
t0 = time.time()
for i in range(N):
    tok = "lda-%d" % i
    tried.add(tok)
    data = message(tok, rng.choice((500, 50000, 400000)))
    p = subprocess.Popen(LDA, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    delay = rng.uniform(0, 0.02)
    try:
        # write in pieces so the kill can land while the message is read
        for k in range(0, len(data), 65536):
            p.stdin.write(data[k:k + 65536])
            if k == 0 and rng.random() < 0.5:
                time.sleep(delay)
                p.send_signal(signal.SIGKILL)
        p.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    if rng.random() < 0.5:
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
    rc = p.wait()
    if rc == 0:
        acked.add(tok)
counts, partial = scan(md)
t.ok(len(acked) > 5 and len(acked) < N, "lda killed at random: %d of %d deliveries "
     "acknowledged (exit 0) in %.1f s" % (len(acked), N, time.time() - t0))
t.eq(sorted(tok for tok in acked if counts.get(tok) != 1), [],
     "every acknowledged delivery is in the Maildir exactly once")
t.eq(sorted(tok for tok, c in counts.items() if c > 1), [], "no message twice")
t.eq(partial, [], "nothing half-written in new/ or cur/")
t.eq(sorted(set(counts) - tried), [], "nothing foreign in the Maildir")
r = subprocess.run(LDA, input=message("after"), capture_output=True)
t.ok(r.returncode == 0 and scan(md)[0].get("after") == 1,
     "after the kills lda still delivers (tmp/ leftovers do not get in the way)")

# unwritable Maildir: temporary failure, nothing in new/
os.chmod(os.path.join(md, "tmp"), 0o500)
before = scan(md)[0]
r = subprocess.run(LDA, input=message("ro"), capture_output=True)
t.eq(r.returncode, 75, "unwritable Maildir tmp/: exit 75 (%s)" % r.stderr.decode().strip())
t.ok(scan(md)[0] == before, "unwritable Maildir: nothing delivered")
os.chmod(os.path.join(md, "tmp"), 0o700)
os.chmod(os.path.join(md, "new"), 0o500)
r = subprocess.run(LDA, input=message("ro2"), capture_output=True)
t.eq(r.returncode, 75, "unwritable Maildir new/: exit 75 (%s)" % r.stderr.decode().strip())
t.ok(scan(md)[0] == before, "unwritable new/: nothing delivered")
t.eq([n for n in os.listdir(os.path.join(md, "tmp")) if "ro2" in n], [],
     "unwritable new/: the temp file was removed")
os.chmod(os.path.join(md, "new"), 0o700)

# full file system
if not ROOT:
    print("ok - skipped: a tmpfs needs root")
else:
    full = os.path.join(d, "full")
    os.makedirs(full)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", full],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("ok - skipped: cannot mount a tmpfs (%s)" % r.stderr.strip())
    else:
        try:
            fhome = make_home(full, "bob")
            fmd = os.path.join(fhome, "Maildir")
            with open(os.path.join(d, "userbase2"), "w") as f:
                f.write("bob %d:%d:%s\n" % (UID, GID, fhome))
            with open(os.path.join(d, "lda2.conf"), "w") as f:
                f.write("[users]\nuserbase = file:%s/userbase2\n" % d)
            L2 = [os.path.join(BIN, "lda"), "-c", os.path.join(d, "lda2.conf"), "-d", "bob"]
            r = subprocess.run(L2, input=message("small"), capture_output=True)
            t.eq(r.returncode, 0, "tmpfs Maildir: a small message fits")
            r = subprocess.run(L2, input=message("huge", 600000), capture_output=True)
            t.eq(r.returncode, 75, "full file system: exit 75 (%s)" %
                 r.stderr.decode().strip()[:100])
            c, p = scan(fmd)
            t.ok(c == {"small": 1} and p == [], "full file system: nothing half-written, "
                 "the earlier message intact")
            t.eq(os.listdir(os.path.join(fmd, "tmp")), [], "full file system: tmp/ cleaned")
            r = subprocess.run(L2, input=message("small2"), capture_output=True)
            t.eq(r.returncode, 0, "full file system: space back, delivery works again")
        finally:
            subprocess.run(["umount", full])
