"""Client / proxy / server network namespaces for the proxy tests.

A test (already in its own namespace, see harness.enter_netns) builds one
Topology per proxy:

    cli (10.88.K1.2) --veth-- prx (10.88.K1.1 | 10.88.K2.1) --veth-- test ns (10.88.K2.2)
                                                                    server 10.88.0.1 (on lo)

with K1 = 2k+1, K2 = 2k+2 for topology number k.  The test's own namespace
is the server side: servers bind to SERVER_ADDR (or 0.0.0.0) there with the
usual harness classes.  The client namespace has one connected /24 and no
other route: a direct connection to the server fails with ENETUNREACH, and
the proxy namespace does not forward.  The client link also carries IPv6
(fd88:K1::2 / fd88:K1::1) for proxies reached over IPv6.

Also here: launchers for microsocks and dante, a DNS trap (every process
run in the client namespace sees a resolv.conf naming a trap that records
every query), a tcpdump capture on the client's interface with a checker
that flags any packet not to or from the proxy, and small SOCKS5 clients in
Python for checking the proxies themselves.

Named namespaces live in /run/netns as ntsdpx<PID><c|p><k>; they are deleted
in close(), at exit, and by the next test if a run was killed.
"""

import atexit
import ctypes
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time

import harness as h

SERVER_ADDR = "10.88.0.1"
NS_PREFIX = "ntsdpx"
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_made = []   # Netns objects still to delete
_state = {"signals": False}


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=10)
    if check and r.returncode != 0:
        h.fail("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


def _delete_stale():
    """Deletes namespaces of ours whose test process is gone (a killed run)."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return
    for n in names:
        m = re.match(r"%s(\d+)[a-z]\d+$" % NS_PREFIX, n)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            _ip("netns", "del", n, check=False)


class Netns:
    """A named network namespace (ip netns)."""

    def __init__(self, name, create=True):
        self.name = name
        self.path = "/run/netns/%s" % name
        if create:
            if not _made and not _state["signals"]:
                on_fatal_signal(_cleanup_all)   # after harness.setup's handlers
                _state["signals"] = True
            _ip("netns", "add", name)
            _made.append(self)
            self.ip("link", "set", "lo", "up")

    def ip(self, *args, check=True):
        return _ip("-n", self.name, *args, check=check)

    def prefix(self):
        """Command prefix that runs a program in this namespace."""
        return ["nsenter", "--net=%s" % self.path, "--"]

    def enter(self):
        """Context manager: the calling thread is in this namespace inside
        the block (sockets made there stay in it afterwards)."""
        return _InNetns(self.path)

    def delete(self):
        if self in _made:
            _made.remove(self)
            _ip("netns", "del", self.name, check=False)


class _InNetns:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, "setns %s: %s" % (self.path, os.strerror(e)))
        finally:
            os.close(fd)

    def __exit__(self, *a):
        if _libc.setns(self.back, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            os.close(self.back)
            raise OSError(e, "setns back: %s" % os.strerror(e))
        os.close(self.back)


def _cleanup_all():
    for ns in list(_made):
        ns.delete()


atexit.register(_cleanup_all)


def on_fatal_signal(fn):
    """Runs fn() on SIGTERM, SIGINT or SIGHUP before the handler installed
    so far (the harness's, which ends the process with os._exit, so atexit
    clean-ups would not run)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        prev = signal.getsignal(sig)

        def handler(signum, frame, prev=prev):
            try:
                fn()
            finally:
                if callable(prev):
                    prev(signum, frame)
                else:
                    os._exit(1)
        signal.signal(sig, handler)



# --------------------------------------------------------------------------
# Topology
# --------------------------------------------------------------------------

class ClientSide:
    """What a test does in a client namespace (`cli`, interface `cli_if`,
    addresses client_addr / client_addr6, files in `dir`): run programs
    behind the DNS trap, capture, open sockets."""

    trap = None
    client_addr6 = None

    # --- processes ---------------------------------------------------------

    def client_prefix(self):
        """Prefix for programs in the client namespace: the DNS trap's
        resolv.conf, a hosts file with only localhost, and `hosts: files
        dns` (so glibc asks nobody but the trap), in a private mount
        namespace."""
        if self.trap is None:
            self.trap = DnsTrap(self.cli, self.dir)
        return self.cli.prefix() + self.trap.mount_prefix()

    def start_client(self, name, cmd, kind="peer"):
        return h.start_process(name, self.client_prefix() + list(cmd), kind=kind)

    def run_client(self, cmd, timeout=10):
        r, _ = h.run_setpriv(self.client_prefix() + list(cmd), timeout=timeout)
        return r

    def capture(self, name="capture"):
        return Capture(self, name)

    def client_socket(self, family=socket.AF_INET, kind=socket.SOCK_STREAM):
        with self.cli.enter():
            return socket.socket(family, kind)

    def check_no_dns(self):
        seen = self.trap.seen() if self.trap is not None else []
        h.check(not seen, "the DNS trap in %s saw %d queries: %r" % (
            self.cli.name, len(seen), seen[:5]))


class Topology(ClientSide):
    """Client and proxy namespaces, number k (0..9), joined to the test's
    namespace, which holds SERVER_ADDR."""

    def __init__(self, k=0):
        _delete_stale()
        self.k = k
        k1, k2 = 2 * k + 1, 2 * k + 2
        tag = "%s%d" % (NS_PREFIX, os.getpid())
        self.cli = Netns("%sc%d" % (tag, k))
        self.prx = Netns("%sp%d" % (tag, k))
        self.client_addr, self.proxy_addr = "10.88.%d.2" % k1, "10.88.%d.1" % k1
        self.client_addr6, self.proxy_addr6 = "fd88:%d::2" % k1, "fd88:%d::1" % k1
        self.proxy_ext, self.server_side = "10.88.%d.1" % k2, "10.88.%d.2" % k2
        self.server_addr = SERVER_ADDR
        self.cli_if = "pxc%d" % k        # the client's only interface (besides lo)
        # client <-> proxy
        _ip("link", "add", self.cli_if, "netns", self.cli.name, "type", "veth",
            "peer", "name", "pxp%d" % k, "netns", self.prx.name)
        self.cli.ip("addr", "add", self.client_addr + "/24", "dev", self.cli_if)
        self.cli.ip("addr", "add", self.client_addr6 + "/64", "dev", self.cli_if, "nodad")
        self.prx.ip("addr", "add", self.proxy_addr + "/24", "dev", "pxp%d" % k)
        self.prx.ip("addr", "add", self.proxy_addr6 + "/64", "dev", "pxp%d" % k, "nodad")
        # proxy <-> server (the test's namespace)
        _ip("link", "add", "pxs%d" % k, "type", "veth", "peer", "name", "pxq%d" % k,
            "netns", self.prx.name)
        _ip("addr", "add", self.server_side + "/24", "dev", "pxs%d" % k)
        self.prx.ip("addr", "add", self.proxy_ext + "/24", "dev", "pxq%d" % k)
        _ip("link", "set", "pxs%d" % k, "up")
        for ns, ifs in ((self.cli, [self.cli_if]), (self.prx, ["pxp%d" % k, "pxq%d" % k])):
            for i in ifs:
                ns.ip("link", "set", i, "up")
        if _ip("-o", "addr", "show", "dev", "lo", "to", SERVER_ADDR).stdout.strip() == "":
            _ip("addr", "add", SERVER_ADDR + "/32", "dev", "lo")
        self.prx.ip("route", "add", SERVER_ADDR + "/32", "via", self.server_side)
        self._check_client_routes()
        self.dir = os.path.join(h.tmpdir(), "net%d" % k)
        os.makedirs(self.dir, exist_ok=True)
        h.log("proxynet %d: client %s (%s) -> proxy %s / %s -> server %s" % (
            k, self.client_addr, self.cli.name, self.proxy_addr, self.proxy_ext, SERVER_ADDR))

    def _check_client_routes(self):
        routes = self.cli.ip("-4", "route", "show", "table", "all").stdout
        for ln in routes.splitlines():
            if ln.startswith("default") or "via" in ln.split():
                h.fail("client namespace has a route beyond its link: %s" % ln)
        s = None
        try:
            with self.cli.enter():
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect((SERVER_ADDR, 9))
                h.fail("the client namespace reaches %s directly" % SERVER_ADDR)
            except OSError as e:
                h.check(e.errno == 101, "a direct connection from the client namespace "
                        "failed with %r, expected ENETUNREACH" % (e,))
        finally:
            if s is not None:
                s.close()

    def close(self):
        if self.trap is not None:
            self.trap.stop()
        self.cli.delete()
        self.prx.delete()
        _ip("link", "del", "pxs%d" % self.k, check=False)

    def proxy_prefix(self, hosts=()):
        """Prefix for programs in the proxy namespace.  `hosts`: (name,
        address) pairs the proxy resolves (its own hosts file; no DNS)."""
        files = _name_files(os.path.join(self.dir, "proxy-etc"), "127.0.0.1",
                            list(hosts))
        return self.prx.prefix() + _mount_prefix(files)

    def start_microsocks(self, port=1080, user=None, password=None, hosts=(), v6=False):
        cmd = ["microsocks", "-i", self.proxy_addr6 if v6 else self.proxy_addr,
               "-p", str(port), "-b", self.proxy_ext]
        if user is not None:
            cmd += ["-u", user, "-P", password]
        p = h.start_process("microsocks%d-%d" % (self.k, port),
                            self.proxy_prefix(hosts) + cmd)
        self._wait_listen(self.proxy_addr6 if v6 else self.proxy_addr, port, p)
        return p

    def start_dante(self, port=1080, hosts=(), udp_ports=(40000, 40049), v6=False):
        """danted with `socksmethod: none`, CONNECT and UDP ASSOCIATE from
        the client link to anywhere; its UDP relay ports are udp_ports."""
        conf = os.path.join(self.dir, "danted-%d.conf" % port)
        log = os.path.join(self.dir, "danted-%d.log" % port)
        lo, hi = udp_ports
        internal = "internal: %s port = %d\n" % (self.proxy_addr, port)
        if v6:
            internal += "internal: %s port = %d\n" % (self.proxy_addr6, port)
        with open(conf, "w") as f:
            f.write(_DANTE_CONF % {"internal": internal, "external": self.proxy_ext,
                                   "log": log, "net": "10.88.%d.0/24" % (2 * self.k + 1),
                                   "net6": "fd88:%d::/64" % (2 * self.k + 1),
                                   "lo": lo, "hi": hi})
        self.dante_udp_ports = (lo, hi)
        p = h.start_process("danted%d-%d" % (self.k, port), self.proxy_prefix(hosts) + [
            "danted", "-f", conf, "-p", os.path.join(self.dir, "danted-%d.pid" % port),
            "-N", "1"])
        p.extra_logs.append(log)
        self._wait_listen(self.proxy_addr, port, p)
        return p

    def _wait_listen(self, addr, port, proc):
        def up():
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            with self.cli.enter():
                s = socket.socket(fam, socket.SOCK_STREAM)
            try:
                s.settimeout(1)
                s.connect((addr, port))
                return True
            finally:
                s.close()
        h.wait_until(up, 10, "%s to listen on %s:%d" % (proc.name, addr, port), interval=0.1)



_DANTE_CONF = """# written by the ntsd proxy tests
logoutput: %(log)s
%(internal)sexternal: %(external)s
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
timeout.negotiate: 10
timeout.io: 120
client pass {
    from: %(net)s to: 0.0.0.0/0
    log: error
}
client pass {
    from: %(net6)s to: ::/0
    log: error
}
socks pass {
    from: %(net)s to: 0.0.0.0/0
    command: connect udpassociate
    udp.portrange: %(lo)d-%(hi)d
    log: connect error
}
socks pass {
    from: %(net6)s to: 0.0.0.0/0
    command: connect udpassociate
    udp.portrange: %(lo)d-%(hi)d
    log: connect error
}
socks pass {
    from: 0.0.0.0/0 to: %(net)s
    command: udpreply
    log: error
}
socks pass {
    from: 0.0.0.0/0 to: %(net6)s
    command: udpreply
    log: error
}
"""


def _name_files(d, nameserver, hosts):
    os.makedirs(d, exist_ok=True)
    files = {}
    for fname, text in (
            ("resolv.conf", "nameserver %s\noptions timeout:1 attempts:1\n" % nameserver),
            ("hosts", "127.0.0.1 localhost\n::1 localhost\n" +
             "".join("%s %s\n" % (a, n) for n, a in hosts)),
            ("nsswitch.conf", "passwd: files\ngroup: files\nshadow: files\n"
             "hosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n")):
        files[fname] = os.path.join(d, fname)
        with open(files[fname], "w") as f:
            f.write(text)
        os.chmod(files[fname], 0o644)
    return files


def _mount_prefix(files):
    script = ('mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && '
              'mount --bind "$3" /etc/nsswitch.conf && shift 3 && exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh",
            files["resolv.conf"], files["hosts"], files["nsswitch.conf"]]


# --------------------------------------------------------------------------
# DNS trap
# --------------------------------------------------------------------------

class DnsTrap:
    """Listens on UDP and TCP port 53 on every address of the client
    namespace (the resolv.conf it hands out names 127.0.0.53) and records
    each query: (proto, source, question name).  It never answers, so a
    resolver waits its timeout (1 s, one attempt) and fails."""

    ADDR = "127.0.0.53"

    def __init__(self, ns, d):
        self.files = _name_files(os.path.join(d, "client-etc"), self.ADDR, [])
        self.queries = []
        self.lock = threading.Lock()
        self.socks = []
        with ns.enter():
            for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(fam, kind)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if fam == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind((any_addr, 53))
                    if kind == socket.SOCK_STREAM:
                        s.listen(16)
                    self.socks.append(s)
        self.stopping = False
        self.t = threading.Thread(target=self._run, name="dnstrap", daemon=True)
        self.t.start()

    def mount_prefix(self):
        return _mount_prefix(self.files)

    @staticmethod
    def _qname(msg):
        labels, i = [], 12
        while i < len(msg) and msg[i] != 0 and len(labels) < 64:
            n = msg[i]
            labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        return ".".join(labels) or "?"

    def _record(self, proto, src, msg):
        with self.lock:
            self.queries.append((proto, "%s:%d" % src[:2], self._qname(msg)))
        h.log("DNS trap: %s query from %s for %r" % (proto, src[0], self._qname(msg)))

    def _run(self):
        conns = []
        while not self.stopping:
            rd, _, _ = select.select(self.socks + conns, [], [], 0.1)
            for s in rd:
                try:
                    if s in conns:
                        data = s.recv(4096)
                        if len(data) > 2:
                            self._record("tcp", s.getpeername(), data[2:])
                        conns.remove(s)
                        s.close()
                    elif s.type == socket.SOCK_STREAM:
                        c, _ = s.accept()
                        conns.append(c)
                    else:
                        data, src = s.recvfrom(4096)
                        self._record("udp", src, data)
                except OSError:
                    continue
        for s in conns:
            s.close()

    def seen(self):
        with self.lock:
            return list(self.queries)

    def stop(self):
        self.stopping = True
        self.t.join(timeout=2)
        for s in self.socks:
            s.close()


# --------------------------------------------------------------------------
# Capture on the client's interface
# --------------------------------------------------------------------------

class Capture:
    """tcpdump on the client namespace's interface, from start() to stop();
    packets() parses the pcap file (Ethernet, IPv4/IPv6, TCP/UDP/ICMP)."""

    def __init__(self, topo, name):
        self.topo = topo
        self.path = os.path.join(topo.dir, "%s.pcap" % name)
        self.name = name
        self.proc = h.start_process(name, topo.cli.prefix() + [
            "tcpdump", "-i", topo.cli_if, "-w", self.path, "-U", "--immediate-mode", "-n", "-Z", "root",
            "-s", "256"])
        h.wait_until(lambda: "listening on" in self.proc.read_log(), 10,
                     "tcpdump to start on %s" % topo.cli_if, interval=0.05)

    def stop(self):
        if self.proc.rc is None:
            time.sleep(0.2)  # let the last packets reach the file
            self.proc.stop(quiet=True)

    def packets(self):
        return parse_pcap(self.path)

    def foreign(self, allowed):
        """Packets not to or from the proxy: everything but ARP, IPv6
        neighbour discovery / MLD, and IP packets whose other end is an
        (address, protocol, port) in `allowed` (port: an int, a range, or
        None for any; protocol "tcp", "udp" or "icmp")."""
        mine = {self.topo.client_addr, self.topo.client_addr6}
        bad = []
        for p in self.packets():
            if p["kind"] in ("arp", "nd"):
                continue
            if p["kind"] != "ip":
                bad.append(p)
                continue
            if p["src"] in mine:
                peer, port = p["dst"], p["dport"]
            elif p["dst"] in mine:
                peer, port = p["src"], p["sport"]
            else:
                bad.append(p)
                continue
            ok = False
            for a, proto, ports in allowed:
                if a == peer and proto == p["proto"] and (
                        ports is None or port == ports or
                        (isinstance(ports, range) and port in ports)):
                    ok = True
                    break
            if not ok:
                bad.append(p)
        return bad

    def check_only_proxy(self, allowed):
        """Stops the capture; fails the test on any packet foreign() flags."""
        self.stop()
        pk = self.packets()
        bad = self.foreign(allowed)
        h.check(pk, "the capture on %s saw no packet at all" % self.topo.cli_if)
        h.check(not bad, "%d of %d packets on the client's interface were not to or from "
                "the proxy, e.g. %s" % (len(bad), len(pk), [fmt_packet(p) for p in bad[:5]]))
        h.log("capture %s: %d packets, all to or from the proxy" % (self.name, len(pk)))
        return pk


def fmt_packet(p):
    if p["kind"] != "ip":
        return p["kind"]
    return "%s %s:%s > %s:%s" % (p["proto"], p["src"], p["sport"], p["dst"], p["dport"])


def parse_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        h.fail("pcap file %s is too short (%d bytes)" % (path, len(data)))
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        h.fail("%s is not a pcap file" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    h.check(linktype == 1, "pcap link type %d, expected Ethernet" % linktype)
    out, i = [], 24
    while i + 16 <= len(data):
        ts, tsu, incl, orig = struct.unpack(e + "IIII", data[i:i + 16])
        frame = data[i + 16:i + 16 + incl]
        i += 16 + incl
        p = _parse_frame(frame)
        p["t"] = ts + tsu / (1e9 if magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
                             else 1e6)
        p["len"] = orig
        out.append(p)
    return out


def _parse_frame(fr):
    if len(fr) < 14:
        return {"kind": "short"}
    et = struct.unpack("!H", fr[12:14])[0]
    b = fr[14:]
    if et == 0x0806:
        return {"kind": "arp"}
    if et == 0x0800 and len(b) >= 20:
        ihl = (b[0] & 15) * 4
        proto = b[9]
        src, dst = socket.inet_ntop(socket.AF_INET, b[12:16]), socket.inet_ntop(
            socket.AF_INET, b[16:20])
        l4 = b[ihl:]
    elif et == 0x86DD and len(b) >= 40:
        proto = b[6]
        src, dst = socket.inet_ntop(socket.AF_INET6, b[8:24]), socket.inet_ntop(
            socket.AF_INET6, b[24:40])
        l4 = b[40:]
        if proto == 0:  # hop-by-hop options (MLD reports carry one)
            if len(l4) >= 2:
                proto, l4 = l4[0], l4[(l4[1] + 1) * 8:]
        if proto == 58 and l4 and l4[0] in (130, 131, 132, 133, 134, 135, 136, 143):
            return {"kind": "nd"}
    else:
        return {"kind": "ethertype 0x%04x" % et}
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
    p = {"kind": "ip", "proto": names.get(proto, str(proto)), "src": src, "dst": dst,
         "sport": None, "dport": None}
    if proto in (6, 17) and len(l4) >= 4:
        p["sport"], p["dport"] = struct.unpack("!HH", l4[:4])
    return p


# --------------------------------------------------------------------------
# SOCKS5 from Python (to check the proxies themselves)
# --------------------------------------------------------------------------

def _recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise OSError("SOCKS5: proxy closed the connection")
        b += c
    return b


def socks_addr(host):
    try:
        return b"\x01" + socket.inet_pton(socket.AF_INET, host)
    except OSError:
        pass
    try:
        return b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        pass
    n = host.encode()
    return b"\x03" + bytes([len(n)]) + n


def _read_reply_addr(s):
    hdr = _recv_exact(s, 4)
    if hdr[0] != 5:
        raise OSError("SOCKS5: reply version %d" % hdr[0])
    if hdr[1] != 0:
        raise OSError("SOCKS5: reply code %d" % hdr[1])
    if hdr[3] == 1:
        addr = socket.inet_ntop(socket.AF_INET, _recv_exact(s, 4))
    elif hdr[3] == 4:
        addr = socket.inet_ntop(socket.AF_INET6, _recv_exact(s, 16))
    else:
        addr = _recv_exact(s, _recv_exact(s, 1)[0]).decode()
    return addr, struct.unpack("!H", _recv_exact(s, 2))[0]


def socks_handshake(s, cmd, host, port, user=None, password=None):
    """Method negotiation (RFC 1929 when user is given), then `cmd` (1
    CONNECT, 3 UDP ASSOCIATE).  Returns the reply's (BND.ADDR, BND.PORT)."""
    s.sendall(b"\x05\x01" + (b"\x02" if user is not None else b"\x00"))
    ver, meth = _recv_exact(s, 2)
    if ver != 5 or meth == 0xFF:
        raise OSError("SOCKS5: no acceptable method (%d, %d)" % (ver, meth))
    if meth == 2:
        u, p = user.encode(), password.encode()
        s.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        if _recv_exact(s, 2)[1] != 0:
            raise OSError("SOCKS5: authentication failed")
    s.sendall(b"\x05" + bytes([cmd]) + b"\x00" + socks_addr(host) + struct.pack("!H", port))
    return _read_reply_addr(s)


def socks_connect(topo, proxy_port, host, port, user=None, password=None, timeout=5):
    """A TCP stream from the client namespace through the proxy."""
    s = topo.client_socket()
    s.settimeout(timeout)
    s.connect((topo.proxy_addr, proxy_port))
    socks_handshake(s, 1, host, port, user, password)
    return s


def socks_udp_roundtrip(topo, proxy_port, host, port, payload, timeout=5):
    """One datagram through UDP ASSOCIATE (RFC 1928 section 7) and its
    answer.  Returns (answer, relay (addr, port))."""
    ctl = topo.client_socket()
    u = topo.client_socket(kind=socket.SOCK_DGRAM)
    try:
        ctl.settimeout(timeout)
        u.settimeout(timeout)
        u.bind((topo.client_addr, 0))
        ctl.connect((topo.proxy_addr, proxy_port))
        relay = socks_handshake(ctl, 3, topo.client_addr, u.getsockname()[1])
        if relay[0] in ("0.0.0.0", "::"):
            relay = (topo.proxy_addr, relay[1])
        u.sendto(b"\0\0\0" + socks_addr(host) + struct.pack("!H", port) + payload, relay)
        data, src = u.recvfrom(4096)
        h.check(src[:2] == tuple(relay), "UDP answer from %s, not the relay %s" % (
            src, relay))
        h.check(data[:3] == b"\0\0\0", "UDP answer without the SOCKS header: %r" % data[:10])
        n = {1: 4, 4: 16}.get(data[3])
        h.check(n is not None, "UDP answer with ATYP %d" % data[3])
        return data[4 + n + 2:], relay
    finally:
        u.close()
        ctl.close()


class UdpEcho:
    """A UDP echo server in the test's (server) namespace, in a thread."""

    def __init__(self, addr=SERVER_ADDR, port=7):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((addr, port))
        self.port = self.s.getsockname()[1]
        self.peers = []
        self.stopping = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stopping:
            rd, _, _ = select.select([self.s], [], [], 0.1)
            if rd:
                data, src = self.s.recvfrom(4096)
                self.peers.append(src)
                self.s.sendto(data, src)

    def stop(self):
        self.stopping = True
        self.t.join(timeout=2)
        self.s.close()
