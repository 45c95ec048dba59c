//! This build's identity: the crate's version and the git revision it was built from.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision baked in at build time (`GIT_REVISION`), or `unknown`.
pub const REVISION: &str = match option_env!("GIT_REVISION") {
    Some(r) => r,
    None => "unknown",
};
