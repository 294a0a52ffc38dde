#!/usr/bin/python3
"""The container image (Containerfile, docs/container.md), built and run
with podman: a client in another namespace gets NTS time from it, its
processes hold the capabilities docs/container.md states, and its
HEALTHCHECK passes while the daemon answers and fails while it does not.

Before entering the private namespace, in the machine's own network
namespace, the image is built from this tree (`podman build --network
host`: the build's apt-get needs Debian's mirror; no container network or
firewall rule is created) on the cached base image localhost/debian:bookworm
(scripts/container-base).  Everything else runs in namespaces the test
creates:

  test netns (harness)  192.0.2.2  our ntsd as an NTS client (setpriv, -x)
        | veth
  ntsdct-PID netns      192.0.2.1  the container: NTS-KE 4460, NTP 123
                                   (UDP and TCP), local stratum 2

Clock safety: the clock is not namespaced, so the container never gets
CAP_SYS_TIME: it runs with --cap-drop ALL and only the capabilities the
image's start-up needs, podman itself runs under the harness's setpriv
(so nothing it starts can hold CAP_SYS_TIME), the daemon runs with -x, and
the test checks that CAP_SYS_TIME is outside the container's bounding set.

Skips only when podman cannot run a container here at all.  Cleans up the
container, its volume, the namespace and the image (not the base image).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

BASE = "localhost/debian:bookworm"
TAG = "ntsd-test-%d" % os.getpid()  # the pid survives the harness's re-exec
IMAGE = "localhost/%s:latest" % TAG
CONTAINER = TAG
VOLUME = TAG + "-state"
NETNS = "ntsdct-%d" % os.getpid()
LABEL = "ntsd-test-pid"
SERVER_IP, CLIENT_IP = "192.0.2.1", "192.0.2.2"
CAP_SYS_NICE, CAP_SYS_TIME = 23, 25
# What the image's start-up needs besides the clock (docs/container.md):
# switching to user ntsd, giving it the state files, naming them and reading
# them again at the next start, binding port 123; SYS_NICE for NTSD_PRIORITY.
CAPS = ["SETUID", "SETGID", "CHOWN", "DAC_READ_SEARCH", "NET_BIND_SERVICE", "SYS_NICE"]
MIN_EXCHANGES = 8
BUILD_LOG = "/var/tmp/%s-build.log" % TAG


def podman(*args, timeout=60, check=True):
    """podman under the setpriv prefix (no CAP_SYS_TIME in its bounding set)."""
    cmd = h.SETPRIV + ["podman"] + list(args)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        h.fail("podman %s did not finish within %s s" % (" ".join(args), timeout))
    if check and r.returncode != 0:
        h.fail("podman %s failed (rc=%d): %s" % (" ".join(args), r.returncode,
                                                (r.stderr or r.stdout).strip()[-2000:]))
    return r


def remove_leftovers():
    """Removes what a killed earlier run of this test left: its containers,
    volumes, namespaces and images (named after its pid)."""
    def dead(pid):
        return not pid.isdigit() or not os.path.exists("/proc/%s" % pid)
    r = subprocess.run(["podman", "ps", "-a", "--filter", "label=" + LABEL,
                        "--format", "{{.Names}} {{.Labels.%s}}" % LABEL],
                       capture_output=True, text=True, timeout=60)
    for ln in r.stdout.splitlines():
        name, _, pid = ln.partition(" ")
        if dead(pid.strip()):
            subprocess.run(["podman", "rm", "-f", "-v", name], capture_output=True, timeout=60)
    r = subprocess.run(["podman", "volume", "ls", "--format", "{{.Name}}"],
                       capture_output=True, text=True, timeout=60)
    for name in r.stdout.split():
        m = re.match(r"ntsd-test-(\d+)-state$", name)
        if m and dead(m.group(1)):
            subprocess.run(["podman", "volume", "rm", "-f", name], capture_output=True,
                           timeout=60)
    r = subprocess.run(["podman", "images", "--format", "{{.Repository}}"],
                       capture_output=True, text=True, timeout=60)
    for repo in r.stdout.split():
        m = re.match(r"localhost/ntsd-test-(\d+)$", repo)
        if m and dead(m.group(1)):
            subprocess.run(["podman", "rmi", "-f", repo], capture_output=True, timeout=60)
    for name in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        m = re.match(r"ntsdct-(\d+)$", name)
        if m and dead(m.group(1)):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def cleanup():
    for name in (CONTAINER, CONTAINER + "-v"):
        subprocess.run(["podman", "rm", "-f", "-v", "-t", "5", name], capture_output=True,
                       timeout=60)
    subprocess.run(["podman", "volume", "rm", "-f", VOLUME], capture_output=True, timeout=60)
    subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, timeout=60)
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True, timeout=10)
    try:
        os.unlink(BUILD_LOG)
    except OSError:
        pass


def say(msg):
    print(msg, flush=True)


def build():
    """In the machine's network namespace: checks that podman can run a
    container at all (else SKIP), then builds the image.  Returns seconds."""
    if shutil.which("podman") is None:
        say("SKIP: podman is not installed (scripts/install-deps installs it)")
        sys.exit(0)
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=120)
    if info.returncode != 0:
        say("SKIP: podman does not work here: %s" % (info.stderr or info.stdout).strip()[-1000:])
        sys.exit(0)
    remove_leftovers()
    src = h.SOURCE_DIR
    if subprocess.run(["podman", "image", "exists", BASE]).returncode != 0:
        say("building the base image %s (scripts/container-base)" % BASE)
        r = subprocess.run([os.path.join(src, "scripts", "container-base"), BASE],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            say("FAIL: scripts/container-base: %s" % (r.stderr or r.stdout).strip()[-2000:])
            sys.exit(1)
    probe = subprocess.run(h.SETPRIV + ["podman", "run", "--rm", "--network", "none",
                                        "--cap-drop", "ALL", BASE, "true"],
                           capture_output=True, text=True, timeout=120)
    if probe.returncode != 0:
        say("SKIP: podman cannot run a container here: %s"
            % (probe.stderr or probe.stdout).strip()[-1000:])
        sys.exit(0)
    say("building %s from %s (podman build --network host, log %s)" % (IMAGE, src, BUILD_LOG))
    t0 = time.monotonic()
    with open(BUILD_LOG, "w") as logf:
        r = subprocess.run(h.SETPRIV + [
            "podman", "build", "--network", "host", "--format", "docker", "--layers=false",
            "--pull=never", "--build-arg", "BASE=" + BASE,
            "--label", "%s=%d" % (LABEL, os.getpid()),
            "-t", IMAGE, src], stdout=logf, stderr=subprocess.STDOUT, timeout=900,
            stdin=subprocess.DEVNULL)
    secs = time.monotonic() - t0
    if r.returncode != 0:
        with open(BUILD_LOG) as f:
            say("FAIL: podman build (rc=%d) after %.0f s:\n%s"
                % (r.returncode, secs, "".join(f.readlines()[-40:])))
        cleanup()
        sys.exit(1)
    return secs


if os.environ.get(h.NETNS_MARKER) != "1":
    os.environ["NTSD_CT_BUILD_SECONDS"] = "%.1f" % build()

h.setup(__file__)


def on_signal(signum, frame):
    cleanup()
    h._on_signal(signum, frame)


for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(_sig, on_signal)


def make_netns():
    h.run_cmd(["ip", "netns", "add", NETNS])
    cmds = [["ip", "link", "add", "ct0", "type", "veth", "peer", "name", "ct1",
             "netns", NETNS],
            ["ip", "addr", "add", CLIENT_IP + "/30", "dev", "ct0"],
            ["ip", "link", "set", "ct0", "up"],
            ["ip", "-n", NETNS, "link", "set", "lo", "up"],
            ["ip", "-n", NETNS, "addr", "add", SERVER_IP + "/30", "dev", "ct1"],
            ["ip", "-n", NETNS, "link", "set", "ct1", "up"]]
    for c in cmds:
        r = h.run_cmd(c)
        h.check(r.returncode == 0, "%s: %s" % (" ".join(c), r.stderr.strip()))


def status_of(pid_text):
    """Fields of a /proc/PID/status text."""
    out = {}
    for ln in pid_text.splitlines():
        k, _, v = ln.partition(":")
        out[k] = v.strip()
    return out


def processes(container):
    """/proc/N/status of every ntsd process in the container, read inside."""
    r = podman("exec", container, "sh", "-c",
               "for f in /proc/[0-9]*/status; do echo \"== $f\"; cat $f; done")
    procs = {}
    for chunk in r.stdout.split("== /proc/")[1:]:
        pid, _, text = chunk.partition("/status\n")
        st = status_of(text)
        if st.get("Name") == "ntsd":
            procs[int(pid)] = st
    return procs


def documented(row):
    """(user, CapEff) that docs/container.md's table of measurements states
    for `row`."""
    with open(os.path.join(h.SOURCE_DIR, "docs", "container.md")) as f:
        text = f.read()
    m = re.search(r"^\| %s \| (\w+) \| `([0-9a-f]{16})`" % re.escape(row), text, re.M)
    h.check(m, "docs/container.md has no measured row %r" % row)
    return m.group(1), m.group(2)


def check_status(row, st, uid):
    user, capeff = documented(row)
    h.log("%s: Uid %s CapEff %s CapPrm %s CapBnd %s NoNewPrivs %s Seccomp %s" % (
        row, st["Uid"], st["CapEff"], st["CapPrm"], st["CapBnd"], st["NoNewPrivs"],
        st["Seccomp"]))
    h.check(user == {0: "root"}.get(uid, "ntsd"), "docs say %s runs as %r" % (row, user))
    h.check(st["Uid"].split() == [str(uid)] * 4, "%s: Uid %s, not %d" % (row, st["Uid"], uid))
    h.check(st["CapEff"] == capeff,
            "%s: CapEff %s, docs/container.md says %s" % (row, st["CapEff"], capeff))
    h.check(st["CapPrm"] == capeff, "%s: CapPrm %s" % (row, st["CapPrm"]))
    h.check(int(st["CapBnd"], 16) >> CAP_SYS_TIME & 1 == 0,
            "CAP_SYS_TIME in the container's bounding set: %s" % st["CapBnd"])
    h.check(st["Seccomp"] == "2", "%s: Seccomp %s" % (row, st["Seccomp"]))
    if uid:
        h.check(st["NoNewPrivs"] == "1", "%s: NoNewPrivs %s" % (row, st["NoNewPrivs"]))


def check_caps(ntsd_uid):
    procs = processes(CONTAINER)
    h.check(1 in procs, "PID 1 in the container is not ntsd: %r" % sorted(procs))
    ke = [p for p in procs if p != 1]
    h.check(len(ke) == 1, "expected one NTS-KE process beside PID 1, got %r" % sorted(procs))
    check_status("main process, the test's line", procs[1], ntsd_uid)
    check_status("NTS-KE process, the test's line", procs[ke[0]], ntsd_uid)


def check_variant(row, args, uid):
    """Starts the image with other capabilities (`args`), no network, no
    NTS; checks PID 1 against docs/container.md's `row`."""
    name = CONTAINER + "-v"
    podman("run", "-d", "--name", name, "--label", "%s=%d" % (LABEL, os.getpid()),
           "--network", "none", *args, "-e", "NTSD_LOCAL_STRATUM=2", IMAGE, "-x")
    try:
        h.wait_until(lambda: podman("exec", name, "ntsctl", "sys", check=False)
                     .returncode == 0, 30, "ntsctl sys in the container (%s)" % row)
        procs = processes(name)
        h.check(list(procs) == [1], "%s: ntsd processes %r" % (row, sorted(procs)))
        check_status(row, procs[1], uid)
    except h.TestFailure:
        r = podman("logs", name, check=False)
        say("----- container log (%s) -----\n%s----- end -----" % (row, r.stdout + r.stderr))
        raise
    finally:
        podman("rm", "-f", "-v", "-t", "5", name, check=False)


def healthy():
    r = podman("healthcheck", "run", CONTAINER, check=False, timeout=30)
    return r.returncode == 0


def check_healthcheck():
    h.check(healthy(), "podman healthcheck run: not healthy while ntsd serves")
    st = podman("inspect", "--format", "{{.State.Health.Status}}", CONTAINER).stdout.strip()
    h.check(st == "healthy", "health status %r after a passing check" % st)
    # Stopped, the daemon cannot answer: the check must fail (ntsctl's 5 s
    # reply timeout, within the HEALTHCHECK's).
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", CONTAINER).stdout)
    os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        h.check(not healthy(), "the health check passed while ntsd was stopped")
        h.log("health check failed, as it should, %.1f s after ntsd was stopped"
              % (time.monotonic() - t0))
    finally:
        os.kill(pid, signal.SIGCONT)
    h.wait_until(healthy, 15, "healthy again after SIGCONT")


def check_bad_env():
    r = podman("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--label",
               "%s=%d" % (LABEL, os.getpid()), "-e", "NTSD_NTS=maybe", IMAGE, check=False)
    h.check(r.returncode == 2 and "NTSD_NTS must be on or off, got 'maybe'" in r.stderr,
            "bad NTSD_NTS: rc=%d, %r" % (r.returncode, r.stderr.strip()))
    r = podman("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--label",
               "%s=%d" % (LABEL, os.getpid()), "-e", "NTSD_SERVERS=a b#c", IMAGE, check=False)
    h.check(r.returncode == 2 and "not a host name or address: 'b#c'" in r.stderr,
            "bad NTSD_SERVERS: rc=%d, %r" % (r.returncode, r.stderr.strip()))


def check_config_sources():
    """The file written from other variables (checked by ntsd --check), and
    a mounted file used as it is."""
    r = podman("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--label",
               "%s=%d" % (LABEL, os.getpid()), "-e", "NTSD_NTS=off", "-e", "NTSD_SERVE=off",
               "-e", "NTSD_SERVERS=a.example [2001:db8::1]:1123", "-e", "NTSD_POOLS=p.example",
               "--entrypoint", "sh", IMAGE, "-c",
               "ntsd-entrypoint --check && cat /etc/ntsd/ntsd.conf", check=False)
    want = ["driftfile /var/lib/ntsd/ntsd.drift", "server a.example iburst",
            "server [2001:db8::1]:1123 iburst", "pool p.example iburst", "interface ignore all"]
    lines = r.stdout.splitlines()
    h.check(r.returncode == 0 and lines[2:] == want and "ok (3 sources" in lines[0],
            "NTSD_NTS=off NTSD_SERVE=off: rc=%d %r %r" % (r.returncode, lines, r.stderr))
    conf = h.write_file("mounted.conf", "local stratum 4\ninterface ignore all\n")
    r = podman("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--label",
               "%s=%d" % (LABEL, os.getpid()), "-v", "%s:/etc/ntsd/ntsd.conf:ro" % conf,
               "-e", "NTSD_SERVERS=ignored.example", "--entrypoint", "sh", IMAGE, "-c",
               "ntsd-entrypoint --check && cat /etc/ntsd/ntsd.conf", check=False)
    h.check(r.returncode == 0 and r.stdout.endswith("\nlocal stratum 4\ninterface ignore all\n")
            and "using /etc/ntsd/ntsd.conf as mounted" in r.stderr,
            "mounted configuration: rc=%d %r %r" % (r.returncode, r.stdout, r.stderr))


def main():
    h.require_ours()
    t_start = time.monotonic()
    h.log("image %s built in %s s" % (IMAGE, os.environ.get("NTSD_CT_BUILD_SECONDS", "?")))
    pki = h.make_test_pki(extra_sans=["IP:" + SERVER_IP])
    make_netns()
    run = ["run", "-d", "--name", CONTAINER, "--label", "%s=%d" % (LABEL, os.getpid()),
           "--network", "ns:/run/netns/" + NETNS, "--cap-drop", "ALL"]
    for c in CAPS:
        run += ["--cap-add", c]
    run += ["-v", "%s:/var/lib/ntsd" % VOLUME, "-v", "%s:/etc/ntsd/tls:ro" % pki.dir,
            "-e", "NTSD_SERVERS=", "-e", "NTSD_LOCAL_STRATUM=2", "-e", "NTSD_NTP_TCP=on",
            "-e", "NTSD_NTS_CERT=/etc/ntsd/tls/chain.pem",
            "-e", "NTSD_NTS_KEY=/etc/ntsd/tls/server.key", "-e", "NTSD_PRIORITY=1",
            IMAGE, "-x", "-d"]
    podman(*run)
    logpath = os.path.join(h.tmpdir(), "container.log")

    def save_log():
        r = podman("logs", CONTAINER, check=False)
        with open(logpath, "w") as f:
            f.write(r.stdout + r.stderr)
        return r.stdout + r.stderr

    try:
        h.wait_until(lambda: podman("exec", CONTAINER, "ntsctl", "sys", check=False)
                     .returncode == 0, 30, "ntsctl sys in the container")
        ss = h.run_cmd(["ip", "netns", "exec", NETNS, "ss", "-lnut"]).stdout
        for proto, port in (("udp", 123), ("tcp", 123), ("tcp", 4460)):
            h.check(re.search(r"^%s .*:%d\s" % (proto, port), ss, re.M),
                    "nothing listens on %s port %d in the container:\n%s" % (proto, port, ss))
        ntsd_uid = int(podman("exec", CONTAINER, "id", "-u", "ntsd").stdout)
        check_caps(ntsd_uid)

        client = h.Ntsd("client", [
            "interface ignore all", "nts ca %s" % pki.ca_cert,
            "server %s nts iburst minpoll 0 maxpoll 0" % SERVER_IP], ready="peers")

        def enough():
            ps = client.peers()
            return len(ps) == 1 and ps[0]["accepted"] >= MIN_EXCHANGES and ps[0]
        p = h.wait_until(enough, 45, "%d NTS exchanges with the container" % MIN_EXCHANGES,
                         interval=0.5)
        h.log("client: %s cookies=%d accepted=%d stratum=%d offset=%.3g delay=%.3g" % (
            p["address"], p["cookies"], p["accepted"], p["stratum"], p["offset"], p["delay"]))
        h.check(p["nts"] and p["auth"] and p["cookies"] >= 7, "not NTS: %r" % p)
        h.check(p["address"] == "%s:123" % SERVER_IP, "NTP address %r" % p["address"])
        h.check(p["stratum"] == 2 and abs(p["offset"]) < 0.01, "stratum/offset: %r" % p)
        h.check(not any(p["dropped"].values()), "responses dropped: %r" % p["dropped"])

        conf = podman("exec", CONTAINER, "cat", "/etc/ntsd/ntsd.conf").stdout
        h.check("listen * tcp" in conf and "local stratum 2" in conf, "generated: %r" % conf)
        files = podman("exec", CONTAINER, "ls", "-ln", "/var/lib/ntsd").stdout
        h.check(re.search(r"^-rw------- 1 %d \d+ .* cookie\.keys$" % ntsd_uid, files, re.M),
                "cookie keys not in the state volume, owned by ntsd:\n%s" % files)

        check_healthcheck()
        check_caps(ntsd_uid)  # the same after the KE sessions

        # The state volume keeps the cookie keys: after a restart the same key
        # is read back (as root, from the user's file) and the client's
        # cookies stay valid.
        podman("restart", "-t", "10", CONTAINER, timeout=60)
        h.wait_until(lambda: podman("exec", CONTAINER, "ntsctl", "sys", check=False)
                     .returncode == 0, 30, "ntsctl sys after the restart")
        keys = re.findall(r"NTS cookie key ([0-9a-f]{8}) in use \(\d+ keys held(.*)\)",
                          save_log())
        h.check(len(keys) == 2 and keys[0][0] == keys[1][0] and keys[1][1] == "",
                "cookie key not read back from the state volume after a restart: %r" % keys)
        before = client.peers()[0]["accepted"]
        p = h.wait_until(lambda: (client.peers()[0]["accepted"] >= before + 3
                                  and client.peers()[0]), 30,
                         "exchanges with the restarted container", interval=0.5)
        h.check(p["nts"] and p["cookies"] >= 7, "after the restart: %r" % p)
        check_caps(ntsd_uid)
        check_bad_env()
        check_config_sources()
        # The engine's default set (the documented line without SYS_TIME):
        # the daemon drops everything.  No SETUID/SETGID: it stays uid 0
        # with what the container has, here nothing (port 123 through the
        # sysctl).
        check_variant("main process, the engine's default set", [], ntsd_uid)
        check_variant("main process, no SETUID/SETGID",
                      ["--cap-drop", "ALL", "--sysctl", "net.ipv4.ip_unprivileged_port_start=0"],
                      0)

        podman("stop", "-t", "10", CONTAINER, timeout=30)
        code = podman("inspect", "--format", "{{.State.ExitCode}}", CONTAINER).stdout.strip()
        text = save_log()
        h.check(code == "0", "ntsd in the container exited with %s" % code)
        h.check("clock control off" in text, "the container's ntsd ran without -x?")
        bad = [ln for ln in text.splitlines()
               if any(re.search(pat, ln) for pat in h.CRASH_PATTERNS)]
        h.check(not bad, "crash lines in the container's log: %r" % bad)
    except h.TestFailure:
        text = save_log()
        say("----- container log -----\n%s\n----- end -----" % text[-6000:])
        raise
    h.log("test time without the build: %.1f s" % (time.monotonic() - t_start))


try:
    h.run(main)
finally:
    cleanup()
