//! The last ways to lose or stall a message (the issue "HTTP as the RFCs
//! say, and the last ways to lose or stall a message"), each on real
//! processes: a removed LOG_DIR, a failing sink, a stdout nobody reads, a
//! restarted relay (a stalled one: `gone_clients.rs`), more connections
//! than MAX_IN_FLIGHT, eviction at MAX_CONNECTIONS, a small RLIMIT_NOFILE,
//! an upload cut by SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    get, heavy_load, loss_report, metric, metric_in, post, read_answer, recorded_ids, signal_kill,
    signal_stop, temp_dir, TierProcess, PATIENCE,
};

/// The first file in `dir` whose name starts with `Sink_`.
fn sink_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("Sink_")
        })
        .unwrap_or_else(|| panic!("no Sink_ file in {}", dir.display()))
}

#[test]
fn a_removed_log_dir_is_not_acknowledged_and_the_file_comes_back_with_it() {
    let dir = temp_dir("delivery-removed");
    let sink = TierProcess::start("sink", "sink", &[("LOG_DIR", dir.display().to_string())]);
    assert_eq!(post(sink.addr, "/sink.php", "before").unwrap().status, 200);
    let file = sink_file(&dir);
    // A volume unmounted or an `rm -rf`: the open file has no name any more.
    std::fs::remove_dir_all(&dir).unwrap();
    let answer = post(sink.addr, "/sink.php", "while gone").unwrap();
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.header("Retry-After").as_deref(), Some("1"));
    assert!(answer.body.contains("not logged"), "{}", answer.body);
    assert_eq!(
        get(sink.addr, "/readyz").unwrap().status,
        503,
        "not ready while the record fails"
    );
    assert!(metric(&sink, "three_tier_record_failures_total") >= 1.0);
    // The operator puts the directory back: the next probe finds the record working.
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(
        get(sink.addr, "/readyz").unwrap().status,
        200,
        "{}",
        sink.output()
    );
    assert_eq!(post(sink.addr, "/sink.php", "after").unwrap().status, 200);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(" : after\t") && !text.contains("while gone"),
        "{text}"
    );
    // Only the file deleted: the next message goes to a new one at once.
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        post(sink.addr, "/sink.php", "recreated").unwrap().status,
        200
    );
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains(" : recreated\t"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sink_that_cannot_record_answers_503_and_the_relay_tries_the_next() {
    let (broken_dir, good_dir) = (temp_dir("delivery-broken"), temp_dir("delivery-good"));
    let broken = TierProcess::start(
        "sink",
        "broken sink",
        &[("LOG_DIR", broken_dir.display().to_string())],
    );
    let good = TierProcess::start(
        "sink",
        "good sink",
        &[("LOG_DIR", good_dir.display().to_string())],
    );
    let sinks = [broken, good];
    let urls = TierProcess::url_list(&sinks, "/sink.php");
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", urls)]);
    std::fs::remove_dir_all(&broken_dir).unwrap();
    for i in 0..10 {
        let answer = post(relay.addr, "/relay.php", &format!("message {i}")).unwrap();
        assert_eq!(
            answer.status,
            200,
            "message {i}: {}\n{}",
            answer.body,
            relay.output()
        );
    }
    let logged = std::fs::read_to_string(sink_file(&good_dir)).unwrap();
    assert_eq!(
        logged.lines().count(),
        10,
        "every message on the sink that can record:\n{logged}"
    );
    let _ = std::fs::remove_dir_all(&good_dir);
}

/// A sink whose stdout is `stdout` (its `listening on` line goes there, so
/// the test finds it by polling /healthz), with `env`.
fn sink_with_stdout(stdout: Stdio, env: &[(&str, String)]) -> (Child, SocketAddr) {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = crate::util::command("sink")
        .env_clear()
        .env("LISTEN_ADDR", addr.to_string())
        .env("POD_IP", "127.0.0.1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while get(addr, "/healthz").is_err() {
        assert!(started.elapsed() < PATIENCE, "the sink did not start");
        thread::sleep(Duration::from_millis(10)); // polling its start
    }
    (child, addr)
}

/// A sink whose stdout is a pipe nobody reads.
fn sink_with_undrained_stdout(env: &[(&str, String)]) -> (Child, SocketAddr) {
    sink_with_stdout(Stdio::piped(), env)
}

/// Posts `n` messages on one kept-alive connection; returns their statuses.
fn post_many(addr: SocketAddr, n: usize) -> Vec<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    (0..n)
        .map(|i| {
            let body = format!("message {i} {}", "x".repeat(100));
            let raw = format!(
                "POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(raw.as_bytes()).unwrap();
            read_answer(&mut stream).unwrap().status
        })
        .collect()
}

#[test]
fn a_stdout_nobody_reads_never_holds_a_message() {
    let _heavy = heavy_load();
    let dir = temp_dir("delivery-stdout");
    let (mut child, addr) = sink_with_undrained_stdout(&[("LOG_DIR", dir.display().to_string())]);
    // 3,000 lines of about 200 bytes fill any pipe many times over.
    let started = Instant::now();
    let statuses = post_many(addr, 3000);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "LOG_DIR is the record: every message answered 200"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let metrics = get(addr, "/metrics").unwrap().body;
    assert!(
        metric_in(&metrics, "three_tier_stdout_dropped_total").unwrap() > 0.0,
        "{metrics}"
    );
    assert_eq!(
        std::fs::read_to_string(sink_file(&dir))
            .unwrap()
            .lines()
            .count(),
        3000
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    // Without LOG_DIR stdout is the record: once it takes no more, 503, not a hang.
    let (mut child, addr) = sink_with_undrained_stdout(&[]);
    let statuses = post_many(addr, 3000);
    assert_eq!(statuses[0], 200);
    assert_eq!(
        statuses.last(),
        Some(&503),
        "{:?}",
        &statuses[statuses.len() - 5..]
    );
    assert!(statuses.iter().all(|s| *s == 200 || *s == 503));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_senders_retries_outlast_a_relay_restart() {
    let _heavy = heavy_load();
    let dir = temp_dir("delivery-restart");
    let sink = TierProcess::start("sink", "sink", &[("LOG_DIR", dir.display().to_string())]);
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let relay_env = [
        ("SINK_URL", sink.url("/sink.php")),
        ("LISTEN_ADDR", addr.to_string()),
    ];
    let relay = TierProcess::start("relay", "relay", &relay_env);
    let env = [
        ("RELAY_URL", relay.url("/relay.php")),
        ("SEND_INTERVAL", "100ms".into()),
        ("SEND_COUNT", "40".into()),
    ];
    let mut sender = TierProcess::start("sender", "sender", &env);
    sender
        .wait_lines(10, |l| l.contains(" -> relay "))
        .expect("messages before the kill");
    signal_kill(relay.pid);
    thread::sleep(Duration::from_secs(1)); // the pod is down for a second
    let _again = TierProcess::start("relay", "relay again", &relay_env);
    assert_eq!(sender.exit_code(), 0, "{}", sender.output());
    // Every one of the 40 arrived (a message answered before the kill may
    // have been sent again: delivery is at least once).
    let (code, report) = loss_report(&[sink_file(&dir)]);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains(", gaps 0, damaged lines 0"), "{report}");
    assert_eq!(recorded_ids(&dir, "Sink_").len(), 40, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_relay_carries_what_max_connections_admitted() {
    let _heavy = heavy_load();
    let sink = TierProcess::start("sink", "sink", &[]);
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink.url("/sink.php"))]);
    // The sink stalls: 300 messages wait in the relay at once, more than the old MAX_IN_FLIGHT.
    signal_stop(sink.pid, true);
    let clients: Vec<_> = (0..300)
        .map(|i| {
            let addr = relay.addr;
            thread::spawn(move || {
                post(addr, "/relay.php", &format!("message {i}")).map(|a| a.status)
            })
        })
        .collect();
    let started = Instant::now();
    while metric(&relay, "three_tier_http_requests_in_flight") < 300.0 {
        if started.elapsed() > Duration::from_secs(1) {
            break; // SINK_TIMEOUT is 2 s: the stall must end well before it
        }
        thread::sleep(Duration::from_millis(10)); // polling the relay's gauge
    }
    signal_stop(sink.pid, false);
    let statuses: Vec<u16> = clients
        .into_iter()
        .map(|c| c.join().unwrap().unwrap())
        .collect();
    let shed = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(shed, 0, "{shed} of 300 shed with 503");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[test]
fn a_connection_whose_request_has_arrived_is_not_evicted_as_idle() {
    let _heavy = heavy_load();
    // 120 clients, and room for this test's own /metrics requests (a closed
    // one may still be leaving when the next one comes).
    let sink = TierProcess::start("sink", "sink", &[("MAX_CONNECTIONS", "128".into())]);
    let mut first: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(sink.addr).unwrap())
        .collect();
    // Until the sink has them all, they are not all in its registry.
    let started = Instant::now();
    while metric(&sink, "three_tier_connections_open") < 120.0 {
        assert!(started.elapsed() < PATIENCE);
        thread::sleep(Duration::from_millis(20)); // the gauge is sampled each second
    }
    // While the sink is stopped, each idle connection's request arrives, and 120 new connections queue.
    signal_stop(sink.pid, true);
    for (i, stream) in first.iter_mut().enumerate() {
        let body = format!("arrived {i}");
        let raw = format!(
            "POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(raw.as_bytes()).unwrap();
    }
    let late: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(sink.addr).unwrap())
        .collect();
    signal_stop(sink.pid, false);
    for (i, stream) in first.iter_mut().enumerate() {
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let answer = read_answer(stream).unwrap_or_else(|e| {
            panic!(
                "request {i} had arrived and got no answer: {e}\n{}",
                sink.output()
            )
        });
        assert_eq!(answer.status, 200, "request {i}");
    }
    drop(late);
}

#[test]
fn a_small_rlimit_nofile_leaves_a_relay_room_for_connections() {
    let _heavy = heavy_load();
    let sink = TierProcess::start("sink", "sink", &[]);
    let relay = TierProcess::start_wrapped(
        &["prlimit", "--nofile=96:96", "--"],
        "relay",
        "relay",
        &[("SINK_URL", sink.url("/sink.php"))],
    );
    relay
        .wait_line(|l| l.contains("MAX_CONNECTIONS=1024 lowered to 24"))
        .unwrap_or_else(|| panic!("{}", relay.output()));
    // Ten kept-alive clients at once, each sending in turn.
    let mut clients: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(relay.addr).unwrap())
        .collect();
    for round in 0..3 {
        for (i, stream) in clients.iter_mut().enumerate() {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let body = format!("round {round} client {i}");
            let raw = format!(
                "POST /relay.php HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(raw.as_bytes()).unwrap();
            let answer =
                read_answer(stream).unwrap_or_else(|e| panic!("client {i} round {round}: {e}"));
            assert_eq!(
                answer.status, 200,
                "client {i} round {round}: {}",
                answer.body
            );
        }
    }
}

#[test]
fn sigterm_reads_and_answers_an_upload_still_arriving() {
    let mut sink = TierProcess::start(
        "sink",
        "sink",
        &[
            ("DRAIN_DELAY", "0".into()),
            ("SHUTDOWN_TIMEOUT", "5s".into()),
        ],
    );
    let mut stream = TcpStream::connect(sink.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf ")
        .unwrap();
    // The sink has the head and half the body when the stop comes.
    let started = Instant::now();
    while metric(&sink, "three_tier_connections_open") < 1.0 {
        assert!(started.elapsed() < PATIENCE);
        thread::sleep(Duration::from_millis(20)); // the gauge is sampled each second
    }
    sink.sigterm();
    sink.wait_line(|l| l.starts_with("stopped accepting"))
        .expect("the stop began");
    stream.write_all(b"done!").unwrap();
    let answer = read_answer(&mut stream).expect("the upload is answered");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert_eq!(sink.exit_code(), 0, "{}", sink.output());
}

/// With SEND_FAIL_FAST=on a sender stops at the first message that failed
/// after its retries, and exits 1; by default it goes on to SEND_COUNT.
#[test]
fn fail_fast_stops_at_the_first_failed_message() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/relay.php", closed.local_addr().unwrap());
    drop(closed);
    for (fail_fast, sent) in [("on", 1), ("off", 3)] {
        let env = [
            ("RELAY_URL", url.clone()),
            ("SEND_COUNT", "3".into()),
            ("SEND_INTERVAL", "10ms".into()),
            ("SEND_RETRIES", "0".into()),
            ("SEND_FAIL_FAST", fail_fast.into()),
        ];
        let mut sender = TierProcess::start("sender", "sender", &env);
        assert_eq!(sender.exit_code(), 1, "{}", sender.output());
        let sending = sender.matching(|l| l.starts_with("********  Sending "));
        assert_eq!(
            sending.len(),
            sent,
            "SEND_FAIL_FAST={fail_fast}: {sending:?}"
        );
    }
}

#[test]
fn a_relay_whose_sink_url_leads_back_to_it_answers_508_once() {
    let dir = temp_dir("delivery-loop");
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let env = [
        ("LISTEN_ADDR", addr.to_string()),
        ("SINK_URL", format!("http://{addr}/relay.php")),
        ("LOG_DIR", dir.display().to_string()),
    ];
    let relay = TierProcess::start("relay", "relay", &env);
    let answer = post(relay.addr, "/relay.php", "round and round").unwrap();
    assert_eq!(answer.status, 508, "{}\n{}", answer.body, relay.output());
    assert!(
        answer.body.contains("come back to the relay"),
        "{}",
        answer.body
    );
    let file = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let records = std::fs::read_to_string(file).unwrap();
    assert_eq!(records.lines().count(), 1, "recorded once: {records}");
    assert_eq!(metric(&relay, "three_tier_messages_looped_total"), 1.0);
    crate::util::assert_healthy(&relay);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_stdout_that_fails_as_the_record_makes_the_tier_not_ready() {
    // A full device, and a pipe whose reader has gone (EPIPE): the record
    // cannot be written, so the message is not acknowledged and /readyz
    // says so, though a poll finds such a stdout writable.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    // Without LOG_DIR, stdout is the record.
    let (mut on_full, full_addr) = sink_with_stdout(Stdio::from(full), &[]);
    let (mut on_pipe, pipe_addr) = sink_with_undrained_stdout(&[]);
    // Its `listening on` line is in the pipe; from now on nothing reads it.
    drop(on_pipe.stdout.take());
    for addr in [full_addr, pipe_addr] {
        let answer = post(addr, "/sink.php", "not recorded").unwrap();
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert!(answer.body.contains("not logged"), "{}", answer.body);
        let ready = get(addr, "/readyz").unwrap();
        assert_eq!(ready.status, 503, "{}", ready.body);
    }
    for child in [&mut on_full, &mut on_pipe] {
        let _ = child.kill();
        let _ = child.wait();
    }
}
