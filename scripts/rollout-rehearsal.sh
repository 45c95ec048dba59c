#!/usr/bin/env bash
# Rehearses `kubectl rollout restart` of the relays and the sinks under load,
# the way Kubernetes runs it: pods with addresses of their own, relay-svc and
# sink-svc as kube-proxy iptables Services over the ready endpoints, readiness
# probes, a propagation delay before a deleted pod leaves its Service, and
# the Deployment's surge-then-delete steps with the rendered base's settings
# (scripts/rollout/rehearsal.py has the details). Everything runs in a network
# namespace made here, whose resolv.conf is a pod's: the tiers look the
# Services up, with the rendered manifests' URLs, through a cluster DNS
# (scripts/lib/clusterdns.sh); nothing touches the machine's own network or
# resolver. Needs root, iptables, dnsmasq, python3 with PyYAML
# (scripts/setup-tests.sh installs them).
#
#   bash scripts/rollout-rehearsal.sh                 # CI-sized: one pod per tier
#   bash scripts/rollout-rehearsal.sh --full          # the manifests' replicas (2 relays, 3 sinks)
#   bash scripts/rollout-rehearsal.sh DRAIN_DELAY=0   # tier settings for relays and sinks
#   bash scripts/rollout-rehearsal.sh --pessimistic   # an endpoint leaves only once a probe saw 503
#   bash scripts/rollout-rehearsal.sh --compare       # the defaults, then DRAIN_DELAY=0 (what CI runs)
#
# Prints the outcome per client and exits 1 if any message was lost, failed
# after its retries, or any sender exited non-zero. With --compare it also
# requires that DRAIN_DELAY=0 shows the trouble the default avoids.
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${THREE_TIER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/three-tier/venv}
python=python3
if [ -x "$venv/bin/python" ]; then python=$venv/bin/python; fi

replicas=(--replicas 1) compare=0 args=()
for arg in "$@"; do
  case $arg in
    --full) replicas=() ;;
    --compare) compare=1 ;;
    *) args+=("$arg") ;;
  esac
done

cargo build --quiet --release --bins
source scripts/lib/kubectl.sh
source scripts/lib/clusterdns.sh
work=$(mktemp -d)
namespaces=()
remove_namespace() {
  for pid in $(ip netns pids "$1" 2> /dev/null); do kill -9 "$pid" 2> /dev/null || true; done
  ip netns del "$1" 2> /dev/null || true
  rm -rf "/etc/netns/$1"
}
cleanup() {
  for ns in "${namespaces[@]}"; do remove_namespace "$ns"; done
  rm -rf "$work"
}
trap cleanup EXIT
"$kubectl" kustomize kustomize/base > "$work/base.yaml"

# rehearse NAME [args for rehearsal.py]: one rehearsal in a network namespace
# of its own (with a pod's resolv.conf); the outcome is $work/NAME.json.
rehearse() {
  local name=$1 ns="tt-rollout-$$-$1"
  shift
  echo "== rollout rehearsal: $name"
  namespaces+=("$ns")
  ip netns add "$ns"
  mkdir -p "/etc/netns/$ns" "$work/$name"
  clusterdns_resolv "$ns" tt 10.96.0.10
  ip netns exec "$ns" "$python" scripts/rollout/rehearsal.py --bin target/release \
    --manifests "$work/base.yaml" --logdir "$work/$name" --json "$work/$name.json" "${replicas[@]}" "$@"
  remove_namespace "$ns"
}

verdict() { # NAME EXPECT(clean|trouble)
  "$python" scripts/rollout/verdict.py "$2" "$work/$1.json"
}

if [ "$compare" = 1 ]; then
  rehearse defaults "${args[@]}"
  verdict defaults clean
  rehearse no-drain-delay "${args[@]}" DRAIN_DELAY=0
  verdict no-drain-delay trouble
  "$python" scripts/rollout/verdict.py compare "$work/defaults.json" "$work/no-drain-delay.json"
else
  rehearse run "${args[@]}"
  verdict run clean
fi
