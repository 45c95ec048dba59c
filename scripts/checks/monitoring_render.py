"""Checks that the monitoring component only adds its three objects to an overlay.

Usage: python3 scripts/checks/monitoring_render.py WITHOUT.yaml WITH.yaml OUT_DIR
WITHOUT.yaml is an overlay rendered as it is, WITH.yaml the same overlay with
components/monitoring. Every object of WITHOUT.yaml must be in WITH.yaml
unchanged, and WITH.yaml must add exactly the PodMonitor, the PrometheusRule
and the dashboard ConfigMap (labelled grafana_dashboard: "1", holding valid
JSON whose latency queries show exemplars). The ConfigMap is written to
OUT_DIR/dashboard-configmap.yaml, for kubernetes-validate.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import os
import sys

import yaml


def key(doc):
    return (doc["kind"], doc["metadata"].get("namespace"), doc["metadata"]["name"])


def main(without, with_, out):
    before = {key(d): d for d in yaml.safe_load_all(open(without)) if d}
    after = {key(d): d for d in yaml.safe_load_all(open(with_)) if d}
    changed = [k for k, d in before.items() if after.get(k) != d]
    if changed:
        sys.exit(f"monitoring: the component changed objects of the overlay: {changed}")
    added = sorted(set(after) - set(before))
    if sorted(k[0] for k in added) != ["ConfigMap", "PodMonitor", "PrometheusRule"]:
        sys.exit(f"monitoring: expected a ConfigMap, a PodMonitor and a PrometheusRule added, got {added}")
    dashboard = next(after[k] for k in added if k[0] == "ConfigMap")
    if dashboard["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
        sys.exit("monitoring: the dashboard ConfigMap lacks the grafana_dashboard: \"1\" label")
    panels = json.loads(dashboard["data"]["three-tier.json"])["panels"]
    # Latency panels show exemplars, which link to the trace by its id.
    latency = [t for p in panels for t in p.get("targets", []) if "_bucket" in t.get("expr", "")]
    if not latency or not all(t.get("exemplar") is True for t in latency):
        sys.exit(f"monitoring: a latency query of the dashboard does not show exemplars: {latency}")
    with open(os.path.join(out, "dashboard-configmap.yaml"), "w") as f:
        yaml.safe_dump(dashboard, f)
    print(f"monitoring: adds {', '.join(k[0] + '/' + k[2] for k in added)} ({len(panels)} panels, "
          f"{len(latency)} latency queries with exemplars); "
          f"the overlay's {len(before)} objects unchanged")


if __name__ == "__main__":
    main(*sys.argv[1:4])
