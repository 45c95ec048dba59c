#!/usr/bin/env bash
# The seed's "build, tag, push" for the three images, with podman.
#
#   bash scripts/publish.sh REGISTRY [TAG] [options]
#   bash scripts/publish.sh registry.fortaspen.com/library 0.1.0
#
# Builds the targets sender, relay and sink of Containerfile.multi as
# REGISTRY/<tier>:TAG (TAG defaults to the crate's version), one image per
# platform gathered in a manifest list, pushes each list with its images, and
# prints each list's digest. Log in first (`podman login <registry host>`).
#
# Options:
#   --platforms LIST      comma-separated architectures (default amd64;
#                         amd64,arm64 for both)
#   --pin OVERLAY         then pin OVERLAY's images by digest (its kustomization.yaml
#                         `images:` entries), with `kustomize edit set image` if
#                         kustomize is on PATH, else by editing the file with
#                         ruamel.yaml (comments kept)
#   --build-context DIR   use DIR/<arch>/out/{sender,relay,sink} instead of the build
#                         stage (binaries from scripts/build-musl.sh; what CI does,
#                         since the builder image cannot be pulled there)
#   --authfile FILE       podman's credentials file (default: podman's own)
#   --tls-verify=false    for a registry on plain HTTP or with a self-signed certificate
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
registry=${1%/}
shift
tag=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
if [ $# -gt 0 ] && [[ $1 != --* ]]; then tag=$1; shift; fi
pin="" context="" platforms=amd64 podman_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --pin) pin=${2:?--pin needs an overlay folder}; shift 2 ;;
    --platforms) platforms=${2:?--platforms needs a list such as amd64,arm64}; shift 2 ;;
    --build-context) context=${2:?--build-context needs a folder}; shift 2 ;;
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
IFS=, read -r -a arches <<< "$platforms"
for arch in "${arches[@]}"; do
  case $arch in
    amd64 | arm64) ;;
    *) echo "publish: --platforms $platforms: $arch is not amd64 or arm64" >&2; exit 2 ;;
  esac
  if [ -n "$context" ] && [ ! -d "$context/$arch/out" ]; then
    echo "publish: --build-context $context has no $arch/out folder" >&2
    exit 2
  fi
done
for tier in sender relay sink; do
  image="$registry/$tier:$tag"
  # A list of the same name from an earlier run would gain these images.
  if podman manifest exists "$image"; then podman manifest rm "$image" > /dev/null; fi
  if podman image exists "$image"; then podman rmi --force "$image" > /dev/null; fi
  podman manifest create "$image" > /dev/null
  for arch in "${arches[@]}"; do
    podman build --quiet --platform "linux/$arch" ${context:+--build-context "build=$context/$arch"} \
      --target "$tier" --build-arg VERSION="$tag" --build-arg GIT_REVISION="$revision" \
      --manifest "$image" -f Containerfile.multi . > /dev/null
  done
  podman manifest push --all --quiet "${podman_opts[@]}" --digestfile "$work/$tier.digest" "$image" "docker://$image"
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
