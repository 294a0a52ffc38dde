#!/usr/bin/env python3
"""NTS-KE throughput of ntsd and chronyd on one core, and NTP response
time under a KE flood (part of `make bench`; not a test).
docs/benchmarks.md, "NTS-KE throughput", records what it printed.

Usage: scripts/bench [BUILD_DIR] ... (KEBENCH=only runs only this part)
       python3 bench/kebench.py [BUILD_DIR] [--seconds S] [--conns C]
                                [--rounds N] [--servers ntsd,chronyd]
                                [--verify pin|ca] [--probe-rate R]
                                [--rt N] [--base OTHER_BUILD_DIR]
                                [--ntsprocesses N]
                                [--perf SECONDS] [--keep]

The namespaces and addresses of bench/throughput.py (srv: ntsd on
10.213.0.1, chronyd -x on 10.213.0.3, optionally a second ntsd from
another build on 10.213.0.4 (--base); gen: 10.213.0.2), every process and
thread of both servers pinned to CPU 1 (taskset before exec: the KE
processes they fork inherit it), RPS steering s0's receive work to CPU 1.
A throwaway ECDSA P-256 CA and server certificate are made for the run.
chronyd runs with its defaults for NTS-KE: `ntsprocesses` 1 (one helper
process, forked by chronyd, handles all NTS-KE connections while the main
process serves NTP) and no `ntsratelimit`.  ntsd runs with its defaults
too: one unprivileged KE process forked by the main one.  --rt N runs
both with -P N (SCHED_FIFO for the main process; ntsd's KE process stays at
normal priority).

The generator, ntsd_kebench, runs in gen on CPU 0 and keeps --conns
exchanges open for --seconds: each a new TCP connection, a full TLS 1.3
handshake, one NTS-KE request, the response read and checked.  Its
connections come from 172.18.0.0/16 (a local route in gen, routed back
from srv), one address after another, so ntsd's per-client KE rate limit
(one a second after a burst of 32) and per-/24 cap do not refuse them;
chronyd has no such limit by default.  With --verify pin (the default) the
generator checks the server's public key against the certificate instead
of verifying the chain, which saves it one ECDSA verification per exchange
so that one generator core keeps one server core busy.

Per server and round: an idle NTP probe (bench/ntprtt.py from gen's own
address, 10.213.0.2: plain NTP client requests at --probe-rate a second,
round trip from the clock read before sendto to the kernel's receive
stamp, and how long the server held each request: its transmit minus
receive timestamp), then the flood with the same probe running through its middle.
Reported: KEs per second, the server's CPU seconds per KE (utime + stime
of all its processes, /proc), KEs per CPU-second, CPU 1's busy share, and
the probe's p50/p99 idle and under the flood; then ntsd/chronyd ratios.
The servers take turns, so the machine's background load hits both alike.

Safety as in bench/throughput.py: every daemon under setpriv without
CAP_SYS_TIME and with clock control off (-x), every process put into its
namespace before exec and checked, namespaces removed at the end, on
error and by the next run, every wait bounded.  Needs root.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import runner  # noqa: E402
import soak  # noqa: E402
import throughput as tp  # noqa: E402  (namespaces, PKI, servers, CPU)
from runner import BenchError, log  # noqa: E402

NS_PREFIX = "ntsdkeb-"
SRC_NET = tp.CLIENT_NET


def cleanup_stale():
    try:
        names = os.listdir(runner.NETNS_DIR)
    except OSError:
        return
    for n in names:
        if n.startswith(NS_PREFIX):
            try:
                os.kill(int(n[len(NS_PREFIX):].split("-")[0]), 0)
                continue
            except ProcessLookupError:
                pass
            except (ValueError, PermissionError):
                continue
            log("removing stale namespace %s" % n)
            runner.netns_del(n)


def _on_signal(signum, frame):
    print("\nkebench: interrupted by signal %d, cleaning up" % signum, flush=True)
    runner.cleanup()
    os._exit(130)


def cpu1_busy():
    """(busy, total) jiffies of the server's CPU, /proc/stat."""
    with open("/proc/stat") as f:
        for ln in f:
            if ln.startswith("cpu%d " % tp.SRV_CPU):
                v = [int(x) for x in ln.split()[1:]]
                return sum(v) - v[3] - v[4], sum(v)
    return 0, 1


def pct(v, q):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def probe(a, ns, d, srv, seconds, tag):
    """Starts the NTP probe in gen; returns (proc, out path)."""
    out = os.path.join(d, "probe-%s-%s.json" % (srv.name, tag))
    cmd = ["taskset", "-c", str(tp.GEN_CPU), sys.executable, os.path.join(HERE, "ntprtt.py"),
           "--server", "%s:123" % srv.addr, "--rate", str(a.probe_rate),
           "--seconds", str(seconds), "--out", out]
    return runner.Proc("probe-%s-%s" % (srv.name, tag), cmd, ns["gen"], d), out


def probe_result(p, out, seconds):
    deadline = time.monotonic() + seconds + 15
    while p.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    p.stop()
    runner.STATE["procs"].remove(p)
    try:
        with open(out) as f:
            r = json.load(f)
    except (OSError, ValueError):
        raise BenchError("the NTP probe wrote nothing (%s)" % p.tail())
    rtt = r["rtt_us"]
    return {"sent": r["sent"], "answered": len(rtt), "p50_us": pct(rtt, 0.5),
            "p99_us": pct(rtt, 0.99), "max_us": max(rtt) if rtt else None,
            "held_p99_us": pct(r["held_us"], 0.99)}


def flood(a, ns, d, srv, pki):
    """One KE flood against srv with the probe in its middle; the numbers."""
    auth = ["-k", pki["server.pem"]] if a.verify == "pin" else ["-c", pki["ca.pem"]]
    cmd = ["taskset", "-c", str(tp.GEN_CPU), a.kebench, "-j", "-C", str(a.conns),
           "-T", str(a.seconds), "-t", "10", "-s", SRC_NET] + auth + [srv.addr]
    cpu0, busy0 = tp.cpu_s(srv.pid), cpu1_busy()
    gen = runner.Proc("kebench-%s" % srv.name, cmd, ns["gen"], d)
    perf = None
    try:
        time.sleep(1.0)
        pseconds = max(1.0, a.seconds - 2.0)
        pp, pout = probe(a, ns, d, srv, pseconds, "flood")
        if a.perf and srv.name == "ntsd":
            perf = tp.perf_record(a, srv, min(a.perf, pseconds),
                                  os.path.join(a.out, "kebench-perf.data"))
        under = probe_result(pp, pout, pseconds)
        gen.p.wait(timeout=a.seconds + 30)
    finally:
        gen.stop()
        runner.STATE["procs"].remove(gen)
        if perf:
            perf.wait(timeout=a.perf + 30)
    cpu1, busy1 = tp.cpu_s(srv.pid), cpu1_busy()
    try:
        with open(gen.log) as f:
            r = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        raise BenchError("ntsd_kebench against %s: %s" % (srv.name, gen.tail()))
    if not srv.proc.alive():
        raise BenchError("%s exited\n%s" % (srv.name, srv.proc.tail()))
    ok = r["ok"]
    return {"kes_per_s": r["kes_per_s"], "ok": ok, "failures": r["failures"],
            "first_failure": r["first_failure"], "latency_ms": r["latency_ms"],
            "cpu_s": round(cpu1 - cpu0, 3),
            "cpu_us_per_ke": round((cpu1 - cpu0) / ok * 1e6, 1) if ok else None,
            "cpu1_busy": round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 3),
            "probe_flood": under}


def one_round(a, ns, d, servers, pki, res):
    for s in servers:
        pp, pout = probe(a, ns, d, s, a.probe_seconds, "idle")
        idle = probe_result(pp, pout, a.probe_seconds)
        r = flood(a, ns, d, s, pki)
        r["probe_idle"] = idle
        res["servers"][s.name].append(r)
        log("%-7s %7.1f KE/s, %s us CPU/KE, CPU1 %.0f %%, failures %s; NTP p50/p99 idle "
            "%s/%s us, under flood %s/%s us" % (
                s.name, r["kes_per_s"], r["cpu_us_per_ke"], 100 * r["cpu1_busy"],
                sum(r["failures"].values()), fmt(idle["p50_us"]), fmt(idle["p99_us"]),
                fmt(r["probe_flood"]["p50_us"]), fmt(r["probe_flood"]["p99_us"])))
        time.sleep(1.0)


def fmt(v):
    return "-" if v is None else "%.0f" % v


def run(a, tmp):
    ns = {r: "%s%d-%s" % (NS_PREFIX, os.getpid(), r) for r in ("srv", "gen")}
    tp.netns_setup(ns)
    # The generator's sources: all of SRC_NET is local in gen (srv routes it
    # back there); a wide port range and reuse of TIME_WAIT ports for a long run.
    runner.run(["ip", "-n", ns["gen"], "route", "add", "local", SRC_NET, "dev", "lo"])
    runner.run(["ip", "-n", ns["gen"], "link", "set", "lo", "up"])
    pki = tp.make_pki(tmp)
    a.threads = 1
    servers = []
    if "ntsd" in a.servers:
        servers.append(tp.start_ntsd(a, ns["srv"], tmp, pki))
    if "chronyd" in a.servers:
        servers.append(tp.start_chronyd(a, ns["srv"], tmp, pki))
    if a.base:
        servers.append(tp.start_ntsd(a, ns["srv"], tmp, pki, "ntsd-base",
                                     os.path.join(a.base, "ntsd"), tp.BASE_ADDR))
    procs = [s.proc for s in servers]
    for s in servers:
        soak.wait_for(s.ready, 15, s.name, procs)
    time.sleep(1)
    res = {"servers": {s.name: [] for s in servers}}
    for i in range(a.rounds):
        log("round %d of %d" % (i + 1, a.rounds))
        one_round(a, ns, tmp, servers, pki, res)
    return res


def summarize(res):
    rows = {}
    for name, runs in res["servers"].items():
        med = lambda f: statistics.median(f(r) for r in runs) if runs else None  # noqa: E731
        rows[name] = {
            "kes_per_s": med(lambda r: r["kes_per_s"]),
            "cpu_us_per_ke": med(lambda r: r["cpu_us_per_ke"] or 0),
            "cpu1_busy": med(lambda r: r["cpu1_busy"]),
            "failures": sum(sum(r["failures"].values()) for r in runs),
            "ke_p50_ms": med(lambda r: r["latency_ms"]["p50"]),
            "ke_p99_ms": med(lambda r: r["latency_ms"]["p99"]),
            "ntp_idle_p50_us": med(lambda r: r["probe_idle"]["p50_us"] or 0),
            "ntp_idle_p99_us": med(lambda r: r["probe_idle"]["p99_us"] or 0),
            "ntp_flood_p50_us": med(lambda r: r["probe_flood"]["p50_us"] or 0),
            "ntp_flood_p99_us": med(lambda r: r["probe_flood"]["p99_us"] or 0),
            "ntp_flood_lost": sum(r["probe_flood"]["sent"] - r["probe_flood"]["answered"]
                                  for r in runs),
        }
    return rows


def table(res):
    rows = summarize(res)
    out = ["| 1 core, NTS-KE | KE/s | CPU per KE | KE per CPU-second | CPU 1 busy | failures"
           " | KE latency p50 / p99 | NTP p50 / p99 idle | NTP p50 / p99 under flood"
           " (lost) | p99 flood / idle |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in rows.items():
        cpu = s["cpu_us_per_ke"]
        out.append("| %s | %.0f | %.0f us | %.0f | %.0f %% | %d | %.1f / %.1f ms | %.0f / %.0f us"
                   " | %.0f / %.0f us (%d) | %.2fx |" % (
                       name, s["kes_per_s"], cpu, 1e6 / cpu if cpu else 0,
                       100 * s["cpu1_busy"], s["failures"], s["ke_p50_ms"], s["ke_p99_ms"],
                       s["ntp_idle_p50_us"], s["ntp_idle_p99_us"], s["ntp_flood_p50_us"],
                       s["ntp_flood_p99_us"], s["ntp_flood_lost"],
                       s["ntp_flood_p99_us"] / max(1, s["ntp_idle_p99_us"])))
    out.append("")
    for other in ("chronyd", "ntsd-base"):
        if "ntsd" in rows and other in rows and rows["ntsd"]["cpu_us_per_ke"]:
            n, c = rows["ntsd"], rows[other]
            out.append("ntsd/%s: KE/s %.2fx, KE per CPU-second %.2fx (medians of %d rounds)" % (
                other, n["kes_per_s"] / max(1, c["kes_per_s"]),
                c["cpu_us_per_ke"] / n["cpu_us_per_ke"], len(res["servers"]["ntsd"])))
    return "\n".join(out)


def runs_text(res):
    out = []
    for name, runs in res["servers"].items():
        for i, r in enumerate(runs):
            out.append("%s round %d: %.1f KE/s, %s us CPU/KE, CPU1 %.0f %%, failures %s%s;"
                       " NTP idle p50/p99/max %s/%s/%s us, flood %s/%s/%s us"
                       " (held by the server: p99 %s us idle, %s us flood)" % (
                           name, i + 1, r["kes_per_s"], r["cpu_us_per_ke"],
                           100 * r["cpu1_busy"], r["failures"],
                           " (%s)" % r["first_failure"] if r["first_failure"] else "",
                           fmt(r["probe_idle"]["p50_us"]), fmt(r["probe_idle"]["p99_us"]),
                           fmt(r["probe_idle"]["max_us"]), fmt(r["probe_flood"]["p50_us"]),
                           fmt(r["probe_flood"]["p99_us"]), fmt(r["probe_flood"]["max_us"]),
                           fmt(r["probe_idle"]["held_p99_us"]),
                           fmt(r["probe_flood"]["held_p99_us"])))
    return "\n".join(out)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/kebench.py",
                                 description="NTS-KE throughput (not a test)")
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--seconds", type=int, default=12, help="seconds per flood (12)")
    ap.add_argument("--conns", type=int, default=32, help="generator connections (32)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", default="ntsd,chronyd")
    ap.add_argument("--verify", choices=("pin", "ca"), default="pin")
    ap.add_argument("--probe-rate", type=int, default=50, help="NTP probes a second (50)")
    ap.add_argument("--probe-seconds", type=int, default=8, help="idle probe seconds (8)")
    ap.add_argument("--rt", type=int, default=0, metavar="N",
                    help="run both daemons with -P N (SCHED_FIFO priority N; 0: off)")
    ap.add_argument("--base", metavar="BUILD_DIR",
                    help="also run that build's ntsd (as ntsd-base): before and after")
    ap.add_argument("--ntsprocesses", type=int, default=1, metavar="N",
                    help="`ntsprocesses N` in both daemons (1)")
    ap.add_argument("--perf", type=int, default=0,
                    help="perf record CPU 1 for S seconds during ntsd's flood")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    a.build = a.build if os.path.isabs(a.build) else os.path.join(SOURCE_DIR, a.build)
    a.ntsd = os.path.join(a.build, "ntsd")
    a.ntsctl = os.path.join(a.build, "ntsctl")
    a.kebench = os.path.join(a.build, "ntsd_kebench")
    a.servers = a.servers.split(",")
    if a.base and not os.path.isabs(a.base):
        a.base = os.path.join(SOURCE_DIR, a.base)
    if not 0 <= a.rt <= 99:
        ap.error("--rt must be 0..99")
    if not 1 <= a.ntsprocesses <= 16:
        ap.error("--ntsprocesses must be 1..16")
    if not 4 <= a.seconds <= 300 or not 1 <= a.conns <= 1000 or not 1 <= a.rounds <= 20:
        ap.error("--seconds 4..300, --conns 1..1000, --rounds 1..20")
    if not 1 <= a.probe_rate <= 1000 or not 1 <= a.probe_seconds <= 60:
        ap.error("--probe-rate 1..1000, --probe-seconds 1..60")
    return a


def report(a, res, started, cond):
    res.update({"started": started.isoformat(), "conditions": cond, "seconds": a.seconds,
                "conns": a.conns, "verify": a.verify, "rt": a.rt,
                "ntsprocesses": a.ntsprocesses, "base": a.base, "probe_rate": a.probe_rate,
                "summary": summarize(res)})
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "kebench-latest.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    text = "%s\n\n%s\n\nrounds:\n%s\n" % (
        "kebench %s, %s, %d s floods, %d connections, --verify %s, %s, load %s -> %s" % (
            started.isoformat(), cond["git"], a.seconds, a.conns, a.verify,
            ("-P %d (SCHED_FIFO) for both daemons" % a.rt if a.rt else "default scheduling")
            + (", ntsprocesses %d in both" % a.ntsprocesses if a.ntsprocesses > 1 else ""),
            " ".join(cond["loadavg_start"]), " ".join(cond["loadavg_end"])),
        table(res), runs_text(res))
    with open(os.path.join(a.out, "kebench-latest.md"), "w") as f:
        f.write(text)
    print()
    print(text)


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("kebench: needs root (network namespaces)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("kebench: skipped: needs 2 CPUs (generator and server)")
        return 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    cleanup_stale()
    for path in (a.ntsd, a.kebench) + ((runner.CHRONYD,) if "chronyd" in a.servers else ()):
        if not os.access(path, os.X_OK):
            print("kebench: %s not found (build first)" % path, file=sys.stderr)
            return 2
    runner.check_clock_protection()
    os.sched_setaffinity(0, {tp.GEN_CPU})
    out = tp.run_in_tmp("kebench", "ntsd-keb-", a, run)
    if out is None:
        return 2
    report(a, *out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
