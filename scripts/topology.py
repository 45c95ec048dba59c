#!/usr/bin/env python3
"""Starts the tiers: one launcher for every place that runs sinks, relays and senders.

Usage:
  python3 scripts/topology.py [--sinks N] [--relays N] [--senders N]
                                            the 3/2/3 (or N of each) on loopback (scripts/run-local.sh runs it)
  python3 scripts/topology.py podman NETWORK IMAGE PREFIX [-e NAME=VALUE ...]
                                            the 3/2/3 as podman containers, left running
  python3 scripts/topology.py around [--bin DIR] TIER... -- COMMAND...
                                            COMMAND against one sink, relay or sender each (the benchmarks)

On loopback, each process gets its own POD_IP and listens on it, as pods do
(senders 127.0.0.1-3, relays 127.0.1.1-2, sinks 127.0.2.1-3, on BASE_PORT +
1-3, + 101-102, + 201-203; BASE_PORT defaults to 18000; with --sinks,
--relays or --senders up to 99 of a tier, numbered on), and the tiers are
wired with comma-separated URL lists, which they use as kube-proxy uses a
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

With `podman`, the same 3/2/3 runs as containers named PREFIX-sink-1 ...
PREFIX-sender-3 on the podman network NETWORK, from IMAGE (`{tier}` in it
is replaced by sink, relay or sender), read-only, without capabilities, as
65532:65532, with the `-e` settings; the sinks answer as sink-svc and the
relays as relay-svc, as the Services name them. It exits 0 once every
container says it listens (they keep running; the caller stops and removes
them), or 1 naming the one that did not, after removing them all.

With `around`, the tiers named (sink, relay, sender, in the order a
message meets them backwards: `sink relay` puts a relay in front of a sink)
start one each on 127.0.0.1 on free ports below 32768, from DIR (default
target/release, built already), with DRAIN_DELAY=0 unless it is set and
every other tier variable passed through; COMMAND runs once all listen,
with SINK_ADDR, SINK_PID, RELAY_ADDR, RELAY_PID, SENDER_ADDR, SENDER_PID
set for those started. Then they are stopped (SIGTERM). The exit code is
COMMAND's, or 1 if a tier exited while it ran or did not stop cleanly.

As a module (`sys.path` holding scripts/), it is how the rollout rehearsal,
the checks and the benchmarks start tiers: `TierProcess` is one process (started,
its output read, told apart listening or not, stopped with SIGTERM and a
grace period), `Topology` starts layers of them and fails loudly.
"""

import os
import queue
import random
import re
import signal
import socket
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
# What the launcher's own lines start with (run-local's checks look for it).
SAYS = "run-local"


def say(text):
    with OUTPUT:
        print(f"{SAYS}: {text}", flush=True)


class TierProcess:
    """One tier process, started at once.

    `command` runs with `env` (the whole environment it gets). Its output
    goes to `output`: "forward" prints each line (stdout and stderr)
    prefixed with the name, "read" reads them, a path writes them to that
    file, None sends stdout (a line a message) to /dev/null, as a benchmark
    wants, and reads stderr (where a tier says why it stops). Only
    "forward" and "read" see the `listening on` line (`wait_listening`);
    the others wait for a connection (`wait_connectable`). `keep` keeps
    every line read in `lines`; the last is always in `last_line`.
    `events`, a queue, gets `(tier, exit code)` when it exits."""

    def __init__(self, name, command, env, addr="", output=None, keep=False, events=None):
        self.name, self.addr, self.output = name, addr, output
        self.last_line, self.lines, self.keep = "(no output)", [], keep
        # Set once it says `listening on`, or once its output ends (it exited).
        self.settled, self.listens = threading.Event(), False
        # Set once it says it received a signal (a terminal's Ctrl-C reaches every tier).
        self.signaled = threading.Event()
        streams = {"forward": (subprocess.PIPE, subprocess.STDOUT), "read": (subprocess.PIPE, subprocess.STDOUT),
                   None: (subprocess.DEVNULL, subprocess.PIPE)}
        stdout, stderr = streams[output] if output in streams else (open(output, "w"), subprocess.STDOUT)
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)
        self.reader = None
        stream = self.process.stdout if stdout == subprocess.PIPE else self.process.stderr
        if stream:
            self.reader = threading.Thread(target=self.read, args=(stream,), daemon=True)
            self.reader.start()
        if events is not None:
            threading.Thread(target=lambda: events.put((self, self.process.wait())), daemon=True).start()

    def read(self, stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.last_line = line
            if self.keep:
                self.lines.append(line)
            if line.startswith("listening on ") or '"event":"listening"' in line:
                # Where it listens (a port 0 in LISTEN_ADDR is the kernel's pick).
                self.addr = re.search(r'listening on ([^\s"]+)', line)[1]
                self.listens = True
                self.settled.set()
            if line.startswith("received SIG") or '"event":"signal"' in line:
                self.signaled.set()
            if self.output == "forward":
                with OUTPUT:
                    sys.stdout.write(f"[{self.name}] {line}\n")
                    sys.stdout.flush()
        self.settled.set()

    def running(self):
        return self.process.poll() is None

    def wait_listening(self, seconds=START_SECONDS):
        """Whether it said `listening on` within `seconds` (False at once if it exited)."""
        self.settled.wait(seconds)
        return self.listens

    def wait_connectable(self, host, port, seconds=START_SECONDS):
        """Whether `host:port` took a connection within `seconds` while it ran: for binaries that say nothing."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and self.running():
            try:
                socket.create_connection((host, port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.01)
        return False

    def proc_status(self, field):
        """A number of its /proc status (`VmHWM`, `VmRSS` in kB, `Threads`)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def served_pid(self):
        """The tier's own pid: under strace, its traced child (strace would detach on the signal)."""
        try:
            children = open(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read().split()
        except OSError:
            children = []
        if os.path.basename(self.process.args[0]) == "strace" and children:
            return int(children[0])
        return self.process.pid

    def send(self, signum=signal.SIGTERM):
        if self.running():
            os.kill(self.served_pid(), signum)

    def stop(self, grace=STOP_SECONDS, signum=signal.SIGTERM):
        """What a kubelet does: `signum` (unless it exited), SIGKILL after `grace` s; returns the exit code."""
        self.send(signum)
        return self.wait(grace)

    def wait(self, grace=STOP_SECONDS):
        """Its exit code, SIGKILLed (and said) if it runs `grace` s more."""
        try:
            code = self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {grace} s: killed")
            self.process.kill()
            code = self.process.wait()
        if self.reader:
            self.reader.join(timeout=5)
        return code

    def status(self):
        """How it ended, or that it did not listen in time."""
        code = self.process.poll()
        if code is None:
            return f"did not listen within {START_SECONDS} s"
        if code < 0:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        return f"exited with status {code}"


def on_host(binary, ip, port, env):
    """How a tier runs on this host: `(command, environment)` of `binary` listening on `ip:port` as POD_IP."""
    return [binary], dict(env, POD_IP=ip, LISTEN_ADDR=f"{ip}:{port}")


class Topology:
    """Layers of tiers started in turn; one that fails stops them all, named."""

    def __init__(self, env, on_stop=None):
        self.env, self.tiers, self.events = env, [], queue.Queue()
        self.stopping = False
        # How a tier is stopped (a container is stopped by podman, a process by a signal).
        self.on_stop = on_stop

    def start_layer(self, specs):
        """Starts `(name, command, env, addr)` tiers with output forwarded; returns once each listens."""
        layer = [TierProcess(name, command, env, addr, output="forward", events=self.events)
                 for name, command, env, addr in specs]
        self.tiers += layer
        pids = self.env.get("PIDS_FILE")
        if pids:
            with open(pids, "a") as f:
                f.writelines(f"{t.name} {t.process.pid} {t.addr}\n" for t in layer)
        for tier in layer:
            if not tier.wait_listening():
                if tier.settled.is_set():
                    tier.process.wait(timeout=START_SECONDS)
                self.fail(tier, "could not start")

    def fail(self, tier, what):
        say(f"{tier.name} {what}: {tier.status()}; its last line: {tier.last_line}")
        self.stop()
        say("stopped the other tiers")
        sys.exit(1)

    def stop(self, ctrl_c=False):
        """SIGTERM to every tier still running that has no signal of its own, then waits for each.

        A terminal's Ctrl-C (`ctrl_c`) reaches every tier at once: each is
        given a moment to say so, and drains as it does on SIGINT."""
        self.stopping = True
        if self.on_stop:
            return self.on_stop(self.tiers)
        if ctrl_c:
            until = time.monotonic() + SIGNAL_SECONDS
            for tier in self.tiers:
                if tier.running():
                    tier.signaled.wait(max(0, until - time.monotonic()))
        for tier in self.tiers:
            if not tier.signaled.is_set():
                tier.send()
        return all([tier.wait() == 0 for tier in self.tiers])

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


# The case study's replicas: 3 sinks, 2 relays, 3 senders.
SEED_COUNTS = {"sink": 3, "relay": 2, "sender": 3}
# At most this many of a tier: run-local's ports are BASE_PORT + 1-99, 101-199, 201-299.
MOST = 99


def layers(topology, place, counts=None):
    """Starts `counts` (default the case study's 3/2/3) sinks, relays and senders in layers.

    `place(name, tier, index, env)` says how one runs: `(command, env,
    addr, the host:port the next layer reaches it at)`; the next layer's URL
    lists each of those once (behind a Service, all have one)."""
    counts = counts or SEED_COUNTS
    def layer(tier, count, env, path):
        names = [f"{tier}-{i}" for i in range(1, count + 1)]
        specs = [(name, *place(name, tier, i, env)) for i, name in enumerate(names, 1)]
        topology.start_layer([spec[:4] for spec in specs])
        return ",".join(dict.fromkeys(f"{spec[4]}/{path}" for spec in specs))

    sink_url = layer("sink", counts["sink"], {}, "sink.php")
    relay_url = layer("relay", counts["relay"], {"SINK_URL": sink_url}, "relay.php")
    layer("sender", counts["sender"], {"RELAY_URL": relay_url}, "")


def on_loopback(env, base):
    """run-local's addressing: senders 127.0.0.N, relays 127.0.1.N, sinks 127.0.2.N."""
    # Per tier: the third byte of its addresses, and its ports' offset from BASE_PORT.
    subnet = {"sender": (0, 0), "relay": (1, 100), "sink": (2, 200)}

    def place(name, tier, i, extra):
        third, offset = subnet[tier]
        ip, port = f"127.0.{third}.{i}", base + offset + i
        command, tier_env = on_host(os.path.join(BIN, tier), ip, port, dict(env, **extra))
        return command, tier_env, f"{ip}:{port}", f"{ip}:{port}"
    return place


def in_podman(network, image, prefix, settings):
    """Podman's addressing: containers on `network`, the sinks as sink-svc, the relays as relay-svc, port 8080.

    The "process" of each is `podman logs -f`, which ends when the container does."""
    alias = {"sink": "sink-svc", "relay": "relay-svc"}

    def place(name, tier, i, extra):
        container = f"{prefix}-{name}"
        flags = ["--network", network, "--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges",
                 "--user", "65532:65532"]
        if tier in alias:
            flags += ["--network-alias", alias[tier]]
        for setting in settings + [f"{k}={v}" for k, v in extra.items()]:
            flags += ["-e", setting]
        run = subprocess.run(["podman", "run", "-d", "--name", container, *flags, image.replace("{tier}", tier)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            say(f"{name}: podman run failed: {run.stderr.strip()}")
        return ["podman", "logs", "-f", container], dict(os.environ), container, f"{alias.get(tier)}:8080"
    return place


def podman_stop(prefix, tiers):
    """Removes the containers of `tiers` (the launcher failed)."""
    for tier in tiers:
        subprocess.run(["podman", "rm", "-f", "-t", "0", f"{prefix}-{tier.name}"], capture_output=True)
        tier.wait()
    return False


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


def podman(args):
    """`podman NETWORK IMAGE PREFIX [-e NAME=VALUE ...]`: the 3/2/3 as containers, left running."""
    global SAYS
    SAYS = "topology"
    if len(args) < 3 or len(args[3:]) % 2 or any(flag != "-e" for flag in args[3::2]):
        sys.exit(f"topology: podman takes NETWORK IMAGE PREFIX [-e NAME=VALUE ...], not {args}")
    network, image, prefix = args[:3]
    topology = Topology(dict(os.environ), on_stop=lambda tiers: podman_stop(prefix, tiers))
    layers(topology, in_podman(network, image, prefix, args[4::2]))
    for tier in topology.tiers:
        tier.process.terminate()
    say(f"the 3/2/3 runs on {network}: " + " ".join(f"{prefix}-{t.name}" for t in topology.tiers))
    return 0


# What a tier started after another is told about it.
WIRED_TO = {"sink": "SINK_URL", "relay": "RELAY_URL"}


def free_port(host="127.0.0.1"):
    """A port on `host` that was free a moment ago, below the ephemeral range
    (32768-60999), where a server could collide with a client's own port."""
    for _ in range(100):
        port = random.randrange(20000, 32768)
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
                return port
            except OSError:
                continue
    sys.exit(f"topology: no free port on {host} between 20000 and 32767")


def chain(names, bin_dir, env):
    """Starts the tiers `names` (sink, relay, sender) in that order on 127.0.0.1, on free ports.

    Each is wired to the one started just before it (SINK_URL or RELAY_URL;
    the first gets what `env` says). Their stdout goes to /dev/null, their
    stderr is read (the last line kept). Returns them once each takes a
    connection; exits 1 naming the one that did not, after stopping the
    others."""
    started = []
    for name in names:
        extra = {}
        if started:
            before = started[-1]
            extra[WIRED_TO[before.name]] = f"{before.addr}/{before.name}.php"
        port = free_port()
        command, tier_env = on_host(os.path.join(bin_dir, name), "127.0.0.1", port, dict(env, **extra))
        tier = TierProcess(name, command, tier_env, f"127.0.0.1:{port}")
        started.append(tier)
        if not tier.wait_connectable("127.0.0.1", port):
            say(f"{name} could not start: {tier.status()}; its last line: {tier.last_line}")
            for other in started:
                other.stop()
            sys.exit(1)
    return started


def around(args):
    """`around [--bin DIR] TIER... -- COMMAND...`: COMMAND run against a chain of tiers, stopped after."""
    global SAYS
    SAYS = "topology"
    bin_dir = BIN
    if args[:1] == ["--bin"] and len(args) > 1:
        bin_dir, args = args[1], args[2:]
    split = args.index("--") if "--" in args else len(args)
    names, command = args[:split], args[split + 1:]
    order = ["sink", "relay", "sender"]
    first = order.index(names[0]) if names and names[0] in order else 0
    if not command or not names or names != order[first:first + len(names)]:
        sys.exit(f"topology: around takes [--bin DIR] TIER... -- COMMAND, the tiers in the order they are wired "
                 f"(sink relay sender, or a part of it), not {args}")
    env = dict(os.environ)
    env.setdefault("DRAIN_DELAY", "0")
    tiers = chain(names, bin_dir, env)
    told = dict(os.environ)
    for tier in tiers:
        told[f"{tier.name.upper()}_ADDR"], told[f"{tier.name.upper()}_PID"] = tier.addr, str(tier.process.pid)
    code = subprocess.run(command, env=told).returncode
    gone = [tier for tier in tiers if not tier.running()]
    for tier in gone:
        say(f"{tier.name} exited while {command[0]} ran: {tier.status()}; its last line: {tier.last_line}")
    clean = all([tier.stop() == 0 for tier in reversed(tiers)])
    return code or (1 if gone or not clean else 0)


def replicas(args):
    """`--sinks N --relays N --senders N` (each optional, 1 to MOST): how many of each tier run-local starts."""
    counts, rest = dict(SEED_COUNTS), list(args)
    while rest:
        flag, value = rest.pop(0), rest.pop(0) if rest else ""
        tier = {"--sinks": "sink", "--relays": "relay", "--senders": "sender"}.get(flag)
        if tier is None:
            sys.exit(f"run-local: unexpected argument {flag!r}: it takes --sinks, --relays and --senders N; "
                     "the tiers are configured by environment variables (see --help)")
        if not value.isdigit() or not 1 <= int(value) <= MOST:
            sys.exit(f"run-local: {flag} {value!r}: expected a whole number from 1 to {MOST}")
        counts[tier] = int(value)
    return counts


def main():
    if sys.argv[1:2] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if sys.argv[1:2] == ["podman"]:
        return podman(sys.argv[2:])
    if sys.argv[1:2] == ["around"]:
        return around(sys.argv[2:])
    counts = replicas(sys.argv[1:])
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
    layers(topology, on_loopback(env, base), counts)
    return topology.run(bounded=bool(env.get("SEND_COUNT")))


if __name__ == "__main__":
    sys.exit(main())
