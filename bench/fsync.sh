#!/usr/bin/env bash
# What LOG_FSYNC=on costs: bench/resources.py (wrk, 16 connections, through
# one relay to one sink) with both tiers writing their LOG_DIR files on disk,
# without and with a flush to disk per message, ROUNDS times each in turn;
# prints a Markdown table of medians.
#
#   bash bench/fsync.sh                   # ROUNDS=3, DURATION=5s, files under /var/tmp
#   FSYNC_DIR=/mnt/disk bash bench/fsync.sh
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --release --bins
rounds=${ROUNDS:-3}
export DURATION=${DURATION:-5s}
dir=$(mktemp -d -p "${FSYNC_DIR:-/var/tmp}")
out=$(mktemp)
trap 'rm -rf "$dir" "$out"' EXIT
echo "LOG_DIR on $(df --output=fstype "$dir" | tail -n 1) ($dir)" >&2
for round in $(seq "$rounds"); do
  for fsync in off on; do
    rm -f "$dir"/*.txt
    echo "$fsync $(LOG_DIR=$dir LOG_FSYNC=$fsync python3 bench/resources.py | awk '/^row:/ {print $2, $3, $4}')" >> "$out"
  done
done
echo "| LOG_FSYNC | req/s | relay µs/message | sink µs/message |"
echo "|---|---|---|---|"
python3 bench/medians.py "$out" | awk -F '\t' '{printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4}'
