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
#   MUSL_TARGET_DIR=$PWD/target/yardstick-musl bash scripts/build-musl.sh \
#     --manifest-path ../shared/yardstick/Cargo.toml   # another crate, with the same recipe
#
# Installs what it needs itself (idempotently; apt as root). Builds into its
# own target directory, so Debian's toolchain and rustup's never invalidate
# each other's builds. Extra arguments go to cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/musl/recipe.sh
target=x86_64-unknown-linux-musl
target_dir=${MUSL_TARGET_DIR:-$PWD/target/musl}
native=$target_dir/native
mkdir -p "$native"

source scripts/lib/apt.sh
apt_install_missing rustc-web cargo-web rust-web-src libstd-rust-web-dev musl-tools binutils
rustc=/usr/bin/rustc cargo=/usr/bin/cargo
version=$("$rustc" --version | awk '{print $2}')
[ "$version" = "$RUST_VERSION" ] || { echo "build-musl: $rustc is $version, the recipe wants $RUST_VERSION" >&2; exit 1; }

# LLVM's unwinder, as a static library, from the .deb (installing it would
# pull in an LLVM runtime the machine does not need).
if [ ! -f "$native/libunwind.a" ]; then
  deb=$(mktemp -d)
  (cd "$deb" && apt-get download -qq -o APT::Sandbox::User=root libunwind-22-dev > /dev/null && dpkg-deb -x libunwind-22-dev_*.deb root)
  found=$(find "$deb/root" -name libunwind.a | head -n 1)
  [ -n "$found" ] || { echo "build-musl: no libunwind.a in libunwind-22-dev" >&2; exit 1; }
  cp "$found" "$native/libunwind.a"
  rm -rf "$deb"
fi
musl-gcc -O2 -c scripts/musl/fprintf_chk.c -o "$native/fprintf_chk.o"

# link-self-contained=no: musl-gcc brings musl's crt objects; the shim goes
# last on the link line, after libunwind.a, which needs it.
RUSTC=$rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc \
  CC_x86_64_unknown_linux_musl=musl-gcc CFLAGS_x86_64_unknown_linux_musl="$MIMALLOC_CFLAGS_X86_64" \
  RUSTFLAGS="$STATIC_RUSTFLAGS -C link-self-contained=no -L native=$native -C link-arg=$native/fprintf_chk.o" \
  GIT_REVISION=${GIT_REVISION:-$(git rev-parse --short HEAD 2> /dev/null || echo unknown)} \
  "$cargo" build --quiet --release --locked --bins --target "$target" --target-dir "$target_dir" \
  -Zbuild-std="$BUILD_STD" -Zbuild-std-features="$BUILD_STD_FEATURES" "$@"
if [ "$#" = 0 ]; then
  for tier in sender relay sink; do
    echo "build-musl: $target_dir/$target/release/$tier $(stat -c %s "$target_dir/$target/release/$tier") bytes"
  done
fi
