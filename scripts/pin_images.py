"""Pins an overlay's three images to registry digests, keeping its comments; the step publish.sh --pin takes.

Usage: python3 scripts/pin_images.py KUSTOMIZATION.yaml REGISTRY SENDER_DIGEST RELAY_DIGEST SINK_DIGEST

Sets each image's `newName` to REGISTRY/<tier> and its `digest`, and removes
the resource entry that keeps an unpinned overlay from rendering (prod's
`PLACEHOLDER DIGESTS: ...`, which names this step). Needs the Python package
ruamel.yaml (`pip install ruamel.yaml`).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import sys
try:
    from ruamel.yaml import YAML
except ImportError:
    sys.exit("publish: --pin needs the Python package ruamel.yaml (pip install ruamel.yaml)")
# The resource entry that keeps an overlay with placeholder digests from rendering.
PLACEHOLDER = "PLACEHOLDER DIGESTS"
path, registry, *digests = sys.argv[1:]
yaml = YAML()
yaml.preserve_quotes = True
doc = yaml.load(open(path))
images = doc.setdefault("images", [])
for tier, digest in zip(("sender", "relay", "sink"), digests):
    entry = next((i for i in images if i.get("name") == tier), None)
    if entry is None:
        entry = {"name": tier}
        images.append(entry)
    entry["newName"] = f"{registry}/{tier}"
    entry.pop("newTag", None)
    entry["digest"] = digest
resources = doc.get("resources", [])
for placeholder in [r for r in resources if str(r).startswith(PLACEHOLDER)]:
    resources.remove(placeholder)
with open(path, "w") as f:
    yaml.dump(doc, f)
