#!/usr/bin/python3
"""The Prometheus endpoint (`metrics ADDR:PORT`, docs/metrics.md) and the
NTS-KE certificate expiry warning.

One private namespace, loopback:
  server ntsd  NTS-KE and NTP server, certificate valid 10 days, metrics
  client ntsd  NTS client of the server, polling every second, metrics
  calm ntsd    NTS-KE server with a certificate valid 60 days (no warning)
  stale ntsd   NTS-KE server whose certificate expired 2 days ago
  prometheus   a real Prometheus server scraping both every second

Passes when:
  * both scrapes pass `promtool check metrics`; every family has HELP and
    TYPE; the numbers agree with `ntsctl ... --json` (the client's source:
    cookies held, successful KEs, last KE time; the server: KEs served, the
    handshake histogram counting each, NTS responses; the certificate's
    seconds to expiry; the cookie key's age);
  * OpenMetrics is served when the Accept header asks for it (# EOF);
  * Prometheus, queried through its HTTP API, returns the client's
    ntsd_system_offset_seconds and the server's handshake count, and both
    targets are up without a scrape error (Prometheus asks for OpenMetrics
    first, so its own parser reads that format);
  * HEAD sends the headers alone; a wrong path is 404, POST is refused (405, or 413 with a body),
    oversized headers are refused, and 300 idle connections to the metrics
    port neither stop NTP service nor the NTS client, nor the endpoint once
    they close;
  * the server logs the expiry warning once at the start (not per KE); the
    60-day server does not; the stale one says its certificate has expired
    and its metric is negative.
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

h.setup(__file__)

KE_PORT, NTP_PORT = 14460, 11123
CALM_KE_PORT, CALM_NTP_PORT = 14461, 11124
STALE_KE_PORT, STALE_NTP_PORT = 14462, 11125
SERVER_M, CLIENT_M, CALM_M, STALE_M, PROM_PORT = 19101, 19102, 19103, 19104, 19190
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
WARNING = re.compile(r"NTS-KE certificate \S+ expires in ([0-9.]+) days")
EXPIRED = re.compile(r"NTS-KE certificate \S+ has expired \(notAfter ([0-9.]+) days ago\)")


def get(port, path="/metrics", method="GET", headers=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode()
    finally:
        c.close()


def scrape(port):
    t0 = time.monotonic()
    status, hdrs, text = get(port)
    took = time.monotonic() - t0
    h.check(status == 200, "scrape of :%d: HTTP %d" % (port, status))
    h.check(hdrs.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8",
            "scrape of :%d: Content-Type %r" % (port, hdrs.get("Content-Type")))
    return text, took


def parse(text):
    """{(name, frozenset(labels)): value} and the set of names with TYPE."""
    samples, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        h.check(m is not None, "unparsable sample line %r" % line)
        labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, typed


def value(samples, name, **labels):
    want = set(labels.items())
    found = [v for (n, l), v in samples.items() if n == name and want <= set(l)]
    h.check(len(found) == 1, "%s%r: %d samples" % (name, labels, len(found)))
    return found[0]


def promtool(text, what):
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=20)
    h.check(r.returncode == 0, "promtool check metrics on the %s scrape (rc %d): %s%s" % (
        what, r.returncode, r.stdout, r.stderr))
    h.log("promtool check metrics: %s scrape OK" % what)


def check_client(client, text):
    s, typed = parse(text)
    peer = client.peers()[0]
    src = peer["remote"]
    h.check(value(s, "ntsd_source_cookies", source=src) == peer["cookies"] or
            abs(value(s, "ntsd_source_cookies", source=src) - peer["cookies"]) <= 1,
            "cookies: metric vs ntsctl")
    h.check(value(s, "ntsd_source_ke_total", source=src, outcome="success") == peer["ke_good"]
            >= 1, "ntsd_source_ke_total{outcome=success} vs ntsctl ke_good %r" % peer["ke_good"])
    last = value(s, "ntsd_source_last_ke_timestamp_seconds", source=src)
    h.check(0 <= time.time() - last < 120, "last KE %.0f s ago" % (time.time() - last))
    h.check(value(s, "ntsd_source_reach", source=src) > 0, "reach 0")
    h.check(abs(value(s, "ntsd_source_offset_seconds", source=src)) < 0.05, "source offset")
    for r in ("bad_auth", "replay", "ke_cert"):
        h.check(value(s, "ntsd_source_auth_failures_total", source=src, reason=r) == 0,
                "auth failures %s" % r)
    sys_ = client.ctl_json("sys")
    h.check(abs(value(s, "ntsd_system_offset_seconds") - sys_["offset"]) < 1e-3,
            "system offset: metric vs ntsctl sys %r" % sys_["offset"])
    for n in ("ntsd_system_synchronised", "ntsd_system_stratum", "ntsd_system_leap",
              "ntsd_system_frequency_ratio", "ntsd_source_naks_total",
              "ntsd_source_packets_total"):
        h.check(n in typed, "%s has no TYPE line" % n)


def check_server(server, text):
    s, typed = parse(text)
    nts = server.nts_stats()
    good = value(s, "ntsd_ke_serves_total", outcome="success")
    h.check(good == nts["ke_serves_good"] >= 1, "KE serves: metric %r vs ntsctl %r" % (
        good, nts["ke_serves_good"]))
    h.check(value(s, "ntsd_ke_handshake_seconds_count") == good, "histogram count")
    h.check(value(s, "ntsd_ke_processes") == 1 and value(s, "ntsd_ke_processes_serving") == 1,
            "ntsd_ke_processes / _serving are not 1 / 1")
    h.check(value(s, "ntsd_ke_handshake_seconds_bucket", le="+Inf") == good, "+Inf bucket")
    h.check(0 < value(s, "ntsd_ke_handshake_seconds_sum") < good * 2.5, "histogram sum")
    h.check(value(s, "ntsd_server_responses_total", mode="nts", kind="time") >= 1,
            "no NTS response counted")
    left = value(s, "ntsd_certificate_expiry_seconds")
    h.check(9 * 86400 < left <= 10 * 86400, "certificate expiry %r s" % left)
    h.check(0 <= value(s, "ntsd_cookie_key_age_seconds") < 600, "cookie key age")
    h.check("ntsd_cookie_key_rotations_total" in typed, "no rotations counter")


def check_openmetrics(port):
    status, hdrs, text = get(port, headers={
        "Accept": "application/openmetrics-text; version=1.0.0,text/plain;q=0.5"})
    h.check(status == 200 and hdrs.get("Content-Type", "").startswith(
        "application/openmetrics-text; version=1.0.0"), "OpenMetrics: %d %r" % (
        status, hdrs.get("Content-Type")))
    h.check(text.endswith("# EOF\n"), "OpenMetrics exposition without # EOF")
    h.check("# TYPE ntsd_ke_serves counter\n" in text, "OpenMetrics counter family name")


def run_prometheus():
    d = os.path.join(h.tmpdir(), "prometheus")
    os.makedirs(d)
    conf = os.path.join(d, "prometheus.yml")
    with open(conf, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: ntsd\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']\n" % (SERVER_M, CLIENT_M))
    h.start_process("prometheus", [PROMETHEUS, "--config.file=" + conf,
                                   "--storage.tsdb.path=" + os.path.join(d, "data"),
                                   "--web.listen-address=127.0.0.1:%d" % PROM_PORT])
    h.wait_until(lambda: get(PROM_PORT, "/-/ready")[0] == 200, 30, "Prometheus to be ready")


def prom_query(q):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (PROM_PORT, urllib.parse.urlencode({"query": q}))
    with urllib.request.urlopen(url, timeout=5) as r:
        v = json.loads(r.read())
    if v.get("status") != "success" or not v["data"]["result"]:
        return None
    return float(v["data"]["result"][0]["value"][1])


def check_prometheus(client):
    q = 'ntsd_system_offset_seconds{instance="127.0.0.1:%d"}' % CLIENT_M
    got = None
    deadline = time.monotonic() + 30
    while got is None:
        h.check(time.monotonic() < deadline, "Prometheus never returned %s" % q)
        got = prom_query(q)
        time.sleep(0.5)
    off = client.ctl_json("sys")["offset"]
    h.check(abs(got - off) < 1e-3, "Prometheus says offset %r, ntsctl %r" % (got, off))
    h.log("Prometheus: %s = %r (ntsctl sys: %r)" % (q, got, off))
    q2 = 'ntsd_ke_handshake_seconds_count{instance="127.0.0.1:%d"}' % SERVER_M
    h.wait_until(lambda: (prom_query(q2) or 0) >= 1, 10, "Prometheus to return %s" % q2)
    # Prometheus asks for OpenMetrics first: both targets up, no scrape error.
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/targets" % PROM_PORT,
                                timeout=5) as r:
        targets = json.loads(r.read())["data"]["activeTargets"]
    h.check(len(targets) == 2 and all(t["health"] == "up" and not t["lastError"]
                                      for t in targets),
            "Prometheus targets: %r" % [(t["scrapeUrl"], t["health"], t["lastError"])
                                        for t in targets])


def raw_status(port, data):
    """The status line the endpoint answers raw bytes with ("" if it closes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(data)
        return s.recv(200).decode(errors="replace").split("\r\n")[0]
    except OSError:
        return ""
    finally:
        s.close()


def check_head(port):
    """HEAD: the headers alone (with the GET's length), so that a request
    pipelined after it is answered in step."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    h.check(head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head,
            "HEAD answered %r" % head[:200])
    h.check(rest.startswith(b"HTTP/1.1 404"), "after HEAD: %r (a body was sent?)" % rest[:80])


def check_negative(server, client):
    for path in ("/", "/metricsx", "/metrics/", "/x/../metrics2", "/favicon.ico"):
        st, _, _ = get(SERVER_M, path)
        h.check(st == 404, "GET %s: HTTP %d, want 404" % (path, st))
    st, hdrs, _ = get(SERVER_M, method="POST")
    h.check(st == 405 and hdrs.get("Allow") == "GET, HEAD", "POST: %d %r" % (st, hdrs))
    st, _, _ = get(SERVER_M, method="POST", body="x" * 100)
    h.check(st in (405, 413), "POST with a body: HTTP %d" % st)
    for m in ("PUT", "DELETE"):
        h.check(get(SERVER_M, method=m)[0] == 405, "%s not refused" % m)
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    line = raw_status(SERVER_M, big)
    h.check(not line.startswith("HTTP/1.1 200"), "oversized headers served: %r" % line)
    h.check(raw_status(SERVER_M, b"GARBAGE\r\n\r\n").startswith("HTTP/1.1 400"),
            "garbage request not refused with 400")
    # Many idle connections (beyond the cap and the backlog, connects just
    # wait): NTP and NTS go on; the endpoint comes back.
    socks = []
    for _ in range(300):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", SERVER_M))
        socks.append(s)
    n0 = client.peers()[0]["accepted"]
    for _ in range(5):
        h.check(h.sntp_query("127.0.0.1", NTP_PORT) is not None,
                "no NTP answer while the metrics port is flooded")
    h.wait_until(lambda: client.peers()[0]["accepted"] >= n0 + 3, 20,
                 "the NTS client to go on while the metrics port is flooded")
    h.check(len(os.listdir("/proc/%d/fd" % server.proc.pid)) < 100,
            "the flood costs the server descriptors")
    for s in socks:
        s.close()
    h.wait_until(lambda: get(SERVER_M)[0] == 200, 10, "the endpoint after the flood")


def expired_pki():
    """A test PKI whose server certificate was valid for one day, from
    three days ago to two days ago (re-signed by the harness's CA)."""
    pki = h.make_test_pki("stale-pki", days=60)
    h._sign_dated(pki.dir, pki, os.path.join(pki.dir, "server.csr"),
                  os.path.join(pki.dir, "server.cnf"), time.time() - 3 * 86400, 1)
    with open(pki.chain, "w") as out:
        for p in (pki.cert, pki.ca_cert):
            with open(p) as f:
                out.write(f.read())
    return pki


def main():
    h.require_ours()
    for b in (PROMETHEUS, PROMTOOL):
        h.require_peer(b, "Prometheus (Debian package prometheus)")
    pki = h.make_test_pki(days=10)
    calm_pki = h.make_test_pki("calm-pki", days=60)
    stale_pki = expired_pki()
    server = h.NtsKeServer("server", pki, KE_PORT, NTP_PORT,
                           extra=["metrics 127.0.0.1:%d" % SERVER_M])
    calm = h.NtsKeServer("calm", calm_pki, CALM_KE_PORT, CALM_NTP_PORT,
                         extra=["metrics 127.0.0.1:%d" % CALM_M])
    stale = h.NtsKeServer("stale", stale_pki, STALE_KE_PORT, STALE_NTP_PORT,
                          extra=["metrics 127.0.0.1:%d" % STALE_M])
    client = h.Ntsd("client", ["nts ca %s" % pki.ca_cert,
                               "server 127.0.0.1:%d nts iburst minpoll 0 maxpoll 0" % KE_PORT,
                               "metrics 127.0.0.1:%d" % CLIENT_M])
    h.wait_until(lambda: client.peers()[0]["accepted"] >= 4, 30, "the NTS client's samples")
    h.wait_until(lambda: client.ctl_json("sys")["synced"], 30, "the client to synchronise")
    ctext, ctime = scrape(CLIENT_M)
    stext, stime = scrape(SERVER_M)
    h.log("scrape sizes: client %d bytes in %.1f ms, server %d bytes in %.1f ms" % (
        len(ctext), ctime * 1e3, len(stext), stime * 1e3))
    promtool(ctext, "client")
    promtool(stext, "server")
    check_client(client, ctext)
    check_server(server, stext)
    check_openmetrics(SERVER_M)
    run_prometheus()
    check_prometheus(client)
    check_head(SERVER_M)
    check_negative(server, client)
    # The expiry warning: once at the start, however many KEs followed.
    kes = server.nts_stats()["ke_serves_good"]
    warned = WARNING.findall(server.proc.read_log())
    h.check(len(warned) == 1 and 9 < float(warned[0]) <= 10,
            "expiry warnings in the server log: %r (after %d KEs)" % (warned, kes))
    h.check(not WARNING.search(calm.proc.read_log()), "the 60-day certificate was warned of")
    calm_left = value(parse(scrape(CALM_M)[0])[0], "ntsd_certificate_expiry_seconds")
    h.check(59 * 86400 < calm_left <= 60 * 86400, "60-day certificate: %r s" % calm_left)
    expired = EXPIRED.findall(stale.proc.read_log())
    h.check(len(expired) == 1 and 1.9 < float(expired[0]) <= 2.1,
            "expired-certificate lines in the stale server's log: %r" % expired)
    stale_left = value(parse(scrape(STALE_M)[0])[0], "ntsd_certificate_expiry_seconds")
    h.check(-2.1 * 86400 < stale_left < -1.9 * 86400, "expired certificate: %r s" % stale_left)


h.run(main)
