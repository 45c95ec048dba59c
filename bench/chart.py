"""Draws bench/run.sh's chart: req/s at 16 connections, and CPU per message per tier.

Usage: chart.py results.tsv > chart.svg (medians over rounds; plain SVG, no dependencies).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import csv
import statistics
import sys
from collections import defaultdict
from html import escape

values = defaultdict(lambda: defaultdict(list))
order = []
for row in csv.DictReader(open(sys.argv[1]), delimiter="\t"):
    if row["variant"] not in order:
        order.append(row["variant"])
    try:
        values[row["variant"]][row["metric"]].append(float(row["value"]))
    except ValueError:
        pass


def median(variant, metric):
    xs = values[variant].get(metric, [])
    return statistics.median(xs) if xs else 0.0


W, H, PAD, BAR = 760, 330, 60, 26
panels = [
    ("Throughput at 16 connections, req/s (higher is better)", [("tput_rps", "#4c78a8", "req/s")]),
    ("CPU per message under load, µs (lower is better)",
     [("tput_cpu_us_per_msg_relay", "#f58518", "relay"), ("tput_cpu_us_per_msg_sink", "#54a24b", "sink")]),
]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H * len(panels)}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H * len(panels)}" fill="white"/>']
for p, (title, series) in enumerate(panels):
    top = p * H
    out.append(f'<text x="{PAD}" y="{top + 24}" font-size="14" font-weight="bold">{escape(title)}</text>')
    peak = max([median(v, m) for v in order for m, _, _ in series] + [1.0])
    group = (W - 2 * PAD) / max(len(order), 1)
    base = top + H - 50
    height = H - 100
    for i, variant in enumerate(order):
        x0 = PAD + i * group + (group - BAR * len(series)) / 2
        for j, (metric, colour, label) in enumerate(series):
            v = median(variant, metric)
            h = height * v / peak
            x = x0 + j * BAR
            out.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{BAR - 4}" height="{h:.1f}" fill="{colour}"><title>{escape(variant)} {label}: {v:,.0f}</title></rect>')
            out.append(f'<text x="{x + (BAR - 4) / 2:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" font-size="10">{v:,.0f}</text>')
        out.append(f'<text x="{PAD + i * group + group / 2:.1f}" y="{base + 18}" text-anchor="middle">{escape(variant)}</text>')
    out.append(f'<line x1="{PAD}" y1="{base}" x2="{W - PAD}" y2="{base}" stroke="#333"/>')
    for j, (_, colour, label) in enumerate(series):
        out.append(f'<rect x="{W - PAD - 120}" y="{top + 40 + j * 16}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{W - PAD - 104}" y="{top + 49 + j * 16}">{label}</text>')
out.append("</svg>")
print("\n".join(out))
