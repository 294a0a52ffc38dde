#!/usr/bin/python3
"""NTS-KE through a real SOCKS5 proxy (microsocks, CONNECT only like Tor)
with ntsd_kefetch --proxy, to an ntsd NTS-KE server; all in one private
namespace on loopback.

The server's certificate names localhost, 127.0.0.1 and nts.example.test.
Only the proxies can resolve nts.example.test: each microsocks runs in its
own mount namespace with an /etc/hosts that maps it to 127.0.0.1, while
ntsd_kefetch runs in one whose /etc/resolv.conf points at a DNS trap (a
UDP listener on 127.0.0.1:53 that records every query) and whose
/etc/hosts does not have the name.

Passes when:
  * by IP literal through microsocks (no authentication) the KE completes;
  * by name (nts.example.test) it completes, the trap sees no query (while
    `getent hosts` in the same namespace does reach the trap and fails, so
    the name can only have been resolved by the proxy), and with
    -n wrong.example.test the certificate check fails: SNI and
    verification use the configured name, not what the proxy resolved;
  * through microsocks -u/-P: the right USER:PASS (percent-encoded in the
    URL) completes; a wrong password, and no credentials at all (random
    ones), fail with "authentication refused";
  * through a proxy on ::1 ([::1]:PORT in the URL) it completes;
  * stream isolation: through socks_hostile.py in mode relay, which records
    each handshake, two runs without credentials offer username/password
    with two different random 32-hex-digit usernames and passwords, a name
    goes as ATYP 3 and an address as ATYP 1, and given credentials (also
    `bob@`, an empty password) go as given.
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

KE_PORT = 14460
NTP_PORT = 11123
NAME = "nts.example.test"
KEFETCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kefetch")
HOSTILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "socks_hostile.py")
MICROSOCKS = "/usr/bin/microsocks"


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
    """cmd in a private mount namespace with files bind-mounted over others
    (binds: {target: source})."""
    mounts = " && ".join("mount --bind %s %s" % (src, dst) for dst, src in binds.items())
    return ["unshare", "--mount", "--", "sh", "-c", mounts + ' && exec "$0" "$@"'] + list(cmd)


def start_microsocks(name, addr, port, hosts, *args):
    p = h.start_process(name, in_mount_ns({"/etc/hosts": hosts},
                                           [MICROSOCKS, "-i", addr, "-p", str(port)] + list(args)))
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET

    def listening():
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            return s.connect_ex((addr, port)) == 0
    h.wait_until(listening, 10, "%s to listen on %s port %d" % (name, addr, port))
    return p


class Fetcher:
    def __init__(self, pki, resolv):
        self.pki = pki
        self.resolv = resolv

    def run(self, proxy_url, target, *args):
        cmd = [KEFETCH, "--proxy", proxy_url, "-c", self.pki.ca_cert, "-t", "5"] + list(args)
        cmd += [target, str(KE_PORT)]
        r = h.run_cmd(in_mount_ns({"/etc/resolv.conf": self.resolv}, cmd), timeout=30)
        h.log("ntsd_kefetch --proxy %s %s %s -> rc %d: %r" % (
            proxy_url, " ".join(args), target, r.returncode, r.stderr.strip()))
        return r

    def ok(self, proxy_url, target, *args):
        r = self.run(proxy_url, target, *args)
        h.check(r.returncode == 0 and re.fullmatch(r"15 [0-9A-F]{64},[0-9A-F]+\n", r.stdout),
                "NTS-KE to %s through %s failed: %s" % (target, proxy_url, r.stderr.strip()))
        return r

    def fails(self, proxy_url, target, want, *args):
        r = self.run(proxy_url, target, *args)
        h.check(r.returncode == 1 and not r.stdout and want in r.stderr,
                "through %s to %s: want a failure saying %r, got rc %d: %s" % (
                    proxy_url, target, want, r.returncode, r.stderr.strip()))
        return r


def part_no_auth(f, trap, hosts):
    port = 11080
    start_microsocks("microsocks", "127.0.0.1", port, hosts)
    url = "socks5://127.0.0.1:%d" % port
    f.ok(url, "127.0.0.1")
    f.ok(url, NAME)
    f.fails(url, NAME, "certificate verification failed", "-n", "wrong.example.test")
    h.check(not trap.queries, "the DNS trap saw %d queries: a name was resolved locally" %
            len(trap.queries))
    # the trap works: a local lookup of the name reaches it, and fails
    r = h.run_cmd(in_mount_ns({"/etc/resolv.conf": f.resolv}, ["getent", "hosts", NAME]),
                  timeout=20)
    h.check(r.returncode != 0, "the test namespace resolves %s itself: %r" % (NAME, r.stdout))
    h.wait_until(lambda: trap.queries, 5, "the DNS trap to see getent's query")
    h.log("no DNS query from ntsd_kefetch; getent's lookup reached the trap (%d datagrams)" %
          len(trap.queries))


def part_userpass(f, hosts):
    port = 11081
    start_microsocks("microsocks-auth", "127.0.0.1", port, hosts, "-u", "ntsuser", "-P", "p@ss:w")
    f.ok("socks5://ntsuser:p%%40ss%%3Aw@127.0.0.1:%d" % port, NAME)
    f.fails("socks5://ntsuser:wrong@127.0.0.1:%d" % port, NAME, "authentication refused")
    f.fails("socks5://127.0.0.1:%d" % port, NAME, "authentication refused")


def part_ipv6(f, hosts):
    r = h.run_cmd(["ip", "-6", "addr", "show", "dev", "lo"])
    if "::1" not in r.stdout:
        h.log("no ::1 in this namespace: the IPv6 proxy part is skipped")
        return
    port = 11082
    start_microsocks("microsocks-v6", "::1", port, hosts)
    f.ok("socks5://[::1]:%d" % port, NAME)


def part_isolation(f):
    ports_file = os.path.join(h.tmpdir(), "relay-ports.json")
    record = os.path.join(h.tmpdir(), "relay-record.jsonl")
    h.start_process("relay", [sys.executable, HOSTILE, "--ports-file", ports_file,
                              "--record", record, "relay"])
    port = h.wait_until(lambda: json.load(open(ports_file)), 10, "the relay's port")["relay"]
    url = "socks5://127.0.0.1:%d" % port
    f.ok(url, "127.0.0.1")
    f.ok(url, "localhost")
    f.ok("socks5://alice:secret@127.0.0.1:%d" % port, "127.0.0.1")
    f.ok("socks5://bob@127.0.0.1:%d" % port, "127.0.0.1")
    with open(record) as fh:
        seen = [json.loads(ln) for ln in fh]
    h.log("the relay saw: %r" % seen)
    h.check(len(seen) == 4, "want 4 recorded handshakes, got %d" % len(seen))
    for s in seen:
        h.check(s["methods"] == [0, 2], "offered methods %r, want [0, 2]" % s["methods"])
    a, b = seen[0], seen[1]
    for s in (a, b):
        h.check(re.fullmatch(r"[0-9a-f]{32}", s["user"]) and re.fullmatch(r"[0-9a-f]{32}",
                                                                            s["pass"]),
                "random credentials are not 32 hex digits: %r" % s)
    h.check(a["user"] != b["user"] and a["pass"] != b["pass"],
            "two KEs used the same credentials: %r %r" % (a, b))
    h.check(a["atyp"] == 1 and a["host"] == "127.0.0.1", "an address went as %r" % a)
    h.check(b["atyp"] == 3 and b["host"] == "localhost", "a name went as %r" % b)
    h.check(seen[2]["user"] == "alice" and seen[2]["pass"] == "secret",
            "given credentials went as %r" % seen[2])
    h.check(seen[3]["user"] == "bob" and seen[3]["pass"] == "",
            "user with an empty password went as %r" % seen[3])


def main():
    h.check(os.access(KEFETCH, os.X_OK), "ntsd_kefetch not built at %s" % KEFETCH)
    if not os.access(MICROSOCKS, os.X_OK):
        h.skip("microsocks is not installed")
    # the server's certificate also names NAME
    h._SERVER_CNF = h._SERVER_CNF.replace("DNS:localhost,", "DNS:localhost, DNS:%s," % NAME)
    pki = h.make_test_pki()
    h.NtsKeServer("server", pki, KE_PORT, NTP_PORT)
    hosts = h.write_file("proxy-hosts", "127.0.0.1 localhost\n127.0.0.1 %s\n" % NAME)
    resolv = h.write_file("client-resolv.conf",
                          "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    trap = DnsTrap()
    f = Fetcher(pki, resolv)
    part_no_auth(f, trap, hosts)
    part_userpass(f, hosts)
    part_ipv6(f, hosts)
    part_isolation(f)
    h.log("DNS trap total: %d datagrams (all from the getent check)" % len(trap.queries))


h.run(main)
