#!/usr/bin/env python3
"""Several benchmark runs side by side: RMS / chrony per run, and over the
runs the geometric mean of the ratios and the pooled RMS (all samples of all
runs).  One 600 s run is too few samples to call a ratio (docs/benchmarks.md);
run several seeds and summarise them:

    for s in 1 2 3 4; do sudo scripts/bench build --seed $s --out /tmp/b$s; done
    bench/summary.py /tmp/b*/latest.json

Standard library only.  Prints a Markdown table.
"""

import json
import math
import sys

CLIENTS = ("ntsd", "ntsd-vc")


def load(path):
    with open(path) as f:
        d = json.load(f)
    label = "seed %s, %s s" % (d.get("seed"), d.get("duration_s"))
    git = (d.get("conditions") or {}).get("git") or ""
    if git:
        label += ", " + git.split()[0]
    return label, d


def pooled_rms(runs, scenario, client):
    sq, n = 0.0, 0
    for _, d in runs:
        for sc in d["scenarios"]:
            if sc["name"] != scenario:
                continue
            for s in sc["clients"].get(client, {}).get("samples", []):
                if s.get("offset") is not None:
                    sq += s["offset"] ** 2
                    n += 1
    return math.sqrt(sq / n) if n else None


def main(paths):
    if not paths:
        sys.stderr.write("usage: bench/summary.py RESULT.json...\n")
        return 2
    runs = [load(p) for p in paths]
    names = []
    for _, d in runs:
        for sc in d["scenarios"]:
            if sc["name"] not in names:
                names.append(sc["name"])
    head = ["scenario", "target"] + [lbl for lbl, _ in runs] + ["geometric mean", "pooled RMS / chrony"]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for name in names:
        target, cells, logs = None, [], {c: [] for c in CLIENTS}
        for _, d in runs:
            sc = next((x for x in d["scenarios"] if x["name"] == name), None)
            if sc is None:
                cells.append("-")
                continue
            target = (sc.get("target") or {}).get("rms_ratio_max", target)
            r = sc.get("rms_ratio") or {}
            parts = []
            for c in CLIENTS:
                v = r.get(c)
                parts.append("%.2f" % v if v is not None else "-")
                if v:
                    logs[c].append(math.log(v))
            cells.append(" / ".join(parts))
        gm = " / ".join("%.2f" % math.exp(sum(v) / len(v)) if v else "-"
                        for v in (logs[c] for c in CLIENTS))
        chrony = pooled_rms(runs, name, "chrony")
        pooled = " / ".join(
            "%.2f" % (pooled_rms(runs, name, c) / chrony) if chrony and pooled_rms(runs, name, c)
            else "-" for c in CLIENTS)
        tgt = "≤ %.1f" % target if target else "-"
        print("| " + " | ".join([name, tgt] + cells + [gm, pooled]) + " |")
    print("\nEach cell: ntsd / ntsd-vc RMS over chrony's RMS in the same run.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
