//! Every bad input gets its status, and the server still answers /healthz.

use std::io::Write;
use std::net::{TcpListener, TcpStream};

use crate::util::{
    assert_healthy, exchange, get, post, read_answer, text_of, TierProcess, PATIENCE,
};

#[test]
fn sink_answers_a_message_with_the_seed_text_and_logs_it() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let answer = post(sink.addr, "/sink.php", "hello\nworld").unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "Logged message from 127.0.0.1")
    );
    assert_eq!(
        answer.header("Content-Type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let line = sink
        .wait_line(|l| crate::util::is_record_from(l, crate::util::Verb::From, "127.0.0.1"))
        .unwrap();
    assert!(text_of(&line).ends_with(" GMT : hello\\nworld"), "{line}");
}

#[test]
fn oversized_body_gets_413_before_it_is_sent() {
    // tiny_http itself reads bodies of up to 1 KiB before routing, so the limit
    // here is above that (the default, 16 KiB, is too).
    let sink = TierProcess::start("sink", "sink", &[("MAX_BODY_BYTES", "2000".into())]);
    // Only the head is sent: an answer proves the body was not waited for.
    for length in ["2001", "100000000000000"] {
        let head =
            format!("POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n");
        let answer = exchange(sink.addr, head.as_bytes()).unwrap();
        assert_eq!(answer.status, 413, "Content-Length {length}");
        assert!(
            answer.body.contains("MAX_BODY_BYTES=2000"),
            "{}",
            answer.body
        );
        assert_eq!(answer.header("Connection").as_deref(), Some("close"));
    }
    // A chunked body has no announced length: it is cut off once over the limit.
    let chunk = "x".repeat(2100);
    let raw = format!("POST /sink.php HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    assert_eq!(exchange(sink.addr, raw.as_bytes()).unwrap().status, 413);
    // Exactly at the limit is fine.
    assert_eq!(post(sink.addr, "/", &"y".repeat(2000)).unwrap().status, 200);
    assert_healthy(&sink);
}

#[test]
fn empty_and_non_utf8_bodies_get_400() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let empty = post(sink.addr, "/sink.php", "").unwrap();
    assert_eq!(empty.status, 400);
    assert!(empty.body.contains("empty message"), "{}", empty.body);
    let mut raw = b"POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n".to_vec();
    raw.extend_from_slice(&[0xff, 0xfe, 0x41]);
    let binary = exchange(sink.addr, &raw).unwrap();
    assert_eq!(binary.status, 400);
    assert!(binary.body.contains("UTF-8"), "{}", binary.body);
    assert!(
        sink.matching(|l| l.starts_with("From ")).is_empty(),
        "nothing may be logged as a message"
    );
    assert_healthy(&sink);
}

#[test]
fn wrong_methods_get_405_with_allow_and_unknown_paths_404() {
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", "127.0.0.1:9/".into())]);
    let answer = get(relay.addr, "/relay.php").unwrap();
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("Allow").as_deref(), Some("POST"));
    let answer = post(relay.addr, "/healthz", "x").unwrap();
    assert_eq!(answer.status, 405);
    assert_eq!(answer.header("Allow").as_deref(), Some("GET, HEAD"));
    assert_healthy(&relay);
    assert_eq!(get(relay.addr, "/readyz").unwrap().status, 200);

    let sender = TierProcess::start(
        "sender",
        "sender",
        &[
            ("RELAY_URL", "127.0.0.1:9/".into()),
            ("SEND_INTERVAL", "1m".into()),
        ],
    );
    assert_eq!(
        post(sender.addr, "/relay.php", "x").unwrap().status,
        404,
        "a sender takes no messages"
    );
    assert_healthy(&sender);
}

#[test]
fn requests_beyond_max_in_flight_get_503_at_once() {
    // A sink that accepts and never answers holds the relay's only slot.
    let silent_sink = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = TierProcess::start(
        "relay",
        "relay",
        &[
            (
                "SINK_URL",
                format!("http://{}/", silent_sink.local_addr().unwrap()),
            ),
            ("MAX_IN_FLIGHT", "1".into()),
            ("SINK_TIMEOUT", "20s".into()),
        ],
    );
    let mut first = TcpStream::connect(relay.addr).unwrap();
    first
        .write_all(b"POST /relay.php HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfirst")
        .unwrap();
    let (held, _) = silent_sink.accept().unwrap();

    let second = post(relay.addr, "/relay.php", "second").unwrap();
    assert_eq!(second.status, 503);
    assert_eq!(second.header("Retry-After").as_deref(), Some("1"));
    assert!(second.body.contains("MAX_IN_FLIGHT=1"), "{}", second.body);
    assert_healthy(&relay);

    // Once the sink hangs up, the first request is answered 502 and the slot frees.
    drop(held);
    first.set_read_timeout(Some(PATIENCE)).unwrap();
    assert_eq!(read_answer(&mut first).unwrap().status, 502);
}

#[test]
fn a_huge_header_line_is_answered_431_and_nothing_else() {
    // CLIENT_TIMEOUT is longer than this test waits, so only the line limit can answer.
    let sink = TierProcess::start("sink", "sink", &[("CLIENT_TIMEOUT", "1m".into())]);
    let mut stream = TcpStream::connect(sink.addr).unwrap();
    let long = format!(
        "POST /sink.php HTTP/1.1\r\nX-Long: {}\r\n",
        "a".repeat(64 * 1024)
    );
    // The server may stop reading mid-write; the status still arrives.
    let _ = stream.write_all(long.as_bytes());
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let answer = read_answer(&mut stream).expect("a status, not a silent close");
    assert_eq!(answer.status, 431, "{}", answer.body);
    assert!(
        crate::util::closed_by_server(&mut stream, PATIENCE),
        "the connection was left open"
    );
    assert!(sink.matching(|l| l.starts_with("From ")).is_empty());
    assert_healthy(&sink);
}
