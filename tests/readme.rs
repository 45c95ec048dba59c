//! README.md tells the truth about the configuration and the endpoints.

use three_tier::config::SETTINGS;
use three_tier::Role;

const README: &str = include_str!("../README.md");

/// The rows of README.md's configuration table, backticks removed:
/// (variable, default, read by, meaning).
fn readme_settings() -> Vec<[String; 4]> {
    let table = README
        .split_once("| variable | default | read by | meaning |\n|---|---|---|---|\n")
        .expect("README.md has the configuration table")
        .1;
    table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<String> = row
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().replace('`', ""))
                .collect();
            assert_eq!(cells.len(), 4, "a configuration row of four cells: {row}");
            [
                cells[0].clone(),
                cells[1].clone(),
                cells[2].clone(),
                cells[3].clone(),
            ]
        })
        .collect()
}

/// How the table names the tiers that read a setting.
fn read_by(roles: &[Role]) -> String {
    if roles.len() == 3 {
        return "all".into();
    }
    roles
        .iter()
        .map(|r| r.name())
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn the_readme_configuration_table_is_the_settings_rows() {
    let rows: Vec<[String; 4]> = SETTINGS
        .iter()
        .map(|s| {
            let default = if s.default.is_empty() {
                "unset"
            } else {
                s.default
            };
            [
                s.name.into(),
                default.into(),
                read_by(s.roles),
                s.help.into(),
            ]
        })
        .collect();
    let readme = readme_settings();
    for (want, got) in rows.iter().zip(&readme) {
        assert_eq!(
            got, want,
            "README.md's row for {} (backticks aside) differs from src/config.rs",
            want[0]
        );
    }
    assert_eq!(
        readme.len(),
        rows.len(),
        "README.md has {} rows, SETTINGS {}",
        readme.len(),
        rows.len()
    );
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
