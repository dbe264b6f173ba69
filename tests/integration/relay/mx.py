"""lib/dns against a private unbound with a test zone: MX order, ties,
implicit MX, null MX, NXDOMAIN, SERVFAIL, timeouts, bounds."""
import os, time
from _relay import T, scratch, free_port, build_driver, driver, unbound

t = T()
d = scratch()
drv = build_driver(d)
port = free_port()
many = ['"many.example. MX %d m%02d.many.example."' % (i, i) for i in range(15)]
many += ['"m%02d.many.example. A 127.0.1.%d"' % (i, i) for i in range(15)]
unbound(d, port, ["local-zone: \"example.\" static"] + ["local-data: " + z for z in [
    '"multi.example. MX 20 up.multi.example."',
    '"multi.example. MX 10 down.multi.example."',
    '"down.multi.example. A 127.0.0.2"',
    '"up.multi.example. A 127.0.0.3"',
    '"up.multi.example. AAAA ::1"',
    '"ties.example. MX 5 first.ties.example."',
    '"ties.example. MX 10 a.ties.example."',
    '"ties.example. MX 10 b.ties.example."',
    '"ties.example. MX 10 c.ties.example."',
    '"first.ties.example. A 127.0.0.5"',
    '"a.ties.example. A 127.0.0.6"',
    '"b.ties.example. A 127.0.0.7"',
    '"c.ties.example. A 127.0.0.8"',
    '"nullmx.example. MX 0 ."',
    '"aonly.example. A 127.0.0.4"',
    '"noaddr.example. MX 10 missing.example."',
    '"halfaddr.example. MX 10 missing.example."',
    '"halfaddr.example. MX 20 up.multi.example."',
] + many] + ['local-zone: "refused.example." refuse'])
fwd = "127.0.0.1:%d" % port


def mx(name, *extra):
    out, err, _ = driver(drv, ["mx", "-F", fwd, "-T", "3000"] + list(extra) + [name])
    lines = out.splitlines()
    status = lines[0] if lines else "no output: " + err
    hosts = [ln.split()[1:] for ln in lines if ln.startswith("host ")]
    return status, hosts, out


st, hosts, out = mx("multi.example")
t.ok(st.startswith("status ok"), "MX lookup works: " + st)
t.eq([h[1] for h in hosts], ["down.multi.example", "up.multi.example"],
     "MX hosts in preference order")
t.eq(hosts[1][2] if len(hosts) > 1 else None, "127.0.0.3,::1",
     "addresses of a host, IPv4 first")
t.ok("implicit 0" in out, "explicit MX is not implicit")

orders = set()
firsts = set()
for i in range(16):
    st, hosts, _ = mx("ties.example")
    firsts.add(hosts[0][1] if hosts else None)
    orders.add(tuple(h[1] for h in hosts[1:]))
t.eq(firsts, {"first.ties.example"}, "lowest preference always first")
t.ok(len(orders) >= 2, "equal preferences shuffled (%d orders in 16 runs)" % len(orders))
t.ok(all(sorted(o) == ["a.ties.example", "b.ties.example", "c.ties.example"]
         for o in orders), "every tied host present each time")

st, hosts, out = mx("aonly.example")
t.ok(st.startswith("status ok") and "implicit 1" in out and
     hosts == [["0", "aonly.example", "127.0.0.4"]],
     "no MX: the domain's own address is the implicit MX")

st, _, _ = mx("nullmx.example")
t.ok(st.startswith("status perm") and "7505" in st, "null MX is permanent: " + st)
st, _, _ = mx("nothing.example")
t.ok(st.startswith("status perm") and "no such domain" in st,
     "NXDOMAIN is permanent: " + st)
st, _, _ = mx("noaddr.example")
t.ok(st.startswith("status perm"), "MX host without address: permanent: " + st)
st, hosts, _ = mx("halfaddr.example")
t.ok(st.startswith("status ok") and len(hosts) == 2 and hosts[0][2] == "-",
     "a host without address stays listed, the next one has addresses")
st, _, _ = mx("refused.example")
t.ok(st.startswith("status temp"), "SERVFAIL/REFUSED is temporary: " + st)
st, _, _ = mx("bad..name")
t.ok(st.startswith("status perm"), "malformed domain refused: " + st)
st, hosts, _ = mx("[127.0.0.9]")
t.ok(st.startswith("status ok") and hosts and hosts[0][2] == "127.0.0.9",
     "address literal is its own host")

st, hosts, _ = mx("many.example")
t.eq(len(hosts), 10, "at most DNS_MAX_HOSTS hosts")
t.eq(hosts[0][1] if hosts else None, "m00.many.example", "the best ones kept")
st, hosts, _ = mx("many.example", "-m", "3")
t.eq([h[1] for h in hosts], ["m00.many.example", "m01.many.example",
                             "m02.many.example"], "max_hosts bound")

# a forwarder that never answers: temporary, within the deadline
dead = free_port()
t0 = time.time()
out, err, _ = driver(drv, ["mx", "-F", "127.0.0.1:%d" % dead, "-T", "1500",
                           "multi.example"])
el = time.time() - t0
t.ok(out.startswith("status temp"), "dead resolver is temporary: " + out.strip())
t.ok(el < 5, "lookup bounded by its timeout (%.1f s)" % el)

out, _, _ = driver(drv, ["host", "-F", fwd, "up.multi.example"])
t.ok("127.0.0.3,::1" in out, "smarthost name resolves to its addresses")
out, _, _ = driver(drv, ["host", "-F", fwd, "localhost"])
t.ok("127.0.0.1" in out, "/etc/hosts is read for host names")
out, _, _ = driver(drv, ["host", "-F", fwd, "nothing.example"])
t.ok(out.startswith("status perm"), "unknown smarthost is permanent")
