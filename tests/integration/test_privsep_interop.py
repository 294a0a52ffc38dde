#!/usr/bin/python3
"""Least privilege while serving (docs/security.md, "Tests"): ntsd started
as root with `-u ntsd-test` serves NTS to chronyd 4.3 and NTPsec at once,
its system call filters on (the default), and every thread of both its
processes is looked at in /proc while they do.

One private namespace, loopback:
  ntsd     -u ntsd-test; NTS-KE 127.0.0.1:14460, NTP 127.0.0.1:11123 over
           UDP and TCP (`listen ... tcp`)
  chronyd  NTS client of ntsd, polling every second
  NTPsec   NTS client of ntsd, polling every second (it binds port 123)

Passes when both clients got their cookies from ntsd's NTS-KE process and
synchronise over NTS, and then, in /proc/PID/task/*/status of the main
process and of the NTS-KE process (its only child), every thread has:
  Uid and Gid (all four) the user's; NoNewPrivs 1; Seccomp 2; nothing
  inheritable or ambient; and no capability in CapPrm or CapEff other than
  CAP_SYS_TIME, which the test's bounding set lacks, so none at all.
The same holds again after 10 more seconds of serving, no call was refused
(nothing logged, the NTS-KE process never restarted), and NTS counters show
no error.
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14460, 11123
CAP_SYS_TIME = 25
MIN_EXCHANGES = 8


def check_process(what, pid, uid, gid):
    """Every thread of pid: the user's ids, no privilege left, filtered."""
    tasks = sorted(os.listdir("/proc/%d/task" % pid))
    h.check(tasks, "%s: no threads" % what)
    for t in tasks:
        st = h.proc_status(pid, t)
        h.log("%s %d thread %s: Uid %s Gid %s CapPrm %s CapEff %s CapInh %s CapAmb %s "
              "NoNewPrivs %s Seccomp %s" % (what, pid, t, st["Uid"], st["Gid"], st["CapPrm"],
                                            st["CapEff"], st["CapInh"], st["CapAmb"],
                                            st["NoNewPrivs"], st["Seccomp"]))
        h.check(st["Uid"].split() == [str(uid)] * 4, "%s: Uid %s" % (what, st["Uid"]))
        h.check(st["Gid"].split() == [str(gid)] * 4, "%s: Gid %s" % (what, st["Gid"]))
        h.check(st["NoNewPrivs"] == "1", "%s: NoNewPrivs %s" % (what, st["NoNewPrivs"]))
        h.check(st["Seccomp"] == "2", "%s: Seccomp %s (no filter)" % (what, st["Seccomp"]))
        for k in ("CapInh", "CapAmb"):
            h.check(int(st[k], 16) == 0, "%s: %s %s" % (what, k, st[k]))
        for k in ("CapPrm", "CapEff"):
            v = int(st[k], 16)
            h.check(v & ~(1 << CAP_SYS_TIME) == 0,
                    "%s: %s %s: more than CAP_SYS_TIME" % (what, k, st[k]))
            # The test's bounding set drops CAP_SYS_TIME, and -x needs none.
            h.check(v == 0, "%s: %s %s under a bounding set without CAP_SYS_TIME" % (
                what, k, st[k]))


def check_both(server, uid, gid):
    kids = h.child_pids(server.proc.pid)
    h.check(len(kids) == 1, "ntsd should have one child, its NTS-KE process: %r" % kids)
    check_process("main", server.proc.pid, uid, gid)
    check_process("NTS-KE", kids[0], uid, gid)
    return kids[0]


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    uid, gid = h.ensure_user(USER)
    tmp = h.tmpdir()
    os.chmod(tmp, 0o711)  # the user passes through to its state directory
    state = os.path.join(tmp, "state")
    os.makedirs(state, mode=0o700)
    os.chown(state, uid, gid)
    pki = h.make_test_pki()  # root's: read before the drop

    server = h.NtsKeServer("ntsd", pki, KE_PORT, NTP_PORT, tcp=True,
                           cookie_file=os.path.join(state, "ntsd.keys"), args=("-u", USER))
    log = server.proc.read_log()
    h.check("running as user %s (uid %d)" % (USER, uid) in log, "ntsd does not log its user")
    h.wait_until(lambda: "system call filter loaded (NTS-KE process)" in server.proc.read_log(),
                 10, "the NTS-KE process's filter")
    h.check("system call filter loaded (main process, no clock control)" in log,
            "the main process's filter is not logged")

    chrony = h.Chronyd("chronyd", extra=[
        "ntstrustedcerts %s" % pki.ca_cert, "ntsdumpdir %s" % os.path.join(tmp, "chronyd"),
        "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT])
    ntpsec = h.NtpsecNtpd("ntpsec", extra=[
        "nts ca %s" % pki.ca_cert,
        "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT])

    def ntpsec_reach():
        line = [ln.split() for ln in ntpsec.ntpq("-p").splitlines() if "127.0.0.1" in ln]
        return int(line[0][6], 8) if line and len(line[0]) >= 7 else 0

    def synced():
        src = [s for s in chrony.sources() if s["name"] == "127.0.0.1"]
        return (src and bin(src[0]["reach"]).count("1") >= MIN_EXCHANGES
                and bin(ntpsec_reach()).count("1") >= MIN_EXCHANGES)
    h.wait_until(synced, 60, "chronyd and NTPsec to reach ntsd %d times over NTS" % MIN_EXCHANGES,
                 interval=1.0)

    ke = check_both(server, uid, gid)
    auth = [ln for ln in chrony.chronyc("authdata") if ln[0] == "127.0.0.1"]
    h.log("chrony authdata: %r" % auth)
    h.check(auth and auth[0][1] == "NTS" and int(auth[0][7]) == 0,
            "chrony: not NTS, or NAKs: %r" % auth)
    nlog = ntpsec.proc.read_log()
    h.check(re.search(r"NTSc: Got 8 cookies, length 104, aead=15", nlog),
            "NTPsec did not get 8 cookies from ntsd")
    h.check(re.search(r"NTSc: Using port %d\b" % NTP_PORT, nlog),
            "NTPsec does not use the negotiated port %d" % NTP_PORT)

    # Served on, filtered and unprivileged throughout.
    time.sleep(10)
    h.check(check_both(server, uid, gid) == ke, "the NTS-KE process was restarted")
    log = server.proc.read_log()
    h.check("refused by the system call filter" not in log, "a system call was refused")
    h.check(not re.search(r"NTS-KE process \d+ ended", log), "the NTS-KE process ended")
    n = server.ctl_json("nts")
    h.log("ntsctl nts: %r" % n)
    h.check(n["ke_serves_good"] >= 2, "fewer than 2 KEs served: %r" % n)
    for k in ("ke_serves_bad", "server_recvs_bad", "server_naks", "cookie_decode_errors"):
        h.check(n[k] == 0, "%s = %d" % (k, n[k]))
    h.check(n["server_recvs_good"] >= 2 * MIN_EXCHANGES,
            "only %d good NTS requests" % n["server_recvs_good"])


h.run(main)
