"""Checks the OTLP span export against a real receiver (rotel), and that a receiver that fails costs no message.

Usage: python3 scripts/checks/otlp_rotel.py [BASE_PORT]   (after a release build; rotel from PyPI installed)

First run: rotel (`rotel-agent`, from PyPI's `rotel`, printing every span it
accepts) listens on 127.0.0.1:BASE_PORT+318, and `scripts/run-local.sh`
runs the 3/2/3 with OTEL_EXPORTER_OTLP_ENDPOINT pointing at it, FAULTS=on,
SEND_FAULT=sink=503@0.3 (the relays fail over), a standing 503 on relay-1
(the senders retry on relay-2) and a slow sink-1 (past the relays'
SINK_TIMEOUT). From what rotel printed it requires, for every line in the
sinks' records, one trace with that record's trace id: the sender's CLIENT
span (no parent), the relays' SERVER spans its children, their CLIENT
attempts theirs, and a sink SERVER span, child of one attempt, with the
record's request id, a `record` event and 200; failovers (a relay attempt
answered 503, then another answered 200) and retries (a sender span with
two or more `attempt` events) among them; every exemplar trace id in the
tiers' /metrics among the traces; no export failure.

Then three runs with the receiver failing: nothing listening, rotel
stopped with SIGSTOP (accepting, never answering), and a server answering
503 with Retry-After. Each must deliver every message (every sender exits
0, the loss report finds no gap), finish within its deadline (the last
spans' flush is bounded), count export failures and dropped spans in the
tiers' /metrics, and keep each relay's peak memory under MAX_RSS_KIB.
Every wait has a deadline; processes started here are stopped by PID.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import glob
import http.server as http_server
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import polling
import rotel
from delivery import report as loss_report, tally
from polling import http, metric

# How long one run may take (the build is done already).
DEADLINE = 90
# A relay's peak memory while its receiver fails, at most (it is about 3 MiB).
MAX_RSS_KIB = 24 * 1024
# Messages per sender.
EACH = 20
SENDERS = ["sender-1", "sender-2", "sender-3"]
SERVERS = ["relay-1", "relay-2", "sink-1", "sink-2", "sink-3"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fail(message):
    sys.exit(f"otlp_rotel: {message}")


def wait_for(what, check, until):
    polling.wait_for("otlp_rotel", what, check, until)


def start_rotel(port, output):
    """rotel listening on 127.0.0.1:`port` (and `port` - 1 for gRPC), printing every span into `output`."""
    agent = os.path.join(os.path.dirname(rotel.__file__), "rotel-agent")
    process = subprocess.Popen([agent, "start", "--otlp-http-endpoint", f"127.0.0.1:{port}",
                                "--otlp-grpc-endpoint", f"127.0.0.1:{port - 1}", "--exporter", "blackhole",
                                "--debug-log", "traces", "--debug-log-verbosity", "detailed"],
                               stdout=output, stderr=subprocess.STDOUT)

    def listening():
        if process.poll() is not None:
            fail(f"rotel exited with status {process.returncode} (is 127.0.0.1:{port} taken?)")
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    wait_for("rotel listening", listening, time.monotonic() + DEADLINE)
    return process


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


class Run:
    """One run of scripts/run-local.sh with `env` added, in a work directory of its own."""

    def __init__(self, base, env):
        self.base = base
        self.work = tempfile.mkdtemp(prefix="three-tier-otlp-")
        self.log_path = os.path.join(self.work, "run-local.log")
        self.pids = os.path.join(self.work, "pids")
        env = dict(os.environ, FAULTS="on", LOG_DIR=self.work, PIDS_FILE=self.pids, SEND_COUNT=str(EACH),
                   SEND_INTERVAL="100ms", SINK_TIMEOUT="500ms", BASE_PORT=str(base), DRAIN_DELAY="0s",
                   OTEL_BSP_SCHEDULE_DELAY="100", **env)
        self.until = time.monotonic() + DEADLINE
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(["bash", "scripts/run-local.sh"], env=env, stdout=log,
                                            stderr=subprocess.STDOUT)

    def url(self, tier):
        kind, n = tier.split("-")
        block = {"sender": 0, "relay": 1, "sink": 2}[kind]
        return f"http://127.0.{block}.{n}:{self.base + 100 * block + int(n)}"

    def records(self):
        """(trace id, request id) of every line in the sinks' records."""
        found = []
        for path in glob.glob(os.path.join(self.work, "Sink_*.txt")):
            for line in open(path, errors="replace"):
                ids = dict(re.findall(r"\t(trace_id|request_id)=(\S+)", line))
                if len(ids) == 2:
                    found.append((ids["trace_id"], ids["request_id"]))
        return found

    def wait_for_records(self, n):
        wait_for(f"{n} records in the sinks' files", lambda: len(self.records()) >= n, self.until)

    def metrics(self, tiers):
        return {t: http("GET", self.url(t) + "/metrics", "application/openmetrics-text") for t in tiers}

    def peak_rss_kib(self, name):
        for line in open(self.pids).read().splitlines():
            tier, pid = line.split()[:2]
            if tier == name:
                status = open(f"/proc/{pid}/status").read()
                return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))
        fail(f"{name} is not in PIDS_FILE")

    def finish(self, what):
        """Waits for the run's end; requires exit 0 and a loss report without gaps. Returns the records."""
        try:
            code = self.process.wait(timeout=max(1, self.until - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
            fail(f"{what}: run-local.sh did not finish within {DEADLINE} s:\n{self.output()[-3000:]}")
        if code != 0:
            fail(f"{what}: run-local.sh exited {code} (a sender gave up on a message):\n{self.output()[-3000:]}")
        counts, total = tally(loss_report("target/release/sink", glob.glob(os.path.join(self.work, "Sink_*.txt"))))
        if counts != (3 * EACH, 0, 0, 0):
            fail(f"{what}: the loss report found messages missing or twice: {total}")
        records = self.records()
        subprocess.run(["rm", "-rf", self.work], check=True)
        return records, total

    def output(self):
        return open(self.log_path, errors="replace").read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)


def parse_rotel(text):
    """The spans rotel printed, each a dict: trace, parent, id, name, kind, status, service, attributes, events."""
    spans, service, span, event, section = [], None, None, None, None
    for line in ANSI.sub("", text).splitlines():
        stripped = line.strip()
        if line.startswith("ResourceSpans #"):
            service, span, section = None, None, "resource"
        elif line.startswith("Span #"):
            span = {"service": service, "attributes": {}, "events": []}
            spans.append(span)
            section = "span"
        elif span is None:
            if section == "resource" and stripped.startswith("-> service.name: Str("):
                service = stripped[len("-> service.name: Str("):-1]
        elif line == "Attributes:":
            section = "attributes"
        elif line == "Events:":
            section = "events"
        elif line == "Links:":
            section = None
        elif section == "span" and " : " in line:
            key, _, value = stripped.partition(":")
            span[key.strip()] = value.strip()
        elif section == "attributes" and stripped.startswith("-> "):
            key, value = attribute(stripped)
            span["attributes"][key] = value
        elif section == "events" and line.startswith("SpanEvent #"):
            event = {"attributes": {}}
            span["events"].append(event)
        elif section == "events" and event is not None and stripped.startswith("-> Name: "):
            event["name"] = stripped[len("-> Name: "):]
        elif section == "events" and event is not None and line.startswith(" " * 10 + "-> "):
            key, value = attribute(stripped)
            event["attributes"][key] = value
    return spans


def attribute(stripped):
    """`-> key: Str(v)` or `-> key: Int(n)` as (key, value)."""
    key, _, value = stripped[3:].partition(": ")
    match = re.fullmatch(r"(Str|Int)\((.*)\)", value)
    if not match:
        return key, value
    return key, int(match.group(2)) if match.group(1) == "Int" else match.group(2)


def check_traces(spans, records):
    """Every record's trace complete; returns (failovers, retries) found."""
    traces = {}
    for span in spans:
        traces.setdefault(span["Trace ID"], []).append(span)
    failovers = retries = 0
    for trace_id, request_id in records:
        trace = traces.get(trace_id)
        if not trace:
            fail(f"no span of trace {trace_id} (request {request_id}) reached rotel")
        problem, failed_over, retried = check_trace(trace, request_id)
        if problem:
            fail(f"trace {trace_id} (request {request_id}): {problem}:\n{describe(trace)}")
        failovers += failed_over
        retries += retried
    return traces, failovers, retries


def check_trace(trace, request_id):
    """What is wrong with one message's trace (or None), whether a relay failed over, whether the sender retried."""
    def of(service, kind):
        return [s for s in trace if s["service"] == service and s["Kind"] == f"SPAN_KIND_{kind}"]

    senders, handlings, attempts, sinks = of("sender", "CLIENT"), of("relay", "SERVER"), of("relay", "CLIENT"), \
        of("sink", "SERVER")
    if len(senders) != 1 or senders[0]["Parent ID"]:
        return f"{len(senders)} sender CLIENT spans, or one with a parent", False, False
    sender = senders[0]
    if not handlings or any(h["Parent ID"] != sender["ID"] for h in handlings):
        return "a relay SERVER span is not the sender span's child", False, False
    handling_ids = {h["ID"] for h in handlings}
    if not attempts or any(a["Parent ID"] not in handling_ids for a in attempts):
        return "a relay CLIENT span is not a relay SERVER span's child", False, False
    attempt_ids = {a["ID"] for a in attempts}
    recorded = [s for s in sinks if s["attributes"].get("three_tier.request_id") == request_id
                and s["attributes"].get("http.response.status_code") == 200
                and any(e.get("name") == "record" and e["attributes"].get("three_tier.recorded") == "yes"
                        for e in s["events"])]
    if not recorded or any(s["Parent ID"] not in attempt_ids for s in sinks):
        return "no sink SERVER span with the record's request id, 200 and a record event, child of an attempt", \
            False, False
    if any(s["attributes"].get("three_tier.request_id") != request_id for s in trace):
        return "a span names another request id", False, False
    statuses = [a["attributes"].get("http.response.status_code") for a in attempts]
    failed_over = 503 in statuses and 200 in statuses
    retried = len([e for e in sender["events"] if e.get("name") == "attempt"]) >= 2
    return None, failed_over, retried


def describe(trace):
    return "\n".join(f"  {s['service']} {s['Kind']} {s['Name']} id={s['ID']} parent={s['Parent ID'] or '-'} "
                     f"{s['attributes']} events={[e.get('name') for e in s['events']]}" for s in trace)


def exemplar_ids(texts):
    return {m for text in texts for m in re.findall(r'# \{trace_id="([0-9a-f]{32})"\}', text)}


def traces_run(base):
    """The run with rotel receiving: every record's trace complete, failovers, retries and exemplars among them."""
    work = tempfile.mkdtemp(prefix="three-tier-rotel-")
    rotel_log = os.path.join(work, "rotel.log")
    with open(rotel_log, "w") as output:
        receiver = start_rotel(base + 318, output)
    try:
        spans, records, metrics, total = traced_run(base, rotel_log)
    finally:
        stop(receiver)
    subprocess.run(["rm", "-rf", work], check=True)
    traces, failovers, retries = check_traces(spans, records)
    if not failovers or not retries:
        fail(f"{failovers} traces show a relay's failover, {retries} a sender's retry: both should")
    exemplars = exemplar_ids(metrics.values())
    unknown = exemplars - set(traces)
    if not exemplars or unknown:
        fail(f"{len(exemplars)} exemplar trace ids in /metrics, {len(unknown)} not among rotel's traces: {unknown}")
    failures = sum(metric(t, "three_tier_span_export_failures_total") for t in metrics.values())
    exported = sum(metric(t, "three_tier_spans_exported_total") for t in metrics.values())
    if failures or not exported:
        fail(f"with rotel receiving: {failures:.0f} export failures, {exported:.0f} spans exported")
    print(f"rotel received {len(spans)} spans in {len(traces)} traces; each of the {len(records)} records has its "
          f"trace sender -> relay -> sink with the right parents; {failovers} show a relay's failover, {retries} a "
          f"sender's retry; the {len(exemplars)} exemplar trace ids are among them; {total}")


def traced_run(base, rotel_log):
    """The 3/2/3 with faults, exporting to rotel: the spans rotel printed, the records, /metrics, the loss report."""
    run = Run(base, {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{base + 318}",
                     "SEND_FAULT": "sink=503@0.3"})
    try:
        wait_for("relay-1 and sink-1 serving", lambda: http("GET", run.url("relay-1") + "/healthz") == "ok"
                 and http("GET", run.url("sink-1") + "/healthz") == "ok", run.until)
        http("POST", run.url("relay-1") + "/fault?status=503&for=2m")
        http("POST", run.url("sink-1") + "/fault?delay=1s&for=2m")
        # A sender exits after its last message: the senders are read halfway, the rest near the end.
        run.wait_for_records(3 * EACH // 2)
        metrics = run.metrics(SENDERS)
        run.wait_for_records(3 * EACH - 6)
        metrics.update(run.metrics(SERVERS))
        records, total = run.finish("with rotel receiving")
    finally:
        run.stop()
    # The tiers flushed their spans before they exited; rotel prints them as they come.
    expected = len(records)
    wait_for("the last spans printed by rotel",
             lambda: len({s["Trace ID"] for s in parse_rotel(open(rotel_log).read()) if s["service"] == "sink"})
             >= expected, time.monotonic() + 10)
    return parse_rotel(open(rotel_log).read()), records, metrics, total


class Refusing(http_server.BaseHTTPRequestHandler):
    """Answers every POST 503 with Retry-After: 1."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(503)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def failing_run(base, what, endpoint):
    """A run whose receiver fails as `what` says: nothing lost, failures and drops counted, relays' memory bounded."""
    run = Run(base, {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT": "1000",
                     "OTEL_BSP_MAX_QUEUE_SIZE": "8", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4"})
    try:
        run.wait_for_records(3 * EACH - 6)
        metrics = run.metrics(SERVERS)
        rss = max(run.peak_rss_kib("relay-1"), run.peak_rss_kib("relay-2"))
        started = time.monotonic()
        records, total = run.finish(what)
        took = time.monotonic() - started
    finally:
        run.stop()
    failures = sum(metric(t, "three_tier_span_export_failures_total") for t in metrics.values())
    dropped = sum(metric(t, "three_tier_spans_dropped_total") for t in metrics.values())
    if not failures or not dropped or rss > MAX_RSS_KIB:
        fail(f"{what}: {failures:.0f} export failures and {dropped:.0f} dropped spans counted (both should be), "
             f"relays' peak memory {rss} KiB (at most {MAX_RSS_KIB})")
    print(f"{what}: {total}; {failures:.0f} export failures and {dropped:.0f} dropped spans counted; relays' peak "
          f"memory {rss} KiB; the last 6 messages and the flush took {took:.1f} s")


def main(base):
    traces_run(base)
    # Nothing listening: a port bound and never listened on refuses connections.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", base + 320))
        failing_run(base, "nothing listening", f"http://127.0.0.1:{base + 320}")
    # rotel stopped: the kernel accepts, nothing answers.
    with open(os.devnull, "w") as output:
        stalled = start_rotel(base + 318, output)
        stalled.send_signal(signal.SIGSTOP)
        try:
            failing_run(base, "rotel stopped (SIGSTOP)", f"http://127.0.0.1:{base + 318}")
        finally:
            stop(stalled)
    # A receiver answering 503 with Retry-After.
    server = http_server.ThreadingHTTPServer(("127.0.0.1", base + 321), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        failing_run(base, "answering 503 with Retry-After: 1", f"http://127.0.0.1:{base + 321}")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 19800)
