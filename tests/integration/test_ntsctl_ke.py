#!/usr/bin/python3
"""`ntsctl ke`, one NTS-KE exchange as a diagnostic, against our NTS-KE
server, chronyd 4.3's and NTPsec 1.2.2's, hand-made servers that answer
with an Error or a Warning record, and through microsocks.  All on loopback
in a private namespace; the only name is `localhost`, from /etc/hosts (no
DNS); every other HOST is an address literal.

Passes when:
  * against ours (NTP over TCP offered) with --ca: exit 0, and the report
    names TLSv1.3 and a cipher, the server certificate (subject, issuer,
    notBefore/notAfter, time to expiry) and its SPKI pin, which equals the
    pin computed with the openssl CLI; AEAD 15; 8 cookies and their length;
    the NTP server and port the server advertised, the NTP over TCP port;
    the time taken; --json carries the same as keys;
  * `localhost` (from /etc/hosts) works whichever of ::1 and 127.0.0.1
    comes first: each address is tried while the connection fails;
  * --pin with that pin and no CA succeeds (the CA is not in the system
    store), a wrong pin fails with exit 4 and one line naming the pin the
    server showed, a CA that did not sign the certificate fails with exit 4
    (certificate verification failed), a closed port with exit 3 (cannot
    connect), a mute server with exit 4 (timed out in the TLS handshake),
    an Error and a Warning record with exit 5 and the record's code;
  * a certificate valid only from tomorrow fails with exit 4 (not yet
    valid), and --json shows its notBefore and expires_in (about 4 days);
  * a server's Server, Port and NTP over TCP Port records are shown as sent
    (ntp.example.test, never resolved; 1234; 1235);
  * --export: the C2S key and cookie (also as `ntpperf -S C2S,COOKIE`) get
    an authenticated NTS response from our server (server_recvs_good + 1);
    --aead 17 gives AEAD 17 and 64-byte keys;
  * chronyd (its ntsport, NTP port not 123: a Port record) and NTPsec (4460,
    no Port record: 123) both complete, with the port each negotiated;
  * through microsocks (socks5://127.0.0.1:PORT) it completes and says so.
"""
import base64
import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_PORT = 15460, 15123
CHRONY_NTP, CHRONY_KE = 16123, 16460
ERR_KE, WARN_KE, SRV_KE, EXP_KE = 17460, 17461, 17462, 17463
SOCKS_PORT = 11080
MICROSOCKS = "/usr/bin/microsocks"


def ntsctl(*args, timeout=30):
    r = h.run_cmd([h.NTSCTL_BIN, "ke"] + list(args), timeout=timeout)
    h.log("ntsctl ke %s -> rc %d\nstdout:\n%s\nstderr: %r" % (
        " ".join(args), r.returncode, re.sub(r"[0-9A-F]{40,}", "<hex>", r.stdout),
        r.stderr.strip()))
    return r


def ntsctl_json(*args):
    r = ntsctl(*(args + ("--json",)))
    h.check(r.stdout.strip() != "", "ntsctl ke --json printed nothing (rc %d)" % r.returncode)
    return r, json.loads(r.stdout)


def spki_pin(cert):
    """sha256:BASE64 of the certificate's SubjectPublicKeyInfo, by the CLI."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                         capture_output=True, check=True).stdout
    return "sha256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def check_failure(r, rc, words):
    lines = r.stderr.strip().splitlines()
    h.check(r.returncode == rc, "want exit %d, got %d: %r" % (rc, r.returncode, r.stderr))
    h.check(len(lines) == 1 and all(w in lines[0] for w in words),
            "want one line with %r on stderr, got %r" % (words, r.stderr))


def part_ours_report(pki, srv):
    ke = "127.0.0.1:%d" % KE_PORT
    r = ntsctl(ke, "--ca", pki.ca_cert)
    h.check(r.returncode == 0, "ntsctl ke against ours failed: %r" % r.stderr)
    out = r.stdout
    pin = spki_pin(pki.cert)
    for want in ("TLS:           TLSv1.3, TLS_", "subject:   CN=localhost",
                 "issuer:    CN=ntsd integration test CA", "notBefore: ", "notAfter:  ",
                 "pin:       %s" % pin, "AEAD:          15 ",
                 "cookies:       8 of ", "NTP port:      %d\n" % NTP_PORT,
                 "NTP over TCP:  port %d" % NTP_PORT, "took:          "):
        h.check(want in out, "the report lacks %r:\n%s" % (want, out))
    h.check(re.search(r"notAfter:  \S+ \(expires in (1d 23h|2d 0h 0m)", out),
            "the report lacks the time to expiry:\n%s" % out)
    h.check("C2S" not in out, "keys printed without --export")
    # A name (from /etc/hosts): every address is tried while the connection
    # fails, so ::1 first (nothing listens there) still ends at 127.0.0.1.
    r = ntsctl("localhost:%d" % KE_PORT, "--ca", pki.ca_cert)
    h.check(r.returncode == 0 and "(127.0.0.1:%d)" % KE_PORT in r.stdout,
            "ntsctl ke localhost: %r" % r.stderr)
    r, j = ntsctl_json(ke, "--ca", pki.ca_cert)
    h.check(r.returncode == 0 and j["ok"] is True, "--json: %r" % j)
    for k in ("host", "port", "via", "tls_version", "cipher", "checked_by", "certificates",
              "aead", "aead_name", "cookies", "cookie_length", "ntp_server", "server_record",
              "ntp_port", "port_record", "ntp_tcp_port", "took"):
        h.check(k in j, "--json lacks the key %r: %r" % (k, j))
    leaf = j["certificates"][0]
    h.check(leaf["pin"] == pin and leaf["subject"] == "CN=localhost" and
            0 < leaf["expires_in"] <= 2 * 86400, "leaf certificate in JSON: %r" % leaf)
    h.check(j["aead"] == 15 and j["cookies"] == 8 and j["ntp_port"] == NTP_PORT and
            j["ntp_tcp_port"] == NTP_PORT and j["tls_version"] == "TLSv1.3" and
            j["via"] == ke, "session in JSON: %r" % j)
    h.check("c2s" not in j, "keys in JSON without --export")
    return pin


def part_negotiation(pki):
    """Server, Port and NTP over TCP Port records, shown as sent (the name is
    never resolved)."""
    r = ntsctl("127.0.0.1:%d" % SRV_KE, "--ca", pki.ca_cert)
    for want in ("NTP server:    ntp.example.test\n", "NTP port:      1234\n",
                 "NTP over TCP:  port 1235\n", "cookies:       2 of 16 bytes\n"):
        h.check(want in r.stdout, "the negotiation report lacks %r: %r" % (want, r.stdout))
    r, j = ntsctl_json("127.0.0.1:%d" % SRV_KE, "--ca", pki.ca_cert)
    h.check(j["ntp_server"] == "ntp.example.test" and j["server_record"] is True and
            j["ntp_port"] == 1234 and j["port_record"] is True and j["ntp_tcp_port"] == 1235,
            "the negotiation in JSON: %r" % j)


def part_not_yet_valid():
    """A certificate valid only from tomorrow (for 3 days): exit 4, and the
    JSON shows its dates (expires_in about 4 days)."""
    start = time.time() + 86400
    future = h.make_test_pki("future-pki", days=3, not_before=start)
    record_server(future, EXP_KE, bytes([0x80, 2, 0, 2, 0, 1]))
    r = ntsctl("127.0.0.1:%d" % EXP_KE, "--ca", future.ca_cert)
    check_failure(r, 4, ("certificate verification failed", "not yet valid"))
    r, j = ntsctl_json("127.0.0.1:%d" % EXP_KE, "--ca", future.ca_cert)
    leaf = j["certificates"][0] if j["certificates"] else {}
    h.check(4 * 86400 - 600 < leaf.get("expires_in", 0) < 4 * 86400 + 600 and
            leaf.get("not_before") == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
            "the not yet valid leaf in JSON: %r" % j)


def part_pins_and_failures(pki, pin):
    ke = "127.0.0.1:%d" % KE_PORT
    r = ntsctl(ke, "--pin", pin)
    h.check(r.returncode == 0 and "public key pin only" in r.stdout,
            "the right pin without a CA must succeed: %r" % r.stderr)
    r = ntsctl(ke, "--ca", pki.ca_cert, "--pin", pin)
    h.check(r.returncode == 0, "CA and pin must succeed: %r" % r.stderr)
    wrong = "sha256:" + base64.b64encode(b"\x01" * 32).decode()
    r = ntsctl(ke, "--pin", wrong)
    check_failure(r, 4, ("TLS failure", "pin mismatch", pin))
    h.check(r.stdout == "", "a failure printed a report: %r" % r.stdout)
    other = h.make_test_pki("other-pki")
    r = ntsctl(ke, "--ca", other.ca_cert)
    check_failure(r, 4, ("TLS failure", "certificate verification failed"))
    r, j = ntsctl_json(ke, "--ca", other.ca_cert)
    h.check(r.returncode == 4 and j["ok"] is False and j["stage"] == "tls" and
            j["certificates"] and j["certificates"][0]["pin"] == pin,
            "a failed verification in JSON shows the stage and the certificate: %r" % j)
    closed = h.free_udp_port()
    r = ntsctl("127.0.0.1:%d" % closed, "--ca", pki.ca_cert, "--timeout", "3")
    check_failure(r, 3, ("cannot connect",))
    r = ntsctl("127.0.0.1:%d" % ERR_KE, "--ca", pki.ca_cert)
    check_failure(r, 5, ("NTS-KE protocol error", "Error 1 (bad_request)"))
    r, j = ntsctl_json("127.0.0.1:%d" % ERR_KE, "--ca", pki.ca_cert)
    h.check(r.returncode == 5 and j["stage"] == "protocol" and j["error_record"] == 1 and
            j["warning_record"] is None, "the Error record in JSON: %r" % j)
    r, j = ntsctl_json("127.0.0.1:%d" % WARN_KE, "--ca", pki.ca_cert)
    h.check(r.returncode == 5 and j["stage"] == "protocol" and j["warning_record"] == 7 and
            j["error_record"] is None and "Warning 7" in r.stderr,
            "the Warning record: %r %r" % (j, r.stderr))
    mute = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    mute.bind(("127.0.0.1", 0))
    mute.listen(4)
    r = ntsctl("127.0.0.1:%d" % mute.getsockname()[1], "--ca", pki.ca_cert, "--timeout", "1")
    mute.close()
    check_failure(r, 4, ("timed out in the TLS handshake",))
    for args in ([], ["a", "b"], ["h:0"], ["h", "--aead", "99"], ["h", "--pin", "x"],
                 ["h", "--ca"]):
        r = ntsctl(*args)
        h.check(r.returncode == 2 and r.stdout == "", "bad arguments %r: want exit 2" % args)


def part_export(pki, srv):
    r = ntsctl("127.0.0.1:%d" % KE_PORT, "--ca", pki.ca_cert, "--export", "--aead", "15")
    h.check(r.returncode == 0, "--export failed: %r" % r.stderr)
    c2s = re.search(r"^C2S key: +([0-9A-F]{64})$", r.stdout, re.M)
    s2c = re.search(r"^S2C key: +([0-9A-F]{64})$", r.stdout, re.M)
    ck = re.search(r"^cookie: +([0-9A-F]+)$", r.stdout, re.M)
    perf = re.search(r"^ntpperf: +-S ([0-9A-F]+),([0-9A-F]+)$", r.stdout, re.M)
    h.check(c2s and s2c and ck and perf, "--export lacks keys, cookie or the ntpperf line")
    h.check(perf.group(1) == c2s.group(1) and perf.group(2) == ck.group(1),
            "the ntpperf line is not C2S,COOKIE")
    h.check(c2s.group(1) != s2c.group(1), "C2S and S2C keys are equal")
    key, cookie = bytes.fromhex(c2s.group(1)), bytes.fromhex(ck.group(1))
    r, j = ntsctl_json("127.0.0.1:%d" % KE_PORT, "--ca", pki.ca_cert, "--export",
                       "--aead", "17")
    h.check(j["aead"] == 17 and len(j["c2s"]) == 128 and len(j["s2c"]) == 128 and
            len(j["cookie"]) == 2 * j["cookie_length"], "--aead 17 --export: %r" % j)
    if cmac is None:
        h.skip("python3 cryptography (AES-CMAC) is not installed: cannot build an NTS request")
    before = srv.nts_stats()
    pkt, xmt = nts_request(key, cookie)
    reply = h.udp_exchange(pkt, xmt, ("127.0.0.1", NTP_PORT), 1.0)
    h.check(reply is not None and reply[0] & 7 == 4 and len(reply) > 48 + 36,
            "no NTS reply to a request with the exported key and cookie")
    st = srv.nts_stats()
    h.check(st["server_recvs_good"] == before["server_recvs_good"] + 1,
            "the exported key did not authenticate: %r -> %r" % (before, st))
    h.log("a request with the exported C2S key and cookie got an NTS response")


def record_server(pki, port, record):
    """A TLS 1.3 server with ALPN ntske/1 on 127.0.0.1:port that answers
    every request with `record` (bytes) and End of Message."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(pki.cert, pki.key)
    ctx.set_alpn_protocols(["ntske/1"])
    lis = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lis.bind(("127.0.0.1", port))
    lis.listen(8)

    def serve():
        while True:
            conn, _ = lis.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as t:
                    t.settimeout(5)
                    t.recv(1024)
                    t.sendall(record + bytes([0x80, 0, 0, 0]))
            except (OSError, ssl.SSLError) as e:
                h.log("error server: %s" % e)
    threading.Thread(target=serve, daemon=True).start()


def part_peers(pki):
    """chronyd and NTPsec as NTS-KE servers, with the harness's certificate."""
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    h.Chronyd("chronyd-nts", port=CHRONY_NTP, local_stratum=1, allow=["127.0.0.1"],
              extra=["ntsport %d" % CHRONY_KE, "ntsserverkey %s" % pki.key,
                     "ntsservercert %s" % pki.cert,
                     "ntsdumpdir %s" % os.path.join(h.tmpdir(), "chronyd-nts")])
    h.NtpsecNtpd("ntpsec-nts", extra=[
        "nts enable", "nts key %s" % pki.key, "nts cert %s" % pki.cert,
        "nts cookie %s" % os.path.join(h.tmpdir(), "ntpsec-nts", "nts-keys")])

    def ke_ok(port):
        r = ntsctl("127.0.0.1:%d" % port, "--ca", pki.ca_cert, "--json", timeout=20)
        return json.loads(r.stdout) if r.returncode == 0 else None
    j = h.wait_until(lambda: ke_ok(CHRONY_KE), 15, "an NTS-KE with chronyd")
    h.check(j["aead"] == 15 and j["cookies"] == 8 and j["ntp_port"] == CHRONY_NTP and
            j["port_record"] is True and j["ntp_tcp_port"] is None,
            "chronyd's NTS-KE: %r" % j)
    j = h.wait_until(lambda: ke_ok(4460), 15, "an NTS-KE with NTPsec")
    h.check(j["aead"] == 15 and j["cookies"] == 8 and j["ntp_port"] == 123 and
            j["port_record"] is False, "NTPsec's NTS-KE: %r" % j)
    r = ntsctl("127.0.0.1:%d" % CHRONY_KE, "--ca", pki.ca_cert)
    h.check(r.returncode == 0 and "NTP port:      %d\n" % CHRONY_NTP in r.stdout,
            "chronyd's report: %r" % r.stdout)


def part_proxy(pki):
    if not os.access(MICROSOCKS, os.X_OK):
        h.log("microsocks not installed: the proxy part is skipped")
        return
    h.start_process("microsocks", [MICROSOCKS, "-i", "127.0.0.1", "-p", str(SOCKS_PORT)])

    def listening():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", SOCKS_PORT)) == 0
    h.wait_until(listening, 5, "microsocks listening")
    url = "socks5://127.0.0.1:%d" % SOCKS_PORT
    r, j = ntsctl_json("127.0.0.1:%d" % KE_PORT, "--ca", pki.ca_cert, "--proxy", url)
    h.check(r.returncode == 0 and j["ok"] and j["via"] == "through " + url and
            j["cookies"] == 8, "through microsocks: %r" % j)
    r = ntsctl("127.0.0.1:%d" % KE_PORT, "--ca", pki.ca_cert, "--proxy",
               "socks5://127.0.0.1:%d" % h.free_udp_port(), "--timeout", "3")
    check_failure(r, 3, ("cannot connect", "proxy"))


def main():
    h.require_ours()
    pki = h.make_test_pki(days=2)  # the expiry checks below expect 2 days
    srv = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, tcp=True)
    record_server(pki, ERR_KE, bytes([0x80, 2, 0, 2, 0, 1]))     # Error 1
    record_server(pki, WARN_KE, bytes([0x80, 3, 0, 2, 0, 7]))    # Warning 7
    name = b"ntp.example.test"
    record_server(pki, SRV_KE, bytes([0x80, 1, 0, 2, 0, 0, 0x80, 4, 0, 2, 0, 15]) +
                  2 * (bytes([0, 5, 0, 16]) + bytes(range(16))) +
                  bytes([0x80, 6, 0, len(name)]) + name +
                  bytes([0x80, 7, 0, 2, 0x04, 0xD2, 0x4E, 0x54, 0, 2, 0x04, 0xD3]))
    pin = part_ours_report(pki, srv)
    part_pins_and_failures(pki, pin)
    part_negotiation(pki)
    part_not_yet_valid()
    part_proxy(pki)
    part_peers(pki)
    part_export(pki, srv)


h.run(main)
