"""Checks a `kubectl create secret docker-registry` Secret: its type, and the login it holds for HOST.

Usage: python3 scripts/checks/regcred.py REGCRED.yaml HOST
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import base64
import json
import sys

import yaml


def main(path, host):
    secret = yaml.safe_load(open(path))
    if secret["kind"] != "Secret" or secret["type"] != "kubernetes.io/dockerconfigjson":
        sys.exit(f"regcred: not a dockerconfigjson Secret: {secret}")
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"][host]
    if base64.b64decode(entry["auth"]).decode() != "seed:s3cret":
        sys.exit(f"regcred: wrong login for {host}: {entry}")
    print(f"regcred: kubernetes.io/dockerconfigjson for {host}, user seed")


if __name__ == "__main__":
    main(*sys.argv[1:3])
