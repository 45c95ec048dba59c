#!/usr/bin/env python3
"""What one relay and one sink use, to size the Kubernetes requests and limits.

Usage: python3 bench/resources.py   (DURATION=10s by default; run `cargo build --release` first, needs wrk)

Resident memory (VmRSS idle, VmHWM peak) and CPU time, idle and under wrk
load (2 threads, 16 connections, DURATION) through the relay, plus the
threads each tier ran; then a sender's memory once its flow page lists its
last 100 messages. Release builds on loopback, started by scripts/topology.py.

Any tier variable set in the environment reaches the tiers (LOG_DIR,
LOG_FSYNC, UPSTREAM_MAX_REQUESTS=1 for a new relay-to-sink connection per
message, ...). The last line, `row: <req/s> <relay us> <sink us>`, is for
the scripts that compare settings (bench/reuse.sh, bench/fsync.sh).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import os
import re
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import topology  # noqa: E402  (the one launcher of tiers)
from checks.polling import http  # noqa: E402

# The harness's POST of a ~60-byte text/plain message.
LUA = os.path.join(os.environ.get("BASELINE", os.path.join(ROOT, "..", "shared", "baseline")), "wrk", "post.lua")
# The flow page lists a sender's last 100 messages; at 10 ms each, 30 s is plenty.
LISTED, LIST_SECONDS = 100, 30
USER_HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """utime + stime of `pid`."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / USER_HZ


def flow_listed(addr):
    """How many messages the sender's /flow lists (0 if it cannot be read)."""
    try:
        return len(json.loads(http("GET", f"http://{addr}/flow")).get("messages", []))
    except (OSError, ValueError):
        return 0


def load(sink, relay, duration):
    """wrk through the relay; prints what each tier used and returns `(req/s, {tier: µs a message})`."""
    print(f"idle: relay VmRSS {relay.proc_status('VmRSS')} kB, sink VmRSS {sink.proc_status('VmRSS')} kB")
    before = {t.name: cpu_seconds(t.process.pid) for t in (relay, sink)}
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{duration}", "-s", LUA, f"http://{relay.addr}/relay.php"],
                         capture_output=True, text=True, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out)[1])
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)[1]
    print(f"load: {requests} messages in {duration} ({rps} req/s)")
    us = {}
    for tier in (relay, sink):
        pid = tier.process.pid
        used = cpu_seconds(pid) - before[tier.name]
        us[tier.name] = f"{used / requests * 1e6:.1f}"
        print(f"{tier.name}: peak VmHWM {tier.proc_status('VmHWM')} kB, CPU {used:.2f}s, {us[tier.name]} us per message, "
              f"{tier.proc_status('Threads')} threads after the load")
    return rps, us


def sender_memory(relay_addr, env):
    """A sender at 10 ms a message until its flow page is full; prints its memory."""
    sender, = topology.chain(["sender"], topology.BIN, dict(env, RELAY_URL=f"{relay_addr}/relay.php",
                                                            SEND_INTERVAL="10ms"))
    try:
        until, listed = time.monotonic() + LIST_SECONDS, 0
        while listed < LISTED and time.monotonic() < until and sender.running():
            listed = flow_listed(sender.addr)
            time.sleep(0.1)  # polling the page, with the deadline above
        http("GET", f"http://{sender.addr}/")  # the page drawn once, as a browser would
        print(f"sender: VmRSS {sender.proc_status('VmRSS')} kB, peak VmHWM {sender.proc_status('VmHWM')} kB, with {listed} messages on its flow page")
    finally:
        sender.stop()


def main():
    duration = os.environ.get("DURATION", "10s")
    env = dict(os.environ, DRAIN_DELAY="0")
    sink, relay = topology.chain(["sink", "relay"], topology.BIN, env)
    try:
        rps, us = load(sink, relay, duration)
        sender_memory(relay.addr, env)
    finally:
        for tier in (relay, sink):
            tier.stop()
    print(f"row: {rps} {us['relay']} {us['sink']}")


if __name__ == "__main__":
    main()
