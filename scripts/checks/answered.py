"""Counts the messages a sender's JSON log (LOG_FORMAT=json) saw answered 2xx, and checks the count.

Usage: python3 scripts/checks/answered.py N < SENDER.log

A message answered is a `lineage` event with a 2xx status: the sender logs
one when a reply came back through a relay from a sink. Exits 1, naming the
count, unless there are exactly N (lines that are not JSON, such as a
container runtime's own, are skipped).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json


def answered(lines):
    count = 0
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "lineage" and 200 <= (event.get("status") or 0) < 300:
            count += 1
    return count


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python3 scripts/checks/answered.py N < SENDER.log")
    want, got = int(sys.argv[1]), answered(sys.stdin)
    if got != want:
        sys.exit(f"answered.py: {got} of {want} messages answered 2xx through a relay and a sink")
    print(f"answered.py: {got} of {want} messages answered 2xx through a relay and a sink")


if __name__ == "__main__":
    main()
