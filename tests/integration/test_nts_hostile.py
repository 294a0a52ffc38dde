#!/usr/bin/python3
"""Authenticated NTP (RFC 8915 section 5) through a hostile on-path relay,
and cookie keys across server restarts.

Topology (one private namespace, all loopback):

  client ntsd --NTS-KE--> 127.0.0.1:KE_PORT  server ntsd (NTS-KE)
  client ntsd --NTP-----> 127.0.0.1:NTP_PORT relay (a Python thread)
                                   --------> 127.0.0.2:NTP_PORT server ntsd (NTP)

The server listens for NTP on 127.0.0.2:NTP_PORT (`listen`, whose port its
NTS-KE advertises) and sends `nts ntpserver 127.0.0.1` in NTS-KE, so the
client polls the relay at 127.0.0.1:NTP_PORT (any 127/8 address is on lo).
The client: `server 127.0.0.1:KE_PORT nts iburst minpoll 0 maxpoll 0`,
`interface ignore all`, `nts ca CA`: one poll a second.

The relay decides a mode per request:
  pass       forward both ways (remembers the last authentic response)
  replay     answer with the previous authentic response (stale UID, not forwarded)
  flip       forward; flip one bit inside the response's Authenticator EF
             (its type, length, nonce length, ciphertext length, nonce, tag,
             last ciphertext byte: a different place each poll)
  forged-nak answer with a NTS NAK (stratum 0, refid NTSN, right origin
             timestamp) whose UID is random or the previous request's; the
             request is not forwarded
  truncate   forward; cut the response: its last 1, 4 and 17 bytes, at the
             EF boundary before the Authenticator, and down to the header
  duplicate  forward, and send the authentic response twice
  inject     forward; before the authentic response, send the previous
             authentic response (a replay racing the real answer)
  nak-ahead  forward, and at once answer with a NAK carrying the request's
             own UID, ahead of the authentic response (RFC 8915 5.7: a NAK
             is unauthenticated; anyone who sees the request can forge one)

Passes when, for every hostile mode (a few polls each):
  * the client counts each hostile response in client_recvs_bad (exactly
    one per response the relay sent), client_naks stays unchanged (a forged
    NAK is not a NAK) and ke_probes_good stays 1 (no new NTS-KE);
  * each refused response is also counted by reason (tamper evidence, in
    `ntsctl peers --json` "tamper" and `ntsctl nts --json`): replay and
    inject as replay, forged-nak and nak-ahead as forged_nak, flip and
    truncate as malformed or bad_auth (by where the damage is; a response
    cut to its header has no UID left: unexpected);
  * the peer's `accepted` does not grow while the mode lasts (no time is
    taken from an inauthentic response); in `duplicate`, `inject` and
    `nak-ahead` it grows by exactly one per poll (a NAK only marks the
    exchange, and the authentic answer that follows is still taken) (the copy is ignored: the client closes
    its per-request socket after the answer, so it is never even read; the
    injected replay is counted bad and the real answer that follows it is
    still taken);
  * back in pass-through, the same session and jar carry on: `accepted`
    grows and the jar is back to 8 cookies within a few polls;
  * the server never saw a bad request (server_recvs_bad 0, no NAKs).
Then, cookie keys:
  (a) the server restarted with the same `nts cookie` file opens the
      client's cookies (cookies_decoded > 0, nothing too old): the client
      keeps synchronising with no new NTS-KE and no NAK;
  (b) the server restarted with its key file deleted (a fresh key, a new
      key id) counts the client's cookies as too old and NAKs them; the
      client counts exactly 2 NAKs, then redoes NTS-KE (ke_probes_good 2)
      and resumes: `accepted` grows, 8 cookies.
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123
RELAY_ADDR = "127.0.0.1"    # what the client is told to use (nts ntpserver)
SERVER_ADDR = "127.0.0.2"   # where the server really listens for NTP

from nts_relay import JAR, Relay  # noqa: E402

# --------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------

class Ctx:
    def __init__(self, client, server, relay):
        self.client = client
        self.server = server
        self.relay = relay

    def peer(self):
        ps = self.client.peers()
        h.check(len(ps) == 1, "client has %d associations: %r" % (len(ps), ps))
        return ps[0]

    def snap(self):
        if self.relay.error:
            h.fail("relay thread failed: %s" % self.relay.error)
        p = self.peer()
        n = self.client.ctl_json("nts")
        return {"accepted": p["accepted"], "received": p["received"], "cookies": p["cookies"],
                "reach": p["reach"], "address": p["address"], "nts": n,
                "tamper": p["tamper"], "state": p["state"]}


def fmt(s):
    n = s["nts"]
    return ("accepted=%d cookies=%d reach=%03o ke_probes_good=%d client_recvs_good=%d "
            "client_recvs_bad=%d client_naks=%d" % (
                s["accepted"], s["cookies"], s["reach"], n["ke_probes_good"],
                n["client_recvs_good"], n["client_recvs_bad"], n["client_naks"]))


# The tamper-evidence reason each mode's refused responses are counted under.
TAMPER = {"replay": ("replay",), "flip": ("bad_auth", "malformed"), "forged-nak": ("forged_nak",),
          "truncate": ("malformed", "bad_auth", "unexpected"), "inject": ("replay",),
          "nak-ahead": ("forged_nak",), "duplicate": ("replay",)}


def check_tamper(mode, before, after, bad):
    grew = {k: after["tamper"][k] - before["tamper"][k] for k in after["tamper"]}
    h.log("%s: tamper evidence grew by %r" % (mode, {k: v for k, v in grew.items() if v}))
    want = TAMPER[mode]
    h.check(sum(grew[k] for k in want) == bad and sum(grew.values()) == bad,
            "%s: %d refused responses, tamper evidence %r (expected under %s)"
            % (mode, bad, grew, "/".join(want) or "nothing"))
    total = after["nts"]["tamper"]
    h.check(all(total[k] >= after["tamper"][k] for k in total),
            "ntsctl nts tamper totals %r below the peer's %r" % (total, after["tamper"]))
    srcs = after["nts"]["sources"]
    h.check(len(srcs) == 1 and srcs[0]["tamper"] == after["tamper"],
            "ntsctl nts sources %r do not match the peer's %r" % (srcs, after["tamper"]))


def wait_recovered(ctx, since, what, polls=3, timeout=12):
    """Pass-through again: `accepted` grows by `polls` and the jar is full."""
    def ok():
        s = ctx.snap()
        return s if s["accepted"] >= since + polls and s["cookies"] == JAR else None
    s = h.wait_until(ok, timeout, "%s: %d more accepted responses and %d cookies"
                     % (what, polls, JAR), interval=0.2)
    h.log("%s: recovered: %s" % (what, fmt(s)))
    return s


def hostile_mode(ctx, mode, polls):
    relay = ctx.relay
    before = ctx.snap()
    sent0 = relay.sent_hostile(mode)
    n0 = relay.count(mode)
    with relay.lock:
        relay.notes = []
    relay.set_mode(mode)
    # Responses to requests relayed before the switch are still authentic:
    # take the baseline of `accepted` once they are in.
    h.wait_until(lambda: relay.in_flight(("pass",)) == 0, 5, "pass-through exchanges to end")
    time.sleep(0.2)
    a = ctx.snap()
    h.wait_until(lambda: relay.count(mode) >= n0 + polls, polls * 2 + 8,
                 "%d requests relayed in mode %s" % (polls, mode), interval=0.1)
    time.sleep(0.3)  # the last hostile response reaches the client
    b = ctx.snap()
    relay.set_mode("pass")
    sent = relay.sent_hostile(mode) - sent0
    bad = b["nts"]["client_recvs_bad"] - before["nts"]["client_recvs_bad"]
    h.log("%s: %d requests, %d hostile datagrams; before %s; after %s" % (
        mode, relay.count(mode) - n0, sent, fmt(before), fmt(b)))
    with relay.lock:
        notes = list(relay.notes)
    for note in notes:
        h.log("  relay: %s" % note)
    h.check(sent >= polls, "%s: the relay sent only %d hostile datagrams" % (mode, sent))
    if mode == "duplicate":
        h.check(bad <= sent, "duplicate: client_recvs_bad grew by %d for %d copies"
                % (bad, sent))
    else:
        h.check(bad == sent, "%s: client_recvs_bad grew by %d for %d hostile responses"
                % (mode, bad, sent))
    h.check(b["nts"]["client_naks"] == before["nts"]["client_naks"],
            "%s: client_naks %d -> %d" % (mode, before["nts"]["client_naks"],
                                          b["nts"]["client_naks"]))
    h.check(b["nts"]["ke_probes_good"] == 1 and b["nts"]["ke_probes_bad"] == 0,
            "%s: a new NTS-KE was run (ke_probes_good %d, bad %d)" % (
                mode, b["nts"]["ke_probes_good"], b["nts"]["ke_probes_bad"]))
    check_tamper(mode, before, b, bad)
    if mode in ("duplicate", "inject", "nak-ahead"):
        got = b["accepted"] - a["accepted"]
        h.check(got == sent, "%s: %d accepted for %d polls" % (mode, got, sent))
        h.check(b["nts"]["client_recvs_good"] - a["nts"]["client_recvs_good"] == got,
                "%s: client_recvs_good grew by %d, accepted by %d" % (
                    mode, b["nts"]["client_recvs_good"] - a["nts"]["client_recvs_good"], got))
        h.check(b["cookies"] == JAR, "%s: %d cookies" % (mode, b["cookies"]))
    else:
        h.check(b["accepted"] == a["accepted"],
                "%s: the peer accepted %d responses while every response was hostile"
                % (mode, b["accepted"] - a["accepted"]))
        h.check(b["nts"]["client_recvs_good"] == a["nts"]["client_recvs_good"],
                "%s: client_recvs_good grew by %d while every response was hostile" % (
                    mode, b["nts"]["client_recvs_good"] - a["nts"]["client_recvs_good"]))
        # One cookie per request left the jar and none came back.
        sent_req = relay.count(mode) - n0
        h.check(b["cookies"] in (JAR - sent_req, JAR - sent_req + 1),
                "%s: %d cookies after %d unanswered requests" % (mode, b["cookies"],
                                                                  sent_req))
    s = wait_recovered(ctx, b["accepted"], mode)
    h.check(s["nts"]["ke_probes_good"] == 1 and s["nts"]["client_naks"] == 0,
            "%s: after recovery: %s" % (mode, fmt(s)))
    return s


def server_nts(srv):
    return srv.ctl_json("nts")


def main():
    h.require_ours()
    pki = h.make_test_pki()
    keyfile = os.path.join(h.tmpdir(), "server.keys")
    server = h.NtsKeServer("ntsd-server", pki, KE_PORT, NTP_PORT, cookie_file=keyfile,
                           ntp_addr=SERVER_ADDR, extra=["nts ntpserver %s" % RELAY_ADDR])
    relay = Relay((RELAY_ADDR, NTP_PORT), (SERVER_ADDR, NTP_PORT))
    try:
        client = h.Ntsd("ntsd-client", [
            "interface ignore all",
            "nts ca %s" % pki.ca_cert,
            "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT])
        ctx = Ctx(client, server, relay)
        run_tests(ctx, keyfile)
    finally:
        relay.stop()


def run_tests(ctx, keyfile):
    client, server, relay = ctx.client, ctx.server, ctx.relay

    # --- the relay works: the client talks to it, through it to the server --
    s = h.wait_until(lambda: (lambda s: s if s["accepted"] >= 3 and s["cookies"] == JAR
                              else None)(ctx.snap()),
                     20, "first authenticated exchanges through the relay", interval=0.25)
    h.log("synchronised through the relay: %s, NTP at %s" % (fmt(s), s["address"]))
    h.check(s["address"] == "%s:%d" % (RELAY_ADDR, NTP_PORT),
            "client polls %s, expected the relay at %s:%d" % (s["address"], RELAY_ADDR,
                                                               NTP_PORT))
    h.check(relay.count("pass") >= 3, "relay saw %d requests" % relay.count("pass"))
    h.check(s["nts"]["ke_probes_good"] == 1 and s["nts"]["client_recvs_bad"] == 0,
            "before any hostile mode: %s" % fmt(s))
    srv = server.server()
    h.check(SERVER_ADDR + ":%d" % NTP_PORT in " ".join(map(str, srv.get("sockets", []))),
            "server sockets %r" % srv.get("sockets"))

    # --- hostile modes -------------------------------------------------------
    for mode, polls in (("replay", 3), ("flip", 6), ("forged-nak", 4), ("truncate", 5),
                        ("duplicate", 3), ("inject", 3), ("nak-ahead", 10)):
        hostile_mode(ctx, mode, polls)

    # Tamper evidence is logged with a rate limit: the first refusal at once,
    # then one summary per 60 s, however many follow.
    refused = sum(ctx.snap()["tamper"].values())
    lines = [ln for ln in client.proc.read_log().splitlines() if "NTS: refused:" in ln
             or "also refused:" in ln]
    h.log("%d refused responses, %d tamper log lines: %r" % (refused, len(lines), lines))
    h.check(refused >= 20 and 1 <= len(lines) <= 3,
            "%d tamper log lines for %d refused responses" % (len(lines), refused))

    sn = server_nts(server)
    h.log("server nts after the hostile modes: %r" % sn)
    h.check(sn["server_recvs_bad"] == 0 and sn["server_naks"] == 0 and
            sn["cookies_too_old"] == 0 and sn["cookie_decode_errors"] == 0,
            "server counted bad requests: %r" % sn)
    h.check(sn["ke_serves_good"] == 1, "server served %d NTS-KE exchanges, expected 1"
            % sn["ke_serves_good"])
    h.check(relay.strays == 0, "relay: %d responses matched no request" % relay.strays)

    # --- (a) restart with the same cookie key file ----------------------------
    with open(keyfile, "rb") as f:
        keys_before = f.read()
    s0 = ctx.snap()
    h.log("(a) restarting the server with the same key file; client %s" % fmt(s0))
    server.restart()
    with open(keyfile, "rb") as f:
        h.check(f.read() == keys_before, "(a) the key file changed across a restart")
    s = wait_recovered(ctx, s0["accepted"], "(a) restart, same keys", polls=4, timeout=15)
    sn = server_nts(server)
    h.log("(a) restarted server: %r" % sn)
    h.check(s["nts"]["ke_probes_good"] == 1 and s["nts"]["ke_probes_bad"] == 0,
            "(a) the client ran NTS-KE again: %s" % fmt(s))
    h.check(s["nts"]["client_naks"] == 0, "(a) client got NAKs: %s" % fmt(s))
    h.check(sn["cookies_decoded"] >= 4 and sn["cookies_too_old"] == 0 and
            sn["cookie_decode_errors"] == 0 and sn["server_naks"] == 0 and
            sn["server_recvs_bad"] == 0 and sn["ke_serves_good"] == 0,
            "(a) restarted server did not simply accept the old cookies: %r" % sn)

    # --- (b) restart with the key file gone: cookies from an unknown key ------
    s0 = ctx.snap()
    h.log("(b) restarting the server with a new key; client %s" % fmt(s0))
    server.restart(between=lambda: os.unlink(keyfile))
    with open(keyfile, "rb") as f:
        keys_after = f.read()
    h.check(keys_after[12:16] != keys_before[12:16],
            "(b) the new key has the old key id %s" % keys_after[12:16].hex())

    def rekeyed():
        s = ctx.snap()
        return s if (s["nts"]["ke_probes_good"] >= 2 and s["cookies"] == JAR and
                     s["accepted"] >= s0["accepted"] + 3) else None
    s = h.wait_until(rekeyed, 20, "(b) NAKs, a new NTS-KE, and authenticated exchanges "
                     "again", interval=0.25)
    sn = server_nts(server)
    h.log("(b) client: %s" % fmt(s))
    h.log("(b) new server: %r" % sn)
    h.check(s["nts"]["ke_probes_good"] == 2 and s["nts"]["ke_probes_bad"] == 0,
            "(b) NTS-KE count: %s" % fmt(s))
    naks = s["nts"]["client_naks"] - s0["nts"]["client_naks"]
    h.check(naks == 2, "(b) the client counted %d NAKs before redoing NTS-KE, expected 2"
            % naks)
    h.check(s["nts"]["client_recvs_bad"] == s0["nts"]["client_recvs_bad"],
            "(b) NAKs counted as bad responses: %s" % fmt(s))
    h.check(sn["cookies_too_old"] == 2 and sn["server_naks"] == 2 and
            sn["cookie_decode_errors"] == 0 and sn["server_recvs_bad"] == 0,
            "(b) server: expected 2 cookies too old and 2 NAKs: %r" % sn)
    h.check(sn["ke_serves_good"] == 1, "(b) server served %d NTS-KE exchanges"
            % sn["ke_serves_good"])
    log = client.proc.read_log()
    h.check("NTS NAKs: the server refuses our cookies; NTS-KE again" in log,
            "(b) the client did not log the NAK-triggered NTS-KE")
    if relay.error:
        h.fail("relay thread failed: %s" % relay.error)

    # --- cookies_made counts the cookies of NTP responses too ---------------
    # (docs/nts.md: "cookies issued"; NTPsec's "NTS make cookies" counts
    # both.)  The restarted server has served only through the relay since
    # it started: the NTS-KE cookies plus 1 + placeholders per request.
    base = {}

    def steady():
        with relay.lock:
            r1 = (relay.forwarded, relay.cookies_asked)
        n = server_nts(server)
        with relay.lock:
            r2 = (relay.forwarded, relay.cookies_asked)
        if r1 != r2 or n["server_sends"] + n["server_naks"] != r1[0] - base["fwd"]:
            return None
        return n, r1[1] - base["asked"]
    # Restart once more (same keys: no NAK) for fresh counters on both
    # sides; the relay drops requests meanwhile, so that every request it
    # forwards after `base` reaches the new server.
    h.log("restarting the server once more (same keys) to count cookies_made")
    # Two dropped polls: the next requests carry placeholders.
    relay.set_mode("drop")
    d0 = relay.count("drop")
    server.restart()
    h.wait_until(lambda: relay.count("drop") >= d0 + 2, 6, "2 dropped requests", interval=0.1)
    with relay.lock:
        base["fwd"], base["asked"] = relay.forwarded, relay.cookies_asked
    relay.set_mode("pass")
    acc = ctx.snap()["accepted"]
    h.wait_until(lambda: ctx.snap()["accepted"] >= acc + 3, 10,
                 "exchanges after the last restart", interval=0.25)
    n, asked = h.wait_until(steady, 10, "a quiet moment to compare counters", interval=0.1)
    h.log("last server: %d responses, %d cookies asked for, cookies_made=%d" % (
        n["server_sends"], asked, n["cookies_made"]))
    h.check(n["server_naks"] == 0 and n["ke_serves_good"] == 0, "last server: %r" % n)
    h.check(n["cookies_made"] == asked,
            "cookies_made is %d after %d NTS responses carrying %d cookies (expected %d): "
            "cookies issued in NTP responses are not counted" % (
                n["cookies_made"], n["server_sends"], asked, asked))


h.run(main)
