#!/usr/bin/python3
"""Starting without a clock (RFC 8915 8.5): `nocerttimecheck N`.

A machine without an RTC starts in 1970 or at its image's build date, and
every certificate then looks not yet valid.  Here the clock is right and
the server's certificate is what is wrong (valid only from tomorrow): the
same test from the other side.

  * default client: the NTS-KE is refused with a log line naming the
    reason ("certificate is not yet valid") and pointing at nocerttimecheck;
    `ntsctl peers --json` shows state ke-failed, the reason in ke_error and
    tamper.ke_cert; no sample is taken;
  * client with `nocerttimecheck 1` on a virtual clock the discipline
    corrects: the first NTS-KE skips the dates (a warning says so), the
    source synchronises (reach, |offset| < 1 ms); once the clock has taken
    the time, the client redoes NTS-KE with the dates checked, which fails
    for this certificate: state ke-failed, no more samples.
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14464
NTP_PORT = 11126


def client(name, extra=(), args=()):
    return h.Ntsd(name, ["interface ignore all",
                         "nts ca %s" % PKI.ca_cert,
                         "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT]
                  + list(extra), ready="peers", args=args)


def peer(c):
    return c.peers()[0]


def default_refuses():
    c = client("client-default")
    p = h.wait_until(lambda: (lambda p: p if p["state"] == "ke-failed" else None)(peer(c)),
                     10, "the default client to refuse the certificate")
    h.log("default client: %r" % {k: p[k] for k in ("state", "ke_error", "tamper")})
    h.check("not yet valid" in p["ke_error"], "ke_error %r" % p["ke_error"])
    h.check(p["tamper"]["ke_cert"] >= 1, "tamper %r" % p["tamper"])
    log = c.proc.read_log()
    h.check("certificate is not yet valid" in log and "nocerttimecheck" in log,
            "no clear log line for the refused certificate:\n%s" % log)
    h.check(p["accepted"] == 0 and p["cookies"] == 0, "samples without NTS-KE: %r" % p)


def option_accepts():
    # A clock the discipline corrects (virtual: the real one is never
    # touched); under -x nothing ever takes the time, so no re-check.
    c = client("client-nocheck", ["nocerttimecheck 1"], args=["--virtual-clock", "0"])
    p = h.wait_until(lambda: (lambda p: p if p["accepted"] >= 2 else None)(peer(c)), 15,
                     "the nocerttimecheck client to take samples")
    log = c.proc.read_log()
    h.check("without checking the certificate's dates" in log,
            "no warning that the dates were skipped:\n%s" % log)
    h.check(abs(p["offset"]) < 1e-3, "offset %r" % p["offset"])
    # Synchronised: the next NTS-KE checks the dates, and fails.
    p = h.wait_until(lambda: (lambda p: p if p["state"] == "ke-failed" else None)(peer(c)),
                     15, "an NTS-KE with the dates checked after the first synchronisation")
    h.log("after synchronising: %r" % {k: p[k] for k in ("state", "ke_error", "accepted")})
    h.check("not yet valid" in p["ke_error"], "ke_error %r" % p["ke_error"])
    h.check("clock synchronised" in c.proc.read_log(), "no log line for the redone NTS-KE")
    n = p["accepted"]
    time.sleep(3)
    h.check(peer(c)["accepted"] == n, "samples kept coming from an unchecked session")
    sysv = c.ctl_json("sys")
    h.log("sys: synced=%s offset=%s" % (sysv["synced"], sysv["offset"]))


def main():
    global PKI
    h.require_ours()
    PKI = h.make_test_pki(not_before=time.time() + 86400)
    h.NtsKeServer("ntsd-server", PKI, KE_PORT, NTP_PORT)
    default_refuses()
    option_accepts()


h.run(main)
