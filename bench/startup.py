"""Time from exec to the `listening on` line, for each tier binary (release build).

Usage: python3 bench/startup.py [RUNS]   (default 30; run `cargo build --release` first)

Prints the median and minimum over RUNS starts. This is the process's own
start-up, without the benchmark harness's shell wrappers and 2 ms polling that
its "cold start to first 2xx" includes.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import topology  # noqa: E402  (the one launcher of tiers)

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
env = dict(os.environ, LISTEN_ADDR="127.0.0.1:0", DRAIN_DELAY="0", SINK_URL="127.0.0.1:9/", RELAY_URL="127.0.0.1:9/",
           SEND_INTERVAL="1m", SEND_RETRIES="0")
print("| binary | exec to `listening on`, median ms | min ms |")
print("|---|---|---|")
for tier in ("sink", "relay", "sender"):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        process = topology.TierProcess(tier, [f"target/release/{tier}"], env, output="read")
        listens = process.wait_listening()
        times.append((time.perf_counter() - started) * 1000)
        process.stop()
        if not listens:
            sys.exit(f"{tier} did not say it listens: {process.status()}; {process.last_line}")
    print(f"| {tier} | {statistics.median(times):.2f} | {min(times):.2f} |")
