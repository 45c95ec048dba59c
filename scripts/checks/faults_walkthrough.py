"""Runs docs/faults.md's scenario 1 on the host topology and checks what it promises.

Usage: python3 scripts/checks/faults_walkthrough.py [BASE_PORT]

Starts `scripts/run-local.sh` (3 sinks, 2 relays, 3 senders) with FAULTS=on,
SEND_FAULT=sink=503@0.2, a LOG_DIR of its own and SEND_COUNT=60 per sender,
and once sink-1 serves, sets a standing fault on it: `POST /fault?delay=...`
longer than the relays' SINK_TIMEOUT (shortened here, 500ms against a 1s
delay, so the run takes seconds). While sender-1 is still sending it reads its
/flow and /metrics, and sink-1's /metrics; after the run it reads the loss
report. Requires: messages that met one sink's 503 and were answered by
another (the relay's failover), messages that went past the slow sink-1, the sender's retries and SEND_FAULT
headers counted, sink-1's delays counted, every sender exiting 0 (all 180
messages answered 2xx), and the loss report with 0 gaps. Every wait has a
deadline; processes started here are stopped by PID.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import polling
from delivery import report as loss_report, tally
from polling import http, metric

DEADLINE = 120


def wait_for(what, check, until):
    polling.wait_for("faults_walkthrough", what, check, until)


def lineage_lines(log_path, sender):
    with open(log_path, errors="replace") as f:
        return [line for line in f if line.startswith(f"[{sender}] ") and " -> relay " in line]


def main(base):
    work = tempfile.mkdtemp(prefix="three-tier-walkthrough-")
    env = dict(os.environ, FAULTS="on", SEND_FAULT="sink=503@0.2", LOG_DIR=work, SEND_COUNT="60",
               SEND_INTERVAL="50ms", SINK_TIMEOUT="500ms", BASE_PORT=str(base), DRAIN_DELAY="0s")
    log_path = os.path.join(work, "run-local.log")
    until = time.monotonic() + DEADLINE
    with open(log_path, "w") as log:
        run = subprocess.Popen(["bash", "scripts/run-local.sh"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        sink1, sender1 = f"http://127.0.2.1:{base + 201}", f"http://127.0.0.1:{base + 1}"
        wait_for("sink-1 serving", lambda: http("GET", sink1 + "/healthz") == "ok", until)
        print("sink-1:", http("POST", sink1 + "/fault?delay=1s&for=2m"))
        # 50 messages: that none met a fault sent with a fifth of them has a chance of 1.4e-5.
        wait_for("50 answered messages from sender-1", lambda: len(lineage_lines(log_path, "sender-1")) >= 50, until)
        flow = json.loads(http("GET", sender1 + "/flow"))
        metrics = http("GET", sender1 + "/metrics")
        sink_metrics = http("GET", sink1 + "/metrics")
        code = run.wait(timeout=max(1, until - time.monotonic()))
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            run.wait(timeout=30)
    output = open(log_path, errors="replace").read()
    if code != 0:
        sys.exit(f"faults_walkthrough: run-local.sh exited {code} (a sender gave up on a message):\n{output[-3000:]}")
    check_flow(flow)
    check_metrics(metrics, sink_metrics)
    data = loss_report("target/release/sink", glob.glob(os.path.join(work, "Sink_*.txt")))
    (_, _, missing, damaged), total = tally(data)
    if missing or damaged or not data["senders"]:
        sys.exit(f"faults_walkthrough: the loss report found messages missing: {total}:\n{json.dumps(data)}")
    print(f"loss report: {total}")
    subprocess.run(["rm", "-rf", work], check=True)


def check_flow(flow):
    messages = flow["messages"]
    # sink=503 meets the first sink that handles the message; another answers it (failover).
    met = [m for m in messages if any(f.startswith("met sink=503") for f in m["faults"])]
    answered_elsewhere = [m for m in met if m["status"] == 200 and m["failed_sinks"] and m["sink"] not in m["failed_sinks"]]
    past_slow = [m for m in messages if "127.0.2.1" in m["failed_sinks"]]
    given_up = [m for m in messages if m["error"]]
    if not met or len(answered_elsewhere) != len(met) or not past_slow or given_up:
        sys.exit(f"faults_walkthrough: /flow shows {len(met)} messages that met sink=503, {len(answered_elsewhere)} of "
                 f"them answered by another sink, {len(past_slow)} past the slow sink-1, {len(given_up)} given up: "
                 f"{json.dumps(messages)[:2000]}")
    print(f"/flow of sender-1: of the last {len(messages)} messages, {len(met)} met sink=503 and were answered by "
          f"another sink, {len(past_slow)} went past the slow sink-1, none given up")


def check_metrics(sender, sink):
    retries = metric(sender, "three_tier_message_retries_total")
    sent = metric(sender, 'three_tier_faults_injected_total{tier="sender",kind="header"}')
    delays = metric(sink, 'three_tier_faults_injected_total{tier="sink",kind="delay"}')
    if not (retries > 0 and sent > 0 and delays > 0):
        sys.exit(f"faults_walkthrough: /metrics: {retries} retries, {sent} SEND_FAULT headers, {delays} sink-1 delays")
    print(f"/metrics: sender-1 retried {retries:.0f} attempts and sent {sent:.0f} X-Fault headers; sink-1 delayed {delays:.0f} messages")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 19400)
