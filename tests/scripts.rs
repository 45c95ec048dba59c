//! Every script a user or CI runs answers `--help` with its usage and exits 0, before it runs anything.
//!
//! The bash scripts in `scripts/` and `bench/` source `scripts/lib/usage.sh`
//! first (it prints the script's opening comment); the Python ones use
//! argparse or print their docstring. A script that shows neither is
//! reported without being run (run, it would do its work).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The scripts: `*.sh` and `*.py` in `scripts/`, `scripts/checks/`,
/// `scripts/rollout/` and `bench/` (the libraries in `scripts/lib/` are sourced, not run).
fn scripts() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["scripts", "scripts/checks", "scripts/rollout", "bench"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str());
            if matches!(ext, Some("sh" | "py")) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Whether the script shows it handles `--help` before doing anything.
fn handles_help(path: &Path, text: &str) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("sh") => text.lines().find(|l| !l.starts_with('#')).is_some_and(|l| {
            l.starts_with("source \"$(dirname \"$0\")/") && l.ends_with("lib/usage.sh\" \"$@\"")
        }),
        _ => {
            text.contains("argparse")
                || text.contains(r#"if sys.argv[1:2] in (["-h"], ["--help"]):"#)
        }
    }
}

#[test]
fn every_script_answers_help_with_its_usage_and_exit_0() {
    let mut wrong = Vec::new();
    let all = scripts();
    assert!(all.len() > 40, "{all:?}");
    for path in all {
        let text = std::fs::read_to_string(&path).unwrap();
        if !handles_help(&path, &text) {
            wrong.push(format!("{}: does not handle --help first", path.display()));
            continue;
        }
        let program = if path.extension().is_some_and(|e| e == "sh") {
            "bash"
        } else {
            "python3"
        };
        let out = Command::new(program)
            .arg(&path)
            .arg("--help")
            .output()
            .unwrap();
        let usage = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || usage.trim().lines().count() < 2 {
            wrong.push(format!("{}: {} {usage:?}", path.display(), out.status));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
