#!/usr/bin/python3
"""Privilege drop (docs/security.md): ntsd started as root with `-u`, or
the `user` directive, serves NTS to chronyd 4.3 and to another ntsd as an
unprivileged user.

  server ntsd  -u ntsd-test: NTS-KE 127.0.0.1:14460 (TLS key readable by
               root only), NTP 127.0.0.1:11123, cookie keys in a state
               directory owned by the user, `nts rotate 60`
  client ntsd  `user ntsd-test` in its configuration, -N -m, NTP server on
               the privileged port 123; NTS client of the server; a virtual
               clock (`--virtual-clock 0,20`) so that it keeps a drift file
  chronyd      NTS client of the server

Checked in /proc/PID/task/*/status of both ntsd processes (and of the
server's NTS-KE process), every thread:
Uid and Gid (all four) the user's, Groups only its group, NoNewPrivs 1,
Seccomp 2 (the system call filter), nothing inheritable or ambient, and no capability except CAP_SYS_TIME (the
test bounding set lacks it and -x needs none, so the server holds none; the
client only CAP_SYS_NICE, kept for its priority, and CAP_IPC_LOCK for -m
where the locked-memory limit cannot be lifted).  Both clients
synchronise; a cookie key rotation after the drop replaces the key file,
owned by the user, without a warning.  A second server whose key file
lies in a directory the user cannot write is warned about at start, and
rotates in memory after the drop: one more warning, keys still served.  An unknown user or group: ntsd refuses to
start, says why, and opens nothing.  The client's drift file, written at
exit after the drop, is the user's.
"""
import grp
import os
import shutil
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14460, 11123
KE_PORT_RO, NTP_PORT_RO = 14462, 11125  # the server with a read-only state directory
CAP_IPC_LOCK, CAP_SYS_NICE, CAP_SYS_TIME = 14, 23, 25
SCHED_RESET_ON_FORK = 0x40000000  # reported with the policy
MIN_EXCHANGES = 8


def ensure_user():
    return h.ensure_user(USER)


def status_fields(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def check_dropped(name, pid, uid, gid, allowed_caps):
    """Every thread of pid runs as uid/gid with at most allowed_caps."""
    tasks = os.listdir("/proc/%d/task" % pid)
    h.check(len(tasks) >= 1, "%s: no threads?" % name)
    allowed = sum(1 << c for c in allowed_caps)
    for t in tasks:
        st = status_fields("/proc/%d/task/%s/status" % (pid, t))
        h.log("%s thread %s: Uid %s Gid %s Groups %r CapPrm %s CapEff %s NoNewPrivs %s "
              "Seccomp %s" % (name, t, st["Uid"], st["Gid"], st["Groups"], st["CapPrm"],
                              st["CapEff"], st["NoNewPrivs"], st["Seccomp"]))
        h.check(st["Uid"].split() == [str(uid)] * 4, "%s: Uid %s" % (name, st["Uid"]))
        h.check(st["Gid"].split() == [str(gid)] * 4, "%s: Gid %s" % (name, st["Gid"]))
        h.check(st["Groups"].split() == [str(gid)], "%s: Groups %r" % (name, st["Groups"]))
        h.check(st["NoNewPrivs"] == "1", "%s: NoNewPrivs %s" % (name, st["NoNewPrivs"]))
        h.check(st["Seccomp"] == "2", "%s: Seccomp %s (no filter)" % (name, st["Seccomp"]))
        for k in ("CapInh", "CapAmb"):
            h.check(int(st[k], 16) == 0, "%s: %s %s" % (name, k, st[k]))
        for k in ("CapPrm", "CapEff"):
            v = int(st[k], 16)
            # Only CAP_SYS_TIME could ever be kept for the clock: anything
            # else beyond what this daemon asked for is a failure.
            h.check(v & ~(allowed | (1 << CAP_SYS_TIME)) == 0, "%s: %s %s" % (name, k, st[k]))
            h.check(v == allowed, "%s: %s %s, expected %x" % (name, k, st[k], allowed))
    return tasks


def refuses(pki, user, needle):
    """ntsd with `-u user` must exit non-zero at once, saying why, before
    opening any socket (its KE port stays free)."""
    conf = h.write_file("refuse.conf", "\n".join([
        "disable ntp", "listen 127.0.0.1:%d" % (NTP_PORT + 1), "local stratum 1",
        "nts enable", "nts cert %s" % pki.chain, "nts key %s" % pki.key,
        "nts-listen-on 127.0.0.1:%d" % (KE_PORT + 1)]) + "\n")
    sock = os.path.join(h.tmpdir(), "refuse.sock")
    r = subprocess.run(h.SETPRIV + [h.NTSD_BIN, "-c", conf, "-n", "-x", "-s", sock, "-u", user],
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    h.log("ntsd -u %s: rc=%d stderr=%r" % (user, r.returncode, r.stderr.strip()))
    h.check(r.returncode != 0, "ntsd -u %s started (rc 0)" % user)
    h.check(needle in r.stderr, "ntsd -u %s: no '%s' in %r" % (user, needle, r.stderr))
    h.check("serving" not in r.stderr, "ntsd -u %s opened sockets first: %r" % (user, r.stderr))
    h.check(not os.path.exists(sock), "ntsd -u %s created its control socket" % user)


def bad_priority():
    """-P takes 1..99 and nothing else (exit 2, before anything)."""
    for v in ("0", "100", "x", "5x", ""):
        r = h.run_cmd([h.NTSD_BIN, "-c", "/nonexistent", "-P", v])
        h.check(r.returncode == 2 and "-P PRIORITY: expected 1..99" in r.stderr,
                "-P %r: rc %d, %r" % (v, r.returncode, r.stderr))


def key_file_rotated(server, key_file, uid, before):
    """Waits for a rotation after the drop; the file is replaced (a new
    inode), the user's, mode 0600, and nothing was logged about failing."""
    h.wait_until(lambda: "NTS cookie key rotated" in server.proc.read_log(), 90,
                 "a cookie key rotation (nts rotate 60)", interval=1.0)
    h.wait_until(lambda: os.stat(key_file).st_ino != before.st_ino, 10,
                 "the key file to be replaced after the rotation")
    st = os.stat(key_file)
    h.log("key file after rotation: uid %d mode %o inode %d (before %d)" % (
        st.st_uid, st.st_mode & 0o777, st.st_ino, before.st_ino))
    h.check(st.st_uid == uid, "key file owned by uid %d, not %d" % (st.st_uid, uid))
    h.check(st.st_mode & 0o777 == 0o600, "key file mode %o" % (st.st_mode & 0o777))
    after = server.proc.read_log().split("running as user", 1)[-1]
    bad = [ln for ln in after.splitlines() if "warning: " in ln or "error: " in ln]
    h.check(not bad, "warnings after the drop (a failed key file write?): %r" % bad)


def rotation_unsaved(server, key_file, before, pki):
    """The user cannot write the key file's directory: said at start, right
    after the drop; the rotation then stays in memory, with one warning
    saying so, and NTS-KE goes on with the new key."""
    h.wait_until(lambda: "NTS cookie key rotated" in server.proc.read_log(), 30,
                 "the second server's rotation", interval=1.0)
    time.sleep(7)  # the next key check (every 6 s) retries the write: quietly
    after = server.proc.read_log().split("running as user", 1)[-1]
    warns = [ln for ln in after.splitlines() if "warning: " in ln]
    h.log("read-only state directory: %r" % warns)
    h.check(len(warns) == 2 and "%s: its directory %s is not writable by user %s" % (
        key_file, os.path.dirname(key_file), USER) in warns[0] and
            "nts cookie %s: cannot create a temporary file: Permission denied" % key_file
            in warns[1], "expected a warning at start and one at the write: %r" % warns)
    h.check(os.stat(key_file).st_ino == before.st_ino, "the key file changed")
    r = h.ke_exchange(KE_PORT_RO, h.ke_request(), ca=pki.ca_cert)
    h.check(r["handshake"] is True and len([x for x in h.ke_parse(r["response"])
                                            if x[1] == h.KE_NEW_COOKIE]) == 8,
            "no 8 cookies from the second server after the failed write: %r" % (r,))


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    uid, gid = ensure_user()
    tmp = h.tmpdir()
    os.chmod(tmp, 0o711)  # the user may pass through to its state directory only
    state = os.path.join(tmp, "state")
    os.makedirs(state, mode=0o700)
    os.chown(state, uid, gid)
    key_file = os.path.join(state, "ntsd.keys")
    pki = h.make_test_pki()  # in a root-only directory: read before the drop
    ca = os.path.join(tmp, "ca.pem")  # an `nts ca` may be read later: readable
    shutil.copy(pki.ca_cert, ca)
    os.chmod(ca, 0o644)

    bad_priority()
    refuses(pki, "no-such-user-ntsd", "user 'no-such-user-ntsd': no such user")
    refuses(pki, "%s:no-such-group-ntsd" % USER, "group 'no-such-group-ntsd': no such group")

    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, cookie_file=key_file,
                           extra=["nts rotate 60"], args=("-u", USER))
    ro_state = os.path.join(tmp, "rostate")  # root's, 0755: readable, not writable
    os.makedirs(ro_state, mode=0o755)
    ro_key_file = os.path.join(ro_state, "ntsd.keys")
    server_ro = h.NtsKeServer("server-ro", pki, KE_PORT_RO, NTP_PORT_RO,
                              cookie_file=ro_key_file, extra=["nts rotate 60"],
                              args=("-u", USER))
    ro_before = os.stat(ro_key_file)
    h.check("running as user %s (uid %d)" % (USER, uid) in server.proc.read_log(),
            "the server does not log its user")
    before = os.stat(key_file)
    h.check(before.st_uid == uid, "the key file created at start is uid %d's" % before.st_uid)
    chrony = h.Chronyd("chronyd", extra=[
        "ntstrustedcerts %s" % ca, "ntsdumpdir %s" % os.path.join(tmp, "chronyd"),
        "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT])
    drift = os.path.join(state, "client.drift")
    client = h.Ntsd("client", ["user %s" % USER, "nts ca %s" % ca, "driftfile %s" % drift,
                               "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT],
                    args=("-N", "-m", "--virtual-clock", "0,20"))
    # The client's own server: port 123, which only root may bind.
    h.wait_until(lambda: h.sntp_query("127.0.0.1", 123) is not None, 10,
                 "the client ntsd to answer on port 123")

    check_dropped("server", server.proc.pid, uid, gid, [])
    # -m: the locked-memory limit lifted, else CAP_IPC_LOCK kept (a container
    # may forbid raising the limit even to root).
    with open("/proc/%d/limits" % client.proc.pid) as f:
        lifted = any(ln.startswith("Max locked memory") and "unlimited" in ln for ln in f)
    check_dropped("client", client.proc.pid, uid, gid,
                  [CAP_SYS_NICE] + ([] if lifted else [CAP_IPC_LOCK]))
    h.check(os.sched_getscheduler(client.proc.pid) & ~SCHED_RESET_ON_FORK == os.SCHED_FIFO,
            "the client (-N) is not SCHED_FIFO")
    vmlck = status_fields("/proc/%d/status" % client.proc.pid)["VmLck"]
    h.check(int(vmlck.split()[0]) > 0, "the client (-m) locked nothing: VmLck %s" % vmlck)

    def synced():
        ps = client.peers()
        src = [s for s in chrony.sources() if s["name"] == "127.0.0.1"]
        return (ps and ps[0]["nts"] and ps[0]["accepted"] >= MIN_EXCHANGES and src
                and bin(src[0]["reach"]).count("1") >= MIN_EXCHANGES)
    h.wait_until(synced, 60, "both clients to synchronise over NTS", interval=1.0)
    auth = [ln for ln in chrony.chronyc("authdata") if ln[0] == "127.0.0.1"]
    h.check(auth and auth[0][1] == "NTS", "chrony authdata: %r" % auth)

    key_file_rotated(server, key_file, uid, before)
    rotation_unsaved(server_ro, ro_key_file, ro_before, pki)
    # Served on after the rotation, still dropped, and so is its NTS-KE
    # process (test_ke_privsep looks at that one closely).
    n0 = client.peers()[0]["accepted"]
    h.wait_until(lambda: client.peers()[0]["accepted"] >= n0 + 3, 20,
                 "the client to keep synchronising after the rotation")
    check_dropped("server", server.proc.pid, uid, gid, [])
    kids = h.child_pids(server.proc.pid)
    h.check(len(kids) == 1, "the server runs no NTS-KE process? children %r" % kids)
    check_dropped("server's NTS-KE process", kids[0], uid, gid, [])

    # The virtual clock's discipline is synchronised by now: the drift file
    # is written at exit, by the user.
    h.check(client.ctl_json("sys")["synced"], "the client's clock is not synchronised")
    h.check(client.proc.stop() == 0, "the client did not exit cleanly")
    h.check(os.path.exists(drift), "no drift file written at exit after the drop")
    st = os.stat(drift)
    h.log("drift file: uid %d mode %o: %r" % (st.st_uid, st.st_mode & 0o777, open(drift).read()))
    h.check(st.st_uid == uid, "drift file owned by uid %d" % st.st_uid)


h.run(main)
