#!/usr/bin/env python3
"""Time from HTTP `Date` headers, the way sdwdate and htpdate get it
(`make bench`, bench/torlike.py).

  httpdate.py serve ADDR:PORT
      an HTTP server whose responses carry `Date` (whole seconds, truncated,
      as every web server sends it);
  httpdate.py estimate --server ADDR:PORT --duration S --period P --out FILE
      estimates the offset (server - local, seconds, NTP's sign) every P s
      in two ways and writes them as JSON:

  "date": one HEAD request on a fresh connection; t1 just before the
      request is written, t4 when the response header has arrived, D the
      Date value.  The server read its clock at some moment in [t1, t4] and
      truncated it to D, so the estimate is D + 0.5 - (t1 + t4) / 2: the
      htpdate rule (remote time plus half the round trip) with the half
      second that truncation takes away put back, so it has no bias.
  "date-boundary": htpdate's trick for more than 1 s resolution: further
      requests (--boundary-requests in all) are each timed so that, by the
      current estimate and the last round trip, the server reads its clock
      at the moment its second changes.  Every response bounds the offset:
      D - t4 < offset < D + 1 - t1; the estimate is the middle of the
      intersection of those intervals.

Standard library only; bounded by --duration.
"""

import argparse
import email.utils
import http.server
import json
import random
import socket
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_HEAD(self):
        self.send_response(200)   # adds Date (http.server truncates to the second)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *a):
        pass


def serve(addr):
    host, port = addr.rsplit(":", 1)
    srv = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    srv.serve_forever(poll_interval=0.5)


def request(host, port, timeout):
    """One HEAD; returns (t1, t4, D) or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t1 = time.time()
        s.sendall(b"HEAD / HTTP/1.0\r\nHost: time\r\n\r\n")
        buf = b""
        while b"\r\n\r\n" not in buf:
            c = s.recv(4096)
            if not c:
                break
            buf += c
        t4 = time.time()
    except OSError:
        return None
    finally:
        s.close()
    for ln in buf.decode("latin-1").split("\r\n"):
        if ln.lower().startswith("date:"):
            d = email.utils.parsedate_to_datetime(ln[5:].strip())
            return t1, t4, d.timestamp()
    return None


def estimate(a):
    host, port = a.server.rsplit(":", 1)
    port = int(port)
    out = []
    t0 = time.monotonic()
    end = t0 + a.duration
    next_round = t0
    rng = random.Random(a.seed)
    while time.monotonic() < end:
        # A random phase within the second: a fixed one would see the same
        # truncation error every time.
        time.sleep(max(0.0, next_round + rng.uniform(0, 1) - time.monotonic()))
        next_round += a.period
        r = request(host, port, a.timeout)
        if r is None:
            out.append({"t": round(time.monotonic() - t0, 3), "error": "request failed"})
            continue
        t1, t4, d = r
        plain = d + 0.5 - (t1 + t4) / 2
        lo, hi = d - t4, d + 1 - t1
        rtt = t4 - t1
        n = 1
        while n < a.boundary_requests and time.monotonic() + rtt + 1 < min(end, next_round):
            est = (lo + hi) / 2
            # Local time at which the server should read its clock: the next
            # whole server second, at least 0.2 s ahead; send half an RTT earlier.
            now = time.time()
            target = int(now + est + rtt / 2 + 0.2) + 1 - est
            time.sleep(max(0.0, target - rtt / 2 - time.time()))
            r = request(host, port, a.timeout)
            n += 1
            if r is None:
                continue
            t1, t4, d = r
            rtt = t4 - t1
            lo, hi = max(lo, d - t4), min(hi, d + 1 - t1)
            if lo > hi:  # cannot happen with a steady server clock; start over
                lo, hi = d - t4, d + 1 - t1
        out.append({"t": round(time.monotonic() - t0, 3), "date": round(plain, 6),
                    "date_boundary": round((lo + hi) / 2, 6),
                    "boundary_width": round(hi - lo, 6), "requests": n,
                    "rtt": round(rtt, 6)})
        with open(a.out, "w") as f:
            json.dump(out, f)
    with open(a.out, "w") as f:
        json.dump(out, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("addr")
    e = sub.add_parser("estimate")
    e.add_argument("--server", required=True)
    e.add_argument("--duration", type=float, required=True)
    e.add_argument("--period", type=float, default=16.0)
    e.add_argument("--boundary-requests", type=int, default=6)
    e.add_argument("--timeout", type=float, default=5.0)
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "serve":
        serve(a.addr)
    else:
        estimate(a)


if __name__ == "__main__":
    sys.exit(main())
