//! The sender's flow page in a real browser: Debian's chromium, driven by
//! playwright-core (tests/browser/flow.mjs), against a sender of an on-host
//! 1/2/3 run whose tiers listen on their own pod addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::util::{get, signal_stop, sinks_and_relays, Tier};

/// Runs tests/browser/flow.mjs with `args`; returns its JSON.
fn browser(args: &[&str]) -> serde_json::Value {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let out = Command::new("node")
        .arg("flow.mjs")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("node (tests/browser: npm ci installs playwright-core)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "flow.mjs printed no JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(value.get("error").is_none(), "the browser: {value}");
    value
}

#[test]
fn the_flow_page_shows_where_messages_went_and_a_failing_sink() {
    let (sinks, _relays, relay_url) = sinks_and_relays(&[("SINK_TIMEOUT", "500ms".into())]);
    let env = [("RELAY_URL", relay_url), ("SEND_INTERVAL", "100ms".into())];
    let sender = Tier::pod("sender", "sender", "127.0.0.21", &env);
    let page = sender.url("/");

    let shot = std::env::temp_dir().join(format!("three-tier-flow-{}.png", std::process::id()));
    let seen = browser(&["check", &page, shot.to_str().unwrap()]);
    let errors = seen["consoleErrors"].as_array().unwrap();
    assert!(errors.is_empty(), "console errors: {errors:?}");
    let origin = sender.url("");
    for url in seen["requests"].as_array().unwrap() {
        let url = url.as_str().unwrap();
        assert!(url.starts_with(&origin), "a request left the sender: {url}");
    }
    let width = &seen["width"];
    assert!(
        width["scroll"].as_u64() <= width["viewport"].as_u64(),
        "horizontal scroll at 375 px: {width}"
    );
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 0),
        "no screenshot"
    );
    std::fs::remove_file(&shot).unwrap();

    // Rows match the sender's own lineage lines: `<id> -> relay <ip> -> sink <ip> <status> in …`.
    let lineage: BTreeMap<String, (String, String)> = sender
        .matching(|l| l.contains(" -> relay "))
        .iter()
        .filter_map(|l| {
            let mut words = l.split(' ');
            let id = words.next()?.rsplit('-').next()?.to_string();
            let relay = l.split(" -> relay ").nth(1)?.split(' ').next()?.to_string();
            let sink = l.split(" -> sink ").nth(1)?.split(' ').next()?.to_string();
            Some((id, (relay, sink)))
        })
        .collect();
    let rows = seen["rows"].as_array().unwrap();
    assert!(rows.len() >= 5, "{rows:?}");
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let want = lineage
            .get(id)
            .unwrap_or_else(|| panic!("no lineage line for {id}"));
        assert_eq!(
            (
                row["relay"].as_str().unwrap(),
                row["sink"].as_str().unwrap()
            ),
            (want.0.as_str(), want.1.as_str())
        );
    }
    // The diagram names every relay and sink that took part.
    let names = |column: &str| -> BTreeSet<String> {
        seen[column]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    let used_relays: BTreeSet<String> = lineage.values().map(|(r, _)| r.clone()).collect();
    let used_sinks: BTreeSet<String> = lineage.values().map(|(_, s)| s.clone()).collect();
    assert!(
        names("relays").is_superset(&used_relays),
        "{:?} vs {used_relays:?}",
        names("relays")
    );
    assert!(
        names("sinks").is_superset(&used_sinks),
        "{:?} vs {used_sinks:?}",
        names("sinks")
    );

    // A sink that stops answering (its relay's call times out) is marked
    // failing, with the messages it cost, within a few seconds.
    let stopped = &sinks[1];
    signal_stop(stopped.pid, true);
    let failing = browser(&["sink-error", &page, &stopped.addr.ip().to_string()]);
    signal_stop(stopped.pid, false);
    assert!(failing["seconds"].as_f64().unwrap() < 10.0, "{failing}");
    assert!(
        failing["node"].as_str().unwrap().contains("errors:"),
        "{failing}"
    );
    assert_eq!(get(sender.addr, "/healthz").unwrap().status, 200);
}
