#!/usr/bin/env bash
# The seed's "build, tag, push" for the three images, with podman.
#
#   bash scripts/publish.sh REGISTRY [TAG] [options]
#   bash scripts/publish.sh registry.fortaspen.com/library 0.1.0
#
# Builds the targets sender, relay and sink of Containerfile.multi as
# REGISTRY/<tier>:TAG (TAG defaults to the crate's version), pushes them, and
# prints each image's digest. Log in first (`podman login <registry host>`).
#
# Options:
#   --pin OVERLAY         then pin OVERLAY's images by digest (its kustomization.yaml
#                         `images:` entries), with `kustomize edit set image` if
#                         kustomize is on PATH, else by editing the file with
#                         ruamel.yaml (comments kept)
#   --build-context DIR   use DIR/out/{sender,relay,sink} instead of the build stage
#                         (binaries from scripts/build-musl.sh; what CI does, since
#                         the builder image cannot be pulled there)
#   --authfile FILE       podman's credentials file (default: podman's own)
#   --tls-verify=false    for a registry on plain HTTP or with a self-signed certificate
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
registry=${1%/}
shift
tag=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
if [ $# -gt 0 ] && [[ $1 != --* ]]; then tag=$1; shift; fi
pin="" context=() podman_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --pin) pin=${2:?--pin needs an overlay folder}; shift 2 ;;
    --build-context) context=(--build-context "build=${2:?--build-context needs a folder}" --build-arg TARGETARCH=amd64); shift 2 ;;
    --authfile) podman_opts+=(--authfile "${2:?--authfile needs a file}"); shift 2 ;;
    --tls-verify=*) podman_opts+=("$1"); shift ;;
    *) echo "publish: unknown option $1" >&2; usage ;;
  esac
done
if [ -n "$pin" ] && [ ! -f "$pin/kustomization.yaml" ]; then
  echo "publish: $pin has no kustomization.yaml" >&2
  exit 2
fi

revision=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A digests
for tier in sender relay sink; do
  image="$registry/$tier:$tag"
  podman build --quiet "${context[@]}" --target "$tier" \
    --build-arg VERSION="$tag" --build-arg GIT_REVISION="$revision" \
    -t "$image" -f Containerfile.multi . > /dev/null
  podman push --quiet "${podman_opts[@]}" --digestfile "$work/$tier.digest" "$image"
  digests[$tier]=$(cat "$work/$tier.digest")
  echo "$tier $image ${digests[$tier]}"
done

[ -n "$pin" ] || exit 0
if command -v kustomize > /dev/null; then
  for tier in sender relay sink; do
    (cd "$pin" && kustomize edit set image "$tier=$registry/$tier@${digests[$tier]}")
  done
else
  python3 scripts/pin_images.py "$pin/kustomization.yaml" "$registry" "${digests[sender]}" "${digests[relay]}" "${digests[sink]}"
fi
echo "publish: pinned $pin to the digests above"
