//! Service names, looked up the way a cluster client should: once, then at
//! most every `DNS_REFRESH`, off the message path, and kept through DNS
//! outages. Each test runs in a world of its own (see [`crate::world`]): a
//! network namespace whose resolver is a pod's, with dnsmasq as the cluster
//! DNS and ClusterIP Services from kube-proxy's rules, the tiers configured
//! with the manifests' own URLs (`relay-svc/relay.php`, `sink-svc/sink.php`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::TierProcess;
use crate::world::{self, DnsFault, World};

/// The rendered base's URLs: Service names, port 80, the seed's paths.
const RELAY_URL: &str = "relay-svc/relay.php";
const SINK_URL: &str = "sink-svc/sink.php";

/// Sinks behind `sink-svc` (a ClusterIP, port 80 to the pods' 8080), with `env`.
fn sinks(world: &World, n: usize, env: &[(&str, String)]) -> Vec<TierProcess> {
    let ips: Vec<String> = (1..=n).map(|i| format!("10.244.3.{i}")).collect();
    let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
    let sinks = world.sinks(&ips, env);
    let endpoints: Vec<String> = (1..=n).map(|i| format!("10.244.3.{i}:8080")).collect();
    world.service("sink-svc", "10.96.0.20", 80, &endpoints);
    sinks
}

/// Relays behind `relay-svc`, forwarding to `sink-svc/sink.php`, with `env`.
fn relays(world: &World, n: usize, env: &[(&str, String)]) -> Vec<TierProcess> {
    let mut env = env.to_vec();
    env.push(("SINK_URL", SINK_URL.to_string()));
    let relays: Vec<TierProcess> = (1..=n)
        .map(|i| {
            world.pod(
                "relay",
                &format!("relay-{i}"),
                &format!("10.244.2.{i}"),
                &env,
            )
        })
        .collect();
    let endpoints: Vec<String> = (1..=n).map(|i| format!("10.244.2.{i}:8080")).collect();
    world.service("relay-svc", "10.96.0.30", 80, &endpoints);
    relays
}

/// One sender pod posting `count` messages to `relay-svc` every `interval`; every one answered 2xx.
fn send(world: &World, count: u32, interval: &str) {
    let env = [
        ("RELAY_URL", RELAY_URL.to_string()),
        ("SEND_COUNT", count.to_string()),
        ("SEND_INTERVAL", interval.to_string()),
    ];
    let mut sender = world.pod("sender", "sender", "10.244.1.1", &env);
    assert_eq!(sender.exit_code(), 0, "{}", sender.output());
}

/// The names of `tier`'s threads, sampled every millisecond while `during`
/// runs: every name seen, and the most threads seen at once.
fn threads_during<T>(tier: &TierProcess, during: impl FnOnce() -> T) -> (T, Vec<String>, usize) {
    let seen = Arc::new(Mutex::new((Vec::<String>::new(), 0usize)));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (seen, done, pid) = (Arc::clone(&seen), Arc::clone(&done), tier.pid);
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let names = thread_names(pid);
                let mut seen = seen.lock().unwrap();
                seen.1 = seen.1.max(names.len());
                for name in names {
                    if !seen.0.contains(&name) {
                        seen.0.push(name);
                    }
                }
                drop(seen);
                thread::sleep(Duration::from_millis(1)); // the sampling period
            }
        })
    };
    let result = during();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (names, most) = seen.lock().unwrap().clone();
    (result, names, most)
}

fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

#[test]
fn a_thousand_messages_to_service_names_start_no_thread_and_ask_the_dns_once() {
    world::inside(
        module_path!(),
        "a_thousand_messages_to_service_names_start_no_thread_and_ask_the_dns_once",
        world::V4,
        |world| {
            let _sinks = sinks(world, 1, &[]);
            let started = Instant::now();
            let relays = relays(world, 1, &[("DRAIN_DELAY", "0".into())]);
            let relay = &relays[0];
            let ((), names, most) = threads_during(relay, || {
                send(world, 1000, "1ms");
            });
            let elapsed = started.elapsed();
            let dns: Vec<&String> = names.iter().filter(|n| *n == "dns").collect();
            assert_eq!(dns.len(), 1, "one lookup thread for sink-svc: {names:?}");
            assert!(
                !names.iter().any(|n| n == "resolve"),
                "a thread per lookup: {names:?}"
            );
            // The main thread, the signal thread, the accept thread, the lookup
            // thread and the connection threads of the sender's few connections
            // at a time: nothing that grows with 1,000 messages.
            assert!(most <= 12, "{most} threads at once: {names:?}");
            let queries = world.queries("sink-svc");
            let bound = elapsed.as_secs_f64() / 5.0 + 2.0;
            assert!(
            (queries.len() as f64) <= bound,
            "{} DNS queries for sink-svc in {elapsed:?} (DNS_REFRESH=5s allows {bound:.1}), the first: {:?}",
            queries.len(),
            &queries[..queries.len().min(4)]
        );
            assert!(
                !queries.is_empty(),
                "sink-svc was never looked up: the test tests nothing"
            );
            let relaying = |l: &str| crate::util::record(l, crate::util::Verb::Relaying).is_some();
            // The relay is still running: the test's reader may lag behind its lines.
            let _ = relay.wait_lines(1000, relaying);
            assert_eq!(relay.matching(relaying).len(), 1000, "{}", relay.output());
        },
    );
}

#[test]
fn names_are_looked_up_again_every_dns_refresh_while_messages_flow() {
    world::inside(
        module_path!(),
        "names_are_looked_up_again_every_dns_refresh_while_messages_flow",
        world::V4,
        |world| {
            let _sinks = sinks(world, 1, &[]);
            let started = Instant::now();
            let _relays = relays(world, 1, &[("DNS_REFRESH", "1s".into())]);
            send(world, 800, "5ms");
            let elapsed = started.elapsed().as_secs_f64();
            // One lookup asks for A and AAAA (getaddrinfo): count lookups by their A query.
            let queries = world.queries("sink-svc");
            let lookups = queries.iter().filter(|(kind, _)| kind == "A").count() as f64;
            let aaaa = queries.iter().filter(|(kind, _)| kind == "AAAA").count() as f64;
            assert!(
                lookups <= elapsed + 2.0 && lookups >= elapsed - 2.0,
                "{lookups} lookups of sink-svc in {elapsed:.1} s at DNS_REFRESH=1s"
            );
            assert_eq!(lookups, aaaa, "each lookup an A and an AAAA query");
        },
    );
}

/// What goes wrong with the cluster DNS in [`under_a_dns_fault`].
#[derive(Debug, Clone, Copy)]
enum Outage {
    /// dnsmasq stopped with SIGSTOP, then continued.
    Stopped,
    /// dnsmasq killed, then started again.
    Killed,
    /// The front answers SERVFAIL.
    ServFail,
    /// The front answers REFUSED.
    Refused,
    /// The front answers 3 s late.
    Late,
}

/// 3 senders, 2 relays and 3 sinks behind Services, at about 120 messages a
/// second for 12 s, with `DNS_REFRESH=1s`; after 200 messages the DNS fails
/// as `outage` says for 5 s. Every message must be answered 2xx at the first
/// attempt and logged once, and each relay must count its failed lookups
/// and log the failure once and the recovery once.
fn under_a_dns_fault(world: &World, outage: Outage) {
    let logs = world.dir().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let refresh = ("DNS_REFRESH", "1s".to_string());
    let _sinks = sinks(world, 3, &[("LOG_DIR", logs.display().to_string())]);
    let relays = relays(world, 2, std::slice::from_ref(&refresh));
    let mut senders: Vec<TierProcess> = (1..=3)
        .map(|i| {
            let env = [
                ("RELAY_URL", RELAY_URL.to_string()),
                ("SEND_INTERVAL", "25ms".into()),
                ("SEND_COUNT", "480".into()),
                refresh.clone(),
            ];
            world.pod(
                "sender",
                &format!("sender-{i}"),
                &format!("10.244.1.{i}"),
                &env,
            )
        })
        .collect();
    for relay in &relays {
        relay
            .wait_lines(100, |l| {
                crate::util::record(l, crate::util::Verb::Relaying).is_some()
            })
            .expect("load before the fault");
    }
    let fault = Duration::from_secs(5);
    match outage {
        Outage::Stopped => {
            crate::util::signal_stop(world.dns_pid(), true);
            thread::sleep(fault); // the outage's length
            crate::util::signal_stop(world.dns_pid(), false);
        }
        Outage::Killed => {
            crate::util::signal_kill(world.dns_pid());
            thread::sleep(fault);
            world.start_dns();
        }
        Outage::ServFail | Outage::Refused | Outage::Late => {
            world.front().set(match outage {
                Outage::ServFail => DnsFault::ServFail,
                Outage::Refused => DnsFault::Refused,
                _ => DnsFault::Late(Duration::from_secs(3)),
            });
            thread::sleep(fault);
            world.front().set(DnsFault::Pass);
        }
    }
    for sender in &mut senders {
        assert_eq!(sender.exit_code(), 0, "{}", sender.output());
        let retried =
            sender.matching(|l| l.starts_with("retry ") || l.starts_with("message failed"));
        assert!(
            retried.is_empty(),
            "{outage:?}: a non-2xx answer reached {}: {retried:?}",
            sender.name
        );
        let failing = sender.matching(|l| l.starts_with("cannot look up ")).len();
        let recovered = sender.matching(|l| l.contains(") resolves again: ")).len();
        assert!(
            failing <= 1 && recovered == failing,
            "{outage:?}: {}",
            sender.output()
        );
    }
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let (code, report) = crate::util::loss_report(&files);
    assert_eq!(code, 0, "{outage:?}: {report}");
    assert!(
        report.contains("total: 3 sender(s), received 1440, duplicates 0, gaps 0, damaged lines 0"),
        "{outage:?}: {report}"
    );
    for relay in &relays {
        let metrics = crate::util::get(relay.addr, "/metrics").unwrap().body;
        let failures =
            crate::util::metric_in(&metrics, "three_tier_dns_failures_total").unwrap_or(0.0);
        assert!(
            failures >= 1.0,
            "{outage:?}: {} counted no failed lookup:\n{metrics}",
            relay.name
        );
        let failing = relay.matching(|l| l.starts_with("cannot look up sink-svc (SINK_URL): "));
        let recovered = relay.matching(|l| l.starts_with("sink-svc (SINK_URL) resolves again: "));
        assert!(
            failing.len() == 1 && recovered.len() == 1,
            "{outage:?}: {} must log the failure once and the recovery once:\n{}",
            relay.name,
            relay.output()
        );
    }
}

const FRONTED: world::Options = world::Options {
    family: world::Family::V4,
    front: true,
};

#[test]
fn a_stopped_dns_server_loses_nothing() {
    world::inside(
        module_path!(),
        "a_stopped_dns_server_loses_nothing",
        world::V4,
        |world| under_a_dns_fault(world, Outage::Stopped),
    );
}

#[test]
fn a_killed_and_restarted_dns_server_loses_nothing() {
    world::inside(
        module_path!(),
        "a_killed_and_restarted_dns_server_loses_nothing",
        world::V4,
        |world| under_a_dns_fault(world, Outage::Killed),
    );
}

#[test]
fn a_dns_server_answering_servfail_loses_nothing() {
    world::inside(
        module_path!(),
        "a_dns_server_answering_servfail_loses_nothing",
        FRONTED,
        |world| under_a_dns_fault(world, Outage::ServFail),
    );
}

#[test]
fn a_dns_server_answering_refused_loses_nothing() {
    world::inside(
        module_path!(),
        "a_dns_server_answering_refused_loses_nothing",
        FRONTED,
        |world| under_a_dns_fault(world, Outage::Refused),
    );
}

#[test]
fn a_dns_server_answering_three_seconds_late_loses_nothing() {
    world::inside(
        module_path!(),
        "a_dns_server_answering_three_seconds_late_loses_nothing",
        FRONTED,
        |world| under_a_dns_fault(world, Outage::Late),
    );
}
