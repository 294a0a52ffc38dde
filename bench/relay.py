#!/usr/bin/env python3
"""User-space UDP relay with per-direction delay, jitter, loss and spikes.

The kernel of the benchmark machine has no netem, so the benchmark router
namespace runs this relay instead.  It listens on the client-facing address
(clients use it as their NTP server) and forwards every datagram to the real
server from a per-client upstream socket (a UDP "NAT" entry, so replies find
their way back to the right client socket; chronyd and ntsd both open a
new socket for every request, so entries idle for 90 s are dropped).

Timing.  Every datagram is stamped by the kernel on arrival (SO_TIMESTAMPNS,
CLOCK_REALTIME) and released at   arrival stamp + drawn delay,   taken from
a timer heap.  The loop sleeps in select() until --spin-us before the
earliest release (timer slack set to 1 ns) and spins for the rest, so the
relay's own scheduling error is microseconds, not the hundreds of
microseconds a timer wake-up costs on a VM.  For every datagram it records
its release error (clock read just before sendto minus the scheduled
release; the receiver's kernel stamps the datagram on veth enqueue, a few
microseconds into that sendto) and, as an upper bound, the time sendto
returned (sendto on a veth runs the receive path, including waking the
receiver, so it takes ~100 us).  A datagram whose release time has passed
when it is read (0 added delay, or a wake-up later than the delay) goes out
at once; its release error is then the relay's wake-up latency.  --rt
(SCHED_FIFO 1) keeps builds on the machine from preempting the relay.

Per direction ("up": client to server, "down": server to client):
    delay        base one-way delay added, seconds
    jitter       uniform: U(-jitter, +jitter); normal: N(0, jitter)
    dist         "uniform" (default) or "normal"
    loss         probability of dropping a datagram
    spike        probability of adding spike_delay on top
    spike_delay  seconds
A drawn delay below 0 is clamped to 0.  Packets may be reordered by jitter.

Standard library only.  Runs for at most --max-seconds, writes its stats
(JSON) at exit (SIGTERM/SIGINT) and every 10 s.
"""

import argparse
import ctypes
import heapq
import json
import math
import os
import random
import select
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35            # Linux, <asm-generic/socket.h> (SO_TIMESTAMPNS_OLD)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
PR_SET_TIMERSLACK = 29
TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux
CMSG_SPACE = socket.CMSG_SPACE(TIMESPEC.size)
SO_TIMESTAMPING = 37           # SO_TIMESTAMPING_OLD; cmsg SCM_TIMESTAMPING: 3 timespecs
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
TX_FLAGS = (SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID
            | SOF_TIMESTAMPING_OPT_TSONLY)
IP_RECVERR = 11
SO_EE_ORIGIN_TIMESTAMPING = 4
EXTERR = struct.Struct("=IBBBBII")   # struct sock_extended_err
ERRQ_CMSG_SPACE = socket.CMSG_SPACE(3 * TIMESPEC.size) + socket.CMSG_SPACE(64)

SPIN_US_DEFAULT = 2000         # spin the last 2 ms before a release (see --spin-us)
MAP_IDLE_S = 90.0              # forget a client mapping idle this long
MAP_MAX = 512                  # at most this many client mappings
MAX_LATENESS_SAMPLES = 200_000

_stop = False


def _on_signal(signum, frame):
    global _stop
    _stop = True


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def summ(v):
    if not v:
        return None
    s = sorted(v)
    n = len(s)

    def pct(p):
        return s[min(n - 1, max(0, int(math.ceil(p * n)) - 1))] / 1e3

    mean = sum(s) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in s) / n)
    return {"n": n, "min_us": s[0] / 1e3, "median_us": pct(0.5), "p95_us": pct(0.95),
            "p99_us": pct(0.99), "max_us": s[-1] / 1e3, "mean_us": mean / 1e3,
            "stdev_us": sd / 1e3}



class Direction:
    def __init__(self, name, cfg, rng):
        self.name = name
        self.delay = float(cfg.get("delay", 0.0))
        self.jitter = float(cfg.get("jitter", 0.0))
        self.dist = cfg.get("dist", "uniform")
        self.loss = float(cfg.get("loss", 0.0))
        self.spike = float(cfg.get("spike", 0.0))
        self.spike_delay = float(cfg.get("spike_delay", 0.0))
        if self.dist not in ("uniform", "normal"):
            raise ValueError("dist must be uniform or normal")
        self.rng = rng
        self.received = 0
        self.lost = 0
        self.spiked = 0
        self.sent = 0
        self.send_errors = 0
        self.release_ns = []       # clock read just before sendto - scheduled release
        self.sent_ns = []          # clock read after sendto returns - scheduled release
        self.wire_ns = []          # software transmit stamp (veth) - scheduled release
        self.queue_ns = []         # read time - kernel rx stamp (how long it sat in the socket)
        self.applied_ns = []       # release (before sendto) - kernel rx stamp: delay applied
        self.drawn_ns = []         # delay drawn

    def config(self):
        return {"delay": self.delay, "jitter": self.jitter, "dist": self.dist,
                "loss": self.loss, "spike": self.spike, "spike_delay": self.spike_delay}

    def draw(self):
        """Returns the delay in ns, or None to drop the datagram."""
        if self.loss > 0 and self.rng.random() < self.loss:
            self.lost += 1
            return None
        d = self.delay
        if self.jitter > 0:
            if self.dist == "uniform":
                d += self.rng.uniform(-self.jitter, self.jitter)
            else:
                d += self.rng.gauss(0.0, self.jitter)
        if self.spike > 0 and self.rng.random() < self.spike:
            self.spiked += 1
            d += self.spike_delay
        return max(0, int(round(d * 1e9)))

    def stats(self):
        return {"config": self.config(), "received": self.received, "lost": self.lost,
                "spiked": self.spiked, "sent": self.sent, "send_errors": self.send_errors,
                "wire_error": summ(self.wire_ns),
                "release_error": summ(self.release_ns), "sendto_return": summ(self.sent_ns),
                "socket_queue": summ(self.queue_ns),
                "applied_delay": summ(self.applied_ns), "drawn_delay": summ(self.drawn_ns)}


def make_udp(bind):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    # Software transmit stamps (taken by the veth driver as it hands the
    # datagram to the peer, i.e. when the receiver's kernel stamps it): how
    # late each release really was.  Matched by OPT_ID (a per-socket count).
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_FLAGS)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(bind)
    s.setblocking(False)
    return s


def recv_stamped(s):
    """(data, addr, kernel rx stamp ns, read time ns) or None."""
    try:
        data, anc, _flags, addr = s.recvmsg(4096, CMSG_SPACE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return None  # e.g. ICMP port unreachable reported on a connected socket
    now = time.time_ns()
    ts = None
    for level, typ, blob in anc:
        if level == socket.SOL_SOCKET and typ == SCM_TIMESTAMPNS and len(blob) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack(blob[:TIMESPEC.size])
            ts = sec * 1_000_000_000 + nsec
    if ts is None:
        ts = now
    return data, addr, ts, now


def read_tx_stamps(s):
    """[(key, software transmit stamp ns)] from the socket's error queue."""
    out = []
    for _ in range(256):  # bounded
        try:
            _data, anc, _flags, _addr = s.recvmsg(64, ERRQ_CMSG_SPACE, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            break
        ts = key = None
        for level, typ, blob in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPING and len(blob) >= 16:
                sec, nsec = TIMESPEC.unpack(blob[:16])
                ts = sec * 1_000_000_000 + nsec
            elif level == socket.IPPROTO_IP and typ == IP_RECVERR and len(blob) >= EXTERR.size:
                f = EXTERR.unpack(blob[:EXTERR.size])
                if f[1] == SO_EE_ORIGIN_TIMESTAMPING:
                    key = f[6]
        if ts and key is not None:
            out.append((key, ts))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", required=True, help="client-facing ADDR:PORT")
    ap.add_argument("--upstream-bind", required=True, help="server-facing source ADDR")
    ap.add_argument("--server", required=True, help="server ADDR:PORT")
    ap.add_argument("--config", required=True,
                    help='JSON: {"up": {...}, "down": {...}} (see the module docstring)')
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stats", required=True, help="write stats JSON here")
    ap.add_argument("--ready", help="create this file once listening")
    ap.add_argument("--max-seconds", type=float, default=3600.0,
                    help="exit after this long whatever happens")
    ap.add_argument("--packet-log", help="append one line per released datagram (CSV)")
    ap.add_argument("--spin-us", type=int, default=SPIN_US_DEFAULT,
                    help="wake this long before a release and spin (default %(default)s)")
    ap.add_argument("--floor-us", type=int, default=0,
                    help="constant delay added to every datagram in both directions")
    ap.add_argument("--rt", action="store_true",
                    help="run at SCHED_FIFO priority 1 (the relay sleeps between packets "
                    "and spins at most --spin-us per release)")
    a = ap.parse_args()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(1), 0, 0, 0)
    except OSError:
        pass

    SPIN_NS = a.spin_us * 1000
    if not 0 <= a.spin_us <= 10_000:
        ap.error("--spin-us must be 0..10000")
    if a.rt:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    cfg = json.loads(a.config)
    rng = random.Random(a.seed)
    dirs = {"up": Direction("up", cfg.get("up", {}), random.Random(rng.getrandbits(64))),
            "down": Direction("down", cfg.get("down", {}), random.Random(rng.getrandbits(64)))}
    server = parse_addr(a.server)
    front = make_udp(parse_addr(a.listen))
    upstream_bind = (a.upstream_bind, 0)

    maps = {}        # client addr -> [upstream socket, last use (monotonic)]
    by_sock = {}     # upstream socket fileno -> client addr
    heap = []        # (release ns, seq, direction name, socket, data, dst or None, rx ns)
    seq = 0
    plog = open(a.packet_log, "a") if a.packet_log else None
    started = time.monotonic()
    deadline = started + a.max_seconds
    next_stats = started + 10.0
    mappings_made = 0
    mappings_evicted = 0
    wake_late_ns = []  # timer wake-ups (select timeouts before a release): actual - wanted

    def write_stats():
        out = {"listen": a.listen, "server": a.server, "seed": a.seed, "spin_us": a.spin_us,
               "floor_us": a.floor_us, "rt": a.rt,
               "uptime_s": time.monotonic() - started, "mappings_made": mappings_made,
               "mappings_evicted": mappings_evicted, "mappings_now": len(maps),
               "timer_wake_late": summ(wake_late_ns), "tx_stamps_unmatched": tx_unmatched[0],
               "up": dirs["up"].stats(), "down": dirs["down"].stats()}
        tmp = a.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, a.stats)

    txkey = {}       # socket fileno -> OPT_ID of its next datagram (None: lost track)
    txpend = {}      # (fileno, key) -> (direction name, scheduled release ns)
    tx_unmatched = [0]

    def drop_mapping(addr):
        ent = maps.pop(addr, None)
        if ent:
            fd = ent[0].fileno()
            by_sock.pop(fd, None)
            txkey.pop(fd, None)
            for k in [k for k in txpend if k[0] == fd]:
                del txpend[k]
            ent[0].close()

    def collect_tx(s):
        fd = s.fileno()
        for key, ts in read_tx_stamps(s):
            ent = txpend.pop((fd, key), None)
            if ent is None:
                tx_unmatched[0] += 1
                continue
            d = dirs[ent[0]]
            if len(d.wire_ns) < MAX_LATENESS_SAMPLES:
                d.wire_ns.append(ts - ent[1])

    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % os.getpid())

    while not _stop and time.monotonic() < deadline:
        # Release everything due (spinning for the last SPIN_NS).
        while heap:
            now = time.time_ns()
            rel = heap[0][0]
            if rel - now > SPIN_NS:
                break
            while time.time_ns() < rel:   # bounded: rel - now <= SPIN_NS
                pass
            rel, _, dname, sock, data, dst, rx = heapq.heappop(heap)
            d = dirs[dname]
            fd = sock.fileno()
            t_pre = time.time_ns()
            try:
                if dst is None:
                    sock.send(data)
                else:
                    sock.sendto(data, dst)
                t = time.time_ns()
                d.sent += 1
                key = txkey.get(fd, 0)
                if key is not None:
                    txkey[fd] = key + 1
                    if len(txpend) < 10000:
                        txpend[(fd, key)] = (dname, rel)
                if len(d.release_ns) < MAX_LATENESS_SAMPLES:
                    d.release_ns.append(t_pre - rel)
                    d.sent_ns.append(t - rel)
                    d.applied_ns.append(t_pre - rx)
                if plog:
                    plog.write("%s,%d,%d,%d,%d\n" % (dname, rx, rel, t_pre, t))
            except OSError:
                d.send_errors += 1
                txkey[fd] = None  # the OPT_ID count may be off now: stop matching
        # Sleep until the next release (minus the spin) or a datagram.
        fds = [front] + [ent[0] for ent in maps.values()]
        timeout = 1.0
        if heap:
            timeout = max(0.0, (heap[0][0] - time.time_ns() - SPIN_NS) / 1e9)
        timeout = min(timeout, max(0.0, deadline - time.monotonic()))
        want_wake = time.time_ns() + int(timeout * 1e9)
        try:
            rd, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        if not rd and heap and len(wake_late_ns) < MAX_LATENESS_SAMPLES:
            wake_late_ns.append(time.time_ns() - want_wake)
        for s in rd:
            collect_tx(s)
            for _ in range(64):  # bounded drain per wake-up
                r = recv_stamped(s)
                if r is None:
                    break
                data, addr, rx, rd_t = r
                if s is front:
                    d = dirs["up"]
                    ent = maps.get(addr)
                    if ent is None:
                        if len(maps) >= MAP_MAX:
                            oldest = min(maps, key=lambda k: maps[k][1])
                            drop_mapping(oldest)
                            mappings_evicted += 1
                        us = make_udp(upstream_bind)
                        us.connect(server)
                        ent = [us, 0.0]
                        maps[addr] = ent
                        by_sock[us.fileno()] = addr
                        mappings_made += 1
                    ent[1] = time.monotonic()
                    out_sock, dst = ent[0], None
                else:
                    d = dirs["down"]
                    caddr = by_sock.get(s.fileno())
                    if caddr is None:
                        break
                    maps[caddr][1] = time.monotonic()
                    out_sock, dst = front, caddr
                d.received += 1
                if len(d.queue_ns) < MAX_LATENESS_SAMPLES:
                    d.queue_ns.append(rd_t - rx)
                delay = d.draw()
                if delay is None:
                    continue
                if len(d.drawn_ns) < MAX_LATENESS_SAMPLES:
                    d.drawn_ns.append(delay)
                seq += 1
                rel = rx + delay + a.floor_us * 1000
                heapq.heappush(heap, (rel, seq, d.name, out_sock, data, dst, rx))
        # Housekeeping: idle mappings, periodic stats.
        mono = time.monotonic()
        if mono >= next_stats:
            next_stats = mono + 10.0
            pending = {id(e[3]) for e in heap}
            for addr in [k for k, e in maps.items()
                         if mono - e[1] > MAP_IDLE_S and id(e[0]) not in pending]:
                drop_mapping(addr)
            write_stats()
            if plog:
                plog.flush()
    for sck in [front] + [e[0] for e in maps.values()]:
        collect_tx(sck)
    write_stats()
    if plog:
        plog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
