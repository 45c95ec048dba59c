//! The seed's topology on one host: 3 senders, 2 relays, 3 sinks, wired with comma lists.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};

use crate::util::{
    get, is_record_from, metric_in, record, run_with_stdin, sinks_and_relays, Record, TierProcess,
    Verb,
};

const PER_SENDER: usize = 20;

#[test]
fn three_two_three_delivers_every_message_once_through_every_instance() {
    // Distinct identities (POD_IP), so lineage and ids tell the instances apart.
    let (sinks, relays, relay_url) = sinks_and_relays(&[]);
    let mut senders: Vec<TierProcess> = (1..=3)
        .map(|i| {
            let env = [
                ("RELAY_URL", relay_url.clone()),
                ("SEND_INTERVAL", "50ms".into()),
                ("SEND_COUNT", PER_SENDER.to_string()),
                ("POD_IP", format!("10.0.0.{i}")),
            ];
            TierProcess::start("sender", &format!("sender-{i}"), &env)
        })
        .collect();
    for sender in &mut senders {
        assert_eq!(sender.exit_code(), 0, "{}", sender.output());
    }

    // Each sender's record holds a message and a unique id; each sink's record
    // the same. Equal multisets: every message arrived exactly once.
    let message_and_id = |l: &str, verb| {
        let r = record(l, verb).expect("a record");
        format!("{}\t{}", r.message, r.request_id)
    };
    let sent: Vec<String> = senders
        .iter()
        .flat_map(|s| s.matching(|l| record(l, Verb::Sending).is_some()))
        .map(|l| message_and_id(&l, Verb::Sending))
        .collect();
    assert_eq!(sent.len(), 3 * PER_SENDER);
    assert_eq!(
        sent.iter().collect::<HashSet<_>>().len(),
        sent.len(),
        "ids are unique"
    );
    let sink_lines: Vec<String> = sinks
        .iter()
        .flat_map(|s| s.matching(|l| is_record_from(l, Verb::From, "127.0.0.1")))
        .collect();
    let received: Vec<String> = sink_lines
        .iter()
        .map(|l| message_and_id(l, Verb::From))
        .collect();
    assert_eq!(
        counts(&received),
        counts(&sent),
        "sinks did not log exactly what was sent"
    );
    for tier in relays.iter().chain(&sinks) {
        let lines = tier.matching(|l| Record::parse(l).is_ok());
        assert!(
            !lines.is_empty(),
            "{} took no part\n{}",
            tier.name,
            tier.output()
        );
    }

    // Lineage: the senders' lines name both relays and all three sinks.
    let lineage: Vec<String> = senders
        .iter()
        .flat_map(|s| s.matching(|l| l.contains(" -> relay ")))
        .collect();
    assert_eq!(lineage.len(), 3 * PER_SENDER);
    let relays_seen: HashSet<&str> = lineage
        .iter()
        .filter_map(|l| l.split(" -> relay ").nth(1)?.split(' ').next())
        .collect();
    let sinks_seen: HashSet<&str> = lineage
        .iter()
        .filter_map(|l| l.split(" -> sink ").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(
        relays_seen,
        HashSet::from(["127.0.1.1", "127.0.1.2"]),
        "{lineage:?}"
    );
    assert_eq!(
        sinks_seen,
        HashSet::from(["127.0.2.1", "127.0.2.2", "127.0.2.3"]),
        "{lineage:?}"
    );
    assert!(
        lineage
            .iter()
            .all(|l| l.contains(" 200 in ") && l.starts_with("10.0.0.")),
        "{lineage:?}"
    );

    // Metrics: each scrape passes promtool, and the counters add up across tiers.
    let sum = |tiers: &[TierProcess], name: &str| -> u64 {
        tiers.iter().map(|t| checked_metric(t, name)).sum()
    };
    let n = (3 * PER_SENDER) as u64;
    assert_eq!(sum(&sinks, "three_tier_messages_logged_total"), n);
    assert_eq!(sum(&relays, "three_tier_messages_relayed_total"), n);
    // The senders have exited (their sent counter is summed with the others
    // in counters_add_up_across_the_three_tiers; here the 60 "Sending" lines
    // stand for it). The relays' request counters saw every message once.
    let relay_requests: u64 = relays
        .iter()
        .map(|r| {
            checked_metric(
                r,
                r#"three_tier_http_requests_total{path="message",code="200"}"#,
            )
        })
        .sum();
    assert_eq!(relay_requests, n);
    let sink_calls: u64 = relays
        .iter()
        .map(|r| checked_metric(r, "three_tier_sink_request_duration_seconds_count"))
        .sum();
    assert_eq!(sink_calls, n);

    // The loss report over the sinks' own lines: nothing lost, nothing twice.
    let report = crate::util::loss_report_of_lines(&sink_lines);
    for i in 1..=3 {
        assert!(
            report.contains(&format!(
                "sender 10.0.0.{i}: received {PER_SENDER}, duplicates 0, gaps 0\n"
            )),
            "{report}"
        );
    }
    assert!(
        report
            .ends_with("total: 3 sender(s), received 60, duplicates 0, gaps 0, damaged lines 0\n"),
        "{report}"
    );
}

#[test]
fn counters_add_up_across_the_three_tiers() {
    // 3/2/3 again, with senders that stay up: one message each, the next a
    // minute later, so every tier can be scraped once the messages arrived.
    let (sinks, relays, relay_url) = sinks_and_relays(&[]);
    let senders: Vec<TierProcess> = (1..=3)
        .map(|i| {
            let env = [
                ("RELAY_URL", relay_url.clone()),
                ("SEND_INTERVAL", "1m".into()),
                ("POD_IP", format!("10.0.0.{i}")),
            ];
            TierProcess::start("sender", &format!("sender-{i}"), &env)
        })
        .collect();
    for sender in &senders {
        sender
            .wait_line(|l| l.contains(" -> relay "))
            .expect("the first message went through");
    }
    let sum = |tiers: &[TierProcess], name: &str| -> u64 {
        tiers.iter().map(|t| checked_metric(t, name)).sum()
    };
    let sent = sum(&senders, "three_tier_messages_sent_total");
    assert_eq!(sent, 3);
    assert_eq!(sum(&relays, "three_tier_messages_relayed_total"), sent);
    assert_eq!(sum(&sinks, "three_tier_messages_logged_total"), sent);
}

#[test]
fn sender_metrics_count_every_message_and_pass_promtool() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink.url("/sink.php"))]);
    // One message now, the next a minute later: the counters are exact meanwhile.
    let env = [
        ("RELAY_URL", relay.url("/relay.php")),
        ("SEND_INTERVAL", "1m".into()),
    ];
    let sender = TierProcess::start("sender", "sender", &env);
    sender
        .wait_line(|l| l.contains(" -> relay "))
        .expect("one message");
    assert_eq!(checked_metric(&sender, "three_tier_messages_sent_total"), 1);
    assert_eq!(
        checked_metric(&sender, "three_tier_relay_request_duration_seconds_count"),
        1
    );
    for reason in ["refused", "timeout", "status", "broken"] {
        let series = format!("three_tier_upstream_failures_total{{reason=\"{reason}\"}}");
        assert_eq!(checked_metric(&sender, &series), 0);
    }
    assert_eq!(
        checked_metric(&relay, "three_tier_messages_relayed_total"),
        1
    );
    assert_eq!(checked_metric(&sink, "three_tier_messages_logged_total"), 1);
    assert_eq!(
        checked_metric(&sink, "three_tier_http_requests_in_flight"),
        0
    );
}

/// Scrapes `/metrics`, checks it with promtool, and returns the value of `series`.
fn checked_metric(tier: &TierProcess, series: &str) -> u64 {
    let answer = get(tier.addr, "/metrics").expect("scrape");
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("Content-Type")
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    promtool_check(&answer.body);
    metric_in(&answer.body, series)
        .unwrap_or_else(|| panic!("{} has no {series}:\n{}", tier.name, answer.body)) as u64
}

fn promtool_check(exposition: &str) {
    // promtool is the Debian package prometheus; .ci/run installs it.
    let (status, out) = run_with_stdin(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stderr(Stdio::inherit()),
        exposition,
    );
    assert!(
        status.success(),
        "promtool check metrics failed:\n{out}\n{exposition}"
    );
}

fn counts(items: &[String]) -> HashMap<&str, usize> {
    let mut map = HashMap::new();
    for item in items {
        *map.entry(item.as_str()).or_default() += 1;
    }
    map
}

#[test]
fn every_sender_reaches_every_relay_and_sink_as_kube_proxy_would_spread_them() {
    // kube-proxy picks a pod at random per connection; with URL lists the
    // tiers pick at random per message, so no sender is tied to a subset of
    // pods by the rhythm of its messages. Chances of a false failure: one
    // sender missing one sink in 60 messages (2/3)^60 < 3e-11, times 9 pairs;
    // a sink over twice its share (120 of 180) far less.
    const EACH: usize = 60;
    let (_sinks, _relays, relay_url) = sinks_and_relays(&[]);
    let mut senders: Vec<TierProcess> = (1..=3)
        .map(|i| {
            let env = [
                ("RELAY_URL", relay_url.clone()),
                ("SEND_INTERVAL", "20ms".into()),
                ("SEND_COUNT", EACH.to_string()),
                ("POD_IP", format!("10.0.0.{i}")),
            ];
            TierProcess::start("sender", &format!("sender-{i}"), &env)
        })
        .collect();
    let mut per_sink: HashMap<String, usize> = HashMap::new();
    for sender in &mut senders {
        assert_eq!(sender.exit_code(), 0, "{}", sender.output());
        let paths: Vec<(String, String)> = sender
            .matching(|l| l.contains(" -> relay "))
            .iter()
            .filter_map(|l| {
                let relay = l.split(" -> relay ").nth(1)?.split(' ').next()?;
                let sink = l.split(" -> sink ").nth(1)?.split(' ').next()?;
                Some((relay.to_string(), sink.to_string()))
            })
            .collect();
        assert_eq!(paths.len(), EACH, "{}", sender.output());
        let relays: HashSet<&str> = paths.iter().map(|(r, _)| r.as_str()).collect();
        let sinks: HashSet<&str> = paths.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(relays.len(), 2, "{}: relays {relays:?}", sender.name);
        assert_eq!(sinks.len(), 3, "{}: sinks {sinks:?}", sender.name);
        for (_, sink) in paths {
            *per_sink.entry(sink).or_default() += 1;
        }
    }
    let share = 3 * EACH / 3;
    assert!(
        per_sink.values().all(|n| *n <= 2 * share),
        "a sink took more than twice its share: {per_sink:?}"
    );
}
