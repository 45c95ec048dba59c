"""Validates custom resources against the CRDs in tests/crds, as an API server would.

Usage: python3 scripts/checks/crd_validate.py RENDERED.yaml
Every PodMonitor and PrometheusRule in RENDERED.yaml is checked against its
CRD's OpenAPI v3 schema (jsonschema), and, as the API server's pruning does
in strict field validation, any field the schema does not declare is an
error. Prints one line per resource; exits 1 on the first invalid one, and
if RENDERED.yaml holds none.
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import glob
import os
import sys

import jsonschema
import yaml

CRDS = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "crds")


def schemas():
    found = {}
    for path in glob.glob(os.path.join(CRDS, "*.yaml")):
        crd = yaml.safe_load(open(path))
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served"):
                found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def unknown_fields(value, schema, path="$"):
    """Fields that `schema` does not declare (what the API server would refuse or prune)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        found = []
        for key, item in value.items():
            if props is not None and key in props:
                found += unknown_fields(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found += unknown_fields(item, extra, f"{path}.{key}")
            elif props is not None and path != "$.metadata":
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [f for i, item in enumerate(value) for f in unknown_fields(item, schema["items"], f"{path}[{i}]")]
    return []


def main(rendered):
    known = schemas()
    checked = 0
    for doc in yaml.safe_load_all(open(rendered)):
        if not doc or (doc.get("apiVersion"), doc.get("kind")) not in known:
            continue
        schema = known[(doc["apiVersion"], doc["kind"])]
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            jsonschema.Draft7Validator(schema).validate(doc)
        except jsonschema.ValidationError as e:
            sys.exit(f"crd-validate: {name} is invalid at {'/'.join(map(str, e.absolute_path))}: {e.message}")
        extra = unknown_fields(doc, schema)
        if extra:
            sys.exit(f"crd-validate: {name} has fields its CRD does not declare: {extra}")
        checked += 1
        print(f"{name}: valid against its CRD (Prometheus Operator v0.93.0), no unknown fields")
    if checked == 0:
        sys.exit(f"crd-validate: no PodMonitor or PrometheusRule in {rendered}")


if __name__ == "__main__":
    main(sys.argv[1])
