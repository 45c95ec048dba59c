#!/usr/bin/env bash
# Runs the case study's 3/2/3 on this host: 3 sinks, 2 relays, 3 senders on
# loopback, each on its own address as pods are; Ctrl-C stops it cleanly.
# It builds first, fails loudly (naming the tier) if any tier cannot start
# or stops, and passes every tier variable through:
#
#   bash scripts/run-local.sh                       # runs until Ctrl-C
#   SEND_COUNT=3 bash scripts/run-local.sh          # each sender stops after 3; then all stop
#   bash scripts/run-local.sh --sinks 5 --relays 3  # other counts (1 to 99 of each)
#
# The launcher is scripts/topology.py; `python3 scripts/topology.py --help`
# says all it does (addresses, ports, BASE_PORT, LOG_DIR, PIDS_FILE).
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/topology.py "$@"
