#!/usr/bin/python3
"""NTP served by packet threads (`threads 2`; docs/architecture.md, "Packet
threads").

One private namespace, loopback:
  server   ntsd -u ntsd-test, `threads 2`: NTS-KE 127.0.0.1:KE_PORT, NTP
           127.0.0.1:NTP_PORT (plain and NTS), `nts cookie-secret` with
           `nts rotate 60`; its virtual clock (--virtual-clock; the system
           clock is never touched) set so that an epoch boundary, hence a
           cookie key rotation, comes some 10 s after the start
  chronyd  4.3, NTS client of the server, polling every second

Passes when:
  * /proc/PID/task holds the main thread and the two packet threads
    (named ntsd-ntp0 and ntsd-ntp1), and
    every thread has Seccomp 2 and no capability in any set;
  * 300 plain clients, each on its own source port (on 127.0.0.1-.3), are
    all answered, and `ntsctl server --json` shows both threads with a
    share of them, the threads' counts summing to the total (and the text
    output both counts);
  * NTS requests from fresh source ports with a cookie fetched before the
    rotation are all answered with NTS (no NAK, no loss) from before to
    after it, a cookie fetched after it is accepted, both threads answered
    NTS, and `ntsctl nts` counts 0 NAKs;
  * chronyd synchronises over NTS from it;
  * a SIGHUP with `threads 3` names `threads` as not applied, and the two
    threads serve on;
  * no packet thread blocks SIGSYS or the other fault signals (a blocked
    SIGSYS would let the kernel kill the daemon without the filter's
    handler: no log line, core dumps left on);
  * with -P 1 -m (another daemon, plain NTP only, `threads 2`): every
    packet thread runs SCHED_FIFO like the main thread (SCHED_RESET_ON_FORK
    keeps new threads from inheriting it: they take it themselves), and
    `threads 2` keeps less than 6 MB more resident than `threads 1` (a
    packet thread's stack is 256 KiB, not the 8 MiB default, all of which
    mlockall would lock and so make resident: 18 MB more before).  Skipped with a line where real-time scheduling
    or memory locking is refused to the test.
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
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 15460, 15123
PERIOD = 60
LEAD = 10  # s from the start to the epoch boundary
MIN_EXCHANGES = 4
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")


def virtual_offset():
    """An offset for the server's clock putting it LEAD s before an epoch
    boundary, within PERIOD / 2 of the real time."""
    off = (PERIOD - LEAD) - time.time() % PERIOD
    return off - PERIOD if off > PERIOD / 2 else off


def check_threads(pid):
    tasks = sorted(os.listdir("/proc/%d/task" % pid))
    h.log("server threads: %s" % tasks)
    h.check(len(tasks) == 3, "expected the main thread and 2 packet threads: %r" % tasks)
    names = sorted(h.proc_status(pid, t)["Name"] for t in tasks[1:])
    h.check(names == ["ntsd-ntp0", "ntsd-ntp1"], "packet threads named %r" % names)
    for t in tasks:
        st = h.proc_status(pid, t)
        h.log("thread %s (%s): Seccomp %s CapPrm %s CapEff %s CapInh %s CapAmb %s" % (
            t, st["Name"], st["Seccomp"], st["CapPrm"], st["CapEff"], st["CapInh"],
            st["CapAmb"]))
        h.check(st["Seccomp"] == "2", "thread %s: Seccomp %s" % (t, st["Seccomp"]))
        for k in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
            h.check(int(st[k], 16) == 0, "thread %s: %s %s" % (t, k, st[k]))


FAULTS = {"SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGBUS": 7, "SIGFPE": 8, "SIGSEGV": 11,
          "SIGSYS": 31}


def check_signal_masks(pid):
    for t in sorted(os.listdir("/proc/%d/task" % pid))[1:]:
        blk = int(h.proc_status(pid, t)["SigBlk"], 16)
        blocked = [n for n, sig in FAULTS.items() if blk & (1 << (sig - 1))]
        h.check(not blocked, "thread %s blocks %s" % (t, blocked))
    h.log("no packet thread blocks a fault signal")


def sched_policy(pid, tid):
    with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
        return int(f.read().rsplit(")", 1)[1].split()[38])  # field 41: policy


def rt_daemon(name, port, threads):
    d = h.Ntsd(name, ["listen 127.0.0.1:%d" % port, "local stratum 1",
                      "threads %d" % threads], args=("-P", "1", "-m"))
    log = d.proc.read_log()
    if "cannot run at real-time priority" in log or "cannot lock memory" in log:
        d.proc.stop()
        return None
    return d


def check_realtime():
    one = rt_daemon("rt1", NTP_PORT + 10, 1)
    two = rt_daemon("rt2", NTP_PORT + 11, 2) if one else None
    if not two:
        h.log("SKIP (-P -m part): real-time scheduling or memory locking refused here")
        if one:
            one.proc.stop()
        return
    pid = two.proc.pid
    policies = {t: sched_policy(pid, t) for t in sorted(os.listdir("/proc/%d/task" % pid))}
    h.log("-P 1: scheduling policy per thread %r (1: SCHED_FIFO)" % policies)
    h.check(all(p == 1 for p in policies.values()), "a thread not SCHED_FIFO: %r" % policies)
    # VmRSS, not VmLck: VmLck also counts the C library's per-thread malloc
    # arenas, reserved without access and so never resident
    rss = [int(h.proc_status(d.proc.pid)["VmRSS"].split()[0]) for d in (one, two)]
    h.log("-m: VmRSS threads 1 %d kB, threads 2 %d kB" % tuple(rss))
    h.check(rss[1] - rss[0] < 6144, "threads 2 keeps %d kB more resident than threads 1"
            % (rss[1] - rss[0]))
    for d in (one, two):
        d.proc.stop()


def plain_clients(n):
    """n requests, each from its own socket; how many were answered."""
    socks = {}
    for i in range(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.%d" % (1 + i % 3), 0))
        c.setblocking(False)
        c.sendto(h.client_packet()[0], ("127.0.0.1", NTP_PORT))
        socks[c.fileno()] = c
    answered = 0
    deadline = time.monotonic() + 3.0
    while socks and time.monotonic() < deadline:
        rd, _, _ = select.select(list(socks.values()), [], [], 0.2)
        for c in rd:
            if len(c.recv(4096)) >= 48:
                answered += 1
            del socks[c.fileno()]
            c.close()
    for c in socks.values():
        c.close()
    return answered


def nts_answer(key, cookie):
    """'nts', 'nak' or None for one NTS request from a fresh port."""
    pkt, xmt = nts_request(key, cookie)
    data = h.udp_exchange(pkt, xmt, ("127.0.0.1", NTP_PORT), 1.0)
    if data is None:
        return None
    if data[1] == 0 and data[12:16] == b"NTSN":
        return "nak"
    return "nts" if len(data) > 48 else "plain"


def through_rotation(server, key, cookie):
    """NTS requests with a cookie from before the rotation until 2 s after
    it; the outcomes counted."""
    seen = {}
    deadline = time.monotonic() + LEAD + PERIOD / 10 + 8
    rotated_at = None
    while time.monotonic() < deadline:
        r = nts_answer(key, cookie)
        seen[r] = seen.get(r, 0) + 1
        if rotated_at is None and "NTS cookie key rotated" in server.proc.read_log():
            rotated_at = time.monotonic()
        if rotated_at is not None and time.monotonic() > rotated_at + 2:
            break
        time.sleep(0.02)
    h.log("NTS requests through the rotation: %r" % seen)
    h.check(rotated_at is not None, "no cookie key rotation in time")
    h.check(set(seen) == {"nts"}, "an NTS request was not answered with NTS: %r" % seen)


def synced(chrony):
    src = [s for s in chrony.sources() if s["name"] == "127.0.0.1"]
    return src and bin(src[0]["reach"]).count("1") >= MIN_EXCHANGES


def reload_threads(server):
    with open(server.conf) as f:
        text = f.read()
    with open(server.conf, "w") as f:
        f.write(text.replace("threads 2", "threads 3"))
    os.chmod(server.dir, 0o711)  # the daemon reads it as its user
    os.chmod(server.conf, 0o644)
    os.kill(server.proc.pid, signal.SIGHUP)
    want = "reload: threads changed: not applied until a restart"
    h.wait_until(lambda: want in server.proc.read_log(), 5, "the reload to name threads")
    h.check(len(server.server()["threads"]) == 2, "threads changed on reload")
    h.check(plain_clients(20) == 20, "not served after the reload")


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    if cmac is None:
        h.skip("python3 cryptography (AES-CMAC) is needed to send NTS requests")
    h.ensure_user(USER)
    tmp = h.tmpdir()
    pki = h.make_test_pki()
    ca = os.path.join(tmp, "ca.pem")
    with open(pki.ca_cert) as f, open(ca, "w") as g:
        g.write(f.read())
    os.chmod(ca, 0o644)
    os.chmod(tmp, 0o711)
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(secret, 0o600)
    for a in ("127.0.0.2", "127.0.0.3"):
        h.run_cmd(["ip", "addr", "add", "%s/8" % a, "dev", "lo"])
    off = virtual_offset()
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, debug=False, extra=[
        "threads 2", "nts cookie-secret %s" % secret, "nts rotate %d" % PERIOD],
        args=("-u", USER, "--virtual-clock", "%.3f" % off))
    h.check("serving NTP on 127.0.0.1:%d (2 threads)" % NTP_PORT in server.proc.read_log(),
            "the server does not say it serves with 2 threads")
    check_threads(server.proc.pid)
    chrony = h.Chronyd("chronyd", extra=[
        "ntstrustedcerts %s" % ca, "ntsdumpdir %s" % os.path.join(tmp, "chronyd"),
        "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT])

    n = plain_clients(300)
    s = server.server()
    h.log("plain: %d of 300 answered; per thread %r" % (n, s["threads"]))
    h.check(n == 300, "plain clients answered: %d of 300" % n)
    h.check(len(s["threads"]) == 2, "ntsctl server lists %d threads" % len(s["threads"]))
    h.check(all(t["received"] > 0 for t in s["threads"]), "a thread served nobody: %r" % s)
    h.check(sum(t["received"] for t in s["threads"]) == s["received"],
            "the threads' counts do not sum to the total: %r" % s)
    text = server.ctl("server")  # chronyd polls on meanwhile: counts only grow
    m = re.search(r"^threads: +2 \(received (\d+) / (\d+)\)$", text, re.M)
    h.check(m and all(int(m.group(i + 1)) >= t["received"] for i, t in
                      enumerate(s["threads"])), "ntsctl server's threads line:\n%s" % text)

    key, cookie = h.kefetch_keys(pki.ca_cert, KE_PORT)
    through_rotation(server, key, cookie)
    key2, cookie2 = h.kefetch_keys(pki.ca_cert, KE_PORT)
    h.check(cookie2[:4] != cookie[:4], "the cookie after the rotation has the old key id")
    h.check(nts_answer(key2, cookie2) == "nts", "a cookie after the rotation is refused")
    h.wait_until(lambda: synced(chrony), 20, "chronyd to synchronise over NTS", interval=1.0)
    s = server.server()
    h.log("per thread after NTS: %r" % s["threads"])
    h.check(all(t["respond_nts"] > 0 for t in s["threads"]), "a thread answered no NTS: %r" % s)
    naks = server.nts_stats()["server_naks"]
    h.check(naks == 0, "%d NTS NAKs sent" % naks)
    reload_threads(server)
    check_threads(server.proc.pid)
    check_signal_masks(server.proc.pid)
    h.check(not re.search(r"seccomp|refused by the system call filter",
                          server.proc.read_log()), "a system call was refused")
    check_realtime()


h.run(main)
