#!/usr/bin/python3
"""Interop: chrony and NTPsec as NTS-KE clients of our NTS-KE server.

ntsd serves NTS-KE on 127.0.0.1:KE_PORT with a certificate from a throwaway
CA (SAN DNS:localhost, IP:127.0.0.1) and NTP on 127.0.0.1:NTP_PORT, which is
not 123, so the KE response carries a Port record.  NTS for NTP is not
implemented yet, so only the key establishment is checked -- plus the one
thing that proves the client used it: its NTP requests arrive at NTP_PORT,
a port neither client is configured with.

(a) chronyd -x, `server 127.0.0.1 nts ntsport KE_PORT` (no `port`) trusting
    the test CA.  Passes when `chronyc authdata` shows mode NTS, AEAD 15,
    key length 256, a last-KE time and no NAK (chrony resets its attempt
    count once an NTS reply validates, so that is not checked); our log shows a
    successful KE from 127.0.0.1 ("aead=15, 8 cookies") and no failed one;
    `ntsctl nts --json` (when it exists) counts it; and our NTP server
    counts requests on NTP_PORT.
(b) NTPsec 1.2.2 ntpd (`disable ntp`), `server localhost:KE_PORT nts`
    with the test CA (`nts ca`); NTPsec binds 123 itself, hence our NTP
    port is another.  Passes when its log shows "Got 8 cookies,
    length 104, aead=15", "Using port NTP_PORT" and a KE "OK"; our log shows
    the KE; and our NTP server counts requests on NTP_PORT.
"""
import os
import re
import socket
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123


def chrony_authdata(chrony, addr="127.0.0.1"):
    """chronyc -c authdata row for addr (chrony 4.x layout): name, mode,
    key id, type (AEAD id for NTS), key length (bits), last KE (seconds
    ago), KE attempts, NAK, cookies, cookie length."""
    for f in chrony.chronyc("authdata"):
        if f[0] == addr:
            if len(f) < 10:
                raise RuntimeError("unexpected chronyc authdata output: %r" % (f,))
            return {"name": f[0], "mode": f[1], "key_id": int(f[2]), "type": int(f[3]),
                    "klen": int(f[4]), "last": f[5], "attempts": int(f[6]),
                    "nak": int(f[7]), "cookies": int(f[8]), "clen": int(f[9]), "raw": f}
    return None


def ke_counters(srv, before):
    """`ntsctl nts --json` deltas since `before`, or None without it."""
    st = srv.nts_stats()
    if st is None or before is None:
        return None
    return {k: st[k] - before.get(k, 0) for k in ("ke_serves_good", "ke_serves_bad",
                                                   "cookies_made")}


def part_chrony(pki, srv):
    h.log("---- (a) chronyd as NTS-KE client ----")
    st0 = srv.nts_stats()
    s0 = srv.server()
    dump = os.path.join(h.tmpdir(), "chrony-nts-dump")
    os.makedirs(dump, mode=0o700)
    chrony = h.Chronyd("chronyd-nts", servers=[
        "127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT],
        extra=["ntstrustedcerts %s" % pki.ca_cert, "ntsdumpdir %s" % dump])

    def ke_done():
        a = chrony_authdata(chrony)
        return a if a is not None and a["klen"] > 0 else None

    try:
        a = h.wait_until(ke_done, 20, "chrony's NTS-KE with ntsd (authdata key length > 0)")
    except h.TestFailure:
        try:
            h.log("chronyc authdata: %r" % chrony.chronyc("authdata"))
        except Exception as e:
            h.log("(chronyc failed: %s)" % e)
        raise
    h.log("chronyc authdata: %r" % {k: v for k, v in a.items() if k != "raw"})
    h.check(a["mode"] == "NTS", "chrony's authdata mode is %r, expected NTS" % a["mode"])
    h.check(a["type"] == 15, "chrony negotiated AEAD %d, expected 15" % a["type"])
    h.check(a["klen"] == 256, "chrony's key length is %d bits, expected 256" % a["klen"])
    h.check(a["nak"] == 0, "chrony got an NTS NAK: %r" % a)
    h.check(a["last"] not in ("-", ""), "chrony shows no last KE time: %r" % a)
    h.check(a["cookies"] == 0 or a["clen"] == 104,
            "chrony holds cookies of %d bytes, ours are 104" % a["clen"])

    lines = h.wait_until(lambda: [ln for ln in srv.ke_log()["good"]
                                  if "NTS-KE from 127.0.0.1:" in ln], 5,
                         "ntsd to log chrony's NTS-KE")
    h.log("ntsd: %s" % lines[0])
    h.check(re.search(r"TLSv1\.3, \S+, aead=15, 8 cookies, took", lines[0]),
            "ntsd's log line for chrony's KE: %r" % lines[0])
    h.check(not srv.ke_log()["bad"], "ntsd logged failed NTS-KEs with chrony: %r" %
            srv.ke_log()["bad"])

    # chrony never had NTP_PORT in its configuration: requests arriving there
    # prove it took the port from our Port Negotiation record.
    def requests_arrived():
        s = srv.server()
        return s if s["received"] - s0["received"] >= 2 else None
    s1 = h.wait_until(requests_arrived, 10,
                      "chrony's NTP requests at the negotiated port %d" % NTP_PORT)
    h.log("ntsd NTP server on :%d received %d requests from chrony" % (
        NTP_PORT, s1["received"] - s0["received"]))
    h.check("changed port to %d" % NTP_PORT in chrony.proc.read_log(),
            "chrony did not log 'Source 127.0.0.1 ... changed port to %d'" % NTP_PORT)

    d = ke_counters(srv, st0)
    if d is not None:
        n_good = len([ln for ln in srv.ke_log()["good"]])
        h.log("ntsctl nts --json deltas: %r" % d)
        h.check(d["ke_serves_good"] >= 1 and d["ke_serves_good"] == n_good,
                "ke_serves_good grew by %d; ntsd logged %d KEs" % (d["ke_serves_good"],
                                                                   n_good))
        h.check(d["ke_serves_bad"] == 0, "ke_serves_bad grew by %d" % d["ke_serves_bad"])
        # 8 per KE, plus one or more in each authenticated NTP response.
        h.check(d["cookies_made"] >= 8 * d["ke_serves_good"],
                "cookies_made grew by %d for %d KEs" % (d["cookies_made"],
                                                        d["ke_serves_good"]))
    else:
        h.log("ntsctl has no `nts` command yet: counters checked from the log only")

    chrony.proc.check_alive()
    chrony.proc.stop()
    chrony.proc.check_no_crash()


def part_ntpsec(pki, srv):
    h.log("---- (b) NTPsec ntpd as NTS-KE client ----")
    st0 = srv.nts_stats()
    s0 = srv.server()
    n_good0 = len(srv.ke_log()["good"])
    n_bad0 = len(srv.ke_log()["bad"])
    # NTPsec checks the certificate against the name before ':port' (with
    # OpenSSL 3, `127.0.0.1:PORT` works too, against the IP SAN; chrony
    # above used that one).  NTPsec connects to the first address the name
    # resolves to, and our KE server is on 127.0.0.1 only.
    try:
        first = socket.getaddrinfo("localhost", KE_PORT, type=socket.SOCK_STREAM)[0][4][0]
    except OSError:
        first = None
    name = "localhost" if first == "127.0.0.1" else "127.0.0.1"
    h.log("NTPsec's KE server name: %s (localhost resolves first to %s)" % (name, first))
    ntpsec = h.NtpsecNtpd("ntpsec-nts", extra=[
        "nts ca %s" % pki.ca_cert,
        "server %s:%d nts iburst minpoll 0 maxpoll 0" % (name, KE_PORT)])

    def got_cookies():
        m = re.search(r"NTSc: Got (\d+) cookies, length (\d+), aead=(\d+)",
                      ntpsec.proc.read_log())
        return m
    try:
        m = h.wait_until(got_cookies, 20, "NTPsec to log 'NTSc: Got N cookies'")
    except h.TestFailure:
        h.log("NTPsec NTSc lines: %r" % [ln for ln in ntpsec.proc.read_log().splitlines()
                                        if "NTS" in ln])
        raise
    text = ntpsec.proc.read_log()
    for ln in text.splitlines():
        if "NTSc:" in ln:
            h.log("ntpsec: %s" % ln.strip())
    h.check((m.group(1), m.group(2), m.group(3)) == ("8", "104", "15"),
            "NTPsec got %s cookies of %s bytes, aead=%s; expected 8, 104, 15" % m.groups())
    h.check(re.search(r"NTSc: Using port %d\b" % NTP_PORT, text),
            "NTPsec did not log 'NTSc: Using port %d'" % NTP_PORT)
    h.check(re.search(r"NTSc: NTS-KE req to %s:%d took [0-9.]+ sec, OK" % (
        re.escape(name), KE_PORT), text),
            "NTPsec did not log a successful NTS-KE request")
    h.check("certificate is valid" in text, "NTPsec did not log 'certificate is valid'")

    def our_line():
        g = srv.ke_log()["good"][n_good0:]
        return g if g else None
    lines = h.wait_until(our_line, 5, "ntsd to log NTPsec's NTS-KE")
    h.log("ntsd: %s" % lines[0])
    h.check(re.search(r"NTS-KE from 127\.0\.0\.1:\d+, TLSv1\.3, \S+, aead=15, 8 cookies",
                      lines[0]), "ntsd's log line for NTPsec's KE: %r" % lines[0])
    bad = srv.ke_log()["bad"][n_bad0:]
    h.check(not bad, "ntsd logged failed NTS-KEs with NTPsec: %r" % bad)

    def requests_arrived():
        s = srv.server()
        return s if s["received"] - s0["received"] >= 2 else None
    s1 = h.wait_until(requests_arrived, 15,
                      "NTPsec's NTP requests at the negotiated port %d" % NTP_PORT)
    h.log("ntsd NTP server on :%d received %d requests from NTPsec" % (
        NTP_PORT, s1["received"] - s0["received"]))

    d = ke_counters(srv, st0)
    if d is not None:
        h.log("ntsctl nts --json deltas: %r" % d)
        h.check(d["ke_serves_good"] >= 1 and d["ke_serves_bad"] == 0,
                "NTPsec's KE counted as good %d, bad %d" % (d["ke_serves_good"],
                                                            d["ke_serves_bad"]))
        # 8 per KE, plus one or more in each authenticated NTP response.
        h.check(d["cookies_made"] >= 8 * d["ke_serves_good"],
                "cookies_made grew by %d for %d KEs" % (d["cookies_made"],
                                                        d["ke_serves_good"]))
    ntpsec.proc.check_alive()
    ntpsec.proc.stop()
    ntpsec.proc.check_no_crash()


def main():
    h.require_ours()
    want_chrony = os.path.isfile(h.CHRONYD_BIN) and os.path.isfile(h.CHRONYC_BIN)
    want_ntpsec = os.path.isfile(h.NTPSEC_NTPD)
    if not want_chrony and not want_ntpsec:
        h.skip("neither chronyd nor NTPsec ntpd is installed (run scripts/install-deps)")
    pki = h.make_test_pki()
    srv = h.NtsKeServer("ntsd-ke", pki, KE_PORT, NTP_PORT)
    if want_chrony:
        part_chrony(pki, srv)
    else:
        h.log("chronyd not installed: part (a) skipped")
    if want_ntpsec:
        part_ntpsec(pki, srv)
    else:
        h.log("NTPsec ntpd not installed: part (b) skipped")
    srv.proc.check_alive()


h.run(main)
