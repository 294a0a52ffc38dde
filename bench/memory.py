#!/usr/bin/env python3
"""ntsd vs chronyd memory as NTS servers (part of `make bench`; not a test).
docs/benchmarks.md, "Memory", records what it printed.

Usage: python3 bench/memory.py [BUILD_DIR] [--base OTHER_BUILD_DIR] [--idle S]

The same servers as bench/throughput.py (its namespaces, certificate and
configurations: NTS-KE and NTP on one address, `local stratum 1`, clock
control off), started side by side; after one NTS-KE with each and --idle
seconds, every process of each server is read from /proc: VmRSS, its file
and anonymous parts (the anonymous part is the memory the process alone
adds), Uss (pages no other process maps) and Pss (shared pages divided
among the processes that map them) and the mappings that weigh most.  Uss
and Pss depend on what else runs (a library's code pages count as private
when no other process maps them, and --base shares them): compare them
between servers run alone.  --base adds a second ntsd
from another build (before and after in one run).

Safety as in throughput.py: daemons under setpriv without CAP_SYS_TIME,
clock control off, in namespaces made here and removed at the end; every
wait bounded.  Needs root.
"""

import argparse
import collections
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import runner  # noqa: E402
import soak  # noqa: E402
import throughput as tp  # noqa: E402
from runner import BenchError, log  # noqa: E402


def status_kb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            k, _, v = ln.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
    out["Uss"] = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for ln in f:
            if ln.startswith("Pss:"):
                out["Pss"] = int(ln.split()[1])
            elif ln.startswith(("Private_Clean:", "Private_Dirty:")):
                out["Uss"] += int(ln.split()[1])
    return out


def top_mappings(pid, n=6):
    """Resident kB per mapped file (or [heap], [anon]), largest first."""
    rss = collections.Counter()
    name = "[anon]"
    with open("/proc/%d/smaps" % pid) as f:
        for ln in f:
            head = ln.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                name = os.path.basename(head[5]) if len(head) > 5 else "[anon]"
            elif head and head[0] == "Rss:":
                rss[name] += int(head[1])
    return rss.most_common(n)


def measure(s):
    procs = []
    for pid in soak.proc_tree(s.pid):
        try:
            procs.append((pid, status_kb(pid), top_mappings(pid)))
        except OSError:
            pass
    return procs


def report(servers, res):
    print("\n| server | process | VmRSS | file | anon | Uss | Pss |")
    print("|---|---|---|---|---|---|---|")
    for s in servers:
        for i, (pid, st, _) in enumerate(res[s.name]):
            print("| %s | %s | %.1f MB | %.1f | %.1f | %.1f | %.1f |" % (
                s.name, "main" if i == 0 else "child %d" % i, st["VmRSS"] / 1024.0,
                st["RssFile"] / 1024.0, st["RssAnon"] / 1024.0, st["Uss"] / 1024.0,
                st["Pss"] / 1024.0))
        tot = {k: sum(st[k] for _, st, _ in res[s.name]) / 1024.0
               for k in ("VmRSS", "RssFile", "RssAnon", "Uss", "Pss")}
        print("| %s | all (sums) | %.1f MB | %.1f | %.1f | %.1f | %.1f |" % (
            s.name, tot["VmRSS"], tot["RssFile"], tot["RssAnon"], tot["Uss"], tot["Pss"]))
    for s in servers:
        pid, _, top = res[s.name][0]
        print("%s main, largest mappings (kB): %s" % (
            s.name, ", ".join("%s %d" % (k, v) for k, v in top)))


def run(a, tmp):
    ns = {r: "%s%d-%s" % (tp.NS_PREFIX, os.getpid(), r) for r in ("srv", "gen")}
    tp.netns_setup(ns)
    pki = tp.make_pki(tmp)
    servers = [tp.start_ntsd(a, ns["srv"], tmp, pki), tp.start_chronyd(a, ns["srv"], tmp, pki)]
    if a.base:
        servers.append(tp.start_ntsd(a, ns["srv"], tmp, pki, "ntsd-base",
                                     os.path.join(a.base, "ntsd"), tp.BASE_ADDR))
    procs = [s.proc for s in servers]
    for s in servers:
        soak.wait_for(s.ready, 15, s.name, procs)
    for s in servers:  # one NTS-KE each: the KE side has run once
        tp.ke_export(a, ns["srv"], s.addr, pki["ca.pem"])
    time.sleep(a.idle)
    return servers, {s.name: measure(s) for s in servers}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--base", metavar="BUILD_DIR")
    ap.add_argument("--idle", type=float, default=10.0)
    a = ap.parse_args(argv)
    build = a.build if os.path.isabs(a.build) else os.path.join(SOURCE_DIR, a.build)
    a.ntsd, a.ntsctl = os.path.join(build, "ntsd"), os.path.join(build, "ntsctl")
    if a.base and not os.path.isabs(a.base):
        a.base = os.path.join(SOURCE_DIR, a.base)
    a.threads, a.rt = 1, 0
    if os.geteuid() != 0:
        print("memory: needs root (network namespaces)", file=sys.stderr)
        return 2
    for path in (a.ntsd, a.ntsctl, runner.CHRONYD):
        if not os.access(path, os.X_OK):
            print("memory: %s not found" % path, file=sys.stderr)
            return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, tp._on_signal)
    tp.cleanup_stale()
    runner.check_clock_protection()
    tmp = tempfile.mkdtemp(prefix="ntsd-mem-")
    os.chmod(tmp, 0o700)
    runner.STATE["tmp"] = tmp
    try:
        servers, res = run(a, tmp)
    except BenchError as e:
        print("memory: FAILED: %s" % e, flush=True)
        runner.cleanup()
        return 2
    runner.cleanup()
    report(servers, res)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
