#!/usr/bin/python3
"""Logging with real daemons (docs/logging.md), in a private network
namespace on loopback:

  journal   ntsd -n -d, NTS-KE server, with JOURNAL_STREAM naming the
            device and inode of the pipe that is its stderr, as systemd
            does: every line of both processes (main and NTS-KE) starts
            with a <N> syslog priority and carries no time stamp; without
            JOURNAL_STREAM the same lines carry the time;
  logfile   ntsd -u ntsd-test -d, NTS-KE server, `logfile` in a directory
            only root may write: both processes' lines reach the file (as
            "TIME ntsd[PID]: ..."), none reaches stderr; truncated in place
            (logrotate's copytruncate) the next line lands at the start of
            the file; moved away, the main process warns once into the moved
            file that it cannot reopen, and once the directory is the user's
            it opens a new file at the path; `-l FILE` overrides `logfile`;
  logconfig `logconfig =peerall`: the sys class's events ("running") and
            statistics (dropped requests at -d -d) are not logged, the peer
            class's events are, and so is a warning (an unresolvable name);
  facility  detached (no -n) with `logfacility local3`, /dev/log private to
            the daemon: the start line arrives as <157> (local3.notice).
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14471, 11131
TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "


def conf_file(name, lines):
    return h.write_file(name + ".conf", "\n".join(["disable ntp"] + lines) + "\n")


def nts_lines(pki, port_off=0):
    return ["listen 127.0.0.1:%d" % (NTP_PORT + port_off), "local stratum 1", "nts enable",
            "nts cert %s" % pki.chain, "nts key %s" % pki.key,
            "nts-listen-on 127.0.0.1:%d" % (KE_PORT + port_off)]


class Piped:
    """ntsd with stdout and stderr on a pipe this test reads, JOURNAL_STREAM
    naming that pipe (both ends share one inode)."""

    def __init__(self, name, cmd, journal=True):
        r, w = os.pipe()
        st = os.fstat(w)
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        h.log("start %s: %s (JOURNAL_STREAM=%s)" % (name, " ".join(cmd),
                                                    env.get("JOURNAL_STREAM")))
        self.p = subprocess.Popen(h.SETPRIV + cmd, stdin=subprocess.DEVNULL, stdout=w,
                                  stderr=w, env=env, preexec_fn=h._pdeathsig, close_fds=True)
        os.close(w)
        self.r = r
        self.out = b""
        self.logpath = os.path.join(h.tmpdir(), name + ".log")
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        with open(self.logpath, "wb") as f:
            while True:
                b = os.read(self.r, 4096)
                if not b:
                    break
                self.out += b
                f.write(b)
                f.flush()

    def text(self):
        return self.out.decode("utf-8", "replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(timeout=5)
        self.t.join(timeout=5)
        os.close(self.r)
        return self.p.returncode


def ke_once(pki, port):
    r = h.ke_exchange(port, h.ke_request(), ca=pki.ca_cert)
    h.check(r is not None, "NTS-KE failed")


def journal(pki):
    for use_journal in (True, False):
        name = "journal" if use_journal else "nojournal"
        off = 0 if use_journal else 1
        conf = conf_file(name, nts_lines(pki, off) + ["statsdir /nonexistent"])
        d = Piped(name, [h.NTSD_BIN, "-c", conf, "-n", "-x", "-d", "-s",
                         os.path.join(h.tmpdir(), name + ".sock")], journal=use_journal)
        try:
            h.wait_until(lambda: re.search(r"NTS-KE process \d+ serving", d.text()), 15,
                         "%s: the NTS-KE process serving" % name)
            ke_once(pki, KE_PORT + off)
        finally:
            rc = d.stop()
            for ln in d.text().splitlines():
                h.log("%s| %s" % (name, ln))
        h.check(rc == 0, "%s: exit %s" % (name, rc))
        lines = [ln for ln in d.text().splitlines() if ln]
        # the configuration's warning comes before logging starts; the rest is the log
        log = [ln for ln in lines if "(warning)" not in ln and "ntp.conf" not in ln
               and not ln.startswith("/")]
        h.check(len(log) >= 5, "%s: only %d log lines: %r" % (name, len(log), lines))
        if use_journal:
            bad = [ln for ln in log if not re.match(r"<[0-7]>", ln) or re.search(TIME_RE, ln)]
            h.check(not bad, "journal: lines without a priority or with a time: %r" % bad)
            h.check(any(re.match(r"<5>ntsd [\d.]+ running$", ln) for ln in log),
                    "journal: no '<5>ntsd VERSION running'")
            h.check(any(re.match(r"<6>NTS-KE process \d+ serving$", ln) for ln in log),
                    "journal: the NTS-KE process's line is not '<6>...'")
        else:
            bad = [ln for ln in log if not re.match(TIME_RE + "ntsd: ", ln)]
            h.check(not bad, "without JOURNAL_STREAM: lines without a time: %r" % bad)
        h.log("%s: %d lines, e.g. %r" % (name, len(log), log[-1]))


def drop_requests(n=3):
    """Malformed requests: each a debug line ("dropped") of the main process."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        s.sendto(b"\x23" * 20, ("127.0.0.1", NTP_PORT))
    s.close()


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def logfile(pki):
    uid, gid = h.ensure_user(USER)
    tmp = h.tmpdir()
    os.chmod(tmp, 0o711)
    ldir = os.path.join(tmp, "var-log")
    os.makedirs(ldir, mode=0o755)  # root's: the user cannot create files here
    path = os.path.join(ldir, "ntsd.log")
    conf = conf_file("logfile", nts_lines(pki) + ["logfile %s" % path])
    p = h.start_process("logfile", [h.NTSD_BIN, "-c", conf, "-n", "-x", "-d", "-d", "-u", USER,
                                    "-s", os.path.join(tmp, "logfile.sock")], kind="ours")
    h.wait_until(lambda: re.search(r"NTS-KE process \d+ serving", read(path)), 15,
                 "the NTS-KE process's line in the logfile")
    ke_once(pki, KE_PORT)
    pids = h.pids_with_cmdline(conf)
    main = [x for x in pids if h.child_pids(x)]
    h.check(len(main) == 1, "ntsd processes %r" % pids)
    ke = h.child_pids(main[0])[0]
    text = read(path)
    h.check(re.search(r"^%sntsd\[%d\]: ntsd [\d.]+ running$" % (TIME_RE, main[0]), text, re.M),
            "no main process line 'TIME ntsd[PID]: ntsd VERSION running'")
    h.check(re.search(r"^%sntsd\[%d\]: NTS-KE process %d serving$" % (TIME_RE, ke, ke), text,
                      re.M), "no NTS-KE process line with its pid")
    h.check(re.search(r"running as user %s" % USER, text), "the drop is not in the logfile")
    st = os.stat(path)
    h.check(st.st_uid == 0 and (st.st_mode & 0o777) == 0o640,
            "logfile owner %d mode %o" % (st.st_uid, st.st_mode & 0o777))
    out = p.read_log()
    h.check("running" not in out and "serving" not in out,
            "log lines reached stderr too: %r" % out[-500:])

    # copytruncate: the next line at offset 0, nothing before it
    os.truncate(path, 0)
    drop_requests()
    h.wait_until(lambda: "dropped" in read(path), 5, "a line after the truncation")
    text = read(path)
    h.check(re.match(TIME_RE + r"ntsd\[%d\]: debug: NTP request from" % main[0], text),
            "after truncation the file starts with %r" % text[:80])

    # moved away in a directory the user may not write to: one warning, into the moved file
    os.rename(path, path + ".1")
    time.sleep(1.1)
    drop_requests()
    h.wait_until(lambda: "cannot be reopened" in read(path + ".1"), 5,
                 "the warning that the moved logfile cannot be reopened")
    time.sleep(1.1)
    drop_requests()
    time.sleep(0.5)
    h.check(read(path + ".1").count("cannot be reopened") == 1, "the warning came twice")
    h.check(not os.path.exists(path), "a logfile appeared where the user cannot write")
    # the directory becomes the user's (as logrotate's `create` would need)
    os.chown(ldir, uid, gid)
    time.sleep(1.1)
    drop_requests()
    h.wait_until(lambda: "dropped" in read(path), 5, "a line in the reopened logfile")
    h.check(os.stat(path).st_uid == uid, "the new logfile is not the user's")
    ke_once(pki, KE_PORT)  # the NTS-KE process writes on, to the file it holds
    h.check(h.sntp_query("127.0.0.1", NTP_PORT) is not None, "NTP not answered")
    p.stop()
    p.check_no_crash()
    h.check(p.rc == 0, "logfile: exit %s" % p.rc)
    h.log("logfile: %d bytes moved, %d new" % (len(read(path + ".1")), len(read(path))))

    # -l overrides `logfile`
    other = os.path.join(tmp, "other.log")
    p = h.start_process("logfile-l", [h.NTSD_BIN, "-c", conf, "-n", "-x", "-l", other, "-s",
                                      os.path.join(tmp, "l.sock")], kind="ours")
    h.wait_until(lambda: "running" in read(other), 15, "-l FILE: the start line in FILE")
    p.stop()
    p.check_no_crash()


def logconfig():
    tmp = h.tmpdir()
    conf = conf_file("logconfig", ["listen 127.0.0.1:%d" % NTP_PORT, "local stratum 1",
                                   "logconfig =peerall", "server 127.0.0.2",
                                   # a source that cannot be resolved: a warning
                                   "server nonexistent.invalid"])
    p = h.start_process("logconfig", [h.NTSD_BIN, "-c", conf, "-n", "-x", "-d", "-d", "-s",
                                      os.path.join(tmp, "lc.sock")], kind="ours")
    h.wait_until(lambda: "cannot resolve" in p.read_log(), 15, "the resolver's warning")
    h.wait_until(lambda: h.sntp_query("127.0.0.1", NTP_PORT) is not None, 5, "NTP served")
    drop_requests()
    time.sleep(0.5)
    out = p.read_log()
    p.stop()
    p.check_no_crash()
    h.check("running" not in out, "logconfig =peerall: a sys event was logged: %r" % out)
    h.check("dropped" not in out, "logconfig =peerall: sys statistics were logged")
    h.check("new association" in out, "logconfig =peerall: the peer event is missing")


def private_dev(d):
    """A prefix giving the command its own /dev (tmpfs in a new mount
    namespace) with null, zero, random, urandom and a log that leads to
    d/log.sock."""
    dev = os.path.join(d, "dev")
    os.makedirs(dev)
    steps = ["mount -t tmpfs -o mode=755 tmpfs %s" % dev]
    steps += ["touch %s/%s && mount --bind /dev/%s %s/%s" % (dev, n, n, dev, n)
              for n in ("null", "zero", "random", "urandom")]
    steps += ["ln -s %s/log.sock %s/log" % (d, dev), "mount --rbind %s /dev" % dev]
    return ["unshare", "--mount", "--", "sh", "-c", " && ".join(steps) + ' && exec "$0" "$@"']


def facility():
    d = os.path.join(h.tmpdir(), "facility")
    os.makedirs(d)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(d, "log.sock"))
    conf = conf_file("facility", ["listen 127.0.0.1:%d" % NTP_PORT, "local stratum 1",
                                  "logfacility local3"])
    cmd = private_dev(d) + [h.NTSD_BIN, "-c", conf, "-x", "-s", os.path.join(d, "ntsd.sock")]
    try:
        r, _ = h.run_setpriv(cmd, timeout=20)
        h.check(r.returncode == 0, "ntsd did not detach: %d %r" % (r.returncode, r.stderr))
        want = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not want:
            if select.select([sock], [], [], 0.5)[0]:
                msg = sock.recv(4096).decode(errors="replace")
                h.log("syslog: %r" % msg)
                if "running" in msg:
                    want = msg
        h.check(want and re.match(r"<157>.*ntsd\[\d+\]: ntsd [\d.]+ running", want),
                "no local3.notice start line: %r" % want)
    finally:
        for pid in h.pids_with_cmdline(conf):
            os.kill(pid, signal.SIGTERM)
        sock.close()


def main():
    h.require_ours()
    pki = h.make_test_pki()
    journal(pki)
    logfile(pki)
    logconfig()
    facility()


h.run(main)
