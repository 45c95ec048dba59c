//! SIGTERM under steady load: drain, finish, exit 0, lose nothing answered 2xx.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{get, heavy_load, message_of, post, text_of, TierProcess};

const DRAIN: Duration = Duration::from_millis(500);
const SHUTDOWN: Duration = Duration::from_secs(5);

/// Posts numbered messages from `workers` threads until the target stops answering
/// (at most `limit` each); returns the messages answered 2xx.
fn load(
    addr: SocketAddr,
    workers: usize,
    limit: usize,
    started: Arc<AtomicUsize>,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let started = Arc::clone(&started);
                thread::spawn(move || {
                    let mut delivered = Vec::new();
                    for n in 0..limit {
                        let text = format!("load {w}-{n}");
                        match post(addr, "/relay.php", &text) {
                            Ok(a) if (200..300).contains(&a.status) => {
                                delivered.push(text);
                                started.fetch_add(1, Ordering::SeqCst);
                            }
                            Ok(_) => {}
                            Err(_) => break, // refused: the listener is closed
                        }
                    }
                    delivered
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

fn env() -> Vec<(&'static str, String)> {
    vec![
        ("DRAIN_DELAY", format!("{}ms", DRAIN.as_millis())),
        ("SHUTDOWN_TIMEOUT", format!("{}s", SHUTDOWN.as_secs())),
    ]
}

#[test]
fn relay_drains_then_exits_0_and_every_2xx_reached_the_sink() {
    let _alone = heavy_load();
    let sink = TierProcess::start("sink", "sink", &[]);
    let mut relay_env = env();
    relay_env.push(("SINK_URL", sink.url("/sink.php")));
    let mut relay = TierProcess::start("relay", "relay", &relay_env);

    let answered = Arc::new(AtomicUsize::new(0));
    let traffic = load(relay.addr, 4, 5_000, Arc::clone(&answered));
    relay
        .wait_lines(20, |l| {
            crate::util::record(l, crate::util::Verb::Relaying).is_some()
        })
        .expect("load is flowing");

    // While draining, /readyz says 503 and messages are still answered.
    let saw_not_ready = Arc::new(AtomicBool::new(false));
    let probe = {
        let (addr, flag) = (relay.addr, Arc::clone(&saw_not_ready));
        thread::spawn(move || {
            for _ in 0..200 {
                match get(addr, "/readyz") {
                    Ok(a) if a.status == 503 => {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(_) => thread::yield_now(),
                    Err(_) => return,
                }
            }
        })
    };
    let at_term = answered.load(Ordering::SeqCst);
    let signalled = Instant::now();
    relay.sigterm();
    let status = relay.wait_exit(DRAIN + SHUTDOWN).unwrap_or_else(|| {
        panic!(
            "no exit within DRAIN_DELAY + SHUTDOWN_TIMEOUT\n{}",
            relay.output()
        )
    });
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{}", relay.output());
    assert!(took >= DRAIN, "stopped before the drain delay: {took:?}");

    let delivered = traffic.join().unwrap();
    probe.join().unwrap();
    assert!(
        saw_not_ready.load(Ordering::SeqCst),
        "/readyz never said 503 while draining"
    );
    assert!(
        delivered.len() > at_term,
        "messages were still answered while draining"
    );

    // The sink, still running, logged each before its answer; the test's
    // reader may lag behind (a message missing then is reported as lost).
    let _ = sink.wait_lines(delivered.len(), |l| l.starts_with("From "));
    let in_sink: HashSet<String> = sink
        .matching(|l| l.starts_with("From "))
        .iter()
        .map(|l| message_of(l).to_string())
        .collect();
    let lost: Vec<&String> = delivered.iter().filter(|m| !in_sink.contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "answered 2xx but not in the sink log: {lost:?}"
    );
}

#[test]
fn sink_stops_cleanly_under_load() {
    let _alone = heavy_load();
    let mut sink = TierProcess::start("sink", "sink", &env());
    let answered = Arc::new(AtomicUsize::new(0));
    let traffic = load(sink.addr, 4, 5_000, Arc::clone(&answered));
    sink.wait_lines(20, |l| l.starts_with("From "))
        .expect("load is flowing");
    sink.sigterm();
    let status = sink
        .wait_exit(DRAIN + SHUTDOWN)
        .expect("exit within DRAIN_DELAY + SHUTDOWN_TIMEOUT");
    assert_eq!(status.code(), Some(0), "{}", sink.output());
    let delivered = traffic.join().unwrap();
    let logged: HashSet<String> = sink
        .matching(|l| l.starts_with("From "))
        .iter()
        .map(|l| message_of(l).to_string())
        .collect();
    assert!(
        delivered.iter().all(|m| logged.contains(m)),
        "a 2xx message is missing from the log"
    );
}

#[test]
fn sender_finishes_the_send_in_flight_and_exits_0() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let mut sender = TierProcess::start(
        "sender",
        "sender",
        &[
            ("RELAY_URL", sink.url("/sink.php")),
            ("SEND_INTERVAL", "1m".into()),
        ],
    );
    sender
        .wait_line(|l| text_of(l) == "Logged message from 127.0.0.1")
        .expect("first message");
    let signalled = Instant::now();
    sender.sigterm();
    assert_eq!(sender.exit_code(), 0, "{}", sender.output());
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "did not wait out SEND_INTERVAL"
    );
}

#[test]
fn invalid_configuration_exits_2_naming_the_variable() {
    let mut sink = TierProcess::spawn("sink", "sink", &[("CLIENT_TIMEOUT", "soon".into())]);
    assert_eq!(sink.exit_code(), 2);
    let line = sink
        .wait_line(|l| l.starts_with("stderr: "))
        .expect("an error line");
    assert_eq!(
        line,
        r#"stderr: sink: error: config: CLIENT_TIMEOUT="soon" is invalid: expected a duration such as 250ms, 5s or 1m, or a whole number of seconds greater than zero"#
    );
    let mut relay = TierProcess::spawn("relay", "relay", &[]);
    assert_eq!(relay.exit_code(), 2);
    relay
        .wait_line(|l| l.starts_with("stderr: relay: error: config: SINK_URL is not set: expected"))
        .expect("names SINK_URL");
    assert_eq!(
        relay.lines().len(),
        1,
        "one line, nothing else: {:?}",
        relay.lines()
    );
}
