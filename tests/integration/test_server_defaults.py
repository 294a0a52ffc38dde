#!/usr/bin/python3
"""Server defaults, system variables served, name resolution, a chain.

  * No `listen` line: ntsd serves on the wildcard address, port 123 (the
    private namespace's): a raw request to 127.0.0.1:123 gets a mode-4
    reply and `ntsctl server --json` lists "0.0.0.0:123".
  * `interface ignore all`: no sockets at all (empty list, port 123 free)
    and no reply from 127.0.0.1:123.
  * No `local stratum` and no upstream: replies say unsynchronised
    (leap 3, stratum 16).
  * `local stratum 3`: stratum 3, leap 0, refid "LOCL".
  * `server localhost:PORT` (resolved from /etc/hosts by the daemon's async
    resolver; no DNS server is reachable in the namespace) against a second
    ntsd with `local stratum 1`: reach > 0.
  * A chain A (local stratum 1) <- B (client of A, serving another port)
    <- a raw request to B: once B is synced, B answers stratum 2, leap 0,
    refid 127.0.0.1 (0x7f000001).
"""
import os
import socket
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

PORT_LH = 11301      # localhost sub-check: the server
PORT_A = 11302       # chain: A
PORT_B = 11303       # chain: B
QUERY_TIMEOUT = 1.5  # s without a reply = no reply


def section(name):
    h.log("=== %s ===" % name)


def query(port, what):
    r = h.sntp_query("127.0.0.1", port, timeout=QUERY_TIMEOUT)
    h.log("%s: %s" % (what, None if r is None else {k: r[k] for k in (
        "leap", "version", "mode", "stratum", "refid", "root_delay", "root_disp", "offset")}))
    return r


def query_connected(addr, port, timeout=QUERY_TIMEOUT):
    """A request from a socket connected to (addr, port): the kernel drops
    a reply from any other source address, so a reply proves the wildcard
    socket answered from the address the request was sent to."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect((addr, port))
        pkt, xmt = h.client_packet()
        s.send(pkt)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = s.recv(4096)
            except (socket.timeout, ConnectionRefusedError):
                return None
            r = h.parse_packet(data)
            if r is not None and r["org"] == xmt:
                return r
        return None
    finally:
        s.close()


def check_reply_basics(r, what):
    h.check(r is not None, "%s: no reply" % what)
    h.check(r["mode"] == 4 and r["version"] == 4 and r["len"] == 48,
            "%s: mode %d version %d length %d" % (what, r["mode"], r["version"], r["len"]))
    now = time.time()
    for k in ("rec", "xmt"):
        t = h.ts_to_float(r[k])
        h.check(abs(t - now) < 2.0, "%s: %s timestamp %.3f s off" % (what, k, t - now))


def port_123_free():
    """True if nothing holds UDP 0.0.0.0:123 (ntsd binds with SO_REUSEADDR;
    a bind without it fails while ntsd holds the port)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("0.0.0.0", 123))
        return True
    except OSError:
        return False
    finally:
        s.close()


def finish(d):
    d.proc.stop()
    d.proc.check_no_crash()


def localhost_first():
    """The address of the first /etc/hosts line naming localhost, or None."""
    try:
        with open("/etc/hosts") as f:
            for ln in f:
                w = ln.split("#", 1)[0].split()
                if len(w) >= 2 and "localhost" in w[1:]:
                    return w[0]
    except OSError:
        pass
    return None


def main():
    h.require_ours()
    h.check(port_123_free(), "UDP port 123 is taken in the fresh namespace")

    section("no listen line: wildcard port 123, local stratum 3")
    d = h.Ntsd("wild", ["local stratum 3"])
    s = d.server()
    h.log("sockets: %r" % s.get("sockets"))
    h.check("0.0.0.0:123" in s.get("sockets", []),
            "no `listen`: sockets %r lack 0.0.0.0:123" % s.get("sockets"))
    h.check(all(x.endswith(":123") for x in s["sockets"]),
            "no `listen`: a socket not on port 123: %r" % s["sockets"])
    h.check(not port_123_free(), "ntsd lists 0.0.0.0:123 but the port is free")
    r = query(123, "request to 127.0.0.1:123")
    check_reply_basics(r, "wildcard server")
    # A second daemon must not silently share (and steal) the port.
    conf2 = os.path.join(h.tmpdir(), "second.conf")
    with open(conf2, "w") as f:
        f.write("disable ntp\nlocal stratum 5\n")
    r2, _ = h.run_setpriv([h.NTSD_BIN, "-n", "-x", "-c", conf2, "-s",
                           os.path.join(h.tmpdir(), "second.sock")], timeout=10)
    h.log("second daemon on port 123: rc=%d %s" % (r2.returncode, r2.stderr.strip()[-200:]))
    h.check(r2.returncode == 1 and "cannot listen on 0.0.0.0:123" in r2.stderr,
            "a second ntsd on port 123 did not fail: rc=%d" % r2.returncode)
    h.check(r["stratum"] == 3, "local stratum 3: reply stratum %d" % r["stratum"])
    h.check(r["leap"] == 0, "local stratum 3: reply leap %d, expected 0" % r["leap"])
    h.check(r["refid"] == b"LOCL", "local stratum 3: refid %r, expected LOCL" % r["refid"])
    # Replies leave from the address the request went to (wildcard socket).
    for addr in ["127.0.0.2"] + (["::1"] if "[::]:123" in s["sockets"] else []):
        rr = query_connected(addr, 123)
        h.log("request to %s:123 on a connected socket: %s" % (
            addr, None if rr is None else "stratum %d" % rr["stratum"]))
        check_reply_basics(rr, "wildcard server via %s (reply from the wrong source address?)"
                           % addr)
        h.check(rr["stratum"] == 3, "via %s: stratum %d" % (addr, rr["stratum"]))
    n_extra = 2 if "[::]:123" in s["sockets"] else 1
    s2 = d.server()
    h.check(s2["responded"] == s["responded"] + 1 + n_extra,
            "responded %d -> %d after %d requests" % (s["responded"], s2["responded"],
                                                      1 + n_extra))
    sysv = d.ctl_json("sys")
    # The refid is LOCL; ntsctl renders refids of stratum > 1 as dotted quads.
    h.check(sysv["stratum"] == 3 and sysv["leap"] == 0 and not sysv["synced"]
            and sysv["refid"] in (".LOCL.", "LOCL", "76.79.67.76"),
            "sys with local stratum 3: %r" % sysv)
    finish(d)
    h.check(port_123_free(), "port 123 still taken after ntsd stopped")

    section("interface ignore all: no sockets")
    d = h.Ntsd("ignore", ["local stratum 3", "interface ignore all"])
    s = d.server()
    h.log("sockets: %r" % s.get("sockets"))
    h.check(s.get("sockets") == [], "`interface ignore all`: sockets %r, expected []" %
            s.get("sockets"))
    h.check(port_123_free(), "`interface ignore all`: UDP port 123 is bound")
    r = query(123, "request to 127.0.0.1:123")
    h.check(r is None, "`interface ignore all`: 127.0.0.1:123 answered: %r" % (r,))
    h.check(d.server()["received"] == 0, "`interface ignore all`: the server counted requests")
    finish(d)

    section("no local stratum, no upstream: unsynchronised")
    d = h.Ntsd("unsync", [])
    h.check("0.0.0.0:123" in d.server().get("sockets", []), "sockets lack 0.0.0.0:123")
    r = query(123, "request to 127.0.0.1:123")
    check_reply_basics(r, "unsynchronised server")
    h.check(r["leap"] == 3, "no time source: reply leap %d, expected 3" % r["leap"])
    h.check(r["stratum"] == 16, "no time source: reply stratum %d, expected 16" % r["stratum"])
    h.check(r["refid"] != b"LOCL", "no time source: refid LOCL")
    sysv = d.ctl_json("sys")
    h.check(not sysv["synced"] and sysv["leap"] == 3 and sysv["stratum"] == 16,
            "sys with no time source: %r" % sysv)
    finish(d)

    section("server localhost:PORT via /etc/hosts")
    first = localhost_first()
    h.log("/etc/hosts: first localhost entry %r" % first)
    if first != "127.0.0.1":
        h.log("NOTE: /etc/hosts does not map localhost to 127.0.0.1 first (%r); skipping the "
              "localhost sub-check" % first)
    else:
        srv = h.Ntsd("lh-server", ["listen 127.0.0.1:%d" % PORT_LH, "local stratum 1"])
        cli = h.Ntsd("lh-client", ["server localhost:%d iburst minpoll 0 maxpoll 0" % PORT_LH,
                                   "interface ignore all"])

        def reached():
            p = h.find_peer(cli.peers(), "127.0.0.1:%d" % PORT_LH)
            return p if p and p["reach"] > 0 else None
        p = h.wait_until(reached, 15, "lh-client to reach localhost:%d" % PORT_LH)
        h.log("peer: %r" % {k: p.get(k) for k in ("remote", "address", "reach", "stratum",
                                                   "offset")})
        h.check(p["remote"] == "localhost", "peer remote %r, expected the configured name" %
                p["remote"])
        h.check(p["address"] == "127.0.0.1:%d" % PORT_LH, "peer address %r" % p["address"])
        h.check(p["stratum"] == 1, "peer stratum %d, expected 1" % p["stratum"])
        finish(cli)
        finish(srv)

    section("chain A (local stratum 1) <- B <- raw request")
    a = h.Ntsd("chain-a", ["listen 127.0.0.1:%d" % PORT_A, "local stratum 1"])
    b = h.Ntsd("chain-b", ["server 127.0.0.1:%d iburst minpoll 0 maxpoll 0" % PORT_A,
                           "listen 127.0.0.1:%d" % PORT_B])

    def b_synced():
        v = b.ctl_json("sys")
        return v if v["synced"] else None
    sysv = h.wait_until(b_synced, 15, "B to synchronise to A")
    h.log("B sys: %r" % sysv)
    h.check(sysv["stratum"] == 2 and sysv["system_peer"] == "127.0.0.1:%d" % PORT_A,
            "B sys: %r" % sysv)
    r = query(PORT_B, "request to B")
    check_reply_basics(r, "B")
    h.check(r["stratum"] == 2, "B answers stratum %d, expected 2" % r["stratum"])
    h.check(r["leap"] == 0, "B answers leap %d, expected 0" % r["leap"])
    h.check(r["refid"] == bytes([127, 0, 0, 1]),
            "B answers refid %s, expected 7f000001 (A's address)" % r["refid"].hex())
    h.check(0 < r["root_delay"] < 0.1, "B root delay %.6f s" % r["root_delay"])
    h.check(abs(r["offset"]) < 0.01, "B's time %.6f s off" % r["offset"])
    ra = query(PORT_A, "request to A")
    check_reply_basics(ra, "A")
    h.check(ra["stratum"] == 1 and ra["refid"] == b"LOCL", "A: %r" % (ra,))
    a.proc.check_alive()
    b.proc.check_alive()


h.run(main)
