//! The seed's topology on one host: 3 senders, 2 relays, 3 sinks, wired with comma lists.

use std::collections::HashMap;

use crate::util::{message_of, Tier};

#[test]
fn three_two_three_delivers_every_message_once_through_every_instance() {
    let sinks: Vec<Tier> = (1..=3)
        .map(|i| Tier::start("sink", &format!("sink-{i}"), &[]))
        .collect();
    let sink_url = sinks
        .iter()
        .map(|s| s.url("/sink.php"))
        .collect::<Vec<_>>()
        .join(",");
    let relays: Vec<Tier> = (1..=2)
        .map(|i| {
            Tier::start(
                "relay",
                &format!("relay-{i}"),
                &[("SINK_URL", sink_url.clone())],
            )
        })
        .collect();
    let relay_url = relays
        .iter()
        .map(|r| r.url("/relay.php"))
        .collect::<Vec<_>>()
        .join(",");
    let mut senders: Vec<Tier> = (1..=3)
        .map(|i| {
            Tier::start(
                "sender",
                &format!("sender-{i}"),
                &[
                    ("RELAY_URL", relay_url.clone()),
                    ("SEND_INTERVAL", "50ms".into()),
                    ("SEND_COUNT", "20".into()),
                    // Distinct identities, so each sender's messages can be told apart.
                    ("POD_IP", format!("10.0.0.{i}")),
                ],
            )
        })
        .collect();
    for sender in &mut senders {
        assert_eq!(sender.exit_code(), 0, "{}", sender.output());
    }

    let sent: Vec<String> = senders
        .iter()
        .flat_map(|s| s.matching(|l| l.starts_with("********  Sending ")))
        .map(|l| l["********  Sending ".len()..].to_string())
        .collect();
    assert_eq!(sent.len(), 60);
    for sender in &senders {
        let replies = sender.matching(|l| l.starts_with("Logged message from 127.0.0.1"));
        assert_eq!(replies.len(), 20, "{}", sender.output());
    }

    // Every reply was 2xx, so each message reached a sink at least once; 60
    // sink lines holding exactly the sent multiset means each arrived once.
    let received: Vec<String> = sinks
        .iter()
        .flat_map(|s| s.matching(|l| l.starts_with("From 127.0.0.1 at ")))
        .map(|l| message_of(&l).to_string())
        .collect();
    assert_eq!(
        counts(&received),
        counts(&sent),
        "sinks did not log exactly what was sent"
    );
    for tier in relays.iter().chain(&sinks) {
        let lines = tier.matching(|l| l.starts_with("Relaying from ") || l.starts_with("From "));
        assert!(
            !lines.is_empty(),
            "{} took no part\n{}",
            tier.name,
            tier.output()
        );
    }
    let relayed: usize = relays
        .iter()
        .map(|r| {
            r.matching(|l| l.starts_with("Relaying from 127.0.0.1 at "))
                .len()
        })
        .sum();
    assert_eq!(relayed, 60);
}

fn counts(items: &[String]) -> HashMap<&str, usize> {
    let mut map = HashMap::new();
    for item in items {
        *map.entry(item.as_str()).or_default() += 1;
    }
    map
}
