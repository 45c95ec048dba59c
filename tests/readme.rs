//! The docs tell the truth about the configuration and the endpoints, and README.md stays a front door.
//!
//! The settings table lives in docs/configuration.md and the endpoints in
//! docs/endpoints.md; README.md names the two set-up commands, in at most
//! 250 lines, and links only inside the repository.

use three_tier::config::SETTINGS;
use three_tier::Role;

const README: &str = include_str!("../README.md");
const CONFIGURATION: &str = include_str!("../docs/configuration.md");
const ENDPOINTS: &str = include_str!("../docs/endpoints.md");

/// The rows of docs/configuration.md's table, backticks removed:
/// (variable, default, read by, meaning).
fn documented_settings() -> Vec<[String; 4]> {
    let table = CONFIGURATION
        .split_once("| variable | default | read by | meaning |\n|---|---|---|---|\n")
        .expect("docs/configuration.md has the configuration table")
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
fn the_configuration_table_is_the_settings_rows() {
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
    let documented = documented_settings();
    for (want, got) in rows.iter().zip(&documented) {
        assert_eq!(
            got, want,
            "docs/configuration.md's row for {} (backticks aside) differs from src/config.rs",
            want[0]
        );
    }
    assert_eq!(
        documented.len(),
        rows.len(),
        "docs/configuration.md has {} rows, SETTINGS {}",
        documented.len(),
        rows.len()
    );
}

#[test]
fn every_endpoint_is_documented() {
    for route in [
        "`GET /healthz`",
        "`GET /readyz`",
        "`POST /<any other path>`",
        "`GET /`",
        "`GET /flow`",
        "`GET /metrics`",
    ] {
        assert!(
            ENDPOINTS.contains(route),
            "docs/endpoints.md does not list {route}"
        );
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

#[test]
fn the_readme_is_a_front_door_that_links_only_inside_the_repository() {
    let lines = README.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines, at most 250");
    let outside: Vec<&str> = README
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| target.starts_with("../") || target.contains("://"))
        .collect();
    assert!(
        outside.is_empty(),
        "links that leave the repository: {outside:?}"
    );
    for doc in [
        "configuration",
        "endpoints",
        "monitoring",
        "benchmarks",
        "building",
        "faults",
        "deploying",
        "operating",
    ] {
        assert!(
            README.contains(&format!("(docs/{doc}.md")),
            "README.md links docs/{doc}.md"
        );
    }
}
