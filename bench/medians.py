#!/usr/bin/env python3
"""Medians of the `row:` lines of bench/resources.py, per setting.

Usage: medians.py rows.txt

Each input line is `<setting> <req/s> <relay us/message> <sink us/message>`,
one per run, with the runs of different settings interleaved. Prints one line
per setting, in the order first seen: the setting, then the medians as the
README's tables show them (req/s with thousands separators, microseconds
rounded), separated by tabs. bench/reuse.sh and bench/fsync.sh turn them into
Markdown rows.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)

import statistics
import sys

rows = {}
with open(sys.argv[1]) as f:
    for line in f:
        setting, rps, relay, sink = line.split()
        rows.setdefault(setting, []).append((float(rps), float(relay), float(sink)))
for setting, runs in rows.items():
    rps, relay, sink = (statistics.median(column) for column in zip(*runs))
    print(f"{setting}\t{rps:,.0f}\t{relay:.0f}\t{sink:.0f}")
