#!/usr/bin/env python3
"""Where each tier's CPU goes per message: user and system time, voluntary and involuntary context switches.

Usage: split.py [--duration SECONDS] [--rounds N] [--out FILE] VARIANT...
  VARIANT: nginx, or LABEL=RELAY_CMD|SINK_CMD[|SINK_COUNT_CMD] (a custom
  variant of the harness, as its CUSTOM_RELAY_CMD, CUSTOM_SINK_CMD and
  CUSTOM_SINK_COUNT_CMD take them)
  (bench/run.sh calls this inside its namespace; run from the repository)

For each variant in turn, ROUNDS times: the harness (../shared/baseline,
its lib/common.sh) starts the variant's sink and relay, wrk posts through
the relay (2 threads, 16 connections, as bench/run.sh's throughput rounds)
for DURATION seconds, and this reads every process of each tier from /proc
twice while wrk still runs, after the first fifth of the run and before
its last fifth: user and system CPU time (/proc/PID/stat) and the context
switches of every thread (/proc/PID/task/*/status), so that threads are
counted while their connections are open. The differences are divided by
the messages the sink logged between the two readings. Prints a Markdown
table of medians over rounds.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)

import argparse
import os
import statistics
import subprocess
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.abspath(os.environ.get("BASELINE", os.path.join(ROOT, "../shared/baseline")))
TICK = os.sysconf("SC_CLK_TCK")
FIELDS = ["user_us", "system_us", "voluntary", "involuntary"]


def harness(variant, env, script):
    """Runs `script` in bash with the harness's functions and `variant` set up; returns its stdout."""
    prelude = f'. "{BASELINE}/lib/common.sh" && variant_setup {variant} && '
    done = subprocess.run(["bash", "-c", prelude + script], env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        sys.exit(f"split: the harness failed at `{script}`:\n{done.stderr}")
    return done.stdout


def variant_env(spec):
    """(label, harness variant, environment) for a VARIANT argument."""
    if spec == "nginx":
        return "nginx", "nginx", dict(os.environ)
    label, _, commands = spec.partition("=")
    relay, _, sink = commands.partition("|")
    sink, _, count = sink.partition("|")
    if not (label and relay and sink):
        sys.exit(f"split: VARIANT {spec!r} is neither nginx nor LABEL=RELAY_CMD|SINK_CMD[|SINK_COUNT_CMD]")
    env = dict(os.environ, CUSTOM_LABEL=label, CUSTOM_RELAY_CMD=relay, CUSTOM_SINK_CMD=sink)
    env.pop("CUSTOM_SINK_COUNT_CMD", None)
    if count:
        env["CUSTOM_SINK_COUNT_CMD"] = count
    return label, "custom", env


def reading(pids):
    """The CPU time and context switches of the processes `pids`, all their threads."""
    total = dict.fromkeys(FIELDS, 0)
    for pid in pids:
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total["user_us"] += int(stat[11]) * 1_000_000 // TICK
            total["system_us"] += int(stat[12]) * 1_000_000 // TICK
            for task in os.listdir(f"/proc/{pid}/task"):
                for line in open(f"/proc/{pid}/task/{task}/status"):
                    name, _, value = line.partition(":")
                    if name == "voluntary_ctxt_switches":
                        total["voluntary"] += int(value)
                    elif name == "nonvoluntary_ctxt_switches":
                        total["involuntary"] += int(value)
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread or process that ended between listing and reading
    return total


def snapshot(variant, env):
    """{tier: reading} and the sink's count of logged messages."""
    out = harness(
        variant,
        env,
        'for t in relay sink; do tier_vars $t; echo "$t $("${T_IMPL}_pids" | tr "\\n" " ")"; done;'
        ' tier_vars sink; echo "count $("${T_IMPL}_count")"',
    )
    tiers, count = {}, None
    for line in out.splitlines():
        name, _, rest = line.partition(" ")
        if name == "count":
            count = int(rest)
        else:
            tiers[name] = reading(rest.split())
    return tiers, count


def wait_answering(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, data=b"split: ready?", headers={"Content-Type": "text/plain"})
            with urllib.request.urlopen(request, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"split: {url} did not answer 200 within {seconds} s")


def one_round(variant, env, duration):
    """Per-message figures of each tier for one run of wrk."""
    url = harness(variant, env, "tier_do stop relay; tier_do stop sink; tier_do start sink && tier_do start relay && echo $RELAY_URL").split()[-1]
    try:
        wait_answering(url)
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c16", f"-d{duration:g}s", "-s", f"{BASELINE}/wrk/post.lua", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        # The two readings: a fifth of the run in, and a fifth before its end.
        time.sleep(duration / 5)
        before, first = snapshot(variant, env)
        time.sleep(max(0.0, started + duration * 4 / 5 - time.monotonic()))
        after, last = snapshot(variant, env)
        wrk.wait(timeout=duration + 30)
    finally:
        harness(variant, env, "tier_do stop relay; tier_do stop sink")
    messages = last - first
    if messages <= 0:
        sys.exit(f"split: {variant}: no message logged between the readings")
    return {
        (tier, field): (after[tier][field] - before[tier][field]) / messages
        for tier in ("relay", "sink")
        for field in FIELDS
    }


def table(results):
    lines = [
        "| variant | relay user µs | relay system µs | relay voluntary cs | relay involuntary cs "
        "| sink user µs | sink system µs | sink voluntary cs | sink involuntary cs |",
        "|---" * 9 + "|",
    ]
    for label, rounds in results.items():
        cells = []
        for tier in ("relay", "sink"):
            for field in FIELDS:
                median = statistics.median(r[(tier, field)] for r in rounds)
                cells.append(f"{median:.1f}" if field.endswith("_us") else f"{median:.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out")
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    specs = [variant_env(v) for v in args.variants]
    results = {label: [] for label, _, _ in specs}
    for _ in range(args.rounds):  # variants interleaved, as the harness does
        for label, variant, env in specs:
            results[label].append(one_round(variant, env, args.duration))
    text = (
        "Per message, medians of "
        f"{args.rounds} rounds of wrk -t2 -c16 for {args.duration:g} s (`bench/split.py`): "
        "CPU time in user space and in the kernel, and context switches, of each tier's "
        "processes and threads, read while the connections were open:\n\n" + table(results)
    )
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
