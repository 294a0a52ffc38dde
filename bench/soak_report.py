"""Verdicts, the text summary and the Markdown report of a soak run
(bench/soak.py)."""

import re

FLAT_TOLERANCE = 0.05          # RSS and open fds: within +-5 % of the reference
CHRONY_SERVERSTATS = ("ntp_rx", "ntp_drop", "cmd_rx", "cmd_drop", "log_drop", "nke_accept",
                      "nke_drop", "auth_ntp", "interleaved", "ts_held", "ts_span")
# ntsd's error counters (every one should stay where it was).  Server drops
# for rate limiting are by design and not among them (and the soak
# configures no `limited`).
NTS_SERVER_ERRORS = ("ke_serves_bad", "ke_refused", "ke_tls_failures", "ke_no_alpn",
                     "ke_bad_requests", "ke_timeouts", "cookie_decode_errors",
                     "cookies_too_old", "server_recvs_bad", "server_naks")
NTS_CLIENT_ERRORS = ("ke_probes_bad", "client_recvs_bad", "client_naks")

_NTPPERF = re.compile(r"^(\d+)\s+(\d+)\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%\s+([\d.]+)%"
                      r"(?:\s+([+-]?\d+)\s+([+-]?\d+)\s+([+-]?\d+)\s+(\d+))?")
_FALLBACK = re.compile(r"^load: requests (\d+) responses (\d+) invalid (\d+) clients (\d+) "
                       r"rate (\d+)")


def parse_load_lines(text):
    """ntpperf's report lines (one per sampling interval) or the fallback's."""
    out = []
    for ln in text.splitlines():
        m = _NTPPERF.match(ln.strip())
        if m:
            g = m.groups()
            d = {"rate": int(g[0]), "clients": int(g[1]), "lost_pct": float(g[2]),
                 "invalid_pct": float(g[3]), "answered_pct": float(g[4]) + float(g[5])}
            if g[6] is not None:
                d.update(rt_min_ns=int(g[6]), rt_mean_ns=int(g[7]), rt_max_ns=int(g[8]))
            out.append(d)
            continue
        m = _FALLBACK.match(ln.strip())
        if m:
            req, resp, inv, cl, rate = (int(x) for x in m.groups())
            out.append({"rate": rate, "clients": cl, "requests": req, "responses": resp,
                        "invalid": inv,
                        "answered_pct": 100.0 * resp / req if req else 0.0})
    return out


def error_counters(kind, c):
    """name -> value of the counters that count failures, or None."""
    if c is None:
        return None
    if kind == "chronyd":
        f = dict(zip(CHRONY_SERVERSTATS, c["serverstats"]))
        return {"ntp_drop": int(f["ntp_drop"]), "nke_drop": int(f["nke_drop"])}
    nts = c["nts"]
    names = NTS_CLIENT_ERRORS if kind == "ntsd-client" else NTS_SERVER_ERRORS
    out = {"nts." + k: nts[k] for k in names if k in nts}
    if kind == "ntsd-client":
        for p in c["peers"]:
            for k, v in (p.get("dropped") or {}).items():
                out["peer %s dropped.%s" % (p.get("address"), k)] = v
    else:
        s = c["server"]
        for k, v in (s.get("dropped") or {}).items():
            if k != "rate_limited":
                out["server.dropped." + k] = v
        out["server.send_errors"] = s.get("send_errors", 0)
    return out


def condense(kind, c):
    """What a sample keeps of the counters: those the report reads (the
    first and last samples also keep everything, as counters_full)."""
    if kind == "chronyd":
        return c
    nts_keys = set(NTS_CLIENT_ERRORS if kind == "ntsd-client" else NTS_SERVER_ERRORS)
    out = {"nts": {k: v for k, v in c["nts"].items()
                   if k in nts_keys or k == "server_recvs_good"}}
    if kind == "ntsd-client":
        keep = ("address", "sent", "received", "accepted", "reach", "cookies", "selection",
                "dropped")
        out["peers"] = [{k: p.get(k) for k in keep} for p in c["peers"]]
    else:
        keep = ("received", "responded", "dropped", "send_errors")
        out["server"] = {k: c["server"].get(k) for k in keep}
    return out


def _with_counters(samples):
    return [s for s in samples if s.get("counters") is not None]


def flatness(samples, warmup):
    """RSS and fds from the first sample at or after warm-up (the
    reference) to the end."""
    post = [s for s in samples if s["t"] >= warmup] or samples[-1:]
    ref = post[0]
    out = {"ref_t": ref["t"], "n": len(post)}
    for k in ("rss_kb", "fds"):
        vals = [s[k] for s in post]
        r = ref[k] or 1
        dev = [(v - r) / r for v in vals]
        out[k] = {"start": samples[0][k], "ref": ref[k], "min": min(vals), "max": max(vals),
                  "end": vals[-1], "dev_min": min(dev), "dev_max": max(dev),
                  "flat": all(abs(d) <= FLAT_TOLERANCE + 1e-9 for d in dev)}
    dt = post[-1]["t"] - ref["t"]
    out["cpu_pct"] = (100.0 * (post[-1]["cpu_s"] - ref["cpu_s"]) / dt) if dt > 0 else None
    out["cpu_s_total"] = samples[-1]["cpu_s"] - samples[0]["cpu_s"]
    out["udp_drops"] = samples[-1]["udp_drops"] - samples[0]["udp_drops"]
    return out


def errors_delta(kind, samples):
    cs = _with_counters(samples)
    if not cs:
        return {"start": {}, "end": {}, "rose": {}, "nonzero_at_start": {}}
    a, b = error_counters(kind, cs[0]["counters"]), error_counters(kind, cs[-1]["counters"])
    rose = {k: b[k] - a.get(k, 0) for k in b if b[k] > a.get(k, 0)}
    return {"start": a, "end": b, "rose": rose,
            "nonzero_at_start": {k: v for k, v in a.items() if v}}


def answered_server(samples):
    """What the ntsd server itself received, answered and lost in the kernel."""
    cs = _with_counters(samples)
    if len(cs) < 2:
        return None
    a, b = cs[0]["counters"], cs[-1]["counters"]
    rx = b["server"]["received"] - a["server"]["received"]
    resp = b["server"]["responded"] - a["server"]["responded"]
    good = b["nts"].get("server_recvs_good", 0) - a["nts"].get("server_recvs_good", 0)
    drops = cs[-1]["udp_drops"] - cs[0]["udp_drops"]
    return {"received": rx, "responded": resp, "nts_good": good, "kernel_drops": drops,
            "responded_pct": 100.0 * resp / rx if rx else None,
            "kernel_drop_pct": 100.0 * drops / (rx + drops) if rx + drops else None}


def answered_client(samples):
    cs = _with_counters(samples)
    if len(cs) < 2:
        return None
    first = {p["address"]: p for p in cs[0]["counters"]["peers"]}
    out = []
    for p in cs[-1]["counters"]["peers"]:
        q = first.get(p["address"], {})
        sent = p.get("sent", 0) - q.get("sent", 0)
        recv = p.get("received", 0) - q.get("received", 0)
        acc = p.get("accepted", 0) - q.get("accepted", 0)
        out.append({"address": p["address"], "sent": sent, "received": recv, "accepted": acc,
                    "answered_pct": 100.0 * recv / sent if sent else None,
                    "reach_end": p.get("reach"), "cookies_end": p.get("cookies"),
                    "selection_end": p.get("selection")})
    return out


def load_summary(ld):
    lines = ld.lines
    out = {"target": ld.target, "kind": ld.kind, "lines": len(lines),
           "ended_early_at_s": ld.ended}
    if not lines:
        return out
    ans = [x["answered_pct"] for x in lines]
    out.update(rate=lines[0]["rate"], clients=lines[0]["clients"],
               answered_pct_mean=sum(ans) / len(ans), answered_pct_min=min(ans))
    if "requests" in lines[0]:
        req = sum(x["requests"] for x in lines)
        out.update(requests=req, responses=sum(x["responses"] for x in lines),
                   invalid=sum(x["invalid"] for x in lines))
    else:
        out["invalid_pct_max"] = max(x["invalid_pct"] for x in lines)
        rt = [x["rt_mean_ns"] for x in lines if "rt_mean_ns" in x]
        if rt:
            out["response_time_mean_us"] = sum(rt) / len(rt) / 1000.0
    return out


def peer_compare(dms):
    """ntsd server / chronyd, both under the same load: RSS, fds, CPU."""
    srv, peer = dms.get("server"), dms.get("chronyd")
    if not srv or not peer or not srv["samples"] or not peer["samples"]:
        return None
    fs, fp = srv["flat"], peer["flat"]
    out = {"rss_ratio_end": fs["rss_kb"]["end"] / max(1, fp["rss_kb"]["end"]),
           "fds_ratio_end": fs["fds"]["end"] / max(1, fp["fds"]["end"])}
    if fs["cpu_pct"] and fp["cpu_pct"]:
        out["cpu_ratio"] = fs["cpu_pct"] / fp["cpu_pct"]
    pc = _with_counters(peer["samples"])
    if len(pc) >= 2:
        a = dict(zip(CHRONY_SERVERSTATS, pc[0]["counters"]["serverstats"]))
        b = dict(zip(CHRONY_SERVERSTATS, pc[-1]["counters"]["serverstats"]))
        out["peer_ntp_rx"] = int(b["ntp_rx"]) - int(a["ntp_rx"])
        out["peer_auth_ntp"] = int(b["auth_ntp"]) - int(a["auth_ntp"])
    return out


VERDICT_DAEMONS = ("server", "client")


def build_result(a, cond, started, daemons, loads):
    dms = {}
    for dm in daemons:
        for s in dm.samples[1:-1]:
            s.pop("counters_full", None)
        d = {"kind": dm.kind, "ntp": dm.ntp, "samples": dm.samples}
        if dm.samples:
            d["flat"] = flatness(dm.samples, a.warmup)
            d["errors"] = errors_delta(dm.kind, dm.samples)
        dms[dm.name] = d
    res = {"schema": 1, "started": started.isoformat(), "seconds": a.seconds,
           "sample_s": a.sample, "warmup_s": a.warmup, "conditions": cond,
           "load": {"kind": a.load_kind, "note": a.load_note, "rate": a.rate,
                    "gen_cpu_cap": a.gen_cap, "generators": [load_summary(ld) for ld in loads]},
           "daemons": dms,
           "answered": {"server": answered_server(dms["server"]["samples"]),
                        "client": answered_client(dms["client"]["samples"])},
           "peer": peer_compare(dms)}
    res["verdict"] = verdict(res)
    return res


def verdict(res):
    dms = res["daemons"]
    v = {}
    for name in VERDICT_DAEMONS:
        f = dms[name].get("flat")
        v[name + "_rss_flat"] = bool(f and f["rss_kb"]["flat"])
        v[name + "_fds_flat"] = bool(f and f["fds"]["flat"])
    rose = {}
    for name, d in dms.items():
        if d["kind"] == "chronyd":
            continue
        for k, n in (d.get("errors") or {}).get("rose", {}).items():
            rose["%s %s" % (name, k)] = n
    v["no_error_rose"] = not rose
    v["errors_rose"] = rose
    gens = res["load"]["generators"]
    v["load_whole_run"] = all(g.get("ended_early_at_s") is None and g.get("lines")
                              for g in gens)
    srv = res["answered"]["server"]
    v["server_answered_all"] = bool(srv and srv["received"] and
                                    srv["responded"] == srv["received"])
    v["all"] = all(v[k] for k in v if k not in ("errors_rose", "all"))
    return v


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

def _pct(x, digits=1):
    return "-" if x is None else ("%+.*f %%" % (digits, 100.0 * x))


def _yes(b):
    return "yes" if b else "NO"


def progress_line(daemons):
    parts = []
    for dm in daemons:
        if dm.name in ("server-b", "server-c", "server-d") or not dm.samples:
            continue
        s = dm.samples[-1]
        parts.append("%s rss %d kB fds %d cpu %.1f s" % (dm.name, s["rss_kb"], s["fds"],
                                                         s["cpu_s"]))
    t = daemons[0].samples[-1]["t"] if daemons[0].samples else 0
    return "t=%d s: %s" % (t, "; ".join(parts))


def _flat_row(name, d, md):
    f = d.get("flat")
    if not f:
        return None
    r, fd = f["rss_kb"], f["fds"]
    cells = [name, d["kind"], "%d" % r["start"], "%d" % r["ref"], "%d..%d" % (r["min"], r["max"]),
             "%d" % r["end"], "%s / %s" % (_pct(r["dev_min"]), _pct(r["dev_max"])),
             "%d / %d / %d..%d / %d" % (fd["start"], fd["ref"], fd["min"], fd["max"], fd["end"]),
             "%s / %s" % (_pct(fd["dev_min"]), _pct(fd["dev_max"])),
             "-" if f["cpu_pct"] is None else "%.2f" % f["cpu_pct"],
             "%d" % f["udp_drops"]]
    if name in VERDICT_DAEMONS:
        cells.append("%s / %s" % (_yes(r["flat"]), _yes(fd["flat"])))
    else:
        cells.append("(%s / %s)" % ("flat" if r["flat"] else "not flat",
                                    "flat" if fd["flat"] else "not flat"))
    if md:
        return "| " + " | ".join(cells) + " |"
    return "  ".join(cells)


FLAT_HEAD = ["daemon", "kind", "RSS kB start", "RSS at ref", "RSS min..max after ref",
             "RSS end", "RSS dev min / max", "fds start / ref / min..max / end",
             "fds dev min / max", "CPU % after ref", "kernel UDP drops", "flat RSS / fds"]


def verdict_lines(res):
    v = res["verdict"]
    dms = res["daemons"]
    out = []
    for name in VERDICT_DAEMONS:
        f = dms[name]["flat"]
        out.append("%s RSS flat within +-5 %% from %d s: %s (%s .. %s, %d -> %d kB)" % (
            name, f["ref_t"], _yes(v[name + "_rss_flat"]), _pct(f["rss_kb"]["dev_min"]),
            _pct(f["rss_kb"]["dev_max"]), f["rss_kb"]["ref"], f["rss_kb"]["end"]))
        out.append("%s open fds flat within +-5 %% from %d s: %s (%d .. %d, %d -> %d)" % (
            name, f["ref_t"], _yes(v[name + "_fds_flat"]), f["fds"]["min"], f["fds"]["max"],
            f["fds"]["ref"], f["fds"]["end"]))
    out.append("no error counter rose (ntsd server, client, other ntsd sources): %s%s" % (
        _yes(v["no_error_rose"]),
        "" if v["no_error_rose"] else " -- " + ", ".join(
            "%s +%d" % kv for kv in sorted(v["errors_rose"].items()))))
    srv = res["answered"]["server"]
    if srv:
        out.append("server answered every request it received: %s (%d of %d; kernel "
                   "socket-buffer drops before the daemon: %d, %.3f %%)" % (
                       _yes(v["server_answered_all"]), srv["responded"], srv["received"],
                       srv["kernel_drops"], srv["kernel_drop_pct"] or 0.0))
    for g in res["load"]["generators"]:
        if g.get("lines"):
            rt = ("" if "response_time_mean_us" not in g else
                  ", server receive-to-transmit time mean %.0f us" % g["response_time_mean_us"])
            early = ("" if g.get("ended_early_at_s") is None else
                     ", ENDED EARLY at %s s" % g["ended_early_at_s"])
            out.append("load generator -> %s: %d req/s, %d clients, answered %.2f %% mean, "
                       "%.2f %% worst interval (%d intervals)%s%s" % (
                           g["target"], g["rate"], g["clients"], g["answered_pct_mean"],
                           g["answered_pct_min"], g["lines"], rt, early))
    if res["load"]["generators"]:
        out.append("load ran for the whole run: %s" % _yes(v["load_whole_run"]))
    cl = res["answered"]["client"] or []
    if cl:
        sent = sum(p["sent"] for p in cl)
        recv = sum(p["received"] for p in cl)
        out.append("client: %d of %d polls answered (%.2f %%) over 4 NTS sources; reach at "
                   "the end %s" % (recv, sent, 100.0 * recv / sent if sent else 0.0,
                                   " ".join("%o" % (p["reach_end"] or 0) for p in cl)))
    pc = res.get("peer")
    if pc:
        out.append("ntsd server / chronyd under the same load: RSS %.2f, fds %.2f%s" % (
            pc["rss_ratio_end"], pc["fds_ratio_end"],
            ", CPU %.2f" % pc["cpu_ratio"] if "cpu_ratio" in pc else ""))
    out.append("verdict: %s" % ("all hold" if v["all"] else "NOT ALL HOLD"))
    return out


def text(res):
    c = res["conditions"]
    lines = ["soak: %d s under load, a sample every %d s, flatness from %d s" % (
        res["seconds"], res["sample_s"], res["warmup_s"]),
        "load: %s" % res["load"]["note"],
        "%s (%s); %s" % (c.get("ntsd_version"), c.get("git"), c.get("chrony_version")),
        ""]
    for name, d in res["daemons"].items():
        row = _flat_row(name, d, False)
        if row:
            lines.append(row)
    lines.append("  (columns: %s)" % ", ".join(FLAT_HEAD))
    lines.append("")
    lines += verdict_lines(res)
    return "\n".join(lines) + "\n"


def series_table(res, rows=12):
    """RSS, fds and CPU of the loaded servers and the client at about
    `rows` evenly spaced samples."""
    names = [n for n in ("server", "chronyd", "client") if res["daemons"].get(n, {}).get("samples")]
    ref = res["daemons"][names[0]]["samples"]
    step = max(1, (len(ref) - 1) // rows)
    idx = sorted(set(list(range(0, len(ref), step)) + [len(ref) - 1]))
    out = ["| t (s) | " + " | ".join(names) + " |", "|" + " --- |" * (len(names) + 1)]
    prev = None
    for i in idx:
        cells = ["%d" % ref[i]["t"]]
        for n in names:
            ss = res["daemons"][n]["samples"]
            s = ss[min(i, len(ss) - 1)]
            cpu = "-"
            if prev is not None:
                p = ss[min(prev, len(ss) - 1)]
                dt = s["t"] - p["t"]
                if dt > 0:
                    cpu = "%.1f" % (100.0 * (s["cpu_s"] - p["cpu_s"]) / dt)
            cells.append("%d / %d / %s" % (s["rss_kb"], s["fds"], cpu))
        out.append("| " + " | ".join(cells) + " |")
        prev = i
    return out


def markdown(res):
    c = res["conditions"]
    out = ["# Soak run %s" % res["started"], "",
           "- %d s under load, a sample every %d s; flatness (+-5 %%) from the first sample at "
           "or after %d s (the reference) to the end." % (
               res["seconds"], res["sample_s"], res["warmup_s"]),
           "- Load: %s; generator CPU cap: %s." % (res["load"]["note"],
                                                    res["load"]["gen_cpu_cap"]),
           "- %s, %s; %s; Linux %s, %d x %s; load average %s at start, %s at the end." % (
               c.get("ntsd_version"), c.get("git"), c.get("chrony_version"), c.get("kernel"),
               c.get("cpus") or 0, c.get("cpu"), " ".join(c.get("loadavg_start", [])),
               " ".join(c.get("loadavg_end", []))),
           "", "| " + " | ".join(FLAT_HEAD) + " |",
           "|" + " --- |" * len(FLAT_HEAD)]
    for name, d in res["daemons"].items():
        row = _flat_row(name, d, True)
        if row:
            out.append(row)
    out += ["", "Over time (RSS kB / open fds / CPU % of one core since the previous row):", ""]
    out += series_table(res)
    out += ["", "Verdicts:", ""]
    out += ["- " + ln for ln in verdict_lines(res)]
    nz = []
    for name, d in res["daemons"].items():
        for k, n in sorted(((d.get("errors") or {}).get("end") or {}).items()):
            if n:
                nz.append("%s %s = %d" % (name, k, n))
    out += ["", "Error counters not zero at the end: %s." % (", ".join(nz) if nz else "none")]
    return "\n".join(out) + "\n"
