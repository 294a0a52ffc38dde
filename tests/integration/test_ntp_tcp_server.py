#!/usr/bin/python3
"""NTP over TCP, the server side (docs/ntp-over-tcp.md).

One private namespace, loopback: an ntsd NTS server with
`listen 127.0.0.1:NTP_PORT tcp` (UDP and TCP on the same port), NTS-KE on
127.0.0.1:KE_PORT, `local stratum 1`, and restrict lines for a few
127.0.0.x addresses.  Python clients speak NTP over TCP to it: each packet
behind a 2-byte big-endian length.

Passes when:
  * plain requests get valid server responses (mode 4, stratum 1, origin =
    our transmit timestamp, receive <= transmit, both within our own send
    and receive times) -- one per connection; several on one connection,
    one after the other and pipelined in one write (answered in order);
    and written byte by byte;
  * a frame length of 0, or of 1025 (over the 1024-byte bound), closes the
    connection without an answer (`bad_length`); so does the 16th request
    on a connection, after its answer (`request_limit`);
  * a connection that sends nothing is closed within the idle deadline
    (5 s), and one that starts a request and does not finish it within the
    request deadline (2 s) (`idle_timeouts`, `request_timeouts`);
  * `restrict ignore`/`noserve` addresses are closed at once, and a
    `limited kod` address gets its RATE kiss over TCP, rate-limited by the
    same limiter as its UDP requests;
  * per-prefix cap: 16 connections from 127.0.0.0/24, and the 17th is
    closed at once (`refused_prefix`) while another /24 still gets in;
    total cap: with all 256 slots held (16 /24s of 16), a newcomer closes
    the oldest connection (`evicted`) and is served, the others still are;
  * NTS: the NTS-KE response (Python's ssl, ALPN ntske/1) carries the NTP
    TCP Port record (0x4E54, not critical, body = NTP_PORT); a request
    authenticated with a key and cookie from a real NTS-KE (ntsd_kefetch)
    gets an NTS response over TCP (Authenticator, as long as the request,
    like its UDP answer) and counts as a good NTS request; one with a wrong
    key is dropped as over UDP;
  * `ntsctl server --json` shows the `tcp` object with these counters and
    its socket, the text form its lines, and the daemon did not crash.
On the old tree nothing listens on TCP and the KE response has no such
record, so the first check fails.
"""
import os
import select
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import nts_relay as nr  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123
REC_NTP_TCP_PORT = 0x4E54
IDLE_TIMEOUT, REQUEST_TIMEOUT, MAX_REQUESTS = 5.0, 2.0, 16
SLOTS, PER_PREFIX = 256, 16
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
IGNORED, NOSERVE, LIMITED = "127.0.0.99", "127.0.0.98", "127.0.0.97"


# --------------------------------------------------------------------------
# NTP over TCP from Python
# --------------------------------------------------------------------------

def frame(pkt):
    return struct.pack("!H", len(pkt)) + pkt


def connect(src="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", NTP_PORT))
    return s


def recv_exact(s, n, deadline):
    """n bytes, or what came before the server closed (b"" on a close with
    nothing); None on a timeout."""
    out = b""
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        s.settimeout(left)
        try:
            b = s.recv(n - len(out))
        except socket.timeout:
            return None
        except ConnectionResetError:
            return out
        if not b:
            return out
        out += b
    return out


def read_frame(s, timeout=3.0):
    """The next framed packet; "closed" if the server closed the connection
    first, None on a timeout."""
    deadline = time.monotonic() + timeout
    hdr = recv_exact(s, 2, deadline)
    if hdr is None:
        return None
    if len(hdr) < 2:
        return "closed"
    n = struct.unpack("!H", hdr)[0]
    h.check(1 <= n <= 1024, "response frame length %d" % n)
    body = recv_exact(s, n, deadline)
    h.check(body is not None and len(body) == n, "response frame cut short")
    return body


def closed_within(s, timeout):
    """Seconds until the server closed s without sending anything, or None
    if it is still open after timeout."""
    t0 = time.monotonic()
    r = read_frame(s, timeout)
    h.check(r is None or r == "closed", "unexpected data from the server: %r" % (r,))
    return time.monotonic() - t0 if r == "closed" else None


def check_response(data, xmt, t_send, t_recv, what):
    h.check(isinstance(data, bytes), "%s: no response (%r)" % (what, data))
    r = h.parse_packet(data)
    h.check(r is not None and r["len"] == 48, "%s: response of %d bytes" % (what, len(data)))
    h.check(r["mode"] == 4 and r["version"] == 4 and r["stratum"] == 1,
            "%s: not a stratum 1 server response: %r" % (what, r))
    h.check(r["org"] == xmt, "%s: origin %x, we sent %x" % (what, r["org"], xmt))
    rec, x = h.ts_to_float(r["rec"]), h.ts_to_float(r["xmt"])
    slack = 0.002  # the server's precision and the fuzz below it
    h.check(t_send - slack <= rec <= x + slack and x <= t_recv + slack,
            "%s: timestamps out of order: sent %.6f, rec %.6f, xmt %.6f, received %.6f"
            % (what, t_send, rec, x, t_recv))
    return r


def exchange(s, what, chunks=None):
    """One plain request on s, checked; chunks: how to cut the frame."""
    pkt, xmt = h.client_packet()
    data = frame(pkt)
    t0 = time.time()
    if chunks is None:
        s.sendall(data)
    else:
        for i in range(0, len(data), chunks):
            s.sendall(data[i:i + chunks])
            time.sleep(0.005)
    resp = read_frame(s)
    check_response(resp, xmt, t0, time.time(), what)


def tcp_stats(srv):
    s = srv.server()
    h.check("tcp" in s and isinstance(s["tcp"], dict), "ntsctl server --json has no tcp: %r" % s)
    return s["tcp"]


def wait_open(srv, n, what):
    h.wait_until(lambda: tcp_stats(srv)["open"] == n, 10, "%s: %d open TCP connections"
                 % (what, n), interval=0.1)


# --------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------

def part_plain(srv):
    with connect() as s:
        exchange(s, "one request")
    with connect() as s:
        for i in range(3):
            exchange(s, "request %d on one connection" % (i + 1))
    with connect() as s:  # pipelined: three frames in one write, answered in order
        pkts = [h.client_packet() for _ in range(3)]
        t0 = time.time()
        s.sendall(b"".join(frame(p) for p, _ in pkts))
        for i, (_, xmt) in enumerate(pkts):
            check_response(read_frame(s), xmt, t0, time.time(), "pipelined request %d" % i)
    with connect() as s:
        exchange(s, "request written byte by byte", chunks=1)
        exchange(s, "request in 5-byte pieces", chunks=5)
    h.log("plain requests over TCP answered: single, sequential, pipelined, byte by byte")
    measure()


def measure():
    """Round trip and server hold time (transmit - receive stamp), TCP on one
    kept connection vs UDP; logged for the record, loosely checked."""
    def stats(v):
        v = sorted(v)
        return v[len(v) // 2] * 1e6, v[-1] * 1e6
    tcp, udp = [], []
    with connect() as s:
        for _ in range(MAX_REQUESTS - 1):
            pkt, xmt = h.client_packet()
            t0 = time.monotonic()
            s.sendall(frame(pkt))
            r = h.parse_packet(read_frame(s))
            tcp.append((time.monotonic() - t0, h.ts_to_float(r["xmt"]) - h.ts_to_float(r["rec"])))
    with h.UdpClient() as u:
        for _ in range(MAX_REQUESTS - 1):
            pkt, xmt = h.client_packet()
            t0 = time.monotonic()
            u.send(pkt, ("127.0.0.1", NTP_PORT))
            rd, _, _ = select.select([u.s], [], [], 2.0)
            h.check(rd, "no UDP answer")
            r = h.parse_packet(u.s.recvfrom(2048)[0])
            udp.append((time.monotonic() - t0, h.ts_to_float(r["xmt"]) - h.ts_to_float(r["rec"])))
    for name, v in (("TCP", tcp), ("UDP", udp)):
        rtt, hold = stats([x[0] for x in v]), stats([x[1] for x in v])
        h.log("%s: round trip median %.0f us (max %.0f), server hold median %.0f us (max %.0f)"
              % (name, rtt[0], rtt[1], hold[0], hold[1]))
        h.check(hold[1] < 0.01e6, "%s: server hold time up to %.0f us" % (name, hold[1]))


def part_bad_lengths(srv):
    before = tcp_stats(srv)
    for what, hdr in (("length 0", b"\x00\x00"), ("length 1025", b"\x04\x01")):
        with connect() as s:
            s.sendall(hdr + b"\x23" + b"\x00" * 47)
            took = closed_within(s, 2.0)
            h.check(took is not None and took < 1.0, "%s: connection not closed" % what)
    with connect() as s:  # a good request first, then a bad length
        exchange(s, "request before a bad length")
        s.sendall(b"\xff\xff")
        h.check(closed_within(s, 2.0) is not None, "length 65535: connection not closed")
    after = tcp_stats(srv)
    h.check(after["bad_length"] == before["bad_length"] + 3,
            "bad_length %d -> %d, want +3" % (before["bad_length"], after["bad_length"]))

    with connect() as s:  # the request limit
        for i in range(MAX_REQUESTS):
            exchange(s, "request %d of %d" % (i + 1, MAX_REQUESTS))
        h.check(closed_within(s, 2.0) is not None,
                "connection not closed after %d requests" % MAX_REQUESTS)
    h.check(tcp_stats(srv)["request_limit"] == before["request_limit"] + 1,
            "request_limit not counted")
    h.log("bad lengths close the connection; %d requests per connection" % MAX_REQUESTS)


def part_deadlines(srv):
    before = tcp_stats(srv)
    t0 = time.monotonic()
    idle = connect()
    partial = connect()
    late = connect()
    partial.sendall(frame(h.client_packet()[0])[:20])
    h.check(closed_within(partial, REQUEST_TIMEOUT + 1.0) is not None,
            "a half-sent request was not closed by its deadline")
    t_partial = time.monotonic() - t0
    time.sleep(max(0.0, t0 + IDLE_TIMEOUT - 1.0 - time.monotonic()))
    exchange(late, "request 1 s before the idle deadline")  # restarts its idle time
    h.check(closed_within(idle, 3.0) is not None,
            "an idle connection was not closed by the idle deadline")
    t_idle = time.monotonic() - t0
    exchange(late, "request after another connection's idle deadline")
    for c in (idle, partial, late):
        c.close()
    h.check(REQUEST_TIMEOUT - 0.1 <= t_partial <= REQUEST_TIMEOUT + 0.5 and
            IDLE_TIMEOUT - 0.1 <= t_idle <= IDLE_TIMEOUT + 0.5,
            "closed after %.2f s (half-sent request) and %.2f s (idle), want %.1f and %.1f"
            % (t_partial, t_idle, REQUEST_TIMEOUT, IDLE_TIMEOUT))
    after = tcp_stats(srv)
    h.check(after["idle_timeouts"] == before["idle_timeouts"] + 1 and
            after["request_timeouts"] == before["request_timeouts"] + 1,
            "deadline counters: %r -> %r" % (before, after))
    h.log("idle connection closed after %.2f s, half-sent request after %.2f s"
          % (t_idle, t_partial))


def part_restrict(srv):
    before_tcp, before = tcp_stats(srv), srv.server()
    for src in (IGNORED, NOSERVE):
        with connect(src) as s:
            s.sendall(frame(h.client_packet()[0]))
            h.check(closed_within(s, 2.0) is not None, "%s: connection not refused" % src)
    h.check(tcp_stats(srv)["refused"] == before_tcp["refused"] + 2, "restrict refusals not counted")
    # limited kod: the first request is answered, the next two come too soon
    with connect(LIMITED) as s:
        pkts = [h.client_packet() for _ in range(3)]
        t0 = time.time()
        s.sendall(b"".join(frame(p) for p, _ in pkts))
        check_response(read_frame(s), pkts[0][1], t0, time.time(), "first limited request")
        kisses = 0
        while True:
            r = read_frame(s, 1.0)
            if not isinstance(r, bytes):
                break
            h.check(h.is_kod(h.parse_packet(r)), "a too-early request got time: %r"
                    % h.parse_packet(r))
            kisses += 1
    with h.UdpClient(LIMITED) as u:  # the same limiter: UDP is refused too
        pkt, xmt = h.client_packet()
        u.send(pkt, ("127.0.0.1", NTP_PORT))
        got = [h.parse_packet(d) for d, _ in u.recv_all(0.5, 2.0)]
        h.check(all(h.is_kod(r) for r in got), "UDP right after TCP got time: %r" % got)
    after = srv.server()
    h.check(after["rate_limited"] == before["rate_limited"] + 3 and
            after["dropped"]["restrict_ignore"] == before["dropped"]["restrict_ignore"] and
            kisses >= 1, "rate limiting over TCP: %d kisses, %r -> %r" % (kisses, before, after))
    h.log("restrict: ignore/noserve refused at accept; limited kod: %d RATE kiss(es) over TCP"
          % kisses)


def part_prefix_cap(srv):
    before = tcp_stats(srv)
    conns = [connect("127.0.0.%d" % (10 + i)) for i in range(PER_PREFIX)]
    wait_open(srv, PER_PREFIX, "one /24 full")
    extra = connect("127.0.0.60")
    h.check(closed_within(extra, 2.0) is not None, "the 17th connection of a /24 was kept")
    with connect("127.0.1.1") as other:
        exchange(other, "another /24 while one is full")
    exchange(conns[0], "an admitted connection of the full /24")
    after = tcp_stats(srv)
    h.check(after["refused_prefix"] == before["refused_prefix"] + 1,
            "refused_prefix %d -> %d" % (before["refused_prefix"], after["refused_prefix"]))
    for c in conns + [extra]:
        c.close()
    wait_open(srv, 0, "closed")
    h.log("per-prefix cap: %d from 127.0.0.0/24, the next refused" % PER_PREFIX)


def part_total_cap(srv):
    before = tcp_stats(srv)
    conns = []
    for p in range(SLOTS // PER_PREFIX):
        for i in range(PER_PREFIX):
            conns.append(connect("127.%d.0.%d" % (p + 10, i + 1)))
    wait_open(srv, SLOTS, "every slot taken")
    with connect("127.200.0.1") as newcomer:
        exchange(newcomer, "a newcomer with every slot taken")
        h.check(closed_within(conns[0], 2.0) is not None, "the oldest connection was not evicted")
        for i in (1, len(conns) // 2, len(conns) - 1):
            exchange(conns[i], "connection %d after an eviction" % i)
    after = tcp_stats(srv)
    h.check(after["evicted"] == before["evicted"] + 1,
            "evicted %d -> %d" % (before["evicted"], after["evicted"]))
    for c in conns:
        c.close()
    wait_open(srv, 0, "closed")
    h.log("total cap: %d connections, a newcomer evicts the oldest" % SLOTS)


def part_ke_record(pki, srv):
    r = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert)
    h.check(r["handshake"] is True and r["alpn"] == h.KE_ALPN, "NTS-KE failed: %r" % r)
    recs = h.ke_parse(r["response"])
    tcp = [(c, b) for c, t, b in recs if t == REC_NTP_TCP_PORT]
    h.check(tcp == [(False, struct.pack("!H", NTP_PORT))],
            "NTS-KE response lacks the NTP TCP Port record for %d: %r" % (NTP_PORT, recs))
    h.check(recs[-1][1] == h.KE_EOM and len([1 for c, t, b in recs if t == h.KE_NEW_COOKIE]) == 8,
            "NTS-KE response: %r" % recs)
    h.log("NTS-KE response advertises NTP over TCP on port %d (record 0x%04X, not critical)"
          % (NTP_PORT, REC_NTP_TCP_PORT))


def kefetch(pki):
    return h.kefetch_keys(pki.ca_cert, KE_PORT, timeout=20)


def udp_answer(pkt, xmt):
    with h.UdpClient() as u:
        u.send(pkt, ("127.0.0.1", NTP_PORT))
        for d, _ in u.recv_all(0.5, 2.0):
            if d[24:32] == xmt:
                return d
    return None


def part_nts(pki, srv):
    if nr.cmac is None:
        h.log("python3 cryptography not installed: NTS over TCP not checked")
        return
    key, cookie = kefetch(pki)
    before = srv.ctl_json("nts")
    with connect() as s:
        for i in range(2):
            pkt, xmt = nr.nts_request(key, cookie)
            s.sendall(frame(pkt))
            resp = read_frame(s)
            h.check(isinstance(resp, bytes) and resp[24:32] == xmt and resp[0] & 7 == 4,
                    "NTS request %d over TCP: no response (%r)" % (i, resp))
            h.check(nr.find_ef(resp, nr.EF_AUTH) is not None and len(resp) == len(pkt),
                    "NTS response over TCP: %d bytes for a %d-byte request, Authenticator %r"
                    % (len(resp), len(pkt), nr.find_ef(resp, nr.EF_AUTH)))
        bad, xmt = nr.nts_request(key, cookie, flip_key_bit=True)
        s.sendall(frame(bad))
        h.check(read_frame(s, 1.0) is None, "a request with a wrong key was answered over TCP")
    pkt, xmt = nr.nts_request(key, cookie)
    u = udp_answer(pkt, xmt)
    h.check(u is not None and len(u) == len(resp) and nr.find_ef(u, nr.EF_AUTH) is not None,
            "UDP and TCP NTS responses differ in size: %r vs %d" % (u and len(u), len(resp)))
    after = srv.ctl_json("nts")
    h.check(after["server_recvs_good"] == before["server_recvs_good"] + 3 and
            after["server_recvs_bad"] == before["server_recvs_bad"] + 1,
            "NTS server counters: %r -> %r" % (before, after))
    h.log("NTS over TCP: %d-byte request, %d-byte authenticated response (as over UDP)"
          % (len(pkt), len(resp)))


def part_report(srv):
    s = srv.server()
    h.check_server_schema(s)
    t = s["tcp"]
    h.check(t["sockets"] == ["127.0.0.1:%d" % NTP_PORT], "tcp sockets: %r" % t)
    for k in ("accepted", "open", "refused", "refused_prefix", "evicted", "requests",
              "responses", "unanswered", "bad_length", "idle_timeouts", "request_timeouts",
              "request_limit", "write_errors"):
        h.check(isinstance(t.get(k), int), "tcp.%s missing: %r" % (k, t))
    h.check(t["requests"] == t["responses"] + t["unanswered"] and t["write_errors"] == 0,
            "tcp counters inconsistent: %r" % t)
    h.check(s["received"] >= t["requests"], "server received does not include TCP: %r" % s)
    text = srv.ctl("server")
    h.check("tcp sockets:      127.0.0.1:%d" % NTP_PORT in text and "tcp evicted" in text,
            "ntsctl server text lacks the TCP lines:\n%s" % text)
    h.log("ntsctl server tcp: %r" % t)


def main():
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    pki = h.make_test_pki()
    srv = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, tcp=True, extra=[
        "restrict %s ignore" % IGNORED, "restrict %s noserve" % NOSERVE,
        "restrict %s limited kod" % LIMITED])
    h.wait_until(lambda: "serving NTP over TCP on 127.0.0.1:%d" % NTP_PORT
                 in srv.proc.read_log(), 10, "the TCP listener")
    part_plain(srv)
    part_ke_record(pki, srv)
    part_nts(pki, srv)
    part_bad_lengths(srv)
    part_restrict(srv)
    part_deadlines(srv)
    part_prefix_cap(srv)
    part_total_cap(srv)
    part_report(srv)
    srv.proc.check_no_crash()


h.run(main)
