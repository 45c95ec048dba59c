#!/usr/bin/env bash
# Measures what one relay and one sink use, to size the Kubernetes requests and
# limits: resident memory (VmRSS idle, VmHWM peak) and CPU time, idle and under
# wrk load (2 threads, 16 connections, DURATION) through the relay, plus the
# threads each tier ran; then a sender's memory once its flow page lists its
# last 100 messages. Release builds on loopback; needs wrk.
#
#   bash bench/resources.sh                          # DURATION=10s by default
#   UPSTREAM_MAX_REQUESTS=1 bash bench/resources.sh  # a new relay-to-sink connection per message
#
# Any tier variable set in the environment reaches both tiers (LOG_DIR,
# LOG_FSYNC, ...). The last line, `row: <req/s> <relay us> <sink us>`, is for
# the scripts that compare settings (bench/reuse.sh, bench/fsync.sh).
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
cargo build --quiet --release --bins
# The harness's POST of a ~60-byte text/plain message (../shared/baseline/wrk/post.lua).
lua=$(cd "${BASELINE:-../shared/baseline}" && pwd)/wrk/post.lua
sender=
trap 'kill $relay $sink $sender 2>/dev/null || true' EXIT
DRAIN_DELAY=0 LISTEN_ADDR=127.0.0.1:18702 target/release/sink > /dev/null & sink=$!
DRAIN_DELAY=0 LISTEN_ADDR=127.0.0.1:18701 SINK_URL=127.0.0.1:18702/ target/release/relay > /dev/null & relay=$!
for port in 18701 18702; do
  curl -sf --retry 50 --retry-delay 0 --retry-connrefused --max-time 10 "http://127.0.0.1:$port/healthz" > /dev/null \
    || { echo "resources: the tier on port $port did not start" >&2; exit 1; }
done
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }   # utime + stime, seconds (USER_HZ 100)
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
echo "idle: relay VmRSS $(kb $relay VmRSS) kB, sink VmRSS $(kb $sink VmRSS) kB"
before_relay=$(cpu $relay) before_sink=$(cpu $sink)
out=$(wrk -t2 -c16 -d"$duration" -s "$lua" http://127.0.0.1:18701/relay.php)
requests=$(awk '/requests in/ {print $1}' <<< "$out")
echo "load: $requests messages in $duration ($(awk '/Requests\/sec/ {print $2}' <<< "$out") req/s)"
declare -A us
for tier in relay sink; do
  pid=${!tier}
  before_var="before_$tier"
  used=$(awk -v a="$(cpu $pid)" -v b="${!before_var}" 'BEGIN {print a - b}')
  us[$tier]=$(awk -v u="$used" -v n="$requests" 'BEGIN {printf "%.1f", u / n * 1e6}')
  echo "$tier: peak VmHWM $(kb $pid VmHWM) kB, CPU ${used}s, ${us[$tier]} us per message, $(kb $pid Threads) threads after the load"
done
# The sender's page memory is bounded: the last 100 messages and 60 s of edge counts.
DRAIN_DELAY=0 LISTEN_ADDR=127.0.0.1:18700 RELAY_URL=127.0.0.1:18701/relay.php SEND_INTERVAL=10ms \
  target/release/sender > /dev/null & sender=$!
listed=0
for _ in $(seq 300); do   # at most 30 s for 100 messages at 10 ms
  listed=$(curl -s --max-time 2 http://127.0.0.1:18700/flow | grep -o '"id":' | wc -l || true)
  [ "$listed" -ge 100 ] && break
  sleep 0.1
done
curl -sf --max-time 2 -o /dev/null http://127.0.0.1:18700/
echo "sender: VmRSS $(kb $sender VmRSS) kB, peak VmHWM $(kb $sender VmHWM) kB, with $listed messages on its flow page"
echo "row: $(awk '/Requests\/sec/ {print $2}' <<< "$out") ${us[relay]} ${us[sink]}"
