//! Messages spread over the pods behind a Service the way Kubernetes spreads
//! them, with the manifests' own URL (`SINK_URL=sink-svc/sink.php`) looked up
//! through the cluster DNS of a world of the test's own ([`crate::world`]).
//!
//! A ClusterIP: kube-proxy's iptables rules pick a sink per new connection,
//! at random, so what matters is how many connections the relay opens: 2,000
//! messages at UPSTREAM_MAX_REQUESTS=10 are 200 connections, each carrying
//! 10 messages to one sink picked with probability 1/3. The check "every sink
//! reached, none above 50 %" then fails by chance with probability under
//! 1.3e-6: a given sink gets 101 or more of 200 connections with probability
//! 4.1e-7 (binomial tail), times 3 sinks; a sink gets none with probability
//! 3 x (2/3)^200, about 2e-35.
//!
//! A headless Service: the DNS answers every pod's address, the relay
//! rotates over them, and follows pods as they come and go within
//! `DNS_REFRESH`.

use std::thread;
use std::time::{Duration, Instant};

use crate::util::TierProcess;
use crate::world::{self, World};

fn logged(sink: &TierProcess) -> u64 {
    sink.matching(|l| l.starts_with("From ")).len() as u64
}

/// Messages each sink logged during 2,000 messages through a relay (at
/// `relay_ip`, posting to `sink-svc/sink.php` with `relay_env`) fed by a
/// sender at concurrency 1 and a steady rate.
fn spread(
    world: &World,
    sinks: &[TierProcess],
    relay_ip: &str,
    sender_ip: &str,
    relay_env: &[(&str, String)],
) -> Vec<u64> {
    let before: Vec<u64> = sinks.iter().map(logged).collect();
    let mut env = relay_env.to_vec();
    env.push(("SINK_URL", "sink-svc/sink.php".into()));
    env.push(("DRAIN_DELAY", "0".into()));
    let relay = world.pod("relay", &format!("relay {relay_ip}"), relay_ip, &env);
    let mut sender = world.pod(
        "sender",
        "sender",
        sender_ip,
        &[
            ("RELAY_URL", format!("{relay_ip}:8080/relay.php")),
            ("SEND_COUNT", "2000".into()),
            ("SEND_INTERVAL", "2ms".into()),
        ],
    );
    assert_eq!(
        sender.exit_code(),
        0,
        "not every message was answered 2xx:\n{}\n{}",
        sender.output(),
        relay.output()
    );
    let counts: Vec<u64> = sinks
        .iter()
        .zip(before)
        .map(|(s, b)| logged(s) - b)
        .collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        2000,
        "every message logged once: {counts:?}"
    );
    counts
}

/// Every sink reached, and none with more than half of the messages.
fn spreads(counts: &[u64]) -> bool {
    counts.iter().all(|n| *n > 0 && *n <= 1000)
}

#[test]
fn the_default_reuse_spreads_over_every_sink_and_unbounded_reuse_does_not() {
    world::inside(
        module_path!(),
        "the_default_reuse_spreads_over_every_sink_and_unbounded_reuse_does_not",
        world::V4,
        |world| {
            let sinks = world.sinks(&["10.244.3.1", "10.244.3.2", "10.244.3.3"], &[]);
            let endpoints: Vec<String> = (1..=3).map(|i| format!("10.244.3.{i}:8080")).collect();
            world.service("sink-svc", "10.96.0.20", 80, &endpoints);
            let bounded = spread(world, &sinks, "10.244.2.1", "10.244.1.1", &[]);
            assert!(
                spreads(&bounded),
                "default reuse did not spread: {bounded:?}"
            );
            // The same run with a connection kept for ever: one connection, one sink.
            let unbounded_env = [
                ("UPSTREAM_MAX_REQUESTS", "1000000".to_string()),
                ("UPSTREAM_MAX_AGE", "600s".to_string()),
            ];
            let unbounded = spread(world, &sinks, "10.244.2.2", "10.244.1.2", &unbounded_env);
            assert!(
                !spreads(&unbounded),
                "unbounded reuse spread: {unbounded:?}"
            );
        },
    );
}

#[test]
fn a_headless_service_spreads_over_its_pods_and_follows_a_replaced_one() {
    world::inside(
        module_path!(),
        "a_headless_service_spreads_over_its_pods_and_follows_a_replaced_one",
        world::V4,
        |world| {
            let refresh = Duration::from_secs(2);
            let mut sinks = world.sinks(&["10.244.3.1", "10.244.3.2", "10.244.3.3"], &[]);
            world.records("sink-headless", &["10.244.3.1", "10.244.3.2", "10.244.3.3"]);
            let relay_env = [
                ("SINK_URL", "sink-headless:8080/sink.php".to_string()),
                ("DNS_REFRESH", "2s".into()),
            ];
            let relay = world.pod("relay", "relay", "10.244.2.1", &relay_env);
            let mut sender = world.pod(
                "sender",
                "sender",
                "10.244.1.1",
                &[
                    ("RELAY_URL", "10.244.2.1:8080/relay.php".to_string()),
                    ("SEND_INTERVAL", "5ms".into()),
                ],
            );
            for sink in &sinks {
                sink.wait_lines(20, |l| l.starts_with("From "))
                    .unwrap_or_else(|| panic!("{} got no share:\n{}", sink.name, relay.output()));
            }
            // A rollout replaces the third sink: the new pod's address replaces the old one's in DNS.
            let new = world.pod("sink", "sink 10.244.3.4", "10.244.3.4", &[]);
            let replaced = Instant::now();
            world.records("sink-headless", &["10.244.3.1", "10.244.3.2", "10.244.3.4"]);
            new.wait_line(|l| l.starts_with("From "))
                .expect("the new sink is used");
            let took = replaced.elapsed();
            assert!(
                took <= refresh + Duration::from_secs(1),
                "the new sink was first used after {took:?}"
            );
            let settled = refresh + Duration::from_secs(1);
            thread::sleep(settled.saturating_sub(replaced.elapsed())); // until the refresh must have happened
            let old = logged(&sinks[2]);
            thread::sleep(Duration::from_secs(2)); // messages keep flowing meanwhile
            assert_eq!(
                logged(&sinks[2]),
                old,
                "the old sink is still used, though no longer in DNS"
            );
            assert!(logged(&new) > 20, "the new sink takes its share");
            sender.sigterm();
            assert_eq!(sender.exit_code(), 0, "{}", sender.output());
            let failed =
                sender.matching(|l| l.starts_with("retry ") || l.starts_with("message failed"));
            assert!(failed.is_empty(), "{failed:?}");
            sinks.push(new);
        },
    );
}
