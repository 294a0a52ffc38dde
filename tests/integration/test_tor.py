#!/usr/bin/env python3
"""NTS time through a private Tor network (../shared/tools/tor-testnet).

One Tor network for the whole test (tornet.py), an ntsd NTS server in its
server namespace (NTS-KE and NTP over TCP on server_addr, published also as
an onion service), and ntsd clients in its client namespace, whose only
neighbour is Tor's SocksPort, all with `proxy socks5://SOCKS`:
  exit:  one daemon, two sources: the server by IP (ATYP 1) and by the name
         `server.test` (ATYP 3, resolved at the exit);
  onion: the server's onion name, certificate from the test CA;
  pin:   the onion name again, `pin sha256:...` and no CA.
Passes when every source holds NTS-authenticated samples over socks-tcp
with a small offset, the first within 10 s of the daemon's start; the two
sources of one daemon used disjoint Tor circuits (STREAM events of the
client's control port, with their SOCKS usernames); the capture on the
client interface holds only packets to and from the SocksPort; and the DNS
trap saw no query.  Without the tool (a clone without ../shared) it skips.
"""
import base64
import hashlib
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import tornet as tn  # noqa: E402

KE, NTP = 4460, 11123
MIN_SAMPLES = 3
MAX_OFFSET = 0.1
FIRST_SAMPLE_S = 10.0


def spki_pin(cert):
    der = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"],
                         capture_output=True, check=True, timeout=10).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=der,
                         capture_output=True, check=True, timeout=10).stdout
    return "sha256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def main():
    h.setup(__file__)
    tn.require()
    h.require_ours()
    h.require_peer("/usr/bin/tcpdump", "tcpdump")
    net = tn.TorNet(onions=[("nts", ":%d,%d" % (KE, NTP))])
    try:
        net.up()
        run(net)
    finally:
        net.down()


def server(net, pki):
    lines = ["listen %s:%d tcp" % (net.server_addr, NTP), "local stratum 1", "nts enable",
             "nts cert %s" % pki.chain, "nts key %s" % pki.key,
             "nts cookie %s" % os.path.join(h.tmpdir(), "srv.keys"),
             "nts-listen-on %s:%d" % (net.server_addr, KE)]
    s = h.Ntsd("srv", lines, args=("-d",), wrap=net.srv.prefix())
    want = "serving NTS-KE on %s:%d" % (net.server_addr, KE)
    h.wait_until(lambda: want in s.proc.read_log(), 10, "the server to log %r" % want)
    return s


def run(net):
    onion = net.onion("nts")
    pki = h.make_test_pki(extra_sans=["IP:%s" % net.server_addr, "DNS:%s" % net.server_name,
                                      "DNS:%s" % onion])
    server(net, pki)
    watch = net.watch_streams()
    cap = net.capture("cap-tor")
    proxy = "interface ignore all\nproxy socks5://%s" % net.env["socks"]
    opts = "iburst minpoll 0 maxpoll 0"
    ca = "nts ca %s" % pki.ca_cert
    want = {  # daemon -> the sources' KE hosts
        "exit": [net.server_addr, net.server_name],
        "onion": [onion],
        "pin": [onion],
    }
    confs = {
        "exit": [proxy, "server %s:%d %s %s" % (net.server_addr, KE, ca, opts),
                 "server %s:%d %s %s" % (net.server_name, KE, ca, opts)],
        "onion": [proxy, "server %s:%d %s %s" % (onion, KE, ca, opts)],
        "pin": [proxy, "server %s:%d nts pin %s %s" % (onion, KE, spki_pin(pki.cert), opts)],
    }
    clients, first = {}, {}
    for name, lines in confs.items():
        clients[name] = (h.Ntsd(name, lines, wrap=net.client_prefix()), time.monotonic())

    def progress():
        done = True
        for name, (c, t0) in clients.items():
            ps = c.peers()
            h.check(len(ps) == len(want[name]), "%s: sources %r" % (name, ps))
            for i, p in enumerate(ps):
                key = (name, i)
                if p.get("accepted", 0) > 0 and key not in first:
                    first[key] = time.monotonic() - t0
                    h.log("%s source %d: first NTS sample %.2f s after start" % (
                        name, i, first[key]))
                done = done and p.get("accepted", 0) >= MIN_SAMPLES
        return done
    try:
        h.wait_until(progress, 60, "%d NTS samples on every source through Tor" % MIN_SAMPLES,
                     interval=0.1)
    finally:
        for name, (c, _) in clients.items():
            for p in c.peers():
                h.log("%s: %s transport=%s proxy=%s accepted=%s offset=%s delay=%s" % (
                    name, p.get("remote"), p.get("transport"), p.get("proxy"),
                    p.get("accepted"), p.get("offset"), p.get("delay")))
    for name, (c, _) in clients.items():
        for i, p in enumerate(c.peers()):
            h.check(p["nts"] is True, "%s: not NTS: %r" % (name, p))
            h.check(p.get("transport") == "socks-tcp", "%s: transport %r, expected socks-tcp"
                    % (name, p.get("transport")))
            h.check(abs(p["offset"]) < MAX_OFFSET, "%s: offset %.6f" % (name, p["offset"]))
            h.check(first[(name, i)] < FIRST_SAMPLE_S,
                    "%s source %d: first NTS sample after %.1f s (limit %.0f s)" % (
                        name, i, first[(name, i)], FIRST_SAMPLE_S))
    # Stream isolation: the exit daemon's two sources never shared a circuit.
    by_ip, by_name, u_ip, u_name = set(), set(), set(), set()
    for port in (KE, NTP):
        by_ip |= watch.circuits_to("%s:%d" % (net.server_addr, port))
        by_name |= watch.circuits_to("%s:%d" % (net.server_name, port))
        u_ip |= watch.users_to("%s:%d" % (net.server_addr, port))
        u_name |= watch.users_to("%s:%d" % (net.server_name, port))
    h.log("by IP: circuits %s, %d SOCKS usernames; by name: circuits %s, %d usernames" % (
        sorted(by_ip), len(u_ip), sorted(by_name), len(u_name)))
    h.check(by_ip and by_name, "no STREAM events for the exit daemon's sources")
    h.check(not (by_ip & by_name), "the two sources shared circuits %s" % (by_ip & by_name))
    h.check(None not in u_ip | u_name, "a stream without a SOCKS username (no isolation)")
    h.check(not (u_ip & u_name), "the two sources shared SOCKS usernames")
    # The same from GETINFO circuit-status: each circuit is built for one
    # source's credentials.
    cu = net.circuit_users()
    for circs, users, what in ((by_ip, u_ip, "by IP"), (by_name, u_name, "by name")):
        for c in circs & set(cu):
            h.check(cu[c] in users, "circuit %s of the source %s carries SOCKS_USERNAME %r" % (
                c, what, cu[c]))
    cap.check_only_proxy([(net.proxy_addr, "tcp", net.socks_port)])
    net.check_no_dns()
    h.log("first NTS samples (s): %s" % ", ".join("%s/%d %.2f" % (k[0], k[1], v)
                                                  for k, v in sorted(first.items())))


if __name__ == "__main__":
    h.run(main)
