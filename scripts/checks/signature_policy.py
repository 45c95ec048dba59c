"""Writes what a node needs to verify the images' signatures on pull.

Usage: python3 scripts/checks/signature_policy.py REGISTRY PUBLIC_KEY POLICY_JSON REGISTRIES_D_YAML

POLICY_JSON is a containers-policy.json(5) that rejects every image but those
from REGISTRY (host[:port]/namespace) signed by PUBLIC_KEY with sigstore, as
the image they are pulled as (signedIdentity matchRepoDigestOrExact: by tag,
the signature must name that tag; by digest, that repository).
REGISTRIES_D_YAML is a containers-registries.d(5) file telling the puller to
read sigstore signatures from the registry's attachments (sha256-<hex>.sig).
README.md's Deploy section shows the same two files for a cluster's nodes.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import os
import sys


def policy(registry, key):
    rule = {"type": "sigstoreSigned", "keyPath": os.path.abspath(key),
            "signedIdentity": {"type": "matchRepoDigestOrExact"}}
    return {"default": [{"type": "reject"}], "transports": {"docker": {registry: [rule]}}}


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    registry, key, policy_path, registries_d = sys.argv[1:]
    with open(policy_path, "w") as f:
        json.dump(policy(registry, key), f, indent=2)
    os.makedirs(os.path.dirname(registries_d), exist_ok=True)
    with open(registries_d, "w") as f:
        f.write(f"docker:\n  {registry.split('/')[0]}:\n    use-sigstore-attachments: true\n")
