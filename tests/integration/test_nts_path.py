#!/usr/bin/python3
"""NTS when the path loses every NTP packet while NTS-KE still works, and
cookie keys rotating while clients poll.

Topology (one private namespace, all loopback):

  clients --NTS-KE--> 127.0.0.1:KE_PORT   server ntsd (`nts rotate 60`)
  clients --NTP-----> 127.0.0.1:NTP_PORT  relay --> 127.0.0.2:NTP_PORT server

Both clients poll every second (`minpoll 0 maxpoll 0`).

  1. Client A synchronises through the relay.  The server's cookie key
     rotates (`nts rotate 60`, within 6 s of falling due) while A polls:
     A's next requests carry cookies made under the previous key, which the
     server still opens (cookies_decoded_old grows), and nobody sends or
     counts a NAK.
  2. The path is lost for 60 s (the relay drops every request; NTS-KE, a
     direct TCP connection, still works), and client B starts in the middle
     of it (UDP filtered from its first request on).  Passes when:
       * A's reach falls to 0 and `ntsctl peers` shows state no-reply for
         both clients (JSON key and text column), with no ke_error: the
         NTS-KE works, NTP does not;
       * no KE storm: each client runs at most 5 NTS-KEs in the 60 s
         (cookies that brought no authentic response back off the next KE:
         2, 4, 8, 16 s...; without that, A would redo NTS-KE every 8 s, and
         the old code spun when its cookies ran out);
       * the pauses between NTS-KEs grow.
  3. The path comes back: A's authenticated samples resume within its
     current backoff step (`ke_retry` when the path came back) plus a few
     seconds, with 8 cookies, state ok.
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

from nts_relay import JAR, Relay  # noqa: E402

KE_PORT = 14461
NTP_PORT = 11124
RELAY_ADDR = "127.0.0.1"
SERVER_ADDR = "127.0.0.2"
LOST_S = 60


def client(name, pki):
    return h.Ntsd(name, ["interface ignore all",
                         "nts ca %s" % pki.ca_cert,
                         "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT],
                  ready="peers")


snap = h.nts_client_snapshot


def ke_times(samples):
    """Monotonic times at which the NTS-KE count went up."""
    out = []
    for a, b in zip(samples, samples[1:]):
        out += [b["t"]] * (b["ke"] - a["ke"])
    return out


def path_lost(a, b_start, relay):
    relay.set_mode("drop")
    t0 = time.monotonic()
    sa, sb, b = [snap(a)], [], None
    text_seen = False
    while time.monotonic() - t0 < LOST_S:
        time.sleep(1)
        h.check_all_alive()
        if b is None and time.monotonic() - t0 >= 10:
            b = b_start()
        sa.append(snap(a))
        if b is not None:
            sb.append(snap(b))
            if not text_seen and sb[-1]["state"] == "no-reply":
                table = b.ctl("peers")
                h.log("client B's table:\n" + table)
                text_seen = table.splitlines()[2].split()[-1] == "no-reply"
    return sa, sb, text_seen


def check_no_storm(name, samples):
    kes = ke_times(samples)
    gaps = [round(y - x, 1) for x, y in zip(kes, kes[1:])]
    states = sorted(set(s["state"] for s in samples))
    h.log("%s: %d NTS-KEs while the path was lost, gaps %s s, states %s" % (
        name, len(kes), gaps, states))
    h.check(len(kes) <= 5, "%s: %d NTS-KEs in %d s: a KE storm" % (name, len(kes), LOST_S))
    h.check("no-reply" in states, "%s never showed state no-reply: %s" % (name, states))
    h.check(all(s["ke_error"] == "" for s in samples),
            "%s: ke_error set although NTS-KE works: %r" % (
                name, [s["ke_error"] for s in samples if s["ke_error"]][:1]))
    h.check(all(s["ke_bad"] == 0 for s in samples), "%s: failed NTS-KEs" % name)
    h.check(all(y > x for x, y in zip(gaps[1:], gaps[2:])),
            "%s: the pauses between NTS-KEs do not grow: %s" % (name, gaps))
    return kes


def key_rotation(server, a):
    h.wait_until(lambda: "NTS cookie key rotated" in server.proc.read_log(), 75,
                 "the server's cookie key to rotate (nts rotate 60)")
    s0 = snap(a)
    h.wait_until(lambda: snap(a)["accepted"] >= s0["accepted"] + JAR, 15,
                 "%d more samples after the rotation" % JAR)
    srv = server.ctl_json("nts")
    h.log("after the rotation: client %r, server %r" % (snap(a), srv))
    h.check(srv["cookies_decoded_old"] >= 1,
            "no cookie made under the previous key was decoded after the rotation: %r" % srv)
    h.check(srv["server_naks"] == 0 and srv["cookies_too_old"] == 0 and snap(a)["naks"] == 0,
            "NAKs across a key rotation: %r" % srv)


def main():
    h.require_ours()
    pki = h.make_test_pki()
    keyfile = os.path.join(h.tmpdir(), "server.keys")
    server = h.NtsKeServer("ntsd-server", pki, KE_PORT, NTP_PORT, cookie_file=keyfile,
                           ntp_addr=SERVER_ADDR,
                           extra=["nts ntpserver %s" % RELAY_ADDR, "nts rotate 60"])
    relay = Relay((RELAY_ADDR, NTP_PORT), (SERVER_ADDR, NTP_PORT))
    try:
        run(server, relay, pki)
    finally:
        relay.stop()


def run(server, relay, pki):
    a = client("client-a", pki)
    s = h.wait_until(lambda: (lambda s: s if s["accepted"] >= 3 and s["cookies"] == JAR
                              else None)(snap(a)), 20, "client A synchronised", interval=0.25)
    h.log("client A synchronised: %r" % s)
    key_rotation(server, a)

    h.log("path lost for %d s; client B starts 10 s into it" % LOST_S)
    sa, sb, text_seen = path_lost(a, lambda: client("client-b", pki), relay)
    h.check(min(x["reach"] for x in sa) == 0, "client A's reach never fell to 0")
    check_no_storm("client A", sa)
    kes_b = check_no_storm("client B", sb)
    h.check(len(kes_b) >= 2, "client B ran %d NTS-KEs: it must keep trying" % len(kes_b))
    h.check(all(x["accepted"] == 0 for x in sb), "client B got samples through a dead path")
    h.check(text_seen, "`ntsctl peers` never showed no-reply in its state column")

    back = snap(a)
    relay.set_mode("pass")
    wait = (back["ke_retry"] if back["ke_retry"] is not None else 0) + 5
    h.log("path back; client A: %r; samples due within %.1f s" % (back, wait))

    def resumed():
        s = snap(a)
        return s if s["accepted"] >= back["accepted"] + 2 and s["cookies"] == JAR else None
    s = h.wait_until(resumed, wait, "client A's samples to resume within its backoff step")
    h.log("client A resumed %.1f s after the path came back: %r" % (s["t"] - back["t"], s))
    h.wait_until(lambda: snap(a)["state"] == "ok", 5, "client A's state ok")
    h.check("reachable again" in a.proc.read_log(), "client A did not log 'reachable again'")
    h.check(s["naks"] == 0 and server.ctl_json("nts")["server_naks"] == 0, "NAKs: %r" % s)


h.run(main)
