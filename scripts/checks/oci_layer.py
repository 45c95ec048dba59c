"""Prints the path of the first layer of the image in an extracted OCI archive.

Usage: python3 scripts/checks/oci_layer.py DIR, where DIR holds an extracted
`podman save --format oci-archive` (index.json, blobs/sha256/...).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import os
import sys


def first_layer(root):
    index = json.load(open(os.path.join(root, "index.json")))
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.load(open(os.path.join(root, "blobs", "sha256", digest)))
    return os.path.join(root, "blobs", "sha256", manifest["layers"][0]["digest"].split(":")[1])


if __name__ == "__main__":
    print(first_layer(sys.argv[1]))
