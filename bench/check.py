#!/usr/bin/env python3
"""The benchmark run's own checks: every variant measured, no delivery MISMATCH, nothing lost.

Usage: check.py results.tsv report.md VARIANT...   (the harness's rows, merged; the report written)

Exits 1, naming what failed, if a variant is missing or extra, the harness
reported a MISMATCH, or any variant lost a message (relay log lines not in the
sink's log, or 2xx answers the sink did not log).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)

import csv
import sys

LOST = ("lost_relay_to_sink", "ok_not_in_sink")


def main():
    tsv, report, want = sys.argv[1], sys.argv[2], set(sys.argv[3:])
    rows = list(csv.DictReader(open(tsv), delimiter="\t"))
    variants = {r["variant"] for r in rows}
    if variants != want:
        sys.exit(f"bench: measured {sorted(variants)}, expected {sorted(want)}")
    if "MISMATCH" in open(report).read():
        sys.exit("bench: the harness reported a delivery MISMATCH")
    lost = [(r["variant"], r["metric"], r["value"]) for r in rows
            if r["metric"].endswith(LOST) and float(r["value"] or 0) != 0]
    if lost:
        sys.exit(f"bench: messages lost: {lost}")
    print(f"bench: {len(rows)} measurements over {len(variants)} variants, 0 lost")


if __name__ == "__main__":
    main()
