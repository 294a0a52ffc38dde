#!/usr/bin/env python3
"""NTS time through real SOCKS5 proxies, with nothing leaking past them.

Two proxy networks (proxynet.py), each a client namespace whose only
neighbour is its proxy:
  microsocks (CONNECT only):   ntsd gets time from an ntsd NTS server, KE
                               and NTP over TCP through CONNECT (socks-tcp),
                               with RFC 1929 credentials, and from a second
                               microsocks on the proxy's IPv6 address;
  dante (CONNECT and UDP ASSOCIATE): from the same ntsd server once over UDP
                               ASSOCIATE (transport udp: socks-udp) and once
                               over TCP (socks-tcp); and from chronyd 4.3 and
                               NTPsec 1.2.2 NTS servers, which speak UDP only
                               (auto: socks-udp).
The servers run in the test's namespace on SERVER_ADDR; the client names
the ntsd server `ntp.test`, which only the proxies can resolve (their hosts
files), so a local lookup would fail and be caught.  Passes when every
source holds NTS-authenticated samples on the expected transport with a
small offset, `ntsctl peers --json` shows the proxy URL without the
password, the tcpdump capture on each client interface holds only packets
to and from the proxy (and dante's UDP relay ports), and the DNS trap saw
no query.
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import proxynet as pn  # noqa: E402

OURS_KE, OURS_NTP = 14460, 11123
CHRONY_KE, CHRONY_NTP = 24460, 21123
MIN_SAMPLES = 4
MAX_OFFSET = 0.05    # everything shares one clock; the proxies add little delay
NAME = "ntp.test"


def ntsd_server(pki):
    lines = ["listen %s:%d tcp" % (pn.SERVER_ADDR, OURS_NTP),
             "local stratum 1", "nts enable", "nts cert %s" % pki.chain,
             "nts key %s" % pki.key, "nts cookie %s" % os.path.join(h.tmpdir(), "srv.keys"),
             "nts-listen-on %s:%d" % (pn.SERVER_ADDR, OURS_KE)]
    s = h.Ntsd("srv", lines, args=("-d",))
    want = "serving NTS-KE on %s:%d" % (pn.SERVER_ADDR, OURS_KE)
    h.wait_until(lambda: want in s.proc.read_log(), 10, "the server to log %r" % want)
    return s


def client(topo, name, proxy, server_line):
    return h.Ntsd(name, ["interface ignore all", "proxy %s" % proxy, server_line],
                  wrap=topo.client_prefix())


def peer_of(c):
    ps = c.peers()
    h.check(len(ps) == 1, "%s: expected one source, got %r" % (c.name, ps))
    return ps[0]


def wait_samples(clients):
    """clients: [(Ntsd, expected transport)]."""
    def ready():
        return all(peer_of(c).get("accepted", 0) >= MIN_SAMPLES for c, _ in clients)
    try:
        h.wait_until(ready, 60, "%d NTS samples on every proxied source" % MIN_SAMPLES,
                     interval=0.5)
    except h.TestFailure:
        for c, _ in clients:
            h.log("%s: %r" % (c.name, peer_of(c)))
        raise
    for c, want in clients:
        p = peer_of(c)
        h.log("%s: transport=%s proxy=%s accepted=%d offset=%.6f delay=%.6f" % (
            c.name, p.get("transport"), p.get("proxy"), p["accepted"], p["offset"],
            p["delay"]))
        h.check(p["nts"] is True, "%s: source is not NTS: %r" % (c.name, p))
        h.check(p.get("transport") == want, "%s: transport %r, expected %r" % (
            c.name, p.get("transport"), want))
        h.check(abs(p["offset"]) < MAX_OFFSET, "%s: offset %.6f" % (c.name, p["offset"]))
        url = p.get("proxy")
        h.check(isinstance(url, str) and url.startswith("socks5://"),
                "%s: peers --json proxy %r" % (c.name, url))
        h.check("secret" not in url, "%s: the proxy password shows in %r" % (c.name, url))


def main():
    h.setup(__file__)
    h.require_ours()
    h.require_peer(h.CHRONYD_BIN, "chronyd")
    h.require_peer(h.NTPSEC_NTPD, "NTPsec ntpd")
    for tool in ("/usr/bin/microsocks", "/usr/sbin/danted", "/usr/bin/tcpdump"):
        h.require_peer(tool, os.path.basename(tool))
    pki = h.make_test_pki(extra_sans=["DNS:%s" % NAME, "IP:%s" % pn.SERVER_ADDR])
    hosts = [(NAME, pn.SERVER_ADDR)]
    ms, dn = pn.Topology(0), pn.Topology(1)
    try:
        run(pki, hosts, ms, dn)
    finally:
        for p in list(h._state["procs"]):
            p.stop(quiet=True)
        ms.close()
        dn.close()


def run(pki, hosts, ms, dn):
    ntsd_server(pki)
    h.Chronyd("chronyd", port=CHRONY_NTP, local_stratum=1, allow=["all"], extra=[
        "ntsport %d" % CHRONY_KE, "ntsserverkey %s" % pki.key,
        "ntsservercert %s" % pki.chain,
        "ntsdumpdir %s" % os.path.join(h.tmpdir(), "chronyd")])
    h.NtpsecNtpd("ntpsec", extra=[
        "nts enable", "nts key %s" % pki.key, "nts cert %s" % pki.chain,
        "nts cookie %s" % os.path.join(h.tmpdir(), "ntpsec", "nts-keys")])
    caps = [ms.capture("cap-microsocks"), dn.capture("cap-dante")]
    ms.start_microsocks(1080, user="ntsd", password="secret", hosts=hosts)
    ms.start_microsocks(1081, hosts=hosts, v6=True)
    dn.start_dante(1080, hosts=hosts)
    msp = "socks5://ntsd:secret@%s:1080" % ms.proxy_addr
    dnp = "socks5://%s:1080" % dn.proxy_addr
    opts = "nts ca %s iburst minpoll 0 maxpoll 0" % pki.ca_cert
    first = client(ms, "via-microsocks", msp, "server %s:%d %s" % (NAME, OURS_KE, opts))
    clients = [
        (first, "socks-tcp"),
        (client(ms, "via-microsocks6", "socks5://[%s]:1081" % ms.proxy_addr6,
                "server %s:%d %s" % (NAME, OURS_KE, opts)), "socks-tcp"),
        (client(dn, "dante-udp", dnp, "server %s:%d %s transport udp" % (NAME, OURS_KE, opts)),
         "socks-udp"),
        (client(dn, "dante-tcp", dnp, "server %s:%d %s transport tcp" % (
            pn.SERVER_ADDR, OURS_KE, opts)), "socks-tcp"),
        (client(dn, "dante-chrony", dnp, "server %s:%d %s" % (pn.SERVER_ADDR, CHRONY_KE, opts)),
         "socks-udp"),
        (client(dn, "dante-ntpsec", dnp, "server %s %s" % (NAME, opts)), "socks-udp"),
    ]
    t0 = time.monotonic()
    wait_samples(clients)
    h.log("all %d proxied sources authenticated in %.1f s" % (len(clients),
                                                             time.monotonic() - t0))
    lo, hi = dn.dante_udp_ports
    pk = caps[0].check_only_proxy([(ms.proxy_addr, "tcp", 1080), (ms.proxy_addr6, "tcp", 1081)])
    h.check(any(p.get("dst") == ms.proxy_addr6 for p in pk),
            "no packet to the proxy's IPv6 address in the microsocks capture")
    pk = caps[1].check_only_proxy([(dn.proxy_addr, "tcp", 1080),
                                   (dn.proxy_addr, "udp", range(lo, hi + 1))])
    h.check(any(p.get("proto") == "udp" for p in pk),
            "no UDP ASSOCIATE datagram in the dante capture")
    ms.check_no_dns()
    dn.check_no_dns()


if __name__ == "__main__":
    h.run(main)
