#!/usr/bin/env python3
"""Proves the monitoring kit (kustomize/components/monitoring) against a real Prometheus.

1. Renders the lab overlay with the component; `promtool check rules` on the
   PrometheusRule's groups and `promtool test rules` on
   tests/monitoring/rules.test.yaml (a firing and a quiet case per alert).
2. Runs the on-host 3/2/3 (scripts/run-local.sh, with LOG_DIR) and Debian's
   Prometheus on loopback, scraping every tier as the PodMonitor does (the
   pods' app and role labels on every series; OpenMetrics first) with the
   rules loaded and exemplar storage on.
3. Healthy run: no alert pending or firing; every query of the dashboard
   returns data; the latency histograms' exemplars carry trace ids that the
   sinks' records hold; each tier's OpenMetrics exposition parses with
   prometheus_client's parser.
4. One sink stopped (SIGSTOP): ThreeTierTargetDown for that sink fires within
   its `for:` plus two scrape intervals (and rule evaluation).

Every wait is bounded; every process started here is stopped here, by PID.
Needs kubectl (scripts/lib/kubectl.sh), prometheus, promtool, PyYAML and
prometheus_client (scripts/setup-tests.sh installs them).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml
from prometheus_client.openmetrics.parser import text_string_to_metric_families

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRAPE_SECONDS = 1
# Rules are evaluated twice a scrape and a scrape times out at a quarter of
# one, so a target that stops answering is pending within two scrapes.
EVALUATION = "500ms"
SCRAPE_TIMEOUT = "250ms"
BASE_PORT = int(os.environ.get("BASE_PORT", "19600"))


def fail(text):
    sys.exit(f"test-monitoring: FAIL: {text}")


def kubectl():
    out = subprocess.run(["bash", "-c", "source scripts/lib/kubectl.sh && echo $kubectl"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def render(work):
    """The lab overlay with the component, rendered; returns its documents."""
    overlay = os.path.join(work, "overlay")
    os.makedirs(overlay)
    with open(os.path.join(overlay, "kustomization.yaml"), "w") as f:
        # kustomize takes relative paths only.
        f.write(f"resources:\n  - {os.path.relpath(os.path.join(ROOT, 'kustomize/overlays/lab'), overlay)}\n"
                f"components:\n  - {os.path.relpath(os.path.join(ROOT, 'kustomize/components/monitoring'), overlay)}\n")
    text = subprocess.run([kubectl(), "kustomize", overlay], capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def of_kind(docs, kind):
    found = [d for d in docs if d["kind"] == kind]
    if len(found) != 1:
        fail(f"expected one {kind}, rendered {len(found)}")
    return found[0]


def unit_tests(docs, work):
    rule = of_kind(docs, "PrometheusRule")
    rules = os.path.join(work, "rules.yaml")
    with open(rules, "w") as f:
        yaml.safe_dump({"groups": rule["spec"]["groups"]}, f)
    subprocess.run(["promtool", "check", "rules", rules], check=True, stdout=subprocess.DEVNULL)
    shutil.copy(os.path.join(ROOT, "tests/monitoring/rules.test.yaml"), work)
    run = subprocess.run(["promtool", "test", "rules", os.path.join(work, "rules.test.yaml")],
                         capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"promtool test rules:\n{run.stdout}{run.stderr}")
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    print(f"promtool: {len(alerts)} alerts checked, each with a firing and a quiet case, all passed")
    return rules, alerts


def get(url, accept=None, timeout=5):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=timeout) as r:
        return r.read().decode()


def api(port, path, **params):
    url = f"http://127.0.0.1:{port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    data = json.loads(get(url))
    if data.get("status") != "success":
        fail(f"{path}: {data}")
    return data["data"]


def wait_for(what, seconds, check):
    """Polls `check` every 0.5 s until it returns something true, at most
    `seconds`; a server not answering yet counts as not yet."""
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    fail(f"{what} within {seconds} s")


class System:
    """The on-host 3/2/3 (scripts/run-local.sh) and a Prometheus scraping it."""

    def __init__(self, work, rules):
        self.work = work
        self.logs = os.path.join(work, "logs")
        os.makedirs(self.logs)
        pids = os.path.join(work, "pids")
        env = dict(os.environ, BASE_PORT=str(BASE_PORT), SEND_INTERVAL="200ms", LOG_DIR=self.logs,
                   PIDS_FILE=pids, DRAIN_DELAY="0")
        self.local = subprocess.Popen(["bash", "scripts/run-local.sh"], cwd=ROOT, env=env,
                                      stdout=open(os.path.join(work, "run-local.log"), "w"),
                                      stderr=subprocess.STDOUT)
        lines = wait_for("run-local.sh started 8 tiers", 120,
                         lambda: os.path.exists(pids) and len(open(pids).read().splitlines()) == 8
                         and open(pids).read().splitlines())
        self.tiers = {name: (int(pid), addr) for name, pid, addr in (l.split() for l in lines)}
        self.prometheus_port = BASE_PORT + 900
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            yaml.safe_dump(self.scrape_config(rules), f)
        self.prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{self.prometheus_port}", "--enable-feature=exemplar-storage"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "prometheus.log"), "w"))

    def scrape_config(self, rules):
        """What the PodMonitor asks the operator to configure, with loopback targets."""
        targets = [{"targets": [addr], "labels": {"app": "3-level-demo", "role": name.split("-")[0],
                                                  "namespace": "local", "pod": name}}
                   for name, (_, addr) in sorted(self.tiers.items())]
        return {
            "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": EVALUATION,
                       "scrape_timeout": SCRAPE_TIMEOUT},
            "rule_files": [rules],
            "scrape_configs": [{"job_name": "three-tier", "metrics_path": "/metrics", "static_configs": targets}],
        }

    def stop(self):
        for process in (self.prometheus, self.local):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for pid, _ in self.tiers.values():
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        for process in (self.prometheus, self.local):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def healthy(system, dashboard):
    port = system.prometheus_port
    wait_for("Prometheus scraped all 8 tiers", 60, lambda: len([
        t for t in api(port, "targets")["activeTargets"] if t["health"] == "up"]) == 8)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    # A rate needs two samples of a series: poll until every query has data.
    give_up = time.monotonic() + 60
    while empty := [e for e in exprs if not api(port, "query", query=e)["result"]]:
        if time.monotonic() > give_up:
            fail(f"dashboard queries without data after 60 s: {empty}")
        time.sleep(0.5)
    # The alerts are judged on that data once every group has been evaluated after it.
    since = time.time()
    wait_for("a rule evaluation after the dashboard had data", 30, lambda: all(
        evaluated_at(g["lastEvaluation"]) > since for g in api(port, "rules")["groups"]))
    alerts = api(port, "alerts")["alerts"]
    if alerts:
        fail(f"alerts in a healthy run: {[(a['labels']['alertname'], a['state']) for a in alerts]}")
    print(f"healthy run: no alert pending or firing; all {len(exprs)} dashboard queries return data")


def evaluated_at(stamp):
    """Seconds since the epoch of Prometheus's RFC 3339 time with up to nanoseconds."""
    whole, _, rest = stamp.rstrip("Z").partition(".")
    fraction = float("0." + rest) if rest else 0.0
    return datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc).timestamp() + fraction


def exemplars(system):
    now = time.time()
    found = api(system.prometheus_port, "query_exemplars", query="three_tier_sink_request_duration_seconds_bucket",
                start=now - 120, end=now)
    trace_ids = {e["labels"]["trace_id"] for series in found for e in series["exemplars"]}
    if not trace_ids:
        fail("no exemplars stored for three_tier_sink_request_duration_seconds")
    records = "".join(open(os.path.join(system.logs, f)).read() for f in os.listdir(system.logs)
                      if f.startswith("Sink_"))
    # A trace id is an opaque 32-digit token: finding it is not reading the record's format.
    logged = [t for t in trace_ids if t in records]
    if not logged:
        fail(f"no exemplar's trace id is in the sinks' records: {sorted(trace_ids)[:3]}")
    print(f"exemplars: {len(trace_ids)} trace ids in Prometheus, {len(logged)} found in the sinks' records")


def openmetrics(system):
    for name in ("sender-1", "relay-1", "sink-1"):
        text = get(f"http://{system.tiers[name][1]}/metrics", accept="application/openmetrics-text; version=1.0.0")
        families = list(text_string_to_metric_families(text))
        with_exemplars = [s for f in families for s in f.samples if s.exemplar]
        if name != "sink-1" and not with_exemplars:
            fail(f"{name}: no exemplar in its OpenMetrics exposition")
    print("openmetrics: every tier's exposition parses with prometheus_client; sender and relay carry exemplars")


def sink_stopped(system, rule_for):
    pid, _ = system.tiers["sink-2"]
    os.kill(pid, signal.SIGSTOP)
    stopped = time.time()
    limit = rule_for + 2 * SCRAPE_SECONDS

    def firing():
        return [a for a in api(system.prometheus_port, "alerts")["alerts"]
                if a["labels"]["alertname"] == "ThreeTierTargetDown" and a["labels"].get("pod") == "sink-2"
                and a["state"] == "firing"]
    alert = wait_for(f"ThreeTierTargetDown firing for the stopped sink-2 (limit {limit} s)", limit + 10, firing)[0]
    os.kill(pid, signal.SIGCONT)
    # Prometheus fires at the first evaluation `for:` after the alert became
    # active, so the time it fired is activeAt + for: (the poll adds nothing).
    took = evaluated_at(alert["activeAt"]) + rule_for - stopped
    if took > limit:
        fail(f"ThreeTierTargetDown fired {took:.1f} s after the stop, more than for: {rule_for} s + two scrapes")
    print(f"sink-2 stopped: ThreeTierTargetDown fired after {took:.1f} s (for: {rule_for} s, scrape every {SCRAPE_SECONDS} s)")


def seconds(duration):
    units = {"s": 1, "m": 60, "h": 3600}
    return int(duration[:-1]) * units[duration[-1]]


def main():
    os.chdir(ROOT)
    work = tempfile.mkdtemp(prefix="tt-monitoring-")
    system = None
    try:
        docs = render(work)
        rules, _ = unit_tests(docs, work)
        dashboard = json.loads(of_kind(docs, "ConfigMap")["data"]["three-tier.json"])
        rule_for = next(seconds(r["for"]) for g in of_kind(docs, "PrometheusRule")["spec"]["groups"]
                        for r in g["rules"] if r["alert"] == "ThreeTierTargetDown")
        system = System(work, rules)
        healthy(system, dashboard)
        exemplars(system)
        openmetrics(system)
        sink_stopped(system, rule_for)
        print("test-monitoring: all checks passed")
    finally:
        if system:
            system.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
