#!/usr/bin/python3
"""Statistics files of an NTS source (docs/statistics.md).

ntsd as NTS-KE and NTP server (`local stratum 1`) on 127.0.0.1, and an ntsd
client of it with `nts` and minpoll = maxpoll = 0, writing peerstats and
rawstats with `type none` and custom file names (`filegen ... file F`).
Passes when both files are F (no day suffix, no link), every record has
NTPsec's field count, the rawstats header fields are the server's (mode 4,
stratum 1, .LOCL.), and the peer status word shows NTS as NTPsec does:
authentication enabled and authentic (0x40 | 0x20) besides configured and
reachable, selected as the system peer at the end (f61a).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 15470
NTP_PORT = 15471


def main():
    h.require_ours()
    pki = h.make_test_pki()
    h.NtsKeServer("server", pki, KE_PORT, NTP_PORT)
    d = os.path.join(h.tmpdir(), "stats")
    os.makedirs(d)
    ours = h.Ntsd("client", ["interface ignore all", "statsdir %s" % d,
                             "nts ca %s" % pki.ca_cert,
                             "filegen peerstats file nts-peers type none enable",
                             "filegen rawstats file nts-raw type none nolink enable",
                             "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT],
                  ready="peers")

    def selected():
        p = ours.peers()
        return p and ours.ctl_json("sys")["synced"] and p[0]["reach"] & 0o17 == 0o17
    h.wait_until(selected, 20, "the NTS source to be reached and selected")
    time.sleep(3)  # a few records after the selection
    h.check_all_alive()
    names = sorted(os.listdir(d))
    h.log("statsdir: %r" % names)
    h.check(names == ["nts-peers", "nts-raw"], "expected only nts-peers and nts-raw: %r" % names)
    with open(os.path.join(d, "nts-peers")) as f:
        peers = [ln.split() for ln in f.read().splitlines()]
    with open(os.path.join(d, "nts-raw")) as f:
        raws = [ln.split() for ln in f.read().splitlines()]
    h.log("last peerstats: %s" % " ".join(peers[-1]))
    h.log("last rawstats: %s" % " ".join(raws[-1]))
    h.check(all(len(r) == 8 for r in peers), "peerstats field counts")
    h.check(all(len(r) == 20 for r in raws), "rawstats field counts")
    for r in raws:
        h.check(r[2] == "127.0.0.1" and r[3] == "127.0.0.1", "rawstats addresses %r" % r[2:4])
        h.check(r[10] == "4" and r[11] == "1" and r[16] == ".LOCL.",
                "rawstats mode/stratum/refid %r" % r)
    for r in peers:
        h.check(int(r[3], 16) & 0xf000 == 0xf000, "peerstats status %s lacks NTS bits" % r[3])
    h.check(peers[-1][3] == "f61a", "final status %s, expected f61a" % peers[-1][3])


h.run(main)
