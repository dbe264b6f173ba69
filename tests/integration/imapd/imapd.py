"""imapd with real clients: python imaplib over STARTTLS and implicit TLS
through every command, two sessions seeing each other's changes, IDLE
seeing a delivery, UIDs across a restart, the privilege split read from
/proc, limits and malformed input."""
import base64, imaplib, os, re, socket, ssl, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from common import T, scratch, free_port, wait_port, Daemon, mkcerts, BIN

imaplib.Commands.setdefault("MOVE", ("SELECTED",))
imaplib.Commands.setdefault("IDLE", ("AUTH", "SELECTED"))
imaplib.Commands.setdefault("UNSELECT", ("SELECTED",))
imaplib.Commands["ENABLE"] = ("AUTH", "SELECTED")
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))

t = T()
root = os.geteuid() == 0
d = scratch("imapd.")
mkcerts(os.path.join(d, "certs"))
os.chmod(os.path.join(d, "certs"), 0o755)
mkcerts(os.path.join(d, "certs2"), "other.test")   # another CA: SNI
os.chmod(os.path.join(d, "certs2"), 0o755)
ca = os.path.join(d, "certs", "ca.crt")
UID_A, UID_B = (5001, 5002) if root else (os.getuid(), os.getuid())
GID_A = 5001 if root else os.getgid()
for u, uid in (("alice", UID_A), ("bob", UID_B)):
    os.makedirs(os.path.join(d, u))
    if root:
        os.chown(os.path.join(d, u), uid, uid)
with open(os.path.join(d, "userbase"), "w") as f:
    f.write("alice %d:%d:%s/alice\n" % (UID_A, UID_A, d))
    f.write("bob %d:%d:%s/bob\n" % (UID_B, UID_B, d))


def crypt6(pw):
    return subprocess.run(["openssl", "passwd", "-6", pw], capture_output=True,
                          text=True, check=True).stdout.strip()


with open(os.path.join(d, "passwd"), "w") as f:
    f.write("alice %s\n" % crypt6("alicepw"))
    f.write("bob {SHA512-CRYPT}%s\n" % crypt6("bobpw"))
os.chmod(os.path.join(d, "passwd"), 0o600)
port, tport = free_port(), free_port()
conf = os.path.join(d, "imapd.conf")
with open(conf, "w") as f:
    f.write("""listen = 127.0.0.1:%d
listen_tls = 127.0.0.1:%d
cert = %s/certs/server.crt
key = %s/certs/server.key
sni = other.test %s/certs2/server.crt %s/certs2/server.key
user = nobody
passwd = file:%s/passwd
auth_failure_delay = 1s
max_append = 1M
max_per_address = 20
max_per_user = 3
[users]
userbase = file:%s/userbase
""" % (port, tport, d, d, d, d, d, d))
imapd = os.path.join(BIN, "imapd")
r = subprocess.run([imapd, "-n", "-c", conf], capture_output=True, text=True)
t.eq(r.returncode, 0, "imapd -n accepts the configuration")
daemon = Daemon([imapd, "-F", "-c", conf], port=port,
                log=os.path.join(d, "imapd.log"))
ctx = ssl.create_default_context(cafile=ca)


def typ_of(f, *a):
    """The status of a command, BAD included (imaplib raises on BAD)."""
    try:
        return f(*a)[0]
    except imaplib.IMAP4.error as e:
        return "BAD" if "BAD" in str(e) else "ERROR " + str(e)


def starttls_login(user="alice", pw="alicepw"):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.starttls(ssl_context=ctx)
    m.login(user, pw)
    return m


MSG1 = (b"From: Joe <joe@example.org>\r\nTo: alice@example.org\r\n"
        b"Subject: =?UTF-8?Q?caf=C3=A9?= hello\r\n"
        b"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\nMessage-ID: <1@x>\r\n\r\n"
        b"First body line\r\nneedle in the body\r\n")
MSG2 = (b"From: Ann <ann@example.org>\r\nTo: bob@example.org\r\n"
        b"Subject: multipart\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\npart one\r\n"
        b"--b1\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"c2VjcmV0IHdvcmQ=\r\n--b1--\r\n")

# --- not authenticated -------------------------------------------------
m = imaplib.IMAP4("127.0.0.1", port)
caps = m.capabilities
t.ok("STARTTLS" in caps and "LOGINDISABLED" in caps,
     "plain port offers STARTTLS and disables LOGIN before TLS")
try:
    m.login("alice", "alicepw")
    t.ok(False, "LOGIN before TLS refused")
except imaplib.IMAP4.error as e:
    t.ok("PRIVACYREQUIRED" in str(e) or "disallowed" in str(e),
         "LOGIN before TLS refused")
m.starttls(ssl_context=ctx)
t.ok("AUTH=PLAIN" in m.capabilities, "AUTH=PLAIN after STARTTLS")
start = time.time()
try:
    m.login("alice", "wrong")
    t.ok(False, "wrong password refused")
except imaplib.IMAP4.error as e:
    t.ok("AUTHENTICATIONFAILED" in str(e), "wrong password refused")
t.ok(time.time() - start >= 0.9, "failed login answered after the delay")
try:
    m.login("../etc", "x")
    t.ok(False, "bad user name refused")
except imaplib.IMAP4.error:
    t.ok(True, "bad user name refused")
typ, _ = m.login("alice", "alicepw")
t.eq(typ, "OK", "LOGIN over STARTTLS")
caps = m.capability()[1][0].split()
t.ok(b"UIDPLUS" in caps and b"MOVE" in caps and b"IDLE" in caps
     and b"SPECIAL-USE" in caps and b"STARTTLS" not in caps,
     "capabilities after login")

# --- folders -----------------------------------------------------------
typ, data = m.list()
names = b" ".join(data)
t.ok(all(x in names for x in (b"\\Sent", b"\\Drafts", b"\\Junk", b"\\Trash")),
     "special-use folders created at first login")
typ, data = m.lsub()
t.ok(b"Sent" in b" ".join(data), "special-use folders subscribed")
t.eq(m.create("Work")[0], "OK", "CREATE")
t.eq(m.create("Work.Projets")[0], "OK", "CREATE a child")
t.eq(m.create("Envoy&AOk-s")[0], "OK", "CREATE a modified UTF-7 name")
t.ok(os.path.isdir(os.path.join(d, "alice/Maildir/.Envoy&AOk-s/cur")),
     "Maildir++ folder on disk, name kept in modified UTF-7")
t.eq(m.create("../evil")[0], "NO", "CREATE ../evil refused")
t.eq(m.create("a/b")[0], "NO", "CREATE with / refused")
t.eq(m.create("Work")[0], "NO", "CREATE of an existing folder refused")
typ, data = m.list('""', "Work*")
t.ok(any(b"HasChildren" in x and x.endswith(b"Work") for x in data),
     "LIST shows \\HasChildren")
typ, data = m.list('""', "%")
t.ok(not any(b"Projets" in x for x in data), "LIST % stops at the separator")
t.eq(m.rename("Work", "Travail")[0], "OK", "RENAME")
typ, data = m.list('""', "*")
names = b" ".join(data)
t.ok(b"Travail.Projets" in names and b"Work" not in names,
     "RENAME moves the children")
t.eq(m.subscribe("Travail")[0], "OK", "SUBSCRIBE")
t.ok(b"Travail" in b" ".join(m.lsub('""', "*")[1]), "LSUB lists it")
t.eq(m.unsubscribe("Travail")[0], "OK", "UNSUBSCRIBE")
t.ok(b'"Travail"' not in b" ".join(m.lsub('""', "*")[1]) and
     b" Travail" not in b" ".join(m.lsub('""', "*")[1]), "LSUB no more")
t.eq(m.delete("Travail.Projets")[0], "OK", "DELETE")

# --- append, select, fetch ---------------------------------------------
typ, data = m.append("INBOX", "(\\Seen $Label1)",
                     imaplib.Time2Internaldate(1100000000), MSG1)
t.eq(typ, "OK", "APPEND with flags and date")
mm = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
t.ok(mm is not None, "APPENDUID returned")
uidv = int(mm.group(1)) if mm else 0
typ, data = m.append("INBOX", None, None, MSG2)
t.eq(typ, "OK", "APPEND without flags")
typ, data = m.append("Nowhere", None, None, MSG2)
t.ok(typ == "NO" and b"TRYCREATE" in data[0], "APPEND to a missing folder: TRYCREATE")
typ, data = m.select("INBOX")
t.eq(data[0], b"2", "SELECT: 2 EXISTS")
t.eq(m.untagged_responses.get("UIDVALIDITY", [b"0"])[0], str(uidv).encode(),
     "UIDVALIDITY matches APPENDUID")
typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")
t.ok(b"\\Seen" in data[0] and b"$Label1" in data[0], "FETCH FLAGS with a keyword")
t.ok(b"RFC822.SIZE %d" % len(MSG1) in data[0], "RFC822.SIZE is the CRLF size")
idate = re.search(rb'INTERNALDATE "([^"]+)"', data[0])
t.ok(idate is not None and
     imaplib.Internaldate2tuple(b'INTERNALDATE "' + idate.group(1) + b'"') is not None and
     time.mktime(imaplib.Internaldate2tuple(b'INTERNALDATE "' + idate.group(1) + b'"')) == 1100000000,
     "INTERNALDATE from APPEND (%r)" % (idate and idate.group(1)))
typ, data = m.fetch("1", "(BODY.PEEK[])")
t.eq(data[0][1], MSG1, "BODY[] returns the message byte for byte")
typ, data = m.fetch("2", "(RFC822.SIZE BODY.PEEK[])")
size = int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1))
t.eq(size, len(data[0][1]), "RFC822.SIZE equals the BODY[] length")
typ, data = m.fetch("1", "(ENVELOPE)")
t.ok(b'"Joe" NIL "joe" "example.org"' in data[0] and b'"<1@x>"' in data[0],
     "ENVELOPE")
typ, data = m.fetch("2", "(BODYSTRUCTURE)")
t.ok(b'"mixed"' in data[0] and b'"base64"' in data[0] and
     b'("boundary" "b1")' in data[0], "BODYSTRUCTURE from the MIME parse")
typ, data = m.fetch("2", "(BODY)")
t.ok(b"BODY (" in data[0] and b"boundary" not in data[0], "BODY (no extensions)")
typ, data = m.fetch("2", "(BODY.PEEK[2] BODY.PEEK[1.MIME] BODY.PEEK[HEADER.FIELDS (Subject From)])")
flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
t.ok(b"c2VjcmV0IHdvcmQ=" in flat, "BODY[2]")
t.ok(b"Content-Type: text/plain; charset=utf-8\r\n\r\n" in flat, "BODY[1.MIME]")
t.ok(b"Subject: multipart\r\nFrom: Ann <ann@example.org>\r\n\r\n" in flat or
     b"From: Ann <ann@example.org>\r\nSubject: multipart\r\n\r\n" in flat,
     "BODY[HEADER.FIELDS]")
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject Date To Message-ID)] BODY.PEEK[TEXT]<6.4>)")
flat = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data)
t.ok(b"{31}From: Joe <joe@example.org>\r\n\r\n" in flat, "HEADER.FIELDS.NOT (%r)" % flat)
t.ok(b"BODY[TEXT]<6> {4}" in flat and b"body" in flat, "partial fetch <6.4>")
typ, h1 = m.fetch("1:*", "(BODY.PEEK[HEADER])")
typ, h2 = m.fetch("1:*", "(BODY.PEEK[HEADER])")
t.ok(h1 == h2 and h1[0][1].startswith(b"From: Joe") and
     os.path.exists(os.path.join(d, "alice/Maildir/courriel.cache")),
     "headers served again from courriel.cache are the same")
typ, data = m.fetch("2", "(RFC822.HEADER)")
t.ok(data[0][1].endswith(b"\r\n\r\n") and b"Subject: multipart" in data[0][1],
     "RFC822.HEADER")
typ, data = m.fetch("2", "(FLAGS)")
t.ok(b"\\Seen" not in data[0], "PEEK leaves \\Seen unset")
typ, data = m.fetch("2", "(BODY[TEXT])")
typ, data = m.fetch("2", "(FLAGS)")
t.ok(b"\\Seen" in data[0], "BODY[TEXT] sets \\Seen")
typ, data = m.fetch("1", "(RFC822)")
t.eq(data[0][1], MSG1, "RFC822")
t.eq(typ_of(m.fetch, "9", "(FLAGS)"), "BAD", "FETCH of a message that does not exist: BAD")
t.eq(typ_of(m.fetch, "1", "(FROB)"), "BAD", "FETCH of an unknown item: BAD")

# --- store, search -----------------------------------------------------
typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
t.ok(b"\\Flagged" in data[0], "STORE +FLAGS")
typ, data = m.store("1", "-FLAGS.SILENT", "(\\Seen)")
t.ok(typ == "OK" and data == [None], "STORE -FLAGS.SILENT says nothing")
typ, data = m.store("2", "FLAGS", "(\\Answered Junk)")
t.ok(b"\\Answered" in data[0] and b"Junk" in data[0], "STORE FLAGS replaces")
names = os.listdir(os.path.join(d, "alice/Maildir/cur"))
t.ok(any(n.endswith(":2,FS") or re.search(r":2,F[a-z]*$", n) for n in names) and
     any(re.search(r":2,R[a-z]+$", n) for n in names),
     "flags are in the file names (:2,FLAGS, keywords as letters)")


def search(*keys, uid=False):
    if uid:
        typ, data = m.uid("SEARCH", *keys)
    else:
        typ, data = m.search(None, *keys)
    return typ, data[0].split() if typ == "OK" else data


t.eq(search("ALL")[1], [b"1", b"2"], "SEARCH ALL")
t.eq(search("FLAGGED")[1], [b"1"], "SEARCH FLAGGED")
t.eq(search("UNSEEN")[1], [b"1", b"2"], "SEARCH UNSEEN")
t.eq(search("FROM", "ann")[1], [b"2"], "SEARCH FROM")
t.eq(search("SUBJECT", "café")[1] if False else
     m.search("UTF-8", "SUBJECT", '"caf\xe9"'.encode("utf-8"))[1][0].split(),
     [b"1"], "SEARCH SUBJECT decodes RFC 2047")
t.eq(m.search("UTF-8", "SUBJECT", '"CAF\xc9"'.encode("utf-8"))[1][0].split(),
     [b"1"], "SEARCH folds accented capitals (CAFÉ finds café)")
t.eq(search("BODY", "needle")[1], [b"1"], "SEARCH BODY")
t.eq(search("BODY", "secret")[1], [b"2"], "SEARCH BODY in a base64 part")
t.eq(search("TEXT", "joe@example")[1], [b"1"], "SEARCH TEXT sees headers")
t.eq(search("HEADER", "Message-ID", "1@x")[1], [b"1"], "SEARCH HEADER")
t.eq(search("OR", "FROM", "joe", "FROM", "ann")[1], [b"1", b"2"], "SEARCH OR")
t.eq(search("NOT", "FROM", "joe")[1], [b"2"], "SEARCH NOT")
t.eq(search("LARGER", str(len(MSG1)))[1], [b"2"] if len(MSG2) > len(MSG1) else [],
     "SEARCH LARGER")
t.eq(search("SENTON", "1-Jul-2003")[1], [b"1"], "SEARCH SENTON")
t.eq(search("SENTBEFORE", "1-Jan-2004")[1], [b"1"], "SEARCH SENTBEFORE")
t.eq(search("SINCE", "1-Jan-2000")[1], [b"1", b"2"], "SEARCH SINCE")
t.eq(search("BEFORE", "1-Jan-2000")[1], [], "SEARCH BEFORE")
t.eq(search("KEYWORD", "Junk")[1], [b"2"], "SEARCH KEYWORD")
t.eq(search("2:*", "(ANSWERED)")[1], [b"2"], "SEARCH sequence set and list")
typ, uids = search("ALL", uid=True)
t.eq(len(uids), 2, "UID SEARCH")
t.eq(m.search("KOI8-R", "ALL")[0], "NO", "SEARCH with an unknown charset: NO")
t.eq(typ_of(m.search, None, "FROB"), "BAD", "SEARCH with a bad key: BAD")

# --- copy, move, uid commands, expunge --------------------------------
typ, data = m.copy("1:2", "Sent")
t.ok(typ == "OK" and b"COPYUID" in data[0], "COPY with COPYUID")
typ, data = m.uid("COPY", uids[0].decode(), "Trash")
t.eq(typ, "OK", "UID COPY")
typ, data = m.uid("FETCH", uids[1].decode(), "(UID RFC822.SIZE)")
t.ok(b"UID " + uids[1] in data[0], "UID FETCH")
typ, data = m.uid("STORE", uids[1].decode(), "+FLAGS", "(\\Deleted)")
t.ok(b"\\Deleted" in data[0], "UID STORE")
typ, data = m._simple_command("MOVE", "1", "Junk")
t.eq(typ, "OK", "MOVE")
t.ok(m.untagged_responses.get("EXPUNGE") == [b"1"], "MOVE expunges the source")
typ, data = m.select("INBOX")
t.eq(data[0], b"1", "one message left after MOVE")
typ, data = m.expunge()
t.eq(data, [b"1"], "EXPUNGE removes the \\Deleted message")
typ, data = m.status("Sent", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY RECENT)")
t.ok(b"MESSAGES 2" in data[0] and b"UIDNEXT 3" in data[0], "STATUS")
t.eq(m.status("Nope", "(MESSAGES)")[0], "NO", "STATUS of a missing folder: NO")
m.select("Sent")
m.store("1", "+FLAGS", "(\\Deleted)")
typ, data = m.uid("EXPUNGE", "999")
t.eq(typ, "OK", "UID EXPUNGE")
t.eq(m.search(None, "ALL")[1][0].split(), [b"1", b"2"], "UID EXPUNGE spares other UIDs")
t.eq(m._simple_command("UNSELECT")[0], "OK", "UNSELECT")
t.eq(m.select("Sent", readonly=True)[0], "OK", "EXAMINE")
t.eq(m.store("2", "+FLAGS", "(\\Seen)")[0], "NO", "STORE in EXAMINE: NO")
m.close()
m.select("Sent")
t.eq(m.close()[0], "OK", "CLOSE expunges")
t.eq(m.status("Sent", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 1)"), True,
     "CLOSE removed the \\Deleted message")
t.eq(m.check()[0] if m.select("INBOX")[0] == "OK" else "NO", "OK", "CHECK")
typ, data = m.namespace()
t.ok(b'(("" "."))' in data[0], "NAMESPACE")
typ, data = m._simple_command("ID", "NIL")
t.eq(typ, "OK", "ID")
typ, data = m._simple_command("ENABLE", "CONDSTORE")
t.eq(typ, "OK", "ENABLE")
t.eq(m.noop()[0], "OK", "NOOP")
t.eq(m.logout()[0], "BYE", "LOGOUT")

# --- implicit TLS, AUTHENTICATE PLAIN -----------------------------------
m = imaplib.IMAP4_SSL("127.0.0.1", tport, ssl_context=ctx)
typ, _ = m.authenticate("PLAIN", lambda _: b"bob\0bob\0bobpw")
t.eq(typ, "OK", "AUTHENTICATE PLAIN with authzid = user over implicit TLS "
     "({SHA512-CRYPT} hash)")
m.logout()
m = imaplib.IMAP4_SSL("127.0.0.1", tport, ssl_context=ctx)
try:
    m.authenticate("PLAIN", lambda _: b"alice\0bob\0bobpw")
    t.ok(False, "AUTHENTICATE PLAIN with another authzid refused")
except imaplib.IMAP4.error:
    t.ok(True, "AUTHENTICATE PLAIN with another authzid refused")
m.logout()
# SASL-IR by hand
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tport)),
                    server_hostname="localhost")
s.recv(4096)
s.sendall(b"a AUTHENTICATE PLAIN " + base64.b64encode(b"\0alice\0alicepw") + b"\r\n")
resp = b""
while b"a " not in resp:
    resp += s.recv(4096)
t.ok(b"a OK" in resp, "SASL-IR (initial response on the command line)")
s.close()

# --- SNI on both kinds of listener ---------------------------------------
ctx2 = ssl.create_default_context(cafile=os.path.join(d, "certs2", "ca.crt"))
s = ctx2.wrap_socket(socket.create_connection(("127.0.0.1", tport)),
                     server_hostname="other.test")
t.ok(s.recv(100).startswith(b"* OK"), "IMAPS: SNI other.test gets its own certificate")
s.close()
m = imaplib.IMAP4("127.0.0.1", port)
try:
    m.starttls(ssl_context=ctx2)
    t.ok(False, "without that name, the default certificate (other CA)")
except ssl.SSLError:
    t.ok(True, "without that name, the default certificate (other CA)")
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
f.readline()
s.sendall(b"a STARTTLS\r\n")
f.readline()
s = ctx2.wrap_socket(s, server_hostname="other.test")
s.sendall(b"b NOOP\r\n")
t.ok(s.recv(100).startswith(b"b OK"), "STARTTLS: SNI other.test gets its own certificate")
s.close()

# STARTTLS command injection (CVE-2011-0411): what follows STARTTLS in the
# same packet is dropped, not run after the handshake.
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
f.readline()
s.sendall(b"a STARTTLS\r\nb LOGIN alice alicepw\r\n")
f.readline()
s = ctx.wrap_socket(s, server_hostname="localhost")
s.sendall(b"c NOOP\r\n")
s.settimeout(5)
got = b""
while b"c " not in got:
    got += s.recv(4096)
t.ok(got.startswith(b"c OK"), "plaintext sent after STARTTLS is discarded (%r)" % got[:40])
s.close()

# --- malformed input and limits ----------------------------------------


def raw_session(lines, tls=True):
    s = socket.create_connection(("127.0.0.1", tport if tls else port), 10)
    if tls:
        s = ctx.wrap_socket(s, server_hostname="localhost")
    f = s.makefile("rb")
    f.readline()
    out = []
    for ln, until in lines:
        s.sendall(ln)
        while True:
            x = f.readline()
            out.append(x)
            if not x or x.startswith(until):
                break
    s.close()
    return b"".join(out)


out = raw_session([(b"a LOGIN alice alicepw\r\n", b"a "),
                   (b"b SELECT INBOX\r\n", b"b "),
                   (b"c FETCH 1 (" + b"(" * 50 + b")" * 50 + b")\r\n", b"c "),
                   (b"d NOOP\r\n", b"d "),
                   (b"e APPEND INBOX {99999999}\r\n", b"e "),
                   (b"f FETCH 1 (FLAGS\r\n", b"f "),
                   (b"\x01\x02 garbage\r\n", b"* "),
                   (b"g SELECT ../../etc\r\n", b"g "),
                   (b"h APPEND INBOX {5+}\r\nHello\r\n", b"h "),
                   (b"i LOGOUT\r\n", b"i ")])
t.ok(b"c BAD" in out, "lists nested too deep: BAD")
t.ok(b"d OK" in out, "session goes on after BAD")
t.ok(b"e NO [TOOBIG]" in out, "literal over max_append: NO [TOOBIG]")
t.ok(b"f BAD" in out, "unbalanced parenthesis: BAD")
t.ok(b"g NO" in out, "mailbox name leaving the Maildir refused")
t.ok(b"h OK [APPENDUID" in out, "non-synchronizing literal (LITERAL+)")
t.ok(b"i OK" in out, "still serving after all that")

# --- two sessions ----------------------------------------------------------
a = starttls_login()
b = starttls_login()
a.select("INBOX")
b.select("INBOX")
n = int(a.select("INBOX")[1][0])
b.store("1", "+FLAGS", "(\\Flagged)")
a.noop()
fl = a.untagged_responses.get("FETCH", [])
t.ok(any(b"\\Flagged" in x for x in fl), "session A sees B's flag change")
b.store(str(n), "+FLAGS", "(\\Deleted)")
b.expunge()
a.noop()
t.ok(a.untagged_responses.get("EXPUNGE") == [str(n).encode()],
     "session A sees B's expunge")
b.append("INBOX", None, None, MSG1)
a.noop()
t.ok(a.untagged_responses.get("EXISTS", [None])[-1] == str(n).encode(),
     "session A sees B's APPEND as EXISTS (%r)" % a.untagged_responses.get("EXISTS"))
a.logout()
b.logout()

# --- connections per user ------------------------------------------------------
held = [starttls_login() for _ in range(3)]
try:
    starttls_login()
    t.ok(False, "a 4th connection of alice refused (max_per_user = 3)")
except imaplib.IMAP4.error as e:
    t.ok("LIMIT" in str(e), "a 4th connection of alice refused (max_per_user = 3)")
x = starttls_login("bob", "bobpw")
t.ok(x.noop()[0] == "OK", "bob still logs in")
x.logout()
for x in held:
    x.logout()
# The sessions end just after their BYE: wait for that, not a fixed time.
x, end = None, time.time() + 5
while x is None and time.time() < end:
    try:
        x = starttls_login()
    except imaplib.IMAP4.error:
        time.sleep(0.05)
t.ok(x is not None and x.noop()[0] == "OK", "alice logs in again once her sessions ended")
if x:
    x.logout()

# --- privileges -------------------------------------------------------------


def proc_status(pid):
    st = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                st[k] = v.split()
    except OSError:
        pass
    return st


def descendants(pid):
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True,
                         text=True).stdout.split("\n")
    kids = {}
    for line in out:
        if line.strip():
            p, pp = map(int, line.split())
            kids.setdefault(pp, []).append(p)
    res, todo = [], [pid]
    while todo:
        x = todo.pop()
        for k in kids.get(x, []):
            res.append(k)
            todo.append(k)
    return res


if root:
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    c = imaplib.IMAP4("127.0.0.1", port)
    c.starttls(ssl_context=ctx)   # done by the pre-login process, so it exists
    uids = [proc_status(p).get("Uid", ["?"])[0] for p in descendants(daemon.p.pid)]
    t.ok(str(nobody) in uids, "before login a process runs as nobody (%s)" % uids)
    for p in descendants(daemon.p.pid):
        if proc_status(p).get("Uid", ["?"])[0] == str(nobody):
            with open("/proc/%d/environ" % p, "rb") as f:
                t.ok(b"PATH" not in f.read(),
                     "the pre-login process wiped its environment")
    c.login("alice", "alicepw")
    c.select("INBOX")
    pids = descendants(daemon.p.pid)
    sess = [p for p in pids if proc_status(p).get("Uid", ["?"])[0] == str(UID_A)]
    t.ok(len(sess) == 1, "after login the session runs as the mail user")
    if sess:
        st = proc_status(sess[0])
        t.ok(st["Uid"] == [str(UID_A)] * 4 and st["Gid"][0] == str(GID_A),
             "session uid/gid (real, effective, saved, fs): %s" % st["Uid"])
        t.ok(st.get("CapEff", ["1"])[0].strip("0") == "", "session has no capabilities")
        r = subprocess.run(["setpriv", "--reuid=%d" % UID_A, "--regid=%d" % UID_A,
                            "--clear-groups", "cat", os.path.join(d, "certs/server.key")],
                           capture_output=True)
        t.ok(r.returncode != 0, "the mail user cannot read the TLS key")
        r = subprocess.run(["setpriv", "--reuid=%d" % UID_A, "--regid=%d" % UID_A,
                            "--clear-groups", "cat", os.path.join(d, "passwd")],
                           capture_output=True)
        t.ok(r.returncode != 0, "the mail user cannot read the passwd table")
        t.eq(st.get("NoNewPrivs"), ["1"], "the session cannot gain privileges")
        with open("/proc/%d/environ" % sess[0], "rb") as f:
            env = f.read()
        t.ok(b"IMAP" not in env and b"PATH" not in env,
             "the session wiped the environment it was forked with")
    pre = [p for p in pids if proc_status(p).get("Uid", ["?"])[0] == str(nobody)
           and sess and proc_status(p).get("PPid", ["?"])[0] == str(sess[0])]
    t.ok(len(pre) == 1, "the session's TLS proxy is its pre-login process, unprivileged")
    c.logout()
    owners = set()
    for dp, dn, fn in os.walk(os.path.join(d, "alice")):
        for x in dn + fn:
            owners.add(os.lstat(os.path.join(dp, x)).st_uid)
    t.eq(owners, {UID_A}, "every file in the Maildir belongs to the mail user")

# --- IDLE sees a delivery -----------------------------------------------------
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", tport), 10),
                    server_hostname="localhost")
f = s.makefile("rb")
f.readline()
for cmd, tag in ((b"a LOGIN alice alicepw\r\n", b"a "), (b"b SELECT INBOX\r\n", b"b ")):
    s.sendall(cmd)
    while not f.readline().startswith(tag):
        pass
s.sendall(b"c IDLE\r\n")
t.ok(f.readline().startswith(b"+"), "IDLE continuation")
lda = os.path.join(BIN, "lda")
maildir = os.path.join(d, "alice/Maildir")
start = time.time()
if os.path.exists(lda):
    # The real delivery agent, as smtpd-lite or fetch run it.
    with open(os.path.join(d, "lda.conf"), "w") as g:
        g.write("[users]\nuserbase = file:%s/userbase\n" % d)
    r = subprocess.run([lda, "-c", os.path.join(d, "lda.conf"), "-d", "alice"],
                       input=MSG1.replace(b"\r\n", b"\n"), capture_output=True)
    t.eq(r.returncode, 0, "lda delivered (%s)" % r.stderr.decode().strip())
else:
    # A delivery as lda makes it: tmp/ then into new/.
    name = "%d.M1P%d.test,S=%d,W=%d" % (time.time(), os.getpid(),
                                        len(MSG1.replace(b"\r\n", b"\n")), len(MSG1))
    with open(os.path.join(maildir, "tmp", name), "wb") as g:
        g.write(MSG1.replace(b"\r\n", b"\n"))
    if root:
        os.chown(os.path.join(maildir, "tmp", name), UID_A, UID_A)
    os.rename(os.path.join(maildir, "tmp", name), os.path.join(maildir, "new", name))
start = time.time()   # the delivery is done: from here, a second at most
s.settimeout(3)
line = b""
try:
    line = f.readline()
except OSError:
    pass
t.ok(line.endswith(b"EXISTS\r\n") and time.time() - start < 1.0,
     "IDLE reports the delivery within a second (%r, %.2fs)" % (line, time.time() - start))
s.sendall(b"DONE\r\n")
while True:
    x = f.readline()
    if not x or x.startswith(b"c "):
        break
t.ok(x.startswith(b"c OK"), "DONE ends IDLE")
s.close()

# --- lda's W= counts every LF: a CR kept before one (a "\r\r\n" sent to lda)
disk = b"Subject: cr\n\nline\r\nend\n"
name = "1750000000.M9P9.test,S=%d,W=%d:2,S" % (len(disk), len(disk) + disk.count(b"\n"))
with open(os.path.join(d, "alice/Maildir/cur", name), "wb") as g:
    g.write(disk)
if root:
    os.chown(os.path.join(d, "alice/Maildir/cur", name), UID_A, UID_A)
m = starttls_login()
m.select("INBOX")
typ, data = m.uid("SEARCH", "HEADER", "Subject", "cr")
typ, data = m.uid("FETCH", data[0].split()[-1].decode(), "(RFC822.SIZE BODY.PEEK[])")
t.eq(int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1)), len(data[0][1]),
     "RFC822.SIZE from lda's W= equals what BODY[] sends, CR before LF included")
m.logout()

# --- a COPY that fails leaves the target as it was (RFC 3501 6.4.7) -----------
m = starttls_login()
m.create("Src")
m.create("Dst")
for i in range(3):
    m.append("Src", None, None, b"Subject: c%d\r\n\r\nx\r\n" % i)
src_dir = os.path.join(d, "alice/Maildir/.Src/cur")
victim = sorted(os.listdir(src_dir))[-1]
os.chmod(os.path.join(src_dir, victim), 0)
m.select("Src")
typ, data = m.copy("1:3", "Dst")
t.eq(typ, "NO", "COPY of an unreadable message fails")
t.ok(m.status("Dst", "(MESSAGES)")[1][0].endswith(b"(MESSAGES 0)"),
     "and the messages copied before it are taken back")
os.chmod(os.path.join(src_dir, victim), 0o600)
t.eq(m.copy("1:3", "Dst")[0], "OK", "COPY succeeds once it is readable")
m.logout()

# --- UIDs across a restart and a file behind our back -------------------------
m = starttls_login()
m.select("INBOX")
before = m.uid("SEARCH", "ALL")[1][0].split()
uidv1 = m.untagged_responses["UIDVALIDITY"][0]
m.logout()
daemon.stop()
daemon = Daemon([imapd, "-F", "-c", conf], port=port, log=os.path.join(d, "imapd2.log"))
with open(os.path.join(maildir, "cur", "1234.behind.test:2,S"), "wb") as g:
    g.write(b"Subject: behind\n\nx\n")
if root:
    os.chown(os.path.join(maildir, "cur", "1234.behind.test:2,S"), UID_A, UID_A)
m = starttls_login()
m.select("INBOX")
after = m.uid("SEARCH", "ALL")[1][0].split()
t.eq(after[:len(before)], before, "UIDs stable across a restart")
t.eq(m.untagged_responses["UIDVALIDITY"][0], uidv1, "UIDVALIDITY kept")
t.ok(len(after) == len(before) + 1 and int(after[-1]) > int(before[-1]),
     "a file put there behind imapd's back gets a new, higher UID")
typ, data = m.uid("FETCH", after[-1].decode(), "(RFC822.SIZE BODY.PEEK[])")
t.eq(int(re.search(rb"RFC822.SIZE (\d+)", data[0][0]).group(1)), len(data[0][1]),
     "size computed for a file without W=")
m.logout()
with open(os.path.join(maildir, "dovecot-uidlist")) as g:
    hdr = g.readline()
t.ok(re.match(r"3 V\d+ N\d+ G[0-9a-f]{32}", hdr) is not None,
     "UIDs in Dovecot's dovecot-uidlist format")
log = daemon.log() + open(os.path.join(d, "imapd.log")).read()
t.ok("alicepw" not in log and "bobpw" not in log, "no password in the logs")
t.ok(re.search(r"logout user=alice fetched=\d+", log) is not None,
     "one log line per logout, with counts")
