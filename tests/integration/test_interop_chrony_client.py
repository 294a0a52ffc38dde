#!/usr/bin/python3
"""Interop: chronyd (4.x, `-x`) as a client of our NTP server.

ntsd serves its own clock at `local stratum 1` on 127.0.0.1:PORT; chronyd
polls it every second.  Passes when chrony has selected our server ('*'),
reached it 8 times in a row (reach 377) with at least 8 samples, all of
chrony's packet tests pass, |offset| < 1 ms, and our server counters show
the responses.
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
    ours = h.Ntsd("ntsd-server", [
        "listen 127.0.0.1:%d" % PORT,
        "local stratum 1",
    ])
    s0 = ours.server()
    h.check_server_schema(s0)

    # A direct query first: a clear message if the server does not answer.
    r = h.wait_until(lambda: h.sntp_query("127.0.0.1", PORT, timeout=0.5), 10,
                     "a reply from ntsd on 127.0.0.1:%d" % PORT)
    h.log("direct query: stratum=%d leap=%d version=%d mode=%d offset=%.6f" % (
        r["stratum"], r["leap"], r["version"], r["mode"], r["offset"]))
    h.check(r["mode"] == 4 and r["version"] == 4, "bad reply mode/version: %r" % r)
    h.check(r["stratum"] == 1, "ntsd with `local stratum 1` serves stratum %d" % r["stratum"])
    h.check(r["leap"] != 3, "ntsd serves leap=3 (unsynchronised) with `local stratum 1`")

    chrony = h.Chronyd("chronyd-client",
                       servers=["127.0.0.1 port %d iburst minpoll 0 maxpoll 0" % PORT])

    def good():
        src = [s for s in chrony.sources() if s["name"] == "127.0.0.1"]
        st = [s for s in chrony.sourcestats() if s["name"] == "127.0.0.1"]
        if not src or not st:
            return None
        if src[0]["reach"] == 0o377 and st[0]["np"] >= 8 and src[0]["state"] == "*":
            return src[0], st[0]
        return None

    try:
        src, st = h.wait_until(good, 40, "chrony to select ntsd with reach 377 and 8 samples")
    except h.TestFailure:
        try:
            h.log("chrony sources: %r" % chrony.sources())
            h.log("chrony sourcestats: %r" % chrony.sourcestats())
            h.log("chrony ntpdata: %r" % chrony.ntpdata("127.0.0.1"))
        except Exception as e:
            h.log("(chronyc failed: %s)" % e)
        raise
    nd = chrony.ntpdata("127.0.0.1")
    h.log("chrony sources: %r" % src)
    h.log("chrony sourcestats: %r" % st)
    h.log("chrony ntpdata: %r" % {k: v for k, v in nd.items() if k != "raw"})

    h.check(nd["leap"] == "Normal", "chrony sees leap %r from ntsd" % nd["leap"])
    h.check(nd["stratum"] == 1, "chrony sees stratum %d from ntsd" % nd["stratum"])
    h.check(nd["mode"] == "Server" and nd["version"] == 4,
            "chrony sees mode %r version %d" % (nd["mode"], nd["version"]))
    h.check(set(nd["tests"]) == {"1"},
            "chrony's packet tests failed on ntsd's replies: %s" % nd["tests"])
    h.check(abs(src["measured"]) < MAX_OFFSET,
            "chrony's last measured offset %.6f s exceeds 1 ms" % src["measured"])
    h.check(abs(st["offset"]) < MAX_OFFSET,
            "chrony's estimated offset %.6f s exceeds 1 ms" % st["offset"])
    h.check(abs(nd["offset"]) < MAX_OFFSET,
            "chrony's ntpdata offset %.6f s exceeds 1 ms" % nd["offset"])
    h.check(0 <= nd["delay"] < 0.01, "chrony's peer delay %.6f s is implausible" % nd["delay"])

    s1 = ours.server()
    h.check_server_schema(s1)
    h.log("ntsd server counters: %r" % s1)
    answered = s1["responded"] - s0["responded"]
    h.check(answered >= nd["total_valid_rx"],
            "ntsd counted %d responses, chrony received %d valid ones" % (
                answered, nd["total_valid_rx"]))
    h.check(s1["received"] >= s1["responded"],
            "received (%d) < responded (%d)" % (s1["received"], s1["responded"]))
    h.check(s1["rate_limited"] == 0 and s1["kod_sent"] == 0,
            "unexpected rate limiting without `restrict limited`: %r" % s1)
    h.check(h.dropped_total(s1) == 0, "ntsd dropped packets from chrony: %r" % s1["dropped"])

    ours.proc.check_alive()
    chrony.proc.check_alive()


h.run(main)
