#!/usr/bin/env python3
"""NTP response-time probe (bench/kebench.py): plain NTP client requests
to ADDR:PORT at a fixed RATE per second for SECONDS, and per request its
round trip: from the clock read just before sendto to the kernel's receive
stamp of the reply (SO_TIMESTAMPNS), so the probe's own scheduling after
the reply arrives is not counted; and how long the server held it (its
transmit minus receive timestamp).  Writes JSON: {"sent", "rtt_us": [...],
"held_us": [...]} (answered requests only).  Standard library only; bounded in time.
"""

import argparse
import json
import select
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")
HDR = struct.Struct("!BBbbII4sQQQQ")


def ntp_ns(ts):
    """An NTP timestamp as nanoseconds (only differences are used)."""
    return ts * 10**9 >> 32


def drain(s, pending, rtts, held):
    """Reads every reply waiting on s; matches it by transmit timestamp."""
    while True:
        try:
            data, anc, _, _ = s.recvmsg(1024, socket.CMSG_SPACE(TIMESPEC.size),
                                        socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        t4 = None
        for lvl, typ, blob in anc:
            if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, nsec = TIMESPEC.unpack(blob[:TIMESPEC.size])
                t4 = sec * 10**9 + nsec
        if len(data) < 48 or t4 is None:
            continue
        f = HDR.unpack(data[:48])
        t1 = pending.pop(f[8], None)  # the origin timestamp: our tag
        if t1 is not None:
            rtts.append((t4 - t1) / 1e3)
            held.append((ntp_ns(f[10]) - ntp_ns(f[9])) / 1e3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="ADDR:PORT")
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not (1 <= a.rate <= 1000 and 0 < a.seconds <= 600):
        ap.error("rate 1..1000, seconds up to 600")
    host, _, port = a.server.rpartition(":")
    dst = (host, int(port))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", 0))
    pending, rtts, held = {}, [], []
    n = int(a.rate * a.seconds)
    t0 = time.monotonic()
    for i in range(n):
        # A fixed schedule: a slow reply never delays the next request.
        while True:
            wait = t0 + i / a.rate - time.monotonic()
            if wait <= 0:
                break
            r, _, _ = select.select([s], [], [], wait)
            if r:
                drain(s, pending, rtts, held)
        # The request's transmit timestamp is only a unique tag here.
        tag = (i + 1) << 16 | 0x5a5a
        t1 = time.time_ns()
        s.sendto(HDR.pack(0x23, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, tag), dst)
        pending[tag] = t1
    end = time.monotonic() + 1.0
    while pending and time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if r:
            drain(s, pending, rtts, held)
    with open(a.out, "w") as f:
        json.dump({"sent": n, "rtt_us": rtts, "held_us": held}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
