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
trap 'rm -rf "$work"' EXIT
# wrk needs a descriptor per connection, the tiers one or two each.
ulimit -n "$(ulimit -Hn)"
post=$(cd "${BASELINE:-../shared/baseline}" && pwd)/wrk/post.lua
# Run by the launcher (scripts/topology.py) against a sink and a relay in front of it.
load() { # work post duration
  wrk -t2 -c512 -d"$3" -s "$2" "http://$RELAY_ADDR/relay.php" > "$1/c512.txt" 2>&1
  curl -sf "http://$SINK_ADDR/metrics" > "$1/before.prom"
  wrk -t2 -c1100 -d"$3" -s "$2" "http://$SINK_ADDR/sink.php" > "$1/c1100.txt" 2>&1
  sleep 1.5 # the sink counts closed connections once a second
  curl -sf "http://$SINK_ADDR/metrics" > "$1/after.prom"
}
LOG_DIR="$work" python3 scripts/topology.py around --bin "$bin" sink relay -- \
  bash -c "$(declare -f load); load \"\$@\"" _ "$work" "$post" "$duration"
python3 bench/overload.py "$work/c512.txt" "$work/c1100.txt" "$work/before.prom" "$work/after.prom"
