//! Lookups off the message path: refreshes, failures that keep the last answer, the first lookup waited for; and the watchers other modules' tests use.

use super::*;
use std::collections::VecDeque;
use std::sync::mpsc;

/// A logger (stdout, text) and metrics for a relay, as the tiers pass them.
pub(crate) fn watchers() -> (Arc<Logger>, Arc<Metrics>) {
    let logger = Logger::new(
        crate::role::Role::Relay,
        None,
        [127, 0, 0, 1].into(),
        crate::config::LogFormat::Text,
        false,
    )
    .unwrap();
    (
        Arc::new(logger),
        Arc::new(Metrics::new(crate::role::Role::Relay)),
    )
}

fn lookups(refresh: Duration, timeout: Duration) -> Lookups {
    let (logger, metrics) = watchers();
    Lookups {
        variable: "SINK_URL",
        refresh,
        timeout,
        logger,
        metrics,
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A resolver that answers from a script, one entry per lookup, each
/// released by the test through `release` (so a lookup can be held).
struct Script {
    answers: Mutex<VecDeque<io::Result<Vec<SocketAddr>>>>,
    release: Mutex<mpsc::Receiver<()>>,
}

fn scripted(answers: Vec<io::Result<Vec<SocketAddr>>>) -> (Arc<LookupFn>, mpsc::Sender<()>) {
    let (release, released) = mpsc::channel();
    let script = Script {
        answers: Mutex::new(answers.into()),
        release: Mutex::new(released),
    };
    let look_up = move |_: &str, _: u16| {
        let _ = script.release.lock().unwrap().recv();
        let next = script.answers.lock().unwrap().pop_front();
        next.unwrap_or_else(|| Err(io::Error::other("script ended")))
    };
    (Arc::new(look_up), release)
}

fn name(host: &Host) -> &Name {
    match host {
        Host::Name(resolved) => &resolved.name,
        Host::Literal(_) => panic!("not a name"),
    }
}

fn failures(lookups: &Lookups) -> u64 {
    let text = lookups
        .metrics
        .render(&crate::observe::metrics::Gauges::default());
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("three_tier_dns_failures_total "));
    line.and_then(|n| n.parse().ok())
        .expect("the failure counter on /metrics")
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

#[test]
fn resolver_order_does_not_matter() {
    let (a, b) = (addr("10.89.1.5:8080"), addr("10.89.1.6:8080"));
    // A resolver that rotates its answers, and one that repeats them.
    assert_eq!(in_fixed_order(vec![b, a]), vec![a, b]);
    assert_eq!(in_fixed_order(vec![a, b]), vec![a, b]);
    assert_eq!(in_fixed_order(vec![b, a, b]), vec![a, b]);
}

#[test]
fn names_resolve_through_the_system_resolver() {
    // localhost comes from /etc/hosts: no query leaves the machine.
    let l = lookups(Duration::from_secs(5), Duration::from_secs(5));
    let host = Host::new("localhost", 9, &l);
    let addrs = host.addrs(soon()).unwrap();
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
}

#[test]
fn an_ip_literal_is_its_own_answer_without_a_lookup() {
    let l = lookups(Duration::from_secs(5), Duration::from_secs(5));
    let host = Host::new("fd00::1", 8080, &l);
    assert!(matches!(host, Host::Literal(_)));
    assert_eq!(
        &*host.addrs(Instant::now()).unwrap(),
        &[addr("[fd00::1]:8080")]
    );
}

#[test]
fn only_the_first_lookup_is_waited_for_and_only_until_the_deadline() {
    let l = lookups(Duration::from_secs(5), Duration::from_secs(5));
    let (look_up, release) = scripted(vec![Ok(vec![addr("10.0.0.2:80"), addr("10.0.0.1:80")])]);
    let host = Host::with("sink-svc", 80, &l, look_up);
    let early = Instant::now() + Duration::from_millis(50);
    assert_eq!(host.addrs(early), Err(Unresolved::TimedOut));
    release.send(()).unwrap();
    let addrs = host.addrs(soon()).unwrap();
    assert_eq!(&*addrs, &[addr("10.0.0.1:80"), addr("10.0.0.2:80")]);
}

#[test]
fn a_failed_refresh_keeps_the_last_answer_counts_and_recovers() {
    let l = lookups(Duration::from_millis(20), Duration::from_secs(5));
    let (a, b) = (addr("10.0.0.1:80"), addr("10.0.0.9:80"));
    let (look_up, release) = scripted(vec![
        Ok(vec![a]),
        Err(io::Error::other("SERVFAIL")),
        Err(io::Error::other("SERVFAIL")),
        Ok(vec![b]),
    ]);
    let host = Host::with("sink-svc", 80, &l, look_up);
    for _ in 0..4 {
        release.send(()).unwrap();
    }
    assert_eq!(&*host.addrs(soon()).unwrap(), &[a]);
    for (n, want, failed) in [(2, a, 1), (3, a, 2), (4, b, 2)] {
        // Pacing: the next lookup is due only once DNS_REFRESH has passed.
        thread::sleep(Duration::from_millis(25));
        assert!(host.addrs(soon()).is_ok());
        name(&host).wait_finished(n);
        assert_eq!(&*host.addrs(soon()).unwrap(), &[want], "after lookup {n}");
        assert_eq!(failures(&l), failed, "after lookup {n}");
    }
    assert!(!name(&host).lock().failing);
}

#[test]
fn a_refresh_past_the_timeout_counts_once_and_its_late_answer_is_used() {
    let l = lookups(Duration::from_millis(20), Duration::from_millis(50));
    let (a, b) = (addr("10.0.0.1:80"), addr("10.0.0.2:80"));
    let (look_up, release) = scripted(vec![Ok(vec![a]), Ok(vec![b])]);
    let host = Host::with("sink-svc", 80, &l, look_up);
    release.send(()).unwrap();
    assert_eq!(&*host.addrs(soon()).unwrap(), &[a]);
    thread::sleep(Duration::from_millis(25));
    host.addrs(soon()).unwrap(); // asks for the refresh, which the script holds
    thread::sleep(Duration::from_millis(60));
    for _ in 0..3 {
        assert_eq!(
            &*host.addrs(soon()).unwrap(),
            &[a],
            "the old answer meanwhile"
        );
    }
    assert_eq!(failures(&l), 1);
    assert!(name(&host).lock().failing);
    release.send(()).unwrap();
    name(&host).wait_finished(2);
    assert_eq!(&*host.addrs(soon()).unwrap(), &[b]);
    assert_eq!(failures(&l), 1, "counted once, when it ran late");
}

#[test]
fn a_name_every_address_of_which_refused_is_looked_up_again_within_a_second() {
    let l = lookups(Duration::from_secs(3600), Duration::from_secs(5));
    let (a, b) = (addr("10.0.0.1:80"), addr("10.0.0.2:80"));
    let (look_up, release) = scripted(vec![Ok(vec![a]), Ok(vec![b])]);
    let host = Host::with("sink-svc", 80, &l, look_up);
    release.send(()).unwrap();
    release.send(()).unwrap();
    assert_eq!(&*host.addrs(soon()).unwrap(), &[a]);
    let first = Instant::now();
    while name(&host).lock().finished < 2 {
        assert!(first.elapsed() < Duration::from_secs(3), "no second lookup");
        host.all_refused();
        thread::sleep(Duration::from_millis(20)); // pacing of the refusals
    }
    assert!(first.elapsed() >= RETRY_GAP - Duration::from_millis(100));
    assert_eq!(&*host.addrs(soon()).unwrap(), &[b]);
}

#[test]
fn dropping_a_host_ends_its_lookup_thread() {
    let l = lookups(Duration::from_secs(5), Duration::from_secs(5));
    let (look_up, release) = scripted(vec![Ok(vec![addr("10.0.0.1:80")])]);
    let host = Host::with("sink-svc", 80, &l, look_up);
    release.send(()).unwrap();
    host.addrs(soon()).unwrap();
    let weak = Arc::downgrade(&match &host {
        Host::Name(resolved) => Arc::clone(&resolved.name),
        Host::Literal(_) => unreachable!(),
    });
    drop(host);
    let dropped = Instant::now();
    while weak.upgrade().is_some() {
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "the thread kept the name"
        );
        thread::yield_now();
    }
}
