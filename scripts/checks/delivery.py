"""Checks delivery from the tiers' logs, through `sink --loss-report --json` (the one reader of the record).

Usage:
  python3 scripts/checks/delivery.py --sink BIN --senders N --each M
      [--min-sinks K] [--min-relays K] FILE ...

FILE: the sinks' LOG_DIR files (Sink_<ip>.txt), the relays' (Relay_<ip>.txt),
or saved stdout of sinks and relays. Passes when exactly N senders each had
messages 1..M logged by the sinks exactly once (no gaps, no duplicates, no
damaged line), at least K inputs held sink records and at least K relay
records. Prints one line saying so; exits 1 naming what is wrong otherwise.
"""
import argparse
import json
import subprocess
import sys


def report(sink, files):
    run = subprocess.run([sink, "--loss-report", "--json", *files], capture_output=True, text=True, timeout=60)
    if run.returncode not in (0, 1):
        sys.exit(f"delivery: sink --loss-report failed ({run.returncode}): {run.stderr.strip()}")
    return json.loads(run.stdout)


def tally(data):
    """The report's totals over every sender: (received, duplicates, missing, damaged lines), and as one line."""
    senders = data["senders"].values()
    counts = (sum(t["received"] for t in senders), sum(len(t["duplicates"]) for t in senders),
              sum(t["gaps"] for t in senders), len(data["damaged"]))
    line = "{} sender(s), received {}, duplicates {}, missing {}, damaged lines {}".format(len(senders), *counts)
    return counts, line


def problems(data, senders, each, min_sinks, min_relays):
    found = []
    tallies = data["senders"]
    if len(tallies) != senders:
        found.append(f"expected {senders} senders in the sink records, found {sorted(tallies)}")
    for sender, t in sorted(tallies.items()):
        if (t["received"], t["highest"], t["duplicates"], t["gaps"]) != (each, each, [], 0):
            found.append(f"sender {sender}: {t}, expected messages 1..{each} once each")
    if data["damaged"]:
        found.append(f"damaged lines: {data['damaged'][:5]}")
    if data["untracked"] or data["foreign"]:
        found.append(f"{data['untracked'] + data['foreign']} record(s) with ids no sender made")
    sinks = sum(1 for s in data["sources"].values() if s["sink_records"])
    relays = sum(1 for s in data["sources"].values() if s["relay_records"])
    if sinks < min_sinks:
        found.append(f"only {sinks} input(s) hold sink records, expected at least {min_sinks}")
    if relays < min_relays:
        found.append(f"only {relays} input(s) hold relay records, expected at least {min_relays}")
    return found, sinks, relays


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--sink", required=True, help="the sink binary")
    args.add_argument("--senders", type=int, required=True)
    args.add_argument("--each", type=int, required=True)
    args.add_argument("--min-sinks", type=int, default=1)
    args.add_argument("--min-relays", type=int, default=0)
    args.add_argument("files", nargs="+")
    a = args.parse_args()
    data = report(a.sink, a.files)
    found, sinks, relays = problems(data, a.senders, a.each, a.min_sinks, a.min_relays)
    if found:
        print(json.dumps(data, indent=1), file=sys.stderr)
        sys.exit("delivery: " + "; ".join(found))
    total = a.senders * a.each
    print(f"delivery: {total} of {total} messages logged once, by {sinks} sinks, through {relays} relays")


if __name__ == "__main__":
    main()
