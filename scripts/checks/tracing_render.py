"""Checks that the tracing component adds to an overlay only what it says: four env entries per tier and one NetworkPolicy.

Usage: python3 scripts/checks/tracing_render.py WITHOUT.yaml WITH.yaml
WITHOUT.yaml is an overlay rendered as it is, WITH.yaml the same overlay with
components/tracing. Every object but the Deployments must be unchanged; each
Deployment's container must gain, after its own env, exactly POD_NAME and
POD_NAMESPACE from the downward API, OTEL_RESOURCE_ATTRIBUTES naming them
(after them, so that Kubernetes expands them) and an OTLP/HTTP
OTEL_EXPORTER_OTLP_ENDPOINT; and one NetworkPolicy must be added that lets
the app's pods reach port 4318.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import copy

import yaml

ADDED_ENV = [
    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)"},
]


def key(doc):
    return (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])


def check_deployment(name, before, after):
    container = after["spec"]["template"]["spec"]["containers"][0]
    env = container["env"]
    own = before["spec"]["template"]["spec"]["containers"][0]["env"]
    endpoint = env[-1] if env else {}
    if env[:len(own)] != own or env[len(own):-1] != ADDED_ENV or endpoint.get("name") != "OTEL_EXPORTER_OTLP_ENDPOINT" \
            or not str(endpoint.get("value", "")).startswith("http://") or not endpoint["value"].endswith(":4318"):
        sys.exit(f"tracing: {name}: the env is not its own followed by {[e['name'] for e in ADDED_ENV]} and an "
                 f"OTLP/HTTP endpoint on 4318: {env[len(own):]}")
    # Apart from the env, nothing changed.
    stripped = copy.deepcopy(after)
    stripped["spec"]["template"]["spec"]["containers"][0]["env"] = own
    if stripped != before:
        sys.exit(f"tracing: {name}: changed beyond its env")


def main(without, with_):
    before = {key(d): d for d in yaml.safe_load_all(open(without)) if d}
    after = {key(d): d for d in yaml.safe_load_all(open(with_)) if d}
    deployments = [k for k in before if k[0] == "Deployment"]
    for k, doc in before.items():
        if k[0] == "Deployment":
            check_deployment(k[2], doc, after[k])
        elif after.get(k) != doc:
            sys.exit(f"tracing: the component changed {k}")
    added = sorted(set(after) - set(before))
    if [k[0] for k in added] != ["NetworkPolicy"]:
        sys.exit(f"tracing: expected one NetworkPolicy added, got {added}")
    policy = after[added[0]]["spec"]
    ports = [p for rule in policy.get("egress", []) for p in rule.get("ports", [])]
    if policy["podSelector"]["matchLabels"].get("app") != "3-level-demo" or {"protocol": "TCP", "port": 4318} not in ports:
        sys.exit(f"tracing: the NetworkPolicy does not let the app's pods reach TCP 4318: {policy}")
    print(f"tracing: {len(deployments)} Deployments gain the OTLP endpoint and their pod's name and namespace as "
          f"resource attributes; one NetworkPolicy ({added[0][2]}) opens TCP 4318; nothing else changed")


if __name__ == "__main__":
    main(*sys.argv[1:3])
