"""Pins the overlay's three images to registry digests, keeping its comments (publish.sh --pin without kustomize).

Usage: python3 scripts/pin_images.py KUSTOMIZATION.yaml REGISTRY SENDER_DIGEST RELAY_DIGEST SINK_DIGEST
"""
import sys
try:
    from ruamel.yaml import YAML
except ImportError:
    sys.exit("publish: --pin needs kustomize on PATH or the Python package ruamel.yaml (pip install ruamel.yaml)")
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
with open(path, "w") as f:
    yaml.dump(doc, f)
