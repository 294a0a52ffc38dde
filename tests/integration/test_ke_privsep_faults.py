#!/usr/bin/python3
"""The NTS-KE process under faults (docs/security.md, "The NTS-KE process",
"Restarts").

One private namespace, loopback: ntsd -u ntsd-test as an NTS server, NTS-KE
on 127.0.0.1:KE_PORT, NTP on 127.0.0.1:NTP_PORT.

Passes when:
  * a KE process that stops running its loop (SIGSTOP: it keeps its socket,
    so no EOF comes) is noticed: the main process logs that it stopped
    answering, kills it and starts a new one within 20 s; a KE works
    afterwards;
  * frames sent on the KE process's end of the socketpair (a copy taken with
    pidfd_getfd, as a compromised KE process would send them):
      - a flood of well-formed STATS frames for 2 s ends nothing, and NTS
        requests keep being answered meanwhile;
      - a datagram larger than any frame, a KEYS_ACK with the wrong length,
        and an acknowledgement of a key never sent each end the KE process
        with the reason logged; it is restarted each time;
    an NTS request with a cookie fetched at the start is answered after each;
  * SIGTERM or SIGINT sent to the KE process alone does not end it (it ends
    with the main process, whose signals those are); SIGTERM to the whole
    process group (systemd's default KillMode, ^C in a terminal is alike)
    ends both with no error logged; SIGTERM to the main process alone ends
    the KE process before the main process exits;
  * SIGKILL of the main process ends the KE process within 5 s, even a
    stopped one (its parent-death signal; a running one also reads EOF): no
    orphan keeps the NTS-KE port, and the next ntsd serves on it;
  * with close_range(2) refused (ENOSYS, through a seccomp filter put on
    ntsd from outside: as before Linux 5.9, or under a container runtime's
    filter without it), the KE process still holds none of the main
    process's sockets (it closes them one by one) and serves KEs.
"""
import ctypes
import os
import platform
import re
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14461, 11124
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
SYS_PIDFD_GETFD = 438  # the same number on every architecture
IPC_KEYS_ACK, IPC_STATS = 2, 3


def stats_n():
    """IPC_STATS_N, the counters in a STATS frame, from the header itself."""
    with open(os.path.join(h.SOURCE_DIR, "src", "proto", "ipc_msg.h")) as f:
        m = re.search(r"^#define IPC_STATS_N (\d+)", f.read(), re.M)
    return int(m.group(1))


STATS_N = stats_n()


def kefetch(pki):
    """One KE: (C2S key, cookie)."""
    return h.kefetch_keys(pki.ca_cert, KE_PORT)


def nts_answered(key, cookie, wait=1.0):
    pkt, xmt = nts_request(key, cookie)
    data = h.udp_exchange(pkt, xmt, ("127.0.0.1", NTP_PORT), wait)
    return data is not None and data[0] & 7 == 4


def ke_child(server):
    kids = h.child_pids(server.proc.pid)
    h.check(len(kids) == 1, "the server should have one child, its NTS-KE process: %r" % kids)
    return kids[0]


gone = h.pid_gone


def next_child(server, old, what):
    """Waits for the main process to log why `old` ended and for its
    successor; returns the new pid."""
    h.wait_until(lambda: re.search(r"NTS-KE process %d %s" % (old, what),
                                   server.proc.read_log()), 25,
                 "the main process to log 'NTS-KE process %d %s'" % (old, what))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1 and
                 ke_child(server) != old, 20, "a new NTS-KE process after %d" % old)
    new = ke_child(server)
    h.wait_until(lambda: "NTS-KE process %d started" % new in server.proc.read_log(), 5,
                 "NTS-KE process %d to be logged" % new)
    return new


def channel_fd(pid):
    """A copy of the KE process's end of its socketpair (the one
    SOCK_SEQPACKET socket it holds), taken with pidfd_getfd."""
    seqpacket = set()
    with open("/proc/net/unix") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if int(parts[4], 16) == socket.SOCK_SEQPACKET:
                seqpacket.add(int(parts[6]))
    target = None
    for fd in os.listdir("/proc/%d/fd" % pid):
        m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        if m and int(m.group(1)) in seqpacket:
            target = int(fd)
    h.check(target is not None, "no SOCK_SEQPACKET socket in NTS-KE process %d" % pid)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    pidfd = os.pidfd_open(pid)
    try:
        fd = libc.syscall(ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_int(pidfd),
                          ctypes.c_int(target), ctypes.c_uint(0))
    finally:
        os.close(pidfd)
    if fd < 0:
        h.skip("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
    return socket.socket(fileno=fd)


def frame(typ, body):
    return struct.pack(">HH", typ, len(body)) + body


def hang(server, pki, key, cookie):
    old = ke_child(server)
    os.kill(old, 19)  # SIGSTOP
    t0 = time.monotonic()
    h.check(nts_answered(key, cookie), "no NTS answer with the KE process stopped")
    new = next_child(server, old, r"stopped answering \(no acknowledgement within \d+ s\) "
                                  r"\(killed by signal 9\)")
    h.log("stopped NTS-KE process %d replaced by %d after %.1f s" % (
        old, new, time.monotonic() - t0))
    h.check(gone(old), "the stopped NTS-KE process %d is still there" % old)
    kefetch(pki)


def flood(server, key, cookie):
    pid = ke_child(server)
    ch = channel_fd(pid)
    ch.setblocking(False)
    body = struct.pack(">%dQ" % STATS_N, *([12345678] * STATS_N))
    sent, answered, asked = 0, 0, 0
    end = time.monotonic() + 2.0
    try:
        while time.monotonic() < end:
            for _ in range(200):
                try:
                    ch.send(frame(IPC_STATS, body))
                    sent += 1
                except BlockingIOError:
                    break
            asked += 1
            answered += nts_answered(key, cookie, wait=0.5)
    finally:
        ch.close()
    h.log("STATS flood: %d frames in 2 s; %d of %d NTS requests answered meanwhile" % (
        sent, answered, asked))
    h.check(answered == asked, "NTS requests went unanswered during the flood")
    h.check(ke_child(server) == pid, "well-formed frames ended the KE process")


def forged(server, key, cookie, data, what):
    pid = ke_child(server)
    ch = channel_fd(pid)
    try:
        ch.send(data)
    finally:
        ch.close()
    new = next_child(server, pid, r"sent a bad message \(%s\) \(killed by signal 9\)" % what)
    h.check(nts_answered(key, cookie), "no NTS answer after the forged frame")
    h.log("forged frame (%s): NTS-KE process %d ended, %d started" % (what, pid, new))


def term_ends_child(server):
    pid = ke_child(server)
    rc = server.proc.stop()
    h.check(rc in (0, -15), "the main process exited with rc %s on SIGTERM" % rc)
    h.check(gone(pid), "NTS-KE process %d outlived the main process's SIGTERM" % pid)
    h.log("SIGTERM: the main process exited (rc %s) after its NTS-KE process %d" % (rc, pid))


def group_stop(pki):
    server = h.NtsKeServer("server1", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    pid = ke_child(server)
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    time.sleep(1.5)
    h.check(not gone(pid) and ke_child(server) == pid,
            "SIGTERM or SIGINT to the KE process alone ended it")
    h.check("NTS-KE process %d ended" % pid not in server.proc.read_log(),
            "the main process logged the KE process's end")
    h._state["procs"].remove(server.proc)  # stopped here, checked here
    os.killpg(server.proc.pid, signal.SIGTERM)
    rc = server.proc.p.wait(5)
    server.proc.stop(quiet=True)
    h.check(rc == 0, "SIGTERM to the process group: the main process exited with rc %s" % rc)
    h.check(gone(pid), "SIGTERM to the process group: NTS-KE process %d is still there" % pid)
    ended = [ln for ln in server.proc.read_log().splitlines() if "NTS-KE process %d ended" % pid
             in ln or "error:" in ln]
    h.check(not ended, "SIGTERM to the process group: an error was logged: %r" % ended)
    h.check(not server.proc.crash_lines(), "crash lines: %r" % server.proc.crash_lines())
    h.log("SIGTERM to the process group: both processes ended, no error logged")


def kill_ends_child(pki):
    server = h.NtsKeServer("server2", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    pid = ke_child(server)
    h._state["procs"].remove(server.proc)  # killed on purpose below
    server.proc.p.kill()
    server.proc.p.wait(5)
    t0 = time.monotonic()
    h.wait_until(lambda: gone(pid), 5, "NTS-KE process %d to end with the main process" % pid)
    h.log("SIGKILL of the main process: NTS-KE process %d ended %.2f s later" % (
        pid, time.monotonic() - t0))


def kill_ends_stopped_child(pki):
    """A stopped KE process reads no EOF: its parent-death signal ends it,
    so it does not keep the NTS-KE port from the next ntsd."""
    server = h.NtsKeServer("stopped", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    pid = ke_child(server)
    os.kill(pid, signal.SIGSTOP)
    h._state["procs"].remove(server.proc)  # killed on purpose below
    server.proc.p.kill()
    server.proc.p.wait(5)
    h.wait_until(lambda: gone(pid), 5,
                 "stopped NTS-KE process %d to end with the main process" % pid)
    again = h.NtsKeServer("after-stopped", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(again.proc.pid)) == 1, 5, "the next NTS-KE process")
    kefetch(pki)
    h.check(again.proc.stop() == 0, "the next ntsd did not stop cleanly")
    h.log("SIGKILL of the main process with its KE process stopped: both gone, the port free")


class NoCloseRangeServer(h.NtsKeServer):
    def _start(self):
        # close_range fails with ENOSYS for ntsd and its NTS-KE process
        self.wrap = h.errno_wrapper("no_close_range", 436, 38)
        h.NtsKeServer._start(self)


def udp_inodes(port):
    out = set()
    with open("/proc/net/udp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if int(parts[1].split(":")[1], 16) == port:
                out.add(int(parts[9]))
    return out


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        if m:
            out.add(int(m.group(1)))
    return out


def without_close_range(pki):
    if platform.machine() != "x86_64":
        h.log("close_range check skipped: the filter is written for x86_64")
        return
    server = NoCloseRangeServer("server3", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    pid = ke_child(server)
    h.wait_until(lambda: "NTS-KE process %d serving" % pid in server.proc.read_log(), 5,
                 "NTS-KE process %d to serve" % pid)
    ntp, main, ke = udp_inodes(NTP_PORT), socket_inodes(server.proc.pid), socket_inodes(pid)
    h.check(ntp and ntp <= main, "the main process lacks its NTP socket")
    shared = main & ke
    h.log("without close_range: NTS-KE process %d holds %d descriptors, %d socket(s) shared "
          "with the main process" % (pid, len(os.listdir("/proc/%d/fd" % pid)), len(shared)))
    h.check(not (ntp & ke), "without close_range the KE process holds the NTP socket")
    h.check(len(shared) <= 2, "without close_range the KE process shares more than its "
            "listener and channel with the main process: %d sockets" % len(shared))
    h.check("close_range: Function not implemented; closing descriptors one by one" in
            server.proc.read_log(), "the close_range filter did not take effect")
    kefetch(pki)


def main():
    h.require_ours()
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    if cmac is None:
        h.skip("python3 cryptography (AES-CMAC) is needed to send NTS requests")
    if not hasattr(os, "pidfd_open"):
        h.skip("python3 without os.pidfd_open")
    h.ensure_user(USER)
    pki = h.make_test_pki()
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    key, cookie = kefetch(pki)
    hang(server, pki, key, cookie)
    flood(server, key, cookie)
    forged(server, key, cookie, frame(IPC_STATS, bytes(4092)), "trailing bytes")
    forged(server, key, cookie, frame(IPC_KEYS_ACK, bytes(8)), "bad length")
    forged(server, key, cookie, frame(IPC_KEYS_ACK, b"\xde\xad\xbe\xef"),
           "acknowledged a key not sent to it")
    kefetch(pki)
    term_ends_child(server)
    group_stop(pki)
    kill_ends_child(pki)
    kill_ends_stopped_child(pki)
    without_close_range(pki)


h.run(main)
