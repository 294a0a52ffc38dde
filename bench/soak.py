#!/usr/bin/env python3
"""ntsd soak benchmark (`make soak`): a server under steady NTS load from
>= 1000 emulated clients and a client with 4 NTS sources, for 30 minutes;
RSS and open fds must stay flat (+-5 %) and no error counter may rise.

Usage: scripts/soak [BUILD_DIR] [--seconds S] [--rate R] [--sample S]
                    [--warmup S] [--no-peer] [--load ntpperf|fallback|none]
                    [--gen-cpu PCT] [--out DIR] [--keep]
       scripts/soak --cleanup
(see docs/benchmarks.md, "Soak")

Two network namespaces of its own, joined by one veth pair:

    srv: 10.213.0.1 (ntsd "server", loaded), 10.213.0.3 (chronyd, loaded peer)
         127.0.0.1 (ntsd "server-b", "server-c"), ntsd "client" (4 NTS sources)
    gen: 10.213.0.2, ntpperf (emulated clients 10.214.0.0/16 -> server,
         10.215.0.0/16 -> chronyd); srv routes those networks back via gen,
         whose kernel drops the replies (ntpperf reads them from the wire).

ntpperf (../shared/tools/ntpperf, built here with NTPPERF_NTS=1) sends
NTS-authenticated requests at a fixed rate with the C2S key and a cookie
from one NTS-KE (bench/tools/kefetch.c, the daemon's own KE client code).
It needs private (RFC 1918) addresses; these exist only inside the two
namespaces.  Its CPU is capped with a cgroup quota (it busy-waits).

Safety as in scripts/bench: every daemon under setpriv without
CAP_SYS_TIME and with clock control off (-x), every process put into its
namespace before exec and checked, namespaces and the cgroup removed at the
end, on error, on SIGINT/SIGTERM/SIGHUP and by the next run, every wait
bounded; the load generator stops by itself (timeout).  Needs root.

Writes bench/results/soak-latest.json (every sample) and soak-latest.md.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import runner  # noqa: E402  (processes, namespaces, control socket, conditions)
import soak_report  # noqa: E402
from runner import BenchError, log  # noqa: E402

NTPPERF_SRC = os.environ.get("SOAK_NTPPERF_DIR") or os.path.join(
    os.path.dirname(SOURCE_DIR), "shared", "tools", "ntpperf")
CHRONYD, CHRONYC = runner.CHRONYD, runner.CHRONYC
NS_PREFIX = "ntsdsoak-"
SRV_ADDR, GEN_ADDR, PEER_ADDR = "10.213.0.1", "10.213.0.2", "10.213.0.3"
NET_SERVER, NET_PEER = "10.214.0.0/16", "10.215.0.0/16"
CGROUP_ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/cpu")
# A short period keeps the throttled generator's bursts small (at 10000/s,
# ~30 requests after each 3 ms pause): a burst larger than the server's
# socket buffer would be dropped by the kernel, which measures the generator.
CG_PERIOD_US = 4000
CLK_TCK = os.sysconf("SC_CLK_TCK")

STATE = {"cgroups": []}


# --------------------------------------------------------------------------
# Clean-up of what a killed run left: namespaces and the cgroup
# --------------------------------------------------------------------------

def _run_gone(name):
    try:
        pid = int(name[len(NS_PREFIX):].split("-")[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True
    except PermissionError:
        return False


def cleanup_stale():
    try:
        names = os.listdir(runner.NETNS_DIR)
    except OSError:
        names = []
    for n in names:
        if n.startswith(NS_PREFIX) and _run_gone(n):
            log("removing stale namespace %s" % n)
            runner.netns_del(n)
    for root in CGROUP_ROOTS:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for n in names:
            if n.startswith(NS_PREFIX) and _run_gone(n):
                log("removing stale cgroup %s/%s" % (root, n))
                cgroup_remove(os.path.join(root, n))


def cgroup_create(tag, pct):
    """A cgroup capping its members at pct % of one CPU; its directory, or
    None (with the reason) where no cpu controller can be used."""
    name = "%s%d-%s" % (NS_PREFIX, os.getpid(), tag)
    v2 = "/sys/fs/cgroup/cgroup.subtree_control"
    v1 = "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"
    quota = max(1000, int(CG_PERIOD_US * pct / 100))
    try:
        if os.path.exists(v2) and "cpu" in open(v2).read().split():
            d = os.path.join("/sys/fs/cgroup", name)
            os.mkdir(d)
            STATE["cgroups"].append(d)
            with open(os.path.join(d, "cpu.max"), "w") as f:
                f.write("%d %d\n" % (quota, CG_PERIOD_US))
            return d, None
        if os.path.exists(v1):
            d = os.path.join("/sys/fs/cgroup/cpu", name)
            os.mkdir(d)
            STATE["cgroups"].append(d)
            with open(os.path.join(d, "cpu.cfs_period_us"), "w") as f:
                f.write("%d\n" % CG_PERIOD_US)
            with open(os.path.join(d, "cpu.cfs_quota_us"), "w") as f:
                f.write("%d\n" % quota)
            return d, None
    except OSError as e:
        return None, "cannot set up a cpu cgroup: %s" % e
    return None, "no cgroup cpu controller"


def cgroup_remove(d):
    deadline = time.monotonic() + 5
    while os.path.isdir(d):
        try:
            os.rmdir(d)
        except OSError:
            if time.monotonic() > deadline:
                log("could not remove cgroup %s" % d)
                return
            time.sleep(0.1)


def cleanup():
    runner.cleanup()
    while STATE["cgroups"]:
        cgroup_remove(STATE["cgroups"].pop())


def _on_signal(signum, frame):
    print("\nsoak: interrupted by signal %d, cleaning up" % signum, flush=True)
    cleanup()
    os._exit(130)


# --------------------------------------------------------------------------
# Set-up: namespaces, certificates, daemons
# --------------------------------------------------------------------------

def ns_exec(ns, cmd, timeout=30):
    """A short command inside namespace ns (setns before exec)."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL,
                          preexec_fn=runner._preexec(runner.ns_path(ns)))


def netns_setup(ns):
    for role in ("srv", "gen"):
        runner.netns_add(ns[role])
    srv, gen = ns["srv"], ns["gen"]
    # Created inside srv with its peer moved straight into gen: nothing
    # appears in the machine's namespace.
    runner.run(["ip", "-n", srv, "link", "add", "s0", "type", "veth", "peer", "name", "g0",
                "netns", gen])
    for n, dev, addrs in ((srv, "s0", (SRV_ADDR, PEER_ADDR)), (gen, "g0", (GEN_ADDR,))):
        for a in addrs:
            runner.run(["ip", "-n", n, "addr", "add", a + "/24", "dev", dev])
        runner.run(["ip", "-n", n, "link", "set", dev, "up"])
    for net in (NET_SERVER, NET_PEER):
        runner.run(["ip", "-n", srv, "route", "add", net, "via", GEN_ADDR])
    fwd = ns_exec(gen, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip()
    if fwd != "0":
        raise BenchError("ip_forward is on in %s" % gen)
    info = json.loads(runner.run(["ip", "-n", srv, "-j", "link", "show", "s0"]).stdout)
    return info[0]["address"]


def make_pki(d):
    """A throwaway CA and a server certificate for every address served."""
    def ossl(*args):
        r = runner.run(["openssl"] + list(args), timeout=30, check=False)
        if r.returncode != 0:
            raise BenchError("openssl %s: %s" % (args[0], r.stderr.strip()))
    p = {k: os.path.join(d, k) for k in ("ca.key", "ca.pem", "server.key", "server.csr",
                                          "server.pem", "chain.pem", "ext.cnf")}
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", p["ca.key"], "-out", p["ca.pem"], "-days", "2", "-subj", "/CN=ntsd-soak-ca")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", p["server.key"], "-out", p["server.csr"], "-subj", "/CN=localhost")
    runner.write(p["ext.cnf"], "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:%s,IP:%s\n"
                 "extendedKeyUsage=serverAuth\n" % (SRV_ADDR, PEER_ADDR))
    ossl("x509", "-req", "-in", p["server.csr"], "-CA", p["ca.pem"], "-CAkey", p["ca.key"],
         "-set_serial", "1", "-days", "2", "-extfile", p["ext.cnf"], "-out", p["server.pem"])
    with open(p["chain.pem"], "w") as out:
        for k in ("server.pem", "ca.pem"):
            with open(p[k]) as f:
                out.write(f.read())
    return p


class Daemon:
    """One daemon being sampled: kind "ntsd-server", "ntsd-client" or "chronyd"."""

    def __init__(self, name, kind, proc, sock, ntp=None):
        self.name, self.kind, self.proc, self.sock, self.ntp = name, kind, proc, sock, ntp
        self.samples = []

    @property
    def pid(self):
        return self.proc.p.pid


def ntsd_ready(sock, cmd):
    try:
        runner.ntsd_ctl(sock, cmd, timeout=1.0)
        return True
    except Exception:
        return False


def start_ntsd_server(a, ns, d, pki, name, ntp, ke):
    sock = os.path.join(d, name + ".sock")
    conf = runner.write(os.path.join(d, name + ".conf"),
                        "# soak NTS server (scripts/soak)\n"
                        "disable ntp\n"
                        "listen %s\n"
                        "local stratum 1\n"
                        "nts enable\n"
                        "nts cert %s\n"
                        "nts key %s\n"
                        "nts-listen-on %s\n" % (ntp, pki["chain.pem"], pki["server.key"], ke))
    log("start %s: NTP %s, NTS-KE %s" % (name, ntp, ke))
    p = runner.Proc(name, [a.ntsd, "-c", conf, "-n", "-x", "-s", sock], ns, d)
    return Daemon(name, "ntsd-server", p, sock, ntp)


def start_chronyd(ns, d, pki):
    cd = os.path.join(d, "chronyd")
    os.makedirs(cd, mode=0o700)
    sock = os.path.join(cd, "chronyd.sock")
    conf = runner.write(os.path.join(cd, "chrony.conf"),
                        "# soak NTS server, the peer (scripts/soak)\n"
                        "port 123\n"
                        "bindaddress %s\n"
                        "cmdport 0\n"
                        "bindcmdaddress %s\n"
                        "pidfile %s\n"
                        "local stratum 1\n"
                        "allow all\n"
                        "ntsport 4460\n"
                        "ntsserverkey %s\n"
                        "ntsservercert %s\n"
                        % (PEER_ADDR, sock, os.path.join(cd, "chronyd.pid"), pki["server.key"],
                           pki["chain.pem"]))
    log("start chronyd: NTP %s:123, NTS-KE %s:4460" % (PEER_ADDR, PEER_ADDR))
    p = runner.Proc("chronyd", [CHRONYD, "-4", "-x", "-d", "-u", "root", "-f", conf], ns, d)
    return Daemon("chronyd", "chronyd", p, sock, "%s:123" % PEER_ADDR)


def start_client(a, ns, d, pki, sources):
    sock = os.path.join(d, "client.sock")
    lines = ["# soak client: 4 NTS sources, polled every second (scripts/soak)",
             "disable ntp", "interface ignore all"]
    for ke in sources:
        lines.append("server %s nts ca %s iburst minpoll 0 maxpoll 0" % (ke, pki["ca.pem"]))
    conf = runner.write(os.path.join(d, "client.conf"), "\n".join(lines) + "\n")
    log("start client: NTS sources %s" % ", ".join(sources))
    p = runner.Proc("client", [a.ntsd, "-c", conf, "-n", "-x", "-s", sock], ns, d)
    return Daemon("client", "ntsd-client", p, sock)


def wait_for(pred, timeout, what, procs):
    deadline = time.monotonic() + timeout
    while True:
        for p in procs:
            if not p.alive():
                raise BenchError("%s exited (rc=%s)\n%s" % (p.name, p.p.returncode, p.tail()))
        if pred():
            return
        if time.monotonic() >= deadline:
            raise BenchError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(0.2)


def chronyc(sock, *args):
    return runner.chronyc(sock, *args)


def client_ready(sock, n):
    """All n sources have cookies and an answered poll."""
    try:
        peers = runner.ntsd_ctl(sock, "peers", timeout=1.0)
    except Exception:
        return False
    return (len(peers) == n and
            all(p.get("cookies", 0) > 0 and p.get("reach", 0) for p in peers))


# --------------------------------------------------------------------------
# The load
# --------------------------------------------------------------------------

def build_ntpperf(a):
    """Builds ntpperf with NTS into BUILD/ntpperf; (path, None) or (None, why)."""
    if not os.path.isfile(os.path.join(NTPPERF_SRC, "perf.c")):
        return None, "ntpperf not found at %s" % NTPPERF_SRC
    out = os.path.join(a.build, "ntpperf")
    os.makedirs(out, exist_ok=True)
    r = subprocess.run(["make", "-s", "-C", out, "-f", os.path.join(NTPPERF_SRC, "Makefile"),
                        "VPATH=" + NTPPERF_SRC, "NTPPERF_NTS=1"],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    binary = os.path.join(out, "ntpperf")
    if r.returncode != 0 or not os.access(binary, os.X_OK):
        why = (r.stderr or r.stdout).strip().splitlines()[-3:]
        return None, "ntpperf did not build (needs libpcap-dev and libgnutls28-dev: " \
                     "scripts/install-deps --soak): %s" % " / ".join(why)
    h = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=10)
    if "-S C2S,COOKIE" not in h.stderr + h.stdout:
        return None, "ntpperf was built without NTS support"
    return binary, None


def ke_fetch(a, ns, addr):
    """C2S key and cookie (`C2S,COOKIE`) from one NTS-KE with addr:4460."""
    r = ns_exec(ns, [a.kefetch, "-c", a.pki["ca.pem"], addr], timeout=20)
    if r.returncode != 0:
        raise BenchError("ntsd_kefetch %s: %s" % (addr, r.stderr.strip()))
    f = r.stdout.split()
    if len(f) != 2 or f[0] != "15":
        raise BenchError("ntsd_kefetch %s printed %r" % (addr, r.stdout[:80]))
    return f[1]


class Load:
    """One load generator process aimed at one server."""

    def __init__(self, target, proc, kind):
        self.target, self.proc, self.kind = target, proc, kind
        self.lines = []
        self.ended = None   # seconds into the run when it exited early

    def read(self):
        try:
            with open(self.proc.log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return
        self.lines = soak_report.parse_load_lines(text)


def start_ntpperf(a, ns, d, binary, mac, target, addr, net):
    key = ke_fetch(a, ns["srv"], addr)
    cg, why = cgroup_create(target, a.gen_cpu)
    a.gen_cap = ("%d %% of one CPU per instance (cgroup cpu quota %d us per %d us)" % (
        a.gen_cpu, max(1000, int(CG_PERIOD_US * a.gen_cpu / 100)), CG_PERIOD_US) if cg else
        "none (%s): ntpperf busy-waits on up to a core per instance" % why)
    if not cg:
        log("ntpperf's CPU is not capped: %s" % why)
    cmd = [binary, "-i", "g0", "-m", mac, "-d", addr, "-s", net, "-B", "-S", key,
           "-r", str(a.rate), "-x", "1", "-t", str(a.gen_interval), "-l"]
    # Stops by itself a minute after the run's end at the latest, and with
    # `timeout` if that is killed (which is killed with the soak).
    cmd = ["timeout", "-s", "INT", "-k", "10", str(a.seconds + 60),
           "setpriv", "--pdeathsig", "KILL", "--"] + cmd
    if cg:
        cmd = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg] + cmd
    log("start ntpperf -> %s (%s): %d requests/s, %d clients from %s" % (
        target, addr, a.rate, min(a.rate // 10, 16384), net))
    return Load(target, runner.Proc("ntpperf-" + target, cmd, ns["gen"], d), "ntpperf")


def start_fallback(a, ns, d):
    runner.run(["ip", "-n", ns["gen"], "route", "add", "local", NET_SERVER, "dev", "lo"])
    cmd = [sys.executable, os.path.join(HERE, "soakload.py"), "--server", "%s:123" % SRV_ADDR,
           "--net", NET_SERVER, "--clients", str(a.fallback_clients),
           "--rate", str(a.fallback_rate), "--seconds", str(a.seconds + 60),
           "--interval", str(a.gen_interval)]
    log("start the fallback load -> server: plain NTP, %d requests/s from %d addresses" % (
        a.fallback_rate, a.fallback_clients))
    return Load("server", runner.Proc("fallback-load", cmd, ns["gen"], d), "fallback")


# --------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------

def proc_tree(pid):
    """pid and its descendants (chronyd forks an NTS-KE helper)."""
    kids = {}
    for n in os.listdir("/proc"):
        if not n.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % n) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        kids.setdefault(ppid, []).append(int(n))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


# A client opens a socket per exchange and closes it at the answer, or at
# the source's next poll when the answer is lost: such a socket lives at
# most one poll interval (1 s here).  The least of reads spread over longer
# than that counts the daemon's own fds, not an exchange in flight.
FD_READS = 7
FD_READ_GAP = 0.2  # s: the reads span 1.2 s


def proc_usage(pid, reads=3, gap=0.01):
    """RSS (kB), open fds (the least of `reads` reads `gap` s apart: a
    client's per-request sockets come and go), CPU seconds, kernel socket
    drops."""
    rss = cpu = fds = drops = 0
    inodes = set()
    for p in proc_tree(pid):
        try:
            with open("/proc/%d/status" % p) as f:
                for ln in f:
                    if ln.startswith("VmRSS:"):
                        rss += int(ln.split()[1])
            with open("/proc/%d/stat" % p) as f:
                st = f.read().rsplit(")", 1)[1].split()
            cpu += (int(st[11]) + int(st[12])) / CLK_TCK
            counts = []
            for i in range(reads):
                if i:
                    time.sleep(gap)
                names = os.listdir("/proc/%d/fd" % p)
                counts.append(len(names))
            fds += min(counts)
            for n in names:
                try:
                    t = os.readlink("/proc/%d/fd/%s" % (p, n))
                except OSError:
                    continue
                if t.startswith("socket:["):
                    inodes.add(t[8:-1])
        except (OSError, IndexError, ValueError):
            continue
    for table in ("udp", "udp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                for ln in f.readlines()[1:]:
                    fl = ln.split()
                    if len(fl) >= 13 and fl[9] in inodes:
                        drops += int(fl[12])
        except OSError:
            pass
    return {"rss_kb": rss, "fds": fds, "cpu_s": round(cpu, 2), "udp_drops": drops}


def counters(dm):
    if dm.kind == "chronyd":
        return {"serverstats": chronyc(dm.sock, "serverstats")[0]}
    out = {"nts": runner.ntsd_ctl(dm.sock, "nts")}
    if dm.kind == "ntsd-client":
        out["peers"] = runner.ntsd_ctl(dm.sock, "peers")
    else:
        out["server"] = runner.ntsd_ctl(dm.sock, "server")
    return out


def sample(daemons, t):
    for dm in daemons:
        if not dm.proc.alive():
            raise BenchError("%s exited (rc=%s)\n%s" % (dm.name, dm.proc.p.returncode,
                                                       dm.proc.tail()))
        s = {"t": round(t, 1)}
        if dm.kind == "ntsd-client":
            s.update(proc_usage(dm.pid, FD_READS, FD_READ_GAP))
        else:
            s.update(proc_usage(dm.pid))
        try:
            full = counters(dm)
            s["counters"] = soak_report.condense(dm.kind, full)
            s["counters_full"] = full
        except Exception as e:  # a busy daemon: record it, do not stop
            s["counters"] = None
            s["query_error"] = str(e)
        dm.samples.append(s)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def setup(a, tmp):
    ns = {r: "%s%d-%s" % (NS_PREFIX, os.getpid(), r) for r in ("srv", "gen")}
    mac = netns_setup(ns)
    a.pki = make_pki(tmp)
    srv = ns["srv"]
    daemons = [start_ntsd_server(a, srv, tmp, a.pki, "server", SRV_ADDR + ":123",
                                 SRV_ADDR + ":4460")]
    sources = [SRV_ADDR]
    for i, name in enumerate(("server-b", "server-c")):
        daemons.append(start_ntsd_server(a, srv, tmp, a.pki, name, "127.0.0.1:%d" % (1123 + i),
                                         "127.0.0.1:%d" % (4461 + i)))
        sources.append("127.0.0.1:%d" % (4461 + i))
    if a.peer:
        daemons.append(start_chronyd(srv, tmp, a.pki))
        sources.append(PEER_ADDR)
    else:
        daemons.append(start_ntsd_server(a, srv, tmp, a.pki, "server-d", "127.0.0.1:1125",
                                         "127.0.0.1:4463"))
        sources.append("127.0.0.1:4463")
    procs = [dm.proc for dm in daemons]
    for dm in daemons:
        if dm.kind == "chronyd":
            wait_for(lambda: _chrony_ready(dm.sock), 15, "chronyd", procs)
        else:
            wait_for(lambda: ntsd_ready(dm.sock, "nts"), 15, dm.name, procs)
    client = start_client(a, srv, tmp, a.pki, sources)
    daemons.append(client)
    procs.append(client.proc)
    wait_for(lambda: client_ready(client.sock, 4), 60,
             "the client's 4 NTS sources (cookies and a reply each)", procs)
    return ns, mac, daemons


def _chrony_ready(sock):
    try:
        chronyc(sock, "serverstats")
        return True
    except Exception:
        return False


def start_load(a, ns, tmp, mac):
    """The load generators; also fills a.load_note (what is measured)."""
    loads = []
    if a.load == "none":
        a.load_note = "no emulated load (--load none): the 4-source client and idle servers"
        return loads
    binary, why = (None, "--load fallback") if a.load == "fallback" else build_ntpperf(a)
    if binary is None:
        print("soak: %s; running the fallback load instead: plain NTP (not NTS) at %d "
              "requests/s from %d addresses to the ntsd server%s" % (
                  why, a.fallback_rate, a.fallback_clients,
                  ", none on chronyd" if a.peer else ""), flush=True)
        a.load_note = ("fallback: %s; plain NTP (no NTS) from bench/soakload.py, %d requests/s "
                       "from %d addresses, to the ntsd server only" % (
                           why, a.fallback_rate, a.fallback_clients))
        a.load_kind = "fallback"
        loads.append(start_fallback(a, ns, tmp))
        return loads
    a.load_kind = "ntpperf"
    a.load_note = ("ntpperf: NTS (AEAD 15, one cookie) basic-mode requests, %d/s from %d "
                   "emulated clients per loaded server" % (a.rate, min(a.rate // 10, 16384)))
    loads.append(start_ntpperf(a, ns, tmp, binary, mac, "server", SRV_ADDR, NET_SERVER))
    if a.peer:
        loads.append(start_ntpperf(a, ns, tmp, binary, mac, "chronyd", PEER_ADDR, NET_PEER))
    return loads


def soak(a, tmp):
    ns, mac, daemons = setup(a, tmp)
    loads = start_load(a, ns, tmp, mac)
    t0 = time.monotonic()
    end = t0 + a.seconds
    log("soak running for %d s, a sample every %d s (warm-up %d s)" % (
        a.seconds, a.sample, a.warmup))
    next_s = t0
    next_progress = t0 + 60
    while True:
        now = time.monotonic()
        if now >= next_s:
            sample(daemons, now - t0)
            next_s += a.sample
        for ld in loads:
            if ld.ended is None and not ld.proc.alive():
                ld.ended = round(now - t0, 1)
                log("load generator %s exited early (rc=%s)\n%s" % (
                    ld.proc.name, ld.proc.p.returncode, ld.proc.tail(10)))
        if now >= next_progress:
            log(soak_report.progress_line(daemons))
            next_progress += 60
        if now >= end:
            break
        time.sleep(max(0.05, min(next_s, end, next_progress) - time.monotonic()))
    # The last sample at the end, load still on; then the generators' totals.
    if daemons[0].samples[-1]["t"] < a.seconds - 1:
        sample(daemons, time.monotonic() - t0)
    for ld in loads:
        ld.proc.stop()
        ld.read()
    return daemons, loads


def parse_args(argv):
    env = os.environ.get
    ap = argparse.ArgumentParser(prog="scripts/soak",
                                 description="ntsd soak benchmark (not a test)")
    ap.add_argument("build", nargs="?", default="build", help="build directory (default build)")
    ap.add_argument("--seconds", type=int, default=int(env("SOAK_SECONDS", "1800")),
                    help="duration under load (default $SOAK_SECONDS or 1800)")
    ap.add_argument("--rate", type=int, default=int(env("SOAK_RATE", "10000")),
                    help="ntpperf requests/s per loaded server; clients = rate / 10 "
                    "(default $SOAK_RATE or 10000: 1000 clients)")
    ap.add_argument("--sample", type=int, default=int(env("SOAK_SAMPLE", "10")),
                    help="seconds between samples (default $SOAK_SAMPLE or 10)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="seconds before the flatness reference (default 120, a quarter "
                    "of runs shorter than 480 s)")
    ap.add_argument("--no-peer", dest="peer", action="store_false",
                    default=env("SOAK_PEER", "1") != "0",
                    help="no chronyd: the 4th source is a third ntsd, and no peer load")
    ap.add_argument("--load", choices=("ntpperf", "fallback", "none"), default="ntpperf")
    ap.add_argument("--gen-cpu", type=int, default=25,
                    help="CPU cap of each ntpperf, %% of one core (default 25)")
    ap.add_argument("--gen-interval", type=int, default=10,
                    help="seconds per load generator report line (default 10)")
    ap.add_argument("--fallback-rate", type=int, default=1000)
    ap.add_argument("--fallback-clients", type=int, default=1000)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--keep", action="store_true", help="keep the logs and configurations")
    ap.add_argument("--cleanup", action="store_true",
                    help="only remove namespaces and cgroups left by killed runs")
    a = ap.parse_args(argv)
    a.build = a.build if os.path.isabs(a.build) else os.path.join(SOURCE_DIR, a.build)
    a.ntsd = os.path.join(a.build, "ntsd")
    a.kefetch = os.path.join(a.build, "ntsd_kefetch")
    if not 60 <= a.seconds <= 7 * 86400:
        ap.error("--seconds must be 60..604800")
    if not 1000 <= a.rate <= 100000:
        ap.error("--rate must be 1000..100000")
    if not 1 <= a.sample <= a.seconds // 4:
        ap.error("--sample must be 1..seconds/4")
    if not 5 <= a.gen_cpu <= 100:
        ap.error("--gen-cpu must be 5..100")
    if a.warmup is None:
        a.warmup = 120 if a.seconds >= 480 else a.seconds // 4
    a.load_kind, a.load_note, a.gen_cap = a.load, "", "-"
    return a


def check_tools(a):
    need = [(a.ntsd, "ntsd (build first)"), (a.kefetch, "ntsd_kefetch (build first)")]
    if a.peer:
        need += [(CHRONYD, "chronyd"), (CHRONYC, "chronyc")]
    for path, what in need:
        if not os.access(path, os.X_OK):
            return "%s not found at %s" % (what, path)
    for tool in ("ip", "setpriv", "openssl", "timeout", "make"):
        if shutil.which(tool) is None:
            return "needs %s" % tool
    return None


def main(argv):
    a = parse_args(argv)
    if os.geteuid() != 0:
        print("soak: needs root (network namespaces)", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    cleanup_stale()
    if a.cleanup:
        return 0
    why = check_tools(a)
    if why:
        print("soak: %s" % why, file=sys.stderr)
        return 2
    runner.check_clock_protection()
    tmp = tempfile.mkdtemp(prefix="ntsd-soak-")
    os.chmod(tmp, 0o700)
    runner.STATE["tmp"], runner.STATE["keep"] = tmp, a.keep
    cond = runner.conditions(a)
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    try:
        daemons, loads = soak(a, tmp)
    except (BenchError, subprocess.TimeoutExpired) as e:
        print("soak: FAILED: %s" % e, flush=True)
        runner.STATE["keep"] = True
        cleanup()
        return 2
    cleanup()
    cond["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    result = soak_report.build_result(a, cond, started, daemons, loads)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "soak-latest.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    md = soak_report.markdown(result)
    with open(os.path.join(a.out, "soak-latest.md"), "w") as f:
        f.write(md)
    print()
    print(soak_report.text(result))
    print("wrote %s and %s" % (os.path.join(a.out, "soak-latest.json"),
                               os.path.join(a.out, "soak-latest.md")))
    return 0 if result["verdict"]["all"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
