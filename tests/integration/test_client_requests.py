#!/usr/bin/python3
"""What our NTP client puts on the wire, and how it treats bad responses.

Python UDP "servers" on 127.0.0.1 record every request ntsd's client sends
(`server 127.0.0.1:PORT iburst minpoll 0 maxpoll 0`, `interface ignore all`)
and answer it.

Scenario 1, an honest server (mode 4, stratum 2, origin = the request's
transmit timestamp, receive/transmit = time.time()): every request is 48
bytes, first byte 0x23 (LI 0, VN 4, mode 3), bytes 1..39 zero (data
minimisation, RFC 9109 / draft-ietf-ntp-data-minimization), transmit
timestamps all different and random (at most one within a day of now),
every request from a fresh source port; the peer then shows reach > 0,
stratum 2, |offset| < 5 ms, and the client is synchronised to it.

Scenario 2, four misbehaving servers at once:
  bogus   wrong origin timestamp in every reply, every other one a DENY kiss
          (spoofed, so it must not stop the client): dropped.bogus counts
          them, reach stays 0, kod stays none, the client keeps polling;
  dup     first reply honest, then a byte-for-byte replay of it for every
          later request: dropped.duplicate counts them, accepted stays 1;
  rate    a RATE kiss (stratum 0, refid RATE) for every request:
          dropped.kod counts them, kod = RATE, reach 0;
  deny    two honest replies, then a DENY kiss: kod = DENY and no request
          at all in the 4 s after the kiss (it had been polling every 1 s).
"""
import os
import select
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

REFID_SERVER = bytes([127, 0, 0, 200])  # the fake server's upstream, reported as refid
DAY = 86400.0


def short(x):
    return int(x * 65536) & 0xFFFFFFFF


def response(req, stratum=2, refid=REFID_SERVER, leap=0, org=None):
    """A mode-4 reply to `req`, timestamps from time.time()."""
    req_xmt = struct.unpack("!Q", req[40:48])[0]
    now = time.time()
    ts = h.float_to_ts(now)
    b0 = (leap << 6) | (4 << 3) | 4
    return h.HDR.pack(b0, stratum, 0, -20, short(0.0005), short(0.001), refid,
                      h.float_to_ts(now - 1.0), req_xmt if org is None else org, ts, ts)


class FakeServer:
    """A UDP server on 127.0.0.1:<ephemeral> in a thread.  `answer(i, req)`
    returns the reply to the i-th request (0-based) or None."""

    def __init__(self, name, answer):
        self.name = name
        self.answer = answer
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.port = self.s.getsockname()[1]
        self.requests = []  # (monotonic time, (addr, port), data)
        self.replies = []   # (monotonic time, kind)
        self.errors = []
        self.lock = threading.Lock()
        self._stop = False
        self.t = threading.Thread(target=self._loop, daemon=True)
        self.t.start()

    def _loop(self):
        while not self._stop:
            rd, _, _ = select.select([self.s], [], [], 0.1)
            if not rd:
                continue
            try:
                data, peer = self.s.recvfrom(4096)
            except OSError:
                continue
            now = time.monotonic()
            with self.lock:
                i = len(self.requests)
                self.requests.append((now, peer, data))
            try:
                out = self.answer(i, data) if len(data) >= 48 else None
                if out is not None:
                    reply, kind = out
                    self.s.sendto(reply, peer)
                    with self.lock:
                        self.replies.append((time.monotonic(), kind))
            except Exception as e:  # reported by the test, not swallowed
                self.errors.append(repr(e))

    def n(self):
        with self.lock:
            return len(self.requests)

    def snapshot(self):
        with self.lock:
            return list(self.requests), list(self.replies)

    def close(self):
        self._stop = True
        self.t.join(timeout=2)
        self.s.close()
        h.check(not self.errors, "fake server %s failed: %s" % (self.name, self.errors[:3]))


def peer_of(d, srv):
    p = h.find_peer(d.peers(), "127.0.0.1:%d" % srv.port)
    h.check(p is not None, "no association for %s (127.0.0.1:%d)" % (srv.name, srv.port))
    return p


def scenario_honest():
    h.log("=== scenario 1: honest server, request contents ===")
    srv = FakeServer("honest", lambda i, req: (response(req), "good"))
    d = h.Ntsd("client", ["server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % srv.port,
                          "interface ignore all"])
    h.wait_until(lambda: srv.n() >= 6, 20, "6 requests from our client")
    reqs, _ = srv.snapshot()
    h.log("%d requests in %.1f s" % (len(reqs), reqs[-1][0] - reqs[0][0]))
    now = time.time()
    xmts, ports = [], []
    for i, (_, peer, data) in enumerate(reqs):
        h.check(len(data) == 48, "request %d is %d bytes, expected 48: %s" % (i, len(data),
                                                                             data.hex()))
        h.check(data[0] == 0x23, "request %d first byte 0x%02x, expected 0x23 (LI 0, VN 4, "
                "mode 3)" % (i, data[0]))
        nz = [j for j in range(1, 40) if data[j]]
        h.check(not nz, "request %d: bytes %s of 1..39 are not zero (data minimisation): %s" % (
            i, nz, data[:40].hex()))
        h.check(peer[0] == "127.0.0.1", "request %d from %r" % (i, peer))
        xmts.append(struct.unpack("!Q", data[40:48])[0])
        ports.append(peer[1])
    h.log("transmit timestamps: %s" % ", ".join("%016x" % x for x in xmts))
    h.log("source ports: %s" % ports)
    h.check(len(set(xmts)) == len(xmts), "repeated transmit timestamps: %s" % xmts)
    h.check(all(xmts), "a zero transmit timestamp")
    near = [x for x in xmts if abs(h.ts_to_float(x) - now) < DAY]
    h.check(len(near) <= 1, "%d of %d transmit timestamps are within a day of the current "
            "time: the client leaks its clock instead of sending a random nonce" % (
                len(near), len(xmts)))
    h.check(len(set(ports)) == len(ports), "source ports reused across requests: %s" % ports)

    def synced():
        p = peer_of(d, srv)
        return p if p["reach"] and p["stratum"] == 2 and p["offset"] is not None else None
    p = h.wait_until(synced, 10, "a sample from the honest server")
    h.log("peer: %r" % p)
    h.check_peer_schema(p)
    h.check(p["reach"] > 0, "reach %d" % p["reach"])
    h.check(p["stratum"] == 2, "peer stratum %d, expected 2" % p["stratum"])
    h.check(abs(p["offset"]) < 0.005, "peer offset %.6f s, expected |offset| < 5 ms (same "
            "clock)" % p["offset"])
    h.check(p.get("refid") in (None, "127.0.0.200"), "peer refid %r, expected 127.0.0.200" %
            p.get("refid"))
    if isinstance(p.get("dropped"), dict):
        h.check(not any(p["dropped"].values()), "honest replies dropped: %r" % p["dropped"])
    sysv = h.wait_until(lambda: (lambda s: s if s["synced"] else None)(d.ctl_json("sys")), 10,
                        "the client to synchronise to the honest server")
    h.log("sys: %r" % sysv)
    h.check(sysv["stratum"] == 3 and sysv["system_peer"] == "127.0.0.1:%d" % srv.port,
            "sys after syncing to a stratum-2 server: %r" % sysv)
    d.proc.stop()
    d.proc.check_no_crash()
    srv.close()


def scenario_bad_servers():
    h.log("=== scenario 2: bogus, duplicate and kiss-o'-death responses ===")

    def bogus(i, req):
        x = struct.unpack("!Q", req[40:48])[0]
        wrong = x ^ 0x00000000DEADBEEF
        if i % 2:
            return response(req, stratum=0, refid=b"DENY", leap=3, org=wrong), "deny-spoofed"
        return response(req, org=wrong), "bogus"

    first = {}

    def dup(i, req):
        if "r" not in first:
            first["r"] = response(req)
            return first["r"], "good"
        return first["r"], "replay"

    def rate(i, req):
        return response(req, stratum=0, refid=b"RATE", leap=3), "rate"

    def deny(i, req):
        if i < 2:
            return response(req), "good"
        if i == 2:
            return response(req, stratum=0, refid=b"DENY", leap=3), "deny"
        return None  # should never be asked again

    srvs = {n: FakeServer(n, f) for n, f in (("bogus", bogus), ("dup", dup), ("rate", rate),
                                              ("deny", deny))}
    t_start = time.monotonic()
    d = h.Ntsd("client2", ["server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % s.port
                           for s in srvs.values()] + ["interface ignore all"])

    def kiss_time():
        _, reps = srvs["deny"].snapshot()
        ks = [t for t, k in reps if k == "deny"]
        return ks[0] if ks else None
    t_kiss = h.wait_until(kiss_time, 15, "the DENY kiss to be sent")
    h.log("DENY kiss sent; watching the deny server for 4 s")
    # At a 1 s poll, 7 s give each of the other servers 6 or more requests.
    h.wait_until(lambda: time.monotonic() - t_kiss >= 4.0 and time.monotonic() - t_start >= 7.0,
                 15, "4 s after the kiss")
    for n, s in srvs.items():
        h.log("%s server: %d requests" % (n, s.n()))
    peers = {n: peer_of(d, s) for n, s in srvs.items()}
    for n, p in peers.items():
        h.log("%s: %r" % (n, {k: p.get(k) for k in ("reach", "stratum", "sent", "received",
                                                     "accepted", "dropped", "kod",
                                                     "selection")}))
    snaps = {n: s.snapshot() for n, s in srvs.items()}

    # deny: silent after the kiss
    reqs, reps = snaps["deny"]
    after = [t - t_kiss for t, _, _ in reqs if t > t_kiss]
    h.log("deny server: %d requests, %d after the kiss" % (len(reqs), len(after)))
    h.check(len(reqs) == 3, "deny server got %d requests, expected exactly 3 (2 answered, the "
            "3rd kissed); requests %.1f s after the kiss" % (len(reqs), after[0] if after
                                                             else 0))
    p = peers["deny"]
    h.check(p.get("kod") == "DENY", "deny peer kod %r, expected DENY" % p.get("kod"))
    h.check(p["dropped"]["kod"] == 1, "deny peer dropped.kod %r, expected 1" %
            p["dropped"]["kod"])
    h.check(p.get("accepted") == 2, "deny peer accepted %r, expected 2" % p.get("accepted"))
    h.check(p.get("selection") in ("unusable", "noselect"),
            "denied peer selection %r" % p.get("selection"))

    # bogus: every reply dropped, spoofed kisses ignored, polling goes on
    reqs, reps = snaps["bogus"]
    p = peers["bogus"]
    n_bogus = len(reps)
    h.check(len(reqs) >= 5, "only %d requests to the bogus server in 7 s at a 1 s poll (a "
            "spoofed DENY kiss, wrong origin, taken?)" % len(reqs))
    h.check(p["reach"] == 0, "bogus-only server has reach %o" % p["reach"])
    h.check(p.get("accepted") == 0, "bogus replies accepted: %r" % p.get("accepted"))
    h.check(p["dropped"]["bogus"] >= n_bogus - 1 and p["dropped"]["bogus"] >= 4,
            "dropped.bogus %d for %d bogus replies" % (p["dropped"]["bogus"], n_bogus))
    h.check(p["dropped"]["kod"] == 0 and p.get("kod") == "none",
            "a kiss with a wrong origin timestamp was taken: dropped.kod %d kod %r" % (
                p["dropped"]["kod"], p.get("kod")))
    h.check(p["offset"] is None and p["stratum"] == 16,
            "bogus server produced a sample: %r" % p)
    h.check(reqs[-1][0] > time.monotonic() - 2.5,
            "the client stopped polling the bogus server (spoofed DENY taken?)")

    # dup: replays dropped as duplicates
    reqs, reps = snaps["dup"]
    p = peers["dup"]
    h.check(len(reqs) >= 5, "only %d requests to the dup server in 7 s at a 1 s poll" %
            len(reqs))
    n_replay = sum(1 for _, k in reps if k == "replay")
    h.check(p.get("accepted") == 1, "dup server: accepted %r, expected 1 (replays must not "
            "count)" % p.get("accepted"))
    h.check(p["dropped"]["duplicate"] >= n_replay - 1 and p["dropped"]["duplicate"] >= 3,
            "dropped.duplicate %d for %d replays" % (p["dropped"]["duplicate"], n_replay))
    h.check(p["dropped"]["bogus"] == 0, "replays counted as bogus, not duplicate: %r" %
            p["dropped"])
    h.check(p["reach"] & 1 == 0, "reach %o: the last replay counted as a reply" % p["reach"])

    # rate: kisses counted, nothing accepted, not denied
    reqs, reps = snaps["rate"]
    p = peers["rate"]
    h.check(len(reqs) >= 5, "only %d requests to the rate server in 7 s at a 1 s poll (RATE "
            "must not stop the client; maxpoll 0)" % len(reqs))
    h.check(p.get("kod") == "RATE", "rate peer kod %r, expected RATE" % p.get("kod"))
    h.check(p["dropped"]["kod"] >= len(reps) - 1 and p["dropped"]["kod"] >= 4,
            "dropped.kod %d for %d RATE kisses" % (p["dropped"]["kod"], len(reps)))
    h.check(p["reach"] == 0 and p.get("accepted") == 0, "RATE kisses counted as samples: %r" %
            p)
    h.check(reqs[-1][0] > time.monotonic() - 2.5,
            "the client stopped polling after RATE kisses (maxpoll 0)")

    sysv = d.ctl_json("sys")
    h.log("sys: %r" % sysv)
    h.check(sysv["system_peer"] in ("", "127.0.0.1:%d" % srvs["dup"].port),
            "system peer %r is a server whose replies were all dropped" % sysv["system_peer"])
    d.proc.check_alive()
    for s in srvs.values():
        s.close()


def main():
    h.require_ours()
    scenario_honest()
    scenario_bad_servers()


h.run(main)
