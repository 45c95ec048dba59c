#!/usr/bin/env bash
# Runs every check and test: formatting, lints, the on-host topology, the
# manifests, the musl images under podman and through a registry, the
# benchmark at a tiny size, a connection flood, and `cargo test` (the patched
# tiny_http, unit tests, the integration tests in tests/, then those again
# against the musl binaries). Needs podman, runc, readelf, promtool, curl,
# kubectl, iptables, docker-registry, htpasswd, skopeo with sigstore (Debian
# 13's, scripts/setup-skopeo.sh), and the Python tools hadolint, yamllint,
# kubernetes-validate, checkov, trivy and ruamel.yaml:
# scripts/setup-tests.sh installs them first (scripts/build-musl.sh its own
# toolchain).
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== scripts/setup-tests.sh (what the tests need, installed once)"
bash scripts/setup-tests.sh
# The Python tools (scripts/setup-tests.sh installs them in this venv) come first on PATH.
venv=${THREE_TIER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/three-tier/venv}
export PATH="$venv/bin:$PATH"

echo "== cargo fmt --check (this crate and the patched tiny_http)"
cargo fmt --all --check
echo "== cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo doc --document-private-items (every link resolves; warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --workspace --document-private-items

echo "== scripts/run-local.sh with SEND_COUNT=10 (README's first command, bounded), into a LOG_DIR it creates"
log=$(mktemp)
work=$(mktemp -d)
logs=$work/logs
trap 'rm -rf "$log" "$work"' EXIT
# 30 messages, each to a relay and a sink at random: that a sink gets none
# has a chance of 3 x (2/3)^30 = 1.6e-5 (with 9 messages it was 7.8%).
SEND_COUNT=10 SEND_INTERVAL=100ms LOG_DIR="$logs" BASE_PORT=${BASE_PORT:-19000} bash scripts/run-local.sh > "$log" 2>&1 || {
  cat "$log"
  echo "run-local.sh failed"
  exit 1
}
python3 scripts/checks/delivery.py --sink target/release/sink --senders 3 --each 10 --min-sinks 3 --min-relays 2 \
  "$logs"/Sink_*.txt "$logs"/Relay_*.txt || { cat "$log"; echo "run-local.sh: not every message was delivered once through every tier"; exit 1; }
echo "== scripts/run-local.sh fails loudly: a port taken, a LOG_DIR it cannot create, a sink killed"
python3 scripts/checks/run_local.py "$((${BASE_PORT:-19000} + 500))"

echo "== sink --loss-report over the sinks' LOG_DIR files (README's loss-report command)"
# Its exit code says no gaps and no damaged lines; delivery.py above read the
# same files through --json for the counts.
target/release/sink --loss-report "$logs"/Sink_*.txt || { echo "loss report found gaps or damaged lines"; exit 1; }

echo "== docs/faults.md's scenario 1 on the host topology: SEND_FAULT=sink=503@0.2 and one slow sink lose nothing"
python3 scripts/checks/faults_walkthrough.py "$((${BASE_PORT:-19000} + 400))"

echo "== spans over OTLP/HTTP to a real receiver (rotel), then a receiver down, stalled and refusing: nothing lost (scripts/checks/otlp_rotel.py)"
python3 scripts/checks/otlp_rotel.py "$((${BASE_PORT:-19000} + 800))"

echo "== the command blocks of README.md, docs/ and bench/README.md, run as written (scripts/checks/docs_run.py)"
python3 scripts/checks/docs_run.py

echo "== scripts/test-kustomize.sh (render, lint, validate, checkov, trivy, lab = seed)"
bash scripts/test-kustomize.sh

echo "== hadolint Containerfile.multi"
hadolint Containerfile.multi

echo "== python3 scripts/test-monitoring.py (the alerts' unit tests, then a real Prometheus against the on-host 3/2/3)"
python3 scripts/test-monitoring.py

echo "== scripts/test-containers.sh (musl images under 1 MB, 3/2/3 in podman, SIGTERM to PID 1)"
bash scripts/test-containers.sh

echo "== scripts/test-registry.sh (login, publish.sh push, SBOMs, signatures and pin, regcred, pull by digest and by policy, lab under kube play)"
bash scripts/test-registry.sh

echo "== scripts/rollout-rehearsal.sh --compare (a rolling update under load: defaults, then DRAIN_DELAY=0)"
bash scripts/rollout-rehearsal.sh --compare

echo "== QUICK=1 bench/run.sh (the benchmark end to end at a tiny size)"
QUICK=1 bash bench/run.sh > "$log" 2>&1 || { cat "$log"; echo "bench/run.sh failed"; exit 1; }
tail -n 2 "$log"

echo "== QUICK=1 bash bench/cost.sh (allocations, syscalls and instructions per message, at a tiny size)"
QUICK=1 bash bench/cost.sh > "$log" 2>&1 || { cat "$log"; echo "bench/cost.sh failed"; exit 1; }
grep '^| relay | three-tier\|^| sink | three-tier' "$log"

echo "== DURATION=2s bash bench/overload.sh (wrk -c512 through relay and sink, -c1100 against the sink)"
DURATION=2s bash bench/overload.sh > "$log" 2>&1 || { cat "$log"; echo "bench/overload.sh failed"; exit 1; }
tail -n 2 "$log"

echo "== python3 bench/flood.py (5,000 connections against the release build: memory, threads, /healthz)"
python3 bench/flood.py

echo "== the sequence fuzzer (tests/sequences/): each request of a connection answered once, in order; each 2xx recorded once"
cargo test --quiet --test tests sequences:: -- --nocapture > "$log" 2>&1 || { cat "$log"; echo "the sequence fuzzer failed"; exit 1; }
grep -Eo 'sequences: .*|test result: .*' "$log"
echo "== cargo test (the patched tiny_http, then this crate)"
cargo test --quiet -p tiny_http
cargo test --quiet -- --skip sequences::a_
echo "== the integration tests again, against the static musl binaries the images hold"
THREE_TIER_BIN_DIR="$PWD/target/musl/x86_64-unknown-linux-musl/release" cargo test --quiet --test tests
echo "== the integration tests again, against the arm64 static musl binaries, under qemu-aarch64-static"
MUSL_TARGET=aarch64-unknown-linux-musl bash scripts/build-musl.sh
# Three tests measure what qemu-user changes, not what the binary does: the
# process's peak memory and threads (the emulator's own code cache and
# threads count in) and /healthz answered within 1 s with 1,000 emulated
# threads busy. Both x86-64 passes above run them. (The sequence fuzzer runs
# here too, but asserts its thread and memory bounds only natively.)
THREE_TIER_BIN_RUNNER=qemu-aarch64-static THREE_TIER_BIN_DIR="$PWD/target/musl/aarch64-unknown-linux-musl/release" \
  cargo test --quiet --test tests -- --skip limits::five_thousand_connection_attempts_keep_memory_and_threads_bounded \
  --skip framing::a_ten_megabyte_chunk_size_line_is_refused_in_bounded_memory \
  --skip slow_clients::slow_clients_neither_starve_healthz_nor_outlive_client_timeout
