#!/usr/bin/env bash
# The benchmark: this project's relay and sink next to the seed's Apache+PHP
# and nginx, through the shared harness (../shared/baseline, see its README):
# req/s and p50/p99 at 16 connections and at 1, CPU per message per tier, cold
# start, idle and peak RSS/PSS, and the delivery check. The harness takes one
# custom variant per call, so each of ours runs in a call of its own with
# nginx beside it (rounds interleaved, so each is compared with nginx on the
# same machine at the same time; nginx's rounds add up across calls):
#   three-tier            the defaults (relay-to-sink connections reused for
#                         at most UPSTREAM_MAX_REQUESTS=10 requests)
#   three-tier-no-reuse   UPSTREAM_MAX_REQUESTS=1, a new connection per message
#   three-tier-musl       the defaults, built as the images are: static musl
#                         (scripts/build-musl.sh), whose malloc is not glibc's
# Apache runs once, in the first call. Also reports the image sizes and a
# table of the targets of the one-thread-per-message issue (ratios to nginx).
#
#   bash bench/run.sh                 # REPEATS=3, DURATION=10s: about 10 minutes
#   QUICK=1 bash bench/run.sh         # seconds; what CI runs so this does not rot
#
# Writes bench/results/<date>.md and bench/results/<date>.svg (QUICK=1 writes
# to a temporary folder and leaves bench/results alone). Needs root for the
# harness's apt install (once); any harness knob (REPEATS, DURATION, CONNS, ...)
# passes through.
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=$(cd "${BASELINE:-../shared/baseline}" && pwd)
date=$(date -u +%Y-%m-%d)
if [ -n "${QUICK:-}" ]; then
  export REPEATS=1 DURATION=1s LAT_DURATION=1s WARMUP=0 SETTLE=0
  out=$(mktemp -d)
else
  out=bench/results
  mkdir -p "$out"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"; if [ -n "${QUICK:-}" ]; then rm -rf "$out"; fi' EXIT

echo "== harness set-up (apache2, mod_php, nginx, wrk)"
bash "$baseline/setup.sh" > "$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
echo "== build"
cargo build --quiet --release --locked --bins
bash scripts/build-musl.sh > /dev/null
glibc=$PWD/target/release
musl=$PWD/target/musl/x86_64-unknown-linux-musl/release

run() { # label bin-dir "VAR=value ..." variants...
  local label=$1 bin=$2 settings=$3
  shift 3
  echo "== harness: $* custom ($label${settings:+, $settings})"
  CUSTOM_LABEL=$label \
  CUSTOM_SINK_CMD="env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 $bin/sink" \
  CUSTOM_RELAY_CMD="env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 $settings $bin/relay" \
  RESULTS_DIR="$work/$label" bash "$baseline/bench.sh" "$@" custom > "$work/$label.log" 2>&1 \
    || { cat "$work/$label.log"; exit 1; }
}
run three-tier "$glibc" "" apache nginx
run three-tier-no-reuse "$glibc" "UPSTREAM_MAX_REQUESTS=1" nginx
run three-tier-musl "$musl" "" nginx

# One table over both runs: the harness's own summarizer on the merged rows.
{ cat "$work/three-tier/results.tsv"; for v in three-tier-no-reuse three-tier-musl; do tail -n +2 "$work/$v/results.tsv"; done; } > "$work/all.tsv"
python3 "$baseline/lib/summarize.py" "$work/all.tsv" "$work/three-tier/env.txt" > "$work/summary.md"
python3 bench/chart.py "$work/all.tsv" > "$out/$date.svg"

{
  echo "# Benchmark $date"
  echo
  echo "Command: \`${QUICK:+QUICK=1 }bash bench/run.sh\` (harness: \`../shared/baseline/bench.sh\`, called"
  echo "once per variant of ours, each time beside nginx: \`three-tier\` is the default policy,"
  echo "relay-to-sink connections reused for at most 10 requests; \`three-tier-no-reuse\` sets"
  echo "\`UPSTREAM_MAX_REQUESTS=1\`, a new connection per message; \`three-tier-musl\` is the default"
  echo "policy built as the images are, static musl). The tiers and wrk share the"
  echo "machine's cores; compare columns of one run, not numbers across machines."
  echo
  echo "![req/s and CPU per message]($date.svg)"
  echo
  cat "$work/summary.md"
  echo
  python3 bench/targets.py "$work/all.tsv"
  echo
  echo "Image sizes (one layer holding one static musl binary; built by scripts/build-musl.sh as in scripts/test-containers.sh):"
  echo
  echo "| image | bytes |"
  echo "|---|---|"
  for tier in sender relay sink; do
    echo "| $tier | $(stat -c %s "$musl/$tier") |"
  done
} > "$out/$date.md"

# The run must have measured every variant and lost nothing.
python3 - "$work/all.tsv" "$out/$date.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
variants = {r["variant"] for r in rows}
want = {"apache", "nginx", "three-tier", "three-tier-no-reuse", "three-tier-musl"}
if variants != want:
    sys.exit(f"bench: measured {sorted(variants)}, expected {sorted(want)}")
report = open(sys.argv[2]).read()
if "MISMATCH" in report:
    sys.exit("bench: the harness reported a delivery MISMATCH")
lost = [(r["variant"], r["metric"], r["value"]) for r in rows
        if r["metric"].endswith(("lost_relay_to_sink", "ok_not_in_sink")) and float(r["value"] or 0) != 0]
if lost:
    sys.exit(f"bench: messages lost: {lost}")
print(f"bench: {len(rows)} measurements over {len(variants)} variants, 0 lost")
PY
echo "bench: wrote $out/$date.md and $out/$date.svg"
