#!/usr/bin/python3
"""Where TLS runs (docs/security.md, "Privilege separation"): an NTS server
with no NTS sources never starts OpenSSL in its main process, the process
that keeps CAP_SYS_TIME; the NTS-KE process parses the certificate and key
from the bytes the main process read, and a short-lived child checks them.

One private namespace, loopback:
  * `srv`, an NTS server with no sources, as user ntsd-test: after an
    NTS-KE, its main process has less than 2 MB of libcrypto resident
    (mapped, as a linked library, but never started: started, OpenSSL
    touches some 4 MB of it, as in the NTS-KE process, checked too), no
    libsystemd mapped, and VmRSS under 8 MB;
  * `cli`, a client of srv's NTS: it starts OpenSSL itself (its own NTS-KE
    client), so its libcrypto is resident like the NTS-KE process's;
  * a certificate file that is not one, and a key that does not match the
    certificate: ntsd refuses to start, exit status 1, with the file named
    and OpenSSL's reason, from the check process.
"""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

USER = "ntsd-test"
KE_PORT, NTP_PORT = 14470, 11170
MAIN_CRYPTO_MAX_KB = 2048   # loaded, never started
STARTED_CRYPTO_MIN_KB = 2600
MAIN_RSS_MAX_KB = 8 * 1024


def resident(pid):
    """{library basename: resident kB} from /proc/PID/smaps, and VmRSS."""
    libs = {}
    name = None
    with open("/proc/%d/smaps" % pid) as f:
        for ln in f:
            head = ln.split()
            if head and "-" in head[0] and not head[0].endswith(":"):
                name = os.path.basename(head[5]) if len(head) > 5 else None
            elif head and head[0] == "Rss:" and name:
                key = re.sub(r"\.so.*", "", name)
                libs[key] = libs.get(key, 0) + int(head[1])
    return libs, int(h.proc_status(pid)["VmRSS"].split()[0])


def check_server(srv, pki):
    h.kefetch_keys(pki.ca_cert, KE_PORT)
    kids = h.child_pids(srv.proc.pid)
    h.check(len(kids) == 1, "expected one NTS-KE process, found %r" % kids)
    main, rss = resident(srv.proc.pid)
    ke, ke_rss = resident(kids[0])
    h.log("main: VmRSS %d kB, libcrypto %d kB, libssl %d kB; NTS-KE process: VmRSS %d kB, "
          "libcrypto %d kB" % (rss, main.get("libcrypto", 0), main.get("libssl", 0), ke_rss,
                               ke.get("libcrypto", 0)))
    h.check(ke.get("libcrypto", 0) >= STARTED_CRYPTO_MIN_KB,
            "the NTS-KE process has only %d kB of libcrypto resident: the measure no longer "
            "tells a started OpenSSL" % ke.get("libcrypto", 0))
    h.check(0 < main.get("libcrypto", 0) < MAIN_CRYPTO_MAX_KB,
            "the main process has %d kB of libcrypto resident: it started OpenSSL"
            % main.get("libcrypto", 0))
    h.check("libsystemd" not in main, "libsystemd is mapped in the main process")
    h.check(rss < MAIN_RSS_MAX_KB, "main process VmRSS %d kB (want < %d)" % (rss, MAIN_RSS_MAX_KB))


def check_client(pki):
    cli = h.Ntsd("cli", ["server 127.0.0.1:%d nts ca %s iburst minpoll 0 maxpoll 0"
                         % (KE_PORT, pki.ca_cert)], ready="sys")
    h.wait_until(lambda: "NTS-KE with 127.0.0.1" in cli.proc.read_log(), 15,
                 "the client's NTS-KE")
    libs, _ = resident(cli.proc.pid)
    h.log("client main process: libcrypto %d kB" % libs.get("libcrypto", 0))
    h.check(libs.get("libcrypto", 0) >= STARTED_CRYPTO_MIN_KB,
            "an NTS client's main process shows only %d kB of libcrypto: the measure does "
            "not tell" % libs.get("libcrypto", 0))
    cli.proc.stop()


def refused_start(name, cert, key, want):
    d = os.path.join(h.tmpdir(), name)
    os.makedirs(d)
    conf = os.path.join(d, "ntp.conf")
    with open(conf, "w") as f:
        f.write("disable ntp\nlisten 127.0.0.1:%d\nnts enable\nnts cert %s\nnts key %s\n"
                "nts-listen-on 127.0.0.1:%d\n" % (NTP_PORT + 1, cert, key, KE_PORT + 1))
    r = h.run_cmd(h.SETPRIV + [h.NTSD_BIN, "-c", conf, "-n", "-x", "-s",
                                   os.path.join(d, "s.sock")], timeout=20)
    h.log("%s: rc %d: %s" % (name, r.returncode, r.stderr.strip()[-300:]))
    h.check(r.returncode == 1, "%s: ntsd exited with %d, not 1" % (name, r.returncode))
    h.check(re.search(want, r.stderr), "%s: no line matching %r" % (name, want))


def main():
    h.require_ours()
    h.ensure_user(USER)
    pki = h.make_test_pki()
    srv = h.NtsKeServer("srv", pki, KE_PORT, NTP_PORT, args=("-u", USER))
    check_server(srv, pki)
    check_client(pki)
    srv.proc.stop()
    junk = os.path.join(h.tmpdir(), "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    refused_start("junk-cert", junk, pki.key, r"nts cert %s: .*no start line" % re.escape(junk))
    other = h.make_test_pki("other")
    refused_start("wrong-key", pki.chain, other.key,
                  r"nts key %s: .*(key values mismatch|mismatch)" % re.escape(other.key))


h.run(main)
