#!/usr/bin/python3
"""Interop: our client of chronyd (4.x, `-x`, `local stratum 1`).

ntsd (client only: `interface ignore all`) polls chronyd on 127.0.0.1:PORT
every second.  Passes when the peer's reach has its last 4 bits set within
~15 s, the peer shows stratum 1, |offset| < 1 ms and a sane delay, and
chronyd counted our requests; and our requests were timed by the kernel's
transmit timestamps (`tx_timestamps` in `ntsctl sys`, one per request).
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT = 11123
MAX_OFFSET = 1e-3


def main():
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.require_ours()
    chrony = h.Chronyd("chronyd-server", port=PORT, local_stratum=1, allow=["127.0.0.1"])
    r = h.wait_until(lambda: h.sntp_query("127.0.0.1", PORT, timeout=0.5), 10,
                     "chronyd to answer on 127.0.0.1:%d" % PORT)
    h.check(r["stratum"] == 1, "chronyd serves stratum %d, expected 1" % r["stratum"])
    rx0 = chrony.serverstats()["ntp_rx"]

    ours = h.Ntsd("ntsd-client", [
        "interface ignore all",
        "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % PORT,
    ], ready="peers")

    def reached():
        p = h.find_peer(ours.peers(), "127.0.0.1")
        if p is not None and (p["reach"] & 0o17) == 0o17:
            return p
        return None

    try:
        p = h.wait_until(reached, 15, "ntsd's peer 127.0.0.1:%d to reach 017" % PORT)
    except h.TestFailure:
        try:
            h.log("ntsctl peers --json: %r" % ours.peers())
        except Exception as e:
            h.log("(ntsctl failed: %s)" % e)
        raise
    # One more poll so the filter holds a few samples.
    h.wait_until(lambda: h.popcount(h.find_peer(ours.peers(), "127.0.0.1")["reach"]) >= 5,
                 10, "a fifth reply from chronyd")
    peers = ours.peers()
    h.log("ntsctl peers --json: %r" % peers)
    h.check(len(peers) == 1, "expected exactly one peer, got %d" % len(peers))
    p = h.find_peer(peers, "127.0.0.1")
    h.check_peer_schema(p)
    h.check(p["nts"] is False, "plain NTP peer shows nts=true: %r" % p)
    h.check(p["stratum"] == 1, "peer stratum %r, chronyd serves 1" % p["stratum"])
    h.check(abs(p["offset"]) < MAX_OFFSET, "peer offset %.6f s exceeds 1 ms" % p["offset"])
    h.check(0 <= p["delay"] < 0.01, "peer delay %.6f s is implausible on loopback" % p["delay"])
    h.check(0 <= p["jitter"] < 0.01, "peer jitter %.6f s is implausible" % p["jitter"])
    h.check(isinstance(p["poll"], int) and p["poll"] <= 1,
            "peer poll %r, configured minpoll/maxpoll 0" % p["poll"])

    h.check_peer_counters(p)
    sysv = ours.ctl_json("sys")
    h.log("sys: offset %.3g s, tx_timestamps %d, sent %d" % (
        sysv["offset"], sysv["tx_timestamps"], p["sent"]))
    h.check(sysv["tx_timestamps"] >= p["accepted"],
            "only %d of %d requests had a kernel transmit timestamp" % (
                sysv["tx_timestamps"], p["accepted"]))

    table = ours.ctl("peers")
    h.log("ntsctl peers:\n" + table)
    h.check("127.0.0.1" in table, "ntsctl peers table does not list 127.0.0.1")

    st = chrony.serverstats()
    h.log("chronyd serverstats: %r" % st["raw"])
    h.check(st["ntp_rx"] - rx0 >= 5, "chronyd counted only %d NTP requests" % (st["ntp_rx"] - rx0))
    h.check(st["ntp_drop"] == 0, "chronyd dropped %d of our requests" % st["ntp_drop"])

    ours.proc.check_alive()
    chrony.proc.check_alive()


h.run(main)
