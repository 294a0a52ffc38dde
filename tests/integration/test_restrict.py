#!/usr/bin/python3
"""Server access control, rate limiting and malformed input.

Raw NTP packets are sent from Python, from chosen loopback source addresses
(any 127.0.0.0/8 address works on lo inside the test's namespace), to ntsd:

  server A  restrict default kod limited       127.0.0.5: burst -> RATE kiss
            restrict 127.0.0.2 ignore          no reply
            restrict 127.0.0.3 mask 255.255.255.255 noserve   no reply
            restrict 127.0.0.4                 unrestricted: every request answered
            restrict 127.0.0.10 limited        burst -> limited, but no kiss
  server B  restrict default ignore            127.0.0.1: no reply
            restrict 127.0.0.9                 answered

Malformed packets (empty, short, version 0/5/7, modes other than 3, bad
extension fields, a legacy MAC, garbage, oversize) get no reply, are counted,
and the daemon keeps serving.
"""
import os
import random
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT_A = 11123
PORT_B = 11124
BURST = 10
QUIET = 0.4  # s without a datagram = no (more) reply


def acl_and_drops(s):
    """Every packet dropped for any reason: `dropped` plus separate ACL
    counters if the daemon reports them outside `dropped`."""
    n = h.dropped_total(s)
    for k, v in s.items():
        if isinstance(v, int) and (k.startswith("acl_") or k in ("ignored", "restricted",
                                                                  "noserve", "denied")):
            n += v
    return n


def exchange(src, dst, packets, quiet=QUIET):
    """Sends packets back to back from src; returns the parsed replies."""
    with h.UdpClient(src) as c:
        for p in packets:
            c.send(p, dst)
        got = c.recv_all(quiet, max_time=5.0)
    return [h.parse_packet(d) for d, _ in got]


def check_good_reply(r, xmt, version, what):
    h.check(r is not None, "%s: no reply" % what)
    h.check(r["len"] == 48, "%s: reply of %d bytes, expected 48" % (what, r["len"]))
    h.check(r["mode"] == 4, "%s: reply mode %d" % (what, r["mode"]))
    h.check(r["version"] == version, "%s: reply version %d, request had %d" % (
        what, r["version"], version))
    h.check(r["org"] == xmt, "%s: origin timestamp does not echo the request" % what)
    h.check(r["stratum"] == 1, "%s: stratum %d, expected 1" % (what, r["stratum"]))
    h.check(r["leap"] != 3, "%s: leap=3 (unsynchronised)" % what)
    now = time.time()
    for k in ("rec", "xmt"):
        t = h.ts_to_float(r[k])
        h.check(abs(t - now) < 2.0, "%s: %s timestamp %.3f is %.3f s off" % (
            what, k, t, t - now))
    h.check(r["xmt"] >= r["rec"], "%s: transmit timestamp before receive timestamp" % what)


def section(name):
    h.log("=== %s ===" % name)


def malformed_packets():
    """[(description, datagram, drop reason in `ntsctl server --json`)]."""
    hdr, _ = h.client_packet(version=4)
    rnd = random.Random(1234)
    pk = []

    def with_mode(version, mode):
        p, _ = h.client_packet(version=version, mode=mode)
        return p

    def rand(n):
        return bytes(rnd.getrandbits(8) for _ in range(n))

    pk.append(("empty datagram", b"", "short"))
    pk.append(("1 byte", b"\x23", "short"))
    pk.append(("47-byte header", hdr[:47], "short"))
    pk.append(("version 0", with_mode(0, 3), "version"))
    pk.append(("version 5", with_mode(5, 3), "version"))
    pk.append(("version 7", with_mode(7, 3), "version"))
    for mode in (0, 1, 2, 4, 5, 6, 7):
        pk.append(("v4 mode %d" % mode, with_mode(4, mode), "mode"))
    # ntpq READVAR (mode 6 control message, 12-byte header)
    pk.append(("mode 6 control query", b"\x16\x02\x00\x01" + b"\x00" * 8, "short"))
    # ntpdc MON_GETLIST_1 (NTPv2 mode 7, the old amplification vector)
    pk.append(("mode 7 monlist", b"\x17\x00\x03\x2a" + b"\x00" * 188, "mode"))
    # Extension fields: longer than the packet, length not a multiple of 4,
    # shorter than its own header.
    pk.append(("EF length past the end",
               hdr + struct.pack("!HH", 0x0104, 0x0100) + b"\0" * 12, "malformed"))
    pk.append(("EF length not a multiple of 4",
               hdr + struct.pack("!HH", 0x0104, 0x0013) + b"\0" * 28, "malformed"))
    pk.append(("EF length 2", hdr + struct.pack("!HH", 0x0104, 0x0002) + b"\0" * 28,
               "malformed"))
    # Legacy symmetric-key MACs (we have no keys): key id + MD5 / SHA-1, and
    # a crypto-NAK (bare key id 0).
    pk.append(("MD5 MAC", hdr + struct.pack("!I", 1) + rand(16), "auth"))
    pk.append(("SHA-1 MAC", hdr + struct.pack("!I", 1) + rand(20), "auth"))
    pk.append(("crypto-NAK", hdr + b"\0\0\0\0", "auth"))
    for n in (48, 68, 200):
        g = bytearray(rand(n))
        g[0] = 0xFF  # LI 3, version 7, mode 7: never a valid request
        pk.append(("garbage %d bytes" % n, bytes(g), "version"))
    g = bytearray(rand(3000))
    g[0] = 0x03  # version 0; bigger than any request we accept (truncated)
    pk.append(("oversize garbage 3000 bytes", bytes(g), "malformed"))
    return pk


def main():
    h.require_ours()
    a = h.Ntsd("ntsd-a", [
        "listen 127.0.0.1:%d" % PORT_A,
        "local stratum 1",
        "restrict default kod limited",
        "restrict 127.0.0.2 ignore",
        "restrict 127.0.0.3 mask 255.255.255.255 noserve",
        "restrict 127.0.0.4",
        "restrict 127.0.0.10 limited",
    ])
    dst = ("127.0.0.1", PORT_A)
    s = a.server()
    h.check_server_schema(s)
    h.log("initial counters: %r" % s)

    # ---- unrestricted client: every version answered, no rate limit ----
    section("unrestricted 127.0.0.4")
    for v in (4, 3, 2, 1):
        pkt, xmt = h.client_packet(version=v)
        rs = exchange("127.0.0.4", dst, [pkt])
        h.check(len(rs) == 1, "NTPv%d request from 127.0.0.4: %d replies" % (v, len(rs)))
        check_good_reply(rs[0], xmt, v, "NTPv%d request from 127.0.0.4" % v)
    sent = []
    for _ in range(BURST):
        sent.append(h.client_packet()[0])
    rs = exchange("127.0.0.4", dst, sent)
    good = [r for r in rs if r and not h.is_kod(r) and r["stratum"] == 1]
    h.check(len(good) == BURST and len(rs) == BURST,
            "burst of %d from unrestricted 127.0.0.4: %d replies, %d good" % (
                BURST, len(rs), len(good)))
    s1 = a.server()
    h.log("counters: %r" % s1)
    h.check(s1["responded"] - s["responded"] == BURST + 4,
            "responded went %d -> %d, expected +%d" % (s["responded"], s1["responded"], BURST + 4))
    h.check(s1["rate_limited"] == s["rate_limited"], "unrestricted client was rate limited")

    # ---- default: kod limited ----
    section("restrict default kod limited, from 127.0.0.5")
    s0 = s1
    sent, xmts = [], set()
    for _ in range(BURST):
        p, x = h.client_packet()
        sent.append(p)
        xmts.add(x)
    rs = exchange("127.0.0.5", dst, sent)
    h.check(all(r is not None for r in rs), "short reply in burst: %r" % rs)
    kods = [r for r in rs if h.is_kod(r)]
    normal = [r for r in rs if not h.is_kod(r)]
    h.log("burst of %d: %d normal replies, %d RATE kisses" % (BURST, len(normal), len(kods)))
    h.check(len(normal) >= 1, "first request of a new client was not answered")
    h.check(len(normal) < BURST, "no request of a %d-packet burst was rate limited" % BURST)
    h.check(len(kods) >= 1, "rate-limited client with `kod` got no RATE kiss")
    for r in normal:
        h.check(r["org"] in xmts and r["stratum"] == 1 and r["mode"] == 4,
                "bad normal reply in burst: %r" % r)
    for r in kods:
        h.check(r["mode"] == 4 and r["stratum"] == 0 and r["refid"] == b"RATE",
                "bad KoD: %r" % r)
        h.check(r["leap"] == 3, "KoD leap %d, expected 3 (alarm)" % r["leap"])
        h.check(r["org"] in xmts, "KoD origin timestamp does not echo a request")
    s1 = a.server()
    h.log("counters: %r" % s1)
    limited = BURST - len(normal)
    h.check(s1["received"] - s0["received"] == BURST,
            "received +%d, expected +%d" % (s1["received"] - s0["received"], BURST))
    h.check(s1["responded"] - s0["responded"] == len(normal),
            "responded +%d, %d normal replies seen" % (s1["responded"] - s0["responded"],
                                                       len(normal)))
    h.check(s1["rate_limited"] - s0["rate_limited"] == limited,
            "rate_limited +%d, expected +%d" % (s1["rate_limited"] - s0["rate_limited"],
                                                limited))
    h.check(s1["kod_sent"] - s0["kod_sent"] == len(kods),
            "kod_sent +%d, %d kisses seen" % (s1["kod_sent"] - s0["kod_sent"], len(kods)))

    # ---- limited without kod ----
    section("restrict 127.0.0.10 limited (no kod)")
    s0 = s1
    sent = [h.client_packet()[0] for _ in range(BURST)]
    rs = exchange("127.0.0.10", dst, sent)
    kods = [r for r in rs if h.is_kod(r)]
    h.log("burst of %d: %d replies, %d kisses" % (BURST, len(rs), len(kods)))
    h.check(not kods, "client limited without `kod` got %d kisses" % len(kods))
    h.check(1 <= len(rs) < BURST, "limited client got %d of %d answered" % (len(rs), BURST))
    s1 = a.server()
    h.check(s1["kod_sent"] == s0["kod_sent"], "kod_sent moved without `kod`")
    h.check(s1["rate_limited"] - s0["rate_limited"] == BURST - len(rs),
            "rate_limited +%d, expected +%d" % (s1["rate_limited"] - s0["rate_limited"],
                                                BURST - len(rs)))

    # ---- ignore / noserve ----
    for src, what in (("127.0.0.2", "ignore"), ("127.0.0.3", "noserve")):
        section("restrict %s %s" % (src, what))
        s0 = a.server()
        rs = exchange(src, dst, [h.client_packet()[0] for _ in range(3)], quiet=1.0)
        h.check(not rs, "client under `restrict %s` got %d replies" % (what, len(rs)))
        s1 = a.server()
        h.log("counters: %r" % s1)
        h.check(s1["received"] - s0["received"] == 3,
                "received +%d for 3 `%s` packets" % (s1["received"] - s0["received"], what))
        h.check(s1["responded"] == s0["responded"], "responded moved for `%s`" % what)
        h.check(acl_and_drops(s1) - acl_and_drops(s0) >= 3,
                "3 packets refused by `%s` not counted as dropped: %r -> %r" % (what, s0, s1))
        key = "restrict_" + what
        if key in s1["dropped"]:
            got = s1["dropped"][key] - s0["dropped"].get(key, 0)
            h.check(got == 3, "dropped[%r] +%d for 3 packets" % (key, got))

    # ---- malformed ----
    section("malformed packets from 127.0.0.4")
    s0 = a.server()
    bad = malformed_packets()
    with h.UdpClient("127.0.0.4") as c:
        for what, pkt, _ in bad:
            c.send(pkt, dst)
            got = c.recv_all(0.25, max_time=2.0)
            h.check(not got, "ntsd replied to a malformed packet (%s): %r" % (
                what, [h.parse_packet(d) for d, _ in got]))
            a.proc.check_alive()
    s1 = a.server()
    h.log("counters: %r" % s1)
    h.check(s1["received"] - s0["received"] == len(bad),
            "received +%d for %d malformed packets" % (s1["received"] - s0["received"],
                                                       len(bad)))
    h.check(s1["responded"] == s0["responded"], "responded moved for malformed packets")
    h.check(h.dropped_total(s1) - h.dropped_total(s0) == len(bad),
            "dropped +%d for %d malformed packets: %r -> %r" % (
                h.dropped_total(s1) - h.dropped_total(s0), len(bad), s0["dropped"],
                s1["dropped"]))
    want = {}
    for _, _, reason in bad:
        want[reason] = want.get(reason, 0) + 1
    for reason, n in sorted(want.items()):
        got = s1["dropped"].get(reason, 0) - s0["dropped"].get(reason, 0)
        h.check(got == n, "dropped[%r] +%d, expected +%d (%s)" % (
            reason, got, n, ", ".join(w for w, _, r in bad if r == reason)))
    # Still serving.
    pkt, xmt = h.client_packet()
    rs = exchange("127.0.0.4", dst, [pkt])
    h.check(len(rs) == 1, "no reply to a good request after the malformed ones")
    check_good_reply(rs[0], xmt, 4, "request after malformed packets")

    # ---- restrict default ignore ----
    section("server B: restrict default ignore, restrict 127.0.0.9")
    b = h.Ntsd("ntsd-b", [
        "listen 127.0.0.1:%d" % PORT_B,
        "local stratum 1",
        "restrict default ignore",
        "restrict 127.0.0.9",
    ])
    dst_b = ("127.0.0.1", PORT_B)
    rs = exchange("127.0.0.1", dst_b, [h.client_packet()[0] for _ in range(3)], quiet=1.0)
    h.check(not rs, "`restrict default ignore`: 127.0.0.1 got %d replies" % len(rs))
    pkt, xmt = h.client_packet()
    rs = exchange("127.0.0.9", dst_b, [pkt])
    h.check(len(rs) == 1, "127.0.0.9 (exempt from `default ignore`) got %d replies" % len(rs))
    check_good_reply(rs[0], xmt, 4, "request from exempt 127.0.0.9")
    sb = b.server()
    h.log("server B counters: %r" % sb)
    h.check(sb["received"] == 4 and sb["responded"] == 1,
            "server B: received %d responded %d, expected 4 and 1" % (
                sb["received"], sb["responded"]))

    a.proc.check_alive()
    b.proc.check_alive()


h.run(main)
