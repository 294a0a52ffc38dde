#!/usr/bin/python3
"""The service manager's notifications (docs/systemd.md, "Readiness and
status").

The test plays systemd's part: it owns a datagram socket, passes it to ntsd
as NOTIFY_SOCKET with WATCHDOG_USEC=1000000, and reads every notification
with the sender's credentials (SO_PASSCRED).  One private namespace,
loopback:

  nts     ntsd -u ntsd-test, system call filter on: NTS-KE 127.0.0.1:KE_PORT,
          NTP 127.0.0.1:NTP_PORT, `local stratum 1`
  plain   ntsd with NTP only, on 127.0.0.1:PLAIN_PORT, a client of nts's NTP

Passes when, for `nts`:
  * READY=1 arrives once, and when it arrives the daemon runs as the user
    with its filter loaded, its NTS-KE process has logged that it serves, a
    full NTS-KE (TLS) succeeds at once and the NTP port answers;
  * STATUS= lines are single lines saying what is served and how many
    sources are usable; after a kill of the NTS-KE process the status says
    it is restarting, then that it serves again, with no second READY=1;
  * WATCHDOG=1 comes every half second or so (half of WATCHDOG_USEC);
  * on SIGTERM STOPPING=1 arrives and ntsd exits with 0;
  * every notification comes from the main process (the NTS-KE process,
    forked from it, never sends: the unit's NotifyAccess=main);
and for `plain`, whose NOTIFY_SOCKET is an abstract name ("@...") and whose
WATCHDOG_PID names another process: READY=1 arrives with the NTP port
answering at once, its STATUS names the source it is synchronised to, no
WATCHDOG=1 is sent (the keep-alives are asked of another process), and
STOPPING=1 comes on SIGTERM.

And when the manager's queue is full (net.unix.max_dgram_qlen 0 in the
test's namespace: one datagram at a time) and it reads nothing for 1.5 s
after the daemon starts, READY=1 still arrives once it reads: a state
change waits for room (as libsystemd's sd_notify does) instead of being
dropped, which would have a real unit killed at its start timeout.

And when every NTS-KE process ends before its first report (`ntsprocesses
2`, prctl(PR_SET_PDEATHSIG) made to fail by a filter put on ntsd from
outside), READY=1 still comes, with a STATUS saying the NTS-KE process
restarts, and NTP answers.
"""
import os
import platform
import re
import select
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT, PLAIN_PORT = 14461, 11124, 11125
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
WATCHDOG_USEC = 1000000


class Listener:
    """The service manager's end: a datagram socket ntsd sends to."""

    def __init__(self, path):
        self.path = path  # "@name": in the abstract namespace
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if path.startswith("@"):
            self.s.bind("\0" + path[1:])
        else:
            self.s.bind(path)
            os.chmod(path, 0o666)  # ntsd sends after its drop to the user
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.msgs = []  # (monotonic time, sender pid, {key: value})

    def poll(self, timeout=0.0):
        """Reads what has arrived (waiting up to timeout for the first)."""
        new = []
        wait = timeout
        while select.select([self.s], [], [], wait)[0]:
            wait = 0
            data, anc, _, _ = self.s.recvmsg(4096, socket.CMSG_SPACE(12))
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", cdata[:12])[0]
            text = data.decode("utf-8", "replace")
            fields = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
            m = (time.monotonic(), pid, fields)
            self.msgs.append(m)
            new.append(m)
            if "WATCHDOG" not in fields:
                h.log("notify from pid %s: %r" % (pid, text))
        return new

    def with_key(self, key):
        return [m for m in self.msgs if key in m[2]]

    def wait_for(self, pred, timeout, what, since=0):
        """The first message from index `since` on for which pred holds,
        polling for new ones until the deadline."""
        deadline = time.monotonic() + timeout
        i = since
        while True:
            for m in self.msgs[i:]:
                if pred(m):
                    return m
            i = len(self.msgs)
            if time.monotonic() >= deadline:
                h.fail("timed out after %.0f s waiting for %s" % (timeout, what))
            self.poll(0.2)
            h.check_all_alive()


def start(name, conf_lines, listener, args=(), env_extra=None, wrap=()):
    d = os.path.join(h.tmpdir(), name)
    os.makedirs(d, mode=0o700)
    conf = os.path.join(d, "ntp.conf")
    with open(conf, "w") as f:
        f.write("\n".join(["disable ntp"] + conf_lines) + "\n")
    env = dict(os.environ, NOTIFY_SOCKET=listener.path, WATCHDOG_USEC=str(WATCHDOG_USEC))
    env.pop("WATCHDOG_PID", None)
    env.update(env_extra or {})
    cmd = list(wrap) + [h.NTSD_BIN, "-c", conf, "-n", "-x", "-d", "-s",
                        os.path.join(d, "ntsd.sock")]
    return h.start_process(name, cmd + list(args), kind="ours", env=env)


def kefetch(pki):
    r = h.run_cmd([KEFETCH, "-c", pki.ca_cert, "-t", "5", "127.0.0.1", str(KE_PORT)],
                  timeout=10)
    return r.returncode == 0 and re.fullmatch(r"15 [0-9A-F]+,[0-9A-F]+\n", r.stdout)


def is_ready(m):
    return m[2].get("READY") == "1"


def check_ready_nts(proc, lst, pki):
    """READY=1 only once the daemon serves: checked the moment it arrives."""
    lst.wait_for(is_ready, 20, "READY=1 from the NTS server")
    log = proc.read_log()
    h.check(re.search(r"running as user %s" % USER, log),
            "READY=1 before the privilege drop was logged")
    h.check("system call filter loaded (main process" in log,
            "READY=1 before the main process's filter was loaded")
    h.check(re.search(r"NTS-KE process \d+ serving", log),
            "READY=1 before the NTS-KE process said it serves")
    h.check(kefetch(pki), "READY=1 arrived but an NTS-KE right after it failed")
    h.check(h.sntp_query("127.0.0.1", NTP_PORT) is not None,
            "READY=1 arrived but the NTP port did not answer")
    h.log("READY=1 arrived with the NTS-KE and NTP ports serving")


def check_status(lst, proc):
    st = lst.wait_for(lambda m: "serving NTP, NTS-KE" in m[2].get("STATUS", ""), 10,
                      "a STATUS saying NTP and NTS-KE are served")
    h.check(re.search(r"\d+ of \d+ sources usable", st[2]["STATUS"]),
            "STATUS does not count the sources: %r" % st[2]["STATUS"])
    kids = h.child_pids(proc.pid)
    h.check(len(kids) == 1, "expected one NTS-KE process, found %r" % kids)
    since = len(lst.msgs)
    os.kill(kids[0], signal.SIGKILL)
    lst.wait_for(lambda m: "NTS-KE process restarting" in m[2].get("STATUS", ""), 5,
                 "a STATUS saying the NTS-KE process restarts", since)
    since = len(lst.msgs)
    lst.wait_for(lambda m: m[2].get("STATUS", "").endswith("serving NTP, NTS-KE; "
                                                          "clock control off"), 10,
                 "a STATUS saying NTS-KE is served again", since)
    h.check(len(lst.with_key("READY")) == 1, "READY=1 sent again after the restart")


def check_watchdog(lst):
    t0 = time.monotonic()
    n0 = len(lst.with_key("WATCHDOG"))
    while time.monotonic() - t0 < 3.0:
        lst.poll(0.2)
    dogs = [m[0] for m in lst.with_key("WATCHDOG")][n0:]
    h.check(all(m[2]["WATCHDOG"] == "1" for m in lst.with_key("WATCHDOG")),
            "a WATCHDOG message other than WATCHDOG=1")
    h.check(len(dogs) >= 4, "%d WATCHDOG=1 in 3 s (expected about 6)" % len(dogs))
    gaps = [b - a for a, b in zip(dogs, dogs[1:])]
    h.check(all(0.3 < g < 0.8 for g in gaps), "keep-alive gaps %r (expected ~0.5 s)" % gaps)
    h.log("%d keep-alives in 3 s, gaps %.2f..%.2f s" % (len(dogs), min(gaps), max(gaps)))


def check_stopping(proc, lst):
    proc.stop()
    lst.poll(0.5)
    stops = lst.with_key("STOPPING")
    h.check(len(stops) == 1 and stops[0][2]["STOPPING"] == "1", "no STOPPING=1 on SIGTERM")
    h.check(proc.rc == 0, "ntsd exited with %s on SIGTERM" % proc.rc)
    h.check("shutting down" in stops[0][2].get("STATUS", ""),
            "STOPPING=1 without a status saying why")


def check_senders(proc, lst):
    pids = {m[1] for m in lst.msgs}
    h.check(pids == {proc.pid}, "notifications from pids %r, not only the main process %d" % (
        pids, proc.pid))
    for m in lst.msgs:
        h.check("\n" not in m[2].get("STATUS", ""), "a multi-line STATUS")


def start_plain(tmp):
    """The plain server, a client of the NTS server's NTP port."""
    lst = Listener("@ntsd-test-notify-%d" % os.getpid())
    proc = start("plain", ["listen 127.0.0.1:%d" % PLAIN_PORT,
                           "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % NTP_PORT], lst,
                 env_extra={"WATCHDOG_PID": str(os.getpid())})
    lst.wait_for(is_ready, 20, "READY=1 from the plain NTP server")
    h.check(h.sntp_query("127.0.0.1", PLAIN_PORT) is not None,
            "READY=1 arrived but the NTP port did not answer")
    return proc, lst


def check_plain(proc, lst):
    want = "synchronised to 127.0.0.1:%d; 1 of 1 sources usable; serving NTP" % NTP_PORT
    lst.wait_for(lambda m: m[2].get("STATUS", "").startswith(want), 20,
                 "the plain server's STATUS '%s'" % want)
    h.check(not lst.with_key("WATCHDOG"),
            "WATCHDOG=1 from the plain server, whose WATCHDOG_PID names another process")
    check_stopping(proc, lst)
    check_senders(proc, lst)


QLEN = "/proc/sys/net/unix/max_dgram_qlen"


def check_full_queue(tmp):
    with open(QLEN) as f:
        old = f.read().strip()
    with open(QLEN, "w") as f:
        f.write("0")  # the listener made next takes it: one datagram queued at most
    try:
        lst = Listener(os.path.join(tmp, "notify", "full.sock"))
    finally:
        with open(QLEN, "w") as f:
            f.write(old)
    proc = start("full", ["listen 127.0.0.1:%d" % (PLAIN_PORT + 1), "local stratum 1"], lst)
    time.sleep(1.5)  # the manager is busy: the daemon's first datagram fills the queue
    lst.wait_for(is_ready, 10, "READY=1 through a full queue")
    h.log("READY=1 arrived through a full queue: %r" % [sorted(m[2]) for m in lst.msgs])
    check_stopping(proc, lst)


def check_ke_never_serves(tmp, pki):
    """KE processes that all end before their first report: the daemon
    still says it is ready (NTP is served), with a status saying NTS-KE
    restarts, rather than never, which would have systemd kill it."""
    if platform.machine() != "x86_64":
        h.log("not x86_64: the KE-process-never-serves case is not run")
        return
    # prctl(PR_SET_PDEATHSIG) fails with EPERM: only an NTS-KE process sets
    # that signal, first thing, so every one ends before it reports.
    wrap = h.errno_wrapper("no_pdeathsig", 157, 1, arg0=1)
    lst = Listener(os.path.join(tmp, "notify", "nope.sock"))
    proc = start("nope", ["listen 127.0.0.1:%d" % (PLAIN_PORT + 2), "local stratum 1",
                          "nts enable", "nts cert %s" % pki.chain, "nts key %s" % pki.key,
                          "nts-listen-on 127.0.0.1:%d" % (KE_PORT + 1), "ntsprocesses 2"],
                 lst, wrap=wrap)
    lst.wait_for(is_ready, 10, "READY=1 with every NTS-KE process ending before it serves")
    lst.wait_for(lambda m: "NTS-KE process restarting" in m[2].get("STATUS", ""), 5,
                 "a STATUS saying the NTS-KE process restarts")
    h.check("cannot set the parent-death signal" in proc.read_log(),
            "the KE processes did not end the way the filter makes them")
    h.check(h.sntp_query("127.0.0.1", PLAIN_PORT + 2) is not None,
            "READY=1 arrived but the NTP port did not answer")
    h.log("KE processes ending before they serve: READY=1 and 'NTS-KE process restarting'")
    check_stopping(proc, lst)


def main():
    h.require_ours()
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    h.ensure_user(USER)
    tmp = h.tmpdir()
    os.chmod(tmp, 0o711)
    os.makedirs(os.path.join(tmp, "notify"), mode=0o711)
    pki = h.make_test_pki()
    lst = Listener(os.path.join(tmp, "notify", "nts.sock"))
    proc = start("nts", ["listen 127.0.0.1:%d" % NTP_PORT, "local stratum 1", "nts enable",
                         "nts cert %s" % pki.chain, "nts key %s" % pki.key,
                         "nts-listen-on 127.0.0.1:%d" % KE_PORT], lst, args=("-u", USER))
    check_ready_nts(proc, lst, pki)
    plain = start_plain(tmp)
    check_status(lst, proc)
    check_watchdog(lst)
    check_plain(*plain)
    check_stopping(proc, lst)
    check_senders(proc, lst)
    check_full_queue(tmp)
    check_ke_never_serves(tmp, pki)


h.run(main)
