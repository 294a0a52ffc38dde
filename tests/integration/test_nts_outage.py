#!/usr/bin/python3
"""An NTS client whose server goes away, comes back, and loses its keys.

Topology (one private namespace, all loopback): server ntsd (NTS-KE on
127.0.0.1:KE_PORT, NTP on 127.0.0.1:NTP_PORT, `nts cookie FILE`) and a
client ntsd at its default log level polling it every second (`minpoll 0
maxpoll 0`).

  1. Outage: the server (NTS-KE and NTP) is stopped for OUTAGE_S seconds.
     Passes when the client
       * logs one line when the source becomes unreachable and at most one
         per NTS-KE retry (no flood: the old code logged `no NTS cookies
         left, redoing NTS-KE` ~60,000 times a second once its cookies were
         spent);
       * retries NTS-KE with a backoff (2, 4, 8, 16 s... with jitter): at
         most 6 attempts in OUTAGE_S;
       * stays under 1 % of a core;
       * shows state ke-failed, why (ke_error) and when it retries
         (ke_retry) in `ntsctl peers --json`.
  2. The server comes back with its cookie key file: authenticated samples
     resume within the current backoff step (ke_retry when the server
     returned, plus a few seconds); no NAK.
  3. Keys lost, NTS-KE unreachable: the server restarts with its key file
     deleted and its NTS-KE on another port.  The client's cookies are
     refused (NAKs), its NTS-KE fails, and it keeps its old session and the
     cookies it had (a failed NTS-KE replaces nothing) while it waits.
     Then NTS-KE is back on its port: exactly one new NTS-KE, 8 cookies,
     samples resume.
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14462
KE_PORT_ELSEWHERE = 14463
NTP_PORT = 11125
OUTAGE_S = 50
JAR = 8
TICKS = os.sysconf("SC_CLK_TCK")


snap = h.nts_client_snapshot


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def log_lines(c):
    return c.proc.read_log().splitlines()


def outage(server, client):
    s0 = snap(client)
    lines0 = len(log_lines(client))
    server.proc.check_no_crash()
    h.log("server stopped; client %r" % s0)
    cpu0, t0 = cpu_seconds(client.proc.pid), time.monotonic()
    samples = []
    while time.monotonic() - t0 < OUTAGE_S:
        time.sleep(1)
        h.check_all_alive()
        samples.append(snap(client))
    cpu = cpu_seconds(client.proc.pid) - cpu0
    s = samples[-1]
    new = log_lines(client)[lines0:]
    attempts = s["ke_bad"] - s0["ke_bad"]
    h.log("outage: %d NTS-KE attempts, %.2f s CPU in %.0f s, %d log lines:\n  %s" % (
        attempts, cpu, OUTAGE_S, len(new), "\n  ".join(new)))
    h.check(3 <= attempts <= 6, "%d NTS-KE attempts in %d s (backoff 2, 4, 8, 16 s...)"
            % (attempts, OUTAGE_S))
    h.check(len(new) <= attempts + 4, "%d log lines for %d NTS-KE attempts: a flood"
            % (len(new), attempts))
    h.check(sum("unreachable" in ln for ln in new) == 1,
            "expected one 'unreachable' line: %r" % new)
    h.check(cpu / OUTAGE_S < 0.01, "the idle client used %.1f %% of a core"
            % (100 * cpu / OUTAGE_S))
    h.check(s["state"] == "ke-failed" and s["ke_error"] and s["ke_retry"] is not None,
            "peers during the outage: %r" % s)
    h.check(all(x["ke"] == s0["ke"] for x in samples), "an NTS-KE succeeded without a server")
    return s


def server_back(server, client, s):
    server.restart()
    # The backoff step in force once the server is back (an attempt made
    # while it was restarting failed and set the next one).
    back = snap(client)
    wait = (back["ke_retry"] if back["ke_retry"] is not None else 0) + 5
    h.log("server back with its key file; samples due within %.1f s" % wait)

    def resumed():
        x = snap(client)
        return x if x["accepted"] >= s["accepted"] + 2 and x["cookies"] == JAR else None
    x = h.wait_until(resumed, wait, "samples to resume within the backoff step")
    h.log("resumed %.1f s after the server came back: %r" % (x["t"] - s["t"], x))
    h.wait_until(lambda: snap(client)["state"] == "ok", 5, "state ok")
    h.check(x["naks"] == 0, "NAKs for cookies the restarted server can open: %r" % x)
    return x


def set_ke_port(server, port):
    with open(server.conf) as f:
        text = f.read()
    text = text.replace("nts-listen-on 127.0.0.1:%d" % server.ke_port,
                        "nts-listen-on 127.0.0.1:%d" % port)
    with open(server.conf, "w") as f:
        f.write(text)
    server.ke_port = port


def keys_lost(server, client, keyfile):
    s0 = snap(client)

    def lose_keys():
        os.unlink(keyfile)
        set_ke_port(server, KE_PORT_ELSEWHERE)
    server.restart(between=lose_keys)
    h.wait_until(lambda: snap(client)["state"] == "ke-failed", 20,
                 "NAKs, then a failed NTS-KE")
    held = snap(client)
    h.log("keys lost, NTS-KE away: %r" % held)
    h.check(held["naks"] - s0["naks"] == 2, "expected 2 NAKs: %r" % held)
    h.check(held["cookies"] > 0, "the cookies were dropped before a new NTS-KE: %r" % held)
    time.sleep(5)
    later = snap(client)
    h.check(later["cookies"] == held["cookies"] and later["accepted"] == held["accepted"],
            "polling went on with refused cookies, or the jar changed: %r" % later)

    def ke_back():
        set_ke_port(server, KE_PORT)
    server.restart(between=ke_back)
    back = snap(client)
    wait = (back["ke_retry"] if back["ke_retry"] is not None else 0) + 5

    def resumed():
        x = snap(client)
        return x if x["accepted"] >= later["accepted"] + 2 and x["cookies"] == JAR else None
    x = h.wait_until(resumed, wait, "a new NTS-KE and samples again")
    h.log("after the new NTS-KE: %r" % x)
    h.check(x["ke"] == s0["ke"] + 1, "expected exactly one new NTS-KE: %r" % x)


def main():
    h.require_ours()
    pki = h.make_test_pki()
    keyfile = os.path.join(h.tmpdir(), "server.keys")
    server = h.NtsKeServer("ntsd-server", pki, KE_PORT, NTP_PORT, cookie_file=keyfile)
    client = h.Ntsd("ntsd-client", [
        "interface ignore all",
        "nts ca %s" % pki.ca_cert,
        "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT], debug=False,
        ready="peers")
    s = h.wait_until(lambda: (lambda s: s if s["accepted"] >= 3 and s["cookies"] == JAR
                              else None)(snap(client)), 20, "the client to synchronise")
    h.log("synchronised: %r" % s)
    s = outage(server, client)
    server_back(server, client, s)
    keys_lost(server, client, keyfile)


h.run(main)
