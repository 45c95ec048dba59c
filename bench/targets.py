#!/usr/bin/env python3
"""The benchmark's targets, as ratios, from one run's rows.

Usage: targets.py results.tsv   (the harness's rows, several calls merged)

Prints two Markdown tables, medians over rounds as the harness's summary
shows them:
- every variant of ours and the yardstick against nginx in the same run:
  req/s at 16 connections and at 1 (at least 1.0x nginx's), CPU per message
  per tier (at most 1.0x), p99 at 16 connections (at most 1.0x), messages
  lost (0);
- what ships (musl, a Service name through the cluster DNS) against the same
  build with an IP literal: req/s at 16 connections and relay CPU per
  message within 10 %.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)

import csv
import statistics
import sys
from collections import defaultdict

SHIPPED, LITERAL = "three-tier-musl-svc", "three-tier-musl"
TARGETS = [
    # (label, metric, direction, bound): ratio must be >= bound ("min") or <= bound ("max")
    ("req/s at 16 connections", "tput_rps", "min", 1.0),
    ("req/s at 1 connection", "lat_rps", "min", 1.0),
    ("CPU per message, relay", "tput_cpu_us_per_msg_relay", "max", 1.0),
    ("CPU per message, sink", "tput_cpu_us_per_msg_sink", "max", 1.0),
    ("p99 at 16 connections", "tput_p99_ms", "max", 1.0),
]
DEPLOYED = [
    ("req/s at 16 connections", "tput_rps", "min", 0.9),
    ("CPU per message, relay", "tput_cpu_us_per_msg_relay", "max", 1.1),
]
LOST = ("tput_lost_relay_to_sink", "tput_ok_not_in_sink", "lat_lost_relay_to_sink", "lat_ok_not_in_sink")


def read(path):
    values = defaultdict(lambda: defaultdict(list))
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                values[row["variant"]][row["metric"]].append(float(row["value"]))
            except ValueError:
                pass
    return values


def cell(values, variant, base, metric, direction, bound):
    xs, bs = values[variant].get(metric), values[base].get(metric)
    if not xs or not bs or not statistics.median(bs):
        return "n/a"
    ratio = statistics.median(xs) / statistics.median(bs)
    met = ratio >= bound if direction == "min" else ratio <= bound
    return f"{ratio:.2f}x ({'met' if met else 'missed'})"


def table(values, rows, variants, base):
    print("| target | " + " | ".join(variants) + " |")
    print("|---|" + "---|" * len(variants))
    for label, metric, direction, bound in rows:
        sign = ">=" if direction == "min" else "<="
        cells = [cell(values, v, base, metric, direction, bound) for v in variants]
        print(f"| {label}, {sign} {bound}x {base} | " + " | ".join(cells) + " |")


def main():
    values = read(sys.argv[1])
    ours = [v for v in values if v.startswith("three-tier")] + [v for v in values if v == "yardstick"]
    print("Targets (ratio to nginx, medians of this run):")
    print()
    table(values, TARGETS, ours, "nginx")
    lost = []
    for variant in ours:
        total = sum(sum(values[variant].get(m, [])) for m in LOST)
        lost.append(f"{total:.0f} ({'met' if total == 0 else 'missed'})")
    print("| messages lost, 0 | " + " | ".join(lost) + " |")
    if SHIPPED in values and LITERAL in values:
        print()
        print(f"Run as deployed ({SHIPPED} against {LITERAL}: a Service name through the cluster DNS against an IP literal):")
        print()
        table(values, DEPLOYED, [SHIPPED], LITERAL)


if __name__ == "__main__":
    main()
