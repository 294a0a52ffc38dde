#!/usr/bin/python3
"""Certificate and key renewal under NTS-KE load (docs/reload.md).

One private namespace, loopback:
  server ntsd  -u ntsd-test: NTS-KE 127.0.0.1:KE_PORT, `nts cert` and
               `nts key` in a directory the user can read (key 0640, group
               ntsd-test), as a certbot or lego deployment has them
  clients      LOAD_THREADS Python threads doing whole NTS-KEs (TLS 1.3,
               verified against the CA, request, response with cookies)
               back to back, each from another 127/8 address (the server
               rate-limits per address)

Passes when:
  * RENEWALS times, a new key and certificate (a new serial, the same CA)
    renamed over the files, as certbot and lego replace them, are served
    within a few seconds: the clients see the new serial, and the old
    NTS-KE process ends once it has finished its connections (one child
    left);
  * a key that does not match the certificate, and then a certificate file
    of garbage, are refused with one log line each, and the previous pair
    goes on serving (the serial stays);
  * after each renewal, the new NTS-KE process's memory (its heap and
    anonymous mappings, read through /proc/PID/mem) holds no byte run of
    the previous key file, while the main process's holds the current
    one's (it keeps the files' bytes for the KE processes it forks: the
    control that the search finds a key);
  * after the bad files are replaced by a good pair, that pair is served;
  * SIGHUP right after a renewal loads it at once (under 1.5 s; the timer
    alone needs two looks 2 s apart);
  * a renewed key the user cannot read is refused (`Permission denied`); a
    chmod alone is not taken as a change; SIGHUP after it loads the pair;
  * `ntsd_certificate_not_after_timestamp_seconds` is the notAfter of the
    certificate served last (each renewal has another);
  * across all of it, not one KE failed (no TLS error, no refused or reset
    connection, every response with cookies), and `ntsctl nts` counts no
    bad serve.
"""
import os
import signal
import socket
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT, METRICS_PORT = 14470, 11133, 19470
LOAD_THREADS = 4
RENEWALS = 3
SEEN_WITHIN = 15.0  # seconds from a renewal to the clients seeing it


def renewed_pair(pki, d, n):
    """A new key and a certificate for it from the test CA: (chain, key)."""
    key = os.path.join(d, "key%d.pem" % n)
    csr = os.path.join(d, "req%d.csr" % n)
    cert = os.path.join(d, "cert%d.pem" % n)
    chain = os.path.join(d, "chain%d.pem" % n)
    cnf = os.path.join(pki.dir, "server.cnf")
    h._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
               "-out", key)
    h._openssl("req", "-new", "-config", cnf, "-key", key, "-sha256", "-out", csr)
    h._openssl("x509", "-req", "-in", csr, "-CA", pki.ca_cert, "-CAkey", pki.ca_key,
               "-set_serial", "0x%x" % (0x1000 + n), "-days", str(3 + n), "-sha256",
               "-extfile", cnf, "-extensions", "v3_server", "-out", cert)
    with open(chain, "w") as out:
        for p in (cert, pki.ca_cert):
            with open(p) as f:
                out.write(f.read())
    return chain, key


def key_line(path):
    """The first base64 line of a PEM key: 64 random-looking bytes that sit
    in memory wherever the file's bytes do."""
    with open(path, "rb") as f:
        lines = [ln for ln in f.read().split(b"\n") if ln and not ln.startswith(b"-----")]
    return lines[0]


def holds(pid, needle):
    """Whether the heap or an anonymous mapping of pid holds needle."""
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for ln in maps:
            f = ln.split()
            if "r" not in f[1] or (len(f) > 5 and f[5] != "[heap]"):
                continue
            lo, hi = (int(x, 16) for x in f[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
            if needle in data:
                return True
    return False


def check_key_memory(server, old_key, new_key):
    kids = h.child_pids(server.proc.pid)
    h.check(len(kids) == 1, "expected one NTS-KE process, found %r" % kids)
    h.check(holds(server.proc.pid, key_line(new_key)),
            "the main process's memory does not hold the current key: the search is broken")
    h.check(not holds(kids[0], key_line(old_key)),
            "the new NTS-KE process %d holds the previous key's bytes" % kids[0])


def install(src, dst, gid, mode):
    """Puts a copy of src at dst by rename, as certbot and lego do."""
    tmp = dst + ".new"
    with open(src, "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    os.chown(tmp, 0, gid)
    os.chmod(tmp, mode)
    os.rename(tmp, dst)


class Load:
    """Threads doing NTS-KEs until stopped; counts and remembers failures and
    the serial each KE was served with."""

    def __init__(self, ca):
        self.ctx = h.ke_ssl_context(ca)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.good = 0
        self.failures = []
        self.last_serial = None
        self.serials = {}
        self.not_after = {}
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(LOAD_THREADS)]
        for t in self.threads:
            t.start()

    def one(self, src):
        """One KE from address src: the served certificate's serial, or
        raises."""
        with socket.create_connection(("127.0.0.1", KE_PORT), timeout=5,
                                      source_address=(src, 0)) as raw:
            with self.ctx.wrap_socket(raw, server_hostname="localhost") as s:
                cert = s.getpeercert()
                serial = cert["serialNumber"]
                self.not_after[serial] = ssl.cert_time_to_seconds(cert["notAfter"])
                s.sendall(h.ke_request())
                data = b""
                while True:
                    try:
                        b = s.recv(65536)
                    except ssl.SSLZeroReturnError:
                        break
                    if not b:
                        break
                    data += b
        recs = h.ke_parse(data)
        if not any(t == h.KE_NEW_COOKIE for _, t, _ in recs):
            raise RuntimeError("response without cookies: %r" % (recs,))
        return serial

    def run(self, i):
        # Each KE from another loopback address: the server allows one client
        # address one KE a second (after a burst), and this is many clients.
        deadline = time.monotonic() + 240
        n = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            src = "127.%d.%d.%d" % (10 + i, n // 250 % 250, n % 250 + 1)
            n += 1
            try:
                serial = self.one(src)
            except Exception as e:  # any failure of a whole KE counts
                with self.lock:
                    self.failures.append("%s: %s" % (type(e).__name__, e))
                time.sleep(0.05)
                continue
            with self.lock:
                self.good += 1
                self.last_serial = serial
                self.serials[serial] = self.serials.get(serial, 0) + 1

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(15)


class LivePki:
    """The files the server is configured with (what NtsKeServer reads)."""

    def __init__(self, chain, key):
        self.chain, self.key = chain, key


def wait_serial(load, serial, what):
    h.wait_until(lambda: load.last_serial == serial, SEEN_WITHIN, what, interval=0.1)


def count_lines(server, text):
    return sum(text in ln for ln in server.proc.read_log().splitlines())


def main():
    _, gid = h.ensure_user(USER)
    tmp = h.tmpdir()
    os.chmod(tmp, 0o711)
    pki = h.make_test_pki()
    gen = os.path.join(tmp, "renewals")
    os.makedirs(gen, mode=0o700)
    pairs = [renewed_pair(pki, gen, n) for n in range(RENEWALS + 3)]
    live = os.path.join(tmp, "live")
    os.makedirs(live)
    os.chown(live, 0, gid)
    os.chmod(live, 0o750)
    cert, key = os.path.join(live, "fullchain.pem"), os.path.join(live, "privkey.pem")
    install(pki.chain, cert, gid, 0o644)
    install(pki.key, key, gid, 0o640)

    server = h.NtsKeServer("server", LivePki(cert, key), KE_PORT, NTP_PORT, args=("-u", USER),
                           debug=False, extra=["metrics 127.0.0.1:%d" % METRICS_PORT])
    h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 5, "the NTS-KE process")
    load = Load(pki.ca_cert)
    t0 = time.monotonic()
    h.wait_until(lambda: load.good >= 20, 10, "the first KEs")
    first = load.last_serial
    h.log("serving serial %s; %d KEs so far" % (first, load.good))

    for n in range(RENEWALS):
        chain, k = pairs[n]
        serial = "%X" % (0x1000 + n)
        before = load.good
        install(k, key, gid, 0o640)  # the key first, as a renewal may
        install(chain, cert, gid, 0o644)
        t = time.monotonic()
        wait_serial(load, serial, "clients to be served serial %s" % serial)
        h.log("renewal %d: serial %s served after %.1f s; %d KEs meanwhile" % (
            n + 1, serial, time.monotonic() - t, load.good - before))
        h.wait_until(lambda: len(h.child_pids(server.proc.pid)) == 1, 12,
                     "the replaced NTS-KE process to end")
        check_key_memory(server, pairs[n - 1][1] if n else pki.key, k)

    # A key that is not the certificate's: refused, the previous pair serves.
    good_serial = load.last_serial
    install(pairs[RENEWALS][1], key, gid, 0o640)
    h.wait_until(lambda: count_lines(server, "cannot be used") == 1, 10,
                 "the mismatched key to be refused")
    time.sleep(5)  # several more looks at the same files
    h.check(count_lines(server, "cannot be used") == 1,
            "the refusal of the same files was logged more than once")
    h.check(load.last_serial == good_serial,
            "serial %s served after a mismatched key" % load.last_serial)
    # A certificate of garbage (with the mismatched key still there).
    with open(cert + ".new", "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    os.chmod(cert + ".new", 0o644)
    os.rename(cert + ".new", cert)
    h.wait_until(lambda: count_lines(server, "cannot be used") == 2, 10,
                 "the garbage certificate to be refused")
    lines = [ln for ln in server.proc.read_log().splitlines() if "cannot be used" in ln]
    h.log("refusals logged:\n  " + "\n  ".join(lines))
    h.check(all("still serving the previous pair" in ln for ln in lines),
            "the refusal does not say the previous pair serves: %r" % lines)
    time.sleep(3)
    h.check(load.last_serial == good_serial,
            "serial %s served after a garbage certificate" % load.last_serial)
    # A good pair again.
    chain, k = pairs[RENEWALS]
    install(chain, cert, gid, 0o644)
    serial = "%X" % (0x1000 + RENEWALS)
    wait_serial(load, serial, "clients to be served serial %s after the bad files" % serial)
    # SIGHUP: a changed pair is loaded at once (the timer alone takes two
    # looks, at least 2 s apart).
    chain, k = pairs[RENEWALS + 1]
    reloads = count_lines(server, "reloaded")
    install(k, key, gid, 0o640)
    install(chain, cert, gid, 0o644)
    t = time.monotonic()
    os.kill(server.proc.pid, signal.SIGHUP)
    serial = "%X" % (0x1000 + RENEWALS + 1)
    h.wait_until(lambda: count_lines(server, "reloaded") == reloads + 1, 1.5,
                 "SIGHUP to reload the pair at once")
    wait_serial(load, serial, "clients to be served serial %s after SIGHUP" % serial)
    h.log("SIGHUP: serial %s served after %.2f s" % (serial, time.monotonic() - t))

    # A renewed key the user cannot read: refused; a chmod alone is no
    # change, SIGHUP after it loads the pair.
    chain, k = pairs[RENEWALS + 2]
    good_serial = serial
    install(k, key, 0, 0o600)
    install(chain, cert, gid, 0o644)
    h.wait_until(lambda: count_lines(server, "cannot be used") == 3, 10,
                 "the unreadable key to be refused")
    last = [ln for ln in server.proc.read_log().splitlines() if "cannot be used" in ln][-1]
    h.check("Permission denied" in last, "the refusal does not say why: %s" % last)
    os.chown(key, 0, gid)
    os.chmod(key, 0o640)
    time.sleep(5)
    h.check(count_lines(server, "cannot be used") == 3 and load.last_serial == good_serial,
            "a chmod alone was taken as a new pair")
    os.kill(server.proc.pid, signal.SIGHUP)
    serial = "%X" % (0x1000 + RENEWALS + 2)
    wait_serial(load, serial, "clients to be served serial %s after chmod and SIGHUP" % serial)
    time.sleep(1)
    load.finish()
    elapsed = time.monotonic() - t0
    h.log("%d KEs in %.1f s (%.0f/s) across %d renewals and 3 refused replacements; "
          "%d failed; serials served: %s" % (load.good, elapsed, load.good / elapsed,
                                             RENEWALS + 3, len(load.failures), load.serials))
    h.check(not load.failures, "%d KEs failed, the first: %s" % (
        len(load.failures), load.failures[:5]))
    h.check(first not in (None, good_serial), "the first serial was never replaced")
    h.check(count_lines(server, "replaces process") == RENEWALS + 3,
            "expected %d replacements logged" % (RENEWALS + 3))
    st = server.nts_stats()
    h.log("ntsctl nts: ke_serves_good %s, ke_serves_bad %s, ke_refused %s" % (
        st["ke_serves_good"], st["ke_serves_bad"], st["ke_refused"]))
    h.check(st["ke_serves_bad"] == 0 and st["ke_refused"] == 0,
            "ntsctl nts counts failed or refused KEs")
    # The counters of the replaced processes are kept: at least all the KEs
    # that were served before the last replacement.
    h.check(st["ke_serves_good"] >= load.good - load.serials[serial],
            "ntsctl nts lost the counts of replaced NTS-KE processes")
    # The certificate metric follows the reloaded certificate.
    na = metric("ntsd_certificate_not_after_timestamp_seconds")
    h.check(na == load.not_after[serial], "the metric says notAfter %s, the served "
            "certificate %s" % (na, load.not_after[serial]))
    h.log("ntsd_certificate_not_after_timestamp_seconds %s: the served certificate's" % na)
    server.proc.check_no_crash()


def metric(name):
    v = h.metric_sample(METRICS_PORT, name)
    h.check(v is not None, "no %s in the scrape" % name)
    return v


h.run(main)
