#!/usr/bin/env python3
"""bench/overload.sh's table, from wrk's output for -c512 (relay) and -c1100 (sink).

Usage: overload.py c512.txt c1100.txt sink-before.prom sink-after.prom
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)

import re
import sys


def parse(path):
    text = open(path).read()
    total = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not total:
        sys.exit(f"overload: no wrk summary in {path}:\n{text}")
    connect, read, write, timeout = (int(x) for x in errors.groups()) if errors else (0, 0, 0, 0)
    return {
        "total": int(total[1]),
        "non2xx": int(non2xx[1]) if non2xx else 0,
        "read": read,
        "other": connect + write + timeout,
        "rps": float(rps[1]) if rps else 0.0,
    }


def closed(path, reason):
    """The sink's three_tier_connections_closed_total{reason} in a /metrics file."""
    series = f'three_tier_connections_closed_total{{reason="{reason}"}} '
    for line in open(path):
        if line.startswith(series):
            return int(float(line[len(series):]))
    sys.exit(f"overload: no {series.strip()} in {path}")


def main():
    rows = [("wrk -c512 through relay and sink", parse(sys.argv[1]), None),
            ("wrk -c1100 against the sink (MAX_CONNECTIONS=1024)", parse(sys.argv[2]),
             {r: closed(sys.argv[4], r) - closed(sys.argv[3], r) for r in ("evicted", "refused")})]
    print("| load | requests | req/s | non-2xx | shed | read errors | other socket errors | sink: evicted (had sent nothing) / refused 503 |")
    print("|---|---|---|---|---|---|---|---|")
    for label, r, sink in rows:
        shed = 100.0 * r["non2xx"] / r["total"] if r["total"] else 0.0
        counts = f"{sink['evicted']:,} / {sink['refused']:,}" if sink else ""
        print(f"| {label} | {r['total']:,} | {r['rps']:,.0f} | {r['non2xx']:,} | {shed:.2f} % | {r['read']} | {r['other']} | {counts} |")


if __name__ == "__main__":
    main()
