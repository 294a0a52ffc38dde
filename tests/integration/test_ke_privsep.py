#!/usr/bin/python3
"""The NTS-KE server in its own process (docs/security.md, "The NTS-KE
process").

One private namespace, loopback:
  server ntsd  -u ntsd-test: NTS-KE 127.0.0.1:KE_PORT, NTP 127.0.0.1:NTP_PORT,
               `nts rotate 60`
  chronyd      NTS client of the server, polling every second
  client ntsd  NTS client of the server, polling every second

Passes when:
  * the server has exactly one child, its NTS-KE process: Uid (all four)
    the user's, no capability in any set, NoNewPrivs 1, Seccomp 2 (its own
    filter), and none of the main process's NTP sockets or its control
    socket among its descriptors; the main process has Seccomp 2 too;
  * both clients synchronise over NTS;
  * after `kill -9` of the KE process the main process logs its end (killed
    by signal 9) and starts a new one within a few seconds; while none runs,
    an NTS request with a cookie fetched before the kill is answered, and the
    clients keep being answered; a KE begun during the gap completes
    (the listening socket stays open) and one after the restart works; the
    new process is as unprivileged as the first; `ntsctl nts` counts the
    KEs of both processes;
  * a cookie key rotation reaches the KE process (it logs the new key in
    use): a cookie fetched after it is sealed with the new key (its id) and
    the main process accepts it as current, while a cookie fetched before is
    still accepted (as old).
"""
import os
import re
import signal
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14460, 11123
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
MIN_EXCHANGES = 6


def kefetch(pki):
    """One KE: (C2S key, cookie)."""
    return h.kefetch_keys(pki.ca_cert, KE_PORT)


def nts_answered(key, cookie, wait=1.0):
    """Whether the server answers an NTS request carrying cookie."""
    pkt, xmt = nts_request(key, cookie)
    data = h.udp_exchange(pkt, xmt, ("127.0.0.1", NTP_PORT), wait)
    return data is not None and data[0] & 7 == 4


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", t)
        if m:
            out.add(int(m.group(1)))
    return out


def udp_inodes(port):
    """Inodes of the UDP sockets bound to port (/proc/net/udp)."""
    out = set()
    with open("/proc/net/udp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if int(parts[1].split(":")[1], 16) == port:
                out.add(int(parts[9]))
    return out


def ke_child(server):
    kids = h.child_pids(server.proc.pid)
    h.check(len(kids) == 1, "the server should have one child, its NTS-KE process: %r" % kids)
    return kids[0]


def check_ke_process(server, pid, uid):
    st = h.proc_status(pid)
    h.log("NTS-KE process %d: Uid %s CapPrm %s CapEff %s CapInh %s CapAmb %s NoNewPrivs %s "
          "Seccomp %s" % (pid, st["Uid"], st["CapPrm"], st["CapEff"], st["CapInh"],
                          st["CapAmb"], st["NoNewPrivs"], st["Seccomp"]))
    h.check(st["Uid"].split() == [str(uid)] * 4, "KE process Uid %s" % st["Uid"])
    for k in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
        h.check(int(st[k], 16) == 0, "KE process %s %s" % (k, st[k]))
    h.check(st["NoNewPrivs"] == "1", "KE process NoNewPrivs %s" % st["NoNewPrivs"])
    h.check(st["Seccomp"] == "2", "KE process Seccomp %s" % st["Seccomp"])
    h.check(h.proc_status(server.proc.pid)["Seccomp"] == "2", "main process without filter")
    ntp = udp_inodes(NTP_PORT)
    h.check(ntp, "no NTP socket found in /proc/net/udp")
    h.check(ntp <= socket_inodes(server.proc.pid), "the main process lacks its NTP socket")
    h.check(not (ntp & socket_inodes(pid)), "the KE process holds the NTP socket")
    fds = {}
    for x in os.listdir("/proc/%d/fd" % pid):
        try:
            fds[int(x)] = os.readlink("/proc/%d/fd/%s" % (pid, x))
        except OSError:
            pass
    h.log("NTS-KE process %d descriptors: %r" % (pid, sorted(fds.items())))
    # stdin/out/err, its socket to the main process, the listening socket,
    # (syslog's), and its own event loop's: epoll, eventfd, signal pipe.
    h.check(len(fds) <= 10, "the KE process holds more descriptors than it needs: %r" % fds)
    files = [t for fd, t in fds.items() if fd > 2 and t.startswith("/")]
    h.check(not files, "the KE process holds files: %r" % files)
    ctl = [t for t in socket_inodes(server.proc.pid)]
    h.check(len(socket_inodes(pid) & set(ctl)) <= 2,
            "the KE process shares more sockets with the main one than the listener and "
            "its channel: %r" % (socket_inodes(pid) & set(ctl)))


def synced(client, chrony):
    ps = client.peers()
    src = [s for s in chrony.sources() if s["name"] == "127.0.0.1"]
    return (ps and ps[0]["nts"] and ps[0]["accepted"] >= MIN_EXCHANGES and src
            and bin(src[0]["reach"]).count("1") >= MIN_EXCHANGES)


def kill_and_restart(server, pki, uid, client, chrony, key, cookie):
    old = ke_child(server)
    n0 = client.peers()[0]["accepted"]
    before = server.nts_stats()
    os.kill(old, signal.SIGKILL)
    t0 = time.monotonic()
    # While no KE process runs: NTS with an existing cookie is answered.
    h.check(nts_answered(key, cookie, wait=0.5), "no NTS answer right after the kill")
    gap_ok = h.child_pids(server.proc.pid) == []
    # A KE begun in the gap waits in the listening socket's backlog.
    res = {}
    t = threading.Thread(target=lambda: res.update(r=kefetch(pki)))
    t.start()
    want = "NTS-KE process %d ended (killed by signal 9); restarting it in 1 s" % old
    h.wait_until(lambda: want in server.proc.read_log(), 5, "the main process to log the kill")
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1 and
                 ke_child(server) != old, 5, "a new NTS-KE process")
    new = ke_child(server)
    h.wait_until(lambda: "NTS-KE process %d started" % new in server.proc.read_log(), 5,
                 "the new process to be logged")
    took = time.monotonic() - t0
    h.log("NTS-KE process %d killed; %d started %.2f s later (the gap checked: %s)" % (
        old, new, took, gap_ok))
    t.join(30)
    h.check("r" in res, "the KE begun during the restart did not complete")
    h.check(nts_answered(*res["r"]), "a cookie from the KE during the gap is not accepted")
    k2, c2 = kefetch(pki)
    h.check(nts_answered(k2, c2), "a cookie from the new KE process is not accepted")
    h.wait_until(lambda: client.peers()[0]["accepted"] >= n0 + 3, 20,
                 "the ntsd client to be answered across the restart")
    h.check(synced(client, chrony), "chronyd or the client lost synchronisation")
    check_ke_process(server, new, uid)
    h.wait_until(lambda: server.nts_stats()["ke_serves_good"] >= before["ke_serves_good"] + 2,
                 5, "ntsctl nts to count the KEs of both processes")


def key_rotation(server, pki, key_old, cookie_old):
    h.wait_until(lambda: "NTS cookie key rotated" in server.proc.read_log(), 90,
                 "a cookie key rotation (nts rotate 60)", interval=1.0)
    m = re.search(r"NTS cookie key rotated: key ([0-9a-f]{8}) in use", server.proc.read_log())
    new_id = m.group(1)
    h.wait_until(lambda: re.search(r"NTS-KE process \d+ uses cookie key %s" % new_id,
                                   server.proc.read_log()), 5,
                 "the KE process to acknowledge key %s" % new_id)
    key, cookie = kefetch(pki)
    h.check(cookie[:4].hex() == new_id, "cookie sealed with key %s, not the new %s" % (
        cookie[:4].hex(), new_id))
    before = server.nts_stats()
    h.check(nts_answered(key, cookie), "a cookie after the rotation is not accepted")
    h.check(nts_answered(key_old, cookie_old), "a cookie from before the rotation is refused")
    st = server.nts_stats()
    h.check(st["cookies_decoded"] >= before["cookies_decoded"] + 1 and
            st["cookies_decoded_old"] >= before["cookies_decoded_old"] + 1,
            "current and old cookies not counted as such: %r -> %r" % (before, st))
    h.log("key %s reached the KE process; its cookies are accepted" % new_id)


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    if cmac is None:
        h.skip("python3 cryptography (AES-CMAC) is needed to send NTS requests")
    uid, _ = h.ensure_user(USER)
    tmp = h.tmpdir()
    pki = h.make_test_pki()
    ca = os.path.join(tmp, "ca.pem")
    with open(pki.ca_cert) as f, open(ca, "w") as g:
        g.write(f.read())
    os.chmod(ca, 0o644)
    os.chmod(tmp, 0o711)
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, extra=["nts rotate 60"],
                           args=("-u", USER))
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    check_ke_process(server, ke_child(server), uid)
    chrony = h.Chronyd("chronyd", extra=[
        "ntstrustedcerts %s" % ca, "ntsdumpdir %s" % os.path.join(tmp, "chronyd"),
        "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT])
    client = h.Ntsd("client", ["nts ca %s" % ca,
                               "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT])
    h.wait_until(lambda: synced(client, chrony), 60, "both clients to synchronise over NTS",
                 interval=1.0)
    key, cookie = kefetch(pki)
    kill_and_restart(server, pki, uid, client, chrony, key, cookie)
    key_rotation(server, pki, key, cookie)
    h.check(synced(client, chrony), "a client lost synchronisation by the end")
    h.log("server counters at the end: %r" % server.nts_stats())


h.run(main)
