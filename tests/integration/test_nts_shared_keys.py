#!/usr/bin/python3
"""Cookie keys shared by several servers through `nts cookie-secret`: one
NTS-KE server in front of three NTP servers, across two key rotations.

All on loopback in a private namespace, every daemon with `nts rotate 60`:
  ke       ntsd, NTS-KE 127.0.0.1:18460 and NTP 127.0.0.1:18123, naming
           127.0.0.11, .12 and .13 in turn in its Server Negotiation record
           (three `nts ntpserver` lines); its clock 20 s ahead
  ntp1..3  ntsd NTP servers on 127.0.0.11..13:18123, no NTS-KE, no key
           file: only the shared secret; ntp2's clock 20 s behind
  other    ntsd NTP server on 127.0.0.14:18123 with another secret
  clients  an ntsd client and (when installed) chronyd 4.3, both pointed at
           the KE server only: they learn their NTP server from the Server
           record
(The clocks that are off are ntsd's virtual clocks, --virtual-clock; the
system clock is never touched.)
Passes when:
  * the KE server named the three NTP servers in turn, and the two clients
    were sent to two different ones and exchange authenticated NTP with
    them (no client used the KE server's own NTP address);
  * at the start, and 6 s before, 10 s after and 30 s after each of the
    next two epoch boundaries (two rotations), a cookie and C2S key from
    `ntsctl ke --export` get an authenticated NTS response from each of the
    four servers sharing the secret, and so does every cookie fetched
    earlier in the test: around a boundary the KE server's cookies are
    sealed with the key of an epoch the other servers' clocks have not
    reached yet, and ntp2 is an epoch behind the others;
  * each cookie's key id is that of the KE server's clock's epoch (three
    keys in all, ids advancing by one), and every server logged each
    rotation;
  * at the end, no server sharing the secret sent a NAK or counted a bad
    request, and neither client received a NAK; `other` answered every one
    of those cookies with a NAK (kiss code NTSN);
  * a secret of 31 bytes, a world-readable one, a group-readable one, and
    `nts cookie` together with `nts cookie-secret` each make ntsd exit 1
    at start-up with one clear message.
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from nts_relay import cmac, nts_request  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_PORT = 18460, 18123
PERIOD = 60
SHARED = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
OTHER = "127.0.0.14"
ROTATIONS = 2
LAG = 8  # s: a rotation is checked every PERIOD / 10 s
# Clocks off (ntsd --virtual-clock; the system clock is never touched): the
# KE server's runs 20 s ahead and ntp2's 20 s behind, so around each epoch
# boundary the KE server seals with a key the others' clocks have not
# reached yet (they open it with the next epoch's key) and ntp2 still
# seals with one the others have left (they open it with the previous).
SKEW = {"127.0.0.1": 20, "127.0.0.12": -20}


def write_secret(name, n=32, mode=0o600):
    path = os.path.join(h.tmpdir(), name)
    with open(path, "wb") as f:
        f.write(os.urandom(n))
    os.chmod(path, mode)
    return path


def ntp_server(name, addr, secret):
    skew = SKEW.get(addr, 0)
    return h.Ntsd(name, ["listen %s:%d" % (addr, NTP_PORT), "local stratum 1",
                         "nts cookie-secret %s" % secret, "nts rotate %d" % PERIOD],
                  args=("--virtual-clock", str(skew)) if skew else ())


def fetch(pki):
    """One NTS-KE with our KE server: (C2S key, cookie, Server record)."""
    r = h.run_cmd([h.NTSCTL_BIN, "ke", "127.0.0.1:%d" % KE_PORT, "--ca", pki.ca_cert,
                   "--export", "--aead", "15"], timeout=20)
    h.check(r.returncode == 0, "ntsctl ke --export failed: %r" % r.stderr)
    c2s = re.search(r"^C2S key: +([0-9A-F]{64})$", r.stdout, re.M)
    ck = re.search(r"^cookie: +([0-9A-F]+)$", r.stdout, re.M)
    srv = re.search(r"^NTP server: +(\S+)", r.stdout, re.M)
    h.check(c2s and ck, "ntsctl ke --export lacks the key or cookie:\n%s" % r.stdout)
    return bytes.fromhex(c2s.group(1)), bytes.fromhex(ck.group(1)), srv and srv.group(1)


SENT = {}  # address: NTS requests the test sent there


def ask(addr, key, cookie):
    """'nts' (an authenticated response), 'nak', or what else came back."""
    for _ in range(3):  # loopback UDP; a retry only covers a scheduling hiccup
        SENT[addr] = SENT.get(addr, 0) + 1
        pkt, xmt = nts_request(key, cookie)
        r = h.udp_exchange(pkt, xmt, (addr, NTP_PORT), 1.0)
        if r is None:
            continue
        if r[1] == 0 and r[12:16] == b"NTSN":
            return "nak"
        if r[0] & 7 == 4 and r[1] != 0 and len(r) > 48 + 36:
            return "nts"
        return "other reply %r" % r[:16]
    return "no reply"


def startup_refused(name, lines, words):
    d = os.path.join(h.tmpdir(), "refused-" + name)
    os.makedirs(d, mode=0o700)
    conf = os.path.join(d, "ntp.conf")
    with open(conf, "w") as f:
        f.write("\n".join(["disable ntp", "listen 127.0.0.20:%d" % NTP_PORT] + lines) + "\n")
    r, _ = h.run_setpriv([h.NTSD_BIN, "-c", conf, "-n", "-x", "-s", os.path.join(d, "s")],
                         timeout=15)
    h.log("%s: rc %d, stderr %r" % (name, r.returncode, r.stderr))
    errs = [ln for ln in r.stderr.splitlines() if ln.startswith("ntsd: ")]
    h.check(r.returncode == 1 and len(errs) == 1 and all(w in errs[0] for w in words),
            "%s: want exit 1 and one line with %r, got rc %d: %r" % (
                name, words, r.returncode, r.stderr))


def part_refused():
    short = write_secret("short", n=31)
    startup_refused("short", ["nts cookie-secret %s" % short], ["shorter than 32 bytes", short])
    world = write_secret("world", mode=0o604)
    startup_refused("world", ["nts cookie-secret %s" % world],
                    ["refused", "mode 604", "everyone", "chmod 600"])
    group = write_secret("group", mode=0o640)
    startup_refused("group", ["nts cookie-secret %s" % group], ["mode 640", "its group"])
    good = write_secret("good")
    startup_refused("both", ["nts cookie-secret %s" % good,
                             "nts cookie %s" % os.path.join(h.tmpdir(), "keys")],
                    ["exclude each other"])
    link = os.path.join(h.tmpdir(), "link")
    os.symlink(good, link)
    startup_refused("symlink", ["nts cookie-secret %s" % link], ["refused", link])


def epoch():
    return int(time.time()) // PERIOD


def ntsd_client_server(client):
    """The NTP server the ntsd client was sent to, once it got answers."""
    def ok():
        p = client.peers()
        return p and p[0]["accepted"] >= 2 and p[0]["address"].split(":")[0] in SHARED
    h.wait_until(ok, 30, "the ntsd client to be sent to one of %s and get answers" % SHARED)
    return client.peers()[0]["address"].split(":")[0]


def chrony_authdata(chrony):
    """{address: NAK count} from chronyc authdata (CSV: name, mode, key id,
    type, key length, last, attempts, NAKs, cookies, cookie length)."""
    return {f[0]: int(f[7]) for f in chrony.chronyc("authdata")}


def main():
    h.require_ours()
    if cmac is None:
        h.skip("python3 cryptography (AES-CMAC) is not installed: cannot build NTS requests")
    part_refused()
    pki = h.make_test_pki()
    secret = write_secret("secret")
    servers = {a: ntp_server("ntp%d" % (i + 1), a, secret) for i, a in enumerate(SHARED)}
    ke = h.NtsKeServer("ke", pki, KE_PORT, NTP_PORT, args=(
        "--virtual-clock", str(SKEW["127.0.0.1"])), extra=[
        "nts cookie-secret %s" % secret, "nts rotate %d" % PERIOD,
    ] + ["nts ntpserver %s" % a for a in SHARED])
    servers["127.0.0.1"] = ke
    other = ntp_server("other", OTHER, write_secret("other-secret"))
    client = h.Ntsd("client", ["nts ca %s" % pki.ca_cert,
                               "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT],
                    ready="peers")
    chrony = None
    if os.path.exists(h.CHRONYD_BIN):
        chrony = h.Chronyd("chrony", extra=[
            "ntstrustedcerts %s" % pki.ca_cert,
            "server 127.0.0.1 nts ntsport %d iburst minpoll 0 maxpoll 0" % KE_PORT])
    else:
        h.log("chronyd not installed: the chrony client part is skipped")
    ntsd_to = ntsd_client_server(client)
    h.log("the ntsd client was sent to %s" % ntsd_to)

    named_all = []
    held = []   # (when, key, cookie)
    t = time.time()
    if (t + SKEW["127.0.0.1"]) % PERIOD < LAG:  # let the KE server finish a rotation
        time.sleep(LAG - (t + SKEW["127.0.0.1"]) % PERIOD)
    # The first boundary the KE server has yet to cross (system clock).
    base = ((time.time() + SKEW["127.0.0.1"]) // PERIOD + 1) * PERIOD
    plan = [time.time()] + [base + i * PERIOD + d for i in range(ROTATIONS)
                            for d in (-6, 10, 30)]
    first_id = None
    for when in plan:
        time.sleep(max(0.0, when - time.time()))
        t = time.time()
        key, cookie, named = fetch(pki)
        h.check(named in SHARED, "KE Server record %r, want one of %s" % (named, SHARED))
        named_all.append(named)
        cid = int.from_bytes(cookie[:4], "big")
        ke_epoch = int(t + SKEW["127.0.0.1"]) // PERIOD
        if first_id is None:
            first_id, first_epoch = cid, ke_epoch
        # The KE server seals with the key of its own clock's epoch: one
        # ahead of the system clock's in the 20 s before each boundary.
        h.check((cid - first_id) % 2**32 == ke_epoch - first_epoch,
                "at %.1f s past a boundary the KE server sealed with key %08x, want the "
                "key of its epoch %d (key %08x was epoch %d)" % (
                    t % PERIOD, cid, ke_epoch, first_id, first_epoch))
        held.append((t, key, cookie))
        for (t0, k, c) in held:
            for addr in servers:
                got = ask(addr, k, c)
                h.check(got == "nts", "%s (clock %+d s, %.1f s past a boundary) answered a "
                        "cookie of key %08x with %s" % (
                            addr, SKEW.get(addr, 0), (t + SKEW.get(addr, 0)) % PERIOD,
                            int.from_bytes(c[:4], "big"), got))
            got = ask(OTHER, k, c)
            h.check(got == "nak", "the server with another secret answered %s, want a NAK" % got)
        h.log("%.1f s past a boundary: key %08x (the KE server's epoch %d, the system "
              "clock's %d); %d cookies accepted by all %d servers" % (
                  t % PERIOD, cid, ke_epoch, int(t) // PERIOD, len(held), len(servers)))
        h.check_all_alive()
    ids = {int.from_bytes(c[:4], "big") for (_, _, c) in held}
    h.check(len(ids) == ROTATIONS + 1, "want %d keys, saw %s" % (
        ROTATIONS + 1, sorted("%08x" % i for i in ids)))
    for addr, s in servers.items():
        n = len(re.findall(r"NTS cookie key rotated: key [0-9a-f]{8} \(epoch",
                           s.proc.read_log()))
        h.check(n >= ROTATIONS, "%s (%s) logged %d rotations, want %d" % (
            s.name, addr, n, ROTATIONS))

    # Consecutive handshakes (the clients made theirs at the start).
    h.check(all(named_all[i + 1] == SHARED[(SHARED.index(named_all[i]) + 1) % len(SHARED)]
                for i in range(len(named_all) - 1)),
            "the KE server did not name its NTP servers in turn: %r" % named_all)
    h.check(ntsd_client_server(client) == ntsd_to, "the ntsd client moved")
    for addr, s in servers.items():
        st = h.NtsKeServer.nts_stats(s)
        h.log("%s: %r" % (s.name, st))
        h.check(st["server_naks"] == 0 and st["server_recvs_bad"] == 0,
                "%s (%s) sent NAKs or counted bad requests: %r" % (s.name, addr, st))
        if addr == "127.0.0.1":  # only the test's requests: no client was sent here
            h.check(len(held) <= st["server_recvs_good"] <= SENT[addr],
                    "%s answered %d requests, the test sent %d" % (
                        s.name, st["server_recvs_good"], SENT[addr]))
    cs = client.ctl_json("nts")
    h.check(cs["client_naks"] == 0 and cs["client_recvs_good"] >= 2,
            "the ntsd client: %r" % cs)
    a1 = h.NtsKeServer.nts_stats(servers[ntsd_to])
    h.check(a1["server_recvs_good"] >= cs["client_recvs_good"] + len(held),
            "%s did not serve the ntsd client: %r" % (ntsd_to, a1))
    ost = h.NtsKeServer.nts_stats(other)
    h.check(ost["server_naks"] >= len(held), "the other server's NAKs: %r" % ost)
    if chrony is not None:
        auth = chrony_authdata(chrony)
        h.log("chronyc authdata: %r" % auth)
        h.check(len(auth) == 1 and list(auth)[0] in SHARED and ntsd_to not in auth,
                "chronyd was not sent to another of %s than the ntsd client (%s): %r" % (
                    SHARED, ntsd_to, auth))
        h.check(list(auth.values()) == [0], "chronyd received NAKs: %r" % auth)
        src = chrony.sources()
        h.check(src and src[0]["reach"] != 0, "chronyd got no answers: %r" % src)
    ke.proc.check_no_crash()


h.run(main)
