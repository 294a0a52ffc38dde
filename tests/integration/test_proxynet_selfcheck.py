#!/usr/bin/env python3
"""Self-check of the proxy test network (proxynet.py) with stock tools.

Proves the ground the proxy tests stand on: the client namespace reaches
nothing but its proxy (a direct connection fails with ENETUNREACH);
microsocks (with and without a username) and dante relay curl's CONNECT to
a server named only in the proxy's hosts file; dante relays a UDP ASSOCIATE
round trip to a UDP echo; the capture on the client's interface then holds
only packets to and from the proxy, and the DNS trap saw nothing.  Then the
negative side: `getent hosts` (over UDP and, with RES_OPTIONS=use-vc,
over TCP) and Python's getaddrinfo in the client namespace are caught by
the trap, and a datagram to a port that is not the
proxy's is flagged by the capture checker.
"""
import http.server
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import proxynet as pn  # noqa: E402

HTTP_PORT = 8080


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def http_server():
    srv = http.server.ThreadingHTTPServer((pn.SERVER_ADDR, HTTP_PORT), Quiet)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True)
    t.start()
    return srv


def curl(topo, proxy, url="http://srv.test:%d/" % HTTP_PORT):
    r = topo.run_client(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                         "--max-time", "5", "-x", proxy, url], timeout=10)
    h.check(r.returncode == 0 and r.stdout.strip() == "200",
            "curl -x %s %s: rc=%d out=%r err=%r" % (proxy, url, r.returncode, r.stdout,
                                                     r.stderr.strip()))
    h.log("curl -x %s %s: 200" % (proxy, url))


def main():
    h.setup(__file__)
    for tool in ("microsocks", "danted", "tcpdump", "curl", "nsenter", "getent"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/bin").split(":") + ["/usr/sbin"]):
            h.skip("%s is not installed (scripts/install-deps)" % tool)
    hosts = [("srv.test", pn.SERVER_ADDR)]
    ms = pn.Topology(0)
    dn = pn.Topology(1)
    srv = http_server()
    echo = pn.UdpEcho()
    try:
        cap_ms, cap_dn = ms.capture("cap-microsocks"), dn.capture("cap-dante")
        ms.start_microsocks(1080, hosts=hosts)
        ms.start_microsocks(1081, user="alice", password="s3cret", hosts=hosts)
        dn.start_dante(1080, hosts=hosts)

        curl(ms, "socks5h://%s:1080" % ms.proxy_addr)
        curl(ms, "socks5h://alice:s3cret@%s:1081" % ms.proxy_addr)
        r = ms.run_client(["curl", "-sS", "-o", "/dev/null", "--max-time", "5", "-x",
                           "socks5h://alice:wrong@%s:1081" % ms.proxy_addr,
                           "http://srv.test:%d/" % HTTP_PORT])
        h.check(r.returncode != 0, "microsocks accepted a wrong password")
        curl(dn, "socks5h://%s:1080" % dn.proxy_addr)
        curl(dn, "socks5://%s:1080" % dn.proxy_addr, "http://%s:%d/" % (pn.SERVER_ADDR,
                                                                       HTTP_PORT))
        ans, relay = pn.socks_udp_roundtrip(dn, 1080, pn.SERVER_ADDR, echo.port, b"ping-udp")
        h.check(ans == b"ping-udp", "UDP ASSOCIATE through dante: echo %r" % ans)
        lo, hi = dn.dante_udp_ports
        h.check(relay[0] == dn.proxy_addr and lo <= relay[1] <= hi,
                "dante announced relay %s, expected %s:%d-%d" % (relay, dn.proxy_addr, lo, hi))
        h.log("UDP ASSOCIATE through dante: echo via relay %s:%d" % relay)
        # Python's own SOCKS client, by name (ATYP 3) through microsocks.
        s = pn.socks_connect(ms, 1080, "srv.test", HTTP_PORT)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        h.check(s.recv(12).startswith(b"HTTP/1.0 200"), "raw CONNECT by name: no HTTP 200")
        s.close()

        cap_ms.check_only_proxy([(ms.proxy_addr, "tcp", 1080), (ms.proxy_addr, "tcp", 1081)])
        cap_dn.check_only_proxy([(dn.proxy_addr, "tcp", 1080),
                                 (dn.proxy_addr, "udp", range(lo, hi + 1))])
        for t in (ms, dn):
            h.check(not t.trap.seen(), "DNS trap saw queries: %r" % t.trap.seen())

        # The checks can fail: a resolver query and a stray datagram are caught.
        r = ms.run_client(["getent", "hosts", "some.name"])
        h.check(r.returncode != 0, "getent resolved some.name: %r" % r.stdout)
        h.wait_until(lambda: any(q[2] == "some.name" for q in ms.trap.seen()), 5,
                     "the DNS trap to see getent's query")
        r = ms.run_client([sys.executable, "-c",
                           "import socket\ntry:\n socket.getaddrinfo('other.name', 80)\n"
                           "except OSError:\n pass"])
        h.check(r.returncode == 0, "python getaddrinfo run failed: %s" % r.stderr)
        h.wait_until(lambda: any(q[2] == "other.name" for q in ms.trap.seen()), 5,
                     "the DNS trap to see Python's getaddrinfo query")
        r = ms.run_client(["env", "RES_OPTIONS=use-vc", "getent", "hosts", "tcp.name"])
        h.check(r.returncode != 0, "getent resolved tcp.name: %r" % r.stdout)
        h.wait_until(lambda: any(q[:1] == ("tcp",) and q[2] == "tcp.name"
                                 for q in ms.trap.seen()), 5,
                     "the DNS trap to see getent's query over TCP")
        h.log("DNS trap caught: %r" % ms.trap.seen())
        cap = ms.capture("cap-stray")
        u = ms.client_socket(kind=socket.SOCK_DGRAM)
        u.sendto(b"stray", (ms.proxy_addr, 9999))
        u.close()
        c = ms.client_socket()
        c.settimeout(2)
        c.connect((ms.proxy_addr, 1080))
        c.close()
        cap.stop()
        bad = cap.foreign([(ms.proxy_addr, "tcp", 1080)])
        flagged = [pn.fmt_packet(p) for p in bad]
        h.check(any(p["proto"] == "udp" and p["dport"] == 9999 for p in bad),
                "the capture checker missed the stray datagram: %r" % flagged)
        h.check(not any(p["proto"] == "tcp" for p in bad),
                "the capture checker flagged the proxy's own port: %r" % flagged)
        h.log("capture checker flagged the stray datagram: %s" % flagged)
    finally:
        srv.shutdown()
        srv.server_close()
        echo.stop()
        for p in list(h._state["procs"]):
            p.stop(quiet=True)
        ms.close()
        dn.close()


if __name__ == "__main__":
    h.run(main)
