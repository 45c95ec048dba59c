#!/usr/bin/env bash
# The sequence fuzzer of tests/sequences/ for as long as you like, against
# the release build: rounds of CONNECTIONS connections per tier (sink, then
# relay in front of a sink), each round on fresh processes with the next
# seed, until SECONDS have passed for each tier. CI runs 3,000 connections a
# tier with a fixed seed; this is the long run (an hour by default, with a
# seed of the clock's). A failure prints the connection's seed, index and
# bytes; replay it with SEQUENCES_SEED=<hex> SEQUENCES_ONLY=<index>.
#   SECONDS_PER_TIER=600 CONNECTIONS=20000 SEED=abc bash bench/sequences.sh
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${SECONDS_PER_TIER:-1800}
seed=${SEED:-$(printf '%x' "$(date +%s)")}
echo "sequences: seed $seed, rounds of ${CONNECTIONS:-20000} connections, ${seconds}s a tier"
cargo build --release --quiet --bins
SEQUENCES_SEED=$seed SEQUENCES_CONNECTIONS=${CONNECTIONS:-20000} SEQUENCES_SECONDS=$seconds \
  THREE_TIER_BIN_DIR="$PWD/target/release" \
  cargo test --release --quiet --test tests sequences::a_ -- --nocapture --test-threads=1
