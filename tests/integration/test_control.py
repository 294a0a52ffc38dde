#!/usr/bin/python3
"""The control socket and ntsctl (docs/ntsctl.md).

ntsd -n -x -c CONF -s SOCK with `listen 127.0.0.1:PORT` + `local stratum 1`:

  * the socket is a socket file with mode 0600;
  * raw AF_UNIX requests: `peers json` (a JSON array), `sys json` (the
    documented keys; stratum 1, refid .LOCL.), `server json` (counters);
  * malformed requests get an error reply and a close: unknown command,
    stray/unknown option, a 300-byte line ("request too long", closed by the
    daemon without our EOF), non-printable bytes;
  * a client that sends nothing is closed within ~3 s (2 s request timeout);
  * 30 idle connections at once: the daemon keeps at most 16, and a normal
    request from a new connection succeeds within 5 s;
  * 200 random byte strings (fixed seed, up to 1000 bytes) each get an error
    reply or a close, and the daemon keeps serving (control and NTP);
  * JSON error replies quoting request words with `"` and `\` parse as JSON
    and give the words back;
  * ntsctl: `peers` table header, `bogus` -> exit 1 with "error:" on stderr,
    a missing socket -> exit 1 with a message, no command -> exit 2;
  * the socket appears with its final mode and group, never before: an
    inotify watch on its directory sees the final name arrive only by a
    rename (IN_MOVED_TO; no IN_CREATE or IN_ATTRIB on it), the temporary
    it was bound under get its group and mode (IN_ATTRIB) before; then
    mode 0600, or 0660 and the group with `controlsocket PATH group NAME`;
    a stale socket is replaced; nothing else is left in the directory; an
    unknown group fails the start and leaves nothing.
"""
import ctypes
import grp
import json
import os
import random
import select
import socket
import stat
import struct
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT = 11223
SYS_KEYS = ("synced", "offset", "frequency", "stratum", "refid", "leap", "root_delay",
            "root_dispersion", "system_peer")


def section(name):
    h.log("=== %s ===" % name)


def is_error_reply(b):
    return b.startswith(b"error:") or b.startswith(b'{"error":')


def request_json(sock, line):
    reply, closed = h.ctl_raw(sock, line, timeout=5.0, shut_wr=False)
    h.check(closed, "%r: the daemon did not close the connection after its reply (got %r)" % (
        line, reply[:200]))
    h.check(reply.endswith(b"\n"), "%r: reply does not end with a newline: %r" % (line,
                                                                                  reply[-100:]))
    try:
        return json.loads(reply.decode("utf-8"))
    except ValueError as e:
        h.fail("%r: invalid JSON (%s): %r" % (line, e, reply[:500]))


def expect_error(sock, data, what, contains=None, shut_wr=False, json_form=None):
    reply, closed = h.ctl_raw(sock, data, timeout=5.0, shut_wr=shut_wr)
    h.log("%s -> %r (closed=%s)" % (what, reply[:120], closed))
    h.check(closed, "%s: connection not closed after the reply (got %r)" % (what, reply[:200]))
    if json_form is None:  # either form; a request naming json may get the JSON one
        json_form = reply.startswith(b"{")
        h.check(not json_form or b"json" in data, "%s: JSON error reply to a request not "
                "asking for JSON: %r" % (what, reply[:200]))
    if json_form:
        try:
            v = json.loads(reply.decode("utf-8"))
        except ValueError:
            h.fail("%s: expected a JSON error object, got %r" % (what, reply[:200]))
        h.check(isinstance(v, dict) and isinstance(v.get("error"), str) and v["error"],
                "%s: expected {\"error\": MESSAGE}, got %r" % (what, v))
        msg = v["error"]
    else:
        h.check(reply.startswith(b"error: "), "%s: reply %r does not start with 'error:'" % (
            what, reply[:200]))
        h.check(reply.endswith(b"\n") and reply.count(b"\n") == 1,
                "%s: error reply is not one line: %r" % (what, reply[:300]))
        msg = reply[len(b"error: "):].decode("utf-8", "replace")
    if contains:
        h.check(contains in msg, "%s: error %r does not say %r" % (what, msg, contains))
    return msg


def wait_closed(s, timeout):
    """Seconds until the daemon closed `s` (EOF, reset or an error reply
    followed by EOF), or None if still open after `timeout`."""
    t0 = time.monotonic()
    buf = b""
    while True:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            return None, buf
        rd, _, _ = select.select([s], [], [], left)
        if not rd:
            continue
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return time.monotonic() - t0, buf
        if not chunk:
            return time.monotonic() - t0, buf
        buf += chunk


def is_closed_now(s):
    rd, _, _ = select.select([s], [], [], 0)
    if not rd:
        return False
    try:
        return s.recv(4096, socket.MSG_PEEK) == b""
    except ConnectionResetError:
        return True


def ntsctl(sock, *args):
    cmd = [h.NTSCTL_BIN] + (["-s", sock] if sock else []) + list(args)
    return h.run_cmd(cmd, timeout=10)


def main():
    h.require_ours()
    d = h.Ntsd("ntsd", ["listen 127.0.0.1:%d" % PORT, "local stratum 1"])
    sock = d.sock

    section("socket file")
    st = os.stat(sock)
    h.log("%s: mode %o" % (sock, st.st_mode))
    h.check(stat.S_ISSOCK(st.st_mode), "%s is not a socket" % sock)
    h.check(stat.S_IMODE(st.st_mode) == 0o600, "control socket mode %o, expected 0600" %
            stat.S_IMODE(st.st_mode))
    h.check(st.st_uid == os.getuid(), "control socket owned by uid %d" % st.st_uid)

    section("well-formed requests")
    peers = request_json(sock, b"peers json\n")
    h.check(isinstance(peers, list), "peers json: expected a JSON array, got %r" % (peers,))
    h.check(peers == [], "peers json with no sources: %r" % (peers,))
    # Same without the trailing newline handling quirks: CRLF and an EOF.
    reply, closed = h.ctl_raw(sock, b"peers json\r\n", shut_wr=True)
    h.check(closed and json.loads(reply.decode()) == [], "peers json CRLF: %r" % reply[:200])

    sysv = request_json(sock, b"sys json\n")
    h.log("sys: %r" % sysv)
    h.check(isinstance(sysv, dict), "sys json: expected an object, got %r" % (sysv,))
    missing = [k for k in SYS_KEYS if k not in sysv]
    h.check(not missing, "sys json lacks keys %s: %r" % (missing, sysv))
    h.check(isinstance(sysv["synced"], bool), "sys synced not a bool: %r" % sysv)
    for k in ("offset", "frequency", "root_delay", "root_dispersion"):
        h.check(isinstance(sysv[k], (int, float)) and not isinstance(sysv[k], bool),
                "sys %s not a number: %r" % (k, sysv))
    h.check(sysv["stratum"] == 1, "sys stratum %r, expected 1 (local stratum 1)" %
            sysv["stratum"])
    h.check(sysv["refid"] == ".LOCL.", "sys refid %r, expected .LOCL." % sysv["refid"])
    h.check(sysv["leap"] == 0, "sys leap %r, expected 0" % sysv["leap"])
    h.check(sysv["system_peer"] == "", "sys system_peer %r, expected empty" %
            sysv["system_peer"])

    srv = request_json(sock, b"server json\n")
    h.log("server: %r" % srv)
    h.check(isinstance(srv, dict), "server json: expected an object, got %r" % (srv,))
    for k in ("received", "responded", "dropped", "kod_sent"):
        h.check(k in srv, "server json lacks %r: %r" % (k, srv))
    h.check_server_schema(srv)
    h.check("127.0.0.1:%d" % PORT in srv.get("sockets", []),
            "server json sockets %r lack 127.0.0.1:%d" % (srv.get("sockets"), PORT))

    # Plain-text replies are not JSON and not errors.
    reply, closed = h.ctl_raw(sock, b"sys\n", shut_wr=False)
    h.check(closed and b"stratum" in reply and not is_error_reply(reply),
            "plain `sys`: %r" % reply[:300])

    section("malformed requests")
    expect_error(sock, b"bogus\n", "unknown command", contains="unknown command",
                 json_form=False)
    expect_error(sock, b"bogus json\n", "unknown command, JSON", json_form=True)
    expect_error(sock, b"peers xml\n", "peers xml", contains="xml", json_form=False)
    expect_error(sock, b"peers json extra\n", "stray word", contains="extra", json_form=True)
    expect_error(sock, b"\n", "empty line")
    expect_error(sock, b"x" * 299 + b"\n", "300-byte line", contains="request too long")
    expect_error(sock, b"peers " + b"y" * 400, "400 bytes without a newline",
                 contains="request too long")
    expect_error(sock, b"peers\x01\n", "control byte", contains="non-printable",
                 json_form=False)
    expect_error(sock, b"peers\x1b[2J json\n", "escape sequence", contains="non-printable")
    expect_error(sock, b"pe\xffers\n", "byte 0xff", contains="non-printable")
    expect_error(sock, b"peers\x00json\n", "NUL byte")
    expect_error(sock, b'x"y json\n', "quote in a JSON error", contains='unknown command \'x"y\'',
                 json_form=True)
    expect_error(sock, b'peers a\\"}{ json\n', "backslash and quote in a JSON error",
                 contains='unexpected \'a\\"}{\'', json_form=True)

    section("idle client")
    s = h.ctl_connect(sock)
    dt, buf = wait_closed(s, 4.0)
    s.close()
    h.log("idle connection closed after %s s (%r)" % (dt, buf))
    h.check(dt is not None and dt <= 3.5,
            "a client that sends nothing was not closed within 3.5 s")
    h.check(buf == b"" or is_error_reply(buf), "idle client got %r" % buf)

    section("trickling client")
    # One byte every 0.4 s never completes a line: the whole request has a
    # 2 s deadline from the accept, not a per-read timeout.
    s = h.ctl_connect(sock)
    t0 = time.monotonic()
    closed_after = None
    while time.monotonic() - t0 < 6.0:
        try:
            s.sendall(b"p")
        except OSError:
            closed_after = time.monotonic() - t0
            break
        if is_closed_now(s):
            closed_after = time.monotonic() - t0
            break
        time.sleep(0.4)
    s.close()
    h.log("trickling client closed after %s s" % closed_after)
    h.check(closed_after is not None and closed_after <= 3.5,
            "a client sending one byte every 0.4 s was not closed within 3.5 s")

    section("30 idle connections")
    idle = []
    t0 = time.monotonic()
    try:
        for _ in range(30):
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(5)
            try:
                c.connect(sock)
            except OSError as e:
                h.log("idle connect refused: %s" % e)
                c.close()
                continue
            idle.append(c)
        h.log("%d idle connections open in %.2f s" % (len(idle), time.monotonic() - t0))
        time.sleep(0.5)
        still_open = [c for c in idle if not is_closed_now(c)]
        h.log("after 0.5 s the daemon keeps %d of them" % len(still_open))
        h.check(len(still_open) <= 16, "the daemon keeps %d idle control connections, the cap "
                "is 16" % len(still_open))
        # A real request must get through within 5 s (once idle ones time out).
        t1 = time.monotonic()
        attempts = 0
        got = None
        while time.monotonic() - t1 < 5.0:
            attempts += 1
            try:
                reply, closed = h.ctl_raw(sock, b"peers json\n", timeout=2.0, shut_wr=False)
            except OSError:
                reply, closed = b"", False
            if closed and reply:
                got = reply
                break
            time.sleep(0.1)
        h.log("peers json with 30 idle clients: %s after %.2f s, %d attempts" % (
            "answered" if got else "NOT answered", time.monotonic() - t1, attempts))
        h.check(got is not None, "no answer to `peers json` within 5 s while 30 idle "
                "connections were open")
        h.check(json.loads(got.decode()) == [], "peers json reply %r" % got[:200])
        # Every idle connection is closed by the daemon in the end.
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not all(is_closed_now(c) for c in idle):
            time.sleep(0.1)
        n_open = sum(1 for c in idle if not is_closed_now(c))
        h.check(n_open == 0, "%d idle connections still open %.1f s later" % (
            n_open, time.monotonic() - t0))
    finally:
        for c in idle:
            c.close()

    section("random garbage")
    rnd = random.Random(20240611)
    outcomes = {"error": 0, "closed": 0}
    for i in range(200):
        n = rnd.randint(1, 1000)
        data = bytes(rnd.getrandbits(8) for _ in range(n))
        reply, closed = h.ctl_raw(sock, data, timeout=5.0, shut_wr=True)
        h.check(closed, "garbage #%d (%d bytes): connection not closed within 5 s" % (i, n))
        if reply:
            h.check(is_error_reply(reply), "garbage #%d (%d bytes %r...): reply %r" % (
                i, n, data[:16], reply[:200]))
            outcomes["error"] += 1
        else:
            outcomes["closed"] += 1
        if i % 50 == 49:
            d.proc.check_alive()
    h.log("200 garbage requests: %r" % outcomes)
    d.proc.check_alive()
    h.check(request_json(sock, b"peers json\n") == [], "peers json after garbage")
    r = h.sntp_query("127.0.0.1", PORT, timeout=1.0)
    h.check(r is not None and r["stratum"] == 1, "no stratum-1 NTP reply after the control "
            "garbage: %r" % (r,))

    section("ntsctl")
    r = ntsctl(sock, "peers")
    h.log("ntsctl peers: rc=%d %r" % (r.returncode, r.stdout[:200]))
    h.check(r.returncode == 0, "ntsctl peers: exit %d (%s)" % (r.returncode, r.stderr))
    head = r.stdout.splitlines()[0] if r.stdout else ""
    h.check("remote" in head and "refid" in head, "ntsctl peers header %r" % head)
    r = ntsctl(sock, "sys", "--json")
    h.check(r.returncode == 0 and json.loads(r.stdout)["stratum"] == 1,
            "ntsctl sys --json: rc=%d %r" % (r.returncode, r.stdout[:200]))
    r = ntsctl(sock, "bogus")
    h.log("ntsctl bogus: rc=%d stderr=%r stdout=%r" % (r.returncode, r.stderr, r.stdout))
    h.check(r.returncode == 1, "ntsctl bogus: exit %d, expected 1" % r.returncode)
    h.check("error:" in r.stderr, "ntsctl bogus: no 'error:' on stderr: %r" % r.stderr)
    h.check(r.stdout == "", "ntsctl bogus printed on stdout: %r" % r.stdout)
    r = ntsctl(sock, "bogus", "--json")
    h.check(r.returncode == 1 and "error" in r.stderr,
            "ntsctl bogus --json: rc=%d stderr=%r" % (r.returncode, r.stderr))
    nosock = "/nonexistent-ntsd-dir/ntsd.sock"
    r = ntsctl(nosock, "peers")
    h.log("ntsctl -s %s peers: rc=%d %r" % (nosock, r.returncode, r.stderr))
    h.check(r.returncode == 1, "ntsctl with a missing socket: exit %d, expected 1" %
            r.returncode)
    h.check(nosock in r.stderr, "ntsctl with a missing socket: message %r does not name it" %
            r.stderr)
    r = ntsctl(None)
    h.log("ntsctl (no command): rc=%d" % r.returncode)
    h.check(r.returncode == 2, "ntsctl with no command: exit %d, expected 2" % r.returncode)
    h.check("usage" in r.stderr.lower(), "ntsctl with no command: no usage on stderr: %r" %
            r.stderr)
    r = ntsctl(sock)
    h.check(r.returncode == 2, "ntsctl -s SOCK with no command: exit %d, expected 2" %
            r.returncode)

    d.proc.check_alive()

    section("socket permissions without a window")
    group = pick_group()
    socket_appears_whole(None, PORT + 1)
    socket_appears_whole(group, PORT + 2, stale=True)
    socket_unknown_group(PORT + 3)


IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x4, 0x40, 0x80, 0x100, 0x200
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
EV_NAMES = {IN_ATTRIB: "ATTRIB", IN_MOVED_FROM: "MOVED_FROM", IN_MOVED_TO: "MOVED_TO",
            IN_CREATE: "CREATE", IN_DELETE: "DELETE"}


class DirWatch:
    """inotify on one directory: [(event name, file name, cookie)]."""

    def __init__(self, path):
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        h.check(self.fd >= 0, "inotify_init1: %s" % os.strerror(ctypes.get_errno()))
        mask = IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        wd = libc.inotify_add_watch(self.fd, path.encode(), mask)
        h.check(wd >= 0, "inotify_add_watch: %s" % os.strerror(ctypes.get_errno()))
        self.events = []

    def read(self):
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return self.events
            i = 0
            while i + 16 <= len(buf):
                _, mask, cookie, n = struct.unpack_from("iIII", buf, i)
                name = buf[i + 16:i + 16 + n].split(b"\0")[0].decode()
                self.events.append((EV_NAMES.get(mask & 0xfff, hex(mask)), name, cookie))
                i += 16 + n

    def close(self):
        os.close(self.fd)


def pick_group():
    """A group other than root and our own, for `controlsocket ... group`."""
    for name in ("daemon", "adm", "nogroup", "users"):
        try:
            g = grp.getgrnam(name)
        except KeyError:
            continue
        if g.gr_gid not in (0, os.getegid()):
            return g
    for g in grp.getgrall():
        if g.gr_gid not in (0, os.getegid()):
            return g
    h.skip("no group other than root here")


def socket_appears_whole(group, port, stale=False):
    what = "group %s" % group.gr_name if group else "no group"
    d = os.path.join(h.tmpdir(), "sockdir-%d" % port)
    os.makedirs(d, mode=0o755)
    sock = os.path.join(d, "ctl.sock")
    lines = ["disable ntp", "local stratum 1", "listen 127.0.0.1:%d" % port]
    if group:
        lines.append("controlsocket %s group %s" % (sock, group.gr_name))
    conf = h.write_file("sock-%d.conf" % port, "\n".join(lines) + "\n")
    if stale:  # a socket file left by a previous run, nobody listening
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(sock)
        s.close()
    w = DirWatch(d)
    p = h.start_process("ctl-%d" % port, [h.NTSD_BIN, "-c", conf, "-n", "-x", "-s", sock],
                        kind="ours")
    h.wait_until(lambda: request_json(sock, b"sys json\n")["stratum"] == 1, 10,
                 "%s: the control socket" % what)
    ev = w.read()
    h.log("%s: inotify events: %s" % (what, ev))
    final = [e for e in ev if e[1] == "ctl.sock"]
    h.check([e[0] for e in final] == ["MOVED_TO"],
            "%s: the socket did not appear by a rename alone: %s" % (what, final))
    moved_from = [e for e in ev if e[0] == "MOVED_FROM" and e[2] == final[0][2]]
    h.check(len(moved_from) == 1, "%s: no temporary renamed onto the socket: %s" % (what, ev))
    tmp = moved_from[0][1]
    tmp_ev = [e[0] for e in ev if e[1] == tmp]
    h.check(tmp_ev[0] == "CREATE" and tmp_ev[-1] == "MOVED_FROM" and
            (("ATTRIB" in tmp_ev) == bool(group)),
            "%s: events of the temporary %s: %s" % (what, tmp, tmp_ev))
    st = os.lstat(sock)
    mode = stat.S_IMODE(st.st_mode)
    h.log("%s: %s mode %o gid %d" % (what, sock, mode, st.st_gid))
    h.check(stat.S_ISSOCK(st.st_mode), "%s: not a socket" % what)
    if group:
        h.check(mode == 0o660 and st.st_gid == group.gr_gid,
                "%s: mode %o gid %d, expected 0660 and gid %d" % (what, mode, st.st_gid,
                                                                  group.gr_gid))
    else:
        h.check(mode == 0o600, "%s: mode %o, expected 0600" % (what, mode))
    h.check(os.listdir(d) == ["ctl.sock"], "%s: left in the directory: %r" % (
        what, os.listdir(d)))
    p.stop()
    h.check(os.listdir(d) == [], "%s: after the stop: %r" % (what, os.listdir(d)))
    w.close()


def socket_unknown_group(port):
    d = os.path.join(h.tmpdir(), "sockdir-%d" % port)
    os.makedirs(d, mode=0o755)
    sock = os.path.join(d, "ctl.sock")
    conf = h.write_file("sock-%d.conf" % port, "disable ntp\nlocal stratum 1\nlisten "
                        "127.0.0.1:%d\ncontrolsocket %s group no-such-group-ntsd\n" % (port,
                                                                                       sock))
    r, _ = h.run_setpriv([h.NTSD_BIN, "-c", conf, "-n", "-x", "-s", sock])
    h.log("unknown group: rc=%d %r" % (r.returncode, r.stderr.strip()[-200:]))
    h.check(r.returncode != 0 and "no such group" in r.stderr,
            "an unknown control socket group: rc=%d %r" % (r.returncode, r.stderr))
    h.check(os.listdir(d) == [], "unknown group: left %r" % os.listdir(d))


h.run(main)
