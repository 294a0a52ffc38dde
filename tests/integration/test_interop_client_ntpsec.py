#!/usr/bin/python3
"""Interop: our client of NTPsec 1.2 ntpd.

NTPsec serves its own clock in orphan mode at stratum 1 on the namespace's
127.0.0.1:123 (`disable ntp`, `tos orphan 1 orphanwait 0`); ntsd (client
only) polls it every second.  Passes when reach has its last 4 bits set,
the peer shows stratum 1 and |offset| < 1 ms, and NTPsec counted our
requests without rate limiting or KoD.
"""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

MAX_OFFSET = 1e-3


def ntpsec_sysstats(ntpsec):
    """{'packets received': n, ...} from `ntpq -c sysstats`, or None if ntpq
    cannot run (it needs Debian's python3-ntp)."""
    try:
        out = ntpsec.ntpq("-c", "sysstats")
    except Exception as e:
        h.log("(ntpq sysstats unavailable: %s)" % e)
        return None
    stats = {}
    for ln in out.splitlines():
        m = re.match(r"\s*([a-zA-Z][a-zA-Z0-9 ]*?):\s+(\d+)", ln)
        if m:
            stats[m.group(1)] = int(m.group(2))
    return stats


def main():
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    h.require_ours()
    ntpsec = h.NtpsecNtpd("ntpsec-server")
    before = ntpsec_sysstats(ntpsec)

    ours = h.Ntsd("ntsd-client", [
        "interface ignore all",
        "server 127.0.0.1 iburst minpoll 0 maxpoll 0",
    ], ready="peers")

    def reached():
        p = h.find_peer(ours.peers(), "127.0.0.1")
        if p is not None and (p["reach"] & 0o17) == 0o17:
            return p
        return None

    try:
        h.wait_until(reached, 15, "ntsd's peer 127.0.0.1 (NTPsec) to reach 017")
    except h.TestFailure:
        try:
            h.log("ntsctl peers --json: %r" % ours.peers())
        except Exception as e:
            h.log("(ntsctl failed: %s)" % e)
        raise
    h.wait_until(lambda: h.popcount(h.find_peer(ours.peers(), "127.0.0.1")["reach"]) >= 5,
                 10, "a fifth reply from NTPsec")
    peers = ours.peers()
    h.log("ntsctl peers --json: %r" % peers)
    h.check(len(peers) == 1, "expected exactly one peer, got %d" % len(peers))
    p = h.find_peer(peers, "127.0.0.1")
    h.check_peer_schema(p)
    h.check(p["nts"] is False, "plain NTP peer shows nts=true: %r" % p)
    h.check(p["stratum"] == 1, "peer stratum %r, NTPsec (orphan 1) serves 1" % p["stratum"])
    h.check(abs(p["offset"]) < MAX_OFFSET, "peer offset %.6f s exceeds 1 ms" % p["offset"])
    h.check(0 <= p["delay"] < 0.01, "peer delay %.6f s is implausible on loopback" % p["delay"])
    h.check(0 <= p["jitter"] < 0.01, "peer jitter %.6f s is implausible" % p["jitter"])

    h.check_peer_counters(p)

    table = ours.ctl("peers")
    h.log("ntsctl peers:\n" + table)
    h.check("127.0.0.1" in table, "ntsctl peers table does not list 127.0.0.1")

    after = ntpsec_sysstats(ntpsec)
    if before is not None and after is not None:
        h.log("NTPsec sysstats: %r" % after)
        got = after.get("packets received", 0) - before.get("packets received", 0)
        h.check(got >= 5, "NTPsec counted only %d packets from us" % got)
        for k in ("bad length or format", "authentication failed", "declined", "restricted",
                  "rate limited", "KoD responses"):
            h.check(after.get(k, 0) == before.get(k, 0),
                    "NTPsec counted %r: %d -> %d" % (k, before.get(k, 0), after.get(k, 0)))

    ours.proc.check_alive()
    ntpsec.proc.check_alive()


h.run(main)
