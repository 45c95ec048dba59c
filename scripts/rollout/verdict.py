"""Judges rehearsal outcomes (the JSON rehearsal.py writes).

Usage:
  python3 scripts/rollout/verdict.py clean OUTCOME.json     # nothing lost or failed, every sender exited 0
  python3 scripts/rollout/verdict.py trouble OUTCOME.json   # something was retried, failed or lost
Either way the versions must show the rollout: every delivered message named
one known version per tier, old and new both carried traffic, and each
sender's last messages all went through new pods.
  python3 scripts/rollout/verdict.py compare DEFAULTS.json NO_DRAIN_DELAY.json
                                     # the defaults did better than DRAIN_DELAY=0
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import sys


def rows(path):
    return json.load(open(path))["rows"]


def judge(expect, path):
    outcome = json.load(open(path))
    r = outcome["rows"]
    lost = sum(x["lost"] for x in r)
    failed = sum(x["failed"] for x in r)
    retried = sum(x["retried"] for x in r)
    bad_exit = [x["client"] for x in r if x["exit"] not in (None, 0)]
    print(
        f"rollout took {outcome['rollout_seconds']} s: lost {lost}, failed after retries {failed}, "
        f"attempts retried {retried}, senders exiting non-zero {len(bad_exit)}"
    )
    versions(outcome["versions"])
    if expect == "clean" and (lost or failed or bad_exit):
        sys.exit("rollout-rehearsal: messages were lost or failed")
    if expect == "trouble" and not (retried or failed or lost):
        sys.exit("rollout-rehearsal: DRAIN_DELAY=0 showed no trouble, so the drain delay made no difference")


def versions(v):
    counts, unknown, last_old = v["counts"], v["unknown"], v["last_old"]
    print(f"versions of the {v['seen']} delivered messages read from /flow ({len(v['failed_reads'])} failed reads): "
          f"relays {counts['relay']}, sinks {counts['sink']}; "
          f"{v['last_checked'] - len(last_old)} of the senders' last {v['last_checked']} through new pods only")
    if unknown:
        sys.exit(f"rollout-rehearsal: {len(unknown)} delivered messages named no known version, such as {unknown[:3]}")
    if not v["last_checked"] or last_old:
        sys.exit(f"rollout-rehearsal: the last messages went through old pods: {last_old[:5]}")
    if any(len(counts[tier]) != 2 for tier in ("relay", "sink")):
        sys.exit(f"rollout-rehearsal: traffic did not move from the old version to the new: {counts}")


def compare(defaults, no_drain):
    ra, rb = (sum(x["retried"] + x["failed"] for x in rows(p)) for p in (defaults, no_drain))
    if ra >= rb:
        sys.exit(f"rollout-rehearsal: the defaults ({ra} retried or failed) did no better than DRAIN_DELAY=0 ({rb})")
    print(f"rollout-rehearsal: the drain delay makes the difference: {ra} retried or failed attempts with it, {rb} without")


if __name__ == "__main__":
    if sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        judge(sys.argv[1], sys.argv[2])
