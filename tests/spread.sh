#!/usr/bin/env bash
# One relay posting to 3 sinks through a kube-proxy-style ClusterIP, inside a
# network namespace of its own (run it under `unshare -n`; tests/spread.rs
# does). Prints one line per sink, "sink <pod ip> <messages logged>", and
# "sender exit <code>".
#
#   unshare -n bash tests/spread.sh BIN_DIR MESSAGES INTERVAL [VAR=value ...]
#
# The sender posts MESSAGES messages at concurrency 1, one every INTERVAL,
# straight to the relay; VAR=value pairs go to the relay (its reuse policy).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$1 messages=$2 interval=$3
shift 3
source scripts/lib/clusterip.sh
clusterip_init

out=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2> /dev/null || true; wait 2> /dev/null || true; rm -rf "$out"' EXIT
# Waits (at most 10 s) for the tier with PID $2 to print its `listening on` line.
listening() {
  for _ in $(seq 1000); do
    if grep -q '^listening on ' "$1" 2> /dev/null; then return 0; fi
    if ! kill -0 "$2" 2> /dev/null; then break; fi
    sleep 0.01
  done
  echo "spread: $1 did not start:" >&2
  cat "$1" >&2
  exit 1
}
endpoints=()
for i in 2 3 4; do
  POD_IP=127.0.0.$i LISTEN_ADDR=127.0.0.$i:8080 DRAIN_DELAY=0 "$bin/sink" > "$out/sink-$i" 2>&1 &
  pids+=($!)
  endpoints+=("127.0.0.$i:8080")
done
for i in 0 1 2; do listening "$out/sink-$((i + 2))" "${pids[$i]}"; done
clusterip_set sink-svc 10.96.0.20 80 "${endpoints[@]}"

env POD_IP=127.0.1.1 LISTEN_ADDR=127.0.1.1:8080 DRAIN_DELAY=0 SINK_URL=10.96.0.20/sink.php "$@" \
  "$bin/relay" > "$out/relay" 2>&1 &
pids+=($!)
listening "$out/relay" "$!"

code=0
POD_IP=127.0.0.1 LISTEN_ADDR=127.0.0.1:8080 RELAY_URL=127.0.1.1:8080/relay.php \
  SEND_COUNT="$messages" SEND_INTERVAL="$interval" "$bin/sender" > "$out/sender" 2>&1 || code=$?
for i in 2 3 4; do
  echo "sink 127.0.0.$i $(grep -c '^From ' "$out/sink-$i" || true)"
done
echo "sender exit $code"
if [ "$code" != 0 ]; then tail -n 20 "$out/sender" "$out/relay" >&2; fi
