#!/usr/bin/python3
"""Interop: our NTS-KE client against chronyd 4.3 and NTPsec 1.2.2 NTS-KE
servers, and certificate checks.

A throwaway CA (openssl CLI) signs the servers' certificates.  Passes when:
  * against chronyd (`ntsport`, `port` not 123): 8 cookies, AEAD 15, and
    the association's NTP address uses the port chrony negotiated;
  * against NTPsec (its fixed KE port 4460): 8 cookies, AEAD 15, NTP at 123;
  * a server whose certificate is from another CA, and one whose
    certificate lacks the IP address we connect to (IP-SAN check), are
    refused: no cookies, ke_probes_bad counted, a retry is scheduled.
Only NTS-KE is checked: authenticated NTP is not implemented yet.
"""
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

CHRONY_NTP, CHRONY_KE = 21123, 24460
OURS_KE_BADCA, OURS_KE_NOIP, OURS_KE_GOOD = 25460, 26460, 27460


def openssl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    h.check(r.returncode == 0, "openssl %s failed: %s" % (args[0], r.stderr.strip()))


def make_ca(name):
    d = os.path.join(h.tmpdir(), name)
    os.makedirs(d, mode=0o700)
    key, pem = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=%s" % name)
    return d, key, pem


def make_cert(ca, name, san):
    d, ca_key, ca_pem = ca
    key, csr, pem = (os.path.join(d, name + ext) for ext in (".key", ".csr", ".pem"))
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
                "extendedKeyUsage=serverAuth\n" % san)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", csr, "-subj", "/CN=%s" % name)
    openssl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
            "-out", pem, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o600)
    return key, pem


def wait_cookies(ours, remote, what):
    def done():
        for p in ours.peers():
            if p["remote"] == remote and p["cookies"] == 8:
                return p
        return None
    return h.wait_until(done, 15, what)


def main():
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    ca = make_ca("ca")
    key, cert = make_cert(ca, "server", "DNS:localhost,IP:127.0.0.1")

    # --- chronyd as the NTS-KE server -----------------------------------
    h.Chronyd("chronyd-nts", port=CHRONY_NTP, local_stratum=1, allow=["127.0.0.1"],
              extra=["ntsport %d" % CHRONY_KE, "ntsserverkey %s" % key,
                     "ntsservercert %s" % cert,
                     "ntsdumpdir %s" % os.path.join(h.tmpdir(), "chronyd-nts")])
    # --- NTPsec as the NTS-KE server (fixed port 4460, NTP on 123) ------
    h.NtpsecNtpd("ntpsec-nts", extra=[
        "nts enable", "nts key %s" % key, "nts cert %s" % cert,
        "nts cookie %s" % os.path.join(h.tmpdir(), "ntpsec-nts", "nts-keys")])

    # --- servers that must be refused -------------------------------------
    other_ca = make_ca("other-ca")
    okey, ocert = make_cert(other_ca, "other", "DNS:localhost,IP:127.0.0.1")
    nkey, ncert = make_cert(ca, "noip", "DNS:localhost")
    h.Ntsd("ke-badca", ["interface ignore all", "nts enable", "nts key %s" % okey,
                        "nts cert %s" % ocert, "nts-listen-on 127.0.0.1:%d" % OURS_KE_BADCA,
                        "nts cookie %s" % os.path.join(h.tmpdir(), "badca.keys")])
    h.Ntsd("ke-noip", ["interface ignore all", "nts enable", "nts key %s" % nkey,
                       "nts cert %s" % ncert, "nts-listen-on 127.0.0.1:%d" % OURS_KE_NOIP,
                       "nts cookie %s" % os.path.join(h.tmpdir(), "noip.keys")])

    h.Ntsd("ke-good", ["interface ignore all", "nts enable", "nts key %s" % key,
                       "nts cert %s" % cert, "nts-listen-on 127.0.0.1:%d" % OURS_KE_GOOD,
                       "nts cookie %s" % os.path.join(h.tmpdir(), "good.keys"),
                       "nts ntpserver 127.0.0.2"])   # Server Negotiation record
    ours = h.Ntsd("ntsd-client", [
        "interface ignore all",
        "nts ca %s" % ca[2],
        "server 127.0.0.1:%d nts" % CHRONY_KE,
        "server localhost nts",                                   # NTPsec, port 4460
        "server localhost:%d nts" % OURS_KE_BADCA,               # wrong CA
        "server 127.0.0.1:%d nts" % OURS_KE_NOIP,                # no IP SAN
        "server localhost:%d nts aead AES_SIV_CMAC_512" % OURS_KE_GOOD,  # only 17 offered
    ], ready="peers")

    p = wait_cookies(ours, "127.0.0.1", "8 cookies from chronyd's NTS-KE")
    h.log("chronyd peer: %r" % p)
    h.check(p["nts"] is True, "peer not marked nts: %r" % p)
    h.check(p["address"] == "127.0.0.1:%d" % CHRONY_NTP,
            "chrony negotiated NTP port %d, association uses %s" % (CHRONY_NTP, p["address"]))
    p = wait_cookies(ours, "localhost", "8 cookies from NTPsec's NTS-KE")
    h.log("NTPsec peer: %r" % p)
    h.check(p["address"] == "127.0.0.1:123",
            "NTPsec (no Port record): association uses %s, expected 127.0.0.1:123"
            % p["address"])

    log = ours.proc.read_log()
    for name, port in (("127.0.0.1", CHRONY_KE), ("localhost", 4460)):
        m = re.search(r"NTSc: NTS-KE with %s \(127\.0\.0\.1:%d\) took [0-9.]+ s, TLSv1\.3, "
                      r"8 cookies, length (\d+), aead=15" % (re.escape(name), port), log)
        h.check(m is not None, "no successful NTS-KE log line for %s:%d" % (name, port))
        h.log("KE with %s:%d: cookie length %s" % (name, port, m.group(1)))

    # `aead AES_SIV_CMAC_512`: only 17 offered, so 17 chosen, 168-byte cookies.
    h.wait_until(lambda: re.search(r"NTS-KE with localhost \(127\.0\.0\.1:%d\) took .* "
                                   r"8 cookies, length 168, aead=17" % OURS_KE_GOOD,
                                   ours.proc.read_log()),
                 10, "an AES-SIV-CMAC-512 session (aead option)")
    h.check(any(x["address"] == "127.0.0.2:123" for x in ours.peers()),
            "the negotiated NTP server 127.0.0.2 (port 123) is not used: %r" % ours.peers())

    # The refused ones: counted, explained, retried, no cookies.
    def refusals():
        lg = ours.proc.read_log()
        ok = (re.search(r"NTS-KE with localhost \(127\.0\.0\.1:%d\) failed: certificate "
                        r"verification failed.*retrying in" % OURS_KE_BADCA, lg) and
              re.search(r"NTS-KE with 127\.0\.0\.1 \(127\.0\.0\.1:%d\) failed: certificate "
                        r"verification failed.*retrying in" % OURS_KE_NOIP, lg))
        return ok
    h.wait_until(refusals, 10, "both bad certificates to be refused and retried")
    for p in ours.peers():
        if p["address"].endswith(":%d" % OURS_KE_BADCA) or \
           p["address"].endswith(":%d" % OURS_KE_NOIP):
            h.check(p["cookies"] == 0, "cookies from a refused server: %r" % p)
    nts = ours.ctl_json("nts")
    h.log("ntsctl nts: %r" % nts)
    h.check(nts["ke_probes_good"] == 3, "ke_probes_good %d, expected 3" % nts["ke_probes_good"])
    h.check(nts["ke_probes_bad"] >= 2, "ke_probes_bad %d, expected >= 2" % nts["ke_probes_bad"])


h.run(main)
