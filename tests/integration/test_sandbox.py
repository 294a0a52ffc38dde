#!/usr/bin/python3
"""The system call filters (docs/security.md, "System call filters"):
`sandbox on|off|log` in the configuration, -F LEVEL over it, and how a
refused call shows up in a running daemon.

Each case starts an ntsd NTS server on loopback and reads the `Seccomp`
line of /proc/PID/status of its main process and of its NTS-KE process
(2: a filter is loaded, 0: none):
  * no directive, no -F: both 2; each logs that its filter is loaded;
  * `sandbox off`: both 0, "system call filter off" twice;
  * `sandbox off` with -F 1: both 2 (-F wins);
  * `sandbox on` with -F 0: both 0;
  * `sandbox log`: both 2, "log only";
  * `sandbox maybe`, -F 2: refused at start with a clear message.
Then ntsd runs with tests' sandbox_probe preloaded, which makes one system
call no filter allows (personality) in each NTS-KE exchange, in the NTS-KE
process:
  * filter on: the exchange fails; the KE process logs "seccomp: system
    call 135 (personality) refused by the system call filter; exiting" and
    dies of SIGSYS; the main process logs its end (killed by signal 31) and
    starts a new one; NTP is answered throughout;
  * -F -1: the call is let through, the exchange completes, nothing is
    refused; the kernel's log has the audit record (type 1326) of the call;
  * -F 0: the same, with no filter at all;
  * detached (no -n), as user ntsd-test, logging to syslog (a /dev/log of
    the test's own, in a private mount namespace): the refusal arrives as
    "<27>ntsd[KE PID]: seccomp: system call 135 (personality) refused ...",
    and the main process's line about the KE process's end as daemon.err
    too; NTP is still answered.
"""
import os
import re
import select
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14460, 11123
PROBE = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_sandbox_probe.so")
SIGSYS = 31
REFUSED = ("seccomp: system call 135 (personality) refused by the system call filter; "
           "exiting (ntsd -F -1 logs instead)")


def ke_pid(server):
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 10,
                 "%s's NTS-KE process" % server.name)
    return h.child_pids(server.proc.pid)[0]


def seccomp_modes(server, loaded_lines):
    """(main, KE) Seccomp modes, once both processes logged their filter
    line loaded_lines times in all."""
    h.wait_until(lambda: len(re.findall(r"system call filter (loaded|off)",
                                        server.proc.read_log())) >= loaded_lines, 10,
                 "%s to log its filters" % server.name)
    main = h.proc_status(server.proc.pid)["Seccomp"]
    ke = h.proc_status(ke_pid(server))["Seccomp"]
    h.log("%s: Seccomp main %s, NTS-KE %s" % (server.name, main, ke))
    return main, ke


def start(name, pki, lines=(), args=()):
    return h.NtsKeServer(name, pki, KE_PORT, NTP_PORT, extra=list(lines), args=args)


def levels(pki):
    cases = [("default", [], (), "2", ["(main process, no clock control)", "(NTS-KE process)"]),
             ("off", ["sandbox off"], (), "0", ["system call filter off"]),
             ("off-F1", ["sandbox off"], ("-F", "1"), "2", ["(NTS-KE process)"]),
             ("on-F0", ["sandbox on"], ("-F", "0"), "0", ["system call filter off"]),
             ("log", ["sandbox log"], (), "2", ["(main process, no clock control, log only)",
                                                "(NTS-KE process, log only)"])]
    for name, lines, args, want, logged in cases:
        s = start(name, pki, lines, args)
        modes = seccomp_modes(s, 2)
        h.check(modes == (want, want), "%s: Seccomp %r, expected %s in both" % (name, modes, want))
        log = s.proc.read_log()
        for text in logged:
            h.check(text in log, "%s: '%s' not logged" % (name, text))
        h.check("refused" not in log, "%s: a call was refused" % name)
        s.proc.stop()
        s.proc.check_no_crash()


def bad_levels(pki):
    conf = h.write_file("bad.conf", "sandbox maybe\n")
    r = h.run_cmd([h.NTSD_BIN, "-c", conf, "--check"])
    h.log("sandbox maybe: rc %d %r" % (r.returncode, r.stderr.strip()))
    h.check(r.returncode != 0 and "'sandbox': expected on, off or log, not 'maybe'" in r.stderr,
            "`sandbox maybe` accepted: rc %d %r" % (r.returncode, r.stderr))
    for v in ("2", "on", ""):
        r = h.run_cmd([h.NTSD_BIN, "-c", "/nonexistent", "-F", v])
        h.check(r.returncode == 2 and "-F LEVEL: expected 1, 0 or -1" in r.stderr,
                "-F %r: rc %d %r" % (v, r.returncode, r.stderr))


def start_probed(name, pki, args=()):
    """ntsd with the probe preloaded (into the whole process tree it starts,
    setpriv included: the probe only changes SSL_export_keying_material)."""
    old = os.environ.get("LD_PRELOAD")
    os.environ["LD_PRELOAD"] = PROBE
    try:
        return start(name, pki, args=args)
    finally:
        if old is None:
            del os.environ["LD_PRELOAD"]
        else:
            os.environ["LD_PRELOAD"] = old


def cookies(r):
    if r["handshake"] is not True:
        return 0
    return len([x for x in h.ke_parse(r["response"]) if x[1] == h.KE_NEW_COOKIE])


def refused(pki):
    s = start_probed("probed", pki)
    first = ke_pid(s)
    seccomp_modes(s, 2)
    r = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert)
    h.log("KE with the filter on: handshake %r, %d bytes" % (r["handshake"], len(r["response"])))
    h.check(cookies(r) == 0, "the KE completed although its key export was refused")
    ended = "NTS-KE process %d ended (killed by signal %d); restarting it" % (first, SIGSYS)
    h.wait_until(lambda: ended in s.proc.read_log(), 10, "'%s' in the log" % ended)
    log = s.proc.read_log()
    line = [ln for ln in log.splitlines() if REFUSED in ln]
    h.log("refusal: %r" % line)
    h.check(len(line) == 1 and "ntsd: error: " in line[0],
            "the refusal is not logged once as an error: %r" % line)
    h.check(h.sntp_query("127.0.0.1", NTP_PORT) is not None, "NTP not answered after the refusal")
    h.wait_until(lambda: h.child_pids(s.proc.pid) not in ([], [first]), 10,
                 "a new NTS-KE process")
    s.proc.stop()
    s.proc.check_no_crash()


def kernel_log():
    """The kernel's log (/dev/kmsg, read without blocking), or None."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    out = []
    try:
        while True:
            try:
                out.append(os.read(fd, 8192).decode(errors="replace"))
            except BlockingIOError:
                break
            except OSError:  # EPIPE: overwritten records, read on
                continue
    finally:
        os.close(fd)
    return "".join(out)


def let_through(pki, level):
    s = start_probed("probed%s" % level, pki, args=("-F", level))
    seccomp_modes(s, 2)
    pid = ke_pid(s)
    r = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert)
    h.check(cookies(r) == 8, "-F %s: no 8 cookies: %r" % (level, r))
    if level == "-1":
        # SCMP_ACT_LOG: the kernel's audit record of the call
        k = kernel_log()
        want = r"type=1326 .* pid=%d comm=\"ntsd\" .* syscall=135 " % pid
        if k is None:
            h.log("no /dev/kmsg: the audit record is not checked")
        else:
            h.wait_until(lambda: re.search(want, kernel_log() or ""), 5,
                         "-F -1: the audit record of the call (%s)" % want)
    h.check("refused" not in s.proc.read_log(), "-F %s: a call was refused" % level)
    h.check("ended" not in s.proc.read_log(), "-F %s: the NTS-KE process ended" % level)
    s.proc.stop()
    s.proc.check_no_crash()


def private_dev(d):
    """A shell prefix giving the command a private /dev (a tmpfs in its own
    mount namespace) with null, zero, random, urandom, and a /dev/log that
    leads to d/log.sock.  The host's /dev is untouched."""
    dev = os.path.join(d, "dev")
    os.makedirs(dev)
    steps = ["mount -t tmpfs -o mode=755 tmpfs %s" % dev]
    for n in ("null", "zero", "random", "urandom"):
        steps.append("touch %s/%s && mount --bind /dev/%s %s/%s" % (dev, n, n, dev, n))
    steps += ["ln -s %s/log.sock %s/log" % (d, dev), "mount --rbind %s /dev" % dev]
    return ["unshare", "--mount", "--", "sh", "-c", " && ".join(steps) + ' && exec "$0" "$@"']


def read_syslog(sock, lines, until, timeout):
    """Appends the datagrams on sock to lines until one contains `until`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        msg = sock.recv(4096).decode(errors="replace")
        lines.append(msg)
        if until in msg:
            return True
    h.fail("no syslog message with '%s' within %d s; got %r" % (until, timeout, lines))


def syslog_refusal(pki):
    """Detached (no -n) as a user, logging to syslog: the refusal reaches
    /dev/log, from the NTS-KE process, and so does the main process's
    account of its end."""
    uid, _ = h.ensure_user(USER)
    d = os.path.join(h.tmpdir(), "syslog")
    os.makedirs(d)
    os.chmod(h.tmpdir(), 0o711)
    os.chmod(d, 0o711)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(d, "log.sock"))
    os.chmod(os.path.join(d, "log.sock"), 0o666)  # syslog reconnects as the user
    conf = h.write_file("syslog.conf", "\n".join([
        "disable ntp", "listen 127.0.0.1:%d" % NTP_PORT, "local stratum 1", "nts enable",
        "nts cert %s" % pki.chain, "nts key %s" % pki.key,
        "nts-listen-on 127.0.0.1:%d" % KE_PORT]) + "\n")
    cmd = private_dev(d) + [h.NTSD_BIN, "-c", conf, "-x", "-s", os.path.join(d, "ntsd.sock"),
                            "-u", USER, "-d"]
    lines = []
    try:
        os.environ["LD_PRELOAD"] = PROBE
        try:
            r, _ = h.run_setpriv(cmd, timeout=20)
        finally:
            del os.environ["LD_PRELOAD"]
        h.log("ntsd detached: rc %d, stderr %r" % (r.returncode, r.stderr))
        h.check(r.returncode == 0, "ntsd did not detach: rc %d %r" % (r.returncode, r.stderr))
        read_syslog(sock, lines, "system call filter loaded (NTS-KE process)", 10)
        pids = h.pids_with_cmdline(conf)
        main_pid = [p for p in pids if h.child_pids(p)]
        h.check(len(pids) == 2 and len(main_pid) == 1, "ntsd processes %r" % pids)
        ke = h.child_pids(main_pid[0])[0]
        r = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert)
        h.check(cookies(r) == 0, "the KE completed although its key export was refused")
        ended = "NTS-KE process %d ended (killed by signal %d)" % (ke, SIGSYS)
        read_syslog(sock, lines, ended, 10)
        for ln in lines:
            h.log("syslog: %r" % ln)
        want = "<%d>ntsd[%d]: %s" % (3 * 8 + 3, ke, REFUSED)  # daemon.err
        h.check(want in lines, "no '%s' among the messages" % want)
        h.check(any(ln.startswith("<27>") and "ntsd[%d]: %s" % (main_pid[0], ended) in ln
                    for ln in lines), "the main process's error line is not daemon.err")
        h.check(h.sntp_query("127.0.0.1", NTP_PORT) is not None, "NTP not answered")
        st = h.proc_status(main_pid[0])
        h.check(st["Uid"].split()[0] == str(uid) and st["Seccomp"] == "2",
                "detached main process: Uid %s Seccomp %s" % (st["Uid"], st["Seccomp"]))
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in h.pids_with_cmdline(conf):
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
            h.wait_until(lambda: not h.pids_with_cmdline(conf), 5, "the detached ntsd to stop")
        sock.close()


def main():
    h.require_ours()
    h.check(os.path.exists(PROBE), "%s not built" % PROBE)
    pki = h.make_test_pki()
    bad_levels(pki)
    levels(pki)
    refused(pki)
    let_through(pki, "-1")
    let_through(pki, "0")
    syslog_refusal(pki)


h.run(main)
