#!/usr/bin/env bash
# Runs the seed's topology on this host: 3 sinks, 2 relays, 3 senders on
# loopback, wired with comma-separated URL lists (what a Kubernetes Service
# does, done by the tiers themselves). Output is interleaved, one prefix per
# process. Ctrl-C, SIGTERM to this script, or SIGHUP (closing its terminal)
# stops everything cleanly; the tiers themselves take SIGHUP to mean "reopen
# the LOG_DIR file", so the script stops them instead of leaving orphans.
#
#   bash scripts/run-local.sh                       # runs until Ctrl-C
#   SEND_COUNT=3 bash scripts/run-local.sh          # each sender stops after 3; then all stop
#
# Environment: BASE_PORT (default 18000: senders 18001-3, relays 18101-2,
# sinks 18201-3), PIDS_FILE (if set, each process is listed there as
# "<name> <pid> <address>", for tools that watch or stop one), and any tier variable (SEND_INTERVAL, SEND_COUNT, LOG_DIR,
# LOG_FORMAT, DRAIN_DELAY, ...) is passed through to the tiers. Each process
# gets its own POD_IP and listens on it, as pods do (senders 127.0.0.1-3,
# relays 127.0.1.1-2, sinks 127.0.2.1-3), so request ids, lineage lines,
# LOG_DIR file names and the senders' flow pages tell them apart: sender-1's
# page is http://127.0.0.1:18001/.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins --quiet
bin=target/release
base=${BASE_PORT:-18000}
export DRAIN_DELAY=${DRAIN_DELAY:-1s}

pids=()
sender_pids=()
start() { # name binary ip port [VAR=value ...]: listens on its own POD_IP, as a pod does
  local name=$1 binary=$2 ip=$3 port=$4
  shift 4
  env POD_IP="$ip" LISTEN_ADDR="$ip:$port" "$@" "$bin/$binary" \
    > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
  if [ -n "${PIDS_FILE:-}" ]; then echo "$name $! $ip:$port" >> "$PIDS_FILE"; fi
}
stop_all() {
  trap - INT TERM HUP
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop_all; exit 0' INT TERM HUP

sinks=() relays=()
for i in 1 2 3; do
  start "sink-$i" sink "127.0.2.$i" $((base + 200 + i))
  sinks+=("127.0.2.$i:$((base + 200 + i))/sink.php")
done
for i in 1 2; do
  start "relay-$i" relay "127.0.1.$i" $((base + 100 + i)) SINK_URL="$(IFS=,; echo "${sinks[*]}")"
  relays+=("127.0.1.$i:$((base + 100 + i))/relay.php")
done
for i in 1 2 3; do
  start "sender-$i" sender "127.0.0.$i" $((base + i)) RELAY_URL="$(IFS=,; echo "${relays[*]}")"
  sender_pids+=("${pids[-1]}")
done

status=0
if [ -n "${SEND_COUNT:-}" ]; then
  # Bounded run: wait for the senders, then stop the rest.
  for pid in "${sender_pids[@]}"; do
    wait "$pid" || status=1
  done
  stop_all
else
  wait "${pids[@]}" || true
fi
exit "$status"
