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
# --sbom and --sign-key need skopeo 1.10 or later with sigstore enabled (not
# Debian 12's: scripts/setup-skopeo.sh fetches Debian 13's); --sbom needs trivy.
#
# Options:
#   --platforms LIST      comma-separated architectures (default amd64;
#                         amd64,arm64 for both)
#   --pin OVERLAY         then pin OVERLAY's images by digest (its kustomization.yaml
#                         `images:` entries, by scripts/pin_images.py, comments
#                         kept; it needs the Python package ruamel.yaml), which
#                         also lets prod render: unpinned, it refuses
#   --build-context DIR   use DIR/<arch>/out/{sender,relay,sink} instead of the build
#                         stage (binaries from scripts/build-musl.sh; what CI does,
#                         since the builder image cannot be pulled there)
#   --sbom                push each image's CycloneDX SBOM (trivy's, from the pushed
#                         image) beside it, to the tag sha256-<image digest hex>.sbom
#                         of the tier's repository (scripts/sbom_artifact.py)
#   --sign-key FILE       sign each list and each image in it with this sigstore
#                         private key (skopeo generate-sigstore-key, or cosign's),
#                         as REGISTRY/<tier>:TAG; the signatures are stored in the
#                         registry as sigstore attachments (tags sha256-<hex>.sig)
#   --sign-passphrase-file FILE  the key's passphrase (else skopeo asks for it)
#   --authfile FILE       podman's credentials file (default: podman's own)
#   --tls-verify=false    for a registry on plain HTTP or with a self-signed certificate
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 1 ] || usage
registry=${1%/}
shift
tag=$(awk -F'"' '/^version = / {print $2; exit}' Cargo.toml)
if [ $# -gt 0 ] && [[ $1 != --* ]]; then tag=$1; shift; fi
pin="" context="" platforms=amd64 sbom=0 podman_opts=() inspect_opts=() copy_opts=() sign_opts=()
while [ $# -gt 0 ]; do
  case $1 in
    --sbom) sbom=1; shift ;;
    --sign-key) sign_opts+=(--sign-by-sigstore-private-key "${2:?--sign-key needs a private key file}"); shift 2 ;;
    --sign-passphrase-file) sign_opts+=(--sign-passphrase-file "${2:?--sign-passphrase-file needs a file}"); shift 2 ;;
    --pin) pin=${2:?--pin needs an overlay folder}; shift 2 ;;
    --platforms) platforms=${2:?--platforms needs a list such as amd64,arm64}; shift 2 ;;
    --build-context) context=${2:?--build-context needs a folder}; shift 2 ;;
    --authfile)
      podman_opts+=(--authfile "${2:?--authfile needs a file}") inspect_opts+=(--authfile "$2") copy_opts+=(--authfile "$2")
      shift 2
      ;;
    --tls-verify=*)
      podman_opts+=("$1") inspect_opts+=("$1") copy_opts+=("--src-${1#--}" "--dest-${1#--}")
      shift
      ;;
    *) echo "publish: unknown option $1" >&2; usage ;;
  esac
done
if [ "${#sign_opts[@]}" -gt 0 ] && [[ ${sign_opts[*]} != *--sign-by-sigstore-private-key* ]]; then
  echo "publish: --sign-passphrase-file is for --sign-key FILE, which is missing" >&2
  exit 2
fi
if [ "$sbom" = 1 ] || [ "${#sign_opts[@]}" -gt 0 ]; then
  command -v skopeo > /dev/null || { echo "publish: --sbom and --sign-key need skopeo (scripts/setup-skopeo.sh)" >&2; exit 2; }
fi
if [ "$sbom" = 1 ] && ! command -v trivy > /dev/null; then echo "publish: --sbom needs trivy on PATH" >&2; exit 2; fi
if [ -n "$pin" ] && [ ! -f "$pin/kustomization.yaml" ]; then
  echo "publish: $pin has no kustomization.yaml" >&2
  exit 2
fi

revision=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Sigstore signatures go into the registry as attachments (registries.d's
# use-sigstore-attachments), for this registry's host only.
mkdir -p "$work/registries.d"
printf 'docker:\n  %s:\n    use-sigstore-attachments: true\n' "${registry%%/*}" > "$work/registries.d/publish.yaml"
skopeo() { command skopeo --registries.d "$work/registries.d" "$@"; }

# push_sboms REPO LIST_DIGEST: each platform's image of the list, its SBOM by
# trivy, pushed to REPO:sha256-<image digest hex>.sbom.
push_sboms() {
  local repo=$1 list=$2 arch digest dir
  skopeo inspect --raw "${inspect_opts[@]}" "docker://$repo@$list" > "$work/list.json"
  for arch in "${arches[@]}"; do
    digest=$(python3 scripts/sbom_artifact.py instance "$work/list.json" "$arch")
    dir="$work/${repo##*/}-$arch"
    skopeo copy --quiet "${copy_opts[@]}" "docker://$repo@$digest" "oci:$dir-image"
    trivy image --quiet --input "$dir-image" --format cyclonedx --output "$dir.cdx.json"
    python3 scripts/sbom_artifact.py layout "$dir.cdx.json" "$work/list.json" "$arch" "$dir-sbom"
    skopeo copy --quiet "${copy_opts[@]}" "oci:$dir-sbom" "docker://$repo:sha256-${digest#sha256:}.sbom"
    echo "publish: SBOM of $repo@$digest (linux/$arch) at $repo:sha256-${digest#sha256:}.sbom"
  done
}

# sign_list IMAGE LIST_DIGEST: the list and each image in it signed as IMAGE
# (repo:tag), by copying the list onto its own tag; the digest must not change.
sign_list() {
  local image=$1 list=$2
  skopeo copy --quiet --all "${copy_opts[@]}" "${sign_opts[@]}" --digestfile "$work/signed.digest" \
    "docker://${image%:*}@$list" "docker://$image" \
    || { echo "publish: signing $image failed (Debian 12's skopeo and podman cannot sign: scripts/setup-skopeo.sh)" >&2; exit 1; }
  [ "$(cat "$work/signed.digest")" = "$list" ] || { echo "publish: signing moved $image from $list to $(cat "$work/signed.digest")" >&2; exit 1; }
  echo "publish: signed $image ($list and each image in it)"
}
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
  if [ "$sbom" = 1 ]; then push_sboms "$registry/$tier" "${digests[$tier]}"; fi
  if [ "${#sign_opts[@]}" -gt 0 ]; then sign_list "$image" "${digests[$tier]}"; fi
  echo "$tier $image ${digests[$tier]}"
done

[ -n "$pin" ] || exit 0
python3 scripts/pin_images.py "$pin/kustomization.yaml" "$registry" "${digests[sender]}" "${digests[relay]}" "${digests[sink]}"
echo "publish: pinned $pin to the digests above"
