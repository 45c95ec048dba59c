#!/usr/bin/env python3
"""A rolling update under load, rehearsed the way Kubernetes does it.

Run by scripts/rollout-rehearsal.sh inside a network namespace of its own,
whose /etc/resolv.conf (bind-mounted from /etc/netns/<ns>/resolv.conf) is a
pod's: the cluster DNS (scripts/lib/clusterdns.sh, started here) answers
relay-svc and sink-svc with their ClusterIPs, as CoreDNS does. It plays the
parts of a cluster that decide whether a rollout loses messages:

- pods: each replica is a process with an address of its own (POD_IP,
  LISTEN_ADDR <ip>:8080) and the rendered base's env (RELAY_URL, SINK_URL
  naming the Services), plus whatever the caller sets for the tiers;
- Services: relay-svc and sink-svc are virtual IPs that kube-proxy's iptables
  rules spread over the ready endpoints (scripts/lib/clusterip.sh), each change
  one atomic iptables-restore;
- the endpoint controller: a pod's endpoint is added once its readiness probe
  passes (the manifest's periodSeconds, failureThreshold, timeoutSeconds), and
  removed when the pod is deleted, after a propagation delay (kube-proxy's
  sync); the pessimistic variant removes it only once a probe sees 503;
- the Deployment controller: maxSurge 1, maxUnavailable 0: start a new pod,
  wait until it is ready for minReadySeconds, delete an old one (SIGTERM, then
  SIGKILL after terminationGracePeriodSeconds), repeat, for relays then sinks.
  The old pods run with DEMO_VERSION=blue and the new ones with green, as
  `kubectl set env deployment/relays DEMO_VERSION=green` would roll them.

Load: 3 senders (SEND_INTERVAL 50ms, a SEND_COUNT that outlasts the rollout)
and an open-loop client posting at a fixed rate through relay-svc with the
senders' retry policy. The outcome: per sender, messages lost (sent, in no
sink's log), duplicates, non-2xx answers and retries, and the longest gap
between 2xx answers; printed as a Markdown table and as JSON (--json FILE).
And the versions: each sender's /flow, read every half second, names the
relay and sink version of every message it delivered; the JSON counts them
per tier, and lists the delivered messages that named no known version and
those among each sender's last 20 that went through an old pod.
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time

# The launcher every place shares (scripts/topology.py) and the delivery count (scripts/checks/delivery.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import topology  # noqa: E402
from checks.delivery import report as loss_report  # noqa: E402

SERVICES = {"relays": ("relay-svc", "10.96.0.30"), "sinks": ("sink-svc", "10.96.0.20")}
# The cluster DNS (kube-dns's usual ClusterIP) and the namespace the pods' resolv.conf searches.
DNS_IP, NAMESPACE = "10.96.0.10", "tt"
SENDER_INTERVAL = 0.05
# What each retried or failed attempt met, for the report.
REASONS = []
RETRIES, BACKOFF_BASE, BACKOFF_MAX = 3, 0.1, 5.0
# DEMO_VERSION before and after the rollout; what each sender's last messages must have met.
OLD, NEW, LAST = "blue", "green", 20


def log(text):
    print(f"[{time.monotonic() - START:6.1f}s] {text}", flush=True)


START = time.monotonic()


class Pod:
    """One replica: a tier process (scripts/topology.py's `TierProcess`) with an address of its own."""

    def __init__(self, deployment, name, ip, binary, env, logdir):
        self.deployment, self.name, self.ip = deployment, name, ip
        self.log_path = os.path.join(logdir, f"{name}.log")
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"], check=True)
        command, env = topology.on_host(binary, ip, 8080, dict(env, LOG_FORMAT="json"))
        self.tier = topology.TierProcess(name, command, env, f"{ip}:8080", output=self.log_path)
        self.proc = self.tier.process
        self.ready = False
        self.ready_since = None
        self.failures = 0
        self.next_probe = time.monotonic()
        self.deleted_at = None
        self.saw_503 = None

    def probe(self, timeout):
        try:
            conn = http.client.HTTPConnection(self.ip, 8080, timeout=timeout)
            conn.request("GET", "/readyz")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def delete(self, grace):
        """What the kubelet does: SIGTERM now, SIGKILL after the grace period."""
        self.deleted_at = time.monotonic()
        code = self.tier.stop(grace)
        log(f"{self.name}: exited {code}, {time.monotonic() - self.deleted_at:.1f}s after SIGTERM")


def clusterdns(function, *args):
    """Calls a function of scripts/lib/clusterdns.sh (the cluster DNS) with `args`."""
    subprocess.run(["bash", "-c", f'source scripts/lib/clusterdns.sh && {function} "$@"', "_", *args], check=True)


class Cluster:
    """Pods, their endpoints in the Services, and the loop that keeps those in step."""

    def __init__(self, args, manifests):
        self.args, self.manifests = args, manifests
        self.pods = {"senders": [], "relays": [], "sinks": []}
        self.next_ip = {"senders": 1, "relays": 1, "sinks": 1}
        self.subnet = {"senders": 1, "relays": 2, "sinks": 3}
        self.applied = {name: None for name in SERVICES}
        self.lock = threading.Lock()
        self.stopping = False
        subprocess.run(["bash", "-c", "source scripts/lib/clusterip.sh && clusterip_init"], check=True)
        self.dns_dir = os.path.join(args.logdir, "dns")
        clusterdns("clusterdns_start", self.dns_dir, NAMESPACE, DNS_IP)
        for deployment, (name, vip) in SERVICES.items():
            clusterdns("clusterdns_set", self.dns_dir, name, vip)
            self.apply(deployment, [])

    def start_pod(self, deployment, extra_env=None):
        m = self.manifests[deployment]
        n = self.next_ip[deployment]
        self.next_ip[deployment] += 1
        ip = f"10.244.{self.subnet[deployment]}.{n}"
        env = {"PATH": os.environ.get("PATH", ""), **m["env"], **(extra_env or {})}
        if deployment != "senders":
            env.update(self.args.tier_env)
        pod = Pod(deployment, f"{deployment[:-1]}-{n}", ip, os.path.join(self.args.bin, m["binary"]), env, self.args.logdir)
        with self.lock:
            self.pods[deployment].append(pod)
        log(f"{pod.name}: started at {ip}")
        return pod

    def apply(self, deployment, ips):
        name, vip = SERVICES[deployment]
        endpoints = [f"{ip}:8080" for ip in sorted(ips)]
        subprocess.run(
            ["bash", "-c", 'source scripts/lib/clusterip.sh && clusterip_set "$@"', "_", name, vip, "80", *endpoints],
            check=True,
        )
        if self.applied[deployment] is not None:
            log(f"{name}: endpoints {', '.join(sorted(ips)) or 'none'}")
        self.applied[deployment] = sorted(ips)

    def in_service(self, pod, now):
        """Whether kube-proxy still sends new connections to `pod`."""
        if pod.deleted_at is None:
            return pod.ready
        # Deleted: EndpointSlice says not ready at once; kube-proxy follows after a delay.
        if self.args.pessimistic:
            return pod.saw_503 is None or now < pod.saw_503 + self.args.propagation
        return now < pod.deleted_at + self.args.propagation

    def control_loop(self):
        """Probes every pod on its period and updates the Services' endpoints."""
        while not self.stopping:
            now = time.monotonic()
            with self.lock:
                pods = [p for ps in self.pods.values() for p in ps if p.proc.poll() is None]
            for pod in pods:
                if now < pod.next_probe:
                    continue
                m = self.manifests[pod.deployment]["readiness"]
                pod.next_probe = now + m["periodSeconds"]
                ok = pod.probe(m["timeoutSeconds"])
                if ok:
                    pod.failures = 0
                    if not pod.ready:
                        pod.ready, pod.ready_since = True, time.monotonic()
                else:
                    pod.failures += 1
                    if pod.deleted_at is not None and pod.saw_503 is None:
                        pod.saw_503 = time.monotonic()
                    if pod.failures >= m["failureThreshold"]:
                        pod.ready = False
            for deployment in SERVICES:
                with self.lock:
                    ips = [p.ip for p in self.pods[deployment] if self.in_service(p, time.monotonic())]
                if sorted(ips) != self.applied[deployment]:
                    self.apply(deployment, ips)
            time.sleep(0.05)

    def roll(self, deployment):
        """maxSurge 1, maxUnavailable 0: one new pod, ready for minReadySeconds, then one old one deleted."""
        m = self.manifests[deployment]
        old = [p for p in self.pods[deployment] if p.deleted_at is None]
        for victim in old:
            new = self.start_pod(deployment, {"DEMO_VERSION": NEW})
            while not (new.ready and time.monotonic() - new.ready_since >= m["minReadySeconds"]):
                if new.proc.poll() is not None:
                    sys.exit(f"rehearsal: {new.name} exited {new.proc.returncode}")
                time.sleep(0.05)
            log(f"{new.name}: ready for minReadySeconds={m['minReadySeconds']}; deleting {victim.name}")
            victim.delete(m["grace"])


class OpenLoopClient:
    """Posts through relay-svc at a fixed rate, each message on a thread of its own, retrying as the sender does."""

    def __init__(self, rate):
        self.rate, self.results, self.threads = rate, {}, []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def send(self, n):
        rid = f"10.244.9.1-{n}"
        body = f"open-loop message {n}"
        attempts, outcome = 0, None
        while True:
            attempts += 1
            try:
                conn = http.client.HTTPConnection("relay-svc", 80, timeout=5)
                conn.request("POST", "/relay.php", body, {"X-Request-Id": rid, "Content-Type": "text/plain", "Connection": "close"})
                status = conn.getresponse().status
                conn.close()
                outcome = status
            except OSError as e:
                outcome = type(e).__name__
            if not (isinstance(outcome, int) and 200 <= outcome < 300):
                REASONS.append(f"open loop {rid}: attempt {attempts}: {outcome}")
            retryable = not isinstance(outcome, int) or outcome in (502, 503, 504)
            if not retryable or attempts > RETRIES:
                break
            ceiling = min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_MAX)
            time.sleep(ceiling / 2 + random.random() * ceiling / 2)
        with self.lock:
            self.results[rid] = (outcome, attempts, time.monotonic())

    def run(self):
        n = 0
        next_at = time.monotonic()
        while not self.stop.is_set():
            n += 1
            t = threading.Thread(target=self.send, args=(n,))
            t.start()
            self.threads.append(t)
            next_at += 1 / self.rate
            self.stop.wait(max(0, next_at - time.monotonic()))
        for t in self.threads:
            t.join()


class FlowWatcher:
    """Reads each sender's /flow every half second: the versions each delivered message went through."""

    def __init__(self, senders):
        self.senders, self.seen = senders, {}
        self.reads, self.failed_reads = 0, []
        self.stop = threading.Event()

    def read(self, pod):
        self.reads += 1
        try:
            conn = http.client.HTTPConnection(pod.ip, 8080, timeout=1)
            conn.request("GET", "/flow")
            flow = json.loads(conn.getresponse().read())
            conn.close()
        except (OSError, ValueError) as e:
            self.failed_reads.append(f"{pod.name}: {e!r}")
            return
        for m in flow["messages"]:
            if m["status"] is not None and 200 <= m["status"] < 300:
                self.seen[m["id"]] = (m["relay_version"], m["sink_version"])

    def run(self):
        while not self.stop.is_set():
            for pod in self.senders:
                self.read(pod)
            self.stop.wait(0.5)

    def versions(self):
        """Per tier, messages per DEMO_VERSION; the unknown ones; the last ones through an old pod."""
        label = lambda v: v.rsplit(" ", 1)[-1] if v else None  # noqa: E731
        counts = {"relay": {}, "sink": {}}
        by_sender = {}
        for rid, (relay, sink) in self.seen.items():
            for tier, v in (("relay", relay), ("sink", sink)):
                counts[tier][label(v)] = counts[tier].get(label(v), 0) + 1
            sender, n = rid.rsplit("-", 1)
            by_sender.setdefault(sender, []).append((int(n), rid, label(relay), label(sink)))
        unknown = sorted(rid for rid, vs in self.seen.items() if any(label(v) not in (OLD, NEW) for v in vs))
        last = [m for ms in by_sender.values() for m in sorted(ms)[-LAST:]]
        last_old = sorted(rid for (_, rid, relay, sink) in last if (relay, sink) != (NEW, NEW))
        return {"counts": counts, "unknown": unknown, "last_checked": len(last), "last_old": last_old,
                "seen": len(self.seen), "reads": self.reads, "failed_reads": self.failed_reads[:5]}


def seconds(text):
    """A tier duration (250ms, 5s, 1m, 7) in seconds."""
    text = text.strip()
    for suffix, scale in (("ms", 0.001), ("s", 1), ("m", 60)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def read_json_lines(path):
    for line in open(path, errors="replace"):
        try:
            yield json.loads(line)
        except ValueError:
            pass


def longest_gap(times, start, end):
    """The longest time within [start, end] without a 2xx."""
    points = [start] + sorted(t for t in times if start <= t <= end) + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def delivered(cluster, sink):
    """Per request id the sinks logged: how many times, from `sink --loss-report --json` of their logs."""
    data = loss_report(sink, [pod.log_path for pod in cluster.pods["sinks"]])
    logged = {}
    for ip, tally in data["senders"].items():
        missing = {n for first, last in tally["missing"] for n in range(first, last + 1)}
        twice = set(tally["duplicates"])
        for n in range(1, tally["highest"] + 1):
            if n not in missing:
                logged[f"{ip}-{n}"] = 2 if n in twice else 1
    return logged


def outcome(cluster, client, window):
    """Joins what the senders sent with what the sinks logged."""
    logged = delivered(cluster, os.path.join(cluster.args.bin, "sink"))
    rows = []
    for pod in cluster.pods["senders"]:
        sent, retried, failed, ok_times = set(), 0, 0, []
        for e in read_json_lines(pod.log_path):
            kind = e.get("event")
            if kind == "sending":
                sent.add(e["request_id"])
            elif kind == "retry":
                retried += 1
                REASONS.append(f"{pod.name} {e.get('request_id')}: {e.get('message')}")
            elif kind == "failed":
                failed += 1
            elif kind == "reply":
                ok_times.append(parse_ts(e["ts"]))
        rows.append(row(pod.name, sent, logged, retried, failed, pod.proc.returncode, ok_times, window))
    results = client.results
    ok_times = [wall_of(t) for (o, _, t) in results.values() if isinstance(o, int) and 200 <= o < 300]
    retried = sum(a - 1 for (_, a, _) in results.values())
    failed = sum(1 for (o, _, _) in results.values() if not (isinstance(o, int) and 200 <= o < 300))
    rows.append(row(f"open loop, {client.rate:g}/s", set(results), logged, retried, failed, None, ok_times, window))
    return rows


def row(client, sent, logged, retried, failed, exit_code, ok_times, window):
    return {
        "client": client,
        "sent": len(sent),
        "lost": sum(1 for r in sent if r not in logged),
        "duplicates": sum(1 for r in sent if logged.get(r, 0) > 1),
        "retried": retried,
        "failed": failed,
        "exit": exit_code,
        "longest_gap_s": round(longest_gap(ok_times, *window), 2),
    }


def parse_ts(ts):
    """Seconds since the epoch from the logs' RFC 3339 UTC timestamps."""
    import calendar
    main, ms = ts.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S")) + int(ms) / 1000


def wall_of(monotonic):
    return time.time() - (time.monotonic() - monotonic)


def load_manifests(path):
    import yaml
    manifests = {}
    for doc in yaml.safe_load_all(open(path)):
        if not doc or doc.get("kind") != "Deployment":
            continue
        spec, pod = doc["spec"], doc["spec"]["template"]["spec"]
        container = pod["containers"][0]
        probe = container["readinessProbe"]
        manifests[doc["metadata"]["name"]] = {
            "binary": doc["metadata"]["name"][:-1],
            "replicas": spec["replicas"],
            "minReadySeconds": spec.get("minReadySeconds", 0),
            "grace": pod.get("terminationGracePeriodSeconds", 30),
            "env": {e["name"]: e["value"] for e in container.get("env", []) if "value" in e},
            "readiness": {
                "periodSeconds": probe.get("periodSeconds", 10),
                "failureThreshold": probe.get("failureThreshold", 3),
                "timeoutSeconds": probe.get("timeoutSeconds", 1),
            },
        }
    return manifests


def main():
    parser = argparse.ArgumentParser(description="rolling update rehearsal (see the module doc)")
    parser.add_argument("--bin", required=True, help="folder with sender, relay, sink")
    parser.add_argument("--manifests", required=True, help="the rendered base (kubectl kustomize kustomize/base)")
    parser.add_argument("--logdir", required=True)
    parser.add_argument("--replicas", type=int, help="pods per tier (default: the manifests')")
    parser.add_argument("--propagation", type=float, default=1.0, help="endpoint removal delay, seconds")
    parser.add_argument("--pessimistic", action="store_true", help="remove an endpoint only once a probe sees 503")
    parser.add_argument("--rate", type=float, default=20, help="open-loop client messages per second")
    parser.add_argument("--json", help="write the outcome here")
    parser.add_argument("tier_env", nargs="*", help="VAR=value for relays and sinks (e.g. DRAIN_DELAY=0)")
    args = parser.parse_args()
    args.tier_env = dict(kv.split("=", 1) for kv in args.tier_env)
    manifests = load_manifests(args.manifests)
    for deployment in SERVICES:
        if args.replicas:
            manifests[deployment]["replicas"] = args.replicas
    # The load is 3 senders, whatever the pods under the rollout.
    manifests["senders"]["replicas"] = 3
    cluster = Cluster(args, manifests)
    # The rollout's length: per replaced pod a probe period, minReadySeconds
    # and its drain, with a few seconds of load before and after.
    drain = seconds(args.tier_env.get("DRAIN_DELAY", "5s"))
    period = manifests["relays"]["readiness"]["periodSeconds"]
    per_pod = period + manifests["relays"]["minReadySeconds"] + drain
    replaced = manifests["relays"]["replicas"] + manifests["sinks"]["replicas"]
    load_seconds = 3 + per_pod * replaced + 5
    controller = threading.Thread(target=cluster.control_loop, daemon=True)
    controller.start()
    for deployment in ("sinks", "relays"):
        for _ in range(manifests[deployment]["replicas"]):
            cluster.start_pod(deployment, {"DEMO_VERSION": OLD})
    # Ready, and in their Services (the controller applies endpoints after probing).
    while not all(
        p.ready and p.ip in (cluster.applied[d] or []) for d in SERVICES for p in cluster.pods[d]
    ):
        time.sleep(0.05)
    log(f"all relays and sinks ready; load for about {load_seconds:.0f}s")
    count = str(int(load_seconds / SENDER_INTERVAL))
    for _ in range(manifests["senders"]["replicas"]):
        cluster.start_pod("senders", {"SEND_INTERVAL": "50ms", "SEND_COUNT": count})
    client = OpenLoopClient(args.rate)
    loader = threading.Thread(target=client.run)
    loader.start()
    watcher = FlowWatcher(cluster.pods["senders"])
    watching = threading.Thread(target=watcher.run)
    watching.start()
    time.sleep(3)
    window_start = time.time()
    for deployment in ("relays", "sinks"):
        cluster.roll(deployment)
    window_end = time.time()
    log("rollout done: every relay and sink replaced once")
    for pod in cluster.pods["senders"]:
        pod.proc.wait()
    watcher.stop.set()
    watching.join()
    client.stop.set()
    loader.join()
    rows = outcome(cluster, client, (window_start, window_end))
    cluster.stopping = True
    clusterdns("clusterdns_stop", cluster.dns_dir)
    # The outcome is in; what is still running is of no further interest.
    for pod in (p for ps in cluster.pods.values() for p in ps):
        if pod.proc.poll() is None:
            pod.proc.kill()
            pod.proc.wait()
    print()
    print("| client | sent | lost | duplicates | attempts retried | failed after retries | exit | longest gap without a 2xx, s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        exit_code = "" if r["exit"] is None else r["exit"]
        print(f"| {r['client']} | {r['sent']} | {r['lost']} | {r['duplicates']} | {r['retried']} | {r['failed']} | {exit_code} | {r['longest_gap_s']} |")
    if REASONS:
        print()
        print(f"What the {len(REASONS)} retried or failed attempts met (at most 10 shown):")
        for reason in REASONS[:10]:
            print(f"- {reason}")
    versions = watcher.versions()
    print()
    print(f"Versions of delivered messages, from the senders' /flow: relays {versions['counts']['relay']}, "
          f"sinks {versions['counts']['sink']}; each sender's last {LAST} through {NEW} pods only: "
          f"{versions['last_checked'] - len(versions['last_old'])} of {versions['last_checked']}")
    if args.json:
        outcome_json = {"rows": rows, "rollout_seconds": round(window_end - window_start, 1), "versions": versions}
        json.dump(outcome_json, open(args.json, "w"))


if __name__ == "__main__":
    main()
