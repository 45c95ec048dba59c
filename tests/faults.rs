//! Faults on demand (`FAULTS=on`): per message (`X-Fault`), per replica
//! (`POST /fault`), the exemptions, faults off changing nothing, and a 3/2/1
//! run with `SEND_FAULT` and one slow sink that loses nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::util::{
    exchange, get, loss_report, metric_in, post, sinks_and_relays_with, temp_dir, Answer,
    TierProcess, PATIENCE,
};

/// POSTs a message to `path` with extra header lines (`Name: value\r\n` each).
fn post_with(addr: SocketAddr, path: &str, headers: &str, body: &str) -> std::io::Result<Answer> {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{headers}Connection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(addr, raw.as_bytes())
}

/// Sends `method` to `path` (no body) and reads the answer.
fn call(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, raw.as_bytes()).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn faults_on() -> Vec<(&'static str, String)> {
    vec![("FAULTS", "on".into()), ("DRAIN_DELAY", "0s".into())]
}

fn relay_to(sink: &TierProcess, faults: &str) -> TierProcess {
    let env = [
        ("FAULTS", faults.to_string()),
        ("SINK_URL", sink.url("/sink.php")),
        ("SINK_TIMEOUT", "1s".into()),
        ("DRAIN_DELAY", "0s".into()),
    ];
    TierProcess::start("relay", "relay", &env)
}

/// The sink's `From` records for request id `id`.
fn records_of(sink: &TierProcess, id: &str) -> usize {
    sink.matching(|l| l.contains("From ") && l.ends_with(&format!("request_id={id}")))
        .len()
}

#[test]
fn each_message_fault_is_applied_by_the_tier_it_names_and_not_recorded() {
    let sink = TierProcess::start("sink", "sink", &faults_on());
    let relay = relay_to(&sink, "on");

    let refused = post_with(
        relay.addr,
        "/relay.php",
        "X-Fault: sink=503\r\nX-Request-Id: f-1\r\n",
        "one",
    )
    .unwrap();
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (503, "fault injected: sink=503")
    );
    assert_eq!(
        refused.header("X-Fault-Met").as_deref(),
        Some("sink=503"),
        "{}",
        refused.head
    );
    assert!(
        refused.header("X-Sink-Ip").is_some(),
        "the faulting sink names itself"
    );
    assert!(sink
        .wait_line(
            |l| l.contains("fault injected (X-Fault): sink=503") && l.ends_with("request_id=f-1")
        )
        .is_some());
    assert_eq!(
        records_of(&sink, "f-1"),
        0,
        "a refused message is not recorded"
    );

    let own = post_with(
        relay.addr,
        "/relay.php",
        "X-Fault: relay=504\r\nX-Request-Id: f-2\r\n",
        "two",
    )
    .unwrap();
    assert_eq!(
        (own.status, own.header("X-Fault-Met").as_deref()),
        (504, Some("relay=504"))
    );
    assert!(own.header("X-Relay-Ip").is_some() && own.header("X-Sink-Ip").is_none());

    let closed = post_with(
        relay.addr,
        "/relay.php",
        "X-Fault: sink=close\r\nX-Request-Id: f-3\r\n",
        "three",
    )
    .unwrap();
    assert_eq!(
        closed.status, 502,
        "the sink closed unanswered: {}",
        closed.body
    );
    assert!(closed.header("X-Sink-Failed").is_some());

    let started = Instant::now();
    let slow = post_with(
        relay.addr,
        "/relay.php",
        "X-Fault: sink-delay=300ms, relay-delay=200ms\r\nX-Request-Id: f-4\r\n",
        "four",
    )
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.status, 200, "{}", slow.body);
    let met: Vec<&str> = slow
        .head
        .lines()
        .filter_map(|l| l.strip_prefix("X-Fault-Met: "))
        .collect();
    assert_eq!(
        met,
        ["sink-delay=300ms", "relay-delay=200ms"],
        "{}",
        slow.head
    );
    // The sink's record line may reach the test's reader after the reply.
    sink.wait_line(|l| l.contains("From ") && l.ends_with("request_id=f-4"));
    assert_eq!(
        records_of(&sink, "f-4"),
        1,
        "a delayed message is delivered, once"
    );

    let bad = post_with(
        relay.addr,
        "/relay.php",
        "X-Fault: sink=200\r\nX-Request-Id: f-5\r\n",
        "five",
    )
    .unwrap();
    assert_eq!(bad.status, 200, "an invalid X-Fault is ignored");

    let metrics = get(sink.addr, "/metrics").unwrap().body;
    for (kind, n) in [
        ("status", 1.0),
        ("close", 1.0),
        ("delay", 1.0),
        ("unready", 0.0),
    ] {
        let series = format!("three_tier_faults_injected_total{{tier=\"sink\",kind=\"{kind}\"}}");
        assert_eq!(metric_in(&metrics, &series), Some(n), "{series}");
    }
    let metrics = get(relay.addr, "/metrics").unwrap().body;
    let series = "three_tier_faults_injected_total{tier=\"relay\",kind=\"status\"}";
    assert_eq!(metric_in(&metrics, series), Some(1.0));
}

#[test]
fn a_standing_fault_holds_until_cleared_or_over_and_spares_the_probes() {
    let sink = TierProcess::start("sink", "sink", &faults_on());
    let set = call(sink.addr, "POST", "/fault?status=503&for=60s");
    assert_eq!(
        (set.status, set.body.as_str()),
        (200, "fault set: status=503 for 60s more")
    );
    assert!(call(sink.addr, "GET", "/fault")
        .body
        .starts_with("fault: status=503 for "));
    assert_eq!(post(sink.addr, "/sink.php", "refused").unwrap().status, 503);
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            get(sink.addr, probe).unwrap().status,
            200,
            "{probe} is exempt"
        );
    }
    assert!(sink
        .wait_line(|l| l.contains("fault set: status=503"))
        .is_some());

    call(sink.addr, "POST", "/fault?unready");
    let ready = get(sink.addr, "/readyz").unwrap();
    assert_eq!(
        (ready.status, ready.body.as_str()),
        (503, "fault: unready (DELETE /fault clears it)")
    );
    assert_eq!(
        post(sink.addr, "/sink.php", "ready or not").unwrap().status,
        200,
        "unready alone spares messages"
    );

    call(sink.addr, "POST", "/fault?refuse");
    assert!(
        post(sink.addr, "/sink.php", "refused").is_err(),
        "refuse closes the connection unanswered"
    );

    call(sink.addr, "POST", "/fault?delay=300ms");
    let started = Instant::now();
    assert_eq!(post(sink.addr, "/sink.php", "slow").unwrap().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let cleared = call(sink.addr, "DELETE", "/fault");
    assert_eq!(
        (cleared.status, cleared.body.as_str()),
        (200, "fault cleared")
    );
    assert_eq!(call(sink.addr, "GET", "/fault").body, "no fault");
    assert_eq!(get(sink.addr, "/readyz").unwrap().status, 200);

    let bad = call(sink.addr, "POST", "/fault?status=700");
    assert_eq!(bad.status, 400);
    assert!(
        bad.body.contains("\"700\" is not a status from 400 to 599"),
        "{}",
        bad.body
    );

    // A fault with a `for` ends by itself.
    call(sink.addr, "POST", "/fault?status=503&for=200ms");
    let deadline = Instant::now() + PATIENCE;
    while post(sink.addr, "/sink.php", "after").unwrap().status != 200 {
        assert!(Instant::now() < deadline, "the fault did not end");
    }
    let metrics = get(sink.addr, "/metrics").unwrap().body;
    let unready = "three_tier_faults_injected_total{tier=\"sink\",kind=\"unready\"}";
    assert_eq!(metric_in(&metrics, unready), Some(1.0));
}

#[test]
fn with_faults_off_the_header_and_the_endpoint_change_nothing() {
    let sink = TierProcess::start("sink", "sink", &[("DRAIN_DELAY", "0s".into())]);
    let answer = post_with(sink.addr, "/sink.php", "X-Fault: sink=503\r\n", "hello").unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.body.starts_with("Logged message from "));
    assert!(answer.header("X-Fault-Met").is_none());
    let posted = post(sink.addr, "/fault?status=503", "a message").unwrap();
    assert_eq!(
        posted.status, 200,
        "POST /fault is a message like any other"
    );
    assert!(sink
        .wait_line(|l| l.contains("From ") && l.contains(": a message"))
        .is_some());
    assert_eq!(call(sink.addr, "DELETE", "/fault").status, 405);
    let injected = sink.matching(|l| l.contains("fault injected") || l.contains("fault set"));
    assert!(injected.is_empty(), "{injected:?}");

    // A relay with faults off does not pass X-Fault on, even to a sink that has them on.
    let faulty_sink = TierProcess::start("sink", "faulty-sink", &faults_on());
    let relay = relay_to(&faulty_sink, "off");
    let through = post_with(
        relay.addr,
        "/relay.php",
        "X-Fault: sink=503, relay=504\r\n",
        "hello",
    )
    .unwrap();
    assert_eq!(through.status, 200, "{}", through.body);
    let metrics = get(faulty_sink.addr, "/metrics").unwrap().body;
    let series = "three_tier_faults_injected_total{tier=\"sink\",kind=\"status\"}";
    assert_eq!(metric_in(&metrics, series), Some(0.0));
}

#[test]
fn send_fault_and_a_slow_sink_lose_nothing_and_show_on_flow_and_metrics() {
    let dir = temp_dir("faults");
    let log_dir = [("LOG_DIR", dir.display().to_string())];
    let sink_env = [faults_on(), log_dir.to_vec()].concat();
    let relay_env = [faults_on(), vec![("SINK_TIMEOUT", "500ms".into())]].concat();
    let (sinks, _relays, relay_url) = sinks_and_relays_with(&sink_env, &relay_env);
    // One slow sink, beyond the relays' SINK_TIMEOUT.
    let slow = call(sinks[0].addr, "POST", "/fault?delay=1500ms&for=5m");
    assert_eq!(slow.status, 200, "{}", slow.body);
    let env = [
        faults_on(),
        vec![
            ("RELAY_URL", relay_url),
            ("SEND_INTERVAL", "20ms".into()),
            ("SEND_FAULT", "sink=503@0.2".into()),
        ],
    ]
    .concat();
    let sender = TierProcess::pod("sender", "sender", "127.0.0.31", &env);
    let lineage = sender
        .wait_lines(30, |l| l.contains(" -> relay "))
        .unwrap_or_else(|| panic!("30 messages were not answered:\n{}", sender.output()));
    let flow: serde_json::Value =
        serde_json::from_str(&get(sender.addr, "/flow").unwrap().body).unwrap();
    let metrics = get(sender.addr, "/metrics").unwrap().body;
    sender.sigterm();
    let messages = flow["messages"].as_array().unwrap();
    let with =
        |pred: &dyn Fn(&serde_json::Value) -> bool| messages.iter().filter(|m| pred(m)).count();
    let met_503 = with(&|m| {
        m["faults"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().starts_with("met sink=503"))
    });
    let retried = with(&|m| m["attempts"].as_u64() > Some(1));
    let slow_ip = sinks[0].addr.ip().to_string();
    let failed_over = with(&|m| {
        m["failed_sinks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str() == Some(&slow_ip))
    });
    assert!(
        met_503 > 0 && retried > 0 && failed_over > 0,
        "met 503 {met_503}, retried {retried}, past the slow sink {failed_over}: {flow}"
    );
    assert_eq!(
        with(&|m| !m["error"].is_null()),
        0,
        "no message was given up"
    );
    assert!(metric_in(&metrics, "three_tier_message_retries_total").unwrap() > 0.0);
    assert!(
        metric_in(
            &metrics,
            "three_tier_faults_injected_total{tier=\"sender\",kind=\"header\"}"
        )
        .unwrap()
            > 0.0
    );
    assert!(
        lineage.iter().all(|l| l.contains(" 200 in ")),
        "every message ended 2xx"
    );

    let mut sender = sender;
    assert!(sender.wait_exit(PATIENCE).is_some());
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let (code, report) = loss_report(&files);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("gaps 0, damaged lines 0"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_fault_drill_cannot_take_the_ordinary_traffics_place() {
    // Half of MAX_IN_FLIGHT (here 2 of 4) may wait in an injected delay.
    let env = [
        faults_on(),
        vec![
            ("MAX_IN_FLIGHT", "4".into()),
            ("CLIENT_TIMEOUT", "3s".into()),
        ],
    ]
    .concat();
    let sink = TierProcess::start("sink", "sink", &env);
    let addr = sink.addr;
    let delayed: Vec<_> = (0..2)
        .map(|i| {
            std::thread::spawn(move || {
                let id = format!("X-Request-Id: slow-{i}\r\n");
                post_with(
                    addr,
                    "/sink.php",
                    &format!("X-Fault: sink-delay=2s\r\n{id}"),
                    "slow",
                )
            })
        })
        .collect();
    sink.wait_lines(2, |l| {
        l.starts_with("fault injected (X-Fault): sink-delay=")
    })
    .expect("two messages in their delay");
    let third = post_with(addr, "/sink.php", "X-Fault: sink-delay=2s\r\n", "third").unwrap();
    assert_eq!(third.status, 503, "{}", third.body);
    assert!(
        third.body.starts_with("busy: half of MAX_IN_FLIGHT (2)"),
        "{}",
        third.body
    );
    assert_eq!(third.header("Retry-After").as_deref(), Some("1"));
    let ordinary = post(addr, "/sink.php", "ordinary").unwrap();
    assert_eq!(
        ordinary.status, 200,
        "a message without a fault still gets in"
    );
    for slow in delayed {
        assert_eq!(slow.join().unwrap().unwrap().status, 200);
    }
    // One of each kind: a header naming a delay five times is not one, and meets nothing.
    let repeated =
        "X-Fault: sink-delay=1s,sink-delay=1s,sink-delay=1s,sink-delay=1s,sink-delay=1s\r\n";
    let answer = post_with(addr, "/sink.php", repeated, "five").unwrap();
    assert_eq!((answer.status, answer.header("X-Fault-Met")), (200, None));
    let metrics = get(addr, "/metrics").unwrap().body;
    let series = "three_tier_faults_injected_total{tier=\"sink\",kind=\"delay\"}";
    assert_eq!(metric_in(&metrics, series), Some(2.0), "{metrics}");
}

#[test]
fn the_delays_a_message_meets_add_up_to_at_most_client_timeout() {
    let env = [faults_on(), vec![("CLIENT_TIMEOUT", "1s".into())]].concat();
    let sink = TierProcess::start("sink", "sink", &env);
    assert_eq!(call(sink.addr, "POST", "/fault?delay=3s").status, 200);
    let started = Instant::now();
    let answer = post_with(sink.addr, "/sink.php", "X-Fault: sink-delay=3s\r\n", "late").unwrap();
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{}", answer.body);
    // 3 s + 3 s asked; CLIENT_TIMEOUT (1 s) is the bound. (A bound on a
    // wait, not a speed: the answer must not come before it, nor at 6 s.)
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(
        answer.header("X-Fault-Met").as_deref(),
        Some("sink-delay=3000ms"),
        "{}",
        answer.head
    );
}

#[test]
fn a_message_fault_meets_one_sink_and_the_failover_answers_it() {
    // sink=503 is applied by the first sink that handles the message; the
    // relay fails over and the next sink, meeting no fault, logs it. The
    // sender's flow row names the sink that failed and the one that answered.
    let (sinks, _relays, relay_url) = sinks_and_relays_with(&faults_on(), &faults_on());
    let env = [
        faults_on(),
        vec![
            ("RELAY_URL", relay_url),
            ("SEND_INTERVAL", "20ms".into()),
            ("SEND_FAULT", "sink=503@1".into()),
        ],
    ]
    .concat();
    let sender = TierProcess::pod("sender", "sender", "127.0.0.41", &env);
    sender
        .wait_lines(10, |l| l.contains(" -> relay "))
        .unwrap_or_else(|| panic!("{}", sender.output()));
    let flow: serde_json::Value =
        serde_json::from_str(&get(sender.addr, "/flow").unwrap().body).unwrap();
    sender.sigterm();
    let messages = flow["messages"].as_array().unwrap();
    assert!(messages.len() >= 10, "{flow}");
    for m in messages {
        let failed: Vec<&str> = m["failed_sinks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let (id, sink) = (m["id"].as_str().unwrap(), m["sink"].as_str().unwrap());
        assert_eq!(
            (m["status"].as_u64(), m["attempts"].as_u64()),
            (Some(200), Some(1)),
            "{m}"
        );
        assert_eq!(failed.len(), 1, "one sink met the fault: {m}");
        assert_ne!(failed[0], sink, "another sink answered: {m}");
        let faults = m["faults"].to_string();
        assert!(
            faults.contains("sent sink=503") && faults.contains("met sink=503 (attempt 1)"),
            "{m}"
        );
        // Logged once, by the sink that answered, never by the one that refused.
        let logs = |tier: &TierProcess| {
            let tail = format!("request_id={id}");
            tier.matching(|l| l.starts_with("From ") && l.ends_with(&tail))
                .len()
        };
        let answered = sinks
            .iter()
            .find(|t| t.addr.ip().to_string() == sink)
            .unwrap();
        answered
            .wait_line(|l| l.starts_with("From ") && l.ends_with(&format!("request_id={id}")))
            .expect("the answering sink's record");
        assert_eq!(sinks.iter().map(logs).sum::<usize>(), 1, "{m}");
    }
}
