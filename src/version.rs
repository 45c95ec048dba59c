//! This build's identity: the crate's version and the git revision it was built from.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision baked in at build time (`GIT_REVISION`), or `unknown`.
pub const REVISION: &str = match option_env!("GIT_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// How a hop names its version: `v<crate version>+<revision>` (no
/// `+<revision>` when it is unknown), then `DEMO_VERSION` after a space when set.
pub fn label(demo: Option<&str>) -> String {
    let mut label = format!("v{VERSION}");
    if REVISION != "unknown" {
        label.push('+');
        label.push_str(REVISION);
    }
    if let Some(demo) = demo {
        label.push(' ');
        label.push_str(demo);
    }
    label
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn label_is_version_revision_and_demo() {
        let plain = label(None);
        assert!(plain.starts_with(&format!("v{VERSION}")) && !plain.contains(' '));
        assert_eq!(label(Some("blue")), format!("{plain} blue"));
    }
}
