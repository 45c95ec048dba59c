//! The sender's flow page in a real browser: Debian's chromium, driven by
//! playwright-core (tests/browser/flow.mjs), against a sender of an on-host
//! 1/2/3 run whose tiers listen on their own pod addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use crate::util::{get, signal_stop, sinks_and_relays, TierProcess};

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

/// A hop's address and version.
type Hop = (String, String);

/// A hop of a lineage line, `-> relay <ip> (<version>)`.
fn hop(line: &str, tier: &str) -> Option<Hop> {
    let rest = line.split(&format!(" -> {tier} ")).nth(1)?;
    let (ip, rest) = rest.split_once(' ')?;
    let version = rest.strip_prefix('(')?.split_once(')')?.0;
    Some((ip.to_string(), version.to_string()))
}

#[test]
fn the_flow_page_shows_where_messages_went_and_a_failing_sink() {
    let relay_env = [
        ("SINK_TIMEOUT", "500ms".into()),
        ("DEMO_VERSION", "blue".into()),
        ("FAULTS", "on".into()),
    ];
    let (sinks, _relays, relay_url) = sinks_and_relays(&relay_env);
    // A fifth of the messages meet a relay's 503 on their first attempt.
    let env = [
        ("RELAY_URL", relay_url),
        ("SEND_INTERVAL", "100ms".into()),
        ("FAULTS", "on".into()),
        ("SEND_FAULT", "relay=503@0.2".into()),
    ];
    let sender = TierProcess::pod("sender", "sender", "127.0.0.21", &env);
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

    // Rows match the sender's own lineage lines:
    // `<id> -> relay <ip> (<version>) -> sink <ip> (<version>) <status> in …`.
    let lineage: BTreeMap<String, (Hop, Hop)> = sender
        .matching(|l| l.contains(" -> relay "))
        .iter()
        .filter_map(|l| {
            let id = l.split(' ').next()?.rsplit('-').next()?.to_string();
            Some((id, (hop(l, "relay")?, hop(l, "sink")?)))
        })
        .collect();
    // Each hop names its version; DEMO_VERSION (the relays') follows it.
    let version_of: BTreeMap<String, String> = lineage
        .values()
        .flat_map(|(relay, sink)| [relay.clone(), sink.clone()])
        .collect();
    for (ip, version) in &version_of {
        let want = if ip.starts_with("127.0.1.") {
            " blue"
        } else {
            ""
        };
        assert!(
            version.starts_with(&format!("v{}", env!("CARGO_PKG_VERSION")))
                && version.ends_with(want),
            "{ip} names its version {version:?}"
        );
    }
    let rows = seen["rows"].as_array().unwrap();
    assert!(rows.len() >= 5, "{rows:?}");
    // A fault's row says which fault it met and what the sender did then, marked.
    let fault_row = rows
        .iter()
        .find(|r| r["note"].as_str().unwrap().contains("fault: "))
        .unwrap_or_else(|| panic!("no fault row: {rows:?}"));
    let note = fault_row["note"].as_str().unwrap();
    // The relay that met relay=503 refused it; the sender failed over to the other.
    assert!(
        note.contains(
            "sent relay=503, met relay=503 (attempt 1); then failed over to relay 127.0.1."
        ),
        "{note}"
    );
    assert_eq!(fault_row["marked"], true);
    for row in rows {
        let id = row["id"].as_str().unwrap();
        let want = lineage
            .get(id)
            .unwrap_or_else(|| panic!("no lineage line for {id}"));
        let cell = |ip: &str, version: &str| (row[ip].as_str(), row[version].as_str());
        assert_eq!(
            (cell("relay", "relayVersion"), cell("sink", "sinkVersion")),
            (
                (Some(want.0 .0.as_str()), Some(want.0 .1.as_str())),
                (Some(want.1 .0.as_str()), Some(want.1 .1.as_str()))
            )
        );
    }
    // The diagram names every relay and sink that took part, in the group of its version.
    for column in ["relays", "sinks"] {
        for node in seen[column].as_array().unwrap() {
            let name = node["name"].as_str().unwrap();
            if let Some(version) = version_of.get(name) {
                assert_eq!(node["version"].as_str(), Some(version.as_str()), "{node}");
            }
        }
    }
    let names = |column: &str| -> BTreeSet<String> {
        seen[column]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    // The hops of the messages the page shows: the sender goes on sending
    // after the browser's snapshot, and a later message may meet a sink the
    // page had not seen yet.
    let shown: Vec<&(Hop, Hop)> = rows
        .iter()
        .filter_map(|row| lineage.get(row["id"].as_str()?))
        .collect();
    let used_relays: BTreeSet<String> = shown.iter().map(|(r, _)| r.0.clone()).collect();
    let used_sinks: BTreeSet<String> = shown.iter().map(|(_, s)| s.0.clone()).collect();
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
