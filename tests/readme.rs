//! README.md tells the truth about the configuration and the endpoints.

use three_tier::config::SETTINGS;

const README: &str = include_str!("../README.md");

#[test]
fn every_setting_is_in_the_readme_table_with_its_default() {
    for setting in SETTINGS {
        let row = README
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", setting.name)))
            .unwrap_or_else(|| panic!("README.md has no table row for {}", setting.name));
        let default = if setting.default.is_empty() {
            "unset".to_string()
        } else {
            format!("`{}`", setting.default)
        };
        assert!(
            row.contains(&format!("| {default} |")),
            "README.md row for {} lacks default {default}: {row}",
            setting.name
        );
    }
}

#[test]
fn every_endpoint_is_in_the_readme() {
    for route in [
        "`GET /healthz`",
        "`GET /readyz`",
        "`POST /<any other path>`",
        "`GET /`",
        "`GET /flow`",
        "`GET /metrics`",
    ] {
        assert!(README.contains(route), "README.md does not list {route}");
    }
}

#[test]
fn the_two_setup_commands_are_in_the_readme() {
    assert!(README.contains("bash scripts/run-local.sh"));
    assert!(README.contains("bash scripts/test.sh"));
    let ci = include_str!("../.ci/run");
    assert!(
        ci.contains("bash scripts/test.sh"),
        ".ci/run must run README's test command"
    );
}
