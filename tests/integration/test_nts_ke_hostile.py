#!/usr/bin/python3
"""NTS-KE server: well-formed and hostile clients, and cookie-key persistence.

ntsd serves NTS-KE on 127.0.0.1:KE_PORT (certificate from a throwaway CA) and
NTP on 127.0.0.1:NTP_PORT (not 123, so the KE response must carry a Port
record).  Python's ssl module is the client.  Every connection binds its own
127.x.y.z source address, so the per-client KE rate limit (burst 32) only
applies where a case wants it and each connection's log line can be found by
ADDR:PORT.

Passes when:
  * a good request gets exactly Next Protocol [0], AEAD [15], 8 New Cookie
    records of 104 bytes, Port [NTP_PORT], End of Message -- with the
    critical bit on all but the cookies -- over TLS 1.3 with ALPN ntske/1,
    then a TLS close_notify, and the cookies all carry the same key id;
  * AEAD [17] gives 168-byte cookies; [99, 17, 15] picks 17 (the client's
    order); [99] gets an empty AEAD record and no cookies; an unknown next
    protocol alone gets an empty Next Protocol record; a request split into
    1-byte TLS records, a 3 KB request, a TCP half-close after the request
    and Next Protocol [0x7123, 0] are served normally;
  * TLS 1.2 only, ALPN http/1.1 only: the handshake fails; no ALPN: closed
    without a byte of response; bytes that are not TLS: closed;
  * malformed records inside TLS, a 1 MB record stream and bytes after End
    of Message get Error [1] (or a close), quickly; an unknown critical
    record gets Error [0]; an unknown non-critical record is ignored;
    duplicate Next Protocol gets Error [1]; a request without End of Message
    is closed after the 2 s deadline with no response;
  * 200 idle TCP connections (20 /24s) are all closed at the ClientHello
    deadline (1 s) and, while they are open, a good client is served
    within 1 s; 5 connections that send part of a ClientHello are closed
    at that deadline too;
  * admission: 32 connections from one address (in batches of 16, the
    per-prefix cap) are kept, the next 8 (and a good client after them)
    closed at once, less what the rate limit's refill (1/s) lets through;
  * a flood of 300 idle connections from 150 addresses (20 in one /24, 130
    over 26 others): the one /24 gets 16 slots and 24 refusals (with a
    warning), the last 20 connections take the slots of the oldest idle
    ones, and a good client from another /24 then takes the next and is
    served within 1 s; all expire at the ClientHello deadline;
  * the server stays up throughout, logs (at debug level) one line per
    connection whose reason matches the case, and its counters (log
    lines; `ntsctl nts --json`) add up;
  * cookie keys: the `nts cookie` file is created with mode 0600, a restart
    keeps issuing cookies under the same key id, and a corrupted file is
    logged ("corrupt key file"), replaced, and a new key id is used.
"""
import os
import re
import select
import socket
import ssl
import stat
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123
DEADLINE = 2.0          # the server's per-connection deadline
HELLO_DEADLINE = 1.0    # ... and until the whole ClientHello
N_IDLE = 200
RATE_BURST = 32         # NTS-KE connections per client address before 1/s
PER_PREFIX = 16         # concurrent NTS-KE connections from one /24

_src_n = [0]


def new_src():
    """A fresh loopback source address per connection: 127.1.x.y."""
    _src_n[0] += 1
    n = _src_n[0]
    return "127.1.%d.%d" % (n // 250, n % 250 + 1)


def rec_str(recs):
    return ", ".join("%s%d[%d]" % ("!" if c else "", t, len(b)) for c, t, b in recs)


def parse(res, what):
    try:
        return h.ke_parse(res["response"])
    except ValueError as e:
        h.fail("%s: response is not a sequence of NTS-KE records (%s): %r" % (
            what, e, res["response"][:200]))


def check_tls(res, what):
    h.check(res["handshake"] is True, "%s: TLS handshake failed: %s" % (what, res["handshake"]))
    h.check(res["version"] == "TLSv1.3", "%s: TLS version %r" % (what, res["version"]))
    h.check(res["alpn"] == h.KE_ALPN, "%s: ALPN %r" % (what, res["alpn"]))


def check_success(res, aead, cookie_len, what):
    """The whole response, record by record.  Returns the cookies."""
    check_tls(res, what)
    h.check(res["closed"], "%s: server did not close after its response (%s)" % (
        what, res["close_how"]))
    h.check(res["close_how"] == "close_notify",
            "%s: server closed without a TLS close_notify (%s)" % (what, res["close_how"]))
    recs = parse(res, what)
    h.log("%s: %d bytes: %s" % (what, len(res["response"]), rec_str(recs)))
    h.check(len(recs) == 12, "%s: expected 12 records, got %d: %s" % (
        what, len(recs), rec_str(recs)))
    h.check(recs[0] == (True, h.KE_NEXT_PROTO, h.ke_u16s(0)),
            "%s: record 0 is not a critical Next Protocol [0]: %r" % (what, recs[0]))
    h.check(recs[1] == (True, h.KE_AEAD, h.ke_u16s(aead)),
            "%s: record 1 is not a critical AEAD [%d]: %r" % (what, aead, recs[1]))
    cookies = []
    for i in range(2, 10):
        c, t, b = recs[i]
        h.check(t == h.KE_NEW_COOKIE, "%s: record %d has type %d, expected New Cookie" % (
            what, i, t))
        h.check(not c, "%s: New Cookie record %d has the critical bit" % (what, i))
        h.check(len(b) == cookie_len, "%s: cookie %d is %d bytes, expected %d" % (
            what, i - 2, len(b), cookie_len))
        cookies.append(b)
    h.check(recs[10] == (True, h.KE_PORT, h.ke_u16s(NTP_PORT)),
            "%s: record 10 is not a critical Port [%d]: %r" % (what, NTP_PORT, recs[10]))
    h.check(recs[11] == (True, h.KE_EOM, b""),
            "%s: last record is not a critical, empty End of Message: %r" % (what, recs[11]))
    h.check(len(set(cookies)) == 8, "%s: cookies are not all different" % what)
    kids = {c[:4] for c in cookies}
    h.check(len(kids) == 1, "%s: cookies carry different key ids %r" % (what, kids))
    return cookies


def check_error(res, code, what, allow_close=False):
    """Error [code] then End of Message, both critical; or, when allowed, a
    close without any response.  `code` may be a tuple of acceptable codes."""
    if allow_close and res["response"] == b"":
        h.check(res["closed"], "%s: neither an Error record nor a close within %.1f s" % (
            what, res["elapsed"]))
        h.log("%s: closed without a response (%s) after %.2f s" % (
            what, res["close_how"], res["elapsed"]))
        return
    recs = parse(res, what)
    h.log("%s: %s, then %s after %.2f s" % (what, rec_str(recs), res["close_how"],
                                            res["elapsed"]))
    codes = code if isinstance(code, tuple) else (code,)
    h.check(any(recs == [(True, h.KE_ERROR, h.ke_u16s(c)), (True, h.KE_EOM, b"")]
                for c in codes),
            "%s: expected exactly a critical Error %r and End of Message, got %r" % (
                what, code, recs))
    h.check(res["closed"], "%s: server did not close after the Error record" % what)


# Per-reason counters of `ntsctl nts --json`, checked when present: each
# case names the ones it should move; all others must stay put.
DETAIL_KEYS = ("ke_refused", "ke_tls_failures", "ke_no_alpn", "ke_bad_requests", "ke_timeouts",
               "ke_hello_timeouts", "ke_evicted", "ke_refused_prefix")


class Tally:
    """What the cases should have added to the server's counters.  With
    `ntsctl nts --json` (when it exists) each case's deltas are checked as
    it ends: ke_serves_good, ke_serves_bad, cookies_made and, if the JSON
    has them, DETAIL_KEYS.  The log lines are checked per case by
    expect_log and in total at the end."""

    def __init__(self, srv):
        self.srv = srv
        self.good = 0
        self.bad = 0
        self.base = srv.nts_stats()
        self.last = self.base
        if self.base is not None:
            for k in ("ke_serves_good", "ke_serves_bad", "cookies_made"):
                h.check(isinstance(self.base.get(k), int),
                        "ntsctl nts --json lacks the int %r: %r" % (k, self.base))

    def add(self, what, good=0, bad=0, **detail):
        """detail: ke_xxx=N for the DETAIL_KEYS this case moves (None: not
        checked); unnamed ones must not move."""
        self.good += good
        self.bad += bad
        if self.last is None:
            return
        prev = self.last

        def updated():
            st = self.srv.nts_stats()
            if (st["ke_serves_good"] - prev["ke_serves_good"] == good and
                    st["ke_serves_bad"] - prev["ke_serves_bad"] == bad):
                return st
            return None
        try:
            st = h.wait_until(updated, 3, "%s: ke_serves_good +%d, ke_serves_bad +%d" % (
                what, good, bad))
        except h.TestFailure:
            h.log("%s: ntsctl nts --json before %r, now %r" % (what, prev,
                                                              self.srv.nts_stats()))
            raise
        h.check(st["cookies_made"] - prev["cookies_made"] == 8 * good,
                "%s: cookies_made grew by %d, expected %d" % (
                    what, st["cookies_made"] - prev["cookies_made"], 8 * good))
        for k in DETAIL_KEYS:
            if k not in st or k not in prev or detail.get(k, 0) is None:
                continue
            want = detail.get(k, 0)
            h.wait_until(lambda: self.srv.nts_stats()[k] - prev[k] == want, 3,
                         "%s: %s +%d (ntsctl nts --json: %s -> %s)" % (
                             what, k, want, prev[k], self.srv.nts_stats()[k]))
        self.last = self.srv.nts_stats()


def expect_log(srv, res, pattern, what, regex=False):
    """Our server logged exactly one line for this connection, containing
    `pattern` (a regular expression if `regex`)."""
    lines = h.wait_until(lambda: srv.ke_log_for(res["src"]), 5,
                         "%s: ntsd's log line for %s" % (what, res["src"]))
    h.check(len(lines) == 1, "%s: ntsd logged %d lines for %s: %r" % (
        what, len(lines), res["src"], lines))
    found = re.search(pattern, lines[0]) if regex else pattern in lines[0]
    h.check(found, "%s: ntsd's log line for %s lacks %r: %r" % (
        what, res["src"], pattern, lines[0]))
    return lines[0]


def raw_tcp(port, data, src, timeout):
    """Plain TCP: send data, read until close.  (response, how, elapsed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t0 = time.monotonic()
    buf, how = b"", "timeout"
    try:
        s.bind((src, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        addr = "%s:%d" % s.getsockname()
        try:
            s.sendall(data)
        except OSError:
            pass
        while time.monotonic() - t0 < timeout:
            s.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
            try:
                b = s.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "reset"
                break
            if not b:
                how = "eof"
                break
            buf += b
    finally:
        s.close()
    return addr, buf, how, time.monotonic() - t0


def accept_queue(port):
    """Connections waiting in the accept queue of our listener on
    127.0.0.1:port (the rx_queue of a LISTEN socket in /proc/net/tcp)."""
    want = "0100007F:%04X" % port
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            fld = ln.split()
            if fld[1] == want and fld[3] == "0A":
                return int(fld[4].split(":")[1], 16)
    return 0


def open_idle(srcs, batch=50):
    """Plain TCP connections to the KE port, one per source address in
    `srcs` (repeats allowed), that send nothing.  Opened in batches, each
    once the server has accepted the one before: a burst beyond the listen
    backlog (128) would lose SYNs, and their 1 s retransmission would spread
    the connections over more than the server's deadline."""
    out = []
    for i, a in enumerate(srcs):
        if i and i % batch == 0:
            h.wait_until(lambda: accept_queue(KE_PORT) == 0, 2,
                         "ntsd to accept a batch of connections", interval=0.005)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        out.append(s)
        s.bind((a, 0))
        s.settimeout(3.0)
        s.connect(("127.0.0.1", KE_PORT))
        s.setblocking(False)
    return out


def poll_closed(conns, wait, wait_all=False):
    """["open" | "closed"] per connection: after `wait` seconds or, with
    wait_all, as soon as all are closed (at most `wait` seconds).  A
    connection that received data fails the test."""
    state = ["open"] * len(conns)
    deadline = time.monotonic() + max(0.0, wait)
    if not wait_all:
        time.sleep(max(0.0, wait))
    while True:
        live = [c for c, s in zip(conns, state) if s == "open"]
        left = max(0.0, deadline - time.monotonic())
        rd, _, _ = select.select(live, [], [], left if wait_all and live else 0)
        for c in rd:
            try:
                b = c.recv(4096)
            except (ConnectionResetError, BlockingIOError):
                b = b""
            if b:
                h.fail("an idle connection received data: %r" % b[:32])
            state[conns.index(c)] = "closed"
        if not wait_all or "open" not in state or time.monotonic() >= deadline:
            return state


def key_id_of(srv, pki, what):
    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src())
    cookies = check_success(res, 15, 104, what)
    return cookies[0][:4]


def main():
    h.require_ours()
    pki = h.make_test_pki()
    srv = h.NtsKeServer("ntsd-ke", pki, KE_PORT, NTP_PORT)
    n = Tally(srv)
    h.log("ntsctl nts --json: %s" % ("not available yet" if n.base is None else n.base))

    # ---- well-formed requests ---------------------------------------------
    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src())
    check_success(res, 15, 104, "AEAD [15]")
    h.log("TLS: %s %s, ALPN %s; took %.3f s" % (res["version"], res["cipher"], res["alpn"],
                                                res["elapsed"]))
    expect_log(srv, res, "TLSv1.3, %s, aead=15, 8 cookies" % res["cipher"], "AEAD [15]")
    n.add("AEAD [15]", good=1)

    # The certificate's IP SAN works too (the name checked is 127.0.0.1).
    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src(),
                        server_hostname="127.0.0.1")
    check_success(res, 15, 104, "AEAD [15], server name 127.0.0.1")
    expect_log(srv, res, "aead=15, 8 cookies", "AEAD [15], server name 127.0.0.1")
    n.add("AEAD [15], server name 127.0.0.1", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((17,)), ca=pki.ca_cert, src=new_src())
    check_success(res, 17, 168, "AEAD [17]")
    expect_log(srv, res, "aead=17, 8 cookies", "AEAD [17]")
    n.add("AEAD [17]", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((99, 17, 15)), ca=pki.ca_cert, src=new_src())
    check_success(res, 17, 168, "AEAD [99, 17, 15]")
    expect_log(srv, res, "aead=17, 8 cookies", "AEAD [99, 17, 15]")
    n.add("AEAD [99, 17, 15]", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((99,)), ca=pki.ca_cert, src=new_src())
    check_tls(res, "AEAD [99]")
    recs = parse(res, "AEAD [99]")
    h.log("AEAD [99]: %s" % rec_str(recs))
    h.check(recs == [(True, h.KE_NEXT_PROTO, h.ke_u16s(0)), (True, h.KE_AEAD, b""),
                     (True, h.KE_EOM, b"")],
            "AEAD [99]: expected Next Protocol [0], an empty AEAD record and End of Message "
            "(no cookies), got %r" % recs)
    expect_log(srv, res, "no_aead", "AEAD [99]")
    n.add("AEAD [99]", bad=1)

    # An unknown record without the critical bit is ignored.
    res = h.ke_exchange(KE_PORT, h.ke_request((15,), extra=[h.ke_record(0x4321, b"hello!")]),
                        ca=pki.ca_cert, src=new_src())
    check_success(res, 15, 104, "unknown non-critical record")
    expect_log(srv, res, "aead=15, 8 cookies", "unknown non-critical record")
    n.add("unknown non-critical record", good=1)

    # Any split of the request, a long one, a half-close after it.
    res = h.ke_exchange(KE_PORT, None, ca=pki.ca_cert, src=new_src(),
                        chunks=[bytes([b]) for b in h.ke_request((15,))])
    check_success(res, 15, 104, "request in 1-byte TLS records")
    expect_log(srv, res, "aead=15, 8 cookies", "request in 1-byte TLS records")
    n.add("request in 1-byte TLS records", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((15,), extra=[h.ke_record(0x1234, b"x" * 3000)]),
                        ca=pki.ca_cert, src=new_src())
    # RFC 8915 section 4: servers MUST accept requests of at least 1024 bytes.
    check_success(res, 15, 104, "3 KB request")
    expect_log(srv, res, "aead=15, 8 cookies", "3 KB request")
    n.add("3 KB request", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src(),
                        shut_wr=True)
    check_success(res, 15, 104, "TCP half-close after the request")
    expect_log(srv, res, "aead=15, 8 cookies", "TCP half-close after the request")
    n.add("TCP half-close after the request", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((15,), protocols=(0x7123, 0)), ca=pki.ca_cert,
                        src=new_src())
    check_success(res, 15, 104, "Next Protocol [0x7123, 0]")
    expect_log(srv, res, "aead=15, 8 cookies", "Next Protocol [0x7123, 0]")
    n.add("Next Protocol [0x7123, 0]", good=1)

    res = h.ke_exchange(KE_PORT, h.ke_request((15,), protocols=(0x7123,)), ca=pki.ca_cert,
                        src=new_src())
    check_tls(res, "Next Protocol [0x7123]")
    recs = parse(res, "Next Protocol [0x7123]")
    h.check(recs == [(True, h.KE_NEXT_PROTO, b""), (True, h.KE_EOM, b"")],
            "Next Protocol [0x7123]: expected an empty Next Protocol record and End of "
            "Message, got %r" % recs)
    expect_log(srv, res, "no_protocol", "Next Protocol [0x7123]")
    n.add("Next Protocol [0x7123]", bad=1)

    # ---- TLS-level refusals ------------------------------------------------
    res = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert, src=new_src(),
                        max_version=ssl.TLSVersion.TLSv1_2)
    h.log("TLS 1.2 only: %s" % res["handshake"])
    h.check(res["handshake"] is not True, "a TLS 1.2-only client completed the handshake "
            "(%s)" % res["version"])
    expect_log(srv, res, "failed:", "TLS 1.2 only")
    n.add("TLS 1.2 only", bad=1, ke_tls_failures=1)

    res = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert, src=new_src(),
                        alpn=("http/1.1",))
    h.log("ALPN http/1.1: %s" % res["handshake"])
    h.check(res["handshake"] is not True, "a client offering only ALPN http/1.1 completed "
            "the handshake (ALPN %r)" % res["alpn"])
    expect_log(srv, res, "failed:", "ALPN http/1.1")
    n.add("ALPN http/1.1", bad=1, ke_tls_failures=1)

    res = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert, src=new_src(), alpn=None)
    h.log("no ALPN: handshake %s, %d bytes back, %s after %.2f s" % (
        res["handshake"], len(res["response"]), res["close_how"], res["elapsed"]))
    h.check(res["response"] == b"", "a client without ALPN got a response: %r" %
            res["response"][:100])
    h.check(res["closed"] and res["elapsed"] < 1.5,
            "a client without ALPN was not closed promptly (%s after %.2f s)" % (
                res["close_how"], res["elapsed"]))
    expect_log(srv, res, "did not offer ALPN ntske/1", "no ALPN")
    n.add("no ALPN", bad=1, ke_no_alpn=1)

    addr, buf, how, el = raw_tcp(KE_PORT, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n" * 4,
                                 new_src(), 5.0)
    h.log("not TLS: %d bytes back (%r), %s after %.2f s" % (len(buf), buf[:16], how, el))
    h.check(how in ("eof", "reset") and el < 1.5,
            "bytes that are not TLS: not closed promptly (%s after %.2f s)" % (how, el))
    h.check(buf == b"" or buf[:1] == b"\x15",
            "bytes that are not TLS: the server sent something other than a TLS alert: %r" %
            buf[:32])
    expect_log(srv, {"src": addr}, "failed:", "not TLS")
    n.add("not TLS", bad=1, ke_tls_failures=1)

    # ---- malformed requests inside TLS ---------------------------------------
    def bad_request(what, data, code, allow_close=False, pattern="(Error %d)", chunks=None,
                    timeout=5.0, max_elapsed=1.5):
        r = h.ke_exchange(KE_PORT, data, ca=pki.ca_cert, src=new_src(), chunks=chunks,
                          timeout=timeout)
        check_tls(r, what)
        check_error(r, code, what, allow_close=allow_close)
        h.check(r["elapsed"] < max_elapsed, "%s: took %.2f s to answer/close" % (
            what, r["elapsed"]))
        if allow_close and r["response"] == b"":
            if r["elapsed"] >= DEADLINE - 0.3:
                expect_log(srv, r, "failed: deadline passed", what)
            else:  # closed early: refused (the Error lost to a reset) or failed
                expect_log(srv, r, r"(refused|failed): ", what, regex=True)
        elif isinstance(code, tuple):
            expect_log(srv, r, "refused:", what)
        else:
            expect_log(srv, r, pattern % code if "%d" in pattern else pattern, what)
        if r["response"]:
            n.add(what, bad=1, ke_bad_requests=1)
        elif r["elapsed"] >= DEADLINE - 0.3:
            n.add(what, bad=1, ke_timeouts=1)
        else:
            n.add(what, bad=1, ke_bad_requests=None, ke_tls_failures=None)
        return r

    bad_request("End of Message with a body",
                h.ke_request(eom=False) + h.ke_record(h.KE_EOM, b"zz", True), 1)
    bad_request("record header claiming 65535 bytes",
                b"\xff\xff\xff\xff" + b"\x00" * 60, 1, pattern="too_long")
    bad_request("bytes after End of Message", h.ke_request() + b"\x00\x01", 1)
    bad_request("request without AEAD record", h.ke_request(aeads=None), 1)
    bad_request("empty Next Protocol list", h.ke_request(protocols=()), 1)
    bad_request("New Cookie from a client",
                h.ke_request(extra=[h.ke_record(h.KE_NEW_COOKIE, b"x" * 104)]), 1)
    bad_request("duplicate Next Protocol",
                h.ke_request(extra=[h.ke_record(h.KE_NEXT_PROTO, h.ke_u16s(0), True)]), 1,
                pattern="dup_next_proto")
    bad_request("unknown critical record 0x4321",
                h.ke_request(extra=[h.ke_record(0x4321, b"hello!", True)]), 0,
                pattern="unknown_critical")
    # A record whose body never comes: nothing to answer, closed at the deadline.
    bad_request("record header claiming 1000 bytes, 60 sent",
                struct.pack("!HH", 0x7ffe, 1000) + os.urandom(60), 1, allow_close=True,
                pattern="deadline passed", max_elapsed=DEADLINE + 1.5)
    # Random bytes: a header that cannot end within 16 KB (Error 1), a record
    # still waiting for its body (closed at the deadline) or, rarely, a
    # random End of Message (Error 0 or 1).
    rnd = os.urandom(64)
    h.log("random request bytes: %s" % rnd.hex())
    bad_request("64 random bytes", rnd, (0, 1), allow_close=True, max_elapsed=DEADLINE + 1.5)

    # A 1 MB stream of small unknown non-critical records: the 16 KB buffer
    # fills without End of Message.
    rec = h.ke_record(0x0123, b"\xa5" * 1000)
    stream = rec * (1024 * 1024 // len(rec) + 1)
    r = bad_request("1 MB record stream", None, 1, allow_close=True,
                    chunks=[stream[i:i + 65536] for i in range(0, len(stream), 65536)],
                    pattern="too_long", timeout=8.0, max_elapsed=2.0)

    # No End of Message: nothing to answer; closed at the deadline.
    res = h.ke_exchange(KE_PORT, h.ke_request(eom=False), ca=pki.ca_cert, src=new_src(),
                        timeout=DEADLINE + 4)
    check_tls(res, "no End of Message")
    h.log("no End of Message: %d bytes back, %s after %.2f s" % (
        len(res["response"]), res["close_how"], res["elapsed"]))
    h.check(res["response"] == b"", "no End of Message: got a response %r" %
            res["response"][:100])
    h.check(res["closed"] and DEADLINE - 0.3 <= res["elapsed"] <= DEADLINE + 1.5,
            "no End of Message: expected a close after ~%.0f s, got %s after %.2f s" % (
                DEADLINE, res["close_how"], res["elapsed"]))
    expect_log(srv, res, "deadline passed", "no End of Message")
    n.add("no End of Message", bad=1, ke_timeouts=1)

    # ---- 200 idle connections ------------------------------------------------
    # From 20 /24s, 10 each (under the per-prefix cap): all are held, and
    # closed at the ClientHello deadline.
    t_open = time.monotonic()
    idle = open_idle(["127.2.%d.%d" % (i // 10, i % 10 + 1) for i in range(N_IDLE)])
    idle_addrs = ["%s:%d" % s.getsockname() for s in idle]
    t_opened = time.monotonic()
    h.log("%d idle connections open in %.2f s" % (N_IDLE, t_opened - t_open))
    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src(),
                        timeout=5.0)
    h.log("good client during the flood: %s after %.3f s" % (res["close_how"],
                                                             res["elapsed"]))
    check_success(res, 15, 104, "good client during the flood")
    h.check(res["elapsed"] <= 1.0, "good client during the flood took %.2f s" % res["elapsed"])
    h.check(time.monotonic() - t_open < HELLO_DEADLINE - 0.1,
            "the good client finished only after the idle connections' deadline; "
            "the test proves nothing (%.2f s)" % (time.monotonic() - t_open))
    expect_log(srv, res, "aead=15, 8 cookies", "good client during the flood")
    # Every idle connection closed by the server, at the ClientHello deadline.
    open_set = set(range(N_IDLE))
    early = []
    limit = t_opened + HELLO_DEADLINE + 1.0
    while open_set and time.monotonic() < limit:
        rd, _, _ = select.select([idle[i] for i in open_set], [], [],
                                 max(0.0, limit - time.monotonic()))
        now = time.monotonic()
        for s in rd:
            i = idle.index(s)
            try:
                b = s.recv(4096)
            except (ConnectionResetError, BlockingIOError):
                b = b""
            if b:
                h.fail("idle connection %s got data %r" % (idle_addrs[i], b[:32]))
            if now - t_open < HELLO_DEADLINE - 0.3:
                early.append(idle_addrs[i])
            open_set.discard(i)
    t_closed = time.monotonic() - t_open
    for s in idle:
        s.close()
    h.check(not open_set, "%d of %d idle connections still open %.1f s after the last "
            "connect" % (len(open_set), N_IDLE, HELLO_DEADLINE + 1.0))
    h.check(not early, "%d idle connections closed before the deadline: %s" % (
        len(early), early[:5]))
    h.log("all %d idle connections closed %.2f s after the first connect" % (N_IDLE,
                                                                              t_closed))
    log_text = srv.proc.read_log()
    missing = [a for a in idle_addrs if "NTS-KE from %s failed: no ClientHello within 1.0 s"
               % a not in log_text]
    h.check(not missing, "%d idle connections have no 'no ClientHello' log line: %s" % (
        len(missing), missing[:5]))
    n.add("%d idle connections and a good one" % N_IDLE, good=1, bad=N_IDLE,
          ke_hello_timeouts=N_IDLE)

    # A ClientHello that never completes (a TLS record header and a few
    # bytes of it) gets no more time than none at all.
    slow_srcs = ["127.3.%d.1" % i for i in range(5)]
    slow = open_idle(slow_srcs)
    t_slow = time.monotonic()
    for c in slow:
        c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    slow_addrs = ["%s:%d" % c.getsockname() for c in slow]
    st = poll_closed(slow, HELLO_DEADLINE + 1.0, wait_all=True)
    el = time.monotonic() - t_slow
    for c in slow:
        c.close()
    h.log("%d partial ClientHellos: all closed after %.2f s" % (len(slow), el))
    h.check(st == ["closed"] * len(slow) and HELLO_DEADLINE - 0.3 <= el <= HELLO_DEADLINE + 0.8,
            "partial ClientHellos: expected all closed after ~%.1f s, got %s after %.2f s" % (
                HELLO_DEADLINE, st, el))
    for a in slow_addrs:
        expect_log(srv, {"src": a}, "failed: no ClientHello within 1.0 s", "partial ClientHello")
    n.add("partial ClientHellos", bad=len(slow), ke_hello_timeouts=len(slow))

    # ---- admission: per-address rate ------------------------------------------
    # One address: 32 connections pass (in two batches of 16, the per-prefix
    # cap, each closed by us before the next), then connections are refused
    # at once, before any TLS, and not logged -- except those the rate
    # limit's refill (one a second) lets through meanwhile.
    rate_src = "127.4.0.1"
    kept = []
    t_rate = time.monotonic()
    for batch in range(RATE_BURST // PER_PREFIX):
        conns = open_idle([rate_src] * PER_PREFIX)
        st = poll_closed(conns, 0.2)
        h.check(st == ["open"] * PER_PREFIX,
                "rate limit: batch %d of %d connections from one address: %s" % (
                    batch, PER_PREFIX, st))
        addrs = ["%s:%d" % c.getsockname() for c in conns]
        for c in conns:
            c.close()   # the server logs a failure for each
        h.wait_until(lambda: all(srv.ke_log_for(a) for a in addrs), 5,
                     "ntsd to log the %d closed connections" % len(addrs), interval=0.02)
        kept += addrs
    conns = open_idle([rate_src] * 8)
    res = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert, src=rate_src, timeout=3)
    refill = int(time.monotonic() - t_rate)  # tokens the bucket regained
    st = poll_closed(conns, 0.3)
    for c in conns:
        c.close()
    h.log("8 more connections from %s after %.2f s: %s; a good client: %s after %.2f s" % (
        rate_src, time.monotonic() - t_rate, st, res["handshake"], res["elapsed"]))
    through = st.count("open") + (res["handshake"] is True)
    h.check(refill < 8, "the rate-limit case took %d s; the refill lets most through, so "
            "it proves nothing" % refill)
    h.check(through <= refill,
            "rate limit: %d of 9 connections beyond the burst got through in %d s" % (
                through, refill))
    if res["handshake"] is not True:
        h.check(res["elapsed"] < 1.0, "a client over its rate was not refused at once: "
                "%s after %.2f s" % (res["handshake"], res["elapsed"]))
        h.check(not srv.ke_log_for(res["src"]), "a refused connection was logged")
    h.wait_until(lambda: len([ln for a in kept for ln in srv.ke_log_for(a)]) == len(kept), 5,
                 "ntsd to log the kept connections")
    # The kept ones, closed by us before any TLS: OpenSSL's "unexpected eof"
    # (a TLS failure), or a plain close.
    n.add("rate limit", bad=RATE_BURST + st.count("open"),
          good=1 if res["handshake"] is True else 0,
          ke_refused=9 - through, ke_tls_failures=None)

    # ---- admission: a flood from many prefixes, per-prefix cap, eviction ------
    # 300 idle connections from 150 addresses, two each: 20 addresses in one
    # /24 (40 connections: 16 held, 24 refused by the per-prefix cap) and 130
    # over 26 other /24s (260 connections, 10 per /24).  The 256 slots fill
    # and the last 20 take the slots of the oldest idle connections.  A good
    # client from yet another /24 takes the next oldest's and is served at
    # once.
    one24 = ["127.5.0.%d" % (i + 1) for i in range(20)]
    many = ["127.6.%d.%d" % (i // 5, i % 5 + 1) for i in range(130)]
    srcs = [a for a in one24 + many for _ in range(2)]
    t_flood = time.monotonic()
    conns = open_idle(srcs)
    t_opened = time.monotonic() - t_flood
    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src="127.9.0.1",
                        timeout=3)
    t_good = time.monotonic() - t_flood
    h.log("%d idle connections from %d addresses opened in %.2f s; a good client: %s, "
          "%s after %.3f s" % (len(srcs), len(set(srcs)), t_opened, res["handshake"],
                               res["close_how"], res["elapsed"]))
    h.check(t_good < HELLO_DEADLINE - 0.1,
            "the flood took %.2f s to open and serve; its connections may have expired, "
            "so the test proves nothing" % t_good)
    check_success(res, 15, 104, "good client during a flood from 150 addresses")
    h.check(res["elapsed"] < 1.0, "good client during the flood took %.2f s" %
            res["elapsed"])
    expect_log(srv, res, "aead=15, 8 cookies", "good client during a flood from 150 addresses")
    st = poll_closed(conns, 0)
    # Refused: 16..39 (one24's beyond the cap).  Evicted: the oldest held,
    # 0..15, then 40..44 (the last by the good client).
    want = ["closed"] * 45 + ["open"] * 255
    h.check(st == want, "flood: expected connections 0-44 closed and 45-299 held, got "
            "closed %s" % [i for i, x in enumerate(st) if x == "closed"])
    evicted = ["%s:%d" % c.getsockname() for c in conns[:16] + conns[40:45]]
    st = poll_closed(conns, HELLO_DEADLINE + 1.0 - (time.monotonic() - t_flood),
                     wait_all=True)
    for c in conns:
        c.close()
    h.check(st.count("open") == 0, "%d flood connections still open after the ClientHello "
            "deadline" % st.count("open"))
    for a in evicted:
        expect_log(srv, {"src": a}, "failed: closed for a newer connection", "evicted")
    log_text = srv.proc.read_log()
    h.check("warning: NTSs: NTS-KE: 127.5.0.0/24 holds 16 connections, refusing more from it"
            in log_text, "no warning about the per-prefix cap")
    n.add("flood from 150 addresses", good=1, bad=255 + 21, ke_refused=24,
          ke_refused_prefix=24, ke_evicted=21, ke_hello_timeouts=255)
    res = h.ke_exchange(KE_PORT, h.ke_request((15,)), ca=pki.ca_cert, src=new_src())
    check_success(res, 15, 104, "good client after the flood")
    expect_log(srv, res, "aead=15, 8 cookies", "good client after the flood")
    n.add("good client after the flood", good=1)

    # ---- totals ------------------------------------------------------------
    srv.proc.check_alive()
    kl = srv.ke_log()
    h.log("ntsd KE log: %d good, %d bad; expected %d good, %d bad" % (
        len(kl["good"]), len(kl["bad"]), n.good, n.bad))
    h.check(len(kl["good"]) == n.good, "ntsd logged %d successful NTS-KEs, expected %d" % (
        len(kl["good"]), n.good))
    h.check(len(kl["bad"]) == n.bad, "ntsd logged %d failed NTS-KEs, expected %d" % (
        len(kl["bad"]), n.bad))
    stats = srv.nts_stats()
    if stats is not None:
        h.log("ntsctl nts --json: %r" % stats)
        for k in ("ke_serves_good", "ke_serves_bad", "cookies_made"):
            h.check(isinstance(stats.get(k), int), "ntsctl nts --json lacks int %r" % k)
        base = n.base or {}
        d_good = stats["ke_serves_good"] - base.get("ke_serves_good", 0)
        d_bad = stats["ke_serves_bad"] - base.get("ke_serves_bad", 0)
        d_cookies = stats["cookies_made"] - base.get("cookies_made", 0)
        h.check(d_good == n.good, "ke_serves_good grew by %d, expected %d" % (d_good, n.good))
        h.check(d_bad == n.bad, "ke_serves_bad grew by %d, expected %d" % (d_bad, n.bad))
        h.check(d_cookies == 8 * n.good, "cookies_made grew by %d, expected %d" % (
            d_cookies, 8 * n.good))
    else:
        h.log("ntsctl has no `nts` command yet: counters checked from the log only")
    srv.proc.stop()

    # ---- cookie-key persistence ------------------------------------------------
    keyfile = os.path.join(h.tmpdir(), "cookie-keys")
    k1 = h.NtsKeServer("ntsd-keys-1", pki, KE_PORT, NTP_PORT, cookie_file=keyfile)
    kid1 = key_id_of(k1, pki, "first server")
    h.check(os.path.isfile(keyfile), "nts cookie %s was not created" % keyfile)
    mode = stat.S_IMODE(os.stat(keyfile).st_mode)
    h.check(mode == 0o600, "key file mode is %o, expected 600" % mode)
    with open(keyfile, "rb") as f:
        content1 = f.read()
    h.check(content1[:8] == b"NTSDKEY1", "key file does not start with NTSDKEY1: %r" %
            content1[:8])
    h.check("NTS cookie key %s in use" % kid1.hex() in k1.proc.read_log(),
            "first server did not log key %s in use" % kid1.hex())
    h.log("first server: key id %s, key file %d bytes, mode %o" % (kid1.hex(), len(content1),
                                                                   mode))
    k1.proc.stop()

    k2 = h.NtsKeServer("ntsd-keys-2", pki, KE_PORT, NTP_PORT, cookie_file=keyfile)
    kid2 = key_id_of(k2, pki, "restarted server")
    h.log("restarted server: key id %s" % kid2.hex())
    h.check(kid2 == kid1, "after a restart with the same key file the key id changed: "
            "%s -> %s" % (kid1.hex(), kid2.hex()))
    h.check("corrupt" not in k2.proc.read_log(), "restarted server calls a good key file "
            "corrupt")
    k2.proc.stop()

    with open(keyfile, "wb") as f:
        f.write(os.urandom(len(content1)))
    k3 = h.NtsKeServer("ntsd-keys-3", pki, KE_PORT, NTP_PORT, cookie_file=keyfile)
    h.check("corrupt key file" in k3.proc.read_log(),
            "server given a corrupted key file did not log 'corrupt key file'")
    kid3 = key_id_of(k3, pki, "server with a corrupted key file")
    h.log("after corruption: key id %s" % kid3.hex())
    h.check(kid3 != kid1, "after corrupting the key file the key id is unchanged (%s)" %
            kid3.hex())
    with open(keyfile, "rb") as f:
        content3 = f.read()
    mode = stat.S_IMODE(os.stat(keyfile).st_mode)
    h.check(content3[:8] == b"NTSDKEY1" and len(content3) == len(content1),
            "the corrupted key file was not rewritten (%d bytes, starts %r)" % (
                len(content3), content3[:8]))
    h.check(mode == 0o600, "rewritten key file mode is %o, expected 600" % mode)
    k3.proc.stop()

    k4 = h.NtsKeServer("ntsd-keys-4", pki, KE_PORT, NTP_PORT, cookie_file=keyfile)
    kid4 = key_id_of(k4, pki, "server after the rewrite")
    h.check(kid4 == kid3, "the rewritten key file did not keep key %s (got %s)" % (
        kid3.hex(), kid4.hex()))
    h.check("corrupt" not in k4.proc.read_log(), "the rewritten key file is called corrupt")
    k4.proc.stop()


h.run(main)
