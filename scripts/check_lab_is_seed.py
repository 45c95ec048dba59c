"""Asserts that the rendered lab overlay (stdin) is the seed's deployment.

The seed (../shared/seed/kubernetes-case-study.txt) deploys Deployments
senders/relays/sinks (3/2/3) selected by app: 3-level-demo + role, images from
registry.fortaspen.com/library/<tier> pulled with the secret regcred, Services
relay-svc and sink-svc on NodePorts 30100 and 30200, SINK_URL=sink-svc/sink.php
and RELAY_URL=relay-svc/relay.php, and /var/local/app from the node mounted at
/var/local/container. Prints one line per fact checked; exits 1 on the first
that does not hold.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import sys

import yaml

docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
checked = 0


def check(ok, what):
    global checked
    if not ok:
        sys.exit(f"lab is not the seed: {what}")
    checked += 1
    print(f"ok: {what}")


seed = {"senders": ("sender", 3), "relays": ("relay", 2), "sinks": ("sink", 3)}
deployments = by_kind.get("Deployment", {})
check(sorted(deployments) == sorted(seed), f"Deployments are {sorted(seed)}")
for name, (role, replicas) in seed.items():
    d = deployments[name]
    labels = {"app": "3-level-demo", "role": role}
    spec = d["spec"]
    pod = spec["template"]["spec"]
    check(spec["replicas"] == replicas, f"{name} has {replicas} replicas")
    check(spec["selector"]["matchLabels"] == labels, f"{name} selects {labels}")
    check(all(spec["template"]["metadata"]["labels"].get(k) == v for k, v in labels.items()), f"{name} pods carry {labels}")
    (container,) = pod["containers"]
    image = container["image"].split("@")[0].split(":")[0] if "@" in container["image"] else container["image"].rsplit(":", 1)[0]
    check(image == f"registry.fortaspen.com/library/{role}", f"{name} runs registry.fortaspen.com/library/{role}")
    check(pod.get("imagePullSecrets") == [{"name": "regcred"}], f"{name} pulls with regcred")
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    if role == "sender":
        check(env.get("RELAY_URL") == "relay-svc/relay.php", "senders have RELAY_URL=relay-svc/relay.php")
    if role == "relay":
        check(env.get("SINK_URL") == "sink-svc/sink.php", "relays have SINK_URL=sink-svc/sink.php")
    if role in ("relay", "sink"):
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        check(volumes.get("applog", {}).get("hostPath", {}).get("path") == "/var/local/app", f"{name} mount the node's /var/local/app")
        check(mounts.get("applog") == "/var/local/container", f"{name} mount it at /var/local/container")
        check(env.get("LOG_DIR") == "/var/local/container", f"{name} log there (LOG_DIR)")

services = by_kind.get("Service", {})
for name, role, node_port in [("relay-svc", "relay", 30100), ("sink-svc", "sink", 30200)]:
    s = services.get(name)
    check(s is not None, f"Service {name} exists")
    check(s["spec"]["type"] == "NodePort", f"{name} is a NodePort Service")
    check(s["spec"]["selector"] == {"app": "3-level-demo", "role": role}, f"{name} selects app: 3-level-demo, role: {role}")
    (port,) = s["spec"]["ports"]
    check((port["port"], port.get("nodePort")) == (80, node_port), f"{name} serves port 80 on NodePort {node_port}")
print(f"lab renders the seed: {checked} facts checked")
