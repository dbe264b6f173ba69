"""A scripted SMTP server for the relay tests (not a test itself).

python3 _smtpserver.py --port P [--addr A] --log FILE [options]: serves
sessions one after the other, appends one JSON line per event to FILE:
  {"ev": "session", "n": k}            a connection
  {"ev": "tls"}                        after a successful STARTTLS/smtps
  {"ev": "auth", "user": u, "ok": b}
  {"ev": "message", "mail": "...", "rcpts": [...], "data": "<latin-1>",
   "tls": b, "auth": u, "pipelined": b}
  {"ev": "cmd", "line": "..."}         every command line
Recipients whose local part starts with "temp" get 451, with "perm" 550.
"""
import argparse, base64, json, os, select, socket, ssl, sys

ap = argparse.ArgumentParser()
ap.add_argument("--addr", default="127.0.0.1")
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--cert"); ap.add_argument("--key")
ap.add_argument("--starttls", action="store_true")
ap.add_argument("--smtps", action="store_true")
ap.add_argument("--auth", help="user:pass")
ap.add_argument("--mechs", default="PLAIN LOGIN")
ap.add_argument("--inject", action="store_true",
                help="send a fake reply right after 220 to STARTTLS")
ap.add_argument("--badtls", action="store_true",
                help="offer STARTTLS, say 220, then send garbage")
ap.add_argument("--greet", default="220 scripted ESMTP")
ap.add_argument("--noehlo", action="store_true")
ap.add_argument("--nopipelining", action="store_true")
ap.add_argument("--size", type=int, default=0)
ap.add_argument("--rcpt-limit", type=int, default=0)
ap.add_argument("--data-reply", default="250 2.0.0 queued")
ap.add_argument("--silent", action="store_true", help="never greet")
ap.add_argument("--badreply", help="raw bytes sent as the EHLO reply")
ap.add_argument("--smtputf8", action="store_true")
ap.add_argument("--dropdata", action="store_true",
                help="close the connection when the data has arrived")
a = ap.parse_args()


def log(**kw):
    with open(a.log, "a") as f:
        f.write(json.dumps(kw) + "\n")


class Conn:
    def __init__(self, s):
        self.s = s
        self.buf = b""

    def send(self, text):
        self.s.sendall(text.encode("latin-1"))

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("latin-1")

    def pending(self):
        if self.buf:
            return True
        r, _, _ = select.select([self.s], [], [], 0.05)
        return bool(r)


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.load_cert_chain(a.cert, a.key)
    return c


def session(c, n):
    log(ev="session", n=n)
    tls = a.smtps
    user = None
    if a.silent:
        c.s.recv(1)   # wait for the client to give up
        return
    c.send(a.greet + "\r\n")
    if not a.greet.startswith("220"):
        pass
    mail, rcpts = None, []
    while True:
        ln = c.line()
        log(ev="cmd", line=ln)
        u = ln.upper()
        if u.startswith("EHLO"):
            if a.noehlo:
                c.send("502 5.5.1 no EHLO here\r\n")
                continue
            if a.badreply:
                c.s.sendall(a.badreply.encode("latin-1").decode(
                    "unicode_escape").encode("latin-1"))
                continue
            caps = ["scripted"]
            if not a.nopipelining:
                caps.append("PIPELINING")
            caps.append("8BITMIME")
            if a.smtputf8:
                caps.append("SMTPUTF8")
            if a.size:
                caps.append("SIZE %d" % a.size)
            else:
                caps.append("SIZE")
            if (a.starttls or a.badtls) and not tls:
                caps.append("STARTTLS")
            if a.auth and (tls or not (a.starttls or a.smtps)):
                caps.append("AUTH " + a.mechs)
            out = "".join("250-%s\r\n" % x for x in caps[:-1])
            c.send(out + "250 %s\r\n" % caps[-1])
        elif u.startswith("HELO"):
            c.send("250 hello\r\n")
        elif u == "STARTTLS":
            if a.badtls:
                c.send("220 go ahead\r\n")
                c.s.sendall(b"this is not TLS\r\n" * 4)
                c.s.close()
                return
            c.send("220 2.0.0 go ahead\r\n" +
                   ("250 injected plaintext\r\n" if a.inject else ""))
            c.buf = b""
            c.s = ctx().wrap_socket(c.s, server_side=True)
            tls = True
            log(ev="tls")
        elif u.startswith("AUTH"):
            parts = ln.split()
            want_user, want_pass = a.auth.split(":", 1)
            if parts[1].upper() == "PLAIN":
                if len(parts) > 2:
                    blob = parts[2]
                else:
                    c.send("334 \r\n")
                    blob = c.line()
                _, u1, p1 = base64.b64decode(blob).decode().split("\0")
            else:
                c.send("334 VXNlcm5hbWU6\r\n")
                u1 = base64.b64decode(c.line()).decode()
                c.send("334 UGFzc3dvcmQ6\r\n")
                p1 = base64.b64decode(c.line()).decode()
            ok = (u1, p1) == (want_user, want_pass)
            log(ev="auth", user=u1, ok=ok, tls=tls)
            if ok:
                user = u1
                c.send("235 2.7.0 ok\r\n")
            else:
                c.send("535 5.7.8 bad credentials\r\n")
        elif u.startswith("MAIL FROM:"):
            pipelined = c.pending()
            mail, rcpts = ln[10:], []
            c.send("250 2.1.0 ok\r\n")
        elif u.startswith("RCPT TO:"):
            addr = ln[8:].strip("<>")
            if a.rcpt_limit and len(rcpts) >= a.rcpt_limit:
                c.send("452 4.5.3 too many recipients\r\n")
            elif addr.startswith("temp"):
                c.send("451 4.3.0 try again later, %s\r\n" % addr)
            elif addr.startswith("perm"):
                c.send("550 5.1.1 <%s>: no such user\r\n" % addr)
            else:
                rcpts.append(addr)
                c.send("250 2.1.5 ok\r\n")
        elif u == "DATA":
            if not rcpts:
                c.send("554 5.5.1 no valid recipients\r\n")
                continue
            c.send("354 go on\r\n")
            data = b""
            while True:
                while b"\r\n.\r\n" not in b"\r\n" + data:
                    if c.buf:
                        data += c.buf
                        c.buf = b""
                    else:
                        d = c.s.recv(65536)
                        if not d:
                            raise EOFError
                        data += d
                i = (b"\r\n" + data).index(b"\r\n.\r\n")
                c.buf = data[i + 3:]
                data = data[:i]
                break
            if a.dropdata:
                log(ev="dropped")
                c.s.close()
                return
            log(ev="message", mail=mail, rcpts=rcpts, tls=tls, auth=user,
                pipelined=pipelined, data=data.decode("latin-1"))
            c.send(a.data_reply + "\r\n")
            mail, rcpts = None, []
        elif u == "RSET":
            mail, rcpts = None, []
            c.send("250 2.0.0 ok\r\n")
        elif u == "QUIT":
            c.send("221 2.0.0 bye\r\n")
            return
        else:
            c.send("500 5.5.2 what?\r\n")


srv = socket.socket(socket.AF_INET6 if ":" in a.addr else socket.AF_INET)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((a.addr, a.port))
srv.listen(8)
n = 0
while True:
    s, _ = srv.accept()
    n += 1
    try:
        if a.smtps:
            s = ctx().wrap_socket(s, server_side=True)
            log(ev="tls")
        session(Conn(s), n)
    except (EOFError, OSError, ssl.SSLError, ValueError) as e:
        log(ev="error", what=str(e))
    finally:
        try:
            s.close()
        except OSError:
            pass
