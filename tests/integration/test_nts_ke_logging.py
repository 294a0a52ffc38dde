#!/usr/bin/python3
"""NTS-KE server logging: a bounded number of lines however many clients.

ntsd serves NTS-KE on 127.0.0.1:KE_PORT (certificate from a throwaway CA);
Python's ssl module is the client, each connection from its own 127.x.y.z
address.

Passes when:
  * at info level (-d): 30 good exchanges, 10 clients without ALPN, 10
    connections that send bytes that are not TLS and 5 that send nothing
    give no line per exchange: one line for the first failure of each kind
    (3), and at shutdown one summary line with the counts (30 served, 240
    cookies, 10 tls, 10 no_alpn, 5 hello_timeout);
  * at the default level (notice): 20 good exchanges and 5 without ALPN
    give the summary line alone;
  * `ntsctl nts --json` counts every exchange all the same.
"""
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14461
NTP_PORT = 11124

_src_n = [0]


def new_src():
    """A fresh loopback source address per connection: 127.1.x.y."""
    _src_n[0] += 1
    n = _src_n[0]
    return "127.1.%d.%d" % (n // 250, n % 250 + 1)


def ke_lines(srv):
    """Our log lines about the KE server's clients (not start-up)."""
    return [ln for ln in srv.proc.read_log().splitlines() if "NTSs:" in ln]


def good(pki, n):
    for i in range(n):
        res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src())
        h.check(res["handshake"] is True and len(res["response"]) > 800,
                "good exchange %d failed: %s, %d bytes" % (i, res["handshake"],
                                                           len(res["response"])))


def no_alpn(pki, n):
    for i in range(n):
        res = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert, src=new_src(), alpn=None)
        h.check(res["response"] == b"" and res["closed"],
                "client %d without ALPN: %r, %s" % (i, res["response"][:32], res["close_how"]))


def not_tls(n):
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((new_src(), 0))
            s.settimeout(3)
            s.connect(("127.0.0.1", KE_PORT))
            s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 4)
            try:
                while s.recv(4096):
                    pass
            except (ConnectionResetError, socket.timeout):
                pass
        finally:
            s.close()


def idle(n):
    """n connections that send nothing; returns once the server closed them."""
    conns = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conns.append(s)
        s.bind(("127.2.%d.1" % i, 0))
        s.settimeout(3)
        s.connect(("127.0.0.1", KE_PORT))
    for s in conns:
        try:
            h.check(s.recv(16) == b"", "an idle connection received data")
        except ConnectionResetError:
            pass
        s.close()


def wait_counts(srv, **want):
    """Until `ntsctl nts --json` shows the counts wanted (of the keys it
    has: the lines are checked even where a key is missing; main checks
    the keys)."""
    def ok():
        st = srv.nts_stats()
        return all(st[k] == v for k, v in want.items() if k in st) and st
    return h.wait_until(ok, 5, "ntsctl nts --json to show %r" % want, interval=0.05)


def main():
    h.require_ours()
    pki = h.make_test_pki()

    # ---- info level ------------------------------------------------------------
    srv = h.NtsKeServer("ntsd-info", pki, KE_PORT, NTP_PORT, debug=False, args=("-d",))
    t0 = time.monotonic()
    good(pki, 30)
    no_alpn(pki, 10)
    not_tls(10)
    idle(5)
    wait_counts(srv, ke_serves_good=30, ke_serves_bad=25, ke_no_alpn=10, ke_tls_failures=10,
                ke_hello_timeouts=5, cookies_made=240)
    lines = ke_lines(srv)
    h.log("info level: %d exchanges in %.1f s, %d lines:\n  %s" % (
        55, time.monotonic() - t0, len(lines), "\n  ".join(lines)))
    h.check(not [ln for ln in lines if re.search(r"NTS-KE from \S+, TLSv1\.3", ln)],
            "successful exchanges were logged one by one")
    for what in ("failed: client did not offer ALPN ntske/1", "failed: error:",
                 "failed: no ClientHello within 1.0 s"):
        got = [ln for ln in lines if what in ln]
        h.check(len(got) == 1, "expected one line with %r, got %d" % (what, len(got)))
    h.check(len(lines) == 3, "expected 3 lines before the summary, got %d" % len(lines))
    h.check("ke_hello_timeouts" in srv.nts_stats(), "ntsctl nts --json lacks ke_hello_timeouts")
    srv.proc.stop()
    lines = ke_lines(srv)
    h.check(len(lines) == 4, "expected 4 lines after the shutdown, got %d: %r" % (
        len(lines), lines[3:]))
    want = ("NTSs: NTS-KE in the last %d s: 30 served (240 cookies); 25 failed (10 tls, "
            "10 no_alpn, 5 hello_timeout)")
    h.check(re.search(re.escape(want).replace("%d", r"\d+"), lines[3]),
            "summary line: %r" % lines[3])
    h.log("summary: %s" % lines[3])

    # ---- notice level ------------------------------------------------------------
    srv = h.NtsKeServer("ntsd-notice", pki, KE_PORT, NTP_PORT, debug=False)
    good(pki, 20)
    no_alpn(pki, 5)
    wait_counts(srv, ke_serves_good=20, ke_serves_bad=5, ke_no_alpn=5)
    h.check(ke_lines(srv) == [], "notice level: lines before the summary: %r" % ke_lines(srv))
    srv.proc.stop()
    lines = ke_lines(srv)
    h.log("notice level: 25 exchanges, %d lines: %r" % (len(lines), lines))
    h.check(len(lines) == 1 and "20 served (160 cookies); 5 failed (5 no_alpn)" in lines[0],
            "notice level: expected the summary line alone, got %r" % lines)


h.run(main)
