"""Writes each Deployment of a rendered manifest to a file of its own, for `podman kube play`.

Usage: python3 scripts/checks/split_deployments.py RENDERED.yaml DIR
writes DIR/kube-<name>.yaml for every Deployment and prints their names.
"""
import os
import sys

import yaml


def split(rendered, out):
    names = []
    for doc in yaml.safe_load_all(open(rendered)):
        if doc and doc["kind"] == "Deployment":
            name = doc["metadata"]["name"]
            with open(os.path.join(out, f"kube-{name}.yaml"), "w") as f:
                yaml.safe_dump(doc, f)
            names.append(name)
    return names


if __name__ == "__main__":
    print(" ".join(split(sys.argv[1], sys.argv[2])))
