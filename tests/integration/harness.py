"""Integration-test harness for ntsd (Python 3 standard library only).

Every test script calls ``harness.setup(__file__)`` first.  That re-executes
the script inside a fresh, private network namespace (``unshare --net``),
brings up its loopback interface and checks the isolation, so that:

  * every daemon sees only a private 127.0.0.1 (NTPsec can bind its fixed
    ports 123/4460 without colliding with anything on the host), and
  * no packet can leave the machine.

Safety rules enforced here, for every daemon a test starts (ours or a peer):

  * it runs under ``setpriv --inh-caps=-sys_time --bounding-set=-sys_time``,
    so it cannot set or adjust the machine's clock whatever its config says
    (checked once by ``check_clock_protection``); callers additionally start
    the daemons with clock control off (``ntsd -x``, ``chronyd -x``, NTPsec
    ``disable ntp``);
  * it is killed when the test exits: atexit, try/finally in ``run``, signal
    handlers for SIGTERM/SIGINT/SIGHUP, and PR_SET_PDEATHSIG(SIGKILL) in case
    the test process itself is killed;
  * every wait has a deadline (``wait_until``).

On failure, ``fail`` prints the reason and the logs of every daemon.
"""

import atexit
import ctypes
import json
import math
import os
import pwd
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

NETNS_MARKER = "NTSD_TEST_IN_NETNS"
PARENT_NETNS = "NTSD_TEST_PARENT_NETNS"

SETPRIV = ["setpriv", "--inh-caps=-sys_time", "--bounding-set=-sys_time", "--"]

SOURCE_DIR = os.environ.get(
    "NTSD_SOURCE_DIR",
    os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")))
NTSD_BIN = os.path.abspath(
    os.environ.get("NTSD_BIN", os.path.join(SOURCE_DIR, "build", "ntsd")))
NTSCTL_BIN = os.path.abspath(
    os.environ.get("NTSCTL_BIN", os.path.join(SOURCE_DIR, "build", "ntsctl")))
PEERS_DIR = os.environ.get("NTSD_PEERS_DIR", os.path.join(SOURCE_DIR, ".deps"))
CHRONYD_BIN = os.environ.get("CHRONYD_BIN", "/usr/sbin/chronyd")
CHRONYC_BIN = os.environ.get("CHRONYC_BIN", "/usr/bin/chronyc")
NTPSEC_NTPD = os.path.join(PEERS_DIR, "ntpsec", "usr", "sbin", "ntpd")
NTPSEC_NTPQ = os.path.join(PEERS_DIR, "ntpsec", "usr", "bin", "ntpq")

NTP_EPOCH_OFFSET = 2208988800  # 1900-01-01 to 1970-01-01, seconds

# Log lines that mean a daemon crashed or hit a memory/UB error.
CRASH_PATTERNS = [
    r"AddressSanitizer", r"LeakSanitizer", r"UndefinedBehaviorSanitizer",
    r"ThreadSanitizer", r"MemorySanitizer", r"runtime error:", r"Segmentation fault",
    r"Assertion .* failed", r"assertion failed", r"\bAborted\b", r"core dumped",
    r"stack smashing", r"double free", r"free\(\): ", r"malloc\(\): ",
    r"corrupted size", r"\bSIGSEGV\b", r"\bSIGABRT\b", r"\bSIGBUS\b",
]
# Signals whose delivery means a crash, not a requested stop.
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL,
                 signal.SIGFPE, signal.SIGSYS, signal.SIGTRAP}

_state = {"tmpdir": None, "procs": [], "cleaned": False, "name": "test", "t0": time.monotonic()}


class TestFailure(Exception):
    pass


class TestSkip(Exception):
    pass


def log(msg):
    t = time.monotonic() - _state["t0"]
    print("[%6.2f] %s" % (t, msg), flush=True)


# --------------------------------------------------------------------------
# Network namespace
# --------------------------------------------------------------------------

def _netns_id():
    try:
        return os.readlink("/proc/self/ns/net")
    except OSError:
        return ""


def enter_netns(script):
    """Re-executes `script` in a private network namespace (once) and brings
    up its loopback.  Returns only inside the namespace."""
    if os.environ.get(NETNS_MARKER) != "1":
        if shutil.which("unshare") is None:
            print("FAIL: unshare (util-linux) not found; cannot isolate the test network",
                  flush=True)
            sys.exit(1)
        env = dict(os.environ)
        env[NETNS_MARKER] = "1"
        env[PARENT_NETNS] = _netns_id()
        args = ["unshare", "--net", "--", sys.executable, os.path.abspath(script)]
        args += sys.argv[1:]
        try:
            os.execvpe("unshare", args, env)
        except OSError as e:
            print("FAIL: cannot exec unshare: %s" % e, flush=True)
            sys.exit(1)
    # Inside the namespace: refuse to run anywhere else.
    here = _netns_id()
    parent = os.environ.get(PARENT_NETNS, "")
    if not here or here == parent:
        print("FAIL: not in a private network namespace (unshare --net failed? "
              "tests need root / CAP_SYS_ADMIN); netns=%r parent=%r" % (here, parent),
              flush=True)
        sys.exit(1)
    r = subprocess.run(["ip", "link", "set", "lo", "up"], capture_output=True, text=True,
                       timeout=10)
    if r.returncode != 0:
        print("FAIL: ip link set lo up: %s" % r.stderr.strip(), flush=True)
        sys.exit(1)
    r = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True,
                       timeout=10)
    links = [ln.split(":")[1].strip() for ln in r.stdout.splitlines() if ":" in ln]
    if links != ["lo"]:
        print("FAIL: the test namespace has interfaces other than lo: %r" % links, flush=True)
        sys.exit(1)


def check_clock_protection():
    """Proves that the setpriv prefix removes CAP_SYS_TIME from what it runs."""
    r = subprocess.run(SETPRIV + ["cat", "/proc/self/status"], capture_output=True, text=True,
                       timeout=10)
    if r.returncode != 0:
        raise TestFailure("setpriv does not work here: %s" % r.stderr.strip())
    caps = {}
    for ln in r.stdout.splitlines():
        if ln.startswith("Cap"):
            k, v = ln.split(":", 1)
            caps[k] = int(v.strip(), 16)
    bit = 1 << 25  # CAP_SYS_TIME
    for k in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
        if k not in caps or caps[k] & bit:
            raise TestFailure("setpriv did not drop CAP_SYS_TIME (%s=%x)" % (k, caps.get(k, -1)))


# --------------------------------------------------------------------------
# Set-up, clean-up, failure
# --------------------------------------------------------------------------

def setup(script):
    """To be called first by every test.  Enters the private netns, creates
    the temp dir, installs clean-up handlers.  Returns the temp dir."""
    _state["name"] = os.path.splitext(os.path.basename(script))[0]
    enter_netns(script)
    sys.dont_write_bytecode = True
    tmp = tempfile.mkdtemp(prefix="ntsd-%s-" % _state["name"])
    os.chmod(tmp, 0o700)
    _state["tmpdir"] = tmp
    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        check_clock_protection()
    except TestFailure as e:
        print("FAIL: %s" % e, flush=True)
        sys.exit(1)
    log("%s: in private netns %s, tmpdir %s" % (_state["name"], _netns_id(), tmp))
    return tmp


def tmpdir():
    return _state["tmpdir"]


def _on_signal(signum, frame):
    print("FAIL: interrupted by signal %d" % signum, flush=True)
    dump_logs()
    cleanup()
    os._exit(1)


def cleanup():
    if _state["cleaned"]:
        return
    _state["cleaned"] = True
    for p in reversed(_state["procs"]):
        p.stop(quiet=True)
    if _state["tmpdir"] and os.environ.get("NTSD_TEST_KEEP_TMP") != "1":
        shutil.rmtree(_state["tmpdir"], ignore_errors=True)


def dump_logs(max_lines=150):
    for p in _state["procs"]:
        p.dump(max_lines)


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def skip(msg):
    raise TestSkip(msg)


def run(main):
    """Runs main() with the right exit code and clean-up."""
    rc = 1
    try:
        main()
        for p in _state["procs"]:
            p.stop(quiet=True)
        for p in _state["procs"]:
            p.check_no_crash()
        log("PASS")
        rc = 0
    except TestSkip as e:
        print("SKIP: %s" % e, flush=True)
        rc = 0
    except TestFailure as e:
        print("FAIL: %s" % e, flush=True)
        for p in _state["procs"]:
            p.stop(quiet=True)
        dump_logs()
        rc = 1
    except Exception:
        import traceback
        print("FAIL: exception in the test itself:", flush=True)
        traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        for p in _state["procs"]:
            p.stop(quiet=True)
        dump_logs()
        rc = 1
    finally:
        cleanup()
    sys.exit(rc)


def require_peer(path, what):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        skip("%s not found at %s (run scripts/install-deps)" % (what, path))


def require_ours():
    for path in (NTSD_BIN, NTSCTL_BIN):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            fail("%s not built (NTSD_BIN/NTSCTL_BIN)" % path)


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:
    _libc = None


def _pdeathsig():
    # Runs in the child between fork and exec: die with the test process.
    if _libc is not None:
        _libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    os.setsid()  # own process group: a terminal ^C reaches us, not it


class Proc:
    def __init__(self, name, cmd, logpath, kind, env=None, cwd=None):
        self.name = name
        self.cmd = list(cmd)
        self.log = logpath
        self.kind = kind  # "ours" or "peer"
        self.extra_logs = []
        self.stopped_by_us = False
        self.alive_at_stop = None
        self.rc = None
        self.stop_forced = False
        self._logf = open(logpath, "ab")
        full = SETPRIV + self.cmd
        self.p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=self._logf,
                                  stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                  preexec_fn=_pdeathsig, close_fds=True)
        self.pid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self, quiet=False, timeout=5.0):
        if self.rc is not None:
            return self.rc
        if self.alive():
            self.alive_at_stop = True
            self.stopped_by_us = True
            try:
                self.p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.stop_forced = True
                try:
                    self.p.kill()
                except ProcessLookupError:
                    pass
                self.p.wait(timeout=5)
        else:
            self.alive_at_stop = False
        self.rc = self.p.returncode
        try:
            self._logf.close()
        except Exception:
            pass
        if not quiet:
            log("%s stopped, rc=%s" % (self.name, self.rc))
        return self.rc

    def read_log(self):
        text = ""
        for path in [self.log] + self.extra_logs:
            try:
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def dump(self, max_lines=150):
        for path in [self.log] + self.extra_logs:
            try:
                with open(path, "rb") as f:
                    lines = f.read().decode("utf-8", "replace").splitlines()
            except OSError:
                continue
            print("----- %s: %s (%d lines%s) -----" % (
                self.name, os.path.basename(path), len(lines),
                ", last %d" % max_lines if len(lines) > max_lines else ""), flush=True)
            for ln in lines[-max_lines:]:
                print("  " + ln)
            print("----- end %s -----" % self.name, flush=True)

    def crash_lines(self):
        out = []
        for ln in self.read_log().splitlines():
            for pat in CRASH_PATTERNS:
                if re.search(pat, ln):
                    out.append(ln)
                    break
        return out

    def check_alive(self):
        if not self.alive():
            fail("%s died unexpectedly (rc=%s)" % (self.name, self.p.returncode))

    def check_no_crash(self):
        """After stop(): the daemon was running until we stopped it, exited
        cleanly on SIGTERM (ours: rc 0 or SIGTERM, within 5 s), and its log
        shows no crash or sanitizer report."""
        self.stop(quiet=True)
        if not self.alive_at_stop:
            fail("%s had exited before the end of the test (rc=%s)" % (self.name, self.rc))
        if self.rc is not None and self.rc < 0 and -self.rc in CRASH_SIGNALS:
            fail("%s died of signal %d" % (self.name, -self.rc))
        if self.kind == "ours":
            if self.stop_forced:
                fail("%s did not exit within 5 s of SIGTERM" % self.name)
            if self.rc not in (0, -signal.SIGTERM):
                fail("%s exited with rc=%s on SIGTERM (expected 0)" % (self.name, self.rc))
        bad = self.crash_lines()
        if bad:
            fail("%s log shows a crash: %s" % (self.name, bad[0]))


def start_process(name, cmd, kind="peer", env=None, cwd=None):
    """Starts a daemon under the CAP_SYS_TIME-dropping setpriv prefix, with
    stdout+stderr to <tmp>/<name>.log; it is killed at exit."""
    logpath = os.path.join(tmpdir(), "%s.log" % name)
    log("start %s: %s" % (name, " ".join(cmd)))
    p = Proc(name, cmd, logpath, kind, env=env, cwd=cwd)
    _state["procs"].append(p)
    return p


def check_all_alive():
    for p in _state["procs"]:
        if p.rc is None:
            p.check_alive()


def wait_until(pred, timeout, what, interval=0.25):
    """Polls pred() until it returns a truthy value (returned) or the
    deadline passes (fails the test, naming `what`).  Fails early when a
    daemon dies.  pred may raise TestFailure-free exceptions; they count as
    "not yet" and the last one is reported."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        check_all_alive()
        try:
            v = pred()
            if v:
                return v
        except TestFailure:
            raise
        except Exception as e:  # not ready yet
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %s)" % last_exc if last_exc else ""
            fail("timed out after %.0f s waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def run_cmd(cmd, timeout=10):
    """Runs a short-lived query tool (not a daemon); returns CompletedProcess."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError("%s timed out after %s s" % (" ".join(cmd), timeout))


def write_file(name, text):
    path = os.path.join(tmpdir(), name)
    with open(path, "w") as f:
        f.write(text)
    return path


def free_udp_port(addr="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((addr, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# --------------------------------------------------------------------------
# chrony
# --------------------------------------------------------------------------

class Chronyd:
    """chronyd -x (no clock control) in the foreground, root, with its
    command socket in the temp dir and no UDP command port."""

    def __init__(self, name, port=0, servers=(), local_stratum=None, allow=(), extra=()):
        require_peer(CHRONYD_BIN, "chronyd")
        require_peer(CHRONYC_BIN, "chronyc")
        self.name = name
        d = os.path.join(tmpdir(), name)
        os.makedirs(d, mode=0o700)
        self.dir = d
        self.sock = os.path.join(d, "chronyd.sock")
        lines = ["# %s (written by the ntsd integration harness)" % name,
                 "port %d" % port,             # 0: no NTP server socket
                 "cmdport 0",                  # no UDP command port
                 "bindcmdaddress %s" % self.sock,
                 "pidfile %s" % os.path.join(d, "chronyd.pid")]
        # No driftfile, dumpdir, rtcfile, logdir: nothing outside the tmp dir.
        for a in allow:
            lines.append("allow %s" % a)
        if local_stratum is not None:
            lines.append("local stratum %d" % local_stratum)
        for s in servers:
            lines.append("server %s" % s)
        lines += list(extra)
        self.conf = os.path.join(d, "chrony.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        # -x: never touch the clock; -d: foreground, log to stderr;
        # -u root: stay root (else it wants the _chrony user and its dirs).
        self.proc = start_process(name, [CHRONYD_BIN, "-x", "-d", "-u", "root", "-f", self.conf])
        wait_until(lambda: self._ready(), 15, "%s command socket" % name)

    def _ready(self):
        r = run_cmd([CHRONYC_BIN, "-n", "-c", "-h", self.sock, "tracking"], timeout=5)
        return r.returncode == 0

    def chronyc(self, *args, timeout=10):
        r = run_cmd([CHRONYC_BIN, "-n", "-c", "-h", self.sock] + list(args), timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("chronyc %s failed (rc=%d): %s" % (
                " ".join(args), r.returncode, (r.stderr or r.stdout).strip()))
        return [ln.split(",") for ln in r.stdout.splitlines() if ln.strip()]

    def sources(self):
        """[{mode, state, name, stratum, poll, reach, lastrx, offset,
        measured, error}] -- offsets in seconds; reach an int."""
        out = []
        for f in self.chronyc("sources"):
            out.append({"mode": f[0], "state": f[1], "name": f[2], "stratum": int(f[3]),
                        "poll": int(f[4]), "reach": int(f[5], 8), "lastrx": f[6],
                        "offset": float(f[7]), "measured": float(f[8]),
                        "error": float(f[9])})
        return out

    def sourcestats(self):
        out = []
        for f in self.chronyc("sourcestats"):
            out.append({"name": f[0], "np": int(f[1]), "nr": int(f[2]), "span": int(f[3]),
                        "freq": float(f[4]), "skew": float(f[5]), "offset": float(f[6]),
                        "stddev": float(f[7])})
        return out

    def ntpdata(self, addr):
        """chronyc ntpdata for one source (chrony 4.3 CSV layout)."""
        f = self.chronyc("ntpdata", addr)[0]
        if len(f) < 33:
            raise RuntimeError("unexpected chronyc ntpdata output: %r" % (f,))
        return {"remote": f[0], "remote_port": int(f[2]), "local": f[3], "leap": f[5],
                "version": int(f[6]), "mode": f[7], "stratum": int(f[8]), "poll": int(f[9]),
                "precision": int(f[11]), "root_delay": float(f[13]),
                "root_disp": float(f[14]), "refid": f[15], "refid_name": f[16],
                "offset": float(f[18]), "delay": float(f[19]),
                "tests": f[23] + f[24] + f[25], "total_tx": int(f[30]),
                "total_rx": int(f[31]), "total_valid_rx": int(f[32]), "raw": f}

    def serverstats(self):
        f = self.chronyc("serverstats")[0]
        return {"ntp_rx": int(f[0]), "ntp_drop": int(f[1]), "raw": f}


# --------------------------------------------------------------------------
# NTPsec
# --------------------------------------------------------------------------

class NtpsecNtpd:
    """NTPsec ntpd in the foreground, serving its own clock in orphan mode at
    stratum 1 on 127.0.0.1:123 (the namespace's), never adjusting the clock
    (`disable ntp`; it still calls ntp_adjtime at start, which the setpriv
    capability drop turns into a harmless EPERM)."""

    def __init__(self, name="ntpsec", extra=()):
        require_peer(NTPSEC_NTPD, "NTPsec ntpd")
        self.name = name
        d = os.path.join(tmpdir(), name)
        os.makedirs(d, mode=0o700)
        self.dir = d
        self.logfile = os.path.join(d, "ntpd.log")
        lines = ["# %s (written by the ntsd integration harness)" % name,
                 "disable ntp",                 # no clock discipline
                 "tos orphan 1 orphanwait 0",   # serve own clock at stratum 1 at once
                 "statsdir %s/" % d,
                 # No `limited`: NTPsec rate-limits only with that flag.
                 "restrict default",
                 "restrict ::1",
                 "restrict 127.0.0.1"]
        # No driftfile, leapfile, keys: nothing outside the tmp dir.
        lines += list(extra)
        self.conf = os.path.join(d, "ntp.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        # -n: no fork; -c conf; -l log file; -p pid file.
        self.proc = start_process(name, [NTPSEC_NTPD, "-n", "-c", self.conf, "-l", self.logfile,
                                         "-p", os.path.join(d, "ntpd.pid")])
        self.proc.extra_logs.append(self.logfile)
        wait_until(lambda: self._ready(), 20, "NTPsec to serve stratum 1 on 127.0.0.1:123")

    def _ready(self):
        r = sntp_query("127.0.0.1", 123, timeout=0.5)
        return r is not None and r["stratum"] == 1 and r["leap"] != 3

    def ntpq(self, *args):
        r = run_cmd([NTPSEC_NTPQ, "-n"] + list(args) + ["127.0.0.1"], timeout=10)
        if r.returncode != 0:
            raise RuntimeError("ntpq %s: %s" % (" ".join(args), (r.stderr or r.stdout).strip()))
        return r.stdout


# --------------------------------------------------------------------------
# ntsd / ntsctl
# --------------------------------------------------------------------------

class Ntsd:
    """Our daemon: ntsd -c CONF -n -x -s SOCK -d (foreground, never adjusts
    the clock)."""

    def __init__(self, name, conf_lines, debug=True, ready="server", args=(), wrap=()):
        require_ours()
        self.args = list(args)
        self.wrap = list(wrap)  # a prefix, e.g. to run in another namespace
        self.name = name
        d = os.path.join(tmpdir(), name)
        os.makedirs(d, mode=0o700)
        self.dir = d
        self.sock = os.path.join(d, "ntsd.sock")
        self.conf = os.path.join(d, "ntp.conf")
        lines = ["# %s (written by the ntsd integration harness)" % name,
                 "disable ntp"] + list(conf_lines)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.debug = debug
        self.ready = ready
        self.restarts = 0
        self._start()

    def _start(self):
        cmd = self.wrap + [NTSD_BIN, "-c", self.conf, "-n", "-x", "-s", self.sock] + self.args
        if self.debug:
            cmd.append("-d")
        # A restarted daemon logs to <name>.<n>.log; self.proc is the newest.
        pname = self.name if not self.restarts else "%s.%d" % (self.name, self.restarts)
        self.proc = start_process(pname, cmd, kind="ours")
        wait_until(lambda: self.ctl_json(self.ready) is not None, 15,
                   "%s control socket (ntsctl %s --json)" % (pname, self.ready))

    def restart(self, between=None):
        """Stops the daemon (SIGTERM, checked like at the end of a test) and
        starts it again with the same configuration; `between()`, if given,
        runs while it is down (e.g. to replace a key file)."""
        self.proc.check_no_crash()
        log("%s stopped for a restart, rc=%s" % (self.proc.name, self.proc.rc))
        if between is not None:
            between()
        self.restarts += 1
        self._start()

    def ctl(self, *args, timeout=10):
        r = run_cmd([NTSCTL_BIN, "-s", self.sock] + list(args), timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("ntsctl %s failed (rc=%d): %s" % (
                " ".join(args), r.returncode, (r.stderr or r.stdout).strip()))
        return r.stdout

    def ctl_json(self, *args):
        out = self.ctl(*(list(args) + ["--json"]))
        try:
            return json.loads(out)
        except ValueError as e:
            raise RuntimeError("ntsctl %s --json printed invalid JSON (%s): %r" % (
                " ".join(args), e, out[:500]))

    def peers(self):
        v = self.ctl_json("peers")
        if not isinstance(v, list):
            raise TestFailure("ntsctl peers --json: expected a JSON array, got %r" % (v,))
        return v

    def server(self):
        v = self.ctl_json("server")
        if not isinstance(v, dict):
            raise TestFailure("ntsctl server --json: expected a JSON object, got %r" % (v,))
        return v


def nts_client_snapshot(c):
    """The first association of an NTS client ntsd and its NTS counters, in
    one dict (with the monotonic time it was taken, `t`)."""
    p = c.peers()[0]
    n = c.ctl_json("nts")
    return {"accepted": p["accepted"], "reach": p["reach"], "cookies": p["cookies"],
            "state": p["state"], "ke_error": p["ke_error"], "ke_retry": p["ke_retry"],
            "ke": n["ke_probes_good"], "ke_bad": n["ke_probes_bad"],
            "naks": n["client_naks"], "t": time.monotonic()}


PEER_KEYS = ("remote", "address", "nts", "cookies", "stratum", "reach", "poll", "offset",
             "delay", "jitter", "when")
SERVER_KEYS = ("received", "responded", "dropped", "rate_limited", "kod_sent")


def check_peer_schema(p):
    missing = [k for k in PEER_KEYS if k not in p]
    check(not missing, "ntsctl peers --json entry lacks keys %s: %r" % (missing, p))
    check(isinstance(p["nts"], bool), "peer 'nts' is not a bool: %r" % (p,))
    for k in ("cookies", "reach", "stratum"):
        check(isinstance(p[k], int) and not isinstance(p[k], bool),
              "peer %r is not an int: %r" % (k, p))
    check(0 <= p["reach"] <= 255, "peer reach out of range: %r" % (p,))
    for k in ("offset", "delay", "jitter"):
        check(isinstance(p[k], (int, float)) and not isinstance(p[k], bool)
              and math.isfinite(p[k]), "peer %r is not a finite number: %r" % (k, p))


def check_peer_counters(p):
    """Optional per-peer details beyond the contract: when present, every
    reply was accepted, none dropped, and the peer is the system peer."""
    drops = p.get("dropped")
    if isinstance(drops, dict):
        bad = {k: v for k, v in drops.items() if v}
        check(not bad, "peer %s dropped replies: %r" % (p.get("address"), bad))
    if isinstance(p.get("received"), int) and isinstance(p.get("accepted"), int):
        check(p["accepted"] == p["received"],
              "peer %s accepted %d of %d replies" % (p.get("address"), p["accepted"],
                                                     p["received"]))
    if "selection" in p:
        check(p["selection"] == "sys.peer",
              "peer %s selection %r, expected sys.peer" % (p.get("address"), p["selection"]))
    if "kod" in p:
        check(p["kod"] in ("none", None, ""), "peer %s kod %r" % (p.get("address"), p["kod"]))


def check_server_schema(s):
    missing = [k for k in SERVER_KEYS if k not in s]
    check(not missing, "ntsctl server --json lacks keys %s: %r" % (missing, s))
    check(isinstance(s["dropped"], dict), "server 'dropped' is not an object: %r" % (s,))
    for k in ("received", "responded", "rate_limited", "kod_sent"):
        check(isinstance(s[k], int), "server %r is not an int: %r" % (k, s))


def dropped_total(s):
    return sum(v for v in s["dropped"].values() if isinstance(v, int))


def find_peer(peers, addr):
    for p in peers:
        a = str(p.get("address", ""))
        r = str(p.get("remote", ""))
        if a == addr or a.startswith(addr + ":") or a.startswith("[%s]" % addr) \
                or r == addr or r.startswith(addr + ":"):
            return p
    return None


def popcount(x):
    return bin(x).count("1")


# --------------------------------------------------------------------------
# Raw NTP from Python
# --------------------------------------------------------------------------

HDR = struct.Struct("!BBbbII4sQQQQ")


def ntp_now():
    """Current time as a 64-bit NTP timestamp, low bits randomised (so it is
    also a nonce)."""
    t = time.time() + NTP_EPOCH_OFFSET
    ts = int(t * 2**32) & 0xFFFFFFFFFFFFFFFF
    return (ts & ~0xFFF) | random.getrandbits(12)


def ts_to_float(ts):
    return ts / 2**32 - NTP_EPOCH_OFFSET


def client_packet(version=4, mode=3, xmt=None, leap=0, stratum=0, poll=0):
    if xmt is None:
        xmt = ntp_now()
    pkt = HDR.pack((leap << 6) | (version << 3) | mode, stratum, poll, 0, 0, 0, b"\0" * 4,
                   0, 0, 0, xmt)
    return pkt, xmt


def parse_packet(data):
    if len(data) < 48:
        return None
    (b0, stratum, poll, prec, rdelay, rdisp, refid, ref, org, rec, xmt) = HDR.unpack(data[:48])
    return {"leap": b0 >> 6, "version": (b0 >> 3) & 7, "mode": b0 & 7, "stratum": stratum,
            "poll": poll, "precision": prec, "root_delay": rdelay / 65536.0,
            "root_disp": rdisp / 65536.0, "refid": refid, "ref": ref, "org": org, "rec": rec,
            "xmt": xmt, "len": len(data)}


def is_kod(r, code=b"RATE"):
    return r is not None and r["stratum"] == 0 and r["refid"] == code


def kefetch_keys(ca_cert, port, host="127.0.0.1", timeout=10):
    """One NTS-KE through ntsd_kefetch (built beside NTSD_BIN): the C2S key
    and one cookie, as bytes; a failure fails the test."""
    kefetch = os.path.join(os.path.dirname(NTSD_BIN), "ntsd_kefetch")
    r = run_cmd([kefetch, "-c", ca_cert, "-t", str(timeout), host, str(port)],
                timeout=timeout + 10)
    check(r.returncode == 0, "ntsd_kefetch failed (rc %d): %s" % (r.returncode, r.stderr))
    m = re.fullmatch(r"15 ([0-9A-F]+),([0-9A-F]+)\n", r.stdout)
    check(m is not None, "ntsd_kefetch printed %r" % r.stdout)
    return bytes.fromhex(m.group(1)), bytes.fromhex(m.group(2))


def udp_exchange(pkt, xmt, dst, wait=1.0):
    """Sends pkt from a fresh loopback socket; the first reply whose origin
    timestamp is xmt, or None after wait seconds."""
    with UdpClient() as c:
        c.send(pkt, dst)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            rd, _, _ = select.select([c.s], [], [], max(0.0, deadline - time.monotonic()))
            if not rd:
                break
            data, _ = c.s.recvfrom(4096)
            if len(data) >= 48 and data[24:32] == xmt:
                return data
    return None


class UdpClient:
    """A UDP socket bound to a chosen loopback source address (any
    127.0.0.0/8 address works on lo), for talking NTP from Python."""

    def __init__(self, src="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((src, 0))
        self.s.setblocking(False)
        self.src = src

    def close(self):
        self.s.close()

    def send(self, data, dst):
        self.s.sendto(data, dst)

    def recv_all(self, quiet_time, max_time=10.0):
        """Collects datagrams until none arrives for quiet_time seconds (or
        max_time passes).  Returns [(data, t_recv)]."""
        out = []
        deadline = time.monotonic() + max_time
        last = time.monotonic()
        while True:
            now = time.monotonic()
            wait = min(last + quiet_time, deadline) - now
            if wait <= 0:
                return out
            rd, _, _ = select.select([self.s], [], [], wait)
            if rd:
                try:
                    data, _ = self.s.recvfrom(4096)
                except BlockingIOError:
                    continue
                out.append((data, time.time()))
                last = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def sntp_query(addr, port, timeout=1.0, version=4, src="127.0.0.1"):
    """One client request; returns the parsed reply (plus 'offset' and
    'delay' in seconds) or None on no (matching) reply."""
    with UdpClient(src) as c:
        pkt, xmt = client_packet(version=version)
        t1 = time.time()
        c.send(pkt, (addr, port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rd, _, _ = select.select([c.s], [], [], max(0.0, deadline - time.monotonic()))
            if not rd:
                break
            data, _ = c.s.recvfrom(4096)
            t4 = time.time()
            r = parse_packet(data)
            if r is None or r["org"] != xmt:
                continue
            t2, t3 = ts_to_float(r["rec"]), ts_to_float(r["xmt"])
            r["offset"] = ((t2 - t1) + (t3 - t4)) / 2
            r["delay"] = (t4 - t1) - (t3 - t2)
            return r
    return None


# --------------------------------------------------------------------------
# Short-lived runs of our binaries, the control socket, timestamps
# --------------------------------------------------------------------------

def run_setpriv(cmd, timeout=10):
    """Runs a short-lived command (e.g. `ntsd --check`) under the
    CAP_SYS_TIME-dropping prefix, in its own session, dying with the test.
    Returns (CompletedProcess with text stdout/stderr, elapsed seconds); on
    timeout kills it (and its process group) and raises TestFailure."""
    t0 = time.monotonic()
    p = subprocess.Popen(SETPRIV + list(cmd), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=_pdeathsig, close_fds=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.communicate(timeout=5)
        fail("%s did not finish within %s s" % (" ".join(cmd), timeout))
    r = subprocess.CompletedProcess(cmd, p.returncode, out.decode("utf-8", "replace"),
                                    err.decode("utf-8", "replace"))
    return r, time.monotonic() - t0


def pids_with_cmdline(needle):
    """PIDs (other than ours) whose command line contains `needle`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if needle in cmdline:
            out.append(int(d))
    return out


def ctl_connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def ctl_raw(path, data, timeout=5.0, shut_wr=True):
    """Sends `data` on a fresh control connection and reads until the daemon
    closes it.  Returns (reply bytes, closed): closed is False if the reply
    did not end within `timeout`.  A send that fails because the daemon
    already closed the connection is not an error."""
    s = ctl_connect(path, timeout)
    try:
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        buf = b""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return buf, False
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return buf, False
            except ConnectionResetError:
                return buf, True
            if not chunk:
                return buf, True
            buf += chunk
    finally:
        s.close()


def float_to_ts(t):
    """Unix time (float seconds) to a 64-bit NTP timestamp."""
    return int((t + NTP_EPOCH_OFFSET) * 2**32) & 0xFFFFFFFFFFFFFFFF


# --------------------------------------------------------------------------
# NTS: a throwaway PKI, our NTS-KE server, a raw NTS-KE client
# --------------------------------------------------------------------------

OPENSSL_BIN = os.environ.get("OPENSSL_BIN", "openssl")

_CA_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = ntsd integration test CA
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

_SERVER_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = localhost
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


class Pki:
    """Paths of a throwaway CA and server certificate (see make_test_pki)."""

    def __init__(self, d):
        self.dir = d
        self.ca_cert = os.path.join(d, "ca.pem")
        self.ca_key = os.path.join(d, "ca.key")
        self.cert = os.path.join(d, "server.pem")     # the server certificate alone
        self.key = os.path.join(d, "server.key")
        self.chain = os.path.join(d, "chain.pem")     # server certificate, then the CA


def _openssl(*args):
    r, _ = run_setpriv([OPENSSL_BIN] + list(args), timeout=30)
    if r.returncode != 0:
        fail("openssl %s failed (rc=%d): %s" % (" ".join(args), r.returncode,
                                                (r.stderr or r.stdout).strip()))
    return r.stdout


_CA_DB_CNF = """[ca]
default_ca = ca_default
[ca_default]
dir = %s
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
[policy_any]
commonName = supplied
"""


def _sign_dated(d, pki, csr, srv_cnf, start, days):
    """Signs csr with `openssl ca`, valid from Unix time `start` for `days`
    days (the x509 command of OpenSSL 3.0 cannot set a start date)."""
    cnf = os.path.join(d, "ca-db.cnf")
    with open(cnf, "w") as f:
        f.write(_CA_DB_CNF % d)
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "serial"), "w") as f:
        f.write("%016x\n" % random.getrandbits(63))
    fmt = "%Y%m%d%H%M%SZ"
    _openssl("ca", "-batch", "-notext", "-config", cnf, "-cert", pki.ca_cert,
             "-keyfile", pki.ca_key, "-in", csr, "-out", pki.cert,
             "-startdate", time.strftime(fmt, time.gmtime(start)),
             "-enddate", time.strftime(fmt, time.gmtime(start + days * 86400)),
             "-extfile", srv_cnf, "-extensions", "v3_server")


def make_test_pki(name="pki", days=30, not_before=None, extra_sans=()):
    """Creates, with the `openssl` CLI, a CA and a server certificate signed
    by it in <tmp>/<name>/: EC P-256 keys, SHA-256, `days` days of validity
    (by default beyond the daemon's 14-day expiry warning),
    the server certificate with SAN DNS:localhost and IP:127.0.0.1 (and
    `extra_sans`, e.g. "DNS:ntp.test", "IP:10.88.0.1") and the serverAuth
    EKU.  Keys are mode 0600.  `not_before` (Unix time): the server
    certificate is valid only from then on (the CA from now).
    Returns a Pki."""
    if shutil.which(OPENSSL_BIN) is None:
        skip("the openssl command-line tool is not installed")
    d = os.path.join(tmpdir(), name)
    os.makedirs(d, mode=0o700)
    pki = Pki(d)
    ca_cnf = os.path.join(d, "ca.cnf")
    srv_cnf = os.path.join(d, "server.cnf")
    with open(ca_cnf, "w") as f:
        f.write(_CA_CNF)
    with open(srv_cnf, "w") as f:
        f.write(_SERVER_CNF.replace("IP:127.0.0.1", ", ".join(["IP:127.0.0.1"] +
                                                              list(extra_sans))))
    csr = os.path.join(d, "server.csr")
    for key in (pki.ca_key, pki.key):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", key)
        os.chmod(key, 0o600)
    _openssl("req", "-x509", "-new", "-config", ca_cnf, "-extensions", "v3_ca",
             "-key", pki.ca_key, "-sha256", "-days", str(days), "-out", pki.ca_cert)
    _openssl("req", "-new", "-config", srv_cnf, "-key", pki.key, "-sha256", "-out", csr)
    if not_before is None:
        _openssl("x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
                 "-set_serial", "0x%x" % random.getrandbits(63), "-days", str(days),
                 "-sha256", "-extfile", srv_cnf, "-extensions", "v3_server", "-out", pki.cert)
    else:
        _sign_dated(d, pki, csr, srv_cnf, not_before, days)
    with open(pki.chain, "w") as out:
        for p in (pki.cert, pki.ca_cert):
            with open(p) as f:
                out.write(f.read())
    # Prove the chain is what the tests need before any daemon sees it.
    _openssl("verify", "-CAfile", pki.ca_cert, "-purpose", "sslserver",
             *(["-attime", str(int(not_before) + 60)] if not_before else []), pki.cert)
    text = _openssl("x509", "-in", pki.cert, "-noout", "-text")
    for want in ("DNS:localhost", "IP Address:127.0.0.1", "TLS Web Server Authentication",
                 "prime256v1"):
        check(want in text, "test server certificate lacks %r:\n%s" % (want, text))
    return pki


class NtsKeServer(Ntsd):
    """ntsd as an NTS-KE server (and a plain NTP server at `local stratum 1`)
    on 127.0.0.1: NTS-KE on ke_port, NTP on ntp_addr:ntp_port (the port is
    advertised in the KE Port record when not 123; another 127/8 ntp_addr
    lets a relay sit on 127.0.0.1, with `nts ntpserver 127.0.0.1` in
    `extra`).  `tcp`: NTP over TCP too, on the same address and port
    (`listen ... tcp`; the KE response advertises it).
    `cookie_file`: `nts cookie FILE`.  restart() (from Ntsd)
    waits for the KE server again.  With `debug` it runs at debug level
    (-d -d), where the KE server logs one line per connection (ke_log)."""

    def __init__(self, name, pki, ke_port, ntp_port, cookie_file=None, extra=(), debug=True,
                 ntp_addr="127.0.0.1", args=(), tcp=False):
        self.pki = pki
        self.ke_port = ke_port
        self.ntp_port = ntp_port
        self.ntp_addr = ntp_addr
        self.cookie_file = cookie_file
        lines = ["listen %s:%d%s" % (ntp_addr, ntp_port, " tcp" if tcp else ""),
                 "local stratum 1",
                 "nts enable",
                 "nts cert %s" % pki.chain,
                 "nts key %s" % pki.key]
        if cookie_file:
            lines.append("nts cookie %s" % cookie_file)
        lines.append("nts-listen-on 127.0.0.1:%d" % ke_port)
        lines += list(extra)
        Ntsd.__init__(self, name, lines, debug=debug,
                      args=tuple(args) + (("-d",) if debug else ()))

    def _start(self):
        Ntsd._start(self)
        want = "serving NTS-KE on 127.0.0.1:%d" % self.ke_port
        wait_until(lambda: want in self.proc.read_log(), 10,
                   "%s to log '%s'" % (self.proc.name, want))

    def nts_stats(self):
        """`ntsctl nts --json` as a dict, or None while ntsctl has no `nts`
        command (it is being added)."""
        r = run_cmd([NTSCTL_BIN, "-s", self.sock, "nts", "--json"], timeout=10)
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip()
            if re.search(r"unknown|usage|invalid|unsupported", msg, re.I):
                return None
            raise RuntimeError("ntsctl nts --json failed (rc=%d): %s" % (r.returncode, msg))
        try:
            v = json.loads(r.stdout)
        except ValueError as e:
            raise TestFailure("ntsctl nts --json printed invalid JSON (%s): %r" % (
                e, r.stdout[:500]))
        check(isinstance(v, dict), "ntsctl nts --json: expected an object, got %r" % (v,))
        return v

    def ke_log(self):
        """Our NTS-KE server's log lines, classified: {"good": [...], "bad":
        [...]} (bad: `failed:`, `refused:` and no-common-algorithm lines)."""
        good, bad = [], []
        for ln in self.proc.read_log().splitlines():
            if "NTSs: NTS-KE from " not in ln:
                continue
            if re.search(r"NTSs: NTS-KE from \S+, TLSv1\.3, ", ln):
                good.append(ln)
            else:
                bad.append(ln)
        return {"good": good, "bad": bad}

    def ke_log_for(self, addr_port):
        """Our log lines about one client connection ("ADDR:PORT")."""
        pat = "NTSs: NTS-KE from %s" % addr_port
        return [ln for ln in self.proc.read_log().splitlines()
                if pat + "," in ln or pat + " " in ln or pat + ":" in ln]


# NTS-KE records (RFC 8915 section 4).
KE_EOM, KE_NEXT_PROTO, KE_ERROR, KE_WARNING, KE_AEAD, KE_NEW_COOKIE, KE_SERVER, KE_PORT = \
    range(8)
KE_CRITICAL = 0x8000
KE_ALPN = "ntske/1"


def ke_record(rtype, body=b"", critical=False):
    return struct.pack("!HH", (KE_CRITICAL if critical else 0) | rtype, len(body)) + body


def ke_u16s(*vals):
    return b"".join(struct.pack("!H", v) for v in vals)


def ke_request(aeads=(15,), protocols=(0,), extra=(), eom=True):
    """Next Protocol, AEAD (both critical), `extra` raw bytes, End of Message."""
    out = ke_record(KE_NEXT_PROTO, ke_u16s(*protocols), True)
    if aeads is not None:
        out += ke_record(KE_AEAD, ke_u16s(*aeads), True)
    out += b"".join(extra)
    if eom:
        out += ke_record(KE_EOM, b"", True)
    return out


def ke_parse(data):
    """[(critical, type, body)] of a whole message; raises ValueError when a
    record runs past the end."""
    out, i = [], 0
    while i < len(data):
        if len(data) - i < 4:
            raise ValueError("truncated record header at %d" % i)
        t, n = struct.unpack("!HH", data[i:i + 4])
        if i + 4 + n > len(data):
            raise ValueError("record at %d runs past the end (%d > %d)" % (i, i + 4 + n,
                                                                          len(data)))
        out.append((bool(t & KE_CRITICAL), t & 0x7FFF, data[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def ke_ssl_context(ca=None, alpn=(KE_ALPN,), max_version=None, verify=True):
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(cafile=ca)
        ctx.check_hostname = True
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def ke_exchange(port, request, ca=None, src="127.0.0.1", alpn=(KE_ALPN,), max_version=None,
                server_hostname="localhost", timeout=5.0, chunks=None, wait_before_send=0.0,
                shut_wr=False):
    """One NTS-KE connection from Python's ssl module to 127.0.0.1:port,
    bound to source address `src`.  Sends `request` (or the byte strings in
    `chunks`, each in its own write), then -- with shut_wr, after a TCP
    half-close -- reads until the server closes or `timeout` passes.
    Never raises for network/TLS trouble; returns a dict:
      src:        "ADDR:PORT" of our end (how the server logs us)
      handshake:  True, or the handshake error text
      alpn:       protocol the server selected
      version, cipher
      response:   bytes read
      closed:     the server closed (EOF, close_notify, reset) within timeout
      close_how:  "close_notify" (a clean TLS close), "eof" (TCP close without
                  close_notify), "reset", "tls-error: ..." or "timeout"
      elapsed:    seconds from connect to close (or timeout)
    """
    import ssl
    ctx = ke_ssl_context(ca, alpn, max_version, verify=ca is not None)
    res = {"src": None, "handshake": None, "alpn": None, "version": None, "cipher": None,
           "response": b"", "closed": False, "close_how": "timeout", "elapsed": None}
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t0 = time.monotonic()
    try:
        raw.bind((src, 0))
        res["src"] = "%s:%d" % raw.getsockname()
        raw.settimeout(timeout)
        # No Nagle: the request is not held back waiting for the ACK of the
        # client Finished, so `elapsed` measures the server.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.connect(("127.0.0.1", port))
        try:
            s = ctx.wrap_socket(raw, server_hostname=server_hostname,
                                suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError) as e:
            res["handshake"] = "%s: %s" % (type(e).__name__, e)
            res["closed"] = True
            res["close_how"] = "handshake-failed"
            res["elapsed"] = time.monotonic() - t0
            return res
        raw = s
        res["handshake"] = True
        res["alpn"] = s.selected_alpn_protocol()
        res["version"] = s.version()
        res["cipher"] = s.cipher()[0] if s.cipher() else None
        if wait_before_send:
            time.sleep(wait_before_send)
        try:
            for c in (chunks if chunks is not None else [request]):
                if c:
                    s.sendall(c)
        except (ssl.SSLError, OSError):
            pass  # the server may close early; what it sent is still read below
        if shut_wr:
            # TCP FIN under the TLS layer (a dup, so the SSL object lives on).
            d = socket.socket(fileno=os.dup(s.fileno()))
            try:
                d.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            finally:
                d.close()
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ssl.SSLZeroReturnError:
                res["closed"], res["close_how"] = True, "close_notify"
                break
            except ssl.SSLEOFError:  # no close_notify before the TCP close
                res["closed"], res["close_how"] = True, "eof"
                break
            except (ConnectionResetError, BrokenPipeError):
                res["closed"], res["close_how"] = True, "reset"
                break
            except ssl.SSLError as e:
                res["closed"], res["close_how"] = True, "tls-error: %s" % e
                break
            if not b:  # with suppress_ragged_eofs=False: close_notify
                res["closed"], res["close_how"] = True, "close_notify"
                break
            res["response"] += b
    except OSError as e:
        res["closed"], res["close_how"] = True, "socket-error: %s" % e
    finally:
        res["elapsed"] = time.monotonic() - t0
        try:
            raw.close()
        except OSError:
            pass
    return res


def ensure_user(user):
    """The system user daemons become with -u (created once; kept); returns
    (uid, gid)."""
    try:
        pwd.getpwnam(user)
    except KeyError:
        if shutil.which("useradd") is None:
            skip("no useradd to create the test user %s" % user)
        r = run_cmd(["useradd", "--system", "--user-group", "--no-create-home",
                     "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user])
        # Another run may have created it meanwhile.
        if r.returncode != 0 and r.returncode != 9:
            fail("useradd %s: %s" % (user, r.stderr.strip()))
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def proc_status(pid, task=None):
    """/proc/PID[/task/TID]/status as a dict of stripped strings."""
    path = "/proc/%d/status" % pid if task is None else "/proc/%d/task/%s/status" % (pid, task)
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


_ERRNO_WRAPPER = r"""
import ctypes, os, struct, sys
insns = %r
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in insns))
class Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
prog = Prog(len(insns), ctypes.addressof(code))
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
    sys.exit("seccomp: " + os.strerror(ctypes.get_errno()))
os.execv(sys.argv[1], sys.argv[1:])
"""


def errno_wrapper(name, nr, err, arg0=None):
    """A command prefix that runs a program under a seccomp filter making
    system call nr (x86_64 numbering; only when its first argument is arg0,
    if given) fail with errno err, everything else allowed: a fault put on
    a daemon from outside, inherited by the processes it forks.  Only
    meaningful on x86_64 (other architectures pass through)."""
    allow, fail = (0x06, 0, 0, 0x7fff0000), (0x06, 0, 0, 0x00050000 | err)
    tail = [(0x20, 0, 0, 16), (0x15, 0, 1, arg0)] if arg0 is not None else []
    insns = ([(0x20, 0, 0, 4), (0x15, 0, 3 + len(tail), 0xc000003e),  # arch == x86_64?
              (0x20, 0, 0, 0), (0x15, 0, 1 + len(tail), nr)]          # nr?
             + tail + [fail, allow])
    path = os.path.join(tmpdir(), name + ".py")
    with open(path, "w") as f:
        f.write(_ERRNO_WRAPPER % (insns,))
    return [sys.executable, path]


def metric_sample(port, name):
    """A sample without labels from the metrics endpoint on
    127.0.0.1:port (`metrics`), or None when the scrape has none."""
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def pid_gone(pid):
    """Whether pid has exited (absent, or a zombie not reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True


def child_pids(pid):
    """The live children of pid (from /proc/*/stat), sorted."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d))
    return sorted(out)
