#!/usr/bin/python3
"""Statistics files (docs/statistics.md) field by field against NTPsec 1.2's.

One server, ntsd (`local stratum 1`) on 10.89.0.1:123 in the test's
namespace; behind a veth link, a second namespace (10.89.0.2) holds two
clients of it with the same poll (minpoll = maxpoll = 1), both writing
loopstats, peerstats and rawstats with daily files:
  NTPsec ntpd (`disable ntp`; it binds *:123, hence its own namespace),
  ntsd -x as root, and a third client, ntsd -u ntsd-test with the system
  call filter on, whose statsdir belongs to that user (files are created
  after the privilege drop).
Then for each file: the same number of fields, each field the same shape
(a regular expression per field: digits, decimals, hex), and the values that
must agree do: the day (MJD and the file's YYYYMMDD), the addresses, the
server's stratum, poll, precision and refid, offsets within 1 ms, delays
below 10 ms, the four rawstats timestamps in order and at the record's
time, the peer status word once the server is the system peer, and NAME
a hard link to NAME.YYYYMMDD.
"""
import datetime
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)
import proxynet as pn  # noqa: E402

SERVER, CLIENT = "10.89.0.1", "10.89.0.2"
USER = "ntsd-test"
FILES = ("loopstats", "peerstats", "rawstats")
RUN_S = 40        # polls every 2 s: about 20 records each
MAX_OFFSET = 1e-3
MAX_DELAY = 0.01

D = r"\d+"
SD = r"-?\d+"
MJD = r"\d{5}"
SOD = r"\d{1,5}\.\d{3}"
IP4 = r"\d+\.\d+\.\d+\.\d+"
TS = r"\d{10}\.\d{9}"


def dec(n, signed=True):
    return (r"-?" if signed else "") + r"\d+\.\d{%d}" % n


# One regular expression per field, as NTPsec 1.2.2 writes them.
SHAPES = {
    "loopstats": [MJD, SOD, dec(9), dec(6), dec(9, False), dec(6, False), SD],
    "peerstats": [MJD, SOD, IP4, r"[0-9a-f]{4}", dec(9), dec(9), dec(9, False), dec(9, False)],
    "rawstats": [MJD, SOD, IP4, IP4, TS, TS, TS, TS, r"[0-3]", r"[1-4]", r"[0-7]", D, SD, SD,
                 dec(6, False), dec(6, False), r"\S+", D, D, r"[0-9a-f]+"],
}


def topology():
    ns = pn.Netns("ntsdst%d" % os.getpid())
    pn._ip("link", "add", "stv0", "type", "veth", "peer", "name", "stv1", "netns", ns.name)
    pn._ip("addr", "add", SERVER + "/24", "dev", "stv0")
    pn._ip("link", "set", "stv0", "up")
    ns.ip("addr", "add", CLIENT + "/24", "dev", "stv1")
    ns.ip("link", "set", "stv1", "up")
    return ns


def stats_lines(d):
    return ["statsdir %s/" % d,
            "statistics loopstats peerstats rawstats",
            "filegen loopstats file loopstats type day link enable",
            "filegen peerstats file peerstats type day link enable",
            "filegen rawstats file rawstats type day link enable"]


def start_ntpsec(ns):
    d = os.path.join(h.tmpdir(), "ntpsec")
    os.makedirs(d, mode=0o700)
    conf = os.path.join(d, "ntp.conf")
    with open(conf, "w") as f:
        f.write("\n".join(["disable ntp"] + stats_lines(d) +
                          ["server %s iburst minpoll 1 maxpoll 1" % SERVER]) + "\n")
    p = h.start_process("ntpsec", ns.prefix() + [h.NTPSEC_NTPD, "-n", "-c", conf, "-l",
                                                 os.path.join(d, "ntpd.log"), "-p",
                                                 os.path.join(d, "ntpd.pid")])
    p.extra_logs.append(os.path.join(d, "ntpd.log"))
    return d


def start_ours(ns, name, user=None):
    d = os.path.join(h.tmpdir(), name + "-stats")
    os.makedirs(d, mode=0o755)
    args = []
    if user:
        uid, gid = h.ensure_user(user)
        os.chown(d, uid, gid)
        os.chmod(h.tmpdir(), 0o711)  # the user passes through to its statsdir only
        args = ["-u", user]
    o = h.Ntsd(name, ["interface ignore all"] + stats_lines(d) +
               ["server %s iburst minpoll 1 maxpoll 1" % SERVER],
               ready="peers", wrap=ns.prefix(), args=args)
    return o, d


def read(d, name):
    """The lines of NAME.YYYYMMDD (today, UTC), checking NAME links to it."""
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")
    path = os.path.join(d, "%s.%s" % (name, day))
    h.check(os.path.isfile(path), "%s missing (in %s: %r)" % (path, d, sorted(os.listdir(d))))
    base = os.stat(os.path.join(d, name))
    st = os.stat(path)
    h.check(base.st_ino == st.st_ino and st.st_nlink == 2,
            "%s is not a hard link to %s" % (name, path))
    with open(path) as f:
        return [ln.split() for ln in f.read().splitlines()], st


def check_shapes(who, name, rows):
    shape = SHAPES[name]
    h.check(rows, "%s wrote no %s" % (who, name))
    for r in rows:
        h.check(len(r) == len(shape), "%s %s: %d fields, NTPsec writes %d: %r" % (
            who, name, len(r), len(shape), r))
        for i, (v, rx) in enumerate(zip(r, shape)):
            h.check(re.fullmatch(rx, v), "%s %s field %d %r does not match %s (line %r)" % (
                who, name, i + 1, v, rx, " ".join(r)))


def check_when(who, name, rows, t0, t1):
    """MJD and seconds of the day: within the run."""
    for r in rows:
        t = (int(r[0]) - 40587) * 86400 + float(r[1])
        h.check(t0 - 1 <= t <= t1 + 1, "%s %s: record time %.3f outside the run %.0f..%.0f" % (
            who, name, t, t0, t1))


def ntp_to_unix(s):
    return float(s) - 2208988800


def check_raw(who, rows):
    for r in rows:
        t = (int(r[0]) - 40587) * 86400 + float(r[1])
        t1, t2, t3, t4 = (ntp_to_unix(x) for x in r[4:8])
        h.check(r[2] == SERVER and r[3] == CLIENT, "%s rawstats addresses %r %r" % (
            who, r[2], r[3]))
        h.check(t1 <= t4 and t4 - t1 < MAX_DELAY, "%s rawstats t1 %r t4 %r" % (who, r[4], r[7]))
        h.check(t2 <= t3 and t3 - t2 < MAX_DELAY, "%s rawstats t2 %r t3 %r" % (who, r[5], r[6]))
        h.check(abs(t2 - t1) < MAX_DELAY, "%s rawstats t1 %r t2 %r" % (who, r[4], r[5]))
        h.check(abs(t4 - t) < 1.0, "%s rawstats t4 %.3f is not the record's time %.3f" % (
            who, t4, t))


def compare_raw(ref, ours):
    """Fields that come from the server's header are the same for both."""
    a, b = ref[-1], ours[-1]
    for i, what in ((8, "leap"), (9, "version"), (10, "mode"), (11, "stratum"),
                    (13, "precision"), (16, "refid"), (18, "dropped"), (19, "flash")):
        h.check(a[i] == b[i], "rawstats %s: NTPsec %r, ntsd %r" % (what, a[i], b[i]))
    h.check(b[11] == "1" and b[16] == ".LOCL.", "rawstats stratum/refid %r %r" % (b[11], b[16]))
    # The poll field is the server's, which echoes each client's own.
    h.check(a[12] == b[12] or b[12] == "1", "rawstats poll: NTPsec %r, ntsd %r" % (a[12], b[12]))


def check_peer(who, rows):
    for r in rows:
        h.check(r[2] == SERVER, "%s peerstats address %r" % (who, r[2]))
        h.check(abs(float(r[4])) < MAX_OFFSET, "%s peerstats offset %s" % (who, r[4]))
        h.check(0 <= float(r[5]) < MAX_DELAY, "%s peerstats delay %s" % (who, r[5]))
    # Reachable and configured from the first record; the system peer at the end.
    h.check(int(rows[0][3], 16) & 0x9000 == 0x9000, "%s peerstats first status %s" % (
        who, rows[0][3]))
    return rows[-1][3]


def check_loop(who, rows):
    for r in rows:
        h.check(abs(float(r[2])) < MAX_OFFSET, "%s loopstats offset %s" % (who, r[2]))
        h.check(abs(float(r[3])) <= 500, "%s loopstats frequency %s" % (who, r[3]))
        h.check(0 <= int(r[6]) <= 17, "%s loopstats time constant %s" % (who, r[6]))


def main():
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    h.require_ours()
    ns = topology()
    t0 = time.time()
    h.Ntsd("server", ["listen %s:123" % SERVER, "local stratum 1"])
    ours = {"ntsd": start_ours(ns, "ntsd"), "ntsd -u": start_ours(ns, "ntsd-user", user=USER)}
    dirs = {"NTPsec": start_ntpsec(ns)}
    dirs.update({who: d for who, (_, d) in ours.items()})
    time.sleep(RUN_S)
    counts = {who: o.ctl_json("sys") for who, (o, _) in ours.items()}
    t1 = time.time()
    h.check_all_alive()
    got = {}
    for who, d in dirs.items():
        for name in FILES:
            rows, st = read(d, name)
            h.log("%s %s: %d lines, last: %s" % (who, name, len(rows), " ".join(rows[-1])
                                                  if rows else "-"))
            check_shapes(who, name, rows)
            check_when(who, name, rows, t0, t1)
            got[(who, name)] = rows
            if who == "ntsd -u":
                uid, _ = h.ensure_user(USER)
                h.check(st.st_uid == uid, "%s: owned by uid %d, not %s" % (name, st.st_uid, USER))
    # Today's MJD in every file.
    mjd = {r[0] for rows in got.values() for r in rows}
    h.check(len(mjd) == 1, "the files' days differ: %r" % mjd)
    status = {}
    for who in dirs:
        check_raw(who, got[(who, "rawstats")])
        status[who] = check_peer(who, got[(who, "peerstats")])
        check_loop(who, got[(who, "loopstats")])
        if who != "NTPsec":
            compare_raw(got[("NTPsec", "rawstats")], got[(who, "rawstats")])
    for who, sysv in counts.items():
        h.check("stats_lines" in sysv, "ntsctl sys --json has no stats_lines")
        written = sum(len(got[(who, name)]) for name in FILES)
        h.check(sysv["stats_errors"] == 0 and 0 < sysv["stats_lines"] <= written,
                "%s: stats_lines %d, stats_errors %d, %d lines in the files" % (
                    who, sysv["stats_lines"], sysv["stats_errors"], written))
    h.log("last peer status words: %r" % status)
    h.check(status["ntsd"] == status["NTPsec"] == status["ntsd -u"],
            "peer status words differ: %r" % status)
    # The same number of records, give or take a poll's worth of start-up.
    n = {who: len(got[(who, "rawstats")]) for who in dirs}
    h.check(max(n.values()) - min(n.values()) <= 4, "rawstats line counts differ: %r" % n)


h.run(main)
