"""Checks that scripts/run-local.sh fails loudly: it exits non-zero naming the tier that could not start or stopped.

Usage: python3 scripts/checks/run_local.py BASE_PORT   (after a release build)

Runs of `bash scripts/run-local.sh` on BASE_PORT's ports, each with its
own bound: a relay's port already taken (relay-2 cannot bind), a LOG_DIR
that cannot be created (refused before anything starts), a sink killed
while the topology runs (found by PIDS_FILE) and 100 relays asked for. Each
must exit 1 within its deadline and name the tier (or LOG_DIR, or the
count) in a line of its own; the first also that the other tiers were
stopped. Then 4 sinks, 1 relay and 2 senders must start, each listed once,
and exit 0 with every message answered. Processes started here are stopped by PID.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import os
import signal
import socket
import subprocess
import tempfile
import time

# How long one run may take (the build is done already).
DEADLINE = 60


def run_local(env, until=None, args=()):
    """Runs run-local.sh `args` with `env` added; `until(pids_file)` may act once it runs. Returns (code, output)."""
    work = tempfile.mkdtemp(prefix="three-tier-run-local-")
    pids = os.path.join(work, "pids")
    env = dict(os.environ, PIDS_FILE=pids, DRAIN_DELAY="0s", **env)
    process = subprocess.Popen(["bash", "scripts/run-local.sh", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        if until:
            until(pids)
        output, _ = process.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=DEADLINE)
        sys.exit(f"run_local: run-local.sh did not exit within {DEADLINE} s:\n{output[-3000:]}")
    finally:
        subprocess.run(["rm", "-rf", work], check=True)
    return process.returncode, output


def expect(what, code, output, *lines):
    said = [l for l in output.splitlines() if l.startswith("run-local: ")]
    missing = [l for l in lines if not any(l in s for s in said)]
    if code != 1 or missing:
        sys.exit(f"run_local: {what}: exit {code}, missing {missing} in:\n{output[-3000:]}")
    print(f"run-local.sh, {what}: exit 1, {said[-2] if len(said) > 1 else said[-1]}")


def wait_for_tiers(pids, n):
    """The PIDS_FILE lines once `n` tiers are listed."""
    until = time.monotonic() + DEADLINE
    while time.monotonic() < until:
        if os.path.exists(pids):
            lines = open(pids).read().splitlines()
            if len(lines) >= n:
                return [line.split() for line in lines]
        time.sleep(0.05)
    sys.exit(f"run_local: {n} tiers did not start within {DEADLINE} s")


def main(base):
    # A port taken: relay-2's (127.0.1.2:BASE+102).
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.1.2", base + 102))
        taken.listen()
        code, output = run_local({"BASE_PORT": str(base)})
    expect("a relay's port taken", code, output, "run-local: relay-2 could not start: exited with status 1",
           "Address already in use", "run-local: stopped the other tiers")

    # A LOG_DIR that cannot be created.
    code, output = run_local({"BASE_PORT": str(base), "LOG_DIR": "/proc/no-such-dir/logs"})
    expect("a LOG_DIR that cannot be created", code, output, "run-local: LOG_DIR='/proc/no-such-dir/logs'")
    if "[sink-1]" in output:
        sys.exit(f"run_local: tiers started with a LOG_DIR that cannot be created:\n{output}")

    # A sink that dies while the topology runs.
    def kill_sink_2(pids):
        tiers = wait_for_tiers(pids, 8)
        pid = next(int(p) for name, p, _ in tiers if name == "sink-2")
        os.kill(pid, signal.SIGKILL)

    code, output = run_local({"BASE_PORT": str(base)}, until=kill_sink_2)
    expect("a sink killed while it ran", code, output,
           "run-local: sink-2 exited while the topology ran: killed by signal 9 (SIGKILL)")

    # Counts out of range are refused before anything starts.
    code, output = run_local({"BASE_PORT": str(base)}, args=["--relays", "100"])
    expect("100 relays", code, output, "run-local: --relays '100': expected a whole number from 1 to 99")

    # Other counts: each tier listed once, each sender's messages answered.
    started = []
    code, output = run_local({"BASE_PORT": str(base), "SEND_COUNT": "2", "SEND_INTERVAL": "100ms"},
                             until=lambda pids: started.extend(wait_for_tiers(pids, 7)),
                             args=["--sinks", "4", "--relays", "1", "--senders", "2"])
    names = sorted(name for name, _, _ in started)
    wanted = ["relay-1", "sender-1", "sender-2", "sink-1", "sink-2", "sink-3", "sink-4"]
    if code != 0 or names != wanted:
        sys.exit(f"run_local: --sinks 4 --relays 1 --senders 2: exit {code}, tiers {names}:\n{output[-3000:]}")
    print(f"run-local.sh --sinks 4 --relays 1 --senders 2: exit 0, {', '.join(names)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 21000)
