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
#   5. publish.sh --sbom pushed each image's CycloneDX SBOM beside it
#      (tag sha256-<image digest hex>.sbom), listing the crates in the binary;
#   6. publish.sh --sign-key signed the lists with a key made here; a pull
#      with a policy.json that requires that key for the registry (skopeo
#      1.18, containers/image's policy engine, as CRI-O and podman nodes use
#      it: Debian 12's podman has sigstore disabled) accepts them, by tag and
#      by digest, and refuses an image pushed unsigned, one signed with
#      another key, and a signed tag repointed to another signed digest;
#   7. the pinned lab overlay runs under `podman kube play`, pulling from the
#      registry (local manifest lists removed first), each Deployment in turn at one
#      replica (podman 4.3 publishes every containerPort on the host), without
#      the downward API's POD_IP, with its hostPath in a temporary folder: each
#      pod serves /readyz, and the sink writes the seed's Sink_<ip>.txt there.
# Everything made here is removed on exit, also on failure: podman keeps its
# images (the built lists, what kube play pulls) in a store of its own in the
# temporary folder, not the machine's.
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/kubectl.sh
work=$(mktemp -d)
source scripts/lib/podman.sh
podman_config "$work"
printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' "$work" "$work" > "$work/storage.conf"
export CONTAINERS_STORAGE_CONF="$work/storage.conf"
registry_pid="" played=() images=() own_store=0
cleanup() {
  for f in "${played[@]}"; do podman kube down "$f" > /dev/null 2>&1 || true; done
  if [ "$own_store" = 1 ]; then podman rmi --all --force > /dev/null 2>&1 || true; fi
  umount "$work/graph/overlay" 2> /dev/null || true
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2> /dev/null || true; wait "$registry_pid" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-registry: FAIL: $*" >&2; exit 1; }
[ "$(podman info --format '{{.Store.GraphRoot}}')" = "$work/graph" ] || fail "podman does not use the store in $work/storage.conf"
own_store=1

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

echo "== scripts/publish.sh $registry 0.1.0 --platforms amd64,arm64 --sbom --sign-key --pin (musl binaries, ruamel.yaml fallback)"
# The release key and another one, made here (never committed).
echo "three-tier test passphrase" > "$work/passphrase"
for key in release other; do skopeo generate-sigstore-key --output-prefix "$work/$key" --passphrase-file "$work/passphrase" > /dev/null; done
for arch in amd64:x86_64 arm64:aarch64; do
  MUSL_TARGET=${arch#*:}-unknown-linux-musl bash scripts/build-musl.sh > /dev/null
  mkdir -p "$work/build/${arch%:*}/out"
  cp "target/musl/${arch#*:}-unknown-linux-musl/release/"{sender,relay,sink} "$work/build/${arch%:*}/out/"
done
cp -r kustomize "$work/kustomize"
if command -v kustomize > /dev/null; then fail "kustomize is on PATH: this test is for the fallback"; fi
bash scripts/publish.sh "$registry" 0.1.0 --platforms amd64,arm64 --build-context "$work/build" --authfile "$auth" --tls-verify=false \
  --sbom --sign-key "$work/release.private" --sign-passphrase-file "$work/passphrase" --pin "$work/kustomize/overlays/lab" | tee "$work/published"
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

echo "== each image's SBOM, beside it in the registry"
sk_pull=(--authfile "$auth" --src-tls-verify=false)
for tier in sender relay sink; do
  skopeo inspect --raw --authfile "$auth" --tls-verify=false "docker://$registry/$tier@${digest[$tier]}" > "$work/$tier.list.json"
  for arch in amd64 arm64; do
    image=$(python3 scripts/sbom_artifact.py instance "$work/$tier.list.json" "$arch")
    skopeo copy --quiet "${sk_pull[@]}" "docker://$registry/$tier:sha256-${image#sha256:}.sbom" "oci:$work/sbom-$tier-$arch" \
      || fail "no SBOM at $registry/$tier:sha256-${image#sha256:}.sbom"
    python3 scripts/checks/crate_list.py "$(python3 scripts/checks/oci_layer.py "$work/sbom-$tier-$arch")" "$tier $arch"
  done
done

echo "== signatures: a policy.json that requires the release key for $registry"
python3 scripts/checks/signature_policy.py "$registry" "$work/release.pub" "$work/policy.json" "$work/registries.d/test.yaml"
verified=(--policy "$work/policy.json" --registries.d "$work/registries.d")
# pull REF ARCH: a pull under that policy (into an OCI folder); its errors in $work/pull.err.
pull() { rm -rf "$work/pulled"; skopeo "${verified[@]}" copy --quiet --remove-signatures "${sk_pull[@]}" --override-arch "$2" "docker://$1" "oci:$work/pulled" 2> "$work/pull.err"; }
for tier in sender relay sink; do
  for arch in amd64 arm64; do pull "$registry/$tier:0.1.0" "$arch" || { cat "$work/pull.err" >&2; fail "the signed $tier:0.1.0 ($arch) was refused"; }; done
done
pull "$registry/sink@${digest[sink]}" arm64 || { cat "$work/pull.err" >&2; fail "the signed sink list by digest was refused"; }
echo "accepted: the three signed lists by tag (each platform) and the sink's by digest"
# refused REF WHAT EXPECTED: the pull is refused, for the expected reason.
refused() {
  if pull "$1" amd64; then fail "$2 ($1) was accepted"; fi
  grep -q "$3" "$work/pull.err" || { cat "$work/pull.err" >&2; fail "$2 was refused, but not for '$3'"; }
  echo "refused: $2: $(sed -n 's/.*rejected: \(.*\)"$/\1/p' "$work/pull.err")"
}
# Three small images of our own, each with its own digest (a digest signed once is signed under every tag).
for name in unsigned other-key old; do
  mkdir -p "$work/$name" && echo "$name" > "$work/$name/note"
  printf 'FROM scratch\nCOPY note /note\n' > "$work/$name/Containerfile"
  podman build --quiet --platform linux/amd64 -t "$registry/sink:$name" "$work/$name" > /dev/null
  podman push --quiet --authfile "$auth" --tls-verify=false "$registry/sink:$name"
done
sign() { skopeo --registries.d "$work/registries.d" copy --quiet --authfile "$auth" --src-tls-verify=false --dest-tls-verify=false \
  --sign-by-sigstore-private-key "$1" --sign-passphrase-file "$work/passphrase" "docker://$2" "docker://$2"; }
sign "$work/other.private" "$registry/sink:other-key"
sign "$work/release.private" "$registry/sink:old"
refused "$registry/sink:unsigned" "an image pushed unsigned" "A signature was required, but no signature exists"
refused "$registry/sink:other-key" "an image signed with another key" "cryptographic signature verification failed"
# The release tag repointed to an image the release key signed as another tag.
skopeo copy --quiet --authfile "$auth" --src-tls-verify=false --dest-tls-verify=false "docker://$registry/sink:old" "docker://$registry/sink:0.1.0"
refused "$registry/sink:0.1.0" "the signed tag sink:0.1.0 repointed to sink:old's digest" "is not accepted"

echo "== the pinned lab overlay under podman kube play, pulling from the registry"
# The local lists go (the Deployments' imagePullPolicy is Always, so each pod pulls anyway).
for image in "${images[@]}"; do podman manifest rm "$image" > /dev/null; done
applog="$work/applog"
mkdir -p "$applog" && chmod 1777 "$applog"
python3 scripts/checks/lab_for_kube_play.py "$work/lab.yaml" "$applog" "$work"
# What each Deployment's pod must do while it runs alone on host port 8080.
check_pulled() { # deployment
  local deployment=$1 code body
  code=$(curl -s -o /dev/null -w '%{http_code}' --retry 20 --retry-delay 1 --retry-connrefused --max-time 30 http://127.0.0.1:8080/readyz || true)
  [ "$code" = 200 ] || fail "$deployment: /readyz answered $code"
  if [ "$deployment" = sinks ]; then
    body=$(curl -sf --max-time 5 -d "lab" http://127.0.0.1:8080/sink.php) || fail "the sink did not log a message"
    [[ $body == "Logged message from "* ]] || fail "the sink answered '$body'"
    ls "$applog"/Sink_*.txt > /dev/null 2>&1 || fail "no Sink_<ip>.txt in the hostPath folder"
  fi
  echo "$deployment: pulled from $host with the login, served /readyz"
}
kube_play_each "$work" check_pulled --authfile "$auth" --tls-verify=false
echo "hostPath: $(basename "$(ls "$applog"/Sink_*.txt)") written by the sink"
echo "test-registry: all checks passed"
