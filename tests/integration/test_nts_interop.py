#!/usr/bin/python3
"""Interop: authenticated NTP (RFC 8915 section 5) in all four directions
with chronyd 4.3 and NTPsec 1.2.2, over 20+ polls at 1 s.

Three daemons in one private namespace, each an NTS server and a client of
another's:
  ntsd    NTS-KE 127.0.0.1:14460, NTP 127.0.0.1:11123 over UDP and TCP
          (`listen ... tcp`, so its KE responses carry the non-critical NTP
          TCP Port record, which chrony and NTPsec must skip); client of
          chrony and NTPsec
  chronyd NTS-KE 24460, NTP 21123; client of ntsd (port learnt from NTS-KE)
  NTPsec  NTS-KE 4460, NTP 123;    client of ntsd (port learnt from NTS-KE)
Passes when, in every direction, cookies stay at 8 (7 with one in flight),
|offset| < 1 ms, at least 20 authenticated exchanges happened, nothing was
counted as an authentication error or NAK on either side, and the
negotiated (non-123) NTP port was used; and our KE responses did advertise
NTP over TCP (checked with Python's ssl).
"""
import os
import re
import struct
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

OURS_KE, OURS_NTP = 14460, 11123
CHRONY_KE, CHRONY_NTP = 24460, 21123
MAX_OFFSET = 1e-3
MIN_EXCHANGES = 20
REC_NTP_TCP_PORT = 0x4E54


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    pki = h.make_test_pki()
    ours = h.NtsKeServer("ntsd", pki, OURS_KE, OURS_NTP, tcp=True,
                         cookie_file=os.path.join(h.tmpdir(), "ntsd.keys"), extra=[
                             "nts ca %s" % pki.ca_cert,
                             "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % CHRONY_KE,
                             "server 127.0.0.1 nts iburst minpoll 0 maxpoll 0"])  # NTPsec
    chrony = h.Chronyd("chronyd", port=CHRONY_NTP, local_stratum=1, allow=["127.0.0.1"], extra=[
        "ntsport %d" % CHRONY_KE, "ntsserverkey %s" % pki.key,
        "ntsservercert %s" % pki.chain, "ntstrustedcerts %s" % pki.ca_cert,
        "ntsdumpdir %s" % os.path.join(h.tmpdir(), "chronyd"),
        # No `port`: the NTP port must come from our NTS-KE Port record.
        "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % OURS_KE])
    ntpsec = h.NtpsecNtpd("ntpsec", extra=[
        "nts enable", "nts key %s" % pki.key, "nts cert %s" % pki.chain,
        "nts cookie %s" % os.path.join(h.tmpdir(), "ntpsec", "nts-keys"),
        "nts ca %s" % pki.ca_cert,
        "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % OURS_KE])

    def enough():
        ps = ours.peers()
        return len(ps) == 2 and all(p["accepted"] >= MIN_EXCHANGES for p in ps)
    h.wait_until(enough, 60, "%d authenticated exchanges with chrony and NTPsec"
                 % MIN_EXCHANGES, interval=1.0)
    time.sleep(2)

    # --- ours -> chrony, ours -> NTPsec ---------------------------------
    for p in ours.peers():
        h.log("our peer: %s cookies=%d reach=%o accepted=%d offset=%.3g delay=%.3g" % (
            p["address"], p["cookies"], p["reach"], p["accepted"], p["offset"], p["delay"]))
        h.check(p["nts"] and p["cookies"] in (7, 8), "cookies not kept at 8: %r" % p)
        h.check(abs(p["offset"]) < MAX_OFFSET, "|offset| >= 1 ms: %r" % p)
        # NTPsec answers "stratum 0, INIT" while it starts: counted as unsync.
        bad = {k: v for k, v in p["dropped"].items() if v and k != "unsync"}
        h.check(not bad, "responses dropped: %r" % p["dropped"])
        h.check(p["kod"] == "none", "kiss received: %r" % p)
    addrs = sorted(p["address"] for p in ours.peers())
    h.check(addrs == ["127.0.0.1:123", "127.0.0.1:%d" % CHRONY_NTP],
            "NTP addresses %r (chrony's negotiated port %d, NTPsec's 123)" % (addrs, CHRONY_NTP))

    # --- chrony -> ours --------------------------------------------------
    auth = [ln for ln in chrony.chronyc("authdata") if ln[0] == "127.0.0.1"]
    h.log("chrony authdata: %r" % auth)
    h.check(len(auth) == 1 and auth[0][1] == "NTS", "chrony authdata: %r" % auth)
    nak, cook, clen = int(auth[0][7]), int(auth[0][8]), int(auth[0][9])
    h.check(nak == 0, "chrony counted %d NAKs" % nak)
    h.check(cook in (7, 8) and clen == 104, "chrony holds %d cookies of %d bytes" % (cook, clen))
    src = [s for s in chrony.sources() if s["name"] == "127.0.0.1"]
    h.log("chrony sources: %r" % src)
    h.check(src and src[0]["reach"] == 0o377, "chrony's reach of us: %r" % src)
    h.check(abs(src[0]["offset"]) < MAX_OFFSET, "chrony's offset to us: %r" % src)
    nd = chrony.ntpdata("127.0.0.1")
    h.check(nd["remote_port"] == OURS_NTP,
            "chrony uses NTP port %d, negotiated %d" % (nd["remote_port"], OURS_NTP))
    h.check(nd["total_valid_rx"] >= MIN_EXCHANGES, "chrony: only %d valid responses from us"
            % nd["total_valid_rx"])

    # --- NTPsec -> ours ----------------------------------------------------
    log = ntpsec.proc.read_log()
    h.check(re.search(r"NTSc: Got 8 cookies, length 104, aead=15", log),
            "NTPsec did not log 'Got 8 cookies, length 104, aead=15'")
    h.check(re.search(r"NTSc: Using port %d\b" % OURS_NTP, log),
            "NTPsec did not use the negotiated port %d" % OURS_NTP)
    peers = ntpsec.ntpq("-p")
    h.log("ntpsec ntpq -p:\n%s" % peers)
    line = [ln.split() for ln in peers.splitlines() if "127.0.0.1" in ln]
    # remote refid st t when poll reach ...: the last 3 polls answered, and
    # `t` is the number of NTS cookies NTPsec holds.
    h.check(line and len(line[0]) >= 7 and (int(line[0][6], 8) & 0o7) == 0o7,
            "NTPsec does not reach us: %r" % line)
    h.check(line[0][3] in ("7", "8"), "NTPsec's t column (cookies) is %r" % line[0][3])

    # --- what chrony and NTPsec were given: the TCP record they skipped ---
    r = h.ke_exchange(OURS_KE, h.ke_request(), ca=pki.ca_cert)
    recs = h.ke_parse(r["response"]) if r["handshake"] is True else []
    h.check((False, REC_NTP_TCP_PORT, struct.pack("!H", OURS_NTP)) in recs,
            "our KE response does not advertise NTP over TCP: %r" % (recs,))

    # --- our counters, both roles ------------------------------------------
    n = ours.ctl_json("nts")
    h.log("ntsctl nts: %r" % n)
    for k in ("server_recvs_bad", "client_recvs_bad", "client_naks", "server_naks",
              "cookie_decode_errors", "cookies_too_old"):
        h.check(n[k] == 0, "%s = %d, expected 0" % (k, n[k]))
    h.check(n["server_recvs_good"] >= MIN_EXCHANGES and
            n["server_sends"] == n["server_recvs_good"],
            "server: %d good requests, %d responses" % (n["server_recvs_good"],
                                                         n["server_sends"]))
    h.check(n["client_recvs_good"] >= 2 * MIN_EXCHANGES, "client: %d good responses"
            % n["client_recvs_good"])


h.run(main)
