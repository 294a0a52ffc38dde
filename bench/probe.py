#!/usr/bin/env python3
"""NTP prober for relay calibration (scripts/bench --calibrate).

Sends COUNT plain NTP client requests to ADDR:PORT at random intervals
(uniform MIN..MAX seconds, so the CPUs go idle in between like they do
between real polls) and writes, per reply, the offset and round-trip delay
it measured (transmit stamp: clock read just before sendto; receive stamp:
the kernel's SO_TIMESTAMPNS).  Standard library only; bounded in time.
"""

import argparse
import json
import random
import select
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("@qq")
HDR = struct.Struct("!BBbbII4sQQQQ")
NTP_EPOCH = 2208988800


def to_ntp(ns):
    return (int(ns) + NTP_EPOCH * 10**9) * 2**32 // 10**9 & 0xFFFFFFFFFFFFFFFF


def from_ntp(ts):
    return ts * 10**9 / 2**32 - NTP_EPOCH * 1e9   # ns (float)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--min", type=float, default=0.2)
    ap.add_argument("--max", type=float, default=1.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    host, _, port = a.server.rpartition(":")
    dst = (host, int(port))
    rng = random.Random(a.seed)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(("0.0.0.0", 0))
    out = []
    deadline = time.monotonic() + a.count * (a.max + 1.0) + 10
    for i in range(a.count):
        if time.monotonic() > deadline:
            break
        time.sleep(rng.uniform(a.min, a.max))
        t1 = time.time_ns()
        xmt = to_ntp(t1) ^ rng.getrandbits(8)
        s.sendto(HDR.pack(0x23, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, xmt), dst)
        end = time.monotonic() + 1.0
        rec = None
        while time.monotonic() < end:
            r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            data, anc, _, _ = s.recvmsg(1024, socket.CMSG_SPACE(TIMESPEC.size))
            t4 = time.time_ns()
            for lvl, typ, blob in anc:
                if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = TIMESPEC.unpack(blob[:TIMESPEC.size])
                    t4 = sec * 10**9 + nsec
            if len(data) < 48:
                continue
            f = HDR.unpack(data[:48])
            if f[8] != xmt:
                continue
            t2, t3 = from_ntp(f[9]), from_ntp(f[10])
            rec = {"offset_us": ((t2 - t1) + (t3 - t4)) / 2e3,
                   "delay_us": ((t4 - t1) - (t3 - t2)) / 1e3}
            break
        out.append(rec)
    with open(a.out, "w") as f:
        json.dump(out, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
