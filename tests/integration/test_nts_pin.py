#!/usr/bin/python3
"""Public key pins: `server ... nts pin sha256:BASE64`.

The NTS-KE server's certificate comes from a test CA that the clients do
not trust (they have no `nts ca`, so the system store, which does not know
it); a second, unrelated test CA stands for a wrong `ca`.  The expected pin
is computed with the openssl command line, as docs/nts.md shows.

  * no pin, no ca: refused (the certificate is unknown), so what follows
    is the pin's doing;
  * the right pin, no ca: NTS-KE succeeds (8 cookies), samples come;
  * a wrong pin: refused, ke_error says "public key pin mismatch" and
    names the key the server showed, tamper.ke_cert counts it, and the log
    has one line per attempt;
  * the right pin with a wrong `ca`: refused (both must pass);
  * a wrong pin with the right `ca`: refused;
  * the right pin with the right `ca`, and two pins of which one is right:
    NTS-KE succeeds, samples come.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14466
NTP_PORT = 11128


def spki_pin(cert):
    """sha256:BASE64 of the certificate's SubjectPublicKeyInfo, the openssl way."""
    pipeline = ("openssl x509 -in '%s' -pubkey -noout | openssl pkey -pubin -outform der"
                " | openssl dgst -sha256 -binary | base64" % cert)
    r, _ = h.run_setpriv(["bash", "-c", "set -o pipefail; " + pipeline], timeout=30)
    pin = r.stdout.strip()
    h.check(r.returncode == 0 and len(pin) == 44 and pin.endswith("="),
            "pin pipeline failed (rc=%d): %r %r" % (r.returncode, pin, r.stderr))
    return "sha256:" + pin


def client(name, opts):
    return h.Ntsd(name, ["interface ignore all",
                         "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0 %s"
                         % (KE_PORT, opts)], ready="peers")


def peer(c):
    return c.peers()[0]


def wait_state(c, state, what):
    return h.wait_until(lambda: (lambda p: p if p["state"] == state else None)(peer(c)), 15,
                        "%s: %s" % (c.name, what))


def expect_works(c):
    p = h.wait_until(lambda: (lambda p: p if p["accepted"] >= 2 else None)(peer(c)), 20,
                     "%s to take samples" % c.name)
    h.log("%s: %r" % (c.name, {k: p[k] for k in ("state", "accepted", "cookies", "tamper")}))
    log = c.proc.read_log()
    h.check(", 8 cookies," in log, "%s: no NTS-KE with 8 cookies in the log:\n%s"
            % (c.name, log))
    h.check(abs(p["offset"]) < 1e-3, "%s: offset %r" % (c.name, p["offset"]))
    h.check(p["tamper"]["ke_cert"] == 0, "%s: tamper %r" % (c.name, p["tamper"]))


def expect_refused(c, needle):
    p = wait_state(c, "ke-failed", "NTS-KE refused")
    h.log("%s: %r" % (c.name, {k: p[k] for k in ("state", "ke_error", "tamper")}))
    h.check(needle in p["ke_error"], "%s: ke_error %r lacks %r" % (c.name, p["ke_error"],
                                                                  needle))
    h.check(p["tamper"]["ke_cert"] >= 1, "%s: tamper %r" % (c.name, p["tamper"]))
    h.check(p["accepted"] == 0 and p["cookies"] == 0, "%s: samples: %r" % (c.name, p))
    return p


def main():
    h.require_ours()
    pki = h.make_test_pki("pki-server")
    other = h.make_test_pki("pki-other")
    right, wrong = spki_pin(pki.cert), spki_pin(other.cert)
    h.check(right != wrong, "two keys, one pin?")
    h.log("server pin %s, other pin %s" % (right, wrong))
    h.NtsKeServer("ntsd-server", pki, KE_PORT, NTP_PORT)

    clients = {
        "none": client("client-none", ""),
        "pin": client("client-pin", "pin %s" % right),
        "wrongpin": client("client-wrongpin", "pin %s" % wrong),
        "pin-wrongca": client("client-pin-wrongca", "pin %s ca %s" % (right, other.ca_cert)),
        "wrongpin-ca": client("client-wrongpin-ca", "ca %s pin %s" % (pki.ca_cert, wrong)),
        "pin-ca": client("client-pin-ca", "pin %s ca %s" % (right, pki.ca_cert)),
        "twopins": client("client-twopins", "pin %s pin %s" % (wrong, right)),
    }
    expect_refused(clients["none"], "certificate verification failed")
    expect_works(clients["pin"])
    p = expect_refused(clients["wrongpin"], "public key pin mismatch: got " + right)
    log = clients["wrongpin"].proc.read_log()
    lines = [l for l in log.splitlines() if "public key pin mismatch" in l]
    h.check(lines and len(lines) <= p["tamper"]["ke_cert"] + 1,
            "one log line per refused attempt: %d lines, %d counted:\n%s"
            % (len(lines), p["tamper"]["ke_cert"], log))
    expect_refused(clients["pin-wrongca"], "certificate verification failed")
    expect_refused(clients["wrongpin-ca"], "public key pin mismatch")
    expect_works(clients["pin-ca"])
    expect_works(clients["twopins"])


h.run(main)
