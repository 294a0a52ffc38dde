#!/usr/bin/python3
"""The cookie key file and the drift file on a full or read-only disk, and
killed while being written (docs/nts.md, docs/configuration.md).

The test runs in a private mount namespace as well as the private network
namespace (unshare(CLONE_NEWNS), `mount --make-rprivate /`, before any
daemon starts), and mounts small tmpfs filesystems for the files.

Passes when:
  * key file on a read-only filesystem (no file yet), `nts rotate 60`: the
    server starts, logs one warning naming the file, "Read-only file
    system" and that the keys will not survive a restart; NTS-KE gives 8
    cookies; an NTS client (ntsd) gets authenticated responses; at the
    rotation (checked every 6 s, rotate/10) the new cookies carry the next
    key id, the client goes on without a NAK or a cookie the server cannot
    open, and there is still only that one warning; remounted read-write,
    the file is written within the next checks (a notice "written again"),
    holds both keys, and a restarted server uses the in-memory key;
  * key file on a full filesystem: the same start-up, one warning ("No
    space left on device") over several retries; space freed, the file is
    written (notice), mode 0600, and no temporary is left;
  * drift file (`--virtual-clock 0,20`: the daemon controls a virtual clock,
    so it saves the frequency at exit): read-only and full filesystems with
    an existing file: read at start, one warning at exit, exit status 0,
    the file unchanged; a writable directory: written at exit (mode 0644,
    a number within +-500 ppm, no temporary); a FIFO in its place: refused
    at start without blocking ("not a regular file (a FIFO)");
  * the real daemon killed (SIGKILL, SIGTERM) at random moments around its
    start-up rotation of an outdated key file, 40 times: the file is always
    either the old file byte for byte or a valid key file holding the old
    key and the next one; never more than one temporary left; a daemon
    started on the final file does not call it corrupt and leaves none.
"""
import ctypes
import errno
import hashlib
import os
import random
import re
import stat
import struct
import subprocess
import sys
import time
import atexit

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_RO, NTP_RO = 14471, 11171
KE_FULL, NTP_FULL = 14472, 11172
KE_KILL, NTP_KILL = 14473, 11173
ROTATE = 60
CHECK_S = ROTATE // 10
KILL_ROUNDS = 40
CLONE_NEWNS = 0x00020000

_mounts = []


# --------------------------------------------------------------------------
# Mounts
# --------------------------------------------------------------------------

def private_mounts():
    """Our own mount namespace, inherited by every daemon started after."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        h.fail("unshare(CLONE_NEWNS): %s" % os.strerror(ctypes.get_errno()))
    sh(["mount", "--make-rprivate", "/"])
    atexit.register(_unmount_all)  # runs before the harness removes the tmp dir


def _unmount_all():
    while _mounts:
        m = _mounts.pop()
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=10)
        try:
            os.rmdir(m)
        except OSError:
            pass
    if h.tmpdir() and os.environ.get("NTSD_TEST_KEEP_TMP") != "1":
        try:
            os.rmdir(h.tmpdir())  # when the harness's clean-up ran first
        except OSError:
            pass


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    if r.returncode != 0:
        h.fail("%s: rc=%d %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))


def tmpfs(name, size="256k"):
    path = os.path.join(h.tmpdir(), name)
    os.makedirs(path, mode=0o700)
    sh(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0700" % size, "ntsd-test", path])
    _mounts.append(path)
    return path


def remount(path, ro):
    sh(["mount", "-o", "remount,%s" % ("ro" if ro else "rw"), path])


def fill(path):
    """Fills the filesystem of path to the last byte; returns the filler."""
    filler = os.path.join(path, "filler")
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 4096
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
    with open(os.path.join(path, "probe"), "wb", buffering=0) as f:
        try:
            f.write(b"x" * 100)
            h.fail("%s is not full" % path)
        except OSError:
            pass
    os.unlink(os.path.join(path, "probe"))
    return filler


def temporaries(d):
    return [f for f in os.listdir(d) if f.endswith(".ntsd-tmp")]


# --------------------------------------------------------------------------
# Key files (docs/nts-cookies.md: NTSDKEY1, version, count, entries, checksum)
# --------------------------------------------------------------------------

def parse_keyfile(b):
    """[(id, created, key)] of a valid key file, else None."""
    if len(b) < 28 or b[:8] != b"NTSDKEY1":
        return None
    version, count = struct.unpack("!HH", b[8:12])
    if version != 1 or not 1 <= count <= 8 or len(b) != 12 + 44 * count + 16:
        return None
    if hashlib.sha256(b[:-16]).digest()[:16] != b[-16:]:
        return None
    return [struct.unpack("!IQ32s", b[12 + 44 * i:56 + 44 * i]) for i in range(count)]


def make_keyfile(entries):
    body = b"NTSDKEY1" + struct.pack("!HH", 1, len(entries))
    body += b"".join(struct.pack("!IQ32s", *e) for e in entries)
    return body + hashlib.sha256(body).digest()[:16]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def warnings(proc, what):
    return [ln for ln in proc.read_log().splitlines() if "warning: %s " % what in ln]


_src = [0]


def ke_key_id(port, pki, what):
    """One NTS-KE exchange: checks 8 cookies, returns their key id (hex)."""
    _src[0] += 1
    res = h.ke_exchange(port, h.ke_request((15,)), ca=pki.ca_cert,
                        src="127.2.0.%d" % _src[0])
    h.check(res["handshake"] is True, "%s: TLS handshake: %s" % (what, res["handshake"]))
    try:
        recs = h.ke_parse(res["response"])
    except ValueError as e:
        h.fail("%s: malformed NTS-KE response: %s" % (what, e))
    cookies = [b for _, t, b in recs if t == h.KE_NEW_COOKIE]
    h.check(len(cookies) == 8, "%s: %d cookies, expected 8" % (what, len(cookies)))
    ids = {c[:4] for c in cookies}
    h.check(len(ids) == 1, "%s: cookies under several key ids %r" % (what, ids))
    return cookies[0][:4].hex()


def client_state(client):
    ps = client.peers()
    h.check(len(ps) == 1, "client has %d associations" % len(ps))
    return ps[0]


def wait_accepting(client, since, what, timeout=20):
    def ok():
        p = client_state(client)
        return p if p["accepted"] >= since + 3 and p["cookies"] == 8 else None
    p = h.wait_until(ok, timeout, "%s: 3 more authenticated responses and 8 cookies" % what)
    h.log("%s: client accepted %d, %d cookies" % (what, p["accepted"], p["cookies"]))
    return p


def check_server_opened_all(srv, what):
    n = srv.ctl_json("nts")
    h.check(n["cookies_too_old"] == 0 and n["cookie_decode_errors"] == 0 and
            n["server_naks"] == 0 and n["cookies_decoded"] > 0,
            "%s: the server did not open every cookie: %r" % (what, n))


# --------------------------------------------------------------------------
# Drift file daemons
# --------------------------------------------------------------------------

def drift_daemon(name, path):
    return h.Ntsd(name, ["interface ignore all", "driftfile %s" % path,
                         "server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % NTP_RO],
                  ready="sys", args=["--virtual-clock", "0,20"])


def check_drift(daemons, dro, dfull, dok, fifo):
    for name, d in daemons.items():
        h.wait_until(lambda: d.ctl_json("sys")["synced"], 30, "%s to synchronise" % name)
    ro, full, ok, ff = (daemons[k] for k in ("drift-ro", "drift-full", "drift-ok", "drift-fifo"))
    for d in (ro, full):
        h.check(re.search(r"driftfile \S+: \+(12\.5|7\.0)00 ppm", d.proc.read_log()),
                "%s did not read its drift file" % d.name)
    h.check("not a regular file (a FIFO)" in ff.proc.read_log(),
            "a FIFO as the drift file was not refused")
    for d in daemons.values():
        rc = d.proc.stop()
        h.check(rc == 0, "%s exited with %s" % (d.name, rc))
    for d, path, text, why in ((ro, dro, b"12.500\n", "Read-only file system"),
                               (full, dfull, b"7.000\n", "No space left on device")):
        w = warnings(d.proc, "driftfile")
        h.log("%s: %s" % (d.name, w))
        h.check(len(w) == 1 and why in w[0] and path in w[0] and
                "will not survive a restart" in w[0],
                "%s: expected one warning naming the file and %r: %r" % (d.name, why, w))
        h.check(read(path) == text, "%s: the drift file changed: %r" % (d.name, read(path)))
        h.check(not temporaries(os.path.dirname(path)), "%s: temporaries left" % d.name)
    text = read(dok).decode()
    st = os.stat(dok)
    h.log("drift-ok wrote %r, mode %o" % (text, stat.S_IMODE(st.st_mode)))
    h.check(re.fullmatch(r"-?\d+\.\d{3}\n", text) and abs(float(text)) <= 500,
            "drift file written at exit: %r" % text)
    h.check(stat.S_IMODE(st.st_mode) == 0o644, "drift file mode %o" % st.st_mode)
    h.check(not temporaries(os.path.dirname(dok)) and not warnings(ok.proc, "driftfile"),
            "drift-ok: temporaries or warnings")
    h.check(stat.S_ISREG(os.stat(fifo).st_mode), "the FIFO was not replaced at exit")


# --------------------------------------------------------------------------
# Killed while writing
# --------------------------------------------------------------------------

def kill_rounds(pki):
    d = os.path.join(h.tmpdir(), "kill")
    os.makedirs(d, mode=0o700)
    keyfile = os.path.join(d, "keys")
    old_entry = (0x5a5a0001, int(time.time()) - 7200, os.urandom(32))
    old = make_keyfile([old_entry])  # two hours old: rotated at start-up
    conf = os.path.join(d, "ntp.conf")
    with open(conf, "w") as f:
        f.write("disable ntp\nlocal stratum 1\nlisten 127.0.0.1:%d\nnts enable\n"
                "nts cert %s\nnts key %s\nnts cookie %s\nnts rotate 3600\n"
                "nts-listen-on 127.0.0.1:%d\n" % (NTP_KILL, pki.chain, pki.key, keyfile,
                                                  KE_KILL))
    logf = open(os.path.join(h.tmpdir(), "kill-rounds.log"), "ab")

    def start():
        with open(keyfile, "wb") as f:
            f.write(old)
        os.chmod(keyfile, 0o600)
        return subprocess.Popen(h.SETPRIV + [h.NTSD_BIN, "-c", conf, "-n", "-x", "-s",
                                             os.path.join(d, "sock")],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                preexec_fn=h._pdeathsig, close_fds=True)

    def stop(p, sig):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
            h.fail("ntsd did not exit within 5 s of signal %d" % sig)

    # When, after the start, is the file rewritten?
    t0 = time.monotonic()
    p = start()
    while read(keyfile) == old and time.monotonic() - t0 < 10:
        time.sleep(0.001)
    t_write = time.monotonic() - t0
    stop(p, 9)
    h.check(parse_keyfile(read(keyfile)) is not None, "the start-up rotation did not write")
    h.log("kill rounds: the key file is rewritten %.1f ms after the start" % (t_write * 1e3))
    seen = {"old": 0, "new": 0}
    most_left = 0
    rng = random.Random()
    for i in range(KILL_ROUNDS):
        sig = 9 if i % 2 else 15
        p = start()
        time.sleep(rng.uniform(0, 2 * t_write))
        stop(p, sig)
        b = read(keyfile)
        if b == old:
            seen["old"] += 1
        else:
            e = parse_keyfile(b)
            h.check(e is not None, "round %d (signal %d): the key file is torn or corrupt "
                    "(%d bytes)" % (i, sig, len(b)))
            h.check(len(e) == 2 and e[0] == old_entry and e[1][0] == old_entry[0] + 1,
                    "round %d: the key file holds %r, not the old key and the next" % (
                        i, [(x[0], x[1]) for x in e]))
            seen["new"] += 1
        left = temporaries(d)
        most_left = max(most_left, len(left))
        h.check(len(left) <= 1, "round %d: temporaries pile up: %r" % (i, left))
    logf.close()
    h.log("kill rounds: %d kills: old file %d times, rotated file %d times; at most %d "
          "temporary left" % (KILL_ROUNDS, seen["old"], seen["new"], most_left))
    h.check(seen["old"] and seen["new"], "the kills did not land on both sides of the "
            "write: %r" % seen)
    final = h.NtsKeServer("after-kills", pki, KE_KILL, NTP_KILL, cookie_file=keyfile)
    h.check("corrupt" not in final.proc.read_log(), "the key file left by the kills is "
            "called corrupt")
    ke_key_id(KE_KILL, pki, "after the kills")
    final.proc.stop()
    h.check(not temporaries(d), "temporaries left after a clean start: %r" % temporaries(d))


# --------------------------------------------------------------------------

def main():
    h.require_ours()
    private_mounts()
    try:
        run_tests()
    finally:
        _unmount_all()


def run_tests():
    pki = h.make_test_pki()
    kro, kfull = tmpfs("mnt-keys-ro"), tmpfs("mnt-keys-full")
    dro_dir, dfull_dir = tmpfs("mnt-drift-ro"), tmpfs("mnt-drift-full")
    remount(kro, True)
    kfiller = fill(kfull)
    dro, dfull = os.path.join(dro_dir, "ntp.drift"), os.path.join(dfull_dir, "ntp.drift")
    with open(dro, "w") as f:
        f.write("12.500\n")
    with open(dfull, "w") as f:
        f.write("7.000\n")
    remount(dro_dir, True)
    fill(dfull_dir)
    dok = os.path.join(h.tmpdir(), "ntp.drift")
    fifo = os.path.join(h.tmpdir(), "fifo.drift")
    os.mkfifo(fifo)

    extra = ["nts rotate %d" % ROTATE]
    t_start = time.monotonic()
    a = h.NtsKeServer("keys-ro", pki, KE_RO, NTP_RO, cookie_file=os.path.join(kro, "keys"),
                      extra=extra)
    b = h.NtsKeServer("keys-full", pki, KE_FULL, NTP_FULL,
                      cookie_file=os.path.join(kfull, "keys"), extra=extra)
    for srv, why in ((a, "Read-only file system"), (b, "No space left on device")):
        w = warnings(srv.proc, "nts cookie")
        h.log("%s: %s" % (srv.name, w))
        h.check(len(w) == 1 and why in w[0] and srv.cookie_file in w[0] and
                "will not survive a restart" in w[0],
                "%s: expected one warning naming the file and %r, got %r" % (srv.name, why, w))
    kid_a = ke_key_id(KE_RO, pki, "read-only")
    kid_b = ke_key_id(KE_FULL, pki, "full")
    client = h.Ntsd("client", ["interface ignore all", "nts ca %s" % pki.ca_cert,
                               "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_RO])
    drift = {"drift-ro": drift_daemon("drift-ro", dro),
             "drift-full": drift_daemon("drift-full", dfull),
             "drift-ok": drift_daemon("drift-ok", dok),
             "drift-fifo": drift_daemon("drift-fifo", fifo)}
    p = wait_accepting(client, 0, "read-only key file")
    check_server_opened_all(a, "read-only key file")

    # Full: several failed retries, one warning; space back: written.
    time.sleep(max(0, 3 * CHECK_S - (time.monotonic() - t_start)))
    h.check(len(warnings(b.proc, "nts cookie")) == 1, "full: more than one warning")
    os.unlink(kfiller)
    h.wait_until(lambda: "written again, after" in b.proc.read_log(), 3 * CHECK_S,
                 "the full disk's key file to be written once there is space")
    e = parse_keyfile(read(b.cookie_file))
    h.check(e is not None and "%08x" % e[-1][0] == kid_b,
            "full: the key file written does not hold key %s: %r" % (kid_b, e))
    h.check(stat.S_IMODE(os.stat(b.cookie_file).st_mode) == 0o600, "full: key file mode")
    h.check(sorted(os.listdir(kfull)) == ["keys"], "full: %r" % os.listdir(kfull))
    h.log("full: written after %d warning(s); %s" % (
        len(warnings(b.proc, "nts cookie")),
        [ln for ln in b.proc.read_log().splitlines() if "written again, after" in ln]))

    check_drift(drift, dro, dfull, dok, fifo)

    # Read-only: the rotation happens in memory; cookies keep working.
    h.wait_until(lambda: "NTS cookie key rotated" in a.proc.read_log(), ROTATE + 3 * CHECK_S,
                 "the read-only server to rotate its key", interval=0.5)
    kid_a2 = ke_key_id(KE_RO, pki, "read-only, after the rotation")
    h.log("read-only: key %s -> %s after %.0f s" % (kid_a, kid_a2, time.monotonic() - t_start))
    h.check(int(kid_a2, 16) == int(kid_a, 16) + 1, "rotation: key %s after %s" % (kid_a2, kid_a))
    wait_accepting(client, p["accepted"], "read-only key file, after the rotation")
    check_server_opened_all(a, "read-only key file, after the rotation")
    w = warnings(a.proc, "nts cookie")
    h.check(len(w) == 1, "read-only: %d warnings after the rotation: %r" % (len(w), w))
    h.check(not os.path.exists(a.cookie_file), "a key file on a read-only filesystem")
    remount(kro, False)
    h.wait_until(lambda: "written again, after" in a.proc.read_log(), 3 * CHECK_S,
                 "the read-only server's key file to be written once the disk is writable")
    e = parse_keyfile(read(a.cookie_file))
    h.check(e is not None and ["%08x" % x[0] for x in e] == [kid_a, kid_a2],
            "read-only: the file written holds %r, expected keys %s and %s" % (
                e and [x[0] for x in e], kid_a, kid_a2))
    a.restart()
    h.check("NTS cookie key %s in use" % kid_a2 in a.proc.read_log(),
            "the restarted server does not use the key kept in memory before")
    h.check(ke_key_id(KE_RO, pki, "restarted") == kid_a2, "restarted: another key")

    kill_rounds(pki)


h.run(main)
