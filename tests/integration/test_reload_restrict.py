#!/usr/bin/python3
"""`restrict` changes applied on SIGHUP (docs/reload.md).

One private namespace, loopback: an ntsd NTS-KE server (KE 127.0.0.1:KE_PORT,
NTP 127.0.0.1:NTP_PORT) with no `restrict` line at first.

Passes when:
  * before: NTP requests and NTS-KEs from 127.0.0.5 and 127.0.0.1 are
    served;
  * after `restrict 127.0.0.5 ignore` is added and SIGHUP sent: the reload
    logs the rules applied, NTP requests from 127.0.0.5 go unanswered and
    its NTS-KEs are refused (the NTS-KE process was replaced by one with the
    new rules), while 127.0.0.1 is still served both;
  * after the line is removed and SIGHUP sent again, 127.0.0.5 is served
    again.
"""
import os
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_PORT = 14490, 11153
BLOCKED, OTHER = "127.0.0.5", "127.0.0.1"


def ke_ok(pki, src):
    r = h.ke_exchange(KE_PORT, h.ke_request(), ca=pki.ca_cert, src=src, timeout=5)
    if r["handshake"] is not True or not r["response"]:
        return False
    return any(t == h.KE_NEW_COOKIE for _, t, _ in h.ke_parse(r["response"]))


def ntp_ok(src):
    return h.sntp_query("127.0.0.1", NTP_PORT, timeout=1.0, src=src) is not None


def count(server, text):
    return sum(text in ln for ln in server.proc.read_log().splitlines())


def reload(server, lines, what):
    with open(server.conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    n = count(server, "reload: sources:")
    os.kill(server.proc.pid, signal.SIGHUP)
    h.wait_until(lambda: count(server, "reload: sources:") == n + 1, 5, what)
    # The NTS-KE process with the new rules serves, the old one has ended.
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 12,
                 "one NTS-KE process after the reload")


def main():
    pki = h.make_test_pki()
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, debug=False)
    with open(server.conf) as f:
        base = f.read().splitlines()
    for src in (BLOCKED, OTHER):
        h.check(ntp_ok(src), "no NTP answer to %s before any restrict" % src)
        h.check(ke_ok(pki, src), "no NTS-KE for %s before any restrict" % src)

    reload(server, base + ["restrict %s ignore" % BLOCKED], "the reload with restrict")
    h.check(count(server, "reload: restrict applied") == 1, "restrict not applied")
    h.check(count(server, "restrict changed: not applied") == 0,
            "restrict named as not applied")
    h.check(count(server, "replaces process") == 1, "the NTS-KE process was not replaced")
    time.sleep(0.5)
    h.check(not ntp_ok(BLOCKED), "NTP still answered to %s after restrict ignore" % BLOCKED)
    h.check(not ke_ok(pki, BLOCKED), "NTS-KE still served to %s after restrict ignore" % BLOCKED)
    h.check(ntp_ok(OTHER), "no NTP answer to %s after the reload" % OTHER)
    h.check(ke_ok(pki, OTHER), "no NTS-KE for %s after the reload" % OTHER)
    h.log("restrict %s ignore applied: NTP and NTS-KE refused to it, served to %s" % (
        BLOCKED, OTHER))

    reload(server, base, "the reload without restrict")
    h.check(count(server, "reload: restrict applied") == 2, "the removal not applied")
    h.check(ntp_ok(BLOCKED), "no NTP answer to %s after the restrict went" % BLOCKED)
    h.check(ke_ok(pki, BLOCKED), "no NTS-KE for %s after the restrict went" % BLOCKED)
    server.proc.check_no_crash()


h.run(main)
