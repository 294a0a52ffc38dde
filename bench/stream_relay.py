#!/usr/bin/env python3
"""User-space TCP relay that delays every chunk of a stream (`make bench`,
bench/torlike.py).

Listens on --listen and, for each connection, opens one to --server (from
--upstream-bind).  Per direction ("up": client to server, "down": back),
every chunk read is released after a delay drawn like bench/relay.py draws
a datagram's (delay ± jitter uniform, a `spike` share of chunks
`spike_delay` later), but never before the chunk ahead of it: a stream
keeps its order, so a late chunk holds back the ones behind it, as a slow
Tor cell does.  With an empty config it is a plain forwarder.

Standard library only; a thread per connection; bounded by --max-seconds.
"""

import argparse
import heapq
import json
import random
import select
import signal
import socket
import sys
import threading
import time

_stop = False


def _on_signal(signum, frame):
    global _stop
    _stop = True


def draw(rng, d):
    v = d.get("delay", 0.0)
    j = d.get("jitter", 0.0)
    if j:
        v += rng.uniform(-j, j)
    if d.get("spike") and rng.random() < d["spike"]:
        v += d.get("spike_delay", 0.0)
    return max(0.0, v)


def pump(a, b, cfg, rng, lock):
    """Relays both directions of one connection until both ends close."""
    socks = {a: (b, cfg.get("up", {})), b: (a, cfg.get("down", {}))}
    queue = []                      # (release, seq, dst, data or None for EOF)
    last = {a: 0.0, b: 0.0}         # latest release per source: keeps the order
    open_in = {a, b}
    seq = 0
    try:
        while (open_in or queue) and not _stop:
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _, _, dst, data = heapq.heappop(queue)
                if data is None:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                else:
                    dst.sendall(data)
            wait = min(queue[0][0] - now, 0.5) if queue else 0.5
            rd, _, _ = select.select(list(open_in), [], [], max(wait, 0.0))
            now = time.monotonic()
            for s in rd:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                dst, d = socks[s]
                with lock:
                    delay = draw(rng, d)
                rel = max(now + delay, last[s])
                last[s] = rel
                seq += 1
                heapq.heappush(queue, (rel, seq, dst, data or None))
                if not data:
                    open_in.discard(s)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="client-facing ADDR:PORT")
    ap.add_argument("--upstream-bind", required=True, help="server-facing source ADDR")
    ap.add_argument("--server", required=True, help="server ADDR:PORT")
    ap.add_argument("--config", default="{}", help='JSON {"up": {...}, "down": {...}}')
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ready", help="create this file once listening")
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    a = ap.parse_args()
    cfg = json.loads(a.config)
    host, port = a.listen.rsplit(":", 1)
    shost, sport = a.server.rsplit(":", 1)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(64)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if a.ready:
        open(a.ready, "w").close()
    rng = random.Random(a.seed)
    lock = threading.Lock()
    end = time.monotonic() + a.max_seconds
    while not _stop and time.monotonic() < end:
        rd, _, _ = select.select([ls], [], [], 0.5)
        if not rd:
            continue
        c, _ = ls.accept()
        u = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind((a.upstream_bind, 0))
            u.settimeout(5)
            u.connect((shost, int(sport)))
            u.settimeout(None)
        except OSError as e:
            print("stream_relay: connect %s: %s" % (a.server, e), file=sys.stderr, flush=True)
            c.close()
            u.close()
            continue
        for s in (c, u):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(c, u, cfg, rng, lock), daemon=True).start()
    ls.close()


if __name__ == "__main__":
    main()
