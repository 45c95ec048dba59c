#!/usr/bin/env bash
# The seed's whole flow against a real registry on this machine: build, tag,
# push with a login, create regcred, apply lab. Debian's docker-registry
# (Distribution 2.8) runs on 127.0.0.1 with htpasswd (bcrypt) authentication
# over plain HTTP (hence --tls-verify=false), and:
#   1. a login with a wrong password fails; the right one works (a temporary
#      --authfile, so no saved login can mask a wrong-credential case);
#   2. scripts/publish.sh builds the three images for amd64 and arm64 from
#      the musl binaries (--build-context), pushes a two-platform manifest
#      list per tier and pins a copy of the lab overlay by the lists'
#      digests, through its ruamel.yaml fallback (no kustomize here);
#   3. regcred, as `kubectl create secret docker-registry` renders it, holds
#      those credentials for that registry;
#   4. each image pulls by digest into an empty storage root with the
#      credentials, and not with wrong ones or none; pulled by platform, each
#      holds a binary for that platform's machine, in under 1,000,000 bytes;
#   5. the pinned lab overlay runs under `podman kube play`, pulling from the
#      registry (local manifest lists removed first), each Deployment in turn at one
#      replica (podman 4.3 publishes every containerPort on the host), without
#      the downward API's POD_IP, with its hostPath in a temporary folder: each
#      pod serves /readyz, and the sink writes the seed's Sink_<ip>.txt there.
# Everything made here is removed on exit, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/kubectl.sh
work=$(mktemp -d)
source scripts/lib/podman.sh
podman_config "$work"
registry_pid="" played=() images=()
cleanup() {
  for f in "${played[@]}"; do podman kube down "$f" > /dev/null 2>&1 || true; done
  for i in "${images[@]}"; do podman rmi -f "$i" > /dev/null 2>&1 || true; done
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2> /dev/null || true; wait "$registry_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-registry: FAIL: $*" >&2; exit 1; }

echo "== a registry with a login on 127.0.0.1"
port=$(python3 scripts/free_port.py)
host="127.0.0.1:$port"
registry="$host/library"
htpasswd -Bbn seed s3cret > "$work/htpasswd"
cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/registry-data}
http: {addr: "$host", secret: three-tier-test}
auth:
  htpasswd: {realm: three-tier-test, path: $work/htpasswd}
EOF
docker-registry serve "$work/registry.yml" > "$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://$host/v2/" || true)
  [ "$code" = 401 ] && break
  sleep 0.1
done
[ "$code" = 401 ] || { cat "$work/registry.log" >&2; fail "the registry did not come up asking for a login ($code)"; }

auth="$work/auth.json"
if podman login --authfile "$auth" --tls-verify=false -u seed -p wrong "$host" > /dev/null 2>&1; then
  fail "a login with a wrong password succeeded"
fi
podman login --authfile "$auth" --tls-verify=false -u seed -p s3cret "$host" > /dev/null
echo "login: refused with a wrong password, accepted with the right one"

echo "== scripts/publish.sh $registry 0.1.0 --platforms amd64,arm64 --pin (musl binaries, ruamel.yaml fallback)"
for arch in amd64:x86_64 arm64:aarch64; do
  MUSL_TARGET=${arch#*:}-unknown-linux-musl bash scripts/build-musl.sh > /dev/null
  mkdir -p "$work/build/${arch%:*}/out"
  cp "target/musl/${arch#*:}-unknown-linux-musl/release/"{sender,relay,sink} "$work/build/${arch%:*}/out/"
done
cp -r kustomize "$work/kustomize"
if command -v kustomize > /dev/null; then fail "kustomize is on PATH: this test is for the fallback"; fi
bash scripts/publish.sh "$registry" 0.1.0 --platforms amd64,arm64 --build-context "$work/build" --authfile "$auth" --tls-verify=false \
  --pin "$work/kustomize/overlays/lab" | tee "$work/published"
declare -A digest
while read -r tier image sha; do
  [[ $sha == sha256:* ]] || continue
  digest[$tier]=$sha
  images+=("$image")
done < "$work/published"
[ "${#digest[@]}" = 3 ] || fail "publish.sh printed ${#digest[@]} digests"
"$kubectl" kustomize "$work/kustomize/overlays/lab" > "$work/lab.yaml"
for tier in sender relay sink; do
  grep -q "image: $registry/$tier@${digest[$tier]}" "$work/lab.yaml" || fail "the pinned lab does not run $registry/$tier@${digest[$tier]}"
done
grep -q 'registry.fortaspen.com' "$work/lab.yaml" && fail "the pinned lab still names registry.fortaspen.com"
grep -q '^# The seed.s images by name and tag' "$work/kustomize/overlays/lab/kustomization.yaml" || fail "pinning lost the overlay's comments"
echo "the pinned lab overlay runs the three pushed digests, comments kept"

echo "== regcred"
"$kubectl" create secret docker-registry regcred --docker-server="$host" --docker-username=seed \
  --docker-password=s3cret --dry-run=client -o yaml > "$work/regcred.yaml"
python3 scripts/checks/regcred.py "$work/regcred.yaml" "$host"

echo "== pull by digest into an empty store: with the credentials, with wrong ones, with none"
store=(--root "$work/store" --runroot "$work/runroot" --storage-driver vfs)
printf '{"auths":{"%s":{"auth":"%s"}}}' "$host" "$(printf seed:wrong | base64)" > "$work/wrong.json"
for tier in sender relay sink; do
  ref="$registry/$tier@${digest[$tier]}"
  podman "${store[@]}" pull --quiet --authfile "$auth" --tls-verify=false "$ref" > /dev/null || fail "pulling $ref failed"
  if podman "${store[@]}" pull --quiet --authfile "$work/wrong.json" --tls-verify=false "$ref" > /dev/null 2>&1; then
    fail "$ref pulled with a wrong password"
  fi
  if REGISTRY_AUTH_FILE=/dev/null podman "${store[@]}" pull --quiet --authfile /dev/null --tls-verify=false "$ref" > /dev/null 2>&1; then
    fail "$ref pulled without credentials"
  fi
done
size=$(podman "${store[@]}" image inspect --format '{{.Size}}' "$registry/sink@${digest[sink]}")
echo "pulled the three images by digest with credentials (sink: $size bytes); wrong or no credentials were refused"

echo "== each tier's manifest list pulled by platform: the binary's machine, the image's size"
for tier in sender relay sink; do
  for arch in amd64 arm64; do
    ref="$registry/$tier@${digest[$tier]}"
    id=$(podman "${store[@]}" pull --quiet --platform "linux/$arch" --authfile "$auth" --tls-verify=false "$ref") \
      || fail "pulling $ref for linux/$arch failed"
    size=$(podman "${store[@]}" image inspect --format '{{.Size}}' "$id")
    [ "$size" -lt 1000000 ] || fail "$tier for $arch is $size bytes, not under 1,000,000"
    ctr=$(podman "${store[@]}" create "$id" 2> /dev/null)
    podman "${store[@]}" cp "$ctr:/$tier" "$work/$tier-$arch" > /dev/null
    podman "${store[@]}" rm "$ctr" > /dev/null
    echo "$tier $arch image: $size bytes; $(python3 scripts/checks/elf_machine.py "$work/$tier-$arch" "$arch")"
  done
done
podman "${store[@]}" system reset --force > /dev/null 2>&1 || true

echo "== the pinned lab overlay under podman kube play, pulling from the registry"
# The local lists go (the Deployments' imagePullPolicy is Always, so each pod pulls anyway).
for image in "${images[@]}"; do podman manifest rm "$image" > /dev/null; done
applog="$work/applog"
mkdir -p "$applog" && chmod 1777 "$applog"
python3 scripts/checks/lab_for_kube_play.py "$work/lab.yaml" "$applog" "$work"
if curl -s -o /dev/null --max-time 1 http://127.0.0.1:8080/; then fail "host port 8080 is taken; podman 4.3 kube play needs it"; fi
for deployment in sinks relays senders; do
  file="$work/kube-$deployment.yaml"
  played+=("$file")
  podman kube play --authfile "$auth" --tls-verify=false "$file" > /dev/null 2>> "$work/podman.log" \
    || { cat "$work/podman.log" >&2; fail "kube play $deployment"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --retry 20 --retry-delay 1 --retry-connrefused --max-time 30 http://127.0.0.1:8080/readyz || true)
  [ "$code" = 200 ] || fail "$deployment: /readyz answered $code"
  if [ "$deployment" = sinks ]; then
    body=$(curl -sf --max-time 5 -d "lab" http://127.0.0.1:8080/sink.php) || fail "the sink did not log a message"
    [[ $body == "Logged message from "* ]] || fail "the sink answered '$body'"
    ls "$applog"/Sink_*.txt > /dev/null 2>&1 || fail "no Sink_<ip>.txt in the hostPath folder"
  fi
  podman kube down "$file" > /dev/null 2>> "$work/podman.log"
  echo "$deployment: pulled from $host with the login, served /readyz"
done
echo "hostPath: $(basename "$(ls "$applog"/Sink_*.txt)") written by the sink"
echo "test-registry: all checks passed"
