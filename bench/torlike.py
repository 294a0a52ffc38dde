#!/usr/bin/env python3
"""Accuracy over Tor-like paths: ntsd's NTS time against time from HTTP
`Date` headers (sdwdate, htpdate), in the same run (`make bench`).

Usage: bench/torlike.py [BUILD_DIR] [--duration SECONDS] [--poll N] [--seed N]
                        [--no-tor] [--out DIR] [--keep]
(see docs/benchmarks.md, "Accuracy over Tor-like paths")

The namespaces of bench/runner.py,

    srv (198.18.0.1) --veth-- rtr (198.18.0.2 | 198.19.0.1) --veth-- cli (198.19.0.2)

with no forwarding in rtr.  In srv: an ntsd NTS server (NTS-KE on :4460,
NTP on :123, its KE naming 198.19.0.1 as the NTP server) and an HTTP
server (bench/httpdate.py serve, :80).  In rtr, every path between the
two adds Tor-like delays, 150-400 ms each way (uniform, drawn
independently per datagram or chunk and per direction), 2 % of them 500 ms
more: bench/relay.py per NTP datagram (:123), bench/stream_relay.py per
chunk of the NTS-KE (:4460) and HTTP (:80) streams.  In cli: an ntsd NTS
client (`server 198.19.0.1 nts`, NTP over UDP through the relay) and the
`Date` estimator (bench/httpdate.py estimate).  When microsocks is
installed and ntsd has a SOCKS5 client, a second ntsd client goes the way
Tor goes: `proxy socks5://198.19.0.1:1080`, a stream relay delaying every
chunk to microsocks in srv, KE and NTP over TCP (socks-tcp) to a second
ntsd server there (`listen ... tcp`, KE on :4461).  All share the machine's
clock: the true offset is 0 and every estimate is pure error.

Then, unless --no-tor or ../shared/tools/tor-testnet is missing: the time
from starting an ntsd client to its first NTS-authenticated sample through
a private Tor network (by IP via an exit, and to an onion service), ntsd
server and client both in the tool's namespaces.

Safety as in bench/runner.py (whose helpers this uses): setpriv without
CAP_SYS_TIME (checked), `-x`, everything in namespaces made here and
deleted at the end, deadlines everywhere.  Writes DIR/torlike-latest.json
and .md (DIR: bench/results).
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

import report  # noqa: E402
import runner as R  # noqa: E402

TOOL = os.environ.get("NTSD_TOR_TESTNET", os.path.normpath(
    os.path.join(R.SOURCE_DIR, "..", "shared", "tools", "tor-testnet")))
MS = 1e-3
TORLIKE = {"delay": 275 * MS, "jitter": 125 * MS, "dist": "uniform", "spike": 0.02,
           "spike_delay": 500 * MS}
PATH = {"up": dict(TORLIKE), "down": dict(TORLIKE)}
SCN = {"name": "torlike", "title": "Tor-like: 150-400 ms each way, 2 % +500 ms",
       "relay": PATH, "jittery": True}


def openssl(*args):
    R.run(R.SETPRIV + ["openssl"] + list(args), timeout=30)


def make_pki(d, sans):
    """CA and server certificate (EC P-256) for the NTS server."""
    os.makedirs(d, mode=0o700, exist_ok=True)
    ca, cakey = os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")
    crt, key = os.path.join(d, "server.pem"), os.path.join(d, "server.key")
    ext = R.write(os.path.join(d, "ext.cnf"),
                  "[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                  "extendedKeyUsage=serverAuth\nsubjectAltName=%s\n" % sans)
    for k in (cakey, key):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k)
    openssl("req", "-x509", "-new", "-key", cakey, "-subj", "/CN=ntsd bench CA", "-days", "2",
            "-sha256", "-out", ca)
    csr = os.path.join(d, "server.csr")
    openssl("req", "-new", "-key", key, "-subj", "/CN=ntsd bench server", "-out", csr)
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", cakey, "-CAcreateserial",
            "-days", "2", "-sha256", "-extfile", ext, "-extensions", "v3", "-out", crt)
    chain = os.path.join(d, "chain.pem")
    with open(chain, "w") as out:
        for p in (crt, ca):
            with open(p) as f:
                out.write(f.read())
    return {"ca": ca, "chain": chain, "key": key, "cert": crt}


def server_conf(d, pki, ntp_addr, ke_addr, extra=(), ntp_port=123, ke_port=4460, tcp=False):
    return R.write(os.path.join(d, "server.conf"), "\n".join(
        ["# torlike benchmark server", "disable ntp",
         "listen %s:%d%s" % (ntp_addr, ntp_port, " tcp" if tcp else ""),
         "local stratum 1", "nts enable", "nts cert %s" % pki["chain"],
         "nts key %s" % pki["key"], "nts-listen-on %s:%d" % (ke_addr, ke_port)] + list(extra))
        + "\n")


# --------------------------------------------------------------------------
# Tor-like relay: ntsd vs the Date method
# --------------------------------------------------------------------------

def accuracy(args, tmp):
    run = R.ScenarioRun(SCN, 0, tmp, args)
    d = run.dir
    run.netns_setup()
    pki = make_pki(os.path.join(d, "pki"), "IP:%s,IP:%s" % (R.RTR_CLI_ADDR, R.SRV_ADDR))
    relays = [("relay", [sys.executable, R.RELAY, "--listen", "%s:123" % R.RTR_CLI_ADDR,
                         "--upstream-bind", R.RTR_SRV_ADDR, "--server", "%s:123" % R.SRV_ADDR,
                         "--config", json.dumps(PATH), "--seed", str(args.seed),
                         "--stats", run.relay_stats_path,
                         "--max-seconds", str(args.duration + 120)])]
    socks = args.socks and shutil.which("microsocks") is not None
    for port, seed in ((4460, 1), (80, 2)) + (((1080, 3),) if socks else ()):
        relays.append(("stream%d" % port, [
            sys.executable, os.path.join(HERE, "stream_relay.py"),
            "--listen", "%s:%d" % (R.RTR_CLI_ADDR, port), "--upstream-bind", R.RTR_SRV_ADDR,
            "--server", "%s:%d" % (R.SRV_ADDR, port), "--config", json.dumps(PATH),
            "--seed", str(args.seed * 10 + seed), "--max-seconds", str(args.duration + 120)]))
    for name, cmd in relays:
        run.spawn(name, cmd, "rtr")
    srv_sock = os.path.join(d, "server.sock")
    conf = server_conf(d, pki, R.SRV_ADDR, R.SRV_ADDR, ["nts ntpserver %s" % R.RTR_CLI_ADDR])
    run.spawn("server-ntsd", [args.ntsd, "-c", conf, "-n", "-x", "-s", srv_sock], "srv")
    R.wait_for(lambda: run._ntsd_ready(srv_sock, "server"), 15, "server ntsd", run)
    run.spawn("http", [sys.executable, os.path.join(HERE, "httpdate.py"), "serve",
                       "%s:80" % R.SRV_ADDR], "srv")
    if socks:
        d2 = os.path.join(d, "tcp")
        os.makedirs(d2)
        conf2 = server_conf(d2, pki, R.SRV_ADDR, R.SRV_ADDR, ntp_port=1123, ke_port=4461,
                            tcp=True)
        sock2 = os.path.join(d2, "server.sock")
        run.spawn("server-ntsd-tcp", [args.ntsd, "-c", conf2, "-n", "-x", "-s", sock2], "srv")
        R.wait_for(lambda: run._ntsd_ready(sock2, "server"), 15, "server ntsd (tcp)", run)
        run.spawn("microsocks", ["microsocks", "-i", R.SRV_ADDR, "-p", "1080"], "srv")
    time.sleep(1.0)   # relays and the HTTP server listening
    csock = os.path.join(d, "client.sock")
    cconf = R.write(os.path.join(d, "client.conf"),
                    "# torlike benchmark client\ndisable ntp\n"
                    "server %s nts ca %s iburst minpoll %d maxpoll %d\n"
                    % (R.RTR_CLI_ADDR, pki["ca"], args.poll, args.poll))
    p = run.spawn("client-ntsd", [args.ntsd, "-c", cconf, "-n", "-x", "-s", csock], "cli")
    clients = {"ntsd": R.Client("ntsd", SCN["name"], p, csock)}
    if socks:
        tsock = os.path.join(d, "client-tcp.sock")
        tconf = R.write(os.path.join(d, "client-tcp.conf"),
                        "# torlike benchmark client through SOCKS5\ndisable ntp\n"
                        "interface ignore all\nproxy socks5://%s:1080\n"
                        "server %s:4461 nts ca %s iburst minpoll %d maxpoll %d transport tcp\n"
                        % (R.RTR_CLI_ADDR, R.SRV_ADDR, pki["ca"], args.poll, args.poll))
        tp = run.spawn("client-ntsd-tcp", [args.ntsd, "-c", tconf, "-n", "-x", "-s", tsock],
                       "cli")
        time.sleep(0.5)
        if "not supported by this build" in open(tp.log).read():
            R.log("torlike: this ntsd has no SOCKS5 client: no socks-tcp client")
            tp.stop()
            run.procs.remove(tp)
            socks = False
        else:
            clients["ntsd_socks_tcp"] = R.Client("ntsd", SCN["name"], tp, tsock)
    date_out = os.path.join(d, "date.json")
    run.spawn("date-estimator", [sys.executable, os.path.join(HERE, "httpdate.py"), "estimate",
                                 "--server", "%s:80" % R.RTR_CLI_ADDR,
                                 "--duration", str(args.duration),
                                 "--period", str(2 ** args.poll), "--seed", str(args.seed),
                                 "--out", date_out], "cli")
    end = time.monotonic() + args.duration
    while time.monotonic() < end:
        run.check_alive()
        nxt = min(c.tick(end) for c in clients.values())
        time.sleep(max(0.05, min(nxt, end) - time.monotonic()))
    counters = {k: R.ntsd_ctl(c.sock, "peers")[0] for k, c in clients.items()}
    R.teardown(run.procs, [])
    R.teardown([], run.namespaces)
    with open(date_out) as f:
        date = json.load(f)
    out = {}
    for k, c in clients.items():
        r = c.result()
        out[k] = {"first_estimate_s": r["first_estimate_s"],
                  "first_sample_s": r["first_sample_s"], "stats": r["stats"],
                  "counters": {f: counters[k].get(f) for f in (
                      "sent", "received", "accepted", "dropped", "reach", "nts", "transport")},
                  "samples": r["samples"]}
    out.update({
           "date": {"stats": report.offset_stats(
               [{"offset": s.get("date")} for s in date if "error" not in s])},
           "date_boundary": {"stats": report.offset_stats(
               [{"offset": s.get("date_boundary")} for s in date if "error" not in s]),
               "requests_per_estimate": [s.get("requests") for s in date][:3]},
           "date_samples": date})
    try:
        with open(run.relay_stats_path) as f:
            out["relay_stats"] = json.load(f)
    except (OSError, ValueError):
        pass
    n, dt = out["ntsd"]["stats"]["rms"], out["date"]["stats"]["rms"]
    out["ratio_ntsd_to_date"] = (n / dt) if n is not None and dt else None
    if "ntsd_socks_tcp" in out:
        n2 = out["ntsd_socks_tcp"]["stats"]["rms"]
        out["ratio_ntsd_socks_tcp_to_date"] = (n2 / dt) if n2 is not None and dt else None
    return out


# --------------------------------------------------------------------------
# First NTS-authenticated sample through a private Tor network
# --------------------------------------------------------------------------

def tor_first_sample(args, tmp):
    if args.no_tor:
        return {"skipped": "--no-tor"}
    if not os.access(TOOL, os.X_OK):
        return {"skipped": "tor-testnet not found at %s" % TOOL}
    d = os.path.join(tmp, "tor")
    os.makedirs(d, mode=0o700)
    net = os.path.join(d, "net")
    prefix = "nb%d" % (os.getpid() % 10000000)
    r = R.run(R.SETPRIV + [TOOL, "up", net, "--prefix", prefix, "--onion", "nts=:4460,123"],
              timeout=300, check=False)
    if r.returncode != 0:
        R.run([TOOL, "down", net], timeout=120, check=False)
        return {"error": "tor-testnet up failed: %s" % r.stderr.strip()[-500:]}
    env = dict(ln.split("=", 1) for ln in r.stdout.splitlines() if "=" in ln)
    procs = []
    out = {"tor_testnet": {k: env.get(k) for k in ("bootstrap_s", "exit_s", "onion_s",
                                                     "ready_s", "rss_kb")}}
    try:
        onion = env["onion_nts"]
        pki = make_pki(os.path.join(d, "pki"), "IP:%s,DNS:%s,DNS:%s" % (
            env["server_addr"], env["server_name"], onion))
        conf = server_conf(d, pki, env["server_addr"], env["server_addr"], tcp=True)
        srv_sock = os.path.join(d, "server.sock")
        procs.append(_ns_proc("tor-server", [args.ntsd, "-c", conf, "-n", "-x", "-s", srv_sock],
                              env["ns_server"], d))
        R.wait_for(lambda: R.ScenarioRun._ntsd_ready(srv_sock, "server"), 15, "server ntsd")
        for label, host in (("ip", env["server_addr"]), ("onion", onion)):
            sock = os.path.join(d, "client-%s.sock" % label)
            cconf = R.write(os.path.join(d, "client-%s.conf" % label),
                            "disable ntp\nproxy socks5://%s\nserver %s nts ca %s iburst "
                            "minpoll 4 maxpoll 4\n" % (env["socks"], host, pki["ca"]))
            t0 = time.monotonic()
            p = _ns_proc("tor-client-" + label, [args.ntsd, "-c", cconf, "-n", "-x", "-s",
                                                 sock], env["ns_client"], d)
            procs.append(p)
            first = None
            while time.monotonic() - t0 < 60 and p.alive():
                try:
                    peer = R.ntsd_ctl(sock, "peers", timeout=1.0)[0]
                    if peer.get("nts") and (peer.get("accepted") or 0) > 0:
                        first = time.monotonic() - t0
                        out[label] = {"first_nts_sample_s": round(first, 3),
                                      "transport": peer.get("transport"),
                                      "offset": peer.get("offset"), "delay": peer.get("delay")}
                        break
                except Exception:
                    pass
                time.sleep(0.05)
            if first is None:
                out[label] = {"error": "no NTS-authenticated sample within 60 s (%s)" % (
                    "exited rc=%s: %s" % (p.p.returncode, p.tail(5)) if not p.alive()
                    else "peer %s" % _peer_or_err(sock))}
            p.stop()
    finally:
        for p in procs:
            p.stop()
        R.run([TOOL, "down", net], timeout=120, check=False)
    return out


def _peer_or_err(sock):
    try:
        p = R.ntsd_ctl(sock, "peers", timeout=1.0)[0]
        return {k: p.get(k) for k in ("state", "ke_error", "reach", "transport", "proxy")}
    except Exception as e:
        return str(e)


def _ns_proc(name, cmd, ns, d):
    # The tool's namespaces are not ours to delete: a plain Proc, not spawn().
    return R.Proc(name, cmd, ns, d)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def markdown(res):
    a = res["accuracy"]
    ms = lambda v: "-" if v is None else "%.1f ms" % (v * 1e3)  # noqa: E731
    lines = ["# Accuracy over Tor-like paths (%s)" % res["date"], ""]
    if a is None:
        a = {}
    else:
        lines += ["%s; %d s, poll %d s, seed %d; %s" % (SCN["title"], res["duration"],
                                                      2 ** res["poll"], res["seed"],
                                                      res["ntsd_version"]), "",
                  "| estimate | n | RMS | median abs | p95 abs | max abs |",
                  "|---|---|---|---|---|---|"]
    for k, label in (("ntsd", "ntsd (NTS, UDP through the relay)"),
                     ("ntsd_socks_tcp", "ntsd (NTS, socks-tcp through the stream relay)"),
                     ("date", "HTTP Date, one request"),
                     ("date_boundary", "HTTP Date, second-boundary timing")):
        if k not in a:
            continue
        s = a[k]["stats"]
        lines.append("| %s | %d | %s | %s | %s | %s |" % (label, s["n"], ms(s["rms"]),
                                                        ms(s["median_abs"]), ms(s["p95_abs"]),
                                                        ms(s["max_abs"])))
    lines.append("")
    for k, rk in (("ntsd", "ratio_ntsd_to_date"),
                  ("ntsd_socks_tcp", "ratio_ntsd_socks_tcp_to_date")):
        if k not in a:
            continue
        r = a.get(rk)
        lines += ["%s RMS / Date RMS: %s (target <= 0.05: %s); first estimate %s s after "
                  "start (first sample %s s)" % (
                      k, "-" if r is None else "%.3f" % r,
                      "-" if r is None else ("met" if r <= 0.05 else "NOT met"),
                      a[k]["first_estimate_s"], a[k]["first_sample_s"])]
    lines.append("")
    t = res["tor"]
    if "skipped" in t or "error" in t:
        lines.append("Tor: %s" % (t.get("skipped") or t.get("error")))
    else:
        lines.append("Private Tor network: %s" % json.dumps(t["tor_testnet"]))
        for label in ("ip", "onion"):
            v = t.get(label, {})
            lines.append("- first NTS-authenticated sample, %s: %s" % (
                label, "%.2f s (target < 10 s: %s)" % (
                    v["first_nts_sample_s"], "met" if v["first_nts_sample_s"] < 10
                    else "NOT met") if "first_nts_sample_s" in v else v.get("error")))
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--duration", type=int, default=int(os.environ.get("TORLIKE_SECONDS", 600)))
    ap.add_argument("--poll", type=int, default=4, help="log2 s (default 4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-tor", action="store_true", help="skip the private Tor network")
    ap.add_argument("--no-socks", dest="socks", action="store_false",
                    help="no ntsd client through SOCKS5 over TCP")
    ap.add_argument("--tor-only", action="store_true", help="only the Tor network part")
    ap.add_argument("--out", default=R.RESULTS)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    build = args.build if os.path.isabs(args.build) else os.path.join(R.SOURCE_DIR, args.build)
    args.ntsd = os.path.join(build, "ntsd")
    # What ScenarioRun reads from runner's arguments.
    args.rt, args.spin_us, args.floor_us, args.ntsd_debug, args.virtual_clock = (
        False, 2000, 0, False, False)
    if os.geteuid() != 0:
        print("torlike: needs root (network namespaces)", file=sys.stderr)
        return 2
    if not os.access(args.ntsd, os.X_OK):
        print("torlike: ntsd not found at %s (build first)" % args.ntsd, file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, R._on_signal)
    R.cleanup_stale()
    R.check_clock_protection()
    tmp = tempfile.mkdtemp(prefix="ntsd-torlike-")
    R.STATE["tmp"], R.STATE["keep"] = tmp, args.keep
    try:
        acc = None
        if not args.tor_only:
            R.log("torlike: %d s through the Tor-like relay" % args.duration)
            acc = accuracy(args, tmp)
            R.log("torlike: RMS: %s" % ", ".join(
                "%s %.6f" % (k, v["stats"]["rms"]) for k, v in acc.items()
                if isinstance(v, dict) and "stats" in v and v["stats"]["rms"] is not None))
        tor = tor_first_sample(args, tmp)
        R.log("torlike: Tor: %s" % json.dumps(tor))
    finally:
        R.cleanup()
    res = {"date": datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0).isoformat(), "duration": args.duration, "poll": args.poll,
        "seed": args.seed, "path": PATH,
        "ntsd_version": R.run([args.ntsd, "--version"], check=False).stdout.strip(),
        "accuracy": acc, "tor": tor}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "torlike-latest.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = markdown(res)
    with open(os.path.join(args.out, "torlike-latest.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
