#!/usr/bin/env bash
# The benchmark: this project's relay and sink next to the seed's Apache+PHP
# and nginx, in one run, through the shared harness (../shared/baseline, see its
# README): req/s and p50/p99 at 16 connections and at 1, CPU per message per
# tier, cold start, idle and peak RSS/PSS, and the delivery check. Our tiers run
# twice: with the default connection policy (UPSTREAM_KEEPALIVE=off, one
# connection per message) and with reuse on. Also reports the image sizes
# (static builds, as scripts/test-containers.sh makes the images).
#
#   bash bench/run.sh                 # REPEATS=3, DURATION=10s: about 6 minutes
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
bin=$PWD/target/release
bash scripts/build-static.sh

run() { # label keepalive variants...
  local label=$1 keepalive=$2
  shift 2
  echo "== harness: $* custom ($label, UPSTREAM_KEEPALIVE=$keepalive)"
  CUSTOM_LABEL=$label \
  CUSTOM_SINK_CMD="env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 $bin/sink" \
  CUSTOM_RELAY_CMD="env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 UPSTREAM_KEEPALIVE=$keepalive $bin/relay" \
  RESULTS_DIR="$work/$label" bash "$baseline/bench.sh" "$@" custom > "$work/$label.log" 2>&1 \
    || { cat "$work/$label.log"; exit 1; }
}
run three-tier off apache nginx
run three-tier-keepalive on

# One table over both runs: the harness's own summarizer on the merged rows.
{ cat "$work/three-tier/results.tsv"; tail -n +2 "$work/three-tier-keepalive/results.tsv"; } > "$work/all.tsv"
python3 "$baseline/lib/summarize.py" "$work/all.tsv" "$work/three-tier/env.txt" > "$work/summary.md"
python3 bench/chart.py "$work/all.tsv" > "$out/$date.svg"

{
  echo "# Benchmark $date"
  echo
  echo "Command: \`${QUICK:+QUICK=1 }bash bench/run.sh\` (harness: \`../shared/baseline/bench.sh apache nginx custom\`,"
  echo "run twice for our tiers: \`three-tier\` is the default, one connection per message from"
  echo "relay to sink; \`three-tier-keepalive\` sets \`UPSTREAM_KEEPALIVE=on\`). Both tiers and wrk"
  echo "share the machine's cores; compare columns of one run, not numbers across machines."
  echo
  echo "![req/s and CPU per message]($date.svg)"
  echo
  cat "$work/summary.md"
  echo
  echo "Image sizes (one layer holding one static binary; built as in scripts/test-containers.sh):"
  echo
  echo "| image | bytes |"
  echo "|---|---|"
  for tier in sender relay sink; do
    echo "| $tier | $(stat -c %s "target/x86_64-unknown-linux-gnu/release/$tier") |"
  done
} > "$out/$date.md"

# The run must have measured every variant and lost nothing.
python3 - "$work/all.tsv" "$out/$date.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
variants = {r["variant"] for r in rows}
want = {"apache", "nginx", "three-tier", "three-tier-keepalive"}
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
