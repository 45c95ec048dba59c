#!/usr/bin/env bash
# What connection reuse costs and saves: bench/resources.py (wrk, 16
# connections, through one relay to one sink) at several UPSTREAM_MAX_REQUESTS
# values, ROUNDS times each in turn; prints a Markdown table of medians. The
# spread each value gives behind a Service is worked out in tests/spread.rs.
#
#   bash bench/reuse.sh                   # values 1 10 20 100, ROUNDS=3, DURATION=5s
#   VALUES="1 10" ROUNDS=5 bash bench/reuse.sh
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bins
values=${VALUES:-1 10 20 100}
rounds=${ROUNDS:-3}
export DURATION=${DURATION:-5s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for round in $(seq "$rounds"); do
  for n in $values; do
    echo "$n $(UPSTREAM_MAX_REQUESTS=$n python3 bench/resources.py | awk '/^row:/ {print $2, $3, $4}')" >> "$out"
  done
done
echo "| UPSTREAM_MAX_REQUESTS | new connections per message | req/s | relay µs/message | sink µs/message |"
echo "|---|---|---|---|---|"
python3 bench/medians.py "$out" | awk -F '\t' '{printf "| %s | %.2f | %s | %s | %s |\n", $1, 1 / $1, $2, $3, $4}'
