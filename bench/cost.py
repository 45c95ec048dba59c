#!/usr/bin/env python3
"""What one message costs each tier: heap allocations, syscalls and instructions.

Usage: cost.py [--messages N] [--tiers relay,sink] [--out FILE]
  (run from the repository; bench/cost.sh builds what it needs and calls this)

For the relay and the sink separately, ours twice (as it ships, and with its
spans exported over OTLP/HTTP to a receiver here that answers 200 at once,
`three-tier+otlp`), and for the same tier of the yardstick
(../shared/yardstick, the design's floor), one tier at a time runs under a
counting tool while the other runs as it is, and a client posts the
benchmark's 61-byte message through the relay on 4 kept-alive connections:

- allocations and bytes allocated: `valgrind --tool=dhat`, on the glibc
  build (valgrind cannot replace a static binary's malloc; the code paths
  are the same);
- syscalls: `strace -f -c`, on the static musl build the images hold;
- instructions: `valgrind --tool=callgrind` (user space, all threads), on
  the static musl build.

Each count is taken twice, after a few messages and after N more, and the
difference is divided by N, so start-up and shutdown cancel out. The tiers
run with LOG_DIR set, as the benchmark runs them (the yardstick logs to stdout
only, its one line per message). Prints a Markdown table, and the syscalls
each tier makes per message by name.
"""

import argparse
import http.client
import http.server
import os
import re
import sys
import tempfile
import threading

BODY = "Message sent from 10.0.0.1 on Tue, 24 Nov 2026 23:48:17 GMT\n"  # the harness's 61 bytes
CONNECTIONS = 4
FIRST = 40  # messages before the first reading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import topology  # noqa: E402  (the one launcher of tiers)
GLIBC = os.path.join(ROOT, "target/release")
MUSL = os.path.join(ROOT, "target/musl/x86_64-unknown-linux-musl/release")
YARDSTICK_GLIBC = os.path.join(ROOT, "target/yardstick/release/yardstick")
YARDSTICK_MUSL = os.path.join(ROOT, "target/yardstick-musl/x86_64-unknown-linux-musl/release/yardstick")

# What each count is taken with runs on this build.
TOOLS = {
    "allocations": "glibc",
    "syscalls": "musl",
    "instructions": "musl",
}


class Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver that reads each export and answers 200 on a kept-alive connection."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def start_receiver():
    """The receiver on a port of its own; returns its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


OTLP_ENDPOINT = None


def command(impl, tier, build, port, sink_port):
    """The command line and environment of `tier` of `impl` (ours, ours exporting spans, or the yardstick)."""
    if impl == "yardstick":
        binary = YARDSTICK_GLIBC if build == "glibc" else YARDSTICK_MUSL
        args = [binary, tier, f"127.0.0.1:{port}"] + ([f"127.0.0.1:{sink_port}"] if tier == "relay" else [])
        return args, {}
    env = {"DRAIN_DELAY": "0"}
    if impl == "three-tier+otlp":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = OTLP_ENDPOINT
    if tier == "relay":
        env["SINK_URL"] = f"127.0.0.1:{sink_port}/sink.php"
    return topology.on_host(os.path.join(GLIBC if build == "glibc" else MUSL, tier), "127.0.0.1", port, env)


def tool_prefix(tool, out):
    if tool == "allocations":
        return ["valgrind", "--tool=dhat", f"--dhat-out-file={out}"]
    if tool == "instructions":
        return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    return ["strace", "-f", "-c", "-o", out]


def reading(tool, out, stderr):
    """The tool's totals: {name: count}."""
    if tool == "allocations":
        m = re.search(r"Total:\s+([\d,]+) bytes in ([\d,]+) blocks", stderr)
        if not m:
            sys.exit(f"cost: no dhat total in:\n{stderr}")
        return {"bytes": int(m[1].replace(",", "")), "allocations": int(m[2].replace(",", ""))}
    if tool == "instructions":
        m = re.search(r"Collected : (\d+)", stderr)
        if not m:
            sys.exit(f"cost: no callgrind total in:\n{stderr}")
        return {"instructions": int(m[1])}
    calls = {}
    for line in open(out):
        parts = line.split()
        # "% time  seconds  usecs/call  calls  errors  syscall"; errors may be blank
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    calls["syscalls"] = sum(calls.values())
    return calls


def post(port, count):
    """Posts `count` messages through the relay on CONNECTIONS kept-alive connections."""
    errors = []

    def worker(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(n):
            c.request("POST", "/relay.php", BODY, {"Content-Type": "text/plain"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                errors.append(r.status)
        c.close()

    shares = [count // CONNECTIONS + (1 if i < count % CONNECTIONS else 0) for i in range(CONNECTIONS)]
    threads = [threading.Thread(target=worker, args=(n,)) for n in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"cost: {len(errors)} messages not answered 200: {errors[:5]}")


def one_run(impl, tier, tool, messages, work):
    """Runs relay and sink, `tier` under `tool`, posts `messages`; returns the tool's totals."""
    build = TOOLS[tool]
    sink_port, relay_port = topology.free_port(), topology.free_port()
    out = os.path.join(work, f"{impl}-{tier}-{tool}-{messages}.out")
    logs = tempfile.mkdtemp(dir=work)
    tiers = {}
    for name, port in (("sink", sink_port), ("relay", relay_port)):
        args, env = command(impl, name, build if name == tier else "musl", port, sink_port)
        if name == tier:
            args = tool_prefix(tool, out) + args
        env = dict(env, PATH=os.environ.get("PATH", ""), LOG_DIR=logs)
        # The measured tier's output is kept: the tool's totals are in it.
        measured = name == tier
        tiers[name] = started = topology.TierProcess(name, args, env, output="read" if measured else None,
                                                     keep=measured)
        # The yardstick says nothing when it listens: a connection taken is the sign, for every variant.
        if not started.wait_connectable("127.0.0.1", port, 60):
            sys.exit(f"cost: {impl}'s {name} did not listen on {port}: {started.status()}; {started.last_line}")
    post(relay_port, messages)
    for name in ("relay", "sink"):
        tiers[name].stop(120)
    return reading(tool, out, "\n".join(tiers[tier].lines))


def per_message(impl, tier, tool, messages, work):
    small = one_run(impl, tier, tool, FIRST, work)
    large = one_run(impl, tier, tool, FIRST + messages, work)
    return {k: (large.get(k, 0) - small.get(k, 0)) / messages for k in large}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--tiers", default="relay,sink")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    global OTLP_ENDPOINT
    OTLP_ENDPOINT = start_receiver()
    rows, syscalls = [], []
    with tempfile.TemporaryDirectory() as work:
        for tier in args.tiers.split(","):
            for impl in ("three-tier", "three-tier+otlp", "yardstick"):
                counts = {}
                for tool in TOOLS:
                    counts.update(per_message(impl, tier, tool, args.messages, work))
                rows.append((tier, impl, counts))
                named = sorted(((n, c) for n, c in counts.items()
                                if n not in ("syscalls", "allocations", "bytes", "instructions") and c >= 0.05),
                               key=lambda x: -x[1])
                syscalls.append((tier, impl, named))
    lines = [
        f"Per message, over {args.messages} messages through the relay on {CONNECTIONS} kept-alive connections "
        f"(`bash bench/cost.sh`; allocations from valgrind's dhat on the glibc build, syscalls from "
        f"`strace -f -c` and user-space instructions from callgrind on the static musl build; "
        f"`three-tier+otlp` exports every span to a receiver answering 200, batched as by default):",
        "",
        "| tier | implementation | heap allocations | bytes allocated | syscalls | instructions |",
        "|---|---|---|---|---|---|",
    ]
    for tier, impl, c in rows:
        lines.append(f"| {tier} | {impl} | {c['allocations']:.1f} | {c['bytes']:,.0f} | {c['syscalls']:.2f} | {c['instructions']:,.0f} |")
    lines += ["", "Syscalls per message, by name:", "", "| tier | implementation | syscalls |", "|---|---|---|"]
    for tier, impl, named in syscalls:
        lines.append(f"| {tier} | {impl} | " + ", ".join(f"{n} {c:.2f}" for n, c in named) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        open(args.out, "w").write(text + "\n")


if __name__ == "__main__":
    main()
