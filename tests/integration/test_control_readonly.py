#!/usr/bin/python3
"""Control queries read the daemon's last snapshot and change nothing
(docs/architecture.md, "The core and its adapters").

1. What the server serves does not follow the queries.  A daemon with
   `local stratum 3` and no sources (127.0.0.1:PORT_A) recomputes its
   system variables, reference time included, once a second; a query that
   ran the engine would set the reference time to the moment of the query.
   20 times, after a random pause: a control query (`sys json`), then at
   once an NTP request; the gap between the server's receive time and the
   reference time it serves must exceed 0.3 s at least once (a refresh a
   second apart leaves gaps spread over 0..1 s; had each query recomputed
   the state, every gap would be the few milliseconds between the two).
2. Queries do not run the engine or feed the discipline.  A `-x` client of
   that server (`minpoll 5 maxpoll 5`, 32 s) waits for synchronisation and
   the end of its iburst; then, between two polls (its `accepted` count
   unchanged), 300 queries of every kind (`sys`, `peers`, `server`, `nts`,
   text and JSON) leave `discipline_updates` and `discipline_steps`
   unchanged, and raise `selections` by no more than the once-a-second
   refresh accounts for (elapsed seconds + 2).  (On a tree whose queries
   run the engine, step 1 fails.)
"""
import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT_A = 11341
QUERIES = (b"sys json\n", b"peers json\n", b"server json\n", b"nts json\n", b"sys\n",
           b"peers\n")


def query(d, line):
    reply, closed = h.ctl_raw(d.sock, line, timeout=5.0, shut_wr=False)
    h.check(closed and reply, "%r: no complete reply (%r)" % (line, reply[:200]))
    return reply


def served_reftime_gaps(server):
    gaps = []
    rng = random.Random(12)
    for k in range(20):
        time.sleep(rng.uniform(0.05, 0.4))
        query(server, b"sys json\n")
        r = h.sntp_query("127.0.0.1", PORT_A, timeout=2.0, src="127.0.0.%d" % (10 + k))
        h.check(r is not None, "no NTP reply from the server")
        h.check(r["stratum"] == 3,
                "stratum %d served, expected 3 (local stratum)" % r["stratum"])
        gaps.append(h.ts_to_float(r["rec"]) - h.ts_to_float(r["ref"]))
    h.log("receive time - reference time: %s" % " ".join("%.3f" % g for g in gaps))
    return gaps


def peer_accepted(c):
    peers = c.peers()
    h.check(len(peers) == 1, "expected one peer, got %d" % len(peers))
    return peers[0]["accepted"]


def wait_quiet_poll(c):
    """Waits until the iburst is over and a regular poll has just been
    answered, so that the next one is ~32 s away."""
    def synced():
        v = c.ctl_json("sys")
        return v if v["synced"] and v["discipline_updates"] >= 1 else None
    h.wait_until(synced, 30, "the client to synchronise")
    acc = [peer_accepted(c)]

    def burst_over():
        time.sleep(3.0)
        now = peer_accepted(c)
        done, acc[0] = now == acc[0], now
        return done
    h.wait_until(burst_over, 60, "the end of the iburst")
    h.wait_until(lambda: peer_accepted(c) > acc[0], 45, "a regular poll's answer")
    time.sleep(0.5)  # the update that sample triggered is done


def hammer(c):
    before, acc0 = c.ctl_json("sys"), peer_accepted(c)
    t0 = time.monotonic()
    for k in range(300):
        query(c, QUERIES[k % len(QUERIES)])
    elapsed = time.monotonic() - t0
    after, acc1 = c.ctl_json("sys"), peer_accepted(c)
    h.log("300 queries in %.2f s; discipline_updates %d -> %d, selections %d -> %d, "
          "accepted %d -> %d" % (elapsed, before["discipline_updates"],
                                 after["discipline_updates"], before["selections"],
                                 after["selections"], acc0, acc1))
    return before, after, acc0, acc1, elapsed


def main():
    h.require_ours()
    server = h.Ntsd("server", ["listen 127.0.0.1:%d" % PORT_A, "local stratum 3"])
    gaps = served_reftime_gaps(server)
    h.check(max(gaps) > 0.3, "every reference time served was within %.3f s of the query "
            "before it: control queries recompute the system state" % max(gaps))

    c = h.Ntsd("client", ["interface ignore all",
                          "server 127.0.0.1:%d iburst minpoll 5 maxpoll 5" % PORT_A],
               ready="sys")
    for attempt in range(3):
        wait_quiet_poll(c)
        before, after, acc0, acc1, elapsed = hammer(c)
        if acc0 == acc1:
            break
        h.log("a poll fell into the window; again")
    else:
        h.fail("could not query between two polls")
    for key in ("discipline_updates", "discipline_steps"):
        h.check(after[key] == before[key], "%s changed from %d to %d under queries alone" % (
            key, before[key], after[key]))
    h.check(after["selections"] - before["selections"] <= elapsed + 2,
            "selections rose by %d in %.1f s of queries: queries run the engine" % (
                after["selections"] - before["selections"], elapsed))
    json.dumps(after)  # the snapshot is plain JSON


h.run(main)
