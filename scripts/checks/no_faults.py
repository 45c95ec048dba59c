"""Checks that a rendered overlay (stdin) has no way to turn faults on.

Usage: kubectl kustomize kustomize/overlays/prod | python3 scripts/checks/no_faults.py prod

Faults (docs/faults.md) are on only with FAULTS=on, which the faults
component sets. In an overlay that must never have them, no container of any
Pod template (Deployments, Jobs, anything with spec.template) sets FAULTS or
SEND_FAULT, and none takes its environment from a ConfigMap or Secret
(envFrom), through which FAULTS could arrive unseen. With `--on`, the
opposite: every Deployment's container sets FAULTS=on (the dev and lab overlays).
"""

import sys  # noqa: E402

if sys.argv[1:2] in (["-h"], ["--help"]):  # the usage, before anything runs or is imported
    print(__doc__.strip())
    sys.exit(0)
import sys

import yaml


def containers(doc):
    spec = (doc.get("spec") or {}).get("template", {}).get("spec", {})
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        yield f"{doc['kind']}/{doc['metadata']['name']}/{c['name']}", c


def main(name, want_on):
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    found = 0
    for doc in docs:
        for where, c in containers(doc):
            env = {e["name"]: e for e in c.get("env", [])}
            if want_on:
                if doc["kind"] == "Deployment" and env.get("FAULTS", {}).get("value") != "on":
                    sys.exit(f"no_faults: {name}: {where} does not set FAULTS=on")
                found += 1
                continue
            for var in ("FAULTS", "SEND_FAULT"):
                if var in env:
                    sys.exit(f"no_faults: {name}: {where} sets {var}: {env[var]}")
            if c.get("envFrom"):
                sys.exit(f"no_faults: {name}: {where} takes envFrom {c['envFrom']}, which could set FAULTS")
            found += 1
    if not found:
        sys.exit(f"no_faults: {name}: no containers rendered")
    state = "faults on in every Deployment" if want_on else "no way to turn faults on"
    print(f"{name}: {state} ({found} containers checked)")


if __name__ == "__main__":
    main(sys.argv[1], "--on" in sys.argv[2:])
