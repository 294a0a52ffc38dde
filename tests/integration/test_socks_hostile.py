#!/usr/bin/python3
"""NTS-KE through hostile SOCKS5 proxies: ntsd_kefetch --proxy against the
scripted server socks_hostile.py, one mode per port, all in one private
namespace on loopback, with an ntsd NTS-KE server behind the one proxy that
behaves (mode relay).

Passes when, for every misbehaviour (wrong version, a SOCKS4 reply, no
acceptable method, a method not offered, refused credentials, a truncated
reply, a closed connection, an endless or garbage stream, a slow or silent
proxy, a reply later than the deadline, failure codes 1..8 and an unknown
one, a bogus address type):
  * ntsd_kefetch exits 1 (an ordinary failure: no signal, no sanitizer
    report), prints nothing on stdout, and its one error line names the
    proxy and the problem ("proxy 127.0.0.1:PORT: ...");
  * it ends within its deadline (-t) plus a margin, whatever the proxy does;
and through mode relay the same tool completes the KE (the script is a
working proxy, so the failures above are the modes' doing).
"""
import json
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "socks_hostile.py")
TIMEOUT = 3.0

# mode -> what the error line must say (a regular expression)
EXPECT = {
    "version": r"not a SOCKS5 server \(version 4\)",
    "socks4": r"not a SOCKS5 server \(version 0, a SOCKS4 reply\)",
    "nomethod": r"accepts none of the offered methods",
    "badmethod": r"chose method 0x01, which was not offered",
    "authfail": r"authentication refused \(status 1\)",
    "truncated": r"connection closed after 3 bytes of the reply to CONNECT",
    "closed": r"connection closed waiting for the method reply",
    "slow": r"timed out after 3 s waiting for the reply to CONNECT",
    "silent": r"timed out after 3 s waiting for the method reply",
    "late": r"timed out after 3 s waiting for the reply to CONNECT",
    "garbage": r"bad reply to CONNECT \(version 255\)",
    "atyp": r"bad reply to CONNECT \(unknown address type 7\)",
    "rep1": r"CONNECT failed: reply 1 \(general SOCKS server failure\)",
    "rep2": r"reply 2 \(connection not allowed by ruleset\)",
    "rep3": r"reply 3 \(network unreachable\)",
    "rep4": r"reply 4 \(host unreachable\)",
    "rep5": r"reply 5 \(connection refused\)",
    "rep6": r"reply 6 \(TTL expired\)",
    "rep7": r"reply 7 \(command not supported\)",
    "rep8": r"reply 8 \(address type not supported\)",
    "rep42": r"reply 42 \(unknown reply code\)",
}
# The proxy "succeeds" and then sends bytes that are not the server's TLS:
# the failure is TLS's, reported after the proxy's handshake.
AFTER_PROXY = {
    "endless": r"(TLS: .*|closed before the response) \(through proxy 127\.0\.0\.1:\d+\)$",
}


def kefetch(port, *args, timeout=30):
    t0 = time.monotonic()
    r = h.run_cmd([KEFETCH, "--proxy", "socks5://127.0.0.1:%d" % port] + list(args),
                  timeout=timeout)
    took = time.monotonic() - t0
    h.log("ntsd_kefetch via :%d %s -> rc %d in %.2f s: %r" % (
        port, " ".join(args), r.returncode, took, r.stderr.strip()))
    return r, took


def check_failure(mode, port, pki, want):
    r, took = kefetch(port, "-c", pki.ca_cert, "-t", "%g" % TIMEOUT, "127.0.0.1", str(KE_PORT))
    h.check(r.returncode == 1,
            "mode %s: want exit status 1 (an ordinary failure), got %d" % (mode, r.returncode))
    h.check(r.stdout == "", "mode %s: printed %r on stdout" % (mode, r.stdout))
    for pat in h.CRASH_PATTERNS:
        h.check(not re.search(pat, r.stderr), "mode %s: crash report %r" % (mode, r.stderr))
    lines = [ln for ln in r.stderr.splitlines() if "NTS-KE failed" in ln]
    h.check(len(lines) == 1, "mode %s: want one failure line, got %r" % (mode, r.stderr))
    h.check(re.search(want, lines[0]),
            "mode %s: the error line %r does not say /%s/" % (mode, lines[0], want))
    if mode in EXPECT:
        h.check("proxy 127.0.0.1:%d: " % port in lines[0],
                "mode %s: the error line does not name the proxy: %r" % (mode, lines[0]))
    h.check(took < TIMEOUT + 2.0, "mode %s: took %.1f s with -t %g" % (mode, took, TIMEOUT))
    return lines[0]


def main():
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    pki = h.make_test_pki()
    h.NtsKeServer("server", pki, KE_PORT, NTP_PORT)
    ports_file = os.path.join(h.tmpdir(), "hostile-ports.json")
    h.start_process("hostile", [sys.executable, HOSTILE, "--ports-file", ports_file])
    ports = h.wait_until(lambda: json.load(open(ports_file)), 10, "the hostile proxy's ports")

    # the working mode first: the script is a real proxy
    r, _ = kefetch(ports["relay"], "-c", pki.ca_cert, "127.0.0.1", str(KE_PORT))
    h.check(r.returncode == 0 and re.fullmatch(r"15 [0-9A-F]+,[0-9A-F]+\n", r.stdout),
            "NTS-KE through the relay mode failed: %r" % r.stderr)

    seen = {}
    for mode, want in list(EXPECT.items()) + list(AFTER_PROXY.items()):
        seen[mode] = check_failure(mode, ports[mode], pki, want)
    h.log("all %d hostile modes gave a clear, bounded failure" % len(seen))
    # error lines are distinct per problem (the failure codes all differ)
    reps = {seen["rep%d" % i] for i in range(1, 9)}
    h.check(len(reps) == 8, "failure replies are not told apart: %r" % reps)


h.run(main)
