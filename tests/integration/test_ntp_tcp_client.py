#!/usr/bin/python3
"""The client's NTP over TCP, without a proxy (docs/anonymity.md,
"Transports", "NTP over TCP").

An ntsd NTS server serves NTP over UDP and TCP (`listen ... tcp`, advertised
in its NTS-KE responses); a second one serves UDP only.

  * `transport tcp`: the client gets authenticated samples over TCP (the
    server counts TCP requests), offset small; `ntsctl peers --json` says
    transport tcp and proxy null;
  * `transport auto` (the default) without a proxy stays on UDP even though
    the server advertises TCP: transport udp, the server sees no TCP;
  * `transport tcp` against the UDP-only server: no sample, state no-path,
    path_error says the connection was refused;
  * a server that takes the connection and the request but never answers:
    the client closes the connection once the reply is overdue (10 s), not
    only at its next poll (64 s here).
"""
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_TCP, NTP_TCP = 14471, 11131     # the server with `listen ... tcp`
KE_UDP, NTP_UDP = 14472, 11132     # the server without
NTP_SILENT = 11133                 # takes NTP over TCP requests, answers none


class SilentServer:
    """Accepts one connection, reads the request, never answers; notes when
    the first bytes came and when the client closed."""

    def __init__(self):
        self.lis = socket.socket()
        self.lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lis.bind(("127.0.0.1", NTP_SILENT))
        self.lis.listen(4)
        self.got = self.closed = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        conn, _ = self.lis.accept()
        conn.settimeout(120)
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                data = b""
            if data and self.got is None:
                self.got = time.monotonic()
            if not data:
                self.closed = time.monotonic()
                return


def client(name, ke_port, pki, opts):
    return h.Ntsd(name, ["interface ignore all",
                         "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0 ca %s %s"
                         % (ke_port, pki.ca_cert, opts)], ready="peers")


def wait_samples(c, n=3):
    return h.wait_until(lambda: (lambda p: p if p["accepted"] >= n else None)(c.peers()[0]),
                        20, "%s to take %d samples" % (c.name, n))


def main():
    h.require_ours()
    pki = h.make_test_pki("pki")
    tcp_srv = h.NtsKeServer("server-tcp", pki, KE_TCP, NTP_TCP, tcp=True)
    h.NtsKeServer("server-udp", pki, KE_UDP, NTP_UDP)

    tcp = client("client-tcp", KE_TCP, pki, "transport tcp")
    auto = client("client-auto", KE_TCP, pki, "")
    refused = client("client-tcp-refused", KE_UDP, pki, "transport tcp")
    silent = SilentServer()
    h.Ntsd("client-silent", ["interface ignore all",
                             "server 127.0.0.1:%d minpoll 6 maxpoll 6 transport tcp"
                             % NTP_SILENT], ready="peers")

    p = wait_samples(tcp)
    h.log("tcp: %r" % {k: p.get(k) for k in ("state", "transport", "proxy", "offset", "delay",
                                               "accepted")})
    h.check(p.get("transport") == "tcp", "transport tcp: peer says %r" % p.get("transport"))
    h.check("proxy" in p and p["proxy"] is None, "no proxy: key proxy %r" % p.get("proxy"))
    h.check(p["state"] == "ok" and abs(p["offset"]) < 2e-3, "tcp: %r" % p)
    h.check(p["address"] == "127.0.0.1:%d" % NTP_TCP, "tcp: address %r" % p["address"])
    h.check_peer_schema(p)

    p = wait_samples(auto)
    h.check(p.get("transport") == "udp", "auto without a proxy: %r" % p.get("transport"))
    h.check(p["state"] == "ok" and abs(p["offset"]) < 2e-3, "auto: %r" % p)
    stats = tcp_srv.server()
    h.log("server: %r" % stats)
    t = stats["tcp"]
    h.check(t["requests"] >= 3 and t["requests"] - 1 <= t["responses"] <= t["requests"],
            "the server's TCP counters: %r" % t)
    # A new connection per request (docs/anonymity.md, "NTP over TCP").
    h.check(t["requests"] <= t["accepted"] <= t["requests"] + 1, "connections %d for %d requests"
            % (t["accepted"], t["requests"]))

    p = h.wait_until(lambda: (lambda p: p if p["state"] == "no-path" else None)(
        refused.peers()[0]), 20, "the TCP client of a UDP-only server to say no-path")
    h.log("refused: %r" % {k: p.get(k) for k in ("state", "transport", "path_error",
                                                   "accepted")})
    h.check("refused" in p.get("path_error", ""), "path_error: %r" % p.get("path_error"))
    h.check(p["accepted"] == 0 and p.get("transport") == "tcp", "refused: %r" % p)
    out = refused.ctl("peers")
    h.check("no-path" in out, "human peers output lacks the state:\n%s" % out)

    h.wait_until(lambda: silent.got, 20, "the silent server to get a request")
    h.wait_until(lambda: silent.closed, 15, "the client to close the unanswered connection")
    waited = silent.closed - silent.got
    h.log("the unanswered connection was closed after %.1f s" % waited)
    h.check(9 <= waited <= 12, "closed %.1f s after the request, want about 10 s" % waited)


h.run(main)
