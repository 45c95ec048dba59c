#!/usr/bin/env python3
"""A connection flood against the release build of each tier: memory and threads.

Opens 5,000 connections to one tier at its default settings (MAX_CONNECTIONS
1024) and holds them, asking /healthz on a fresh connection every 250. Prints
the peak RSS (VmHWM), the most threads seen and the slowest /healthz, and
exits 1 if the tier's pod could not hold it: peak RSS 48 MiB or more (the pod
limit is 64Mi), more connection threads (named http-conn) than
MAX_CONNECTIONS + 4 (4: the connections closed to make room that may still be
finishing, EVICTING_SLACK in vendor/tiny_http/src/registry.rs, which also caps
the threads), or /healthz slower than 1 s or not 200. (A thread just started
has its parent's name for a moment, and is not counted then.)

Then a burst: 1,000 connections opened at once against a freshly started
tier, and the time until /healthz on one more is answered: the accept thread
starts a thread for each of the 1,000 first. Median of 7 bursts, each against
a new process (a kept thread would make the next burst cheaper).

    python3 bench/flood.py                    # sink and relay, target/release
    python3 bench/flood.py --bin DIR sink     # binaries from DIR (e.g. the musl build)
"""

import argparse
import http.client
import os
import re
import resource
import socket
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import topology  # noqa: E402  (the one launcher of tiers)

CONNECTIONS = 5000
BURST = 1000
BURST_ROUNDS = 7
MAX_CONNECTIONS = 1024
# Read from where it is defined, not copied.
REGISTRY = os.path.join(ROOT, "vendor", "tiny_http", "src", "registry.rs")
EVICTING_SLACK = int(re.search(r"const EVICTING_SLACK: usize = (\d+);", open(REGISTRY).read())[1])
RSS_LIMIT_KB = 48 * 1024


def connection_threads(pid):
    """The process's connection threads, named http-conn."""
    names = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass  # a thread that exited while listed
    return names.count("http-conn")


def healthz(port):
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/healthz")
    code = conn.getresponse().status
    conn.close()
    return code, time.monotonic() - started


def start(binary, tier, port):
    """The tier on `port`, once it takes a connection."""
    env = {"DRAIN_DELAY": "0", "SINK_URL": "127.0.0.1:9/sink.php"} if tier == "relay" else {"DRAIN_DELAY": "0"}
    started = topology.TierProcess(tier, *topology.on_host(binary, "127.0.0.1", port, env))
    if not started.wait_connectable("127.0.0.1", port):
        started.stop(5)
        sys.exit(f"flood: {tier} did not start: {started.status()}; {started.last_line}")
    return started


def flood(binary, tier, port):
    started = start(binary, tier, port)
    pid = started.process.pid
    held, most_threads, most_conn, slowest, failures = [], 0, 0, 0.0, []
    try:
        for i in range(CONNECTIONS):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            if i % 250 == 0:
                code, took = healthz(port)
                slowest = max(slowest, took)
                if code != 200:
                    failures.append(f"/healthz answered {code} after {i} connections")
                most_threads = max(most_threads, started.proc_status("Threads"))
                most_conn = max(most_conn, connection_threads(pid))
        peak = started.proc_status("VmHWM")
    finally:
        for s in held:
            s.close()
        started.stop(30)
    if peak >= RSS_LIMIT_KB:
        failures.append(f"peak RSS {peak} kB >= {RSS_LIMIT_KB} kB")
    if most_conn > MAX_CONNECTIONS + EVICTING_SLACK:
        failures.append(f"{most_conn} connection threads > MAX_CONNECTIONS + {EVICTING_SLACK}")
    if slowest >= 1.0:
        failures.append(f"/healthz took {slowest:.3f} s")
    row = [tier, CONNECTIONS, f"{peak / 1024:.1f}", most_threads, most_conn, f"{slowest * 1000:.1f}"]
    print("| " + " | ".join(map(str, row)) + " |")
    return failures


def burst(binary, tier, port):
    took = []
    for _ in range(BURST_ROUNDS):
        started = start(binary, tier, port)
        held = []
        try:
            held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(BURST)]
            code, t = healthz(port)
            if code != 200:
                return [f"/healthz answered {code} after a burst of {BURST}"]
            took.append(t)
        finally:
            for s in held:
                s.close()
            started.stop(30)
    took.sort()
    print(f"| {tier} | {BURST} | {took[len(took) // 2] * 1000:.1f} | {took[-1] * 1000:.1f} |")
    return [f"/healthz took {took[-1]:.3f} s after a burst"] if took[-1] >= 1.0 else []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="target/release", help="folder with the tier binaries")
    parser.add_argument("tiers", nargs="*", default=["sink", "relay"])
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 20000), hard))
    print("| tier | connections held | peak RSS MiB | most threads | most connection threads | slowest /healthz ms |")
    print("|---|---|---|---|---|---|")
    failures = []
    for n, tier in enumerate(args.tiers):
        failures += [f"{tier}: {f}" for f in flood(os.path.join(args.bin, tier), tier, 18750 + n)]
    print()
    print(f"| tier | opened at once | /healthz after, median of {BURST_ROUNDS} ms | slowest ms |")
    print("|---|---|---|---|")
    for n, tier in enumerate(args.tiers):
        failures += [f"{tier}: {f}" for f in burst(os.path.join(args.bin, tier), tier, 18760 + n)]
    for f in failures:
        print(f"flood: FAIL: {f}", file=sys.stderr)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
