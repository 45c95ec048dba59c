#!/usr/bin/env bash
# The benchmark, run as deployed: this project's relay and sink next to the
# seed's Apache+PHP and nginx, through the shared harness (../shared/baseline,
# see its README), inside a network namespace whose resolver is a pod's
# (scripts/lib/clusterdns.sh: search path, ndots:5, dnsmasq answering as
# CoreDNS does, sink-svc -> 127.0.0.1). Measured: req/s and p50/p99 at 16
# connections and at 1, CPU per message per tier, cold start, idle and peak
# RSS/PSS, and the delivery check; then, for what ships, nginx and the
# yardstick, user and system CPU and context switches per message
# (bench/split.py). The harness takes one custom variant per
# call, so each of ours runs in a call of its own with nginx beside it
# (rounds interleaved, so each is compared with nginx on the same machine at
# the same time; nginx's rounds add up across calls; nginx keeps its upstream
# by address, as it resolves a name once at start anyway):
#   three-tier-musl-svc   what ships: the static musl build the images hold
#                         (scripts/build-musl.sh), SINK_URL=sink-svc:<port>/,
#                         a Service name looked up through the cluster DNS
#   three-tier-musl       the same build, SINK_URL an IP literal
#   three-tier            the glibc build (cargo build --release), IP literal
#   yardstick             ../shared/yardstick built as the images are: the
#                         design's floor (std only, no limits, stdout only)
# Apache runs once, in the first call. Also reports the image sizes and the
# targets as ratios (bench/targets.py).
#
#   bash bench/run.sh                 # REPEATS=3, DURATION=10s: about 15 minutes
#   QUICK=1 bash bench/run.sh         # a minute or two; what CI runs so this does not rot
#
# Writes bench/results/<date>.md and bench/results/<date>.svg (QUICK=1 writes
# to a temporary folder and leaves bench/results alone). Needs root (the
# harness's apt install, once; the network namespace); any harness knob
# (REPEATS, DURATION, CONNS, ...) passes through.
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
baseline=$(cd "${BASELINE:-../shared/baseline}" && pwd)
yardstick_src=$(cd "${YARDSTICK_SRC:-../shared/yardstick}" && pwd)
date=$(date -u +%Y-%m-%d)
if [ -n "${QUICK:-}" ]; then
  export REPEATS=1 DURATION=1s LAT_DURATION=1s WARMUP=0 SETTLE=0
  out=$(mktemp -d)
else
  out=bench/results
  mkdir -p "$out"
fi
work=$(mktemp -d)
ns="tt-bench-$$"
source scripts/lib/clusterdns.sh
cleanup() {
  clusterdns_stop "$work/dns"
  for pid in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$pid" 2> /dev/null || true; done
  ip netns del "$ns" 2> /dev/null || true
  rm -rf "/etc/netns/$ns" "$work"
  if [ -n "${QUICK:-}" ]; then rm -rf "$out"; fi
}
trap cleanup EXIT

echo "== harness set-up (apache2, mod_php, nginx, wrk), dnsmasq"
bash "$baseline/setup.sh" > "$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
source scripts/lib/apt.sh
apt_install_missing dnsmasq-base
echo "== build (glibc, static musl, the yardstick as static musl)"
cargo build --quiet --release --locked --bins
bash scripts/build-musl.sh > /dev/null
# The yardstick's own warnings are not ours to fix.
MUSL_TARGET_DIR=$PWD/target/yardstick-musl bash scripts/build-musl.sh --manifest-path "$yardstick_src/Cargo.toml" 2> /dev/null
glibc=$PWD/target/release
musl=$PWD/target/musl/x86_64-unknown-linux-musl/release
yardstick=$PWD/target/yardstick-musl/x86_64-unknown-linux-musl/release/yardstick

echo "== a pod's network: namespace $ns, cluster DNS answering sink-svc"
ip netns add "$ns"
clusterdns_resolv "$ns" tt 10.96.0.10
ip netns exec "$ns" bash -c 'source scripts/lib/clusterdns.sh && clusterdns_start "$1" tt 10.96.0.10 && clusterdns_set "$1" sink-svc 127.0.0.1' _ "$work/dns"

harness() { # label variants... (CUSTOM_* set by the caller)
  local label=$1
  shift
  echo "== harness: $* custom ($label)"
  CUSTOM_LABEL=$label RESULTS_DIR="$work/$label" ip netns exec "$ns" bash "$baseline/bench.sh" "$@" custom \
    > "$work/$label.log" 2>&1 || { cat "$work/$label.log"; exit 1; }
}
ours() { # label bin-dir sink-host variants...
  local label=$1 bin=$2 host=$3
  shift 3
  CUSTOM_SINK_CMD="env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 $bin/sink" \
  CUSTOM_RELAY_CMD="env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 SINK_URL=$host:\$SINK_PORT/ $bin/relay" \
    harness "$label" "$@"
}
ours three-tier-musl-svc "$musl" sink-svc apache nginx
ours three-tier-musl "$musl" 127.0.0.1 nginx
ours three-tier "$glibc" 127.0.0.1 nginx
# The yardstick logs to stdout only, which the harness keeps in $LOG_DIR/custom-<tier>.out.
YARDSTICK=$yardstick CUSTOM_SINK_CMD="$yardstick_src/bin/sink" CUSTOM_RELAY_CMD="$yardstick_src/bin/relay" \
  CUSTOM_SINK_COUNT_CMD='cat "$LOG_DIR/custom-sink.out" | wc -l' \
  CUSTOM_RELAY_COUNT_CMD='cat "$LOG_DIR/custom-relay.out" | wc -l' \
  harness yardstick nginx
variants=(three-tier-musl-svc three-tier-musl three-tier yardstick)

# Where the CPU goes: user and system time and context switches per message,
# read from /proc while the connections are open (the harness reads only the
# total), for what ships, nginx and the yardstick.
echo "== CPU split: what ships, nginx, the yardstick (bench/split.py)"
ip netns exec "$ns" env YARDSTICK="$yardstick" python3 bench/split.py \
  --duration "$([ -n "${QUICK:-}" ] && echo 2 || echo 10)" --rounds "${REPEATS:-3}" --out "$work/split.md" \
  "three-tier-musl-svc=env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 SINK_URL=sink-svc:\$SINK_PORT/ $musl/relay|env LOG_DIR=\"\$DATA_DIR\" DRAIN_DELAY=0 $musl/sink" \
  nginx \
  "yardstick=$yardstick_src/bin/relay|$yardstick_src/bin/sink|cat \"\$LOG_DIR/custom-sink.out\" | wc -l" \
  > "$work/split.log" 2>&1 || { cat "$work/split.log"; exit 1; }

# One table over every call: the harness's own summarizer on the merged rows.
{
  cat "$work/${variants[0]}/results.tsv"
  for v in "${variants[@]:1}"; do tail -n +2 "$work/$v/results.tsv"; done
} > "$work/all.tsv"
python3 "$baseline/lib/summarize.py" "$work/all.tsv" "$work/${variants[0]}/env.txt" > "$work/summary.md"
python3 bench/chart.py "$work/all.tsv" > "$out/$date.svg"

{
  echo "# Benchmark $date"
  echo
  echo "Command: \`${QUICK:+QUICK=1 }bash bench/run.sh\` (harness: \`../shared/baseline/bench.sh\`, run inside"
  echo "a network namespace whose resolver is a pod's, called once per variant of ours, each time beside"
  echo "nginx). \`three-tier-musl-svc\` is what ships: the static musl build the images hold, with"
  echo "\`SINK_URL=sink-svc:<port>/\` looked up through the namespace's cluster DNS; \`three-tier-musl\`"
  echo "is that build with an IP literal; \`three-tier\` the glibc build with an IP literal; \`yardstick\` is"
  echo "\`../shared/yardstick\` built as static musl, the design's floor (it logs to stdout only, counted from"
  echo "its output). All relay-to-sink connections at the defaults (at most 10 requests each). The"
  echo "tiers and wrk share the machine's cores; compare columns of one run, not numbers across machines."
  echo
  echo "![req/s and CPU per message]($date.svg)"
  echo
  cat "$work/summary.md"
  echo
  python3 bench/targets.py "$work/all.tsv"
  echo
  cat "$work/split.md"
  echo
  echo "Image sizes (one layer holding one static musl binary; built by scripts/build-musl.sh as in scripts/test-containers.sh):"
  echo
  echo "| image | bytes |"
  echo "|---|---|"
  for tier in sender relay sink; do
    echo "| $tier | $(stat -c %s "$musl/$tier") |"
  done
} > "$out/$date.md"

python3 bench/check.py "$work/all.tsv" "$out/$date.md" apache nginx "${variants[@]}"
echo "bench: wrote $out/$date.md and $out/$date.svg"
