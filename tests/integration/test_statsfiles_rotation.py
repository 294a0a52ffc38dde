#!/usr/bin/python3
"""Statistics files roll over at UTC midnight, on the daemon's clock.

Server and client both run on a virtual clock (`--virtual-clock OFFSET`)
that starts 6 s before the next UTC midnight, the same offset for both, so
they agree and nothing is stepped; the system clock is never touched.  The
client polls every second with loopstats, peerstats and rawstats on.  After
the virtual midnight: for each file NAME.DAY1 and NAME.DAY2 exist, every
record in each carries its file's day (MJD) and a time of day on the right
side of midnight, NAME is a hard link to NAME.DAY2, and no poll was lost at
the change (rawstats t4 has no gap over 3 s across the two files).

A second client of the same server has a statsdir that does not exist: it
keeps running and counts the lost records (`stats_errors` in `ntsctl sys`),
logs one warning per file, not one per record, and writes again once the
directory appears.
"""
import datetime
import math
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

FILES = ("loopstats", "peerstats", "rawstats")
BEFORE_S = 6.0   # the virtual clock starts this long before midnight
AFTER_S = 8.0    # and the test looks after this long past it
MJD_1970 = 40587


def day_name(unix_day):
    d = datetime.datetime.fromtimestamp(unix_day * 86400, datetime.timezone.utc)
    return d.strftime("%Y%m%d")


def rows(path):
    with open(path) as f:
        return [ln.split() for ln in f.read().splitlines()]


def check_lost(ours, missing):
    sysv = ours.ctl_json("sys")
    h.check("stats_lines" in sysv and "stats_errors" in sysv,
            "ntsctl sys --json has no stats_lines/stats_errors")
    h.log("statsdir missing: stats_lines %d, stats_errors %d" % (
        sysv["stats_lines"], sysv["stats_errors"]))
    h.check(sysv["stats_lines"] == 0 and sysv["stats_errors"] >= 10,
            "a missing statsdir: %r" % {k: sysv[k] for k in ("stats_lines", "stats_errors")})
    with open(ours.proc.log, errors="replace") as f:
        log = f.read()
    warnings = [ln for ln in log.splitlines() if "statistics: open" in ln and "warning" in ln]
    h.check(len(warnings) == 3, "expected one warning per file, got %d: %r" % (
        len(warnings), warnings[:5]))
    os.makedirs(missing)
    h.wait_until(lambda: ours.ctl_json("sys")["stats_lines"] >= 3, 10,
                 "records once the directory exists")
    with open(ours.proc.log, errors="replace") as f:
        h.check("again" in f.read(), "no notice that records are written again")


def main():
    h.require_ours()
    port = h.free_udp_port()
    now = time.time()
    midnight = math.ceil(now / 86400) * 86400
    if midnight - now < 60:
        midnight += 86400  # keep the real clock far from its own midnight
    offset = "%.3f" % (midnight - BEFORE_S - now)
    h.Ntsd("server", ["listen 127.0.0.1:%d" % port, "local stratum 1"],
           args=["--virtual-clock", offset])
    d = os.path.join(h.tmpdir(), "stats")
    os.makedirs(d)
    h.Ntsd("client", ["interface ignore all", "statsdir %s" % d,
                      "statistics loopstats peerstats rawstats",
                      "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % port],
           ready="peers", args=["--virtual-clock", offset])
    missing = os.path.join(h.tmpdir(), "missing")
    lost = h.Ntsd("lost", ["interface ignore all", "statsdir %s" % missing,
                           "statistics loopstats peerstats rawstats",
                           "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % port],
                  ready="peers", args=["--virtual-clock", offset])
    time.sleep(BEFORE_S + AFTER_S)
    h.check_all_alive()
    check_lost(lost, missing)
    day2 = int(midnight // 86400)
    day1 = day2 - 1
    names = sorted(os.listdir(d))
    h.log("statsdir: %r" % names)
    for name in FILES:
        p1 = os.path.join(d, "%s.%s" % (name, day_name(day1)))
        p2 = os.path.join(d, "%s.%s" % (name, day_name(day2)))
        h.check(os.path.isfile(p1) and os.path.isfile(p2),
                "%s: expected %s and %s, have %r" % (name, p1, p2, names))
        h.check(os.stat(os.path.join(d, name)).st_ino == os.stat(p2).st_ino,
                "%s is not a link to the new day's file" % name)
        r1, r2 = rows(p1), rows(p2)
        h.log("%s: %d records before midnight (last %s), %d after (first %s)" % (
            name, len(r1), " ".join(r1[-1][:2]) if r1 else "-", len(r2),
            " ".join(r2[0][:2]) if r2 else "-"))
        h.check(r1 and r2, "%s: a day's file is empty" % name)
        for r in r1:
            h.check(int(r[0]) == day1 + MJD_1970 and 86400 - BEFORE_S - 2 <= float(r[1]) < 86400,
                    "%s: record %r in the first day's file" % (name, r[:2]))
        for r in r2:
            h.check(int(r[0]) == day2 + MJD_1970 and float(r[1]) < AFTER_S + 2,
                    "%s: record %r in the second day's file" % (name, r[:2]))
        if name == "rawstats":
            t4 = [float(r[7]) for r in r1 + r2]
            gaps = [b - a for a, b in zip(t4, t4[1:])]
            h.check(max(gaps) < 3.0, "rawstats: a gap of %.1f s at midnight" % max(gaps))


h.run(main)
