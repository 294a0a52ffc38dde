#!/usr/bin/python3
"""ntsd.service under a real systemd, in a container (docs/systemd.md).

The machine's PID 1 is not systemd, so the unit runs in a podman container
whose init is systemd: the image localhost/ntsd-systemd:bookworm
(scripts/systemd-test-image, run by install-deps; skipped without it),
plus what `cmake --install` stages (the programs, the unit, the sysusers
file), a test PKI and configuration, built offline.  The container has no
network but its loopback, and no CAP_SYS_TIME; a drop-in, the test's only
change to the unit, adds -x, leaves CAP_SYS_TIME out of the ambient set
(it is not in the container's bounding set, and the clock is not
namespaced), drops ConditionCapability=CAP_SYS_TIME, and shortens the
watchdog (2 s) and the stop timeout (the container's cgroups do not tell
systemd when the service's cgroup empties).

Passes when, with systemd's whole sandbox applied (SystemCallFilter,
RestrictAddressFamilies, ProtectSystem=strict, ...):
  * the service becomes active (Type=notify: READY=1), with ntsd's STATUS=;
  * the main and NTS-KE processes run as ntsd, with no capability,
    NoNewPrivs 1, Seccomp 2; the state and runtime directories are ntsd's;
  * an NTS-KE and ntsctl work inside the container;
  * a main process stopped with SIGSTOP misses its keep-alives: systemd
    kills it (watchdog) and restarts it (Restart=on-failure);
  * `systemctl stop` ends it cleanly (Result=success), and the NTS-KE
    process is not reported as having crashed (KillMode=mixed);
  * the journal has no system call refusal, and ntsd's lines in it carry no
    time stamp of their own but their priority (notice for the start line).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

IMAGE = "localhost/ntsd-systemd:bookworm"
BUILD_DIR = os.path.dirname(h.NTSD_BIN)
KEFETCH = os.path.join(BUILD_DIR, "ntsd_kefetch")
TAG = "localhost/ntsd-systemd-test:%d" % os.getpid()
NAME = "ntsd-systemd-test-%d" % os.getpid()

DROPIN = """# test only: the machine's clock is never set (docs/systemd.md)
[Unit]
ConditionCapability=
[Service]
ExecStart=
ExecStart={sbin} -n -u ntsd -c /etc/ntsd/ntsd.conf -x
AmbientCapabilities=
AmbientCapabilities=CAP_NET_BIND_SERVICE
WatchdogSec=2
TimeoutStopSec=3
"""

CONF = """listen 127.0.0.1:123
local stratum 1
nts enable
nts cert /etc/ntsd/chain.pem
nts key /etc/ntsd/privkey.pem
nts cookie /var/lib/ntsd/nts-keys
nts-listen-on 127.0.0.1:4460
"""

CONTAINERFILE = """FROM %s
COPY root/ /
RUN systemd-sysusers && chown root:ntsd /etc/ntsd/privkey.pem \\
 && chmod 0640 /etc/ntsd/privkey.pem && systemctl enable ntsd
""" % IMAGE


def podman(*args, timeout=60, check=True):
    r = subprocess.run(["podman"] + list(args), capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        h.fail("podman %s: rc %d: %s" % (" ".join(args[:2]), r.returncode,
                                         (r.stderr or r.stdout).strip()[-800:]))
    return r.stdout


def ex(*args, check=True):
    return podman("exec", NAME, *args, check=check)


def prop(name):
    """A property of ntsd.service; "" while systemd is not up yet."""
    return ex("systemctl", "show", "ntsd", "-p", name, "--value", check=False).strip()


def cleanup():
    podman("rm", "-f", "-t", "0", NAME, check=False)
    podman("rmi", "-f", TAG, check=False)


def stage(ctx):
    """The install, the PKI, the configuration and the drop-in under ctx/root."""
    root = os.path.join(ctx, "root")
    r = subprocess.run(["cmake", "--install", BUILD_DIR], capture_output=True, text=True,
                       env=dict(os.environ, DESTDIR=root), timeout=60)
    h.check(r.returncode == 0, "cmake --install: %s" % r.stderr)
    units = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
             if f == "ntsd.service"]
    h.check(len(units) == 1, "staged units: %r" % units)
    with open(units[0]) as f:
        sbin = re.search(r"^ExecStart=(\S+)", f.read(), re.M).group(1)
    os.makedirs(os.path.join(root, "usr/local/bin"), exist_ok=True)
    shutil.copy(KEFETCH, os.path.join(root, "usr/local/bin/ntsd_kefetch"))
    pki = h.make_test_pki()
    etc = os.path.join(root, "etc/ntsd")
    os.makedirs(etc, exist_ok=True)
    for src, dst in ((pki.chain, "chain.pem"), (pki.key, "privkey.pem"),
                     (pki.ca_cert, "ca.pem")):
        shutil.copy(src, os.path.join(etc, dst))
    with open(os.path.join(etc, "ntsd.conf"), "w") as f:
        f.write(CONF)
    dropin = os.path.join(root, "etc/systemd/system/ntsd.service.d")
    os.makedirs(dropin)
    with open(os.path.join(dropin, "test.conf"), "w") as f:
        f.write(DROPIN.format(sbin=sbin))
    with open(os.path.join(ctx, "Containerfile"), "w") as f:
        f.write(CONTAINERFILE)


def wait_active(what, timeout=20):
    h.wait_until(lambda: prop("ActiveState") == "active" and prop("SubState") == "running",
                 timeout, what, interval=0.5)


def proc_status(pid):
    st = dict(line.split(":\t", 1) for line in ex("cat", "/proc/%s/status" % pid).splitlines()
              if ":\t" in line)
    return {k: st[k].strip() for k in ("Uid", "CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd",
                                       "NoNewPrivs", "Seccomp")}


def check_processes():
    main = prop("MainPID")
    kids = ex("cat", "/proc/%s/task/%s/children" % (main, main)).split()
    h.check(len(kids) == 1, "expected one NTS-KE process, found %r" % kids)
    uid = ex("id", "-u", "ntsd").strip()
    for pid, what in ((main, "main"), (kids[0], "NTS-KE")):
        st = proc_status(pid)
        h.log("%s process %s: %r" % (what, pid, st))
        h.check(st["Uid"].split() == [uid] * 4, "%s process not running as ntsd" % what)
        for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            h.check(int(st[k], 16) == 0, "%s process: %s %s" % (what, k, st[k]))
        # the unit's bounding set, less CAP_SYS_TIME the container never had
        h.check(int(st["CapBnd"], 16) & ~(1 << 10 | 1 << 25) == 0,
                "%s process: bounding set %s beyond the unit's" % (what, st["CapBnd"]))
        h.check(st["NoNewPrivs"] == "1" and st["Seccomp"] == "2",
                "%s process: NoNewPrivs %s Seccomp %s" % (what, st["NoNewPrivs"],
                                                          st["Seccomp"]))
    owners = ex("stat", "-c", "%U %a %n", "/var/lib/ntsd", "/var/lib/ntsd/nts-keys",
                "/run/ntsd", "/run/ntsd/ntsd.sock")
    h.log("files: %s" % owners.replace("\n", "; "))
    h.check(all(line.startswith("ntsd ") for line in owners.splitlines()),
            "state or runtime files not ntsd's: %s" % owners)


def check_journal():
    """ntsd's lines as the journal stored them: no time stamp of ntsd's own
    (the journal has its own), the priority from the <N> prefix, which is
    not left in the message (docs/logging.md)."""
    out = ex("journalctl", "-u", "ntsd", "-o", "json", "--no-pager")
    msgs = []
    for line in out.splitlines():
        e = json.loads(line)
        if e.get("SYSLOG_IDENTIFIER") == "ntsd" and isinstance(e.get("MESSAGE"), str):
            msgs.append((e.get("PRIORITY"), e["MESSAGE"]))
    h.check(msgs, "no ntsd lines in the journal")
    stamped = [m for _, m in msgs if re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", m)
               or m.startswith("<")]
    h.check(not stamped, "journal lines with a time stamp or a priority prefix: %r" % stamped)
    running = [p for p, m in msgs if re.match(r"ntsd [\d.]+ running$", m)]
    h.check(running and running[0] == "5", "the start line's priority: %r" % running)
    h.log("journal: %d ntsd lines, none with a time of its own; priorities %s" % (
        len(msgs), sorted({p for p, _ in msgs})))


def check_watchdog():
    main = prop("MainPID")
    ex("sh", "-c", "kill -STOP %s" % main)
    h.wait_until(lambda: prop("NRestarts") == "1", 30,
                 "systemd to kill the stopped daemon (watchdog) and restart it", interval=0.5)
    wait_active("the restarted service to be active")
    log = ex("journalctl", "-u", "ntsd", "--no-pager")
    h.check("Watchdog timeout" in log, "the restart was not the watchdog's")
    h.check(prop("MainPID") != main, "the same main process after the restart")
    h.log("watchdog: stopped main process %s killed and the service restarted" % main)


def main():
    if shutil.which("podman") is None:
        h.skip("podman not installed (scripts/install-deps)")
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        h.skip("no image %s (scripts/systemd-test-image; install-deps runs it)" % IMAGE)
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    ctx = os.path.join(h.tmpdir(), "image")
    os.makedirs(ctx)
    stage(ctx)
    t0 = time.monotonic()
    podman("build", "--network", "none", "-t", TAG, ctx, timeout=120)
    h.log("image built in %.1f s" % (time.monotonic() - t0))
    try:
        # No CAP_SYS_TIME anywhere in the container (and the setpriv prefix
        # keeps it out of podman's own bounding set).
        r = h.run_cmd(h.SETPRIV + ["podman", "run", "-d", "--name", NAME, "--network", "none",
                                   "--cap-drop", "SYS_TIME", "--systemd=always", TAG,
                                   "/sbin/init"], timeout=60)
        h.check(r.returncode == 0, "podman run: %s" % r.stderr)
        wait_active("ntsd.service to be active (READY=1)")
        status = prop("StatusText")
        h.log("StatusText=%s" % status)
        h.check(re.search(r"sources usable; serving NTP, NTS-KE; clock control off$", status),
                "unexpected status %r" % status)
        check_processes()
        check_journal()
        ke = ex("ntsd_kefetch", "-c", "/etc/ntsd/ca.pem", "-t", "5", "127.0.0.1", "4460")
        h.check(re.fullmatch(r"15 [0-9A-F]+,[0-9A-F]+\n", ke), "ntsd_kefetch printed %r" % ke)
        h.check("stratum:" in ex("ntsctl", "sys"), "ntsctl sys inside the container failed")
        check_watchdog()
        ex("systemctl", "stop", "ntsd")
        h.check(prop("Result") == "success" and prop("ActiveState") == "inactive",
                "systemctl stop: Result %s, %s" % (prop("Result"), prop("ActiveState")))
        log = ex("journalctl", "-u", "ntsd", "--no-pager")
        last = log[log.rindex("Started ntsd.service"):]
        h.check("signal 15: shutting down" in last, "no clean shutdown logged")
        h.check(not re.search(r"NTS-KE process \d+ (ended|sent)", last),
                "the NTS-KE process was reported as crashed on stop:\n%s" % last)
        h.check("refused by the system call filter" not in log and "SIGSYS" not in log,
                "a system call refusal in the journal:\n%s" % log)
        h.log("journal of the last run:\n" + last)
    finally:
        if os.environ.get("NTSD_TEST_KEEP_CONTAINER") != "1":
            cleanup()


h.run(main)
