"""Prints README.md's benchmark table from a results file of bench/run.sh.

Usage: python3 bench/headline.py bench/results/<date>.md

The rows that matter to an operator (throughput, latency, CPU and memory per
tier, cold start) for the seed's Apache, nginx, what ships
(three-tier-musl-svc) and the yardstick, then the shipped build's targets,
then (runs since 2026-12-06) where the CPU goes: user and system time and
context switches per message (bench/split.py).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import re
import sys

COLUMNS = ["apache", "nginx", "three-tier-musl-svc", "yardstick"]
ROWS = [
    "throughput, req/s (wrk -c CONNS)",
    "  latency p99 under load, ms",
    "single connection, req/s (-c1)",
    "CPU per message under load, relay, µs",
    "CPU per message under load, sink, µs",
    "peak RSS relay under load, MiB",
    "idle RSS relay, MiB (sum VmRSS)",
    "cold start both tiers, ms",
]


def tables(text):
    """Every markdown table in `text`, as a list of rows of cells."""
    found, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not set(line) <= set("|-: "):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def median(cell):
    return cell.split(" (")[0]


def main(path):
    text = open(path).read()
    all_tables = tables(text)
    results = next(t for t in all_tables if t[0][0] == "metric")
    header = results[0]
    col = [header.index(c) for c in COLUMNS]
    print("| metric (median of the run) | " + " | ".join(COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    conns = re.search(r"\bCONNS=(\d+)", text)
    for row in results[1:]:
        if row[0] in [r.strip() for r in ROWS] or row[0] in ROWS:
            name = row[0].strip()
            if conns:  # the run's own number of connections, not the harness's knob
                name = name.replace("-c CONNS", f"-c{conns[1]}")
            print(f"| {name} | " + " | ".join(median(row[i]) for i in col) + " |")
    targets = next(t for t in all_tables if t[0][0] == "target" and "three-tier-musl-svc" in t[0])
    i = targets[0].index("three-tier-musl-svc")
    print()
    print("| target, for what ships | three-tier-musl-svc |")
    print("|---|---|")
    for row in targets[1:]:
        print(f"| {row[0]} | {row[i]} |")
    split = [t for t in all_tables if t[0][0] == "variant" and "relay user µs" in t[0]]
    if split:  # bench/split.py's table, in runs since 2026-12-06
        print()
        print("| per message, medians | " + " | ".join(split[0][0][1:]) + " |")
        print("|---" * len(split[0][0]) + "|")
        for row in split[0][1:]:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
