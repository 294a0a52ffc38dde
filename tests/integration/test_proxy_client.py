#!/usr/bin/python3
"""NTP through a SOCKS5 proxy (docs/anonymity.md, "Transports").

A real microsocks (CONNECT only, like Tor: it answers UDP ASSOCIATE with
reply 7) is the proxy.  Only it can resolve NAME (its own /etc/hosts, in a
private mount namespace); the clients' resolver is a trap that counts every
query.  Two ntsd NTS servers: one also serves NTP over TCP (advertised in
its NTS-KE), one UDP only.

  * `proxy socks5://alice:secret@...` on the server line, server by NAME:
    NTS-KE and NTP go through the proxy (NTP over TCP, transport socks-tcp),
    samples with a small offset; `proxy` shows the URL without the password,
    `address` the name and port the proxy gets;
  * a plain NTP source (no NTS) by NAME with `transport tcp`: NTP over TCP
    through the proxy;
  * the global `proxy` directive, the UDP-only server: the proxy refuses UDP
    ASSOCIATE, nothing goes direct (the server sees no NTP at all), the
    source is not polled, state no-path and path_error say why,
    proxy_errors counts the refusal;
  * the same with `directfallback`: samples over direct UDP, and one
    warning per request that went direct;
  * `directfallback` on an onion service (a plain source the proxy can
    reach, which refuses UDP ASSOCIATE): no direct path exists, so its
    name is never looked up here; state no-path says why;
  * through a real dante (which grants UDP ASSOCIATE), the UDP-only server
    by name: NTP over the proxy's UDP relay (transport socks-udp), samples;
  * NTS-KE naming the NTP server (its Server record): by a NAME2 only the
    proxy resolves, and by an address literal; NTP goes through the proxy
    to that server, never to the KE server's address, and the name is
    not looked up here;
  * stream isolation, through a scripted relay that records each
    handshake: two sources of one client use different random credentials,
    and each source's NTP streams use its NTS-KE's;
  * the DNS trap saw no query.
"""
import json
import os
import re
import socket
import sys
import threading

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_TCP, NTP_TCP = 14481, 11141
KE_UDP, NTP_UDP = 14482, 11142
KE_NAMED, NTP_NAMED = 14483, 11143  # its NTP on 127.0.0.2, named NAME2 by NTS-KE
KE_LIT, NTP_LIT = 14484, 11144      # its NTP on 127.0.0.3, named by its address
PROXY_PORT = 11090
NAME = "nts-proxy-only.example.test"
NAME2 = "ntp-proxy-only.example.test"
ONION = "ntsdtestntsdtestntsdtestntsdtestntsdtestntsdtestntsdtest.onion"
MICROSOCKS = "/usr/bin/microsocks"
HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "socks_hostile.py")
DANTED = "/usr/sbin/danted"
DANTE_PORT = 11091
DANTE_CONF = """logoutput: stderr
internal: 127.0.0.1 port = %d
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: 0.0.0.0/0 to: 0.0.0.0/0 }
socks pass { from: 0.0.0.0/0 to: 0.0.0.0/0 command: connect udpassociate udpreply }
""" % DANTE_PORT


class DnsTrap:
    """Records every datagram sent to 127.0.0.1:53 and answers none."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 53))
        self.queries = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, _ = self.s.recvfrom(4096)
            except OSError:
                return
            self.queries.append(data)


def in_mount_ns(binds, cmd):
    mounts = " && ".join("mount --bind %s %s" % (src, dst) for dst, src in binds.items())
    return ["unshare", "--mount", "--", "sh", "-c", mounts + ' && exec "$0" "$@"'] + list(cmd)


class Client(h.Ntsd):
    """An ntsd client whose resolver is the DNS trap."""

    def __init__(self, name, lines, resolv):
        self.binds = {"/etc/resolv.conf": resolv}
        h.Ntsd.__init__(self, name, ["interface ignore all"] + lines, ready="peers")

    def _start(self):
        cmd = [h.NTSD_BIN, "-c", self.conf, "-n", "-x", "-s", self.sock, "-d"]
        self.proc = h.start_process(self.name, in_mount_ns(self.binds, cmd), kind="ours")
        h.wait_until(lambda: self.ctl_json("peers") is not None, 15,
                     "%s control socket" % self.name)


def listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_dante(hosts):
    conf = h.write_file("danted.conf", DANTE_CONF)
    h.start_process("danted", in_mount_ns({"/etc/hosts": hosts},
                                          [DANTED, "-f", conf, "-N", "1"]))
    h.wait_until(lambda: listening(DANTE_PORT), 10, "danted to listen")


def start_microsocks(hosts):
    h.start_process("microsocks", in_mount_ns({"/etc/hosts": hosts},
                                              [MICROSOCKS, "-i", "127.0.0.1", "-p",
                                               str(PROXY_PORT)]))

    def listening():
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex(("127.0.0.1", PROXY_PORT)) == 0
    h.wait_until(listening, 10, "microsocks to listen")


def peer(c):
    return c.peers()[0]


def wait_samples(c, n=3):
    return h.wait_until(lambda: (lambda p: p if p["accepted"] >= n else None)(peer(c)), 30,
                        "%s to take %d samples" % (c.name, n))


def show(c, p):
    h.log("%s: %r" % (c.name, {k: p.get(k) for k in (
        "state", "address", "transport", "proxy", "path_error", "proxy_errors", "proxy_error",
        "accepted", "offset", "ke_error")}))


def start_relay():
    """The recording relay of socks_hostile.py; returns (port, record file)."""
    ports_file = os.path.join(h.tmpdir(), "relay-ports.json")
    record = os.path.join(h.tmpdir(), "relay-record.jsonl")
    h.start_process("relay", [sys.executable, HOSTILE, "--ports-file", ports_file,
                              "--record", record, "relay"])
    port = h.wait_until(lambda: os.path.exists(ports_file) and json.load(open(ports_file)),
                        10, "the relay's port")["relay"]
    return port, record


def check_isolation(c, record):
    wait = lambda: all(p["accepted"] >= 2 for p in c.peers())  # noqa: E731
    h.wait_until(wait, 30, "both isolated sources to take samples")
    with open(record) as f:
        seen = [json.loads(ln) for ln in f]
    by_host = {}
    for s in seen:
        by_host.setdefault(s["host"], []).append(s)
    h.log("the relay saw %d handshakes: %r" % (len(seen), {k: [(s["port"], s["user"][:8])
                                                                for s in v]
                                                            for k, v in by_host.items()}))
    creds = {}
    for host in ("127.0.0.1", "localhost"):
        hs = by_host.get(host, [])
        ke = [s for s in hs if s["port"] == KE_TCP]
        ntp = [s for s in hs if s["port"] == NTP_TCP]
        h.check(len(ke) == 1 and len(ntp) >= 2, "%s: %d KE and %d NTP streams" % (
            host, len(ke), len(ntp)))
        h.check(re.fullmatch(r"[0-9a-f]{32}", ke[0]["user"] or ""), "%s: KE credentials %r"
                % (host, ke[0]))
        for s in ntp:
            h.check((s["user"], s["pass"]) == (ke[0]["user"], ke[0]["pass"]),
                    "%s: an NTP stream did not use its KE's credentials: %r %r"
                    % (host, s, ke[0]))
        creds[host] = ke[0]["user"]
    h.check(creds["127.0.0.1"] != creds["localhost"], "two sources shared credentials")


def main():
    h.require_ours()
    if not os.access(MICROSOCKS, os.X_OK):
        h.skip("microsocks is not installed")
    h._SERVER_CNF = h._SERVER_CNF.replace("DNS:localhost,", "DNS:localhost, DNS:%s," % NAME)
    pki = h.make_test_pki()
    h.NtsKeServer("server-tcp", pki, KE_TCP, NTP_TCP, tcp=True)
    udp_srv = h.NtsKeServer("server-udp", pki, KE_UDP, NTP_UDP)
    h.NtsKeServer("server-named", pki, KE_NAMED, NTP_NAMED, tcp=True, ntp_addr="127.0.0.2",
                  extra=["nts ntpserver %s" % NAME2])
    h.NtsKeServer("server-literal", pki, KE_LIT, NTP_LIT, tcp=True, ntp_addr="127.0.0.3",
                  extra=["nts ntpserver 127.0.0.3"])
    hosts = h.write_file("proxy-hosts", "127.0.0.1 localhost\n127.0.0.1 %s\n127.0.0.2 %s\n"
                         "127.0.0.1 %s\n" % (NAME, NAME2, ONION))
    resolv = h.write_file("client-resolv.conf",
                          "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    trap = DnsTrap()
    start_microsocks(hosts)
    proxy = "socks5://127.0.0.1:%d" % PROXY_PORT
    opts = "nts iburst minpoll 0 maxpoll 0 ca %s" % pki.ca_cert

    relay_port, record = start_relay()
    isolated = Client("client-isolated", [
        "proxy socks5://127.0.0.1:%d" % relay_port,
        "server 127.0.0.1:%d %s" % (KE_TCP, opts),
        "server localhost:%d %s" % (KE_TCP, opts)], resolv)
    via_dante = None
    if os.access(DANTED, os.X_OK):
        start_dante(hosts)
        via_dante = Client("client-dante", [
            "server %s:%d %s proxy socks5://127.0.0.1:%d" % (NAME, KE_UDP, opts, DANTE_PORT)],
            resolv)
    else:
        h.log("danted is not installed: no UDP ASSOCIATE part")
    named = Client("client-named", [
        "server %s:%d %s proxy socks5://alice:secret@127.0.0.1:%d"
        % (NAME, KE_TCP, opts, PROXY_PORT)], resolv)
    ke_named = Client("client-ke-named", [
        "proxy " + proxy,
        "server %s:%d %s" % (NAME, KE_NAMED, opts),
        "server %s:%d %s" % (NAME, KE_LIT, opts)], resolv)
    plain = Client("client-plain", [
        "proxy " + proxy,
        "server %s:%d iburst minpoll 0 maxpoll 0 transport tcp" % (NAME, NTP_TCP)], resolv)
    refused = Client("client-refused", ["proxy " + proxy,
                                        "server 127.0.0.1:%d %s" % (KE_UDP, opts)], resolv)
    onion = Client("client-onion", ["proxy " + proxy, "server %s:%d iburst minpoll 0 "
                                    "maxpoll 0 directfallback" % (ONION, NTP_UDP)], resolv)
    fallback = Client("client-fallback", ["proxy " + proxy, "server 127.0.0.1:%d %s "
                                          "directfallback" % (KE_UDP, opts)], resolv)

    p = wait_samples(named)
    show(named, p)
    h.check(p["transport"] == "socks-tcp", "named: transport %r" % p["transport"])
    h.check(p["proxy"] == "socks5://alice@127.0.0.1:%d" % PROXY_PORT, "proxy %r" % p["proxy"])
    h.check(p["address"] == "%s:%d" % (NAME, NTP_TCP), "address %r" % p["address"])
    h.check(p["state"] == "ok" and abs(p["offset"]) < 5e-3, "named: %r" % p)
    out = named.ctl("peers") + named.ctl("peers", "--json")
    h.check("secret" not in out, "the proxy password shows in ntsctl output:\n%s" % out)
    h.check("socks-tcp" in named.ctl("peers"), "the human table lacks the transport")

    # NTP goes where NTS-KE said, through the proxy: nothing listens for NTP
    # at the KE server's address, so a sample proves it.
    h.wait_until(lambda: all(p["accepted"] >= 2 for p in ke_named.peers()), 30,
                 "the sources whose NTS-KE names their NTP server to take samples")
    for p, want in zip(ke_named.peers(), ("%s:%d" % (NAME2, NTP_NAMED),
                                          "127.0.0.3:%d" % NTP_LIT)):
        show(ke_named, p)
        h.check(p["address"] == want and p["transport"] == "socks-tcp" and p["state"] == "ok",
                "KE-named NTP server: want %s through the proxy, got %r" % (want, p))

    p = wait_samples(plain)
    show(plain, p)
    h.check(p["transport"] == "socks-tcp" and p["state"] == "ok" and not p["nts"]
            and p["address"] == "%s:%d" % (NAME, NTP_TCP), "plain: %r" % p)

    p = h.wait_until(lambda: (lambda p: p if p["state"] == "no-path" and "does not offer"
                              in p["path_error"] else None)(peer(refused)), 20,
                     "the UDP-only source behind a CONNECT-only proxy to say no-path")
    show(refused, p)
    h.check(p["proxy_errors"] >= 1 and "not supported" in p["proxy_error"], "refused: %r" % p)
    h.check(p["accepted"] == 0 and p["transport"] is None, "refused: %r" % p)

    p = h.wait_until(lambda: (lambda p: p if p["state"] == "no-path" and "onion" in
                              p["path_error"] else None)(peer(onion)), 20,
                     "the onion source with directfallback to say no-path")
    show(onion, p)
    h.check(p["sent"] == 0 and "goes DIRECT" not in onion.proc.read_log(), "onion: %r" % p)

    p = wait_samples(fallback)
    show(fallback, p)
    h.check(p["transport"] == "udp" and p["state"] == "ok", "fallback: %r" % p)
    warned = fallback.proc.read_log().count("goes DIRECT")
    h.check(warned >= p["accepted"], "%d direct-fallback warnings for %d samples"
            % (warned, p["accepted"]))
    # Everything the UDP-only server saw came from the fallback client.
    got = udp_srv.server()["received"]
    sent = p["sent"] + (peer(via_dante)["sent"] if via_dante else 0)
    h.check(got <= sent + 2, "the UDP-only server got %d requests, the fallback and dante "
            "clients sent %d" % (got, sent))
    p = peer(refused)
    h.check(p["accepted"] == 0 and p["sent"] == 0, "the refused source sent: %r" % p)
    if via_dante:
        p = wait_samples(via_dante)
        show(via_dante, p)
        h.check(p["transport"] == "socks-udp" and p["state"] == "ok"
                and abs(p["offset"]) < 5e-3, "dante: %r" % p)
        h.check(p["address"] == "%s:%d" % (NAME, NTP_UDP), "dante: address %r" % p["address"])
    check_isolation(isolated, record)
    h.check(not trap.queries, "the DNS trap saw %d queries" % len(trap.queries))


h.run(main)
