#!/usr/bin/env python3
"""The 3/2/3 of the case study on this host: 3 sinks, 2 relays and 3 senders as processes on loopback.

Usage: python3 scripts/topology.py [--help]   (scripts/run-local.sh runs it)

Each process gets its own POD_IP and listens on it, as pods do (senders
127.0.0.1-3, relays 127.0.1.1-2, sinks 127.0.2.1-3, on BASE_PORT + 1-3,
+ 101-102, + 201-203; BASE_PORT defaults to 18000), and the tiers are wired
with comma-separated URL lists, which they use as kube-proxy uses a
Service's pods: a random one per message. Every tier variable in the
environment (SEND_INTERVAL, SEND_COUNT, LOG_DIR, LOG_FORMAT, FAULTS, ...)
is passed through. Output is interleaved, each line prefixed `[sink-1] `.

It builds the release binaries first (saying so: the first build takes
minutes), creates LOG_DIR when it does not exist, starts the sinks, then the
relays, then the senders, each layer once the one before listens. It fails
loudly: if any tier cannot start or exits while the topology runs (a bad
setting, a port in use), it stops the rest, names the tier and its last
line, and exits 1. With SEND_COUNT it stops everything once the senders are
done and exits 0 only if every message was answered 2xx; without, it runs
until Ctrl-C, SIGTERM or SIGHUP (closing its terminal), which stop every
tier cleanly (exit 0). PIDS_FILE, when set, gets a line `<name> <pid>
<address>` per process, for tools that watch or stop one.
"""

import os
import queue
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
# How long a tier may take to say `listening on`.
START_SECONDS = 30
# How long the tiers may take to stop after SIGTERM (DRAIN_DELAY + SHUTDOWN_TIMEOUT, and some).
STOP_SECONDS = 60
# How long a tier may take to say it received a terminal's Ctrl-C.
SIGNAL_SECONDS = 1
# One tier's line at a time.
OUTPUT = threading.Lock()


def say(text):
    with OUTPUT:
        print(f"run-local: {text}", flush=True)


class Tier:
    """One process, its output forwarded with its name, its last line kept."""

    def __init__(self, name, binary, ip, port, env, events):
        self.name, self.addr = name, f"{ip}:{port}"
        self.last_line = "(no output)"
        # Set once it says `listening on`, or once its output ends (it exited).
        self.settled, self.listens = threading.Event(), False
        # Set once it says it received a signal (a terminal's Ctrl-C reaches every tier).
        self.signaled = threading.Event()
        env = dict(env, POD_IP=ip, LISTEN_ADDR=self.addr)
        self.process = subprocess.Popen([os.path.join(BIN, binary)], env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self.forward, daemon=True)
        self.reader.start()
        threading.Thread(target=lambda: events.put((self, self.process.wait())), daemon=True).start()

    def forward(self):
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.last_line = line
            if line.startswith("listening on ") or '"event":"listening"' in line:
                self.listens = True
                self.settled.set()
            if line.startswith("received SIG") or '"event":"signal"' in line:
                self.signaled.set()
            with OUTPUT:
                sys.stdout.write(f"[{self.name}] {line}\n")
                sys.stdout.flush()
        self.settled.set()

    def running(self):
        return self.process.poll() is None


class Topology:
    def __init__(self, env):
        self.env, self.tiers, self.events = env, [], queue.Queue()
        self.stopping = False

    def start_layer(self, specs):
        """Starts `(name, binary, ip, port, extra env)` tiers; returns once each listens."""
        layer = [Tier(name, binary, ip, port, dict(self.env, **extra), self.events)
                 for name, binary, ip, port, extra in specs]
        self.tiers += layer
        pids = self.env.get("PIDS_FILE")
        if pids:
            with open(pids, "a") as f:
                f.writelines(f"{t.name} {t.process.pid} {t.addr}\n" for t in layer)
        for tier in layer:
            tier.settled.wait(START_SECONDS)
            if not tier.listens:
                if tier.settled.is_set():
                    tier.process.wait(timeout=START_SECONDS)
                self.fail(tier, "could not start")

    def fail(self, tier, what):
        code = tier.process.poll()
        if code is None:
            status = f"did not listen within {START_SECONDS} s"
        elif code < 0:
            status = f"killed by signal {-code} ({signal.Signals(-code).name})"
        else:
            status = f"exited with status {code}"
        say(f"{tier.name} {what}: {status}; its last line: {tier.last_line}")
        self.stop()
        say("stopped the other tiers")
        sys.exit(1)

    def stop(self, ctrl_c=False):
        """SIGTERM to every tier still running that has no signal of its own, then waits for each.

        A terminal's Ctrl-C (`ctrl_c`) reaches every tier at once: each is
        given a moment to say so, and drains as it does on SIGINT."""
        self.stopping = True
        if ctrl_c:
            until = time.monotonic() + SIGNAL_SECONDS
            for tier in self.tiers:
                if tier.running():
                    tier.signaled.wait(max(0, until - time.monotonic()))
        for tier in self.tiers:
            if tier.running() and not tier.signaled.is_set():
                tier.process.send_signal(signal.SIGTERM)
        clean = True
        for tier in self.tiers:
            try:
                clean &= tier.process.wait(timeout=STOP_SECONDS) == 0
            except subprocess.TimeoutExpired:
                say(f"{tier.name} did not stop within {STOP_SECONDS} s: killed")
                tier.process.kill()
                clean = False
            tier.reader.join(timeout=5)
        return clean

    def run(self, bounded):
        """Watches the tiers until the senders are done (`bounded`) or a signal; returns the exit code."""
        senders = [t for t in self.tiers if t.name.startswith("sender-")]
        done, failed = set(), False
        while True:
            try:
                tier, code = self.events.get(timeout=1)
            except queue.Empty:
                continue
            if self.stopping:
                continue
            if bounded and tier in senders:
                done.add(tier)
                failed |= code != 0
                if len(done) == len(senders):
                    clean = self.stop()
                    return 0 if clean and not failed else 1
                continue
            self.fail(tier, "exited while the topology ran")


def build():
    say("building the release binaries (cargo build --release; the first build takes a few minutes)")
    if subprocess.run(["cargo", "build", "--release", "--bins", "--quiet"], cwd=ROOT).returncode != 0:
        say("the build failed (above)")
        sys.exit(1)


def log_dir(env):
    path = env.get("LOG_DIR")
    if path and not os.path.isdir(path):
        try:
            os.makedirs(path)
        except OSError as e:
            say(f"LOG_DIR={path!r} does not exist and cannot be created: {e}")
            sys.exit(1)
        say(f"created LOG_DIR={path}")


def main():
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if len(sys.argv) > 1:
        sys.exit(f"run-local: unexpected argument {sys.argv[1]!r}: it is configured by environment variables (see --help)")
    env = dict(os.environ)
    env.setdefault("DRAIN_DELAY", "1s")
    base = int(env.get("BASE_PORT", "18000"))
    log_dir(env)
    build()
    topology = Topology(env)
    def stop(signum, frame):
        # The tiers take SIGHUP to reopen their files: they are stopped instead.
        os._exit(0 if topology.stop(ctrl_c=signum == signal.SIGINT) else 1)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
    sinks = [(f"sink-{i}", "sink", f"127.0.2.{i}", base + 200 + i, {}) for i in (1, 2, 3)]
    topology.start_layer(sinks)
    sink_url = ",".join(f"{ip}:{port}/sink.php" for _, _, ip, port, _ in sinks)
    relays = [(f"relay-{i}", "relay", f"127.0.1.{i}", base + 100 + i, {"SINK_URL": sink_url}) for i in (1, 2)]
    topology.start_layer(relays)
    relay_url = ",".join(f"{ip}:{port}/relay.php" for _, _, ip, port, _ in relays)
    topology.start_layer([(f"sender-{i}", "sender", f"127.0.0.{i}", base + i, {"RELAY_URL": relay_url}) for i in (1, 2, 3)])
    return topology.run(bounded=bool(env.get("SEND_COUNT")))


if __name__ == "__main__":
    sys.exit(main())
