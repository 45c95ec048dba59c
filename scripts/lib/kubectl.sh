# Sourced by the test scripts: sets $kubectl to a kubectl that renders
# without asking any server. The kubectl on PATH may be a dispatcher that
# first probes localhost:8080; the versioned binary beside it does not.
kubectl=$(command -v kubectl) || { echo "kubectl not found" >&2; exit 1; }
kubectl_real=$(readlink -f "$kubectl")
kubectl_versioned=$(ls "$(dirname "$kubectl_real")"/kubectl.1.* 2>/dev/null | sort -V | tail -n 1 || true)
kubectl=${kubectl_versioned:-$kubectl_real}
