#!/usr/bin/env bash
# Builds the three binaries statically, as the images are made on machines that
# cannot build musl: glibc with crt-static, non-PIE (no interpreter, no dynamic
# section). Output: target/x86_64-unknown-linux-gnu/release/{sender,relay,sink},
# or under the --target-dir passed on. Extra arguments go to cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
  exec cargo build --quiet --release --locked --bins --target x86_64-unknown-linux-gnu "$@"
