//! The musl recipe is written once, and the image build uses it.
//!
//! scripts/musl/recipe.sh holds the flags that both scripts/build-musl.sh (CI)
//! and Containerfile.multi's build stage (users, with a Rust builder image)
//! use; the builder image's Rust version is an ARG before FROM, which cannot
//! read a file, so it is checked here.

const RECIPE: &str = include_str!("../scripts/musl/recipe.sh");
const CONTAINERFILE: &str = include_str!("../Containerfile.multi");
const BUILD_MUSL: &str = include_str!("../scripts/build-musl.sh");

fn recipe(name: &str) -> &'static str {
    RECIPE
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
        .unwrap_or_else(|| panic!("scripts/musl/recipe.sh sets no {name}"))
}

#[test]
fn the_builder_image_is_the_recipes_rust_version() {
    let image = CONTAINERFILE
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_IMAGE="))
        .expect("Containerfile.multi has ARG RUST_IMAGE=");
    let tag = image.rsplit_once(':').map_or("", |(_, tag)| tag);
    assert!(
        tag.starts_with(&format!("{}-", recipe("RUST_VERSION"))),
        "builder image {image} is not Rust {}",
        recipe("RUST_VERSION")
    );
}

#[test]
fn both_builds_take_their_flags_from_the_recipe() {
    for (name, text) in [
        ("Containerfile.multi", CONTAINERFILE),
        ("scripts/build-musl.sh", BUILD_MUSL),
    ] {
        for flag in [
            "-Zbuild-std=\"$BUILD_STD\"",
            "-Zbuild-std-features=\"$BUILD_STD_FEATURES\"",
            "$STATIC_RUSTFLAGS",
            "RUSTC_BOOTSTRAP=1",
            "--locked",
            "auditable build",
            "cargo-auditable@$CARGO_AUDITABLE_VERSION",
        ] {
            assert!(text.contains(flag), "{name} does not use {flag}");
        }
    }
    assert!(CONTAINERFILE.contains(". /recipe.sh"));
    assert!(BUILD_MUSL.contains("source scripts/musl/recipe.sh"));
    // The allocator's C flags per architecture: spelled per target in the
    // Containerfile, picked per MUSL_TARGET in build-musl.sh.
    for flag in [
        "CFLAGS_x86_64_unknown_linux_musl=\"$MIMALLOC_CFLAGS_X86_64\"",
        "CFLAGS_aarch64_unknown_linux_musl=\"$MIMALLOC_CFLAGS_AARCH64\"",
    ] {
        assert!(
            CONTAINERFILE.contains(flag),
            "Containerfile.multi does not use {flag}"
        );
    }
    for flag in [
        "cflags=$MIMALLOC_CFLAGS_X86_64",
        "cflags=$MIMALLOC_CFLAGS_AARCH64",
        "\"CFLAGS_$triple=$cflags\"",
    ] {
        assert!(
            BUILD_MUSL.contains(flag),
            "scripts/build-musl.sh does not use {flag}"
        );
    }
    // Neither spells out its own std features, size or allocator flags.
    for text in [CONTAINERFILE, BUILD_MUSL] {
        assert!(!text.contains("optimize_for_size") && !text.contains("noseparate-code"));
        assert!(!text.contains("-mpopcnt") && !text.contains("outline-atomics"));
    }
}
