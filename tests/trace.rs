//! W3C Trace Context from the sender to the sink: one trace id in every tier's lines and in `/flow`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use crate::util::{
    exchange, get, metric_in, record, request_id_of, trace_id_of, TierProcess, Verb,
};

#[test]
fn a_messages_trace_id_is_the_same_in_every_tiers_lines_and_in_flow() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink.url("/sink.php"))]);
    let sender = TierProcess::start(
        "sender",
        "sender",
        &[
            ("RELAY_URL", relay.url("/relay.php")),
            ("SEND_INTERVAL", "100ms".into()),
        ],
    );
    let sent = sender
        .wait_line(|l| record(l, Verb::Sending).is_some())
        .expect("the sender sent");
    let sent = record(&sent, Verb::Sending).unwrap();
    let trace_id = sent
        .trace_id
        .expect("the sender's record carries a trace id")
        .to_string();
    assert_eq!(trace_id.len(), 32, "{trace_id}");
    let holds =
        |verb| move |l: &str| record(l, verb).is_some_and(|r| r.request_id == sent.request_id);
    let relayed = relay
        .wait_line(holds(Verb::Relaying))
        .expect("the relay's record");
    let logged = sink
        .wait_line(holds(Verb::From))
        .expect("the sink's record");
    for line in [&relayed, &logged] {
        assert_eq!(trace_id_of(line), Some(trace_id.as_str()), "{line}");
    }
    let lineage = sender
        .wait_line(|l| l.contains(" -> relay ") && request_id_of(l) == Some(sent.request_id))
        .expect("the sender's lineage line");
    assert_eq!(trace_id_of(&lineage), Some(trace_id.as_str()), "{lineage}");
    let flow = get(sender.addr, "/flow").unwrap();
    let flow: serde_json::Value = serde_json::from_str(&flow.body).unwrap();
    let entry = flow["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == sent.request_id)
        .expect("the message is on /flow");
    assert_eq!(entry["trace_id"], trace_id.as_str());
}

/// A stand-in sink that answers 200 to one request and hands back its head.
fn capturing_sink() -> (String, thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("{}/sink.php", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut reader = BufReader::new(&stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut out = &stream;
        out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        head
    });
    (url, handle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn the_relay_keeps_a_valid_trace_with_a_parent_of_its_own_and_passes_tracestate() {
    let (url, sink) = capturing_sink();
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", url)]);
    let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let raw = format!(
        "POST /relay.php HTTP/1.1\r\nHost: t\r\ntraceparent: {given}\r\ntracestate: congo=t61rcWkgMzE\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    assert_eq!(exchange(relay.addr, raw.as_bytes()).unwrap().status, 200);
    let head = sink.join().unwrap();
    let sent = header(&head, "traceparent").expect("the relay sends a traceparent");
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );
    assert_ne!(sent, given, "the relay's hop has a parent id of its own");
    assert!(sent.ends_with("-01") && sent.len() == 55, "{sent}");
    assert_eq!(header(&head, "tracestate"), Some("congo=t61rcWkgMzE"));
    let line = relay
        .wait_line(|l| record(l, Verb::Relaying).is_some())
        .unwrap();
    assert_eq!(
        trace_id_of(&line),
        Some("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{line}"
    );
}

#[test]
fn an_invalid_traceparent_is_replaced_by_a_new_trace_and_counted() {
    let (url, sink) = capturing_sink();
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", url)]);
    let raw = "POST /relay.php HTTP/1.1\r\nHost: t\r\ntraceparent: 00-ZZZ-nope-01\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    assert_eq!(exchange(relay.addr, raw.as_bytes()).unwrap().status, 200);
    let head = sink.join().unwrap();
    let sent = header(&head, "traceparent").expect("a new traceparent");
    assert!(
        sent.starts_with("00-") && sent.ends_with("-01") && sent.len() == 55,
        "{sent}"
    );
    let line = relay
        .wait_line(|l| record(l, Verb::Relaying).is_some())
        .unwrap();
    let trace = trace_id_of(&line).expect("the relay's record has the new trace id");
    assert_eq!(
        &sent[3..35],
        trace,
        "the sink gets the trace the relay logged"
    );
    let metrics = get(relay.addr, "/metrics").unwrap().body;
    assert_eq!(
        metric_in(&metrics, "three_tier_traceparent_replaced_total"),
        Some(1.0)
    );
}

#[test]
fn json_logs_carry_the_trace_id() {
    let sink = TierProcess::start("sink", "sink", &[("LOG_FORMAT", "json".into())]);
    let given = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let raw = format!(
        "POST /sink.php HTTP/1.1\r\nHost: t\r\ntraceparent: {given}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    assert_eq!(exchange(sink.addr, raw.as_bytes()).unwrap().status, 200);
    let line = sink
        .wait_line(|l| l.contains(r#""event":"logged""#))
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        event["trace_id"], "0af7651916cd43dd8448eb211c80319c",
        "{line}"
    );
}
