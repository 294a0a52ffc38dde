"""Statistics, the text table and the Markdown table of a benchmark run."""

import math
import re
import statistics


def pct_nearest_rank(sorted_vals, p):
    n = len(sorted_vals)
    if n == 0:
        return None
    return sorted_vals[min(n - 1, max(0, int(math.ceil(p * n)) - 1))]


def offset_stats(samples):
    """samples: [{"t":..., "offset": seconds or None}] -> summary of |offset|."""
    vals = [s["offset"] for s in samples if s.get("offset") is not None]
    out = {"n": len(vals), "missing": sum(1 for s in samples if s.get("offset") is None)}
    if not vals:
        out.update(median_abs=None, rms=None, p95_abs=None, max_abs=None, mean=None)
        return out
    a = sorted(abs(v) for v in vals)
    out.update(median_abs=statistics.median(a),
               rms=math.sqrt(sum(v * v for v in vals) / len(vals)),
               p95_abs=pct_nearest_rank(a, 0.95),
               max_abs=a[-1],
               mean=sum(vals) / len(vals))
    return out


def fmt_us(v):
    """Seconds -> a microsecond string."""
    if v is None:
        return "-"
    us = v * 1e6
    if abs(us) >= 100:
        return "%.0f" % us
    return "%.1f" % us


def fmt_s(v):
    return "-" if v is None else "%.1f" % v


def fmt_ratio(v):
    return "-" if v is None else "%.2f" % v


CLIENTS = ("ntsd", "ntsd-vc", "chrony")
OURS = ("ntsd", "ntsd-vc")
CLIENT_TEXT = {
    "ntsd": "ntsd -x (sys offset)",
    "ntsd-vc": "ntsd -x --virtual-clock 0 (virtual clock error)",
    "chrony": "chronyd -x (tracking System time)",
}


def evaluate(scn):
    """Adds, for each of our clients, the RMS ratio to chrony and the target
    verdicts to one scenario result (in place)."""
    theirs = scn["clients"].get("chrony", {}).get("stats", {})
    limit = 0.7 if scn["jittery"] else 1.0
    scn["rms_ratio"] = {}
    scn["target"] = {"rms_ratio_max": limit, "first_estimate_max_s": 3.0}
    for kind in OURS:
        c = scn["clients"].get(kind)
        if c is None:
            continue
        ours = c.get("stats", {})
        ratio = None
        if ours.get("rms") is not None and theirs.get("rms"):
            ratio = ours["rms"] / theirs["rms"]
        first = c.get("first_estimate_s")
        scn["rms_ratio"][kind] = ratio
        scn["target"][kind] = {
            "rms_met": None if ratio is None else ratio <= limit,
            "first_estimate_met": None if first is None else first <= 3.0,
        }
    return scn


def _verdict(v):
    return "-" if v is None else ("yes" if v else "NO")


def _rows(result):
    """(scenario, client, first sample, first estimate, n, median, RMS, p95,
    mean, ratio, RMS target, first-estimate target) per client."""
    rows = []
    for scn in result["scenarios"]:
        first_row = True
        for kind in CLIENTS:
            c = scn["clients"].get(kind)
            if c is None:
                continue
            st = c.get("stats", {})
            ratio = tgt = ftgt = ""
            if kind in OURS:
                t = scn["target"].get(kind, {})
                ratio = fmt_ratio(scn["rms_ratio"].get(kind))
                tgt = "<= %.1f: %s" % (scn["target"]["rms_ratio_max"], _verdict(t.get("rms_met")))
                ftgt = "<= 3 s: %s" % _verdict(t.get("first_estimate_met"))
            rows.append((scn["name"] if first_row else "", kind,
                         fmt_s(c.get("first_sample_s")), fmt_s(c.get("first_estimate_s")),
                         str(st.get("n", 0)), fmt_us(st.get("median_abs")), fmt_us(st.get("rms")),
                         fmt_us(st.get("p95_abs")), fmt_us(st.get("mean")), ratio, tgt, ftgt))
            first_row = False
    return rows


def text_table(result):
    hdr = ("scenario", "client", "1st sample s", "1st est s", "n", "median |off| us", "RMS us",
           "p95 |off| us", "mean us", "RMS/chrony", "target", "first est")
    rows = _rows(result)
    widths = [max([len(hdr[i])] + [len(r[i]) for r in rows]) for i in range(len(hdr))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(hdr, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


def relay_line(scn):
    rs = scn.get("relay_stats") or {}
    parts = []
    for d in ("up", "down"):
        s = rs.get(d) or {}
        late = s.get("wire_error") or {}
        parts.append("%s %d rx/%d lost/%d spiked, release error median %s p95 %s p99 %s "
                     "max %s us" % (
                         d, s.get("received", 0), s.get("lost", 0), s.get("spiked", 0),
                         _num(late.get("median_us")), _num(late.get("p95_us")),
                         _num(late.get("p99_us")), _num(late.get("max_us"))))
    return "; ".join(parts)


def short_chrony(v):
    """'chronyd (chrony) version 4.3 (+CMDMON ...)' -> 'chrony 4.3'."""
    m = re.search(r"version (\S+)", v or "")
    return "chrony %s" % m.group(1) if m else (v or "chrony ?")


def _num(v):
    return "-" if v is None else "%.0f" % v


def markdown(result):
    c = result["conditions"]
    out = []
    label = "tooling check" if result["duration_s"] < 600 else "benchmark"
    out.append("<!-- written by scripts/bench; %s -->" % result["started"])
    out.append("")
    out.append("Run: %s, %d s per scenario (%s), poll 16 s, started %s." % (
        label, result["duration_s"], "concurrently" if result["concurrent"] else "one at a time",
        result["started"]))
    out.append("%s, commit %s; %s; kernel %s, %s × %s, Python %s." % (
        c.get("ntsd_version"), c.get("git"), short_chrony(c.get("chrony_version", "")),
        c.get("kernel"), c.get("cpus"), c.get("cpu"), c.get("python")))
    out.append("")
    present = [k for k in CLIENTS if any(k in scn["clients"] for scn in result["scenarios"])]
    out.append("Clients: " + "; ".join("`%s` = %s" % (k, CLIENT_TEXT[k]) for k in present) + ".")
    out.append("")
    out.append("| scenario | client | first sample (s) | first estimate (s) | samples "
               "| median \\|offset\\| (µs) | RMS (µs) | p95 \\|offset\\| (µs) | mean (µs) "
               "| RMS / chrony | target | first estimate ≤ 3 s |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    titles = {scn["name"]: scn["title"] for scn in result["scenarios"]}
    for r in _rows(result):
        name = titles.get(r[0], "") if r[0] else ""
        tgt = r[10].replace("<= ", "≤ ").replace(":", "×:") if r[10] else ""
        ftgt = r[11].split(": ")[1] if r[11] else ""
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            name, r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], tgt, ftgt))
    out.append("")
    out.append("Relay, per direction (up = client to server): datagrams received, lost, "
               "spiked; release error = the kernel's software transmit stamp of the datagram "
               "on the veth minus its scheduled release, i.e. the jitter the relay itself "
               "adds:")
    out.append("")
    for scn in result["scenarios"]:
        out.append("- %s: %s" % (scn["name"], relay_line(scn)))
    out.append("")
    return "\n".join(out)
