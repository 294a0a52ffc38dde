#!/usr/bin/python3
"""A burst of requests through the batched server path.

  * The server socket's receive buffer is the 4 MB asked for (ntsd runs
    with CAP_NET_ADMIN here, so SO_RCVBUFFORCE passes net.core.rmem_max;
    the kernel reports twice the value, `ss -m` rb >= 4194304).
  * 256 requests sent back to back from one socket, read by the server in
    recvmmsg batches and answered in sendmmsg batches: every one is
    answered once, each reply carries its own request's transmit time as
    origin, and the receive stamps are the kernel's per datagram: in send
    order, never decreasing, not one stamp shared by a batch, each before
    its reply's transmit stamp.
"""
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT = 11321
BURST = 256
RCVBUF = 4 << 20


def rcvbuf_of(port):
    r = h.run_cmd(["ss", "-uamnH", "sport = :%d" % port])
    h.log("ss: %s" % r.stdout.strip().replace("\n", " | "))
    m = re.search(r"\brb(\d+)", r.stdout)
    return int(m.group(1)) if m else None


def burst(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", port))
    base = h.ntp_now()
    sent = [base + i + 1 for i in range(BURST)]
    for i in range(BURST):
        s.send(h.client_packet(xmt=sent[i])[0])
    replies = {}
    deadline = time.monotonic() + 5
    while len(replies) < BURST and time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = s.recv(2048)
        except socket.timeout:
            break
        r = h.parse_packet(data)
        h.check(r is not None and r["mode"] == 4, "a reply that is not mode 4: %r" % data[:48])
        h.check(r["org"] not in replies, "two replies for the request with xmt %x" % r["org"])
        replies[r["org"]] = r
    s.close()
    return sent, replies


def main():
    h.require_ours()
    d = h.Ntsd("burst", ["listen 127.0.0.1:%d" % PORT, "local stratum 1"], debug=False)

    rb = rcvbuf_of(PORT)
    h.check(rb is not None, "ss shows no receive buffer for port %d" % PORT)
    h.check(rb >= RCVBUF, "receive buffer %s bytes, expected >= %d" % (rb, RCVBUF))

    sent, replies = burst(PORT)
    h.log("burst: %d sent, %d answered" % (len(sent), len(replies)))
    h.check(set(replies) <= set(sent), "a reply's origin matches no request")
    h.check(len(replies) == BURST, "%d of %d requests answered" % (len(replies), BURST))
    rec = [replies[x]["rec"] for x in sent]
    h.check(all(a <= b for a, b in zip(rec, rec[1:])),
            "receive stamps go backwards in send order")
    h.check(len(set(rec)) > BURST // 2,
            "only %d distinct receive stamps for %d requests" % (len(set(rec)), BURST))
    for x in sent:
        r = replies[x]
        h.check(r["rec"] <= r["xmt"], "a reply transmitted before it was received")
    srv = d.server()
    h.log("server: %r" % {k: srv.get(k) for k in ("received", "send_errors")})
    h.check(srv.get("send_errors", 0) == 0, "send errors: %r" % srv.get("send_errors"))


if __name__ == "__main__":
    h.run(main)
