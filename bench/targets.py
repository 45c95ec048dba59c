#!/usr/bin/env python3
"""The one-thread-per-message issue's targets, as ratios to nginx in the same run.

Usage: targets.py results.tsv   (the harness's rows, several calls merged)

Prints a Markdown table: for each of our variants, req/s at 16 connections and
at 1 (at least 0.75x nginx's), CPU per message per tier (at most 1.5x), p99 at
16 connections (at most 1.2x), and messages lost (0). Medians over rounds, as
the harness's summary shows them.
"""

import csv
import statistics
import sys
from collections import defaultdict

TARGETS = [
    # (label, metric, direction, bound): ours / nginx must be >= bound ("min") or <= bound ("max")
    ("req/s at 16 connections", "tput_rps", "min", 0.75),
    ("req/s at 1 connection", "lat_rps", "min", 0.75),
    ("CPU per message, relay", "tput_cpu_us_per_msg_relay", "max", 1.5),
    ("CPU per message, sink", "tput_cpu_us_per_msg_sink", "max", 1.5),
    ("p99 at 16 connections", "tput_p99_ms", "max", 1.2),
]
LOST = ("tput_lost_relay_to_sink", "tput_ok_not_in_sink", "lat_lost_relay_to_sink", "lat_ok_not_in_sink")


def main():
    values = defaultdict(lambda: defaultdict(list))
    with open(sys.argv[1]) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                values[row["variant"]][row["metric"]].append(float(row["value"]))
            except ValueError:
                pass

    def median(variant, metric):
        xs = values[variant].get(metric)
        return statistics.median(xs) if xs else None

    ours = [v for v in values if v.startswith("three-tier")]
    print("Targets (ours / nginx, medians of this run):")
    print()
    print("| target | " + " | ".join(ours) + " |")
    print("|---|" + "---|" * len(ours))
    for label, metric, direction, bound in TARGETS:
        cells = []
        for variant in ours:
            a, b = median(variant, metric), median("nginx", metric)
            if a is None or not b:
                cells.append("n/a")
                continue
            ratio = a / b
            met = ratio >= bound if direction == "min" else ratio <= bound
            cells.append(f"{ratio:.2f}x ({'met' if met else 'missed'})")
        sign = ">=" if direction == "min" else "<="
        print(f"| {label}, {sign} {bound}x nginx | " + " | ".join(cells) + " |")
    lost = []
    for variant in ours:
        total = sum(sum(values[variant].get(m, [])) for m in LOST)
        lost.append(f"{total:.0f} ({'met' if total == 0 else 'missed'})")
    print("| messages lost, 0 | " + " | ".join(lost) + " |")


if __name__ == "__main__":
    main()
