#!/usr/bin/env python3
"""ntsd accuracy benchmark on the real network stack (`make bench`).

Usage: scripts/bench [BUILD_DIR] [--duration SECONDS] [--scenario NAME]...
                     [--jobs N] [--seed N] [--keep] [--out DIR]
       scripts/bench [BUILD_DIR] --calibrate N [--scenario NAME]...
       scripts/bench --cleanup
(see docs/benchmarks.md)

For every scenario it builds three network namespaces of its own,

    srv (198.18.0.1) --veth-- rtr (198.18.0.2 | 198.19.0.1) --veth-- cli (198.19.0.2)

runs one `ntsd -x` at `local stratum 1` in srv, the UDP relay (bench/relay.py)
in rtr on 198.19.0.1:123 forwarding to 198.18.0.1:123 with the scenario's
delay / jitter / loss / spikes, and in cli, side by side through the same
relay, `ntsd -x`, `ntsd -x --virtual-clock 0` (the discipline steering a
virtual clock; when the binary has that option) and `chronyd -x`, all
`server 198.19.0.1 iburst minpoll 4 maxpoll 4`.  There is no route between cli and srv other than the relay, and
nothing in cli delays anything.  All processes share the machine's clock, so
the true offset is exactly 0 and every estimate is pure error.

Safety: every daemon runs under `setpriv --inh-caps=-sys_time
--bounding-set=-sys_time` (checked) with clock control off (`-x`); every
process is put in its namespace before exec (setns) and checked to be there;
all traffic stays inside the namespaces created here, which are deleted at
the end, on error, on SIGINT/SIGTERM/SIGHUP, and (if a run was SIGKILLed) by
the next run; all waits and loops have deadlines.  Needs root.

Writes bench/results/latest.json and bench/results/latest.md.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import report  # noqa: E402
from scenarios import BY_NAME, SCENARIOS, describe_direction  # noqa: E402

SETPRIV = ["setpriv", "--inh-caps=-sys_time", "--bounding-set=-sys_time", "--"]
CHRONYD = os.environ.get("CHRONYD_BIN", "/usr/sbin/chronyd")
CHRONYC = os.environ.get("CHRONYC_BIN", "/usr/bin/chronyc")
RELAY = os.path.join(HERE, "relay.py")
RESULTS = os.path.join(HERE, "results")

NS_PREFIX = "ntsdbench-"
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
SRV_ADDR, RTR_SRV_ADDR = "198.18.0.1", "198.18.0.2"
RTR_CLI_ADDR, CLI_ADDR = "198.19.0.1", "198.19.0.2"
POLL_S = 16                    # minpoll 4 / maxpoll 4
FAST_QUERY_S = 0.2             # query period until the first estimate
FIRST_ESTIMATE_WAIT_S = 120    # give up waiting for a first estimate after this

_libc = ctypes.CDLL(None, use_errno=True)
T0 = time.monotonic()


def log(msg):
    print("[%7.1f] %s" % (time.monotonic() - T0, msg), flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# Processes and namespaces (everything created is recorded for clean-up)
# --------------------------------------------------------------------------

STATE = {"procs": [], "netns": [], "tmp": None, "keep": False, "cleaned": False}


def run(cmd, timeout=10, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise BenchError("%s failed (rc=%d): %s" % (" ".join(cmd), r.returncode,
                                                   (r.stderr or r.stdout).strip()))
    return r


def ns_path(name):
    return os.path.join(NETNS_DIR, name)


def ns_inode(path):
    return os.stat(path).st_ino


def _preexec(nspath):
    def f():
        _libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)   # PR_SET_PDEATHSIG: die with us
        os.setsid()                                     # ^C reaches the runner only
        if nspath is not None:
            fd = os.open(nspath, os.O_RDONLY | os.O_CLOEXEC)
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                os._exit(126)
            os.close(fd)
    return f


class Proc:
    def __init__(self, name, cmd, ns, logdir):
        self.name = name
        self.ns = ns
        self.log = os.path.join(logdir, name + ".log")
        self._logf = open(self.log, "ab")
        self.p = subprocess.Popen(SETPRIV + list(cmd), stdin=subprocess.DEVNULL,
                                  stdout=self._logf, stderr=subprocess.STDOUT,
                                  preexec_fn=_preexec(ns_path(ns)), close_fds=True)
        self.started = time.monotonic()
        STATE["procs"].append(self)
        # Prove it is in the namespace we made, not the machine's.
        want = ns_inode(ns_path(ns))
        try:
            got = os.stat("/proc/%d/ns/net" % self.p.pid).st_ino
        except OSError:
            got = None
        if got != want and self.p.poll() is None:
            self.stop()
            raise BenchError("%s is not in namespace %s" % (name, ns))

    def alive(self):
        return self.p.poll() is None

    def stop(self, timeout=5.0):
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
            except ProcessLookupError:
                pass
        try:
            self._logf.close()
        except OSError:
            pass
        return self.p.returncode

    def tail(self, n=30):
        try:
            with open(self.log, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + ln for ln in lines[-n:])


def netns_add(name):
    run(["ip", "netns", "add", name])
    STATE["netns"].append(name)
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def netns_del(name):
    r = run(["ip", "netns", "del", name], check=False)
    return r.returncode == 0


def cleanup_stale():
    """Deletes namespaces left by a run that was killed (its pid is gone)."""
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return
    for n in names:
        if not n.startswith(NS_PREFIX):
            continue
        try:
            pid = int(n[len(NS_PREFIX):].split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # that run is still going
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        log("removing stale namespace %s (run %d is gone)" % (n, pid))
        netns_del(n)


def teardown(procs=None, namespaces=None):
    procs = list(STATE["procs"]) if procs is None else procs
    for p in reversed(procs):
        p.stop()
        if p in STATE["procs"]:
            STATE["procs"].remove(p)
    namespaces = list(STATE["netns"]) if namespaces is None else namespaces
    for n in namespaces:
        netns_del(n)
        if n in STATE["netns"]:
            STATE["netns"].remove(n)


def cleanup():
    if STATE["cleaned"]:
        return
    STATE["cleaned"] = True
    teardown()
    if STATE["tmp"] and not STATE["keep"]:
        shutil.rmtree(STATE["tmp"], ignore_errors=True)
    elif STATE["tmp"]:
        log("logs kept in %s" % STATE["tmp"])


def _on_signal(signum, frame):
    print("\nbench: interrupted by signal %d, cleaning up" % signum, flush=True)
    cleanup()
    os._exit(130)


def check_clock_protection():
    r = run(SETPRIV + ["cat", "/proc/self/status"])
    caps = {}
    for ln in r.stdout.splitlines():
        if ln.startswith("Cap"):
            k, v = ln.split(":", 1)
            caps[k] = int(v.strip(), 16)
    bit = 1 << 25  # CAP_SYS_TIME
    for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        if k not in caps or caps[k] & bit:
            raise BenchError("setpriv did not drop CAP_SYS_TIME (%s)" % k)


# --------------------------------------------------------------------------
# One scenario: namespaces, relay, server, two clients
# --------------------------------------------------------------------------

def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def ntsd_ctl(sock, cmd, timeout=3.0):
    """One request on ntsd's control socket (the protocol ntsctl speaks:
    `COMMAND json\\n`, reply until close); returns the parsed JSON."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(("%s json\n" % cmd).encode())
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            b = s.recv(65536)
            if not b:
                break
            buf += b
    finally:
        s.close()
    v = json.loads(buf.decode())
    if isinstance(v, dict) and "error" in v:
        raise BenchError("ntsd control %s: %s" % (cmd, v["error"]))
    return v


def chronyc(sock, *args, timeout=5):
    r = run([CHRONYC, "-n", "-c", "-h", sock] + list(args), timeout=timeout, check=False)
    if r.returncode != 0:
        raise BenchError("chronyc %s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
    return [ln.split(",") for ln in r.stdout.splitlines() if ln.strip()]


TRACKING_FIELDS = ("ref_id", "ref_name", "stratum", "ref_time", "system_time", "last_offset",
                   "rms_offset", "frequency", "residual_freq", "skew", "root_delay",
                   "root_dispersion", "update_interval", "leap")


class Client:
    """One client daemon being sampled."""

    def __init__(self, kind, scn_name, proc, sock):
        self.kind = kind
        self.scn = scn_name
        self.proc = proc
        self.sock = sock
        self.start = proc.started
        self.first = None            # monotonic time of the first estimate
        self.first_sample = None     # ntsd: first peer sample; chrony: first source sample
        self.next_query = self.start
        self.samples = []
        self.errors = 0
        self.window = None
        self.rng = random.Random("%s/%s" % (scn_name, kind))
        self.last_error = None

    def query(self):
        """(estimate in seconds, NTP sign convention, or None; detail dict)."""
        if self.kind in ("ntsd", "ntsd-vc"):
            sysv = ntsd_ctl(self.sock, "sys")
            peers = ntsd_ctl(self.sock, "peers")
            p = peers[0] if peers else {}
            have = sysv.get("synced") or sysv.get("system_peer")
            if self.kind == "ntsd":
                # -x: nothing is disciplined; the system offset (NTP sign,
                # server - local) is the current estimate of the clock's error.
                est = sysv.get("offset")
            else:
                # -x --virtual-clock 0: the discipline steers a virtual clock
                # that starts on the system clock; its time minus the system
                # clock's is the error ntsd would have given the clock (the
                # same quantity as chrony's "System time" under -x).
                est = sysv.get("virtual_clock_error")
            if not (isinstance(est, (int, float)) and have):
                est = None
            det = {"sys_offset": sysv.get("offset"), "synced": sysv.get("synced"),
                   "frequency": sysv.get("frequency"),
                   "virtual_clock_error": sysv.get("virtual_clock_error"),
                   "peer_offset": p.get("offset"), "peer_delay": p.get("delay"),
                   "peer_jitter": p.get("jitter"), "reach": p.get("reach"),
                   "selection": p.get("selection")}
            have_sample = p.get("offset") is not None
            return est, det, have_sample
        tr = chronyc(self.sock, "tracking")[0]
        t = dict(zip(TRACKING_FIELDS, tr))
        est = None
        if t.get("ref_id", "0").strip("0") and float(t.get("ref_time", "0")) > 0:
            # Under -x chronyd runs its "null" clock driver: the correction it
            # has applied to its virtual clock (tracking "System time",
            # positive = system clock slow of NTP time) is its estimate of
            # (true time - system clock), i.e. the NTP sign convention.
            est = float(t["system_time"])
        ss = chronyc(self.sock, "sourcestats")
        det = {"system_time": t.get("system_time"), "last_offset": t.get("last_offset"),
               "rms_offset": t.get("rms_offset"), "frequency": t.get("frequency"),
               "skew": t.get("skew"), "leap": t.get("leap")}
        have_sample = False
        if ss:
            f = ss[0]
            det.update(ss_np=int(f[1]), ss_offset=float(f[6]), ss_stddev=float(f[7]))
            have_sample = int(f[1]) >= 1
        return est, det, have_sample

    def tick(self, end):
        """Queries if due; returns the next time it wants to run."""
        now = time.monotonic()
        if now < self.next_query:
            return self.next_query
        try:
            est, det, have_sample = self.query()
        except Exception as e:  # the daemon may be busy for a moment; count it
            self.errors += 1
            self.last_error = str(e)
            est, det, have_sample = None, None, False
            if self.first is None:
                self.next_query = now + FAST_QUERY_S
                return self.next_query
        if self.first_sample is None and have_sample:
            self.first_sample = now
        if self.first is None:
            if est is None:
                self.next_query = now + FAST_QUERY_S
                return self.next_query
            self.first = now
            self.window = now
        # Once per poll from the first estimate on: at the first estimate, then
        # at a random point of each following 16 s window (a fixed phase would
        # see a slewing clock always at the same point of its update cycle).
        self.samples.append({"t": round(now - self.start, 3), "offset": est, "detail": det})
        self.window += POLL_S
        while self.window + POLL_S <= now:
            self.window += POLL_S
        self.next_query = max(now, self.window + self.rng.uniform(0, POLL_S))
        return self.next_query

    def result(self):
        return {
            "first_estimate_s": None if self.first is None else round(self.first - self.start, 3),
            "first_sample_s": (None if self.first_sample is None
                               else round(self.first_sample - self.start, 3)),
            "stats": report.offset_stats(self.samples),
            "query_errors": self.errors,
            "last_query_error": self.last_error,
            "samples": self.samples,
        }


class ScenarioRun:
    def __init__(self, scn, idx, tmp, args):
        self.scn = scn
        self.idx = idx
        self.args = args
        self.dir = os.path.join(tmp, scn["name"])
        os.makedirs(self.dir, mode=0o700)
        base = "%s%d-%d" % (NS_PREFIX, os.getpid(), idx)
        self.ns = {"srv": base + "-srv", "rtr": base + "-rtr", "cli": base + "-cli"}
        self.procs = []
        self.namespaces = []
        self.clients = []
        self.relay_stats_path = os.path.join(self.dir, "relay-stats.json")
        self.error = None

    def netns_setup(self):
        for role in ("srv", "rtr", "cli"):
            netns_add(self.ns[role])
            self.namespaces.append(self.ns[role])
        srv, rtr, cli = self.ns["srv"], self.ns["rtr"], self.ns["cli"]
        # veths are created inside rtr with their peers moved straight into
        # srv / cli: nothing ever appears in the machine's namespace.
        run(["ip", "-n", rtr, "link", "add", "to-srv", "type", "veth", "peer", "name", "to-rtr",
             "netns", srv])
        run(["ip", "-n", rtr, "link", "add", "to-cli", "type", "veth", "peer", "name", "to-rtr",
             "netns", cli])
        for ns, dev, addr in ((srv, "to-rtr", SRV_ADDR), (rtr, "to-srv", RTR_SRV_ADDR),
                              (rtr, "to-cli", RTR_CLI_ADDR), (cli, "to-rtr", CLI_ADDR)):
            run(["ip", "-n", ns, "addr", "add", addr + "/24", "dev", dev])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        # No forwarding in rtr (the default in a new namespace; made explicit).
        fwd = run(["ip", "netns", "exec", rtr, "cat", "/proc/sys/net/ipv4/ip_forward"])
        if fwd.stdout.strip() != "0":
            raise BenchError("ip_forward is on in %s" % rtr)

    def prepare(self, probe=False):
        """Namespaces, relay, server (and, for --calibrate, the prober)."""
        a = self.args
        self.netns_setup()
        d = self.dir
        # The relay, bounded in time by itself too.
        ready = os.path.join(d, "relay.ready")
        relay_cmd = [sys.executable, RELAY, "--listen", "%s:123" % RTR_CLI_ADDR,
                     "--upstream-bind", RTR_SRV_ADDR, "--server", "%s:123" % SRV_ADDR,
                     "--config", json.dumps(self.scn["relay"]),
                     "--seed", str(a.seed * 100 + self.idx),
                     "--stats", self.relay_stats_path,
                     "--max-seconds", str(a.duration + 120),
                     "--packet-log", os.path.join(d, "relay-packets.csv"),
                     "--ready", ready, "--spin-us", str(a.spin_us),
                     "--floor-us", str(a.floor_us)]
        if a.rt:
            relay_cmd.append("--rt")
        self.relay = self.spawn("relay", relay_cmd, "rtr")
        # The server.
        srv_sock = os.path.join(d, "server.sock")
        conf = write(os.path.join(d, "server.conf"),
                     "# benchmark server (scripts/bench)\n"
                     "disable ntp\n"
                     "listen %s:123\n"
                     "local stratum 1\n" % SRV_ADDR)
        self.server = self.spawn("server-ntsd", [a.ntsd, "-c", conf, "-n", "-x", "-s", srv_sock],
                                 "srv")
        wait_for(lambda: self._ntsd_ready(srv_sock, "server"), 15, "server ntsd", self)
        wait_for(lambda: os.path.exists(ready), 10, "relay", self)
        if probe:
            self.probe_out = os.path.join(d, "probe.json")
            self.probe = self.spawn("probe", [sys.executable, os.path.join(HERE, "probe.py"),
                                              "--server", "%s:123" % RTR_CLI_ADDR,
                                              "--count", str(a.calibrate),
                                              "--out", self.probe_out], "cli")

    def start_clients(self):
        """The two clients, side by side (started last, all scenarios in a
        row, so that time to the first estimate is measured from here)."""
        a = self.args
        d = self.dir
        ntsd_sock = os.path.join(d, "client.sock")
        cconf = write(os.path.join(d, "client.conf"),
                      "# benchmark client (scripts/bench)\n"
                      "disable ntp\n"
                      "server %s iburst minpoll 4 maxpoll 4\n"
                      "interface ignore all\n" % RTR_CLI_ADDR)
        chdir = os.path.join(d, "chrony")
        os.makedirs(chdir, mode=0o700)
        chrony_sock = os.path.join(chdir, "chronyd.sock")
        chconf = write(os.path.join(chdir, "chrony.conf"),
                       "# benchmark client (scripts/bench)\n"
                       "port 0\n"
                       "cmdport 0\n"
                       "bindcmdaddress %s\n"
                       "pidfile %s\n"
                       "server %s iburst minpoll 4 maxpoll 4\n"
                       % (chrony_sock, os.path.join(chdir, "chronyd.pid"), RTR_CLI_ADDR))
        vc_sock = os.path.join(d, "client-vc.sock")
        dbg = ["-d", "-d"] if a.ntsd_debug else []
        p1 = self.spawn("client-ntsd", [a.ntsd, "-c", cconf, "-n", "-x", "-s", ntsd_sock] + dbg,
                        "cli")
        self.clients = [Client("ntsd", self.scn["name"], p1, ntsd_sock)]
        if a.virtual_clock:
            p3 = self.spawn("client-ntsd-vc", [a.ntsd, "-c", cconf, "-n", "-x", "--virtual-clock",
                                               "0", "-s", vc_sock] + dbg, "cli")
            self.clients.append(Client("ntsd-vc", self.scn["name"], p3, vc_sock))
        p2 = self.spawn("client-chronyd", [CHRONYD, "-x", "-d", "-u", "root", "-f", chconf],
                        "cli")
        self.clients.append(Client("chrony", self.scn["name"], p2, chrony_sock))

    def spawn(self, name, cmd, role):
        log("%s: start %s in %s" % (self.scn["name"], name, self.ns[role]))
        p = Proc(name, cmd, self.ns[role], self.dir)
        self.procs.append(p)
        return p

    @staticmethod
    def _ntsd_ready(sock, cmd):
        try:
            ntsd_ctl(sock, cmd, timeout=1.0)
            return True
        except Exception:
            return False

    def check_alive(self):
        for p in self.procs:
            if not p.alive():
                raise BenchError("%s: %s exited (rc=%s)\n%s" % (self.scn["name"], p.name,
                                                               p.p.returncode, p.tail()))

    def finish(self):
        """Final counters, stop everything, read the relay's stats."""
        extra = {}
        for c in self.clients:
            try:
                if c.kind in ("ntsd", "ntsd-vc"):
                    p = ntsd_ctl(c.sock, "peers")[0]
                    extra[c.kind] = {k: p.get(k) for k in ("sent", "received", "accepted",
                                                          "dropped", "reach", "selection")}
                else:
                    f = chronyc(c.sock, "ntpdata", RTR_CLI_ADDR)[0]
                    extra["chrony"] = {"sent": int(f[30]), "received": int(f[31]),
                                       "accepted": int(f[32]), "ntpdata": f}
            except Exception as e:
                extra[c.kind] = {"error": str(e)}
        teardown(self.procs, [])
        self.procs = []
        relay_stats = None
        try:
            with open(self.relay_stats_path) as f:
                relay_stats = json.load(f)
        except (OSError, ValueError) as e:
            self.error = self.error or "no relay stats: %s" % e
        teardown([], self.namespaces)
        self.namespaces = []
        out = {"name": self.scn["name"], "title": self.scn["title"],
               "jittery": self.scn["jittery"],
               "relay_config": self.scn["relay"],
               "relay_text": {"up": describe_direction(self.scn["relay"]["up"]),
                              "down": describe_direction(self.scn["relay"]["down"])},
               "relay_stats": relay_stats,
               "clients": {}, "error": self.error}
        for c in self.clients:
            r = c.result()
            r["counters"] = extra.get(c.kind)
            out["clients"][c.kind] = r
        return report.evaluate(out)


def wait_for(pred, timeout, what, run_=None):
    deadline = time.monotonic() + timeout
    while True:
        if run_ is not None:
            run_.check_alive()
        if pred():
            return
        if time.monotonic() >= deadline:
            raise BenchError("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Conditions, the main loop
# --------------------------------------------------------------------------

def conditions(args):
    def first_line(cmd):
        try:
            r = run(cmd, check=False)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except Exception as e:
            return "unknown (%s)" % e
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    cpu = ln.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    # The source the ntsd binary was built from (CMakeCache), its commit and
    # whether src/ had uncommitted changes (other people's work in progress).
    src = SOURCE_DIR
    try:
        with open(os.path.join(os.path.dirname(args.ntsd), "CMakeCache.txt")) as f:
            for ln in f:
                if ln.startswith("CMAKE_HOME_DIRECTORY:"):
                    src = ln.split("=", 1)[1].strip()
    except OSError:
        pass
    git = first_line(["git", "-C", src, "log", "-1", "--format=%h %s"])
    dirty = run(["git", "-C", src, "status", "--porcelain", "--", "src", "CMakeLists.txt"],
                check=False).stdout.strip()
    return {
        "kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "ntsd_version": first_line([args.ntsd, "--version"]),
        "ntsd_binary": args.ntsd,
        "ntsd_binary_mtime": datetime.datetime.fromtimestamp(
            os.stat(args.ntsd).st_mtime, datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "ntsd_source": src,
        "git": git + (" (+ uncommitted changes in src/)" if dirty else ""),
        "chrony_version": first_line([CHRONYD, "--version"]),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
    }


def run_batch(batch, tmp, args, start_idx):
    runs = []
    try:
        for i, scn in enumerate(batch):
            r = ScenarioRun(scn, start_idx + i, tmp, args)
            runs.append(r)
            r.prepare()
        for r in runs:
            r.start_clients()
        log("%d scenario(s) running for %d s (samples every %d s after the first estimate)"
            % (len(runs), args.duration, POLL_S))
        ends = {id(r): min(c.start for c in r.clients) + args.duration for r in runs}
        last_alive_check = 0.0
        last_progress = time.monotonic()
        # Bounded: every scenario ends at its `ends` time; the loop at the last one.
        hard_stop = max(ends.values()) + 30
        while time.monotonic() < hard_stop:
            now = time.monotonic()
            active = [r for r in runs if now < ends[id(r)]]
            if not active:
                break
            if now - last_alive_check > 2.0:
                last_alive_check = now
                for r in active:
                    r.check_alive()
            nxt = now + 1.0
            for r in active:
                for c in r.clients:
                    if c.first is None and now - c.start > FIRST_ESTIMATE_WAIT_S:
                        c.next_query = float("inf")
                        continue
                    nxt = min(nxt, c.tick(ends[id(r)]))
                nxt = min(nxt, ends[id(r)])
            if now - last_progress > 60:
                last_progress = now
                left = max(ends.values()) - now
                log("... %d s left; %s" % (left, ", ".join(
                    "%s/%s n=%d" % (r.scn["name"], c.kind, len(c.samples))
                    for r in active for c in r.clients)))
            time.sleep(max(0.01, min(1.0, nxt - time.monotonic())))
        results = []
        for r in runs:
            results.append(r.finish())
        return results
    except BaseException:
        for r in runs:
            teardown(r.procs, r.namespaces)
        raise


def calibrate(chosen, tmp, args):
    """Relay self-measurement: per scenario, a Python NTP prober in cli
    against the server in srv through the relay (no client daemons)."""
    runs = []
    out = []
    try:
        for i, scn in enumerate(chosen):
            r = ScenarioRun(scn, i, tmp, args)
            runs.append(r)
            r.prepare(probe=True)
        deadline = time.monotonic() + args.calibrate * 1.2 + 60
        while time.monotonic() < deadline and any(r.probe.alive() for r in runs):
            time.sleep(0.5)
        for r in runs:
            probe = []
            try:
                with open(r.probe_out) as f:
                    probe = json.load(f)
            except (OSError, ValueError):
                pass
            teardown(r.procs, [])
            with open(r.relay_stats_path) as f:
                rs = json.load(f)
            teardown([], r.namespaces)
            got = [p for p in probe if p]
            offs = sorted(p["offset_us"] for p in got)
            dels = sorted(p["delay_us"] for p in got)
            res = {"name": r.scn["name"], "relay_stats": rs, "probes": len(probe),
                   "replies": len(got),
                   "probe_offset_us": _summ(offs), "probe_delay_us": _summ(dels)}
            out.append(res)
            print("%-14s %s" % (r.scn["name"], report.relay_line(res)))
            print("%-14s probe: %d/%d replies; offset median %s p5..p95 %s..%s us; "
                  "delay median %s us" % ("", len(got), len(probe),
                                          *(_fmt(res["probe_offset_us"], k)
                                            for k in ("median", "p5", "p95")),
                                          _fmt(res["probe_delay_us"], "median")))
        return out
    except BaseException:
        for r in runs:
            teardown(r.procs, r.namespaces)
        raise


def _summ(v):
    if not v:
        return None
    return {"n": len(v), "p5": report.pct_nearest_rank(v, 0.05),
            "median": report.pct_nearest_rank(v, 0.5), "p95": report.pct_nearest_rank(v, 0.95),
            "min": v[0], "max": v[-1]}


def _fmt(s, k):
    return "-" if not s else "%.0f" % s[k]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/bench",
                                 description="ntsd vs chrony accuracy benchmark (not a test)")
    ap.add_argument("build", nargs="?", default="build", help="build directory (default build)")
    ap.add_argument("--duration", type=int, default=600,
                    help="seconds per scenario from client start (default 600)")
    ap.add_argument("--scenario", action="append", default=[],
                    help="run only this scenario (repeatable): %s (default: all but "
                    "direct0)" % ", ".join(BY_NAME))
    ap.add_argument("--jobs", type=int, default=len(SCENARIOS),
                    help="scenarios run concurrently (default: all)")
    ap.add_argument("--seed", type=int, default=1, help="relay random seed")
    ap.add_argument("--out", default=RESULTS, help="results directory (default bench/results)")
    ap.add_argument("--keep", action="store_true", help="keep the logs and packet logs")
    ap.add_argument("--spin-us", type=int, default=2000,
                    help="relay: wake this long before a release and spin (default 2000)")
    ap.add_argument("--floor-us", type=int, default=0,
                    help="relay: constant delay added to every datagram, both directions "
                    "(default 0)")
    ap.add_argument("--ntsd-debug", action="store_true",
                    help="ntsd clients log every discipline sample (with --keep)")
    ap.add_argument("--no-vc", action="store_true",
                    help="do not run the third client, ntsd -x --virtual-clock 0")
    ap.add_argument("--no-rt", dest="rt", action="store_false",
                    help="do not run the relay at SCHED_FIFO priority 1")
    ap.add_argument("--calibrate", type=int, default=0, metavar="N",
                    help="instead of the benchmark: measure the relay with N probes per "
                    "scenario from a Python NTP prober (no client daemons)")
    ap.add_argument("--cleanup", action="store_true",
                    help="only remove namespaces left by killed runs, then exit")
    a = ap.parse_args(argv)
    build = a.build if os.path.isabs(a.build) else os.path.join(SOURCE_DIR, a.build)
    a.ntsd = os.path.join(build, "ntsd")
    a.virtual_clock = False   # set in main() from `ntsd --help`
    for s in a.scenario:
        if s not in BY_NAME:
            ap.error("unknown scenario %r (have: %s)" % (s, ", ".join(BY_NAME)))
    if not 30 <= a.duration <= 24 * 3600:
        ap.error("--duration must be 30..86400 s")
    if a.jobs < 1:
        ap.error("--jobs must be >= 1")
    return a


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces)", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    cleanup_stale()
    if args.cleanup:
        return 0
    for path, what in ((args.ntsd, "ntsd (build first)"), (CHRONYD, "chronyd"),
                       (CHRONYC, "chronyc")):
        if not os.access(path, os.X_OK):
            print("bench: %s not found at %s" % (what, path), file=sys.stderr)
            return 2
    for tool in ("ip", "setpriv"):
        if shutil.which(tool) is None:
            print("bench: needs %s" % tool, file=sys.stderr)
            return 2
    check_clock_protection()
    r = run([args.ntsd, "--help"], check=False)
    args.virtual_clock = "--virtual-clock" in (r.stdout + r.stderr) and not args.no_vc
    if not args.virtual_clock:
        log("no ntsd-vc client (%s)" % ("--no-vc" if args.no_vc
                                         else "this ntsd has no --virtual-clock"))
    chosen = [BY_NAME[n] for n in args.scenario] if args.scenario else list(SCENARIOS)
    STATE["tmp"] = tempfile.mkdtemp(prefix="ntsd-bench-")
    os.chmod(STATE["tmp"], 0o700)
    STATE["keep"] = args.keep
    cond = conditions(args)
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    log("ntsd %s, %s, kernel %s, %d CPUs; %d scenario(s), %d s each, %d at a time" % (
        cond["ntsd_version"], cond["chrony_version"], cond["kernel"], cond["cpus"],
        len(chosen), args.duration, args.jobs))
    if args.calibrate:
        rc = 0
        try:
            res = calibrate(chosen, STATE["tmp"], args)
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, "calibration.json")
            with open(path, "w") as f:
                json.dump({"started": started.isoformat(), "conditions": cond,
                           "spin_us": args.spin_us, "floor_us": args.floor_us, "rt": args.rt,
                           "scenarios": res}, f, indent=1)
            print("wrote %s" % path)
        except BenchError as e:
            print("bench: FAILED: %s" % e, flush=True)
            STATE["keep"] = True
            rc = 1
        finally:
            cleanup()
        return rc
    results = []
    rc = 0
    try:
        for i in range(0, len(chosen), args.jobs):
            results += run_batch(chosen[i:i + args.jobs], STATE["tmp"], args, i)
    except BenchError as e:
        print("bench: FAILED: %s" % e, flush=True)
        STATE["keep"] = True
        rc = 1
    finally:
        cleanup()
    if rc:
        return rc
    t_cpu = os.times()
    cond["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    cond["runner_cpu_s"] = round(t_cpu.user + t_cpu.system + t_cpu.children_user
                                 + t_cpu.children_system, 1)
    result = {"schema": 1, "started": started.isoformat(), "duration_s": args.duration,
              "poll_s": POLL_S, "concurrent": min(args.jobs, len(chosen)) > 1,
              "jobs": args.jobs, "seed": args.seed, "conditions": cond,
              "topology": {"srv": SRV_ADDR, "rtr": [RTR_SRV_ADDR, RTR_CLI_ADDR],
                           "cli": CLI_ADDR},
              "scenarios": results}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    md = report.markdown(result)
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write(md)
    print()
    print(report.text_table(result))
    print()
    for scn in results:
        print("relay %-14s %s" % (scn["name"], report.relay_line(scn)))
        if scn.get("error"):
            print("  error: %s" % scn["error"])
    print()
    print("wrote %s and %s" % (os.path.join(args.out, "latest.json"),
                               os.path.join(args.out, "latest.md")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
