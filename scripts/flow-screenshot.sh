#!/usr/bin/env bash
# Regenerates docs/flow-page.png, README.md's picture of a sender's flow page
# during docs/faults.md's scenario 1: runs the on-host 3/2/3
# (scripts/run-local.sh, a message every 200 ms per sender, FAULTS=on,
# SEND_FAULT=sink=503@0.2, DEMO_VERSION=blue, SINK_TIMEOUT=1s) with sink-1 slower than the
# relays' SINK_TIMEOUT (POST /fault?delay=2500ms), lets it fill the page, and
# photographs sender-1's page
# (http://127.0.0.1:18001/) with Debian's chromium through
# tests/browser/flow.mjs. Needs chromium and playwright-core, as
# scripts/setup-tests.sh installs them.
#
#   bash scripts/flow-screenshot.sh          # writes docs/flow-page.png
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE_PORT:-18000}
log=$(mktemp)
FAULTS=on SEND_FAULT=sink=503@0.2 DEMO_VERSION=blue SINK_TIMEOUT=1s SEND_INTERVAL=200ms BASE_PORT=$base bash scripts/run-local.sh > "$log" 2>&1 &
run=$!
trap 'kill -TERM "$run" 2> /dev/null || true; wait "$run" 2> /dev/null || true; rm -f "$log"' EXIT
page="http://127.0.0.1:$((base + 1))/"
curl -sf --retry 100 --retry-delay 1 --retry-connrefused --max-time 120 -o /dev/null "$page" \
  || { cat "$log" >&2; echo "flow-screenshot: sender-1 did not start" >&2; exit 1; }
curl -sf --max-time 5 -X POST "http://127.0.2.1:$((base + 201))/fault?delay=2500ms&for=5m" > /dev/null
result=$(cd tests/browser && node flow.mjs screenshot "$page" "$PWD/../../docs/flow-page.png")
case $result in
  *'"error"'*) echo "flow-screenshot: $result" >&2; exit 1 ;;
esac
echo "flow-screenshot: wrote docs/flow-page.png ($(stat -c %s docs/flow-page.png) bytes)"
