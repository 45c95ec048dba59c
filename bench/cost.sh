#!/usr/bin/env bash
# What one message costs the relay and the sink, beside the yardstick's
# tiers: heap allocations and bytes (valgrind's dhat), syscalls (strace -c)
# and user-space instructions (callgrind). bench/cost.py has the method.
#
#   bash bench/cost.sh              # 2,000 messages a count, a few minutes
#   QUICK=1 bash bench/cost.sh      # 100 messages: what CI runs so this does not rot
#
# Builds what it measures (glibc and static musl, ours and the yardstick's)
# and installs valgrind and strace from Debian if missing (root, for apt).
source "$(dirname "$0")/../scripts/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
yardstick_src=$(cd "${YARDSTICK_SRC:-../shared/yardstick}" && pwd)
source scripts/lib/apt.sh
apt_install_missing valgrind strace
cargo build --quiet --release --locked --bins
bash scripts/build-musl.sh > /dev/null
# The yardstick's own warnings are not ours to fix.
cargo build --quiet --release --locked --manifest-path "$yardstick_src/Cargo.toml" --target-dir target/yardstick 2> /dev/null
MUSL_TARGET_DIR=$PWD/target/yardstick-musl bash scripts/build-musl.sh --manifest-path "$yardstick_src/Cargo.toml" 2> /dev/null
python3 bench/cost.py --messages "${MESSAGES:-$([ -n "${QUICK:-}" ] && echo 100 || echo 2000)}" "$@"
