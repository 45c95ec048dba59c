#!/usr/bin/env bash
# Measures the release profile's opt-level choice: binary size of each tier and
# the sink's throughput (wrk, 2 threads, 16 connections, POSTs of ~60 bytes)
# for opt-level 3, s and z, with the rest of [profile.release] as it is.
# Static builds (scripts/build-static.sh), as the images are made. Needs wrk.
#
#   bash bench/opt-level.sh            # DURATION=5s by default
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-5s}
port=${PORT:-18600}
# The harness's POST of a ~60-byte text/plain message (../shared/baseline/wrk/post.lua).
lua=$(cd "${BASELINE:-../shared/baseline}" && pwd)/wrk/post.lua
echo "| opt-level | sender bytes | relay bytes | sink bytes | sink req/s | sink p50 |"
echo "|---|---|---|---|---|---|"
for opt in 3 s z; do
  dir="target/opt-level-$opt"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt bash scripts/build-static.sh --target-dir "$dir"
  bin="$dir/x86_64-unknown-linux-gnu/release"
  DRAIN_DELAY=0 LISTEN_ADDR="127.0.0.1:$port" "$bin/sink" > /dev/null &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; do :; done
  out=$(wrk -t2 -c16 -d"$duration" --latency -s "$lua" "http://127.0.0.1:$port/sink.php")
  kill -TERM "$pid"
  wait "$pid" || true
  rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
  p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
  echo "| $opt | $(stat -c %s "$bin/sender") | $(stat -c %s "$bin/relay") | $(stat -c %s "$bin/sink") | $rps | $p50 |"
done
