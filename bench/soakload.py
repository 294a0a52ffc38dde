#!/usr/bin/env python3
"""Fallback load for `make soak` when ntpperf is not available: plain
(unauthenticated) NTP client requests at a steady rate from many source
addresses, Python standard library only.

    soakload.py --server ADDR:PORT --net 10.214.0.0/16 --clients N --rate R
                --seconds S [--interval T]

Runs in the soak's generator namespace, where the soak has made the whole
source network local (`ip route add local NET dev lo`), so one socket can
send from any address in it (IP_PKTINFO) and receive the replies.  Client i
uses address NET + 1 + i and sends every N / R seconds.  Every T seconds it
prints one line:

    load: requests 10000 responses 9998 invalid 0 clients 1000 rate 1000

(a response counts when it is a server-mode reply whose origin timestamp is
the client's last transmit timestamp).  It stops by itself after S seconds.
"""

import argparse
import ipaddress
import os
import select
import socket
import struct
import sys
import time

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="soakload.py")
    ap.add_argument("--server", required=True)
    ap.add_argument("--net", required=True)
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--interval", type=float, default=10.0)
    a = ap.parse_args(argv)
    host, port = a.server.rsplit(":", 1)
    a.server = (host, int(port))
    net = ipaddress.ip_network(a.net)
    if not 1 <= a.clients <= net.num_addresses - 2 or not 1 <= a.rate <= 20000:
        ap.error("--clients must fit in --net and --rate be 1..20000")
    if not 0 < a.seconds <= 7 * 86400:
        ap.error("--seconds out of range")
    a.addrs = [socket.inet_aton(str(net.network_address + 1 + i)) for i in range(a.clients)]
    return a


class Load:
    def __init__(self, a):
        self.a = a
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.index = {ad: i for i, ad in enumerate(a.addrs)}
        self.expect = [None] * len(a.addrs)
        self.requests = self.responses = self.invalid = 0

    def send(self, i):
        xmt = os.urandom(8)
        pkt = b"\x23" + b"\x00" * 39 + xmt   # LI 0, VN 4, mode 3
        info = struct.pack("=I4s4s", 0, self.a.addrs[i], b"\x00" * 4)
        try:
            self.sock.sendmsg([pkt], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0,
                              self.a.server)
        except OSError:
            return
        self.expect[i] = xmt
        self.requests += 1

    def receive(self):
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(512, socket.CMSG_SPACE(12))
            except (BlockingIOError, InterruptedError):
                return
            dst = None
            for level, kind, val in anc:
                if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(val) >= 12:
                    dst = val[8:12]
            i = self.index.get(dst)
            if i is None:
                continue
            if (len(data) >= 48 and data[0] & 7 == 4 and self.expect[i] is not None
                    and data[24:32] == self.expect[i]):
                self.responses += 1
                self.expect[i] = None
            else:
                self.invalid += 1

    def report(self):
        print("load: requests %d responses %d invalid %d clients %d rate %d" % (
            self.requests, self.responses, self.invalid, len(self.a.addrs), self.a.rate),
            flush=True)
        self.requests = self.responses = self.invalid = 0


def main(argv):
    a = parse_args(argv)
    load = Load(a)
    load.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    start = time.monotonic()
    end = start + a.seconds
    step = 1.0 / a.rate
    next_tx = start
    next_report = start + a.interval
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        # Everything due, but never more than one second's worth at once.
        n = 0
        while next_tx <= now and n < a.rate:
            load.send(i)
            i = (i + 1) % len(a.addrs)
            next_tx += step
            n += 1
        if next_tx < now - 1.0:
            next_tx = now
        load.receive()
        if now >= next_report:
            load.report()
            next_report += a.interval
        wait = max(0.0, min(next_tx, next_report, end) - time.monotonic())
        select.select([load.sock], [], [], min(wait, 0.01))
    time.sleep(0.2)
    load.receive()
    if load.requests:
        load.report()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
