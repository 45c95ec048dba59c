"""Checks the crate list a scanner reads from an image: a CycloneDX SBOM.

Usage: python3 scripts/checks/crate_list.py SBOM.json TIER. The SBOM is what
`trivy image --format cyclonedx` wrote for the tier's scratch image, whose
only file is the binary: the crates come from the list `cargo auditable`
embedded in it. Requires ureq-proto (ureq's protocol core, the client),
httpdate, gethostname and the patched
tiny_http under its own version (`+three-tier.` build metadata, not
upstream's 0.12.0); prints the count and those four.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import json
import sys

REQUIRED = ("ureq-proto", "httpdate", "gethostname", "tiny_http")


def crates(path):
    document = json.load(open(path))
    return {c["name"]: c.get("version", "") for c in document.get("components", []) if c.get("type") == "library"}


if __name__ == "__main__":
    path, tier = sys.argv[1], sys.argv[2]
    found = crates(path)
    missing = [name for name in REQUIRED if name not in found]
    if missing:
        sys.exit(f"crate_list: the {tier} image's SBOM lacks {missing} (it lists {sorted(found)})")
    if "+three-tier." not in found["tiny_http"]:
        sys.exit(f"crate_list: the {tier} image lists tiny_http {found['tiny_http']}, not the patched copy's version")
    named = ", ".join(f"{name} {found[name]}" for name in REQUIRED)
    print(f"{tier} image: a scanner reads {len(found)} crates from its binary, among them {named}")
