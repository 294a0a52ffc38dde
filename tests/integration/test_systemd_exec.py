#!/usr/bin/python3
"""ntsd started the way dist/systemd/ntsd.service starts it (docs/systemd.md).

No systemd runs the unit here, so the test reads the unit and does its part:
the ExecStart= command line (with the built binary, the test user instead of
ntsd, the test's configuration, and -x: the clock is never touched), run as
User= with the AmbientCapabilities= and CapabilityBoundingSet= the unit
names, CAP_SYS_TIME left out of both for safety, NoNewPrivileges=, and a
NOTIFY_SOCKET the test owns.  The files are laid out as the unit's
directories and docs/systemd.md lay them out: the TLS key root-owned, group
readable by the user; the state and control socket directories the user's.

One private namespace, loopback: NTP on 127.0.0.1:123 (a privileged port),
NTS-KE on 127.0.0.1:4460.

Passes when READY=1 arrives; then the port 123 answers, an NTS-KE succeeds,
ntsctl reads the control socket, the cookie key file was written to the state
directory; the main process runs as the user with no capability left in any
set (CAP_NET_BIND_SERVICE was needed only to bind), NoNewPrivs 1,
Seccomp 2; and SIGTERM brings STOPPING=1 and exit status 0.
"""
import os
import re
import shutil
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
UNIT = os.path.join(h.SOURCE_DIR, "dist", "systemd", "ntsd.service.in")


def unit_settings():
    out = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")) and "=" in line:
                k, v = line.split("=", 1)
                out.setdefault(k, []).append(v)
    return out


def caps_arg(names):
    """"CAP_A CAP_B" -> "+a,+b" for setpriv, without CAP_SYS_TIME."""
    caps = [c.lower()[4:] for c in names.split() if c != "CAP_SYS_TIME"]
    return ",".join("+" + c for c in caps)


def exec_line(u, conf, sock):
    """The unit's ExecStart, for the test: binary, user, configuration, -x."""
    argv = u["ExecStart"][0].split()
    h.check(argv[0] == "@NTSD_SBINDIR@/ntsd", "unexpected ExecStart %r" % argv)
    h.check(argv[argv.index("-u") + 1] == u["User"][0], "ExecStart's -u is not User=")
    argv[0] = h.NTSD_BIN
    argv[argv.index("-u") + 1] = USER
    argv[argv.index("-c") + 1] = conf
    return argv + ["-x", "-s", sock]


def lay_out(tmp, uid, gid):
    """ConfigurationDirectory (root's, key readable by the group),
    StateDirectory and RuntimeDirectory (the user's)."""
    os.chmod(tmp, 0o711)
    pki = h.make_test_pki()
    os.chmod(pki.dir, 0o711)
    os.chmod(pki.chain, 0o644)
    os.chown(pki.key, 0, gid)
    os.chmod(pki.key, 0o640)
    dirs = {}
    for name in ("state", "run"):
        d = os.path.join(tmp, name)
        os.makedirs(d, mode=0o750 if name == "state" else 0o755)
        os.chown(d, uid, gid)
        dirs[name] = d
    return pki, dirs


def status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def notifications(s, timeout):
    out = []
    s.settimeout(timeout)
    try:
        while True:
            out.append(s.recv(4096).decode())
            s.settimeout(0.2)
    except (socket.timeout, BlockingIOError):
        pass
    return out


def check_process(pid, uid):
    st = status(pid)
    h.log("ntsd %d: Uid %s CapInh %s CapPrm %s CapEff %s CapAmb %s NoNewPrivs %s Seccomp %s" % (
        pid, st["Uid"], st["CapInh"], st["CapPrm"], st["CapEff"], st["CapAmb"],
        st["NoNewPrivs"], st["Seccomp"]))
    h.check(st["Uid"].split() == [str(uid)] * 4, "not running as %s: Uid %s" % (USER, st["Uid"]))
    for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        h.check(int(st[k], 16) == 0, "%s %s: a capability is left (CAP_NET_BIND_SERVICE "
                "should be gone once the sockets are bound)" % (k, st[k]))
    h.check(st["NoNewPrivs"] == "1", "NoNewPrivs %s" % st["NoNewPrivs"])
    h.check(st["Seccomp"] == "2", "Seccomp %s: no filter" % st["Seccomp"])


def main():
    h.require_ours()
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    if shutil.which("setpriv") is None:
        h.skip("setpriv (util-linux) is needed")
    uid, gid = h.ensure_user(USER)
    u = unit_settings()
    tmp = h.tmpdir()
    pki, dirs = lay_out(tmp, uid, gid)
    cookie = os.path.join(dirs["state"], "nts-keys")
    conf = h.write_file("ntsd.conf", "\n".join([
        "disable ntp", "listen 127.0.0.1:123", "local stratum 1", "nts enable",
        "nts cert %s" % pki.chain, "nts key %s" % pki.key, "nts cookie %s" % cookie,
        "nts-listen-on 127.0.0.1:4460"]) + "\n")
    os.chmod(conf, 0o644)
    sock = os.path.join(dirs["run"], "ntsd.sock")
    notify = os.path.join(tmp, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(notify)
    os.chmod(notify, 0o666)
    ambient = caps_arg(u["AmbientCapabilities"][0])
    bounding = caps_arg(u["CapabilityBoundingSet"][0])
    h.check(ambient == "+net_bind_service", "unexpected AmbientCapabilities %r" % ambient)
    wrap = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups",
            "--bounding-set=-all,%s" % bounding, "--inh-caps=%s" % ambient,
            "--ambient-caps=%s" % ambient]
    if u.get("NoNewPrivileges") == ["yes"]:
        wrap.append("--no-new-privs")
    env = dict(os.environ, NOTIFY_SOCKET=notify)
    proc = h.start_process("ntsd", wrap + ["--"] + exec_line(u, conf, sock), kind="ours",
                           env=env)
    msgs = []
    h.wait_until(lambda: msgs.extend(notifications(s, 0.5)) or "READY=1" in msgs, 20,
                 "READY=1")
    h.check(h.sntp_query("127.0.0.1", 123) is not None, "no answer on port 123")
    r = h.run_cmd([KEFETCH, "-c", pki.ca_cert, "-t", "5", "127.0.0.1", "4460"], timeout=10)
    h.check(r.returncode == 0, "NTS-KE failed: %s" % r.stderr)
    out = h.run_cmd([h.NTSCTL_BIN, "-s", sock, "sys"])
    h.check(out.returncode == 0, "ntsctl sys failed: %s" % out.stderr)
    h.check(os.stat(cookie).st_uid == uid, "the cookie key file is not the user's")
    check_process(proc.pid, uid)
    h.check(re.search(r"running as user %s" % USER, proc.read_log()), "no drop logged")
    proc.stop()
    msgs.extend(notifications(s, 0.5))
    h.check(any(m.startswith("STOPPING=1") for m in msgs), "no STOPPING=1: %r" % msgs)
    h.check(proc.rc == 0, "exit status %s on SIGTERM" % proc.rc)


h.run(main)
