#!/usr/bin/python3
"""`ntsprocesses N`: several NTS-KE processes side by side (docs/security.md,
"The NTS-KE process"; docs/configuration.md).

One private namespace, loopback: ntsd -u ntsd-test as an NTS server with
`ntsprocesses 3`, NTS-KE on 127.0.0.1:KE_PORT, NTP on 127.0.0.1:NTP_PORT.

Passes when:
  * the main process forks three KE processes, each running as the test
    user with no capability, and each acknowledges the cookie key;
  * KEs succeed, and NTS requests with their cookies are answered, with any
    two of the three stopped (SIGSTOP): each of the three serves on the
    shared listening socket by itself;
  * `ntsctl nts` says three KE processes serve and counts the KEs of all
    three (their reports are summed);
  * a KE process killed is logged and restarted in its slot alone: the
    other two keep their pids and KEs succeed meanwhile;
    `ntsd_ke_processes_serving` (metrics) says 3, 2 right after the kill,
    3 again once the new one serves;
  * a reload that replaces the KE processes (new `restrict` lines)
    replaces all three, each logged, and three serve again afterwards;
  * a reload that changes `ntsprocesses` is named in a warning (a restart
    applies it) and the count stays;
  * eight such reloads in quick succession leave three serving KE
    processes and no replaced one, and KEs work;
  * SIGTERM ends the main process and all three.
"""
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT, METRICS_PORT = 14471, 11134, 19134
N = 3


def gauge(name):
    return h.metric_sample(METRICS_PORT, name)


def kids(server):
    return sorted(h.child_pids(server.proc.pid))


def wait_kids(server, what, exclude=()):
    """The KE processes once N run (none of `exclude`) and each serves."""
    h.wait_until(lambda: len(kids(server)) == N and not set(kids(server)) & set(exclude),
                 20, what)
    pids = kids(server)
    h.wait_until(lambda: all("NTS-KE process %d serving" % p in server.proc.read_log()
                             for p in pids), 10, "every KE process to serve")
    return pids


def ke_and_ntp(pki, what):
    key, cookie = h.kefetch_keys(pki.ca_cert, KE_PORT)
    pkt, xmt = nts_request(key, cookie)
    data = h.udp_exchange(pkt, xmt, ("127.0.0.1", NTP_PORT), 1.0)
    h.check(data is not None and data[0] & 7 == 4, "no NTS answer %s" % what)


gone = h.pid_gone


def each_serves_alone(server, pki, pids):
    for alone in pids:
        others = [p for p in pids if p != alone]
        for p in others:
            os.kill(p, signal.SIGSTOP)
        try:
            for _ in range(3):
                ke_and_ntp(pki, "with only KE process %d running" % alone)
        finally:
            for p in others:
                os.kill(p, signal.SIGCONT)
        h.log("KE process %d served 3 KEs with the other two stopped" % alone)


def served(server):
    st = server.nts_stats()
    return st.get("ke_serves_good", 0)


def kill_one(server, pki, pids):
    victim = pids[1]
    os.kill(victim, signal.SIGKILL)
    # The restart comes 1 s after the end: the gauge says N - 1 meanwhile.
    h.wait_until(lambda: gauge("ntsd_ke_processes_serving") == N - 1, 3,
                 "ntsd_ke_processes_serving to say %d after the kill" % (N - 1), interval=0.05)
    h.wait_until(lambda: re.search(r"NTS-KE process %d .*restarting it in 1 s" % victim,
                                   server.proc.read_log()), 10,
                 "the main process to log KE process %d's end" % victim)
    ke_and_ntp(pki, "right after KE process %d was killed" % victim)
    now = wait_kids(server, "a new KE process in the killed one's slot", exclude=(victim,))
    kept = set(pids) - {victim}
    h.check(kept <= set(now), "the other KE processes changed: %r -> %r" % (pids, now))
    h.wait_until(lambda: gauge("ntsd_ke_processes_serving") == N, 5,
                 "ntsd_ke_processes_serving to be %d again" % N)
    h.log("killed KE process %d; restarted alone: %r -> %r" % (victim, pids, now))
    return now


def reload_replaces(server, pki, pids):
    with open(server.conf) as f:
        text = f.read()
    before = len(re.findall("replaces process", server.proc.read_log()))
    with open(server.conf, "w") as f:
        f.write(text + "restrict 127.0.0.9 ignore\nntsprocesses 5\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    h.wait_until(lambda: len(re.findall("replaces process", server.proc.read_log()))
                 == before + N, 10, "%d KE processes to be replaced" % N)
    now = wait_kids(server, "%d new KE processes after the reload" % N, exclude=pids)
    h.wait_until(lambda: all(gone(p) for p in pids), 15, "the replaced KE processes to end")
    log = server.proc.read_log()
    h.check("reload: ntsprocesses changed: not applied until a restart" in log,
            "no warning that ntsprocesses needs a restart")
    ke_and_ntp(pki, "after the reload")
    h.log("reload: %r replaced by %r; ntsprocesses 5 warned about, still %d" % (
        pids, now, len(now)))
    return now


def reload_storm(server, pki, pids):
    """Eight replacements of all three in quick succession: replaced
    processes pile up (at most 4 per slot are kept, the excess ended), then
    N processes serve again, no replaced one is left, and KEs work."""
    with open(server.conf) as f:
        text = f.read()
    before = len(re.findall("replaces process", server.proc.read_log()))
    for i in range(8):
        with open(server.conf, "w") as f:
            f.write(text + "restrict 127.0.1.%d ignore\n" % (i + 1))
        os.kill(server.proc.pid, signal.SIGHUP)
        time.sleep(0.02)
    h.wait_until(lambda: len(re.findall("replaces process", server.proc.read_log()))
                 >= before + N, 10, "the KE processes to be replaced")
    now = wait_kids(server, "%d KE processes after the reloads" % N, exclude=pids)
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == N, 15,
                 "every replaced KE process to end")
    for _ in range(3):
        ke_and_ntp(pki, "after eight reloads")
    h.check(not server.proc.crash_lines(), "crash lines: %r" % server.proc.crash_lines())
    h.log("eight reloads: %d replacements logged, %r serve, none replaced left" % (
        len(re.findall("replaces process", server.proc.read_log())) - before, now))
    return now


def main():
    h.require_ours()
    if cmac is None:
        h.skip("python3 cryptography (AES-CMAC) is needed to send NTS requests")
    h.ensure_user(USER)
    pki = h.make_test_pki()
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, args=("-u", USER),
                           extra=("ntsprocesses %d" % N, "metrics 127.0.0.1:%d" % METRICS_PORT))
    # What a reload reads again, readable by the dropped user (test files).
    for d in (h.tmpdir(), os.path.dirname(server.conf), os.path.dirname(pki.chain)):
        os.chmod(d, 0o711)
    for f in (server.conf, pki.chain, pki.key):
        os.chmod(f, 0o644)
    pids = wait_kids(server, "%d NTS-KE processes" % N)
    h.wait_until(lambda: all("NTS-KE process %d uses cookie key" % p in server.proc.read_log()
                             for p in pids), 10, "every KE process to acknowledge its key")
    uid = os.stat("/proc/%d" % pids[0]).st_uid
    for p in pids:
        st = h.proc_status(p)
        h.check(st["CapEff"] == "0000000000000000", "KE process %d has capabilities %s" % (
            p, st["CapEff"]))
        h.check(os.stat("/proc/%d" % p).st_uid == uid != 0, "KE process %d runs as root" % p)
    h.check(gauge("ntsd_ke_processes") == N, "metrics: ntsd_ke_processes %r" %
            gauge("ntsd_ke_processes"))
    # Each logs that it serves just before its first report.
    h.wait_until(lambda: gauge("ntsd_ke_processes_serving") == N, 5,
                 "metrics: ntsd_ke_processes_serving %d" % N)
    h.log("%d KE processes %r, uid %d, no capability; metrics say %d serve" % (
        N, pids, uid, N))

    each_serves_alone(server, pki, pids)
    # Reports follow a process's KEs within a tenth of a second, and a
    # stopped process's only once it runs again: wait for all of them.
    h.wait_until(lambda: served(server) >= 3 * N, 5, "ntsctl nts to count the %d KEs" % (3 * N))
    for _ in range(6):
        ke_and_ntp(pki, "with all three running")
    h.wait_until(lambda: served(server) >= 3 * N + 6, 5,
                 "ntsctl nts to count %d KEs (the sum over the KE processes)" % (3 * N + 6))
    h.check(server.nts_stats().get("ke_processes") == N, "ntsctl nts --json: ke_processes "
            "is %r, not %d" % (server.nts_stats().get("ke_processes"), N))
    h.log("ntsctl nts: ke_processes %d, ke_serves_good %d (sum over the KE processes)" % (
        N, served(server)))

    pids = kill_one(server, pki, pids)
    pids = reload_replaces(server, pki, pids)
    pids = reload_storm(server, pki, pids)

    rc = server.proc.stop()
    h.check(rc in (0, -15), "the main process exited with rc %s on SIGTERM" % rc)
    h.check(all(gone(p) for p in pids), "a KE process outlived the main process")
    h.check(not server.proc.crash_lines(), "crash lines: %r" % server.proc.crash_lines())
    h.log("SIGTERM: the main process and its %d KE processes ended" % N)


h.run(main)
