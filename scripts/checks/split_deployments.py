"""Writes each Deployment of a rendered manifest to a file of its own, for `podman kube play`.

Usage: python3 scripts/checks/split_deployments.py RENDERED.yaml DIR
writes DIR/kube-<name>.yaml for every Deployment and prints their names.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
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
