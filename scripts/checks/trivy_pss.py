"""Reads trivy's reports: prod fails no Pod Security "restricted" control; lab fails only its hostPath.

Usage: python3 scripts/checks/trivy_pss.py DIR [NAME], where DIR holds pss-<overlay>.json
(`trivy config --compliance k8s-pss-restricted-0.1`) and plain-<overlay>.json
(`trivy config`) for prod and lab. The plain report proves something was scanned.
With NAME, only NAME's reports are read, and it must fail no control, as prod.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import os
import sys


def failing(out, name):
    report = json.load(open(os.path.join(out, f"pss-{name}.json")))
    return sorted({c["Name"] for c in report["Results"] if c.get("Results")})


def scanned(out, name):
    report = json.load(open(os.path.join(out, f"plain-{name}.json")))
    return sum(
        r.get("MisconfSummary", {}).get("Successes", 0) + r.get("MisconfSummary", {}).get("Failures", 0)
        for r in report.get("Results", [])
    )


def restricted(out, name):
    if scanned(out, name) == 0:
        sys.exit(f"trivy scanned nothing in {name}")
    if failing(out, name):
        sys.exit(f"{name} fails restricted controls: {failing(out, name)}")
    print(f"{name}: 0 of 17 restricted controls fail ({scanned(out, name)} checks evaluated)")


def main(out, name=None):
    if name:
        return restricted(out, name)
    if scanned(out, "prod") == 0:
        sys.exit("trivy scanned nothing in prod")
    if failing(out, "prod"):
        sys.exit(f"prod fails restricted controls: {failing(out, 'prod')}")
    # The scan is real: lab's hostPath volume, its one departure, is caught.
    if failing(out, "lab") != ["HostPath Volumes"]:
        sys.exit(f"expected lab to fail only 'HostPath Volumes', got {failing(out, 'lab')}")
    print(f"prod: 0 of 17 restricted controls fail ({scanned(out, 'prod')} checks evaluated); lab fails only HostPath Volumes, as documented")


if __name__ == "__main__":
    main(*sys.argv[1:3])
