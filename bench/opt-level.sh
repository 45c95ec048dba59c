#!/usr/bin/env bash
# Measures the release profile's opt-level choice: binary size of each tier and
# the sink's throughput (wrk, 2 threads, 16 connections, POSTs of ~60 bytes)
# for opt-level 3, s and z, with the rest of [profile.release] as it is.
# Static builds as in scripts/test-containers.sh. Needs wrk (Debian package).
#
#   bash bench/opt-level.sh            # DURATION=5s by default
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-5s}
port=${PORT:-18600}
lua=$(mktemp)
trap 'rm -f "$lua"' EXIT
cat > "$lua" <<'LUA'
wrk.method = "POST"
wrk.body = "Message sent from 10.244.1.23 on Sat, 09 May 2026 07:29:33 GMT"
wrk.headers["Content-Type"] = "text/plain"
LUA
echo "| opt-level | sender bytes | relay bytes | sink bytes | sink req/s | sink p50 |"
echo "|---|---|---|---|---|---|"
for opt in 3 s z; do
  dir="target/opt-level-$opt"
  CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
    cargo build --quiet --release --locked --bins --target x86_64-unknown-linux-gnu --target-dir "$dir"
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
