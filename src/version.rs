//! This build's identity: the crate's version and the git revision it was built from.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision baked in at build time (`GIT_REVISION`), or `unknown`.
pub const REVISION: &str = match option_env!("GIT_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// How a hop names this build: `v<crate version>+<revision>` (no
/// `+<revision>` when it is unknown); a tier adds `DEMO_VERSION` after a
/// space (see `crate::tiers::tier::Tier::version`).
pub fn label() -> String {
    if REVISION == "unknown" {
        format!("v{VERSION}")
    } else {
        format!("v{VERSION}+{REVISION}")
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn label_is_version_and_revision() {
        let plain = label();
        assert!(plain.starts_with(&format!("v{VERSION}")) && !plain.contains(' '));
    }
}
