#!/usr/bin/env bash
# Proves the images of Containerfile.multi on this host, where no image can be
# pulled: the three binaries are built as static musl executables on the host
# (scripts/build-musl.sh, the recipe the build stage shares) and stand in for
# the `build` stage (podman build --build-context build=DIR), then
#   1. each binary has no ELF interpreter and no dynamic section;
#   2. each final stage builds, is one layer holding one file (the binary),
#      is configured to run as 65532:65532, and is under 1,000,000 bytes, as
#      an image (podman's Size) and as a binary;
#   3. 3 sinks (alias sink-svc), 2 relays (alias relay-svc) and 3 senders,
#      started by scripts/topology.py (the one launcher), run
#      on a podman network made here, read-only, with no capabilities, and
#      every message sent is logged by a sink exactly once, through more than
#      one relay and more than one sink (scripts/checks/delivery.py);
#   4. the smoke-test Job's pod (kustomize/components/smoke-test, from the
#      rendered dev overlay) under `podman kube play` on that network exits 0
#      with all 20 messages answered 200; after the sinks are stopped, it
#      exits non-zero within the Job's activeDeadlineSeconds;
#      `podman stop` (SIGTERM to PID 1) ends each relay and sink with exit
#      code 0 in under 2 seconds;
#   5. the rendered dev overlay (kustomize/overlays/dev, its images retagged to
#      the ones built here) runs under `podman kube play`: each pod runs as
#      65532:65532 on a read-only root with no capabilities, serves, keeps
#      working after errors, and stays up. podman 4.3 publishes every
#      containerPort on the host (fixed in 4.4), so the three Deployments are
#      played one at a time, each on host port 8080.
# Containers, pods, network and images made here are removed on exit, also on failure.
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."

run_id="tt$$"
work=$(mktemp -d)
source scripts/lib/podman.sh
podman_config "$work"
network="$run_id-net"
containers=()
played=()
cleanup() {
  for f in "${played[@]}"; do podman kube down "$f" > /dev/null 2>&1 || true; done
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" > /dev/null 2>&1 || true; done
  podman network rm -f "$network" > /dev/null 2>&1 || true
  for tier in sender relay sink; do podman rmi -f "localhost/three-tier/$tier:$run_id" > /dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-containers: FAIL: $*" >&2; exit 1; }

echo "== static musl binaries (scripts/build-musl.sh)"
bash scripts/build-musl.sh > /dev/null
limit=1000000
mkdir -p "$work/build/out"
for tier in sender relay sink; do
  bin="target/musl/x86_64-unknown-linux-musl/release/$tier"
  # Output captured first: with pipefail, `cmd | grep -q` fails when grep's early
  # exit makes cmd die of SIGPIPE, which would turn these checks upside down.
  headers=$(readelf -l "$bin")
  dynamic=$(readelf -d "$bin")
  if grep -q INTERP <<< "$headers"; then fail "$tier has an ELF interpreter"; fi
  grep -q "There is no dynamic section" <<< "$dynamic" || fail "$tier has a dynamic section"
  bytes=$(stat -c %s "$bin")
  [ "$bytes" -lt "$limit" ] || fail "$tier is $bytes bytes, not under $limit"
  cp "$bin" "$work/build/out/$tier"
  echo "$tier: static musl, no interpreter, no dynamic section, $bytes bytes"
done

echo "== images"
for tier in sender relay sink; do
  image="localhost/three-tier/$tier:$run_id"
  podman build --quiet --build-context "build=$work/build" --target "$tier" --build-arg TARGETARCH=amd64 \
    --build-arg GIT_REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    -t "$image" -f Containerfile.multi . > /dev/null
  layers=$(podman image inspect --format '{{len .RootFS.Layers}}' "$image")
  user=$(podman image inspect --format '{{.Config.User}}' "$image")
  [ "$layers" = 1 ] || fail "$tier image has $layers layers"
  [ "$user" = "65532:65532" ] || fail "$tier image user is '$user'"
  podman save --quiet --format oci-archive -o "$work/$tier.tar" "$image"
  mkdir -p "$work/$tier-oci" && tar -xf "$work/$tier.tar" -C "$work/$tier-oci"
  layer=$(python3 scripts/checks/oci_layer.py "$work/$tier-oci")
  entries=$(tar -tvf "$layer")
  files=$(tar -tf "$layer" | grep -v '/$' || true)
  [ "$files" = "$tier" ] || fail "$tier layer holds: $entries"
  size=$(tar -xOf "$layer" "$tier" | wc -c)
  image_size=$(podman image inspect --format '{{.Size}}' "$image")
  [ "$image_size" -lt "$limit" ] || fail "$tier image is $image_size bytes, not under $limit"
  echo "$tier image: $image_size bytes, 1 layer, 1 file ($tier, $size bytes), user $user"
  # What a scanner sees in it: the crate list cargo auditable embedded.
  trivy image --quiet --input "$work/$tier-oci" --format cyclonedx --output "$work/$tier.cdx.json"
  python3 scripts/checks/crate_list.py "$work/$tier.cdx.json" "$tier"
done

echo "== 3/2/3 on podman network $network"
podman network create "$network" > /dev/null
for name in sink-{1..3} relay-{1..2} sender-{1..3}; do containers+=("$run_id-$name"); done
python3 scripts/topology.py podman "$network" "localhost/three-tier/{tier}:$run_id" "$run_id" \
  -e DRAIN_DELAY=0 -e SEND_INTERVAL=100ms -e SEND_COUNT=10 || fail "the 3/2/3 did not start"
for i in 1 2 3; do
  code=$(timeout 120 podman wait "$run_id-sender-$i") || fail "sender-$i did not finish"
  [ "$code" = 0 ] || { podman logs "$run_id-sender-$i" >&2; fail "sender-$i exited $code"; }
done
mkdir -p "$work/logs"
for name in sink-1 sink-2 sink-3 relay-1 relay-2; do podman logs "$run_id-$name" > "$work/logs/$name.log" 2>&1; done
python3 scripts/checks/delivery.py --sink target/musl/x86_64-unknown-linux-musl/release/sink \
  --senders 3 --each 10 --min-sinks 2 --min-relays 2 "$work"/logs/*.log || fail "the sinks did not log each message sent exactly once, through more than one relay and sink"

echo "== the smoke-test Job's pod (dev overlay) under kube play: against the 3/2/3, then with the sinks stopped"
source scripts/lib/kubectl.sh
"$kubectl" kustomize kustomize/overlays/dev | sed "s#\(localhost/three-tier/[a-z]*\):dev#\1:$run_id#" > "$work/dev.yaml"
# smoke RUN: plays the Job's pod as smoke-RUN on the 3/2/3's network; sets
# code to its exit code, waiting at most the Job's activeDeadlineSeconds.
smoke() {
  local file="$work/smoke-$1.yaml" deadline
  read -r deadline _ < <(python3 scripts/checks/job_for_kube_play.py "$work/dev.yaml" smoke-test "smoke-$1" "$file" \
    RELAY_URL=relay-svc:8080/relay.php LOG_FORMAT=json)
  played+=("$file")
  podman kube play --network "$network" "$file" > /dev/null 2>> "$work/podman.log" || { cat "$work/podman.log" >&2; fail "kube play smoke-$1"; }
  code=$(timeout "$deadline" podman wait "smoke-$1-smoke-test") || code="no exit within ${deadline}s"
}
smoke healthy
[ "$code" = 0 ] || { podman logs smoke-healthy-smoke-test >&2; fail "the smoke test against a healthy 3/2/3 ended '$code'"; }
podman logs smoke-healthy-smoke-test 2>&1 | python3 scripts/checks/answered.py 20 || fail "the smoke test's messages were not all answered"

echo "== podman stop (SIGTERM to PID 1, DRAIN_DELAY=0): the sinks, the smoke test without them, the relays"
stop_measured() {
  local name started took_ms code
  for name; do
    started=$(date +%s%N)
    podman stop -t 10 "$name" > /dev/null
    took_ms=$(( ($(date +%s%N) - started) / 1000000 ))
    code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
    [ "$code" = 0 ] || fail "$name exited $code after SIGTERM"
    [ "$took_ms" -lt 2000 ] || fail "$name took ${took_ms} ms to stop"
    echo "$name: exit 0 in ${took_ms} ms"
  done
}
stop_measured "$run_id-sink-1" "$run_id-sink-2" "$run_id-sink-3"
started=$(date +%s)
smoke no-sinks
[[ $code =~ ^[1-9][0-9]*$ ]] || fail "the smoke test with the sinks stopped ended '$code', not non-zero"
echo "smoke-test with the sinks stopped: exit $code after $(( $(date +%s) - started )) s, within the Job's deadline"
stop_measured "$run_id-relay-1" "$run_id-relay-2"

echo "== podman kube play of the dev overlay"
python3 scripts/checks/split_deployments.py "$work/dev.yaml" "$work" > /dev/null
# What each Deployment's pod must do while it runs alone on host port 8080.
check_played() { # deployment
  local deployment=$1 container="$1-pod-0-${1%s}" user readonly_root caps body sent running
  user=$(podman inspect --format '{{.Config.User}}' "$container")
  readonly_root=$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$container")
  caps=$(podman inspect --format '{{.EffectiveCaps}}' "$container")
  [ "$user" = "65532:65532" ] || fail "$container runs as '$user'"
  [ "$readonly_root" = true ] || fail "$container root is writable"
  [ "$caps" = "[]" ] || fail "$container has capabilities $caps"
  curl -sf --retry 20 --retry-delay 1 --retry-connrefused --max-time 30 http://127.0.0.1:8080/healthz > /dev/null || fail "$container never answered /healthz"
  case $deployment in
    sinks)
      body=$(curl -sf --max-time 5 -d "kube play" http://127.0.0.1:8080/sink.php) || fail "sink did not log a message"
      [[ $body == "Logged message from "* ]] || fail "sink answered '$body'" ;;
    relays)
      # No sink-svc in podman: the relay must say so, and stay up.
      body=$(curl -s --max-time 5 -w ' %{http_code}' -d "kube play" http://127.0.0.1:8080/relay.php)
      [[ $body == "relay: sink unreachable: "*"sink-svc"*" 502" ]] || fail "relay answered '$body'" ;;
    senders)
      # No relay-svc either: the sender keeps going, message after message.
      # Polls its /metrics (at most 20 s) for the second message, SEND_INTERVAL (5 s) after the first.
      sent=0
      for _ in $(seq 1 80); do
        sent=$(curl -sf --max-time 2 http://127.0.0.1:8080/metrics | awk '$1 == "three_tier_messages_sent_total" {print $2}')
        [ "${sent:-0}" -ge 2 ] && break
        sleep 0.25
      done
      [ "$sent" -ge 2 ] || fail "sender did not go on to a second message" ;;
  esac
  running=$(podman inspect --format '{{.State.Running}} {{.RestartCount}}' "$container")
  [ "$running" = "true 0" ] || fail "$container did not stay up: $running"
  curl -sf --max-time 5 http://127.0.0.1:8080/healthz > /dev/null || fail "$container stopped serving"
  echo "$container: user 65532:65532, read-only root, no capabilities, served and stayed up"
}
kube_play_each "$work" check_played
echo "test-containers: all checks passed"
