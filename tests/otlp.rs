//! Span export off the message's path: the last spans sent on SIGTERM, and a receiver that never answers costs no message.
//!
//! A receiver here is a plain TCP listener on loopback: one that reads each
//! export and answers 200, or one that accepts and never answers. The
//! rotel-backed check of whole traces is `scripts/checks/otlp_rotel.py`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::util::{get, metric_in, post, TierProcess};

/// Export bodies a receiver took.
type Bodies = Arc<Mutex<Vec<String>>>;

/// A receiver that answers every export 200 on its kept-alive connection; its address and what it took.
fn answering_receiver() -> (SocketAddr, Bodies) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    let addr = listener.local_addr().expect("the receiver's address");
    let bodies = Bodies::default();
    let taken = Arc::clone(&bodies);
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let taken = Arc::clone(&taken);
            thread::spawn(move || serve_exports(stream, &taken));
        }
    });
    (addr, bodies)
}

/// Reads exports from `stream` (head, then Content-Length bytes) and answers each 200.
fn serve_exports(stream: TcpStream, taken: &Mutex<Vec<String>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        taken
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into());
        let answer =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The request ids of the spans in `bodies`.
fn span_request_ids(bodies: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for body in bodies {
        let request: serde_json::Value = serde_json::from_str(body).expect("an export is JSON");
        for spans in request["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .into_iter()
        {
            for span in spans {
                for attribute in span["attributes"].as_array().into_iter().flatten() {
                    if attribute["key"] == "three_tier.request_id" {
                        ids.push(
                            attribute["value"]["stringValue"]
                                .as_str()
                                .unwrap_or("")
                                .into(),
                        );
                    }
                }
            }
        }
    }
    ids.sort();
    ids
}

fn post_with_id(sink: &TierProcess, id: &str) -> u16 {
    let raw = format!(
        "POST /sink.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    );
    crate::util::exchange(sink.addr, raw.as_bytes())
        .expect("the sink answers")
        .status
}

#[test]
fn spans_still_queued_are_sent_on_sigterm_before_the_tier_exits() {
    let (receiver, bodies) = answering_receiver();
    // Exports wait for a full batch or ten minutes: none happens before SIGTERM.
    let mut sink = TierProcess::start(
        "sink",
        "sink",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{receiver}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "600000".into()),
            ("DRAIN_DELAY", "0".into()),
        ],
    );
    for id in ["t-1", "t-2", "t-3"] {
        assert_eq!(post_with_id(&sink, id), 200);
    }
    assert!(
        bodies.lock().unwrap().is_empty(),
        "exported before its schedule or a full batch"
    );
    sink.sigterm();
    assert_eq!(sink.exit_code(), 0, "{}", sink.output());
    // The tier has exited: its flush is over, and the receiver has what it sent.
    let ids = span_request_ids(&bodies.lock().unwrap());
    assert_eq!(ids, ["t-1", "t-2", "t-3"], "{}", sink.output());
}

#[test]
fn a_receiver_that_never_answers_delays_no_message_and_its_spans_are_dropped_and_counted() {
    // Accepts (the kernel's backlog) and never reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind the silent receiver");
    let addr = silent.local_addr().expect("its address");
    let mut sink = TierProcess::start(
        "sink",
        "sink",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            // Each span is a batch, its export waits a minute: the queue fills at once.
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1".into()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "2".into()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "60000".into()),
            ("DRAIN_DELAY", "0".into()),
            ("SHUTDOWN_TIMEOUT", "1s".into()),
        ],
    );
    for n in 0..20 {
        let answer = post(sink.addr, "/sink.php", &format!("message {n}")).expect("answered");
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let metrics = get(sink.addr, "/metrics").expect("/metrics").body;
    let dropped = metric_in(&metrics, "three_tier_spans_dropped_total").unwrap_or(0.0);
    // At most one span in the blocked export and two queued; the rest dropped.
    assert!(dropped >= 17.0, "{dropped} spans dropped:\n{metrics}");
    assert_eq!(
        metric_in(&metrics, "three_tier_spans_exported_total"),
        Some(0.0)
    );
    // The flush on SIGTERM waits SHUTDOWN_TIMEOUT at most, not the export's minute.
    sink.sigterm();
    let exited = sink.wait_exit(Duration::from_secs(20));
    assert!(
        exited.is_some_and(|s| s.success()),
        "{exited:?}\n{}",
        sink.output()
    );
    drop(silent);
}
