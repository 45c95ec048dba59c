"""Reads a `checkov --output json` report: fails on any failed check, or if nothing was scanned.

Usage: python3 scripts/checks/checkov_report.py REPORT.json OVERLAY
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import sys


def main(path, overlay):
    data = json.load(open(path))
    reports = data if isinstance(data, list) else [data]
    summary = {k: sum(r.get("summary", {}).get(k, 0) for r in reports) for k in ("passed", "failed", "skipped")}
    failed = [f"{c['check_id']} {c['resource']}" for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    if summary["passed"] == 0:
        sys.exit(f"checkov scanned nothing in {overlay}")
    if failed:
        sys.exit(f"checkov failures in {overlay}: {failed}")
    print(f"{overlay}: {summary['passed']} passed, 0 failed, {summary['skipped']} skipped (suppressed in the manifests, with reasons)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
