#!/usr/bin/python3
"""tos authselect: one NTS source with the true time against three plain
sources that agree on a lie of +100 ms (a majority of forgeries).

Topology (one private namespace, all loopback):

  server ntsd (NTS-KE 127.0.0.1:KE_PORT, NTP 127.0.0.1:NTP_PORT, `local
  stratum 1`): the NTS source, and the upstream of the liars.
  liars: three UDP relays (one Python thread, bounded select loop) on
  127.0.0.3, .4 and .5, port LIAR_PORT, forwarding each plain request to
  127.0.0.1:NTP_PORT and adding +0.100 s to the response's receive and
  transmit timestamps: a consistent +100 ms lie that touches no clock.
  sly liars: the same on 127.0.0.6, .7 and .8, but every fourth answer is
  true and claims a round trip 160 us shorter (receive timestamp 80 us
  earlier, transmit 80 us later: the offset unchanged).  The clock filter
  then offers the true answer (the least delay) to selection, whose
  jitter-widened interval overlaps the NTS source's, while three of four
  samples lie by 100 ms.

Clients, all at the same time, each configured with
  `server 127.0.0.1:KE_PORT nts` and `server 127.0.0.N:LIAR_PORT` (N = 3..5),
  all `iburst minpoll 0 maxpoll 0`:
  ntsd, default (mix)  the NTS source is the system peer from the first
                       selection on, the liars are falsetickers;
  ntsd, require        the NTS source is the system peer, the liars noselect;
  ntsd, prefer         the same, as an NTS source is configured;
  ntsd, ignore         the liars win: a liar is the system peer, the NTS
                       source a falseticker, the offset about +100 ms (the
                       test's teeth: a plain majority vote);
  ntsd, default, sly   against the sly liars (`-d -d`: the discipline logs
                       every sample it is fed): a sly liar survives
                       selection now and then, but none of its lies reaches
                       the discipline (ntp_select_sample_agrees), only its
                       true samples;
  chronyd 4.3 -x       default authselectmode (mix), against the liars: what
                       it does is logged (sources, tracking, the selections
                       it logs) and checked loosely (it never follows them);
                       a second one against the sly liars is only logged.

Passes when, for ntsd: every `ntsctl peers --json` entry has `auth` (true
for the NTS source only); the liars are seen about +100 ms off (the relays
do lie); for mix, require and prefer, at no sample from start-up to the end
is a liar the system peer or |offset| >= 5 ms, and over a window of
WINDOW_S one-second polls after all sources are reachable the NTS source is
the system peer throughout with |offset| < 5 ms; for ignore, over the same
window (which starts once ignore has followed the liars: its first samples
may come from the NTS source, whose NTS-KE takes a few milliseconds) a
liar is the system peer and the offset is within 100 +- 10 ms;
for sly, the guarded checks hold throughout, a sly liar was seen surviving
selection, and no sample fed to the discipline is off by more than 50 ms.
"""
import os
import re
import select
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT = 14460
NTP_PORT = 11123
LIAR_PORT = 11124
LIARS = ("127.0.0.3", "127.0.0.4", "127.0.0.5")
SLY = ("127.0.0.6", "127.0.0.7", "127.0.0.8")
TRUTH_EVERY = 4        # a sly liar's true answers
TRUTH_SHORTER = 80e-6  # each of t2 and t3 moves this much to shorten the round trip
SLY_WAIT_S = 60        # bound on waiting for a sly liar to survive selection
LIE = 0.100
MAX_OFFSET = 5e-3
WINDOW_S = 15
MIN_ACCEPTED = 4       # per source before the window starts
NTS_ADDR = "127.0.0.1:%d" % NTP_PORT


class Liars:
    """One thread relaying for every liar address: requests go upstream from
    a socket per liar, responses come back with +LIE s in their receive and
    transmit timestamps (with truth_every, every truth_every-th answer of
    each address is true instead, with a shorter round trip)."""

    PENDING_MAX = 256

    def __init__(self, addrs, upstream, truth_every=0):
        self.upstream = upstream
        self.truth_every = truth_every
        self.answers = [0] * len(addrs)
        self.lsocks, self.usocks = [], []
        for a in addrs:
            ls = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            ls.bind((a, LIAR_PORT))
            us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            us.bind((a, 0))
            self.lsocks.append(ls)
            self.usocks.append(us)
        self.pending = [{} for _ in addrs]  # request xmt -> client address
        self.lock = threading.Lock()
        self.relayed = 0
        self.error = None
        self.stopping = False
        self.t = threading.Thread(target=self._run, name="liars", daemon=True)
        self.t.start()

    def stop(self):
        self.stopping = True
        self.t.join(timeout=3)
        for s in self.lsocks + self.usocks:
            s.close()

    def count(self):
        with self.lock:
            return self.relayed

    def _run(self):
        try:
            while not self.stopping:
                r, _, _ = select.select(self.lsocks + self.usocks, [], [], 0.2)
                for s in r:
                    if s in self.lsocks:
                        self._request(self.lsocks.index(s))
                    else:
                        self._response(self.usocks.index(s))
        except Exception as e:  # reported by the test, not swallowed
            self.error = repr(e)

    def _request(self, i):
        data, addr = self.lsocks[i].recvfrom(2048)
        if len(data) < 48:
            return
        pend = self.pending[i]
        if len(pend) >= self.PENDING_MAX:
            pend.pop(next(iter(pend)))
        pend[data[40:48]] = addr
        self.usocks[i].sendto(data, self.upstream)

    def _response(self, i):
        data, _ = self.usocks[i].recvfrom(2048)
        addr = self.pending[i].pop(data[24:32], None) if len(data) >= 48 else None
        if addr is None:
            return
        d_rec = d_xmt = int(LIE * 2**32)
        self.answers[i] += 1
        if self.truth_every and self.answers[i] % self.truth_every == 0:
            d_xmt = int(TRUTH_SHORTER * 2**32)
            d_rec = -d_xmt
        rec, xmt = struct.unpack("!QQ", data[32:48])
        data = data[:32] + struct.pack("!QQ", (rec + d_rec) % 2**64, (xmt + d_xmt) % 2**64) \
            + data[48:]
        self.lsocks[i].sendto(data, addr)
        with self.lock:
            self.relayed += 1


def client_conf(pki, mode, liars=LIARS):
    lines = ["interface ignore all",
             "nts ca %s" % pki.ca_cert,
             "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT]
    lines += ["server %s:%d iburst minpoll 0 maxpoll 0" % (a, LIAR_PORT) for a in liars]
    if mode != "default":
        lines.append("tos authselect %s" % mode)
    return lines


def snapshot(c):
    """(sys, {address: peer}) of one of our clients."""
    s = c.ctl_json("sys")
    return s, {p["address"]: p for p in c.peers()}


def is_liar(addr):
    return any(addr.startswith(a + ":") for a in LIARS + SLY)


SURVIVOR = ("sys.peer", "candidate", "backup")


def check_guarded(mode, s, peers, history, sly=False):
    """mix/require/prefer, at any time: no liar is the system peer and the
    offset stays small; no liar survives selection (sly ones may: their
    true answers agree)."""
    h.check(not is_liar(s["system_peer"]),
            "%s: a lying plain source %s is the system peer: %r" % (mode, s["system_peer"], s))
    h.check(not s["synced"] or abs(s["offset"]) < MAX_OFFSET,
            "%s: |offset| %.6f s >= %g s while synchronised" % (mode, s["offset"], MAX_OFFSET))
    for a, p in peers.items():
        # Before the NTS source has a sample (status no_auth) the liars keep
        # their '+': nothing contradicts them, but nothing is synchronised.
        if is_liar(a) and s["synced"] and not sly:
            h.check(p["selection"] not in SURVIVOR,
                    "%s: liar %s survived selection: %r" % (mode, a, p))
    history.append(s["offset"])


def check_peers_auth(mode, peers):
    for a, p in peers.items():
        h.check("auth" in p and isinstance(p["auth"], bool),
                "%s: peer %s has no boolean 'auth' key: %r" % (mode, a, p))
        h.check(p["auth"] == (not is_liar(a)) and p["auth"] == p["nts"],
                "%s: peer %s auth=%r (nts=%r)" % (mode, a, p["auth"], p["nts"]))


def reachable(c):
    ps = c.peers()
    return len(ps) == 4 and all(p["accepted"] >= MIN_ACCEPTED for p in ps)


def start_chrony(name, pki, liars):
    return h.Chronyd(name, extra=[
        "ntstrustedcerts %s" % pki.ca_cert,
        "ntsdumpdir %s" % os.path.join(h.tmpdir(), name),
        "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT] + [
        "server %s port %d iburst minpoll 0 maxpoll 0" % (a, LIAR_PORT) for a in liars])


def chrony_record(chrony):
    n = chrony.name
    src = chrony.sources()
    for s in src:
        h.log("%s source %-16s state %s stratum %d reach %03o offset %+.6f error %.6f" % (
            n, s["name"], s["state"], s["stratum"], s["reach"], s["offset"], s["error"]))
    for s in chrony.sourcestats():
        h.log("%s sourcestats %-16s np %d offset %+.6f stddev %.6f" % (
            n, s["name"], s["np"], s["offset"], s["stddev"]))
    for s in src:
        d = chrony.ntpdata(s["name"])
        h.log("%s ntpdata %-16s delay %.6f tests %s received %d valid %d" % (
            n, s["name"], d["delay"], d["tests"], d["total_rx"], d["total_valid_rx"]))
    t = chrony.chronyc("tracking")[0]
    # ref id, name, stratum, ref time, system time, last offset, rms offset, freq, ...
    h.log("%s tracking: reference %s stratum %s system time %+.6f s last offset %+.6f s "
          "rms offset %.6f s" % (n, t[1], t[2], float(t[4]), float(t[5]), float(t[6])))
    sel = [ln.strip() for ln in chrony.proc.read_log().splitlines()
           if "Selected source" in ln or "synchronise" in ln or "falseticker" in ln]
    for ln in sel:
        h.log("%s log: %s" % (n, ln))
    return src, t, sel


def fed_samples(c):
    """[(source index, offset)] of every sample the discipline was fed."""
    return [(int(m.group(1)), float(m.group(2))) for m in re.finditer(
        r"discipline: source (\d+) sample \S+ s ago: offset ([-+0-9.e]+)", c.proc.read_log())]


def watch_sly(sly, seen):
    """One look at the sly client; returns True once a sly liar was seen
    surviving selection (guarded checks on the way)."""
    s, peers = snapshot(sly)
    check_guarded("sly", s, peers, [], sly=True)
    if s["synced"]:
        seen |= {a for a, p in peers.items() if is_liar(a) and p["selection"] in SURVIVOR}
    return bool(seen)


def check_sly(sly, seen):
    h.wait_until(lambda: watch_sly(sly, seen), SLY_WAIT_S,
                 "a sly liar to survive selection", interval=0.5)
    time.sleep(3)  # let the discipline take what it would take from it
    watch_sly(sly, seen)
    fed = fed_samples(sly)
    from_sly = [off for src, off in fed if src >= 1]
    lies = [(src, off) for src, off in fed if abs(off) > 0.05]
    h.log("sly: liars seen surviving: %s; discipline fed %d samples, %d from the sly "
          "liars (max |offset| %.6f s), %d lies" % (
              sorted(seen), len(fed), len(from_sly),
              max([abs(x) for x in from_sly] or [0]), len(lies)))
    h.check(not lies, "sly: lies reached the discipline: %r" % lies[:5])
    h.check(from_sly, "sly: no true sample of a sly liar was fed (mix should use them)")


def main():
    h.require_ours()
    pki = h.make_test_pki()
    h.NtsKeServer("server", pki, KE_PORT, NTP_PORT)
    liars = Liars(LIARS, ("127.0.0.1", NTP_PORT))
    sly = Liars(SLY, ("127.0.0.1", NTP_PORT), truth_every=TRUTH_EVERY)
    try:
        run(pki, liars)
        h.check(liars.error is None and sly.error is None,
                "relay thread: %s" % (liars.error or sly.error))
    finally:
        liars.stop()
        sly.stop()


def run(pki, liars):
    modes = ("default", "require", "prefer", "ignore")
    clients = {m: h.Ntsd("ntsd-%s" % m, client_conf(pki, m), ready="sys") for m in modes}
    sly = h.Ntsd("ntsd-sly", client_conf(pki, "default", SLY), ready="sys", args=["-d"])
    sly_seen = set()
    chrony = chrony_sly = None
    if os.access(h.CHRONYD_BIN, os.X_OK):
        chrony = start_chrony("chronyd", pki, LIARS)
        chrony_sly = start_chrony("chronyd-sly", pki, SLY)
    else:
        h.log("chronyd not found: its part is skipped")
    guarded = ("default", "require", "prefer")

    def liars_won(c):
        """ignore's first samples may come from the NTS source (its NTS-KE
        takes milliseconds) and its estimate then follows the liars a poll
        after they outvote it: the window starts once it has."""
        s, _ = snapshot(c)
        return s["synced"] and is_liar(s["system_peer"]) and abs(s["offset"] - LIE) < 0.01
    history = {m: [] for m in modes}

    def all_reachable():
        for m in guarded:  # from the first poll on
            s, peers = snapshot(clients[m])
            check_guarded(m, s, peers, history[m])
        watch_sly(sly, sly_seen)
        return all(reachable(c) for c in clients.values()) and liars_won(clients["ignore"])
    h.wait_until(all_reachable, 60, "every client to get %d samples from each source"
                 % MIN_ACCEPTED, interval=0.5)
    h.log("all sources reachable; liars relayed %d responses; watching %d s"
          % (liars.count(), WINDOW_S))

    t_end = time.monotonic() + WINDOW_S
    while time.monotonic() < t_end:
        h.check_all_alive()
        for m in modes:
            s, peers = snapshot(clients[m])
            check_peers_auth(m, peers)
            for a, p in peers.items():
                if is_liar(a):
                    h.check(abs(p["offset"] - LIE) < 0.01,
                            "%s: liar %s offset %.6f, the relay should make it ~%.3f"
                            % (m, a, p["offset"], LIE))
            if m in guarded:
                check_guarded(m, s, peers, history[m])
                h.check(s["synced"] and s["system_peer"] == NTS_ADDR,
                        "%s: the NTS source is not the system peer: %r" % (m, s))
                want = "falseticker" if m == "default" else "noselect"
                for a, p in peers.items():
                    h.check(p["selection"] == ("sys.peer" if a == NTS_ADDR else want),
                            "%s: %s selection %r, expected %s" % (
                                m, a, p["selection"], "sys.peer" if a == NTS_ADDR else want))
            else:
                h.check(s["synced"] and is_liar(s["system_peer"]),
                        "ignore: a liar should be the system peer: %r" % (s,))
                h.check(peers[NTS_ADDR]["selection"] == "falseticker",
                        "ignore: NTS source %r" % peers[NTS_ADDR])
                h.check(abs(s["offset"] - LIE) < 0.01,
                        "ignore: offset %.6f s, expected ~%.3f" % (s["offset"], LIE))
                history[m].append(s["offset"])
        watch_sly(sly, sly_seen)
        time.sleep(1.0)

    for m in modes:
        off = history[m]
        h.log("ntsd %-7s: %d samples of the offset, max |offset| %.6f s, last %+.6f s" % (
            m if m != "default" else "mix", len(off), max(abs(x) for x in off), off[-1]))

    check_sly(sly, sly_seen)

    if chrony is not None:
        src, t, sel = chrony_record(chrony)
        nts = [s for s in src if s["name"] == "127.0.0.1"]
        lying = [s for s in src if s["name"] in LIARS]
        h.check(nts and len(lying) == 3, "chronyd sources: %r" % src)
        # Loosely: chronyd (authselectmode mix) does not follow the liars.
        h.check(all(s["state"] != "*" for s in lying),
                "chronyd selected a lying plain source: %r" % src)
        h.check(not any(a in ln for ln in sel for a in LIARS),
                "chronyd selected a lying plain source at some point: %r" % sel)
        h.check(abs(float(t[4])) < 0.05, "chronyd tracking system time %s s" % t[4])
        chrony_record(chrony_sly)  # only recorded


h.run(main)
