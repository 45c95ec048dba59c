#!/usr/bin/env bash
# More connections than the tiers' defaults expect, against the static musl
# build (the images'), as figures, not a timed test:
#   - wrk -c512 through relay and sink: how many messages are shed (non-2xx);
#   - wrk -c1100 against the sink, beyond MAX_CONNECTIONS=1024: wrk's read
#     errors beside the sink's own count of connections it closed to make
#     room (evicted: only ones that had sent nothing it could see) and of new
#     ones it answered 503 (refused): a read error is an evicted connection
#     whose request had not arrived.
# Prints a Markdown table (bench/overload.py parses wrk's output).
#
#   bash bench/overload.sh            # 10 s each
#   DURATION=2s bash bench/overload.sh
#
# Installs wrk (Debian) if missing; needs root for apt.
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
source scripts/lib/apt.sh
apt_install_missing wrk
bash scripts/build-musl.sh > /dev/null
bin=$PWD/target/musl/x86_64-unknown-linux-musl/release
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# wrk needs a descriptor per connection, the tiers one or two each.
ulimit -n "$(ulimit -Hn)"
free_port() { python3 scripts/free_port.py; }
started() { # port: waits (at most 10 s) for /healthz
  for _ in $(seq 200); do
    if curl -sf "http://127.0.0.1:$1/healthz" > /dev/null; then return 0; fi
    sleep 0.05
  done
  echo "overload: nothing answered on port $1" >&2
  exit 1
}
sink=$(free_port)
env LISTEN_ADDR="127.0.0.1:$sink" POD_IP=127.0.0.2 LOG_DIR="$work" DRAIN_DELAY=0 "$bin/sink" > /dev/null 2>&1 &
pids+=($!)
started "$sink"
relay=$(free_port)
env LISTEN_ADDR="127.0.0.1:$relay" POD_IP=127.0.0.3 LOG_DIR="$work" DRAIN_DELAY=0 SINK_URL="127.0.0.1:$sink/sink.php" \
  "$bin/relay" > /dev/null 2>&1 &
pids+=($!)
started "$relay"
post=$(cd "${BASELINE:-../shared/baseline}" && pwd)/wrk/post.lua
wrk -t2 -c512 -d"$duration" -s "$post" "http://127.0.0.1:$relay/relay.php" > "$work/c512.txt" 2>&1
curl -sf "http://127.0.0.1:$sink/metrics" > "$work/before.prom"
wrk -t2 -c1100 -d"$duration" -s "$post" "http://127.0.0.1:$sink/sink.php" > "$work/c1100.txt" 2>&1
sleep 1.5 # the sink counts closed connections once a second
curl -sf "http://127.0.0.1:$sink/metrics" > "$work/after.prom"
python3 bench/overload.py "$work/c512.txt" "$work/c1100.txt" "$work/before.prom" "$work/after.prom"
