//! Bounded connection reuse still spreads messages over the pods behind a
//! Service, the way Kubernetes spreads them: by connection, at random.
//!
//! tests/spread.sh builds a ClusterIP for 3 sinks with kube-proxy's iptables
//! rules (scripts/lib/clusterip.sh) in a network namespace of its own, and one
//! relay posts to it, fed by a sender at concurrency 1 and a steady rate.
//! Random DNAT picks a sink per new connection, so what matters is how many
//! connections the relay opens: 2,000 messages at UPSTREAM_MAX_REQUESTS=10 are
//! 200 connections, each carrying 10 messages to one sink picked with
//! probability 1/3. The check "every sink reached, none above 50 %" then
//! fails by chance with probability under 1.3e-6: a given sink gets 101 or
//! more of 200 connections with probability 4.1e-7 (binomial tail), times 3
//! sinks; a sink gets none with probability 3 x (2/3)^200, about 2e-35.

use std::process::Command;

use crate::util::binary;

/// Messages per sink after 2,000 messages through a relay run with `relay_env`.
fn spread(relay_env: &[&str]) -> Vec<u64> {
    let sink = binary("sink");
    let bins = std::path::Path::new(&sink).parent().expect("binary folder");
    let out = Command::new("unshare")
        .args(["-n", "bash", "tests/spread.sh"])
        .arg(bins)
        .args(["2000", "2ms"])
        .args(relay_env)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("unshare (util-linux) and bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "spread.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("sender exit 0\n"),
        "not every message was answered 2xx:\n{stdout}\n{stderr}"
    );
    let counts: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("sink ")?.split(' ').nth(1)?.parse().ok())
        .collect();
    assert_eq!(counts.len(), 3, "{stdout}");
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
    let bounded = spread(&[]);
    assert!(
        spreads(&bounded),
        "default reuse did not spread: {bounded:?}"
    );
    // The same run with a connection kept for ever: one connection, one sink.
    let unbounded = spread(&["UPSTREAM_MAX_REQUESTS=1000000", "UPSTREAM_MAX_AGE=600s"]);
    assert!(
        !spreads(&unbounded),
        "unbounded reuse spread: {unbounded:?}"
    );
}
