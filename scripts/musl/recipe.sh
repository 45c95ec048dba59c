# The static musl build's recipe, in one place: sourced by scripts/build-musl.sh
# (what CI builds and measures on Debian) and by Containerfile.multi's build
# stage (what users build from a Rust builder image), so that the two make the
# same binaries where it matters: the compiler version, the standard library
# rebuilt from source with the same crates and features, the same size flags.
# What differs is the linker and libc: Debian's musl-gcc with musl 1.2.3 and
# LLVM's libunwind, against the Rust image's rust-lld with musl 1.2.5 and the
# target's own unwinder. tests/recipe.rs checks that Containerfile.multi's
# builder image is this RUST_VERSION.

# The rustc both recipes use: Debian's rustc-web, and the rust:<version> image.
RUST_VERSION=1.96.0
# `cargo auditable build` embeds the crate list (names, versions, sources) in
# each binary, compressed, in a section of its own, so that scanners such as
# trivy find what a scratch image's one file links.
CARGO_AUDITABLE_VERSION=0.7.7
# -Zbuild-std: std rebuilt with the binaries, so that it is optimised for size
# with them (and so that a musl std exists at all on Debian, which ships none).
BUILD_STD=std,panic_unwind
BUILD_STD_FEATURES=optimize_for_size
# Static, non-PIE (no interpreter, no dynamic section); one segment for code
# and data instead of page-aligned separate ones, which saves about 10 KB each.
STATIC_RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static -C link-arg=-z -C link-arg=noseparate-code"
# mimalloc, the musl build's allocator (Cargo.toml says why), is C, compiled
# with the target's C compiler. It must not call into libgcc, which neither
# link includes: on x86-64 its bit counts become a libgcc call unless POPCNT
# may be used (every x86-64 CPU since 2008-2011 has it: x86-64-v2); on
# aarch64 GCC's default outline atomics are libgcc calls.
MIMALLOC_CFLAGS_X86_64="-mpopcnt"
MIMALLOC_CFLAGS_AARCH64="-mno-outline-atomics"
