#!/usr/bin/python3
"""ntsd's command line and configuration checking.

  * `--version` prints "ntsd VERSION" (the project version), exit 0;
    `--help` exit 0 and documents --check; an unknown option or a stray
    argument: exit 2.
  * `--list-directives` prints, exit 0, the directive status table exactly
    as docs/configuration.md has it between its BEGIN/END marker lines.
  * `ntsd --check -c F` on every fixture in the project's
    tests/fixtures/configs/*.conf: nts-server-stray-words.conf is refused
    (exit 2) naming line 22 (stray words after `nts enable`) and no other
    line; every other fixture is accepted (exit 0).  The same on the
    published samples in $NTSD_SOURCE_DIR/../shared/fixtures/configs/*.conf
    where that directory exists (the NTPsec Docker sample: line 27); one
    line says they were skipped where it does not.
  * An unknown directive on line 3: exit 2 and "FILE:3:" on stderr.
  * --check opens no file a directive names: nonexistent key/cert/cookie/
    drift/leap/stats/log/ca paths pass, and so do FIFOs in their place
    (opening one would block, so a file-opening --check would hang).
  * --check resolves no name: `server no-such-host.invalid` and a pool name
    pass in < 2 s, and a DNS trap (a UDP/TCP listener on each resolv.conf
    nameserver address, added to the namespace's private lo) sees no query
    during any --check run.
  * A nonexistent config file: exit 2 with a message naming it.
  * Starting the daemon (not --check) with a bad config, in the foreground
    and in daemon mode: exit 2, the file:line message, no control socket
    created and no ntsd process left running.
"""
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

FIXTURES = os.path.join(h.SOURCE_DIR, "tests", "fixtures", "configs")
SHARED_FIXTURES = os.environ.get("NTSD_FIXTURES_DIR", os.path.join(
    h.SOURCE_DIR, "..", "shared", "fixtures", "configs"))
# Fixture -> the line of its one expected error (the others are accepted).
REFUSED = {"nts-server-stray-words.conf": 22}
SHARED_REFUSED = {"ntpsec-docker-sample.conf": 27}
CRASH_RE = re.compile("|".join(h.CRASH_PATTERNS))


class DnsTrap:
    """Records every DNS query sent to the nameservers of /etc/resolv.conf.
    Non-loopback nameserver addresses are added to lo inside the test's
    private namespace, so queries stay on loopback and reach us; nothing is
    answered (a resolver would wait, which the timing check also sees)."""

    def __init__(self):
        self.queries = []
        self.socks = []
        self.addrs = []
        self.notes = []
        self._stop = False
        servers = []
        try:
            with open("/etc/resolv.conf") as f:
                for ln in f:
                    w = ln.split()
                    if len(w) >= 2 and w[0] == "nameserver":
                        servers.append(w[1].split("%")[0])
        except OSError:
            pass
        if not servers:
            servers = ["127.0.0.1", "::1"]  # glibc's default
        for a in servers:
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            try:
                loop = socket.inet_pton(fam, a)
            except OSError:
                self.notes.append("unparsable nameserver %r" % a)
                continue
            is_loop = (fam == socket.AF_INET and loop[0] == 127) or a == "::1"
            if not is_loop:
                r = subprocess.run(["ip", "addr", "add", "%s/%d" % (a, 32 if fam == socket.AF_INET
                                                                    else 128), "dev", "lo"],
                                   capture_output=True, text=True, timeout=10)
                if r.returncode != 0 and "exists" not in r.stderr:
                    self.notes.append("cannot add %s to lo: %s" % (a, r.stderr.strip()))
                    continue
                if fam == socket.AF_INET6:
                    time.sleep(0.5)  # DAD
            try:
                u = socket.socket(fam, socket.SOCK_DGRAM)
                u.bind((a, 53))
                t = socket.socket(fam, socket.SOCK_STREAM)
                t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                t.bind((a, 53))
                t.listen(16)
            except OSError as e:
                self.notes.append("cannot listen on %s:53: %s" % (a, e))
                continue
            self.socks += [u, t]
            self.addrs.append(a)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        import select
        while not self._stop:
            if not self.socks:
                return
            rd, _, _ = select.select(self.socks, [], [], 0.2)
            for s in rd:
                try:
                    if s.type == socket.SOCK_DGRAM:
                        data, peer = s.recvfrom(4096)
                        self.queries.append(("udp", peer, data))
                    else:
                        c, peer = s.accept()
                        self.queries.append(("tcp", peer, b""))
                        c.close()
                except OSError:
                    pass

    def close(self):
        self._stop = True
        self.thread.join(timeout=2)
        for s in self.socks:
            s.close()


def ntsd(*args, timeout=10):
    return h.run_setpriv([h.NTSD_BIN] + list(args), timeout=timeout)


def check_no_crash_text(r, what):
    m = CRASH_RE.search(r.stderr + r.stdout)
    h.check(m is None, "%s: crash report in output: %r" % (what, (r.stderr + r.stdout)[-2000:]))
    h.check(r.returncode >= 0, "%s: killed by signal %d" % (what, -r.returncode))


def check_fixtures(d, refused):
    """--check on every .conf in d: the files in `refused` exit 2 with one
    error, on their line; the others exit 0."""
    confs = sorted(f for f in os.listdir(d) if f.endswith(".conf"))
    h.log("fixtures in %s: %s" % (d, confs))
    for name in refused:
        h.check(name in confs, "%s missing from %s" % (name, d))
    h.check(len(confs) >= 2, "expected more than one .conf fixture in %s, got %s" % (d, confs))
    for name in confs:
        path = os.path.join(d, name)
        r, dt = ntsd("--check", "-c", path)
        check_no_crash_text(r, "--check %s" % name)
        h.log("--check %s: rc=%d in %.2f s" % (name, r.returncode, dt))
        if name in refused:
            line = ":%d:" % refused[name]
            h.check(r.returncode == 2, "--check %s: exit %d, expected 2\n%s" % (
                name, r.returncode, r.stderr))
            h.check(name + line in r.stderr,
                    "--check %s: no '%s%s' on stderr:\n%s" % (name, name, line, r.stderr))
            errs = [ln for ln in r.stderr.splitlines()
                    if re.search(r":\d+: ", ln) and not ln.endswith("(warning)")]
            h.check(all(line in ln for ln in errs),
                    "--check %s: errors other than line %d: %s" % (name, refused[name], errs))
        else:
            h.check(r.returncode == 0, "--check %s: exit %d, expected 0\n%s" % (
                name, r.returncode, r.stderr))
            h.check("ok" in r.stdout, "--check %s: stdout %r" % (name, r.stdout))
        h.check(dt < 5, "--check %s took %.1f s" % (name, dt))


def project_version():
    with open(os.path.join(h.SOURCE_DIR, "CMakeLists.txt")) as f:
        m = re.search(r"project\s*\(\s*ntsd\s+VERSION\s+([0-9][0-9.]*)", f.read())
    return m.group(1) if m else None


def docs_directive_table():
    """The lines between docs/configuration.md's directive table markers."""
    out, inside = [], False
    with open(os.path.join(h.SOURCE_DIR, "docs", "configuration.md")) as f:
        for ln in f:
            if ln.startswith("<!-- END directive table"):
                inside = False
            if inside:
                out.append(ln)
            if ln.startswith("<!-- BEGIN directive table"):
                inside = True
    return "".join(out)


def main():
    h.require_ours()
    tmp = h.tmpdir()
    trap = DnsTrap()
    h.log("DNS trap on %s%s" % (trap.addrs, "; notes: %s" % trap.notes if trap.notes else ""))
    # Self-test: the system resolver's queries must reach the trap, or its
    # "no query seen" below would prove nothing.
    g = subprocess.Popen(["getent", "ahosts", "trap-selftest.invalid"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, preexec_fn=h._pdeathsig)
    try:
        deadline = time.monotonic() + 4
        while not trap.queries and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        g.kill()
        g.wait(timeout=5)
    trap_ok = bool(trap.queries)
    if trap_ok:
        h.log("DNS trap self-test: caught %d query packet(s)" % len(trap.queries))
    else:
        h.log("NOTE: DNS trap self-test failed (getent's query did not reach %s; %s): the "
              "no-DNS-query check is skipped, the timing check remains" % (trap.addrs,
                                                                          trap.notes))
    time.sleep(0.2)
    del trap.queries[:]

    # ---- --version / --help / bad options ----
    r, _ = ntsd("--version")
    h.log("--version: rc=%d %r" % (r.returncode, r.stdout))
    h.check(r.returncode == 0, "ntsd --version: exit %d" % r.returncode)
    h.check(re.fullmatch(r"ntsd [0-9]+\.[0-9]+\.[0-9]+\S*\n", r.stdout) is not None,
            "ntsd --version printed %r, expected 'ntsd X.Y.Z'" % r.stdout)
    ver = project_version()
    if ver:
        h.check(r.stdout == "ntsd %s\n" % ver,
                "ntsd --version printed %r, the project version is %s" % (r.stdout, ver))

    r, _ = ntsd("--help")
    h.check(r.returncode == 0, "ntsd --help: exit %d" % r.returncode)
    h.check("--check" in r.stdout, "ntsd --help does not mention --check: %r" % r.stdout)
    h.check("usage" in r.stdout.lower(), "ntsd --help prints no usage: %r" % r.stdout)

    r, _ = ntsd("--list-directives")
    h.check(r.returncode == 0, "ntsd --list-directives: exit %d" % r.returncode)
    h.check(r.stdout == docs_directive_table(),
            "ntsd --list-directives differs from docs/configuration.md's table "
            "(scripts/update-directive-table rewrites it)")

    for bad in (["--no-such-option"], ["-q"], ["stray-argument"], ["-c"],
                ["--list-directives=html"]):
        r, _ = ntsd(*bad)
        h.log("ntsd %s: rc=%d" % (" ".join(bad), r.returncode))
        h.check(r.returncode == 2, "ntsd %s: exit %d, expected 2" % (" ".join(bad), r.returncode))
        h.check(r.stderr.strip(), "ntsd %s: nothing on stderr" % " ".join(bad))
        h.check("ok" not in r.stdout, "ntsd %s printed %r" % (" ".join(bad), r.stdout))

    # ---- configuration fixtures ----
    check_fixtures(FIXTURES, REFUSED)
    if os.path.isdir(SHARED_FIXTURES):
        check_fixtures(SHARED_FIXTURES, SHARED_REFUSED)
    else:
        h.log("%s not found: the --check runs on the shared real-world samples are skipped "
              "(the project's fixtures ran)" % os.path.normpath(SHARED_FIXTURES))

    # ---- unknown directive on line 3 ----
    bad = h.write_file("unknown-directive.conf",
                       "# a comment on line 1\nserver 127.0.0.1 iburst\nfrobnicate yes\n"
                       "local stratum 1\n")
    r, _ = ntsd("--check", "-c", bad)
    check_no_crash_text(r, "--check unknown-directive.conf")
    h.log("--check unknown-directive.conf: rc=%d stderr=%r" % (r.returncode, r.stderr))
    h.check(r.returncode == 2, "unknown directive: exit %d, expected 2" % r.returncode)
    h.check("%s:3:" % bad in r.stderr, "unknown directive: no '%s:3:' in %r" % (bad, r.stderr))
    h.check("frobnicate" in r.stderr, "unknown directive not named: %r" % r.stderr)
    h.check(":2:" not in r.stderr and ":4:" not in r.stderr,
            "messages for the good lines around line 3: %r" % r.stderr)

    # ---- referenced files are never opened ----
    missing = "/nonexistent-ntsd-test-dir"
    body = ("server 127.0.0.1 iburst\n"
            "server 127.0.0.1:4461 nts ca {d}/ca.pem\n"
            "nts key {d}/privkey.pem\n"
            "nts cert {d}/fullchain.pem\n"
            "nts cookie {d}/cookies\n"
            "nts ca {d}/ca-bundle.pem\n"
            "driftfile {d}/ntp.drift\n"
            "leapfile {d}/leap-seconds.list\n"
            "statsdir {d}/stats/\n"
            "logfile {d}/ntpd.log\n"
            "keys {d}/ntp.keys\n")
    conf = h.write_file("missing-files.conf", body.format(d=missing))
    r, dt = ntsd("--check", "-c", conf)
    check_no_crash_text(r, "--check missing-files.conf")
    h.log("--check missing-files.conf: rc=%d in %.2f s" % (r.returncode, dt))
    h.check(r.returncode == 0, "--check with nonexistent key/cert/drift files: exit %d, "
            "expected 0 (it must not open them)\n%s" % (r.returncode, r.stderr))
    h.check(missing not in r.stderr or "No such file" not in r.stderr,
            "--check tried to open a referenced file: %r" % r.stderr)
    # FIFOs in their place: open() on a FIFO blocks until the other end
    # opens, so a --check that opened any of them would hang.
    fifo_dir = os.path.join(tmp, "fifos")
    os.makedirs(fifo_dir)
    for n in ("ca.pem", "privkey.pem", "fullchain.pem", "cookies", "ca-bundle.pem", "ntp.drift",
              "leap-seconds.list", "ntpd.log", "ntp.keys"):
        os.mkfifo(os.path.join(fifo_dir, n))
    os.makedirs(os.path.join(fifo_dir, "stats"))
    conf = h.write_file("fifo-files.conf", body.format(d=fifo_dir))
    r, dt = ntsd("--check", "-c", conf, timeout=15)
    h.log("--check fifo-files.conf: rc=%d in %.2f s" % (r.returncode, dt))
    h.check(r.returncode == 0 and dt < 5, "--check with FIFOs as referenced files: exit %d "
            "in %.1f s\n%s" % (r.returncode, dt, r.stderr))

    # ---- names are never resolved ----
    conf = h.write_file("unresolvable.conf",
                        "server no-such-host.invalid iburst\n"
                        "pool pool.no-such-host.invalid iburst\n"
                        "server other.no-such-host.invalid:4123\n")
    r, dt = ntsd("--check", "-c", conf)
    check_no_crash_text(r, "--check unresolvable.conf")
    h.log("--check unresolvable.conf: rc=%d in %.3f s: %r" % (r.returncode, dt, r.stdout))
    h.check(r.returncode == 0, "--check with `server no-such-host.invalid`: exit %d\n%s" % (
        r.returncode, r.stderr))
    h.check(dt < 2.0, "--check with an unresolvable name took %.2f s (>= 2 s)" % dt)
    h.check("3 sources" in r.stdout, "--check did not count the 3 sources: %r" % r.stdout)

    # ---- nonexistent config file ----
    nofile = os.path.join(tmp, "does-not-exist.conf")
    r, _ = ntsd("--check", "-c", nofile)
    h.log("--check nonexistent: rc=%d %r" % (r.returncode, r.stderr))
    h.check(r.returncode == 2, "--check on a nonexistent file: exit %d, expected 2" % r.returncode)
    h.check(nofile in r.stderr and re.search(r"(?i)no such file|cannot open", r.stderr),
            "--check on a nonexistent file: unclear message %r" % r.stderr)
    r, _ = ntsd("-n", "-x", "-c", nofile, "-s", os.path.join(tmp, "nofile.sock"))
    h.check(r.returncode == 2 and nofile in r.stderr,
            "daemon with a nonexistent config: exit %d, %r" % (r.returncode, r.stderr))

    # ---- the daemon itself refuses a bad config ----
    for mode, flags in (("foreground", ["-n"]), ("daemon mode", [])):
        conf = h.write_file("bad-%s.conf" % mode.replace(" ", "-"),
                            "local stratum 1\nlisten 127.0.0.1:11999\nbogus-directive 1 2 3\n")
        sock = os.path.join(tmp, "bad-%s.sock" % mode.replace(" ", "-"))
        r, dt = ntsd(*(flags + ["-x", "-c", conf, "-s", sock]), timeout=10)
        check_no_crash_text(r, "ntsd (%s) with a bad config" % mode)
        h.log("ntsd %s, bad config: rc=%d in %.2f s, stderr %r" % (mode, r.returncode, dt,
                                                                    r.stderr))
        left = h.pids_with_cmdline(conf)
        for pid in left:  # started by this test: stop it before failing
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        h.check(not left, "ntsd (%s) with a bad config left processes running: %s" % (mode, left))
        h.check(r.returncode == 2, "ntsd (%s) with a bad config: exit %d, expected 2" % (
            mode, r.returncode))
        h.check("%s:3:" % conf in r.stderr, "ntsd (%s) with a bad config: no '%s:3:' in %r" % (
            mode, conf, r.stderr))
        h.check(not os.path.exists(sock), "ntsd (%s) with a bad config created its control "
                "socket" % mode)
        h.check(h.sntp_query("127.0.0.1", 11999, timeout=0.5) is None,
                "ntsd (%s) with a bad config answers NTP on 127.0.0.1:11999" % mode)

    # ---- daemon mode refuses to start without /dev/null ----
    # (it would keep the caller's pipes as its standard streams)
    conf = h.write_file("devnull.conf", "local stratum 1\nlisten 127.0.0.1:11998\n")
    sock = os.path.join(tmp, "devnull.sock")
    r, _ = h.run_setpriv(["unshare", "--mount", "--", "sh", "-c",
                          'mount -t tmpfs none /dev && exec "$0" "$@"', h.NTSD_BIN, "-x",
                          "-c", conf, "-s", sock], timeout=10)
    left = h.pids_with_cmdline(conf)
    for pid in left:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    h.log("ntsd daemon mode without /dev/null: rc=%d %r" % (r.returncode, r.stderr))
    h.check(not left and r.returncode == 1 and "/dev/null" in r.stderr,
            "ntsd in daemon mode without /dev/null: exit %d, %r, left running %s" % (
                r.returncode, r.stderr, left))

    # ---- no DNS traffic from any --check run ----
    time.sleep(0.3)
    trap.close()
    if trap_ok:
        h.log("DNS queries seen: %d" % len(trap.queries))
        h.check(not trap.queries, "ntsd sent DNS queries: %r" % trap.queries[:5])


h.run(main)
