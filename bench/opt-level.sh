#!/usr/bin/env bash
# Measures the release profile's opt-level choice: binary size of each tier and
# the sink's throughput (wrk, 2 threads, 16 connections, POSTs of ~60 bytes)
# for opt-level 3, s and z, with the rest of [profile.release] as it is.
# Static musl builds (scripts/build-musl.sh), as the images are made. Needs wrk.
#
#   bash bench/opt-level.sh            # DURATION=5s by default
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-5s}
# The harness's POST of a ~60-byte text/plain message (../shared/baseline/wrk/post.lua).
lua=$(cd "${BASELINE:-../shared/baseline}" && pwd)/wrk/post.lua
echo "| opt-level | sender bytes | relay bytes | sink bytes | sink req/s | sink p50 |"
echo "|---|---|---|---|---|---|"
for opt in 3 s z; do
  dir="target/opt-level-$opt"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt MUSL_TARGET_DIR="$PWD/$dir" bash scripts/build-musl.sh > /dev/null
  bin="$dir/x86_64-unknown-linux-musl/release"
  # The sink started, loaded and stopped by the launcher (scripts/topology.py).
  out=$(python3 scripts/topology.py around --bin "$bin" sink -- \
    bash -c 'wrk -t2 -c16 -d"$1" --latency -s "$2" "http://$SINK_ADDR/sink.php"' _ "$duration" "$lua") \
    || { echo "opt-level: the sink's run failed" >&2; exit 1; }
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
  echo "| $opt | $(stat -c %s "$bin/sender") | $(stat -c %s "$bin/relay") | $(stat -c %s "$bin/sink") | $rps | $p50 |"
done
