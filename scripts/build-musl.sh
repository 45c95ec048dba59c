#!/usr/bin/env bash
# Builds the three binaries as static musl executables, offline but for the
# Debian and Rust package registries: Debian's rustc-web 1.96 rebuilds the
# standard library for x86_64-unknown-linux-musl with -Zbuild-std (Debian ships
# no musl std), musl-tools' musl-gcc links, and LLVM's libunwind.a (extracted
# from libunwind-22-dev, not installed) is the unwinder, with a small shim for
# the one glibc symbol it needs (scripts/musl/fprintf_chk.c). The recipe's
# flags are in scripts/musl/recipe.sh, shared with Containerfile.multi.
#
#   bash scripts/build-musl.sh        # -> target/musl/x86_64-unknown-linux-musl/release/{sender,relay,sink}
#   MUSL_TARGET=aarch64-unknown-linux-musl bash scripts/build-musl.sh
#                                     # -> target/musl/aarch64-unknown-linux-musl/release/…, cross-built
#                                     #    with Debian's aarch64 gcc and musl-dev:arm64
#   MUSL_TARGET_DIR=$PWD/target/yardstick-musl bash scripts/build-musl.sh \
#     --manifest-path ../shared/yardstick/Cargo.toml   # another crate, with the same recipe
#
# Installs what it needs itself (idempotently; apt as root). Builds into its
# own target directory, so Debian's toolchain and rustup's never invalidate
# each other's builds. Extra arguments go to cargo build.
source "$(dirname "$0")/lib/usage.sh" "$@"
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/musl/recipe.sh
target=${MUSL_TARGET:-x86_64-unknown-linux-musl}
case $target in
  x86_64-unknown-linux-musl) arch=x86_64 debian=amd64 cflags=$MIMALLOC_CFLAGS_X86_64 packages="gcc musl-dev" ;;
  aarch64-unknown-linux-musl)
    arch=aarch64 debian=arm64 cflags=$MIMALLOC_CFLAGS_AARCH64 packages="gcc-aarch64-linux-gnu musl-dev:arm64"
    ;;
  *)
    echo "build-musl: MUSL_TARGET=$target; accepted: x86_64-unknown-linux-musl, aarch64-unknown-linux-musl" >&2
    exit 2
    ;;
esac
target_dir=${MUSL_TARGET_DIR:-$PWD/target/musl}
native=$target_dir/native/$arch
mkdir -p "$native"

source scripts/lib/apt.sh
if [ "$debian" != "$(dpkg --print-architecture)" ] && ! dpkg --print-foreign-architectures | grep -qx "$debian"; then
  dpkg --add-architecture "$debian"
fi
# shellcheck disable=SC2086 # two package names
apt_install_missing rustc-web cargo-web rust-web-src libstd-rust-web-dev musl-tools binutils $packages
# musl-gcc for the target: the target's gcc with musl's specs (musl-tools'
# musl-gcc is this for x86-64 only).
cc=$native/musl-gcc
printf '#!/bin/sh\nexec %s-linux-gnu-gcc "$@" -specs /usr/lib/%s-linux-musl/musl-gcc.specs\n' "$arch" "$arch" > "$cc"
chmod +x "$cc"
rustc=/usr/bin/rustc cargo=/usr/bin/cargo
# cargo-auditable, once, from crates.io, into the build's own folder.
tools=$target_dir/tools
if ! grep -qF "\"cargo-auditable $CARGO_AUDITABLE_VERSION " "$tools/.crates.toml" 2> /dev/null; then
  "$cargo" install --quiet --locked "cargo-auditable@$CARGO_AUDITABLE_VERSION" --root "$tools"
fi
version=$("$rustc" --version | awk '{print $2}')
[ "$version" = "$RUST_VERSION" ] || { echo "build-musl: $rustc is $version, the recipe wants $RUST_VERSION" >&2; exit 1; }

# LLVM's unwinder, as a static library, from the .deb (installing it would
# pull in an LLVM runtime the machine does not need).
if [ ! -f "$native/libunwind.a" ]; then
  deb=$(mktemp -d)
  (cd "$deb" && apt-get download -qq -o APT::Sandbox::User=root "libunwind-22-dev:$debian" > /dev/null && dpkg-deb -x libunwind-22-dev_*.deb root)
  found=$(find "$deb/root" -name libunwind.a | head -n 1)
  [ -n "$found" ] || { echo "build-musl: no libunwind.a in libunwind-22-dev" >&2; exit 1; }
  cp "$found" "$native/libunwind.a"
  rm -rf "$deb"
fi
"$cc" -O2 -c scripts/musl/fprintf_chk.c -o "$native/fprintf_chk.o"

# link-self-contained=no: musl-gcc brings musl's crt objects; the shim goes
# last on the link line, after libunwind.a, which needs it.
triple=${target//-/_}
env "CARGO_TARGET_${triple^^}_LINKER=$cc" "CC_$triple=$cc" "CFLAGS_$triple=$cflags" \
  RUSTC=$rustc RUSTC_BOOTSTRAP=1 PATH="$tools/bin:$PATH" \
  RUSTFLAGS="$STATIC_RUSTFLAGS -C link-self-contained=no -L native=$native -C link-arg=$native/fprintf_chk.o" \
  GIT_REVISION=${GIT_REVISION:-$(git rev-parse --short HEAD 2> /dev/null || echo unknown)} \
  "$cargo" auditable build --quiet --release --locked --bins --target "$target" --target-dir "$target_dir" \
  -Zbuild-std="$BUILD_STD" -Zbuild-std-features="$BUILD_STD_FEATURES" "$@"
if [ "$#" = 0 ]; then
  for tier in sender relay sink; do
    echo "build-musl: $target_dir/$target/release/$tier $(stat -c %s "$target_dir/$target/release/$tier") bytes"
  done
fi
