"""A private Tor network for the Tor tests: a wrapper around tor-testnet.

The tool (../shared/tools/tor-testnet from the source tree, or
$NTSD_TOR_TESTNET) starts directory authorities, relays, exits, a client
with a SocksPort and an onion-service host in three namespaces of its own
(PREFIX-cli, PREFIX-tor, PREFIX-srv); see its tor-testnet.md.  It works
from inside the test's private namespace: `ip netns` names are global and
the tool joins its namespaces only to each other.  A test makes one
network per run (12-38 s, about 125 MB), with a prefix unique to the test
process, and always takes it down (finally, atexit, signals).

Without the tool (a clone without ../shared) require() skips the test.
"""

import atexit
import os
import re
import socket
import threading
import time

import harness as h
import proxynet as pn

TOOL = os.environ.get("NTSD_TOR_TESTNET", os.path.normpath(
    os.path.join(h.SOURCE_DIR, "..", "shared", "tools", "tor-testnet")))


def require():
    if not (os.path.isfile(TOOL) and os.access(TOOL, os.X_OK)):
        h.skip("tor-testnet not found at %s: skipped" % TOOL)
    for tool in ("tor", "tor-gencert"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin")):
            h.skip("%s is not installed (scripts/install-deps): skipped" % tool)


class TorNet(pn.ClientSide):
    """One private Tor network.  After up(): `env` (the tool's key=value
    lines), `cli`/`srv`/`tor` (Netns), `proxy_addr`/`socks_port` (the
    SocksPort), `server_addr`, `server_name`, onion(NAME)."""

    def __init__(self, onions=(), hosts=(), timeout=150):
        self.dir = os.path.join(h.tmpdir(), "tornet")
        os.makedirs(self.dir)
        self.prefix = "nt%d" % os.getpid()  # the tool takes at most 9 characters
        self.onions = list(onions)
        self.hosts = list(hosts)
        self.timeout = timeout
        self.env = None
        self.is_up = False
        self.events = None

    def up(self):
        cmd = [TOOL, "up", self.dir, "--prefix", self.prefix, "--timeout", str(self.timeout)]
        for name, target in self.onions:
            cmd += ["--onion", "%s=%s" % (name, target)]
        for name, addr in self.hosts:
            cmd += ["--host", "%s=%s" % (name, addr)]
        h.log("tor-testnet: %s" % " ".join(cmd))
        atexit.register(self.down)
        pn.on_fatal_signal(self.down)
        self.is_up = True  # from here on, down() has something to do
        t0 = time.monotonic()
        # Under the harness's setpriv: no tor process can ever touch the clock.
        r, _ = h.run_setpriv(cmd, timeout=self.timeout + 60)
        if r.returncode != 0:
            h.fail("tor-testnet up failed (rc=%d):\n%s\n%s" % (r.returncode, r.stdout[-3000:],
                                                              r.stderr[-3000:]))
        self.env = dict(ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln)
        self.up_s = time.monotonic() - t0
        self.cli = pn.Netns(self.env["ns_client"], create=False)
        self.srv = pn.Netns(self.env["ns_server"], create=False)
        self.tor = pn.Netns(self.env["ns_tor"], create=False)
        self.cli_if = "v-tor"
        self.client_addr = self.env["client_addr"]
        self.proxy_addr, port = self.env["socks"].rsplit(":", 1)
        self.socks_port = int(port)
        self.server_addr = self.env["server_addr"]
        self.server_name = self.env["server_name"]
        h.log("tor-testnet up in %.1f s (bootstrap %s s, exit %s s, onion %s s, %s processes, "
              "%s kB)" % (self.up_s, self.env.get("bootstrap_s"), self.env.get("exit_s"),
                         self.env.get("onion_s"), self.env.get("tor_processes"),
                         self.env.get("rss_kb")))
        return self

    def onion(self, name):
        return self.env["onion_%s" % name]

    def start_server(self, name, cmd, kind="peer"):
        return h.start_process(name, self.srv.prefix() + list(cmd), kind=kind)

    def down(self):
        if not self.is_up:
            return
        self.is_up = False
        if self.events is not None:
            self.events.stop()
        # The tool warns about, but does not kill, processes of ours still in
        # its namespaces: stop them first.
        for p in list(h._state["procs"]):
            if p.rc is None and any(a.startswith("--net=/run/netns/%s-" % self.prefix)
                                    for a in p.cmd):
                p.stop(quiet=True)
        r = h.run_cmd(h.SETPRIV + [TOOL, "down", self.dir], timeout=60)
        if r.returncode != 0:
            h.log("tor-testnet down: rc=%d %s" % (r.returncode, r.stderr.strip()[-500:]))

    # --- the client's control port ----------------------------------------

    def control(self, *commands, port_key="control", timeout=5):
        """Sends commands to a control port (in the tor namespace, no auth);
        returns the reply text of each."""
        host, port = self.env[port_key].rsplit(":", 1)
        with self.tor.enter():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, int(port)))
            f = s.makefile("rwb")
            out = []
            for c in ("AUTHENTICATE",) + commands:
                f.write(c.encode() + b"\r\n")
                f.flush()
                out.append(_read_reply(f))
            h.check(out[0].startswith("250"), "control port AUTHENTICATE: %r" % out[0])
            return out[1:]
        finally:
            s.close()

    def watch_streams(self):
        """Starts recording every STREAM event of the client (target,
        circuit, SOCKS username) from now on; see StreamWatch."""
        self.events = StreamWatch(self)
        return self.events

    def circuit_users(self):
        """{circuit id: SOCKS username} of the client's current circuits."""
        text = self.control("GETINFO circuit-status")[0]
        out = {}
        for ln in text.splitlines():
            if ln.startswith("250 "):
                continue
            m = re.match(r"(?:250[-+ ]circuit-status=)?(\d+) \S+.*", ln)
            if not m:
                continue
            u = re.search(r'SOCKS_USERNAME="([^"]*)"', ln)
            out[m.group(1)] = u.group(1) if u else None
        return out


def _read_reply(f):
    lines = []
    while True:
        ln = f.readline()
        if not ln:
            raise OSError("control connection closed")
        ln = ln.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(ln)
        if len(ln) >= 4 and ln[3] == "+":  # a data block until a lone "."
            while True:
                d = f.readline().decode("utf-8", "replace").rstrip("\r\n")
                if d == ".":
                    break
                lines.append(d)
        elif len(ln) >= 4 and ln[3] == " ":
            return "\n".join(lines)


class StreamWatch:
    """A control connection subscribed to STREAM events, in a thread:
    streams() is [(stream id, status, circuit id, target, SOCKS username)]."""

    def __init__(self, net):
        host, port = net.env["control"].rsplit(":", 1)
        with net.tor.enter():
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.settimeout(5)
        self.s.connect((host, int(port)))
        self.f = self.s.makefile("rwb")
        for c in (b"AUTHENTICATE", b"SETEVENTS STREAM"):
            self.f.write(c + b"\r\n")
            self.f.flush()
            r = _read_reply(self.f)
            h.check(r.startswith("250"), "%s: %r" % (c.decode(), r))
        self.s.settimeout(0.2)
        self.lock = threading.Lock()
        self.seen = []
        self.stopping = False
        self.t = threading.Thread(target=self._run, name="torevents", daemon=True)
        self.t.start()

    def _run(self):
        buf = b""
        while not self.stopping:
            try:
                c = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not c:
                return
            buf += c
            while b"\r\n" in buf:
                ln, buf = buf.split(b"\r\n", 1)
                m = re.match(r"650 STREAM (\d+) (\S+) (\d+) (\S+)(.*)",
                             ln.decode("utf-8", "replace"))
                if m:
                    u = re.search(r'SOCKS_USERNAME="([^"]*)"', m.group(5))
                    with self.lock:
                        self.seen.append((m.group(1), m.group(2), m.group(3), m.group(4),
                                          u.group(1) if u else None))

    def streams(self):
        with self.lock:
            return list(self.seen)

    def _asked(self):
        """{stream id: the target the client asked for} (a stream to a name
        is REMAPped to the address the exit resolved it to)."""
        first = {}
        for sid, _, _, t, _ in self.streams():
            first.setdefault(sid, t)
        return first

    def circuits_to(self, target):
        """Circuit ids that carried a stream the client asked to open to
        `target` (HOST:PORT, as the client sent it)."""
        asked = self._asked()
        return {c for sid, st, c, _, _ in self.streams()
                if asked[sid] == target and c != "0" and st in ("SENTCONNECT", "SUCCEEDED")}

    def users_to(self, target):
        """SOCKS usernames of the streams the client asked to open to `target`."""
        asked = self._asked()
        return {u for sid, _, _, _, u in self.streams() if asked[sid] == target}

    def stop(self):
        self.stopping = True
        self.t.join(timeout=2)
        try:
            self.s.close()
        except OSError:
            pass
