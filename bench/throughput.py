#!/usr/bin/env python3
"""ntsd vs chronyd server throughput on one core (part of `make bench`; not
a test).  docs/benchmarks.md, "Throughput", records what it printed.

Usage: scripts/bench [BUILD_DIR] ... (THROUGHPUT=only runs only this part)
       python3 bench/throughput.py [BUILD_DIR] [--step S] [--plain R,..]
                                   [--nts R,..] [--servers ntsd,chronyd]
                                   [--base OTHER_BUILD_DIR] [--rt N]
                                   [--threads N] [--base-threads N]
                                   [--perf SECONDS] [--keep]

Two network namespaces of its own, joined by one veth pair:

    srv: 10.213.0.1 ntsd, 10.213.0.3 chronyd (chronyd -x), 10.213.0.4 a
         second ntsd from another build (--base, optional); every thread of
         both pinned to CPU 1, RPS steering s0's receive work to CPU 1
    gen: 10.213.0.2, ntpperf on CPU 0 (g0's receive work steered there too)

ntpperf (../shared/tools/ntpperf, built with NTPPERF_NTS=1 as for the soak)
sends basic-mode requests from addresses spoofed in 172.18.0.0/16 to one
server at a time, at each offered rate for --step seconds; srv routes
172.18.0.0/16 back via gen, whose kernel drops the replies (no forwarding,
no such address): nothing leaves the two namespaces.  NTS requests carry
the C2S key and a cookie of one real NTS-KE (`ntsctl ke --export`).
The replies' receive work in gen runs on CPU 1 (the kernel's default for a
veth); TPUT_GEN_RPS=1 steers it to CPU 0 instead, at the price of an
inter-processor interrupt per batch, which costs a VM exit on a guest.
--rt N runs both daemons with their own -P N (SCHED_FIFO).  TPUT_SRV_CPUS=0,1
lets the daemons' threads run on both CPUs (with `threads`; the receive
work stays on CPU 1).

"Answered" is the server veth's TX packets per second, "offered" its RX
packets per second (what the generator managed to send), each the median of
the step's interior seconds.  The two servers take turns at every rate, so a
change in the machine's background load hits both alike.

Safety as in the soak: every daemon under setpriv without CAP_SYS_TIME and
with clock control off (-x), every process put into its namespace before
exec and checked, namespaces removed at the end, on error and by the next
run, every wait bounded; ntpperf stops by itself.  Needs root.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import runner  # noqa: E402
import soak  # noqa: E402  (make_pki, build_ntpperf, proc_tree)
from runner import BenchError, log  # noqa: E402

NS_PREFIX = "ntsdtput-"
SRV_ADDR, GEN_ADDR, PEER_ADDR = soak.SRV_ADDR, soak.GEN_ADDR, soak.PEER_ADDR
BASE_ADDR = "10.213.0.4"   # a second ntsd (--base BUILD_DIR): before/after in one run
CLIENT_NET = "172.18.0.0/16"
GEN_CPU, SRV_CPU = 0, 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
PLAIN_RATES = (20000, 50000, 80000, 110000, 140000, 170000, 200000)
NTS_RATES = (20000, 40000, 60000, 70000, 80000, 90000, 100000, 120000, 140000)


def _run_gone(name):
    try:
        pid = int(name[len(NS_PREFIX):].split("-")[0])
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False


def cleanup_stale():
    try:
        names = os.listdir(runner.NETNS_DIR)
    except OSError:
        return
    for n in names:
        if n.startswith(NS_PREFIX) and _run_gone(n):
            log("removing stale namespace %s" % n)
            runner.netns_del(n)


def _on_signal(signum, frame):
    print("\nthroughput: interrupted by signal %d, cleaning up" % signum, flush=True)
    runner.cleanup()
    os._exit(130)


def ns_sh(ns, script):
    """A shell line inside ns with that namespace's own sysfs (ip netns exec)."""
    runner.run(["ip", "netns", "exec", ns, "sh", "-c", script])


def netns_setup(ns):
    for role in ("srv", "gen"):
        runner.netns_add(ns[role])
    srv, gen = ns["srv"], ns["gen"]
    runner.run(["ip", "-n", srv, "link", "add", "s0", "type", "veth", "peer", "name", "g0",
                "netns", gen])
    for n, dev, addrs in ((srv, "s0", (SRV_ADDR, PEER_ADDR, BASE_ADDR)),
                          (gen, "g0", (GEN_ADDR,))):
        for a in addrs:
            runner.run(["ip", "-n", n, "addr", "add", a + "/24", "dev", dev])
        runner.run(["ip", "-n", n, "link", "set", dev, "up"])
    runner.run(["ip", "-n", srv, "route", "add", CLIENT_NET, "via", GEN_ADDR])
    if soak.ns_exec(gen, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() != "0":
        raise BenchError("ip_forward is on in %s" % gen)
    # The server's receive work on its CPU (RPS: a veth has one queue).
    ns_sh(srv, "echo %x > /sys/class/net/s0/queues/rx-0/rps_cpus" % (1 << SRV_CPU))
    if os.environ.get("TPUT_GEN_RPS") == "1":
        ns_sh(gen, "echo %x > /sys/class/net/g0/queues/rx-0/rps_cpus" % (1 << GEN_CPU))
    info = json.loads(runner.run(["ip", "-n", srv, "-j", "link", "show", "s0"]).stdout)
    return info[0]["address"]


# --------------------------------------------------------------------------
# The servers
# --------------------------------------------------------------------------

class Server:
    def __init__(self, name, addr, proc, ready):
        self.name, self.addr, self.proc, self.ready = name, addr, proc, ready
        self.key = None
        self.rss_idle = self.rss_load = self.rss_main_idle = self.rss_main_load = 0

    @property
    def pid(self):
        return self.proc.p.pid


def pinned(cmd):
    return ["taskset", "-c", os.environ.get("TPUT_SRV_CPUS", str(SRV_CPU))] + cmd


def rt_opt(a):
    """-P N for both daemons (SCHED_FIFO at N; each has the same option)."""
    return ["-P", str(a.rt)] if a.rt else []


def ntsprocesses_line(a):
    """`ntsprocesses N` (the same directive in both daemons), when not 1."""
    n = getattr(a, "ntsprocesses", 1)
    return "ntsprocesses %d\n" % n if n > 1 else ""


def make_pki(d):
    """soak's throwaway CA and server certificate, also valid for BASE_ADDR."""
    p = soak.make_pki(d)
    runner.write(p["ext.cnf"], "subjectAltName=DNS:localhost,IP:%s,IP:%s,IP:%s\n"
                 "extendedKeyUsage=serverAuth\n" % (SRV_ADDR, PEER_ADDR, BASE_ADDR))
    r = runner.run(["openssl", "x509", "-req", "-in", p["server.csr"], "-CA", p["ca.pem"],
                    "-CAkey", p["ca.key"], "-set_serial", "2", "-days", "2", "-extfile",
                    p["ext.cnf"], "-out", p["server.pem"]], timeout=30, check=False)
    if r.returncode != 0:
        raise BenchError("openssl x509: %s" % r.stderr.strip())
    with open(p["chain.pem"], "w") as out:
        for k in ("server.pem", "ca.pem"):
            with open(p[k]) as f:
                out.write(f.read())
    return p


def start_ntsd(a, ns, d, pki, name="ntsd", binary=None, addr=SRV_ADDR, threads=None):
    threads = a.threads if threads is None else threads
    sock = os.path.join(d, name + ".sock")
    conf = runner.write(os.path.join(d, name + ".conf"),
                        "# throughput benchmark server (bench/throughput.py)\n"
                        "disable ntp\n"
                        "listen %s\n"
                        "local stratum 1\n"
                        "nts enable\n"
                        "nts cert %s\n"
                        "nts key %s\n"
                        "nts-listen-on %s:4460\n%s%s"
                        % (addr, pki["chain.pem"], pki["server.key"], addr,
                           "threads %d\n" % threads if threads > 1 else "",
                           ntsprocesses_line(a)))
    cmd = [binary or a.ntsd, "-c", conf, "-n", "-x", "-s", sock] + rt_opt(a)
    p = runner.Proc(name, pinned(cmd), ns, d)
    return Server(name, addr, p, lambda: soak.ntsd_ready(sock, "server"))


def start_chronyd(a, ns, d, pki):
    cd = os.path.join(d, "chronyd")
    os.makedirs(cd, mode=0o700)
    sock = os.path.join(cd, "chronyd.sock")
    conf = runner.write(os.path.join(cd, "chrony.conf"),
                        "# throughput benchmark peer (bench/throughput.py)\n"
                        "port 123\nbindaddress %s\ncmdport 0\nbindcmdaddress %s\n"
                        "pidfile %s\nlocal stratum 1\nallow all\nntsport 4460\n"
                        "ntsserverkey %s\nntsservercert %s\n%s"
                        % (PEER_ADDR, sock, os.path.join(cd, "chronyd.pid"),
                           pki["server.key"], pki["chain.pem"], ntsprocesses_line(a)))
    p = runner.Proc("chronyd", pinned([runner.CHRONYD, "-4", "-x", "-d", "-u", "root",
                                       "-f", conf] + rt_opt(a)), ns, d)
    return Server("chronyd", PEER_ADDR, p, lambda: soak._chrony_ready(sock))


def ke_export(a, ns, addr, ca):
    """`C2S,COOKIE` for ntpperf -S, from one NTS-KE with addr:4460."""
    r = soak.ns_exec(ns, [a.ntsctl, "ke", addr, "--ca", ca, "--aead", "15", "--export"],
                     timeout=20)
    for ln in r.stdout.splitlines():
        if ln.startswith("ntpperf:") and "-S " in ln:
            return ln.split("-S ", 1)[1].strip()
    raise BenchError("ntsctl ke %s (rc %d): %s" % (addr, r.returncode,
                                                   (r.stderr or r.stdout).strip()[-300:]))


def rss_kb(pid, tree=True):
    """VmRSS of pid, with its descendants (the NTS-KE processes) if tree."""
    total = 0
    for p in soak.proc_tree(pid) if tree else [pid]:
        try:
            with open("/proc/%d/status" % p) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        total += int(ln.split()[1])
        except OSError:
            pass
    return total


def cpu_s(pid):
    total = 0.0
    for p in soak.proc_tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                st = f.read().rsplit(")", 1)[1].split()
            total += (int(st[11]) + int(st[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return total


def veth_counts(pid):
    """(rx_packets, tx_packets) of s0, as seen from pid's namespace."""
    with open("/proc/%d/net/dev" % pid) as f:
        for ln in f:
            name, _, rest = ln.partition(":")
            if name.strip() == "s0":
                v = rest.split()
                return int(v[1]), int(v[9])
    raise BenchError("no s0 in the server namespace")


# --------------------------------------------------------------------------
# One step: one server, one offered rate
# --------------------------------------------------------------------------

def step(a, ns, d, mac, srv, rate, nts):
    cmd = ["taskset", "-c", str(GEN_CPU), "timeout", "-s", "INT", "-k", "5",
           str(a.step + 20), a.ntpperf, "-i", "g0", "-m", mac, "-d", srv.addr,
           "-s", CLIENT_NET, "-B", "-r", str(rate), "-t", str(a.step), "-l"]
    if nts:
        cmd[cmd.index("-B") + 1:cmd.index("-B") + 1] = ["-S", srv.key]
    t0 = time.monotonic()
    gen = runner.Proc("ntpperf", cmd, ns["gen"], d)
    samples = []   # (t, rx, tx, cpu)
    try:
        while gen.alive() and time.monotonic() - t0 < a.step + 25:
            rx, tx = veth_counts(srv.pid)
            samples.append((time.monotonic(), rx, tx, cpu_s(srv.pid)))
            srv.rss_load = max(srv.rss_load, rss_kb(srv.pid))
            srv.rss_main_load = max(srv.rss_main_load, rss_kb(srv.pid, False))
            if not srv.proc.alive():
                raise BenchError("%s exited\n%s" % (srv.name, srv.proc.tail()))
            time.sleep(1.0 - (time.monotonic() - t0) % 1.0)
    finally:
        gen.stop()
        runner.STATE["procs"].remove(gen)
    secs = [((s1[1] - s0[1]) / (s1[0] - s0[0]), (s1[2] - s0[2]) / (s1[0] - s0[0]))
            for s0, s1 in zip(samples, samples[1:])]
    # The generator warms up for a moment and stops in the last second: the
    # interior seconds are those offered at (close to) full rate.
    busy = [i for i, (rx, _) in enumerate(secs) if rx >= 0.5 * rate]
    if not busy:
        return {"rate": rate, "offered": 0, "answered": 0, "cpu_us": None, "seconds": 0}
    i0, i1 = (busy[0] + 1, busy[-1]) if len(busy) >= 3 else (busy[0], busy[-1] + 1)
    inner = secs[i0:i1]
    offered = statistics.median(x[0] for x in inner)
    answered = statistics.median(x[1] for x in inner)
    dtx = samples[i1][2] - samples[i0][2]
    dcpu = samples[i1][3] - samples[i0][3]
    return {"rate": rate, "offered": round(offered), "answered": round(answered),
            "cpu_us": round(dcpu / dtx * 1e6, 2) if dtx > 0 else None,
            "seconds": len(inner)}


def perf_record(a, srv, seconds, out):
    """perf record of the server's CPU (1) while the last step's load runs."""
    if not shutil.which("perf"):
        return None
    return subprocess.Popen(["perf", "record", "-q", "-g", "-C", str(SRV_CPU), "-o", out,
                             "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------

def fully_served(steps):
    """The highest offered rate answered >= 99 %, with every lower one too."""
    best = 0
    for s in sorted(steps, key=lambda s: s["rate"]):
        if s["offered"] and s["answered"] >= 0.99 * s["offered"]:
            best = s["offered"]
        else:
            break
    return best


def at_rate(steps, rate):
    for s in steps:
        if s["rate"] == rate:
            return s
    return None


def k(v):
    return "-" if v is None else "%.1fk" % (v / 1000.0)


def summarize(res):
    rows = {}
    for name, r in res["servers"].items():
        plain, nts = r["plain"], r["nts"]
        peak = max((s["answered"] for s in nts), default=0)
        plain_peak = max((s["answered"] for s in plain), default=0)
        s140 = at_rate(nts, 140000)
        s2x = at_rate(nts, r.get("twice_peak_rate"))
        s20 = at_rate(nts, 20000)
        top_plain = max((s["rate"] for s in plain), default=0)
        fs_plain = fully_served(plain)
        rows[name] = {
            "plain_fully_served": fs_plain,
            "plain_all": fs_plain and fs_plain >= 0.98 * top_plain,
            "plain_peak": plain_peak,
            "nts_fully_served": fully_served(nts),
            "nts_peak": peak,
            "nts_at_140k": s140["answered"] if s140 else None,
            "nts_at_2x_peak": s2x["answered"] if s2x else None,
            "twice_peak_offered": s2x["offered"] if s2x else None,
            "cpu_us_20k": s20["cpu_us"] if s20 else None,
            "rss_idle_kb": r["rss_idle_kb"],
            "rss_load_kb": r["rss_load_kb"],
            "rss_main_idle_kb": r["rss_main_idle_kb"],
            "rss_main_load_kb": r["rss_main_load_kb"],
        }
    return rows


def table(res):
    rows = summarize(res)
    out = ["| 1 core | plain fully served (>= 99 %) | plain peak | NTS fully served | NTS peak"
           " | NTS answered at 140k offered | NTS answered at 2x peak (offered)"
           " | CPU per NTS answer at 20k/s | RSS idle, main (all) | RSS under load, main (all) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in rows.items():
        out.append("| %s | %s%s | %s | %s | %s | %s | %s (%s) | %s | %.1f (%.1f) MB"
                   " | %.1f (%.1f) MB |" % (
            name, ">= " if s["plain_all"] else "", k(s["plain_fully_served"]),
            k(s["plain_peak"]), k(s["nts_fully_served"]), k(s["nts_peak"]),
            k(s["nts_at_140k"]), k(s["nts_at_2x_peak"]), k(s["twice_peak_offered"]),
            "-" if s["cpu_us_20k"] is None else "%.1f us" % s["cpu_us_20k"],
            s["rss_main_idle_kb"] / 1024.0, s["rss_idle_kb"] / 1024.0,
            s["rss_main_load_kb"] / 1024.0, s["rss_load_kb"] / 1024.0))
    if "ntsd" in rows and "chronyd" in rows and rows["chronyd"]["nts_fully_served"]:
        n, c = rows["ntsd"], rows["chronyd"]
        out.append("")
        out.append("ntsd/chronyd: NTS fully served %.2fx, NTS peak %.2fx; ntsd NTS peak / "
                   "plain peak %.0f %%; ntsd at 2x peak %.0f %% of its peak" % (
                       n["nts_fully_served"] / c["nts_fully_served"],
                       n["nts_peak"] / max(1, c["nts_peak"]),
                       100.0 * n["nts_peak"] / max(1, n["plain_peak"]),
                       100.0 * (n["nts_at_2x_peak"] or 0) / max(1, n["nts_peak"])))
    return "\n".join(out)


def steps_text(res):
    out = []
    for name, r in res["servers"].items():
        for kind in ("plain", "nts"):
            out.append("%s %s: %s" % (name, kind, "  ".join(
                "%dk->%s/%s%s" % (s["rate"] // 1000, k(s["offered"]), k(s["answered"]),
                                  "" if s["cpu_us"] is None else "(%.1fus)" % s["cpu_us"])
                for s in r[kind])))
    return "\n".join(out)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def run(a, tmp):
    ns = {r: "%s%d-%s" % (NS_PREFIX, os.getpid(), r) for r in ("srv", "gen")}
    mac = netns_setup(ns)
    pki = make_pki(tmp)
    servers = []
    if "ntsd" in a.servers:
        servers.append(start_ntsd(a, ns["srv"], tmp, pki))
    if "chronyd" in a.servers:
        servers.append(start_chronyd(a, ns["srv"], tmp, pki))
    if a.base:
        servers.append(start_ntsd(a, ns["srv"], tmp, pki, "ntsd-base",
                                  os.path.join(a.base, "ntsd"), BASE_ADDR, a.base_threads))
    procs = [s.proc for s in servers]
    for s in servers:
        soak.wait_for(s.ready, 15, s.name, procs)
    for s in servers:
        s.key = ke_export(a, ns["srv"], s.addr, pki["ca.pem"])
    time.sleep(1)
    for s in servers:
        s.rss_idle = rss_kb(s.pid)
        s.rss_main_idle = rss_kb(s.pid, False)
    res = {"servers": {s.name: {"plain": [], "nts": []} for s in servers}}
    for kind, rates in (("plain", a.plain), ("nts", a.nts)):
        for rate in rates:
            for s in servers:
                r = step(a, ns, tmp, mac, s, rate, kind == "nts")
                res["servers"][s.name][kind].append(r)
                log("%-7s %-5s offered %7d answered %7d (%s us/answer)" % (
                    s.name, kind, r["offered"], r["answered"], r["cpu_us"]))
    # Past saturation: twice each server's own NTS peak.
    for s in servers:
        steps = res["servers"][s.name]["nts"]
        peak = max(steps, key=lambda x: x["answered"])
        twice = int(round(2 * peak["answered"], -3))
        perf = None
        if a.perf and s.name == "ntsd":
            perf = perf_record(a, s, a.perf, os.path.join(a.out, "throughput-perf.data"))
        r = step(a, ns, tmp, mac, s, twice, True)
        if perf:
            perf.wait(timeout=a.perf + 30)
        steps.append(r)
        res["servers"][s.name]["twice_peak_rate"] = twice
        log("%-7s nts   offered %7d answered %7d at 2x peak" % (
            s.name, r["offered"], r["answered"]))
    for s in servers:
        res["servers"][s.name]["rss_idle_kb"] = s.rss_idle
        res["servers"][s.name]["rss_load_kb"] = s.rss_load
        res["servers"][s.name]["rss_main_idle_kb"] = s.rss_main_idle
        res["servers"][s.name]["rss_main_load_kb"] = s.rss_main_load
    return res


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/throughput.py",
                                 description="NTP/NTS server throughput (not a test)")
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--step", type=int, default=6, help="seconds per offered rate (6)")
    ap.add_argument("--plain", default=",".join(str(r) for r in PLAIN_RATES))
    ap.add_argument("--nts", default=",".join(str(r) for r in NTS_RATES))
    ap.add_argument("--servers", default="ntsd,chronyd")
    ap.add_argument("--base", metavar="BUILD_DIR",
                    help="also run that build's ntsd (as ntsd-base): before and after")
    ap.add_argument("--rt", type=int, default=0, metavar="N",
                    help="run ntsd and chronyd with -P N (SCHED_FIFO priority N; 0: off)")
    ap.add_argument("--threads", type=int, default=1, help="ntsd `threads N` (1)")
    ap.add_argument("--base-threads", type=int, default=None, metavar="N",
                    help="`threads N` of the --base ntsd (as --threads); with --base "
                         "BUILD_DIR the same build, threads 1 against 2 side by side")
    ap.add_argument("--perf", type=int, default=0,
                    help="perf record ntsd's CPU for S seconds at 2x its NTS peak")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    a.build = a.build if os.path.isabs(a.build) else os.path.join(SOURCE_DIR, a.build)
    a.ntsd = os.path.join(a.build, "ntsd")
    a.ntsctl = os.path.join(a.build, "ntsctl")
    a.plain = [int(x) for x in a.plain.split(",") if x]
    a.nts = [int(x) for x in a.nts.split(",") if x]
    a.servers = a.servers.split(",")
    if a.base_threads is None:
        a.base_threads = a.threads
    if a.base and not os.path.isabs(a.base):
        a.base = os.path.join(SOURCE_DIR, a.base)
    if not 0 <= a.rt <= 99:
        ap.error("--rt must be 0..99")
    if not 3 <= a.step <= 60:
        ap.error("--step must be 3..60")
    if any(not 1000 <= r <= 1000000 for r in a.plain + a.nts):
        ap.error("rates must be 1000..1000000")
    return a


def run_in_tmp(name, prefix, a, run_fn):
    """run_fn(a, tmp) in a private temporary directory, torn down after
    (kept, with the namespaces removed, when it fails or with a.keep):
    (its result, the UTC start, the run's conditions), or None after a
    failure, which is printed."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp, 0o700)
    runner.STATE["tmp"], runner.STATE["keep"] = tmp, a.keep
    cond = runner.conditions(a)
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    try:
        res = run_fn(a, tmp)
    except (BenchError, subprocess.TimeoutExpired) as e:
        print("%s: FAILED: %s" % (name, e), flush=True)
        runner.STATE["keep"] = True
        runner.cleanup()
        return None
    runner.cleanup()
    cond["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    return res, started, cond


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("throughput: needs root (network namespaces)", file=sys.stderr)
        return 2
    if not os.path.isfile(os.path.join(soak.NTPPERF_SRC, "perf.c")):
        print("throughput: skipped: ntpperf not found at %s" % soak.NTPPERF_SRC)
        return 0
    if (os.cpu_count() or 1) < 2:
        print("throughput: skipped: needs 2 CPUs (generator and server)")
        return 0
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    cleanup_stale()
    for path in (a.ntsd, a.ntsctl) + ((runner.CHRONYD,) if "chronyd" in a.servers else ()):
        if not os.access(path, os.X_OK):
            print("throughput: %s not found (build first)" % path, file=sys.stderr)
            return 2
    a.ntpperf, why = soak.build_ntpperf(a)
    if not a.ntpperf:
        print("throughput: skipped: %s" % why)
        return 0
    runner.check_clock_protection()
    os.makedirs(a.out, exist_ok=True)
    # This script's own sampling stays off the server's CPU.
    os.sched_setaffinity(0, {GEN_CPU})
    out = run_in_tmp("throughput", "ntsd-tput-", a, run)
    if out is None:
        return 2
    res, started, cond = out
    res.update({"started": started.isoformat(), "conditions": cond, "step_s": a.step,
                "threads": a.threads, "base_threads": a.base_threads, "rt": a.rt, "base": a.base,
                "gen_rps": os.environ.get("TPUT_GEN_RPS") == "1", "summary": summarize(res)})
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "throughput-latest.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    text = "%s\n\n%s\n\nsteps (offered->offered/answered per s, CPU per answer):\n%s\n" % (
        "throughput %s, %s, %s, load %s -> %s" % (
            started.isoformat(), cond["git"],
            "-P %d (SCHED_FIFO) for both daemons" % a.rt if a.rt else "default scheduling",
                                             " ".join(cond["loadavg_start"]),
                                             " ".join(cond["loadavg_end"])),
        table(res), steps_text(res))
    with open(os.path.join(a.out, "throughput-latest.md"), "w") as f:
        f.write(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
