#!/usr/bin/python3
"""ntsd_kefetch (bench/tools/kefetch.c), the NTS-KE tool `make soak` uses to
give ntpperf a C2S key and a cookie, against our NTS-KE server.

One private namespace, loopback: an ntsd NTS server (NTS-KE on
127.0.0.1:KE_PORT, NTP on 127.0.0.1:NTP_PORT).

Passes when:
  * `ntsd_kefetch -c CA 127.0.0.1 KE_PORT` exits 0 and prints exactly one
    line `15 C2S,COOKIE` (a 32-byte key and a cookie of a multiple of 4
    bytes, upper-case hex, what `ntpperf -S` takes), names the NTP port
    the server advertised on stderr, and the server counts one good KE;
    `-a 17` gives AEAD 17 and a 64-byte key;
  * the cookie is the server's own: an NTS request carrying it is decoded
    (cookies_decoded + 1, no decode error); and the key is the real C2S
    key: the request authenticated with it (AES-SIV, built by nts_relay.py
    on the AES-CMAC of Python's `cryptography` where installed) is counted good
    and answered, while the same request with one key bit flipped is
    counted bad;
  * failures are reported, with exit 1 and nothing on stdout: an untrusted
    CA (certificate verification failed), a wrong name (-n), a closed port,
    a server that accepts and never answers (timed out, within -t);
    bad arguments exit 2.
"""
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")

def kefetch(*args, timeout=30):
    r = h.run_cmd([KEFETCH] + list(args), timeout=timeout)
    h.log("ntsd_kefetch %s -> rc %d, stdout %r, stderr %r" % (
        " ".join(args), r.returncode, r.stdout[:40] + ("..." if len(r.stdout) > 40 else ""),
        r.stderr.strip()))
    return r


def send_and_wait(pkt, xmt, wait=1.0):
    """Sends to the server; the matching reply, or None."""
    return h.udp_exchange(pkt, xmt, ("127.0.0.1", NTP_PORT), wait)


def check_output(r, aead, key_len):
    h.check(r.returncode == 0, "ntsd_kefetch failed (rc %d): %s" % (r.returncode, r.stderr))
    m = re.fullmatch(r"(\d+) ([0-9A-F]+),([0-9A-F]+)\n", r.stdout)
    h.check(m is not None, "ntsd_kefetch printed %r, want 'AEAD C2S,COOKIE'" % r.stdout)
    h.check(int(m.group(1)) == aead, "AEAD %s, want %d" % (m.group(1), aead))
    key, cookie = bytes.fromhex(m.group(2)), bytes.fromhex(m.group(3))
    h.check(len(key) == key_len, "C2S key of %d bytes, want %d" % (len(key), key_len))
    h.check(len(cookie) >= 16 and len(cookie) % 4 == 0, "cookie of %d bytes" % len(cookie))
    h.check("port %d" % NTP_PORT in r.stderr,
            "stderr does not name the advertised NTP port %d: %r" % (NTP_PORT, r.stderr))
    return key, cookie


def part_good(pki, srv):
    r = kefetch("-c", pki.ca_cert, "127.0.0.1", str(KE_PORT))
    key, cookie = check_output(r, 15, 32)
    st = srv.nts_stats()
    h.check(st["ke_serves_good"] == 1 and st["ke_serves_bad"] == 0,
            "server KE counters after one fetch: %r" % st)
    r17 = kefetch("-c", pki.ca_cert, "-a", "17", "localhost", str(KE_PORT))
    h.check(r17.returncode == 2, "a host name is not an address literal: want rc 2")
    r17 = kefetch("-c", pki.ca_cert, "-n", "localhost", "-a", "17", "127.0.0.1", str(KE_PORT))
    check_output(r17, 17, 64)
    return key, cookie


def part_cookie_and_key(srv, key, cookie):
    before = srv.nts_stats()
    sbefore = srv.server()
    pkt, xmt = nts_request(key, cookie, flip_key_bit=True)
    h.check(send_and_wait(pkt, xmt, wait=0.5) is None,
            "the server answered a request with a bad authenticator")
    st = srv.nts_stats()
    s = srv.server()
    # The server's drop outcomes are ntsctl server's `dropped` keys, NTS ones too.
    h.check(s["dropped"].get("nts_auth") == sbefore["dropped"].get("nts_auth", 0) + 1 and
            s["dropped_total"] == sbefore["dropped_total"] + 1,
            "a request with a bad authenticator is not dropped.nts_auth: %r -> %r" %
            (sbefore, s))
    h.check(st["cookies_decoded"] == before["cookies_decoded"] + 1 and
            st["cookie_decode_errors"] == before["cookie_decode_errors"] and
            st["cookies_too_old"] == before["cookies_too_old"],
            "the fetched cookie was not decoded by its server: %r -> %r" % (before, st))
    h.check(st["server_recvs_bad"] == before["server_recvs_bad"] + 1,
            "a request with a wrong key was not counted bad: %r" % st)
    if cmac is None:
        h.log("python3 cryptography (AES-CMAC) not installed: the C2S key itself is "
              "checked by format only")
        return
    pkt, xmt = nts_request(key, cookie)
    reply = send_and_wait(pkt, xmt)
    h.check(reply is not None, "no reply to a request authenticated with the fetched key")
    h.check(reply[0] & 7 == 4 and len(reply) > 48 + 36, "reply is not an NTS server reply")
    st2 = srv.nts_stats()
    h.check(st2["server_recvs_good"] == st["server_recvs_good"] + 1 and
            st2["server_recvs_bad"] == st["server_recvs_bad"],
            "the fetched key did not authenticate: %r -> %r" % (st, st2))
    h.log("a request authenticated with the fetched C2S key and cookie was answered")


def part_failures(pki):
    other = h.make_test_pki("other-pki")
    r = kefetch("-c", other.ca_cert, "127.0.0.1", str(KE_PORT))
    h.check(r.returncode == 1 and not r.stdout and "certificate verification failed" in r.stderr,
            "an untrusted CA must fail with the verification error")
    r = kefetch("-c", pki.ca_cert, "-n", "wrong.example", "127.0.0.1", str(KE_PORT))
    h.check(r.returncode == 1 and not r.stdout and "certificate" in r.stderr,
            "a wrong name must fail verification")
    closed = h.free_udp_port()  # nothing listens on this TCP port either
    r = kefetch("-c", pki.ca_cert, "-t", "3", "127.0.0.1", str(closed))
    h.check(r.returncode == 1 and not r.stdout, "a closed port must fail")
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    t0 = time.monotonic()
    r = kefetch("-c", pki.ca_cert, "-t", "1", "127.0.0.1", str(mute.getsockname()[1]))
    took = time.monotonic() - t0
    mute.close()
    h.check(r.returncode == 1 and "timed out" in r.stderr and took < 5,
            "a mute server must time out within -t (rc %d after %.1f s)" % (r.returncode, took))
    for args in ([], ["-a", "99", "127.0.0.1"], ["127.0.0.1", "0"], ["127.0.0.1", "1", "2"],
                 ["-t", "0", "127.0.0.1"]):
        r = kefetch(*args)
        h.check(r.returncode == 2 and not r.stdout, "bad arguments %r: want rc 2" % (args,))


def main():
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    pki = h.make_test_pki()
    srv = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT)
    key, cookie = part_good(pki, srv)
    part_cookie_and_key(srv, key, cookie)
    part_failures(pki)
    st = srv.nts_stats()
    h.log("server counters at the end: %r" % st)


h.run(main)
