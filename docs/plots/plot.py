#!/usr/bin/env python3
"""Draws the plots of docs/performance.md from the raw results in benches/results.

Standard library only (the SVG is written by hand), so that anyone can redraw them:

    python3 docs/plots/plot.py

writes docs/plots/scaling.svg (per-record upsert cost as the table grows, beside
plain redb doing the same work) and
docs/plots/peers-1m.svg (the 1,000,000-contact load and upsert beside SQLite's bulk
path) and docs/plots/cache-budget.svg (the same at three page-cache budgets). Each
plot names the CSV file it was drawn from.
"""

import csv
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benches" / "results"
OUT = Path(__file__).resolve().parent

SCALING_CSV = "2026-12-04-scaling-10m-with-redb-floor.csv"
PEERS_CSV = "2026-12-04-allocator-peers-1m-b.csv"
CACHE_CSV = "2026-12-04-cache-budget-1m.csv"

W, H = 760, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 250, 50, 60
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def rows(name):
    with open(RESULTS / name, newline="") as f:
        return [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]


def svg(title, source, body):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">\n'
        f'<rect width="{W}" height="{H}" fill="white"/>\n'
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>\n'
        f"{body}"
        f'<text x="{W - 8}" y="{H - 8}" text-anchor="end" font-size="10" fill="#666">'
        f"benches/results/{source}</text>\n</svg>\n"
    )


def axes(x_label, y_label, y_max, y_step):
    x0, y0, x1, y1 = LEFT, H - BOTTOM, W - RIGHT, TOP
    out = [f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>',
           f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>']
    v = 0.0
    while v <= y_max + 1e-9:
        y = y0 - (y0 - y1) * v / y_max
        out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
        v += y_step
    out.append(f'<text x="{(x0 + x1) / 2}" y="{H - 20}" text-anchor="middle">{x_label}</text>')
    out.append(f'<text transform="translate(18 {(y0 + y1) / 2}) rotate(-90)" '
               f'text-anchor="middle">{y_label}</text>')
    return "\n".join(out) + "\n"


def legend(entries, dashed=()):
    out = []
    for i, (label, color) in enumerate(entries):
        y = TOP + 10 + 20 * i
        x = W - RIGHT + 15
        dash = ' stroke-dasharray="5 3"' if label in dashed else ""
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{color}" '
                   f'stroke-width="3"{dash}/>')
        out.append(f'<text x="{x + 28}" y="{y + 4}">{label}</text>')
    return "\n".join(out) + "\n"


def scaling():
    every = rows(SCALING_CSV)
    data = [r for r in every if r["row"] == "contactdb"]
    floor = [r for r in every if r["row"] == "redb_floor"]
    sizes = sorted({int(r["contacts_before"]) for r in data})
    batches = sorted({int(r["batch"]) for r in data})
    y_max = math.ceil(max(float(r["us_per_record"]) for r in every) / 10) * 10
    lo, hi = math.log10(sizes[0]), math.log10(sizes[-1])

    def x_of(n):
        return LEFT + (W - RIGHT - LEFT) * (math.log10(n) - lo) / (hi - lo)

    def y_of(v):
        return (H - BOTTOM) - (H - BOTTOM - TOP) * v / y_max

    body = axes("contacts in the file before the upsert (log scale)",
                "µs per upserted record", y_max, 10)
    for n in sizes:
        body += (f'<text x="{x_of(n):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">'
                 f"{n:,}</text>\n")
    entries = []
    for i, b in enumerate(batches):
        color = COLORS[i % len(COLORS)]
        pts = sorted((int(r["contacts_before"]), float(r["us_per_record"]))
                     for r in data if int(r["batch"]) == b)
        path = " ".join(f"{x_of(n):.1f},{y_of(v):.1f}" for n, v in pts)
        body += f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2.5"/>\n'
        for j, (n, v) in enumerate(pts):
            # Values beside their point: the last one to its left; the others above
            # it, but below it on the lowest line (the lines meet in the middle).
            last = j == len(pts) - 1
            below = i == len(batches) - 1
            tx, ty, anchor = ((x_of(n) - 8, y_of(v) - 6, "end") if last
                              else (x_of(n) + 6, y_of(v) + (15 if below else -8), "start"))
            body += (f'<circle cx="{x_of(n):.1f}" cy="{y_of(v):.1f}" r="4" fill="{color}"/>\n'
                     f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="10" '
                     f'text-anchor="{anchor}">{v:.1f}</text>\n')
        ratio = pts[-1][1] / pts[0][1]
        entries.append((f"batches of {b:,} ({ratio:.2f}×)", color))
        # Plain redb, the same batches: dashed, unlabelled points.
        fpts = sorted((int(r["contacts_before"]), float(r["us_per_record"]))
                      for r in floor if int(r["batch"]) == b)
        if fpts:
            path = " ".join(f"{x_of(n):.1f},{y_of(v):.1f}" for n, v in fpts)
            body += (f'<polyline points="{path}" fill="none" stroke="{color}" '
                     f'stroke-width="1.5" stroke-dasharray="6 4"/>\n')
    body += legend(entries)
    if floor:
        ratios = ", ".join(
            f"{fp[-1][1] / fp[0][1]:.2f}×" for fp in (
                sorted((int(r["contacts_before"]), float(r["us_per_record"]))
                       for r in floor if int(r["batch"]) == b) for b in batches))
        body += (f'<text x="{W - RIGHT + 15}" y="{TOP + 10 + 20 * len(batches) + 44}" '
                 f'font-size="10" fill="#444">dashed: plain redb</text>\n'
                 f'<text x="{W - RIGHT + 15}" y="{TOP + 10 + 20 * len(batches) + 58}" '
                 f'font-size="10" fill="#444">({ratios})</text>\n')
    body += (f'<text x="{W - RIGHT + 15}" y="{TOP + 10 + 20 * len(batches) + 10}" '
             f'font-size="10" fill="#444">(×: cost at {sizes[-1]:,}</text>\n'
             f'<text x="{W - RIGHT + 15}" y="{TOP + 10 + 20 * len(batches) + 24}" '
             f'font-size="10" fill="#444">over cost at {sizes[0]:,})</text>\n')
    return svg("Per-record upsert cost as the table grows", SCALING_CSV, body)


def peers():
    data = rows(PEERS_CSV)
    labels = {"sqlite_bulk": "sqlite-bulk", "sqlite3_shell": "sqlite3 shell",
              "contactdb": "contactdb (library)", "contactdb_cli": "contactdb import"}
    order = [r for r in labels if any(d["row"] == r for d in data)]
    secs = {(d["row"], d["phase"]): float(d["seconds"]) for d in data}
    y_max = math.ceil(max(secs.values()) / 5) * 5
    phases = ["load", "upsert"]
    body = axes("", "seconds (lower is faster)", y_max, 5)
    group_w = (W - RIGHT - LEFT) / len(phases)
    bar_w = group_w * 0.8 / len(order)
    entries = []
    for pi, phase in enumerate(phases):
        gx = LEFT + group_w * pi + group_w * 0.1
        body += (f'<text x="{LEFT + group_w * (pi + 0.5):.1f}" y="{H - BOTTOM + 18}" '
                 f'text-anchor="middle">{phase} of 1,000,000 records</text>\n')
        for ri, row in enumerate(order):
            v = secs.get((row, phase))
            if v is None:
                continue
            color = COLORS[ri % len(COLORS)]
            h = (H - BOTTOM - TOP) * v / y_max
            x = gx + bar_w * ri
            body += (f'<rect x="{x:.1f}" y="{H - BOTTOM - h:.1f}" width="{bar_w - 2:.1f}" '
                     f'height="{h:.1f}" fill="{color}"/>\n'
                     f'<text x="{x + (bar_w - 2) / 2:.1f}" y="{H - BOTTOM - h - 4:.1f}" '
                     f'text-anchor="middle" font-size="10">{v:.1f}</text>\n')
    for ri, row in enumerate(order):
        entries.append((labels[row], COLORS[ri % len(COLORS)]))
    body += legend(entries)
    return svg("1,000,000 contacts: load, then upsert (half updates)", PEERS_CSV, body)


def cache_budget():
    data = [d for d in rows(CACHE_CSV) if d["row"] != "contactdb"]
    labels = {"sqlite_bulk": "sqlite-bulk", "contactdb_cli": "contactdb import",
              "redb_floor_txn": "plain redb, one txn"}
    caches = sorted({int(d["cache_mib"]) for d in data})
    y_max = math.ceil(max(float(d["seconds"]) for d in data) / 5) * 5
    lo, hi = math.log2(caches[0]), math.log2(caches[-1])

    def x_of(c):
        return LEFT + 30 + (W - RIGHT - LEFT - 60) * (math.log2(c) - lo) / (hi - lo)

    def y_of(v):
        return (H - BOTTOM) - (H - BOTTOM - TOP) * v / y_max

    body = axes("page cache of every row, MiB (log scale)", "seconds (lower is faster)",
                y_max, 5)
    for c in caches:
        body += (f'<text x="{x_of(c):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">'
                 f"{c:,}</text>\n")
    entries, dashed = [], []
    for ri, row in enumerate(labels):
        color = COLORS[ri % len(COLORS)]
        for phase in ["upsert", "load"]:
            pts = sorted((int(d["cache_mib"]), float(d["seconds"]))
                         for d in data if d["row"] == row and d["phase"] == phase)
            if not pts:
                continue
            dash = ' stroke-dasharray="5 3"' if phase == "load" else ""
            path = " ".join(f"{x_of(c):.1f},{y_of(v):.1f}" for c, v in pts)
            body += (f'<polyline points="{path}" fill="none" stroke="{color}" '
                     f'stroke-width="2.5"{dash}/>\n')
            for c, v in pts:
                body += (f'<circle cx="{x_of(c):.1f}" cy="{y_of(v):.1f}" r="3.5" '
                         f'fill="{color}"/>\n')
            label = f"{labels[row]}, {phase}"
            entries.append((label, color))
            if phase == "load":
                dashed.append(label)
    body += legend(entries, dashed)
    return svg("1,000,000 contacts: seconds by cache budget", CACHE_CSV, body)


def main():
    (OUT / "scaling.svg").write_text(scaling())
    (OUT / "peers-1m.svg").write_text(peers())
    (OUT / "cache-budget.svg").write_text(cache_budget())


if __name__ == "__main__":
    main()
