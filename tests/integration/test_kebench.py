#!/usr/bin/python3
"""The NTS-KE load generator, ntsd_kebench (bench/kebench.py,
docs/benchmarks.md "NTS-KE throughput"), against ntsd.

One private namespace, loopback; 10.214.0.0/16 made local on lo for the
generator's source addresses (-s):
  server ntsd  NTS-KE 127.0.0.1:KE_PORT (its KE process as in production)

Passes when:
  * 300 exchanges over 8 connections from the /16 (more than the server's
    per-client burst of 32, so this also needs -s to spread them) all
    succeed: 0 failures of any kind, a rate and latency percentiles in the
    JSON, and the server counts at least 300 KEs served;
  * ten KEs one at a time from the client's own socket take less than
    30 ms each (p50): the request is not held back by Nagle's algorithm
    until the server's delayed ACK (40 ms);
  * the generator counts bad outcomes and goes on: a wrong public key pin
    is 20 TLS failures, a closed port 20 connect failures, exit 1 each,
    and a usage error is exit 2; the server is still up afterwards.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_PORT = 14461, 11124
KEBENCH = os.path.join(os.path.dirname(h.NTSD_BIN), "ntsd_kebench")
SRC_NET = "10.214.0.0/16"
N = 300


def kebench(*args, timeout=30):
    r = h.run_cmd([KEBENCH, "-j", "-T", "20", "-t", "5"] + list(args), timeout=timeout)
    h.log("ntsd_kebench %s: rc %d: %s %s" % (" ".join(args), r.returncode, r.stdout.strip(),
                                             r.stderr.strip()))
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        h.fail("ntsd_kebench printed no JSON: %r %r" % (r.stdout, r.stderr))


def main():
    h.require_ours()
    h.check(os.access(KEBENCH, os.X_OK), "ntsd_kebench not built at %s" % KEBENCH)
    h.run_cmd(["ip", "link", "set", "lo", "up"])
    r = h.run_cmd(["ip", "route", "add", "local", SRC_NET, "dev", "lo"])
    h.check(r.returncode == 0, "ip route add local %s: %s" % (SRC_NET, r.stderr))
    pki = h.make_test_pki()
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT, debug=False)

    rc, out = kebench("-c", pki.ca_cert, "-C", "8", "-N", str(N), "-s", SRC_NET,
                      "127.0.0.1", str(KE_PORT))
    h.check(rc == 0, "exit %d with every exchange ok" % rc)
    h.check(out["started"] == N and out["ok"] == N, "%d of %d ok" % (out["ok"], N))
    h.check(all(v == 0 for v in out["failures"].values()), "failures %r" % out["failures"])
    h.check(out["kes_per_s"] > 0 and 0 < out["latency_ms"]["p50"] <= out["latency_ms"]["p99"]
            <= out["latency_ms"]["max"], "rate and percentiles %r" % out)
    # The KE process reports its counts to the main process now and then.
    h.wait_until(lambda: (server.nts_stats() or {}).get("ke_serves_good", 0) >= N, 10,
                 "the server to count %d KEs served" % N)

    # One connection at a time, from the client's own socket: the request
    # after the client's Finished goes out at once (TCP_NODELAY), not after
    # the server's delayed ACK (40 ms), so a KE takes far less than that.
    rc, out = kebench("-c", pki.ca_cert, "-C", "1", "-N", "10", "127.0.0.1", str(KE_PORT))
    h.check(rc == 0 and out["ok"] == 10, "10 KEs one at a time: rc %d, %r" % (rc, out))
    h.check(out["latency_ms"]["p50"] < 30, "a KE took %.1f ms (p50): the request waited for "
            "an ACK" % out["latency_ms"]["p50"])

    rc, out = kebench("-k", pki.ca_cert, "-C", "4", "-N", "20", "-s", SRC_NET,
                      "127.0.0.1", str(KE_PORT))
    h.check(rc == 1 and out["ok"] == 0 and out["failures"]["tls"] == 20,
            "a wrong pin: rc %d, %r" % (rc, out))
    rc, out = kebench("-c", pki.ca_cert, "-C", "4", "-N", "20", "127.0.0.1", str(KE_PORT + 1))
    h.check(rc == 1 and out["ok"] == 0 and out["failures"]["connect"] == 20,
            "a closed port: rc %d, %r" % (rc, out))
    r = h.run_cmd([KEBENCH, "-C", "0", "127.0.0.1"])
    h.check(r.returncode == 2, "-C 0: exit %d, not a usage error" % r.returncode)
    r = h.run_cmd([KEBENCH, "-s", "10.214.0.0/40", "127.0.0.1"])
    h.check(r.returncode == 2, "-s /40: exit %d, not a usage error" % r.returncode)
    h.check(server.proc.alive(), "the server exited")


h.run(main)
