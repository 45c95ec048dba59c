#!/usr/bin/env bash
# Installs a skopeo that can sign and verify sigstore signatures, for
# scripts/publish.sh --sign-key and scripts/test-registry.sh, idempotently:
#
#   bash scripts/setup-skopeo.sh BIN_DIR      # writes BIN_DIR/skopeo
#
# Debian 12's podman 4.3 and skopeo 1.9 are built with sigstore disabled
# ("Debian-local change: sigstore disabled", both signing and the policy's
# sigstoreSigned check), so this takes Debian 13's skopeo 1.18 (containers/image
# 5.34, sigstore enabled) and the libraries it links (its glibc among them),
# unpacked into a cache folder without installing them: nothing of the system's
# changes. The package source is the machine's own Debian mirror (from its apt
# sources) with suite trixie, checked against Debian's archive keyring, with
# apt's lists kept in the cache folder. BIN_DIR/skopeo runs the binary with the
# unpacked dynamic loader and libraries. A skopeo on PATH that is 1.10 or later
# and not Debian 12's would do the same; this script is for machines like CI's.
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
bin_dir=${1:?usage: setup-skopeo.sh BIN_DIR}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/three-tier/skopeo-trixie
packages=(skopeo libc6 libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0)
stamp="$cache/.packages"
if [ "$(cat "$stamp" 2> /dev/null)" != "${packages[*]}" ]; then
  arch=$(dpkg --print-architecture)
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2> /dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2> /dev/null || true)
  [ -n "$mirror" ] || { echo "setup-skopeo: no Debian mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list" >&2; exit 1; }
  rm -rf "$cache"
  mkdir -p "$cache/lists/partial" "$cache/archives/partial" "$cache/debs" "$cache/root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" > "$cache/trixie.list"
  apt_opts=(-qq -o "Dir::Etc::SourceList=$cache/trixie.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$cache/lists" -o "Dir::Cache=$cache" -o "APT::Architecture=$arch"
    -o "APT::Architectures::=$arch" -o APT::Sandbox::User=root)
  apt-get "${apt_opts[@]}" update
  (cd "$cache/debs" && apt-get "${apt_opts[@]}" download "${packages[@]}")
  for deb in "$cache"/debs/*.deb; do dpkg-deb -x "$deb" "$cache/root"; done
  rm -rf "$cache/debs" "$cache/lists" "$cache/archives"
  echo "${packages[*]}" > "$stamp"
fi
loader=$(find "$cache/root/usr/lib" -maxdepth 2 -name 'ld-linux*.so.*' | head -n 1)
[ -n "$loader" ] || { echo "setup-skopeo: no dynamic loader unpacked in $cache/root" >&2; exit 1; }
mkdir -p "$bin_dir"
cat > "$bin_dir/skopeo" <<WRAPPER
#!/bin/sh
# Debian 13's skopeo with its own loader and libraries (scripts/setup-skopeo.sh).
exec "$loader" --library-path "$(dirname "$loader")" "$cache/root/usr/bin/skopeo" "\$@"
WRAPPER
chmod +x "$bin_dir/skopeo"
"$bin_dir/skopeo" --version > /dev/null
