#!/usr/bin/python3
"""Time to the first estimate: within 3 s of start, NTS-KE included.

Our NTS server (NTS-KE 127.0.0.1:15460, NTP 127.0.0.1:15123, `local stratum
1`) and two `ntsd -x` clients started one after the other with the default
poll and `iburst`: one NTS (`server 127.0.0.1:15460 nts iburst`), one plain
NTP.  From the moment each client process is started, `ntsctl sys --json`
is read every 50 ms; passes when `synced` is true, with a system peer and
|offset| < 1 ms, within 3.0 s for both (iburst requests go 2 s apart and a
source is selectable from its second sample, so ~2.1 s is expected).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_PORT = 15460, 15123
LIMIT = 3.0


def first_estimate(name, lines):
    t0 = time.monotonic()
    c = h.Ntsd(name, ["interface ignore all"] + lines, ready="sys")

    def synced():
        v = c.ctl_json("sys")
        return v if v and v["synced"] and v["system_peer"] else None
    v = h.wait_until(synced, 15, "%s to synchronise" % name, interval=0.05)
    took = time.monotonic() - t0
    h.log("%s: first estimate %.2f s after start: offset %.6f s, peer %s" % (
        name, took, v["offset"], v["system_peer"]))
    h.check(abs(v["offset"]) < 1e-3, "%s: offset %.6f s" % (name, v["offset"]))
    h.check(took <= LIMIT, "%s: first estimate after %.2f s (limit %.1f s)" % (name, took, LIMIT))
    c.proc.stop()
    return took


def main():
    h.require_ours()
    pki = h.make_test_pki()
    h.NtsKeServer("server", pki, KE_PORT, NTP_PORT)
    first_estimate("nts-client", ["nts ca %s" % pki.ca_cert,
                                  "server 127.0.0.1:%d nts iburst" % KE_PORT])
    first_estimate("ntp-client", ["server 127.0.0.1:%d iburst" % NTP_PORT])


h.run(main)
