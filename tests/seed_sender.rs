//! The seed's tier-1 script, verbatim (tests/seed/sender.sh), against our relay and sink.

use std::process::{Command, Stdio};

use crate::util::{is_record_from, record, TierProcess, Verb};

#[test]
fn the_seeds_bash_and_curl_sender_works_unchanged() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let relay = TierProcess::start(
        "relay",
        "relay",
        &[("SINK_URL", format!("{}/sink.php", sink.addr))],
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed/sender.sh");
    let child = Command::new("bash")
        .arg(script)
        // As in the seed's manifest: no scheme, a path the relay does not care about.
        .env("RELAY_URL", format!("{}/relay.php", relay.addr))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let seed = TierProcess::collect("seed-sender", child);
    seed.wait_line(|l| l == "Logged message from 127.0.0.1")
        .unwrap_or_else(|| {
            panic!(
                "no reply\n{}\n{}\n{}",
                seed.output(),
                relay.output(),
                sink.output()
            )
        });
    // The seed's sender logs its line without a request id: not one of our records.
    let prefix = "********  Sending ";
    let sent = seed
        .wait_line(|l| l.starts_with(&format!("{prefix}Message sent from ")))
        .unwrap();
    let message = &sent[prefix.len()..];
    let holds = |l: &str, verb| {
        is_record_from(l, verb, "127.0.0.1")
            && record(l, verb).is_some_and(|r| r.message == message)
    };
    relay
        .wait_line(|l| holds(l, Verb::Relaying))
        .expect("relay logged it");
    sink.wait_line(|l| holds(l, Verb::From))
        .expect("sink logged it");
}
