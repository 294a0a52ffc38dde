#!/usr/bin/python3
"""The clock discipline in the real daemon, on a virtual clock.

`ntsd -x --virtual-clock OFFSET,PPM` disciplines a virtual clock that starts
OFFSET seconds away from the system clock and runs PPM too fast; every
timestamp the daemon uses (kernel receive stamps included) is on that
virtual clock.  The system clock is never touched (-x, and no CAP_SYS_TIME).
Against chronyd (`local stratum 1`, polled every second) this passes when:
  * a 0.3 s start-up offset is stepped exactly once (and logged once),
    then the clock is slewed: within 90 s the virtual clock is within 1 ms of the system
    clock, and the frequency estimate is within 10 ppm of the -50 ppm
    correction the +50 ppm error needs;
  * a 2000 s offset is beyond the panic threshold: never stepped, logged.
Estimates only (`ntsd -x`, no virtual clock): against our own server whose
virtual clock runs 0.5 s ahead and 20 ppm fast (and is never disciplined:
it has no sources), `ntsctl sys` reports the untouched clock's error, 0.5 s
plus the drift, within 1 ms, and a frequency of +20 ppm within 2 ppm.
The poll follows the discipline: with `minpoll 0 maxpoll 1` and samples
that land where the discipline predicts them (loopback), the poll of that
client's source goes up to 1 within 60 s (it stays at minpoll unless the
discipline asks).
"""
import os
import re
import time
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT = 11123


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.Chronyd("chronyd", port=PORT, local_stratum=1, allow=["127.0.0.1"])
    h.wait_until(lambda: h.sntp_query("127.0.0.1", PORT, timeout=0.5), 10, "chronyd")

    ours = h.Ntsd("virtual", ["interface ignore all",
                              "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % PORT],
                  ready="sys", args=["--virtual-clock", "0.3,50"])
    sysv = ours.ctl_json("sys")
    h.check(sysv["clock"] == "virtual", "clock %r, expected virtual" % sysv["clock"])

    def converged():
        v = ours.ctl_json("sys")
        return v if abs(v["virtual_clock_error"]) < 1e-3 and \
            abs(v["frequency"] + 50) < 10 else None
    try:
        v = h.wait_until(converged, 90, "the virtual clock to converge", interval=1.0)
    except h.TestFailure:
        h.log("sys: %r" % ours.ctl_json("sys"))
        raise
    h.log("converged: error %.3g s, frequency %.3f ppm, offset estimate %.3g s" % (
        v["virtual_clock_error"], v["frequency"], v["offset"]))
    log = ours.proc.read_log()
    steps = re.findall(r"virtual clock stepped by ([-+0-9.]+) s", log)
    h.log("steps: %r" % steps)
    h.check(len(steps) == 1 and abs(float(steps[0]) + 0.3) < 0.01,
            "expected one start-up step of about -0.3 s, got %r" % steps)
    # The step is said once, by one line (not once by the discipline and
    # again by the clock backend).
    said = [l for l in log.splitlines() if "stepp" in l]
    h.check(len(said) == 1 and "start-up" in said[0], "step log lines: %r" % said)
    # It stays there.
    errs = []
    for _ in range(10):
        errs.append(abs(ours.ctl_json("sys")["virtual_clock_error"]))
        time.sleep(1)
    h.check(max(errs) < 1e-3, "virtual clock error after convergence: max %.3g s" % max(errs))
    ours.proc.stop()

    panic = h.Ntsd("panic", ["interface ignore all",
                             "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % PORT],
                   ready="sys", args=["--virtual-clock", "2000"])
    h.wait_until(lambda: "panic threshold" in panic.proc.read_log(), 20,
                 "the 2000 s offset to be refused")
    v = panic.ctl_json("sys")
    h.check(abs(v["virtual_clock_error"] - 2000) < 1, "a panic-sized offset was corrected: %r" % v)
    h.check("stepped" not in panic.proc.read_log(), "a panic-sized offset was stepped")
    panic.proc.stop()

    srv = h.Ntsd("fastserver", ["local stratum 1", "listen 127.0.0.1:%d" % (PORT + 1)],
                 args=["--virtual-clock", "0.5,20"])
    est = h.Ntsd("estimate", ["interface ignore all",
                              "server 127.0.0.1:%d iburst minpoll 0 maxpoll 1" % (PORT + 1)],
                 ready="sys")

    def estimated():
        v = est.ctl_json("sys")
        truth = srv.ctl_json("sys")["virtual_clock_error"]
        if v["synced"] and abs(v["offset"] - truth) < 1e-3 and abs(v["frequency"] - 20) < 2:
            return v, truth
        return None
    try:
        v, truth = h.wait_until(estimated, 60, "the -x estimate of a 0.5 s, 20 ppm error",
                                interval=1.0)
    except h.TestFailure:
        h.log("sys: %r" % est.ctl_json("sys"))
        raise
    h.log("-x estimate: offset %.6f s (server's clock %.6f s ahead), frequency %.3f ppm" % (
        v["offset"], truth, v["frequency"]))
    h.check("stepped" not in est.proc.read_log(), "ntsd -x stepped a clock")

    def raised():
        p = est.peers()
        return p if p and p[0]["poll"] == 1 else None
    try:
        p = h.wait_until(raised, 60, "the discipline to raise the poll to maxpoll", interval=1.0)
    except h.TestFailure:
        h.log("peers: %r" % est.peers())
        raise
    h.log("poll raised to %d (reach %o)" % (p[0]["poll"], p[0]["reach"]))


h.run(main)
