"""Writes the rendered lab overlay's Deployments as podman 4.3 can play them, one file each.

Usage: python3 scripts/checks/lab_for_kube_play.py LAB.yaml APPLOG DIR
Each Deployment goes to DIR/kube-<name>.yaml with one replica, without the
POD_IP variable (podman 4.3 cannot fill it from the downward API; the tiers
then use the pod's address), and its hostPath pointed at APPLOG.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import os
import sys

import yaml


def main(lab, applog, out):
    for doc in yaml.safe_load_all(open(lab)):
        if not doc or doc["kind"] != "Deployment":
            continue
        doc["spec"]["replicas"] = 1
        pod = doc["spec"]["template"]["spec"]
        for c in pod["containers"]:
            c["env"] = [e for e in c.get("env", []) if e["name"] != "POD_IP"]
        for v in pod.get("volumes", []):
            if "hostPath" in v:
                v["hostPath"]["path"] = applog
        with open(os.path.join(out, f"kube-{doc['metadata']['name']}.yaml"), "w") as f:
            yaml.safe_dump(doc, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
