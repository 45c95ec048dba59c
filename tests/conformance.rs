//! Requests the RFCs allow are served, and refusals get the status the RFCs
//! name (the fixes of the issue "HTTP as the RFCs say"), on raw sockets
//! against the sink and through a relay to a sink.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{exchange, TierProcess, PATIENCE};

/// A sink, and a relay in front of another sink.
fn tiers() -> (TierProcess, TierProcess, TierProcess) {
    let sink = TierProcess::start("sink", "sink", &[]);
    let behind = TierProcess::start("sink", "sink behind the relay", &[]);
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", behind.url("/sink.php"))]);
    (sink, relay, behind)
}

fn send(addr: SocketAddr, raw: &str) -> crate::util::Answer {
    exchange(addr, raw.as_bytes()).unwrap_or_else(|e| panic!("no answer to {raw:?}: {e}"))
}

#[test]
fn header_values_with_bytes_above_0x7f_are_carried_as_opaque_bytes() {
    let (sink, relay, behind) = tiers();
    for (tier, name) in [(&sink, "sink"), (&relay, "relay")] {
        let raw = "POST /sink.php HTTP/1.1\r\nHost: t\r\nUser-Agent: Gerät/1.0 (Düsseldorf)\r\nTest: Düsseldorf \u{1f680}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        let answer = send(tier.addr, raw);
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
    }
    // A non-ASCII request id is not echoed: the tiers make one of their own.
    let raw = "POST /sink.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: idé-1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let id = send(relay.addr, raw).header("X-Request-Id").unwrap();
    assert!(id.is_ascii() && !id.contains("id"), "{id}");
    behind
        .wait_line(|l| crate::util::request_id_of(l) == Some(id.as_str()))
        .expect("the sink logged the relay's id");
}

#[test]
fn content_length_takes_leading_zeros_and_whitespace_around_it() {
    let (sink, relay, behind) = tiers();
    let headers = [
        "Content-Length:  5 ",
        "Content-Length:\t5\t",
        "Content-Length: 0005",
        "Content-Length: 005",
    ];
    for header in headers {
        for tier in [&sink, &relay] {
            let raw = format!(
                "POST /sink.php HTTP/1.1\r\nHost: t\r\n{header}\r\nConnection: close\r\n\r\nhello"
            );
            let answer = send(tier.addr, &raw);
            assert_eq!(
                answer.status, 200,
                "{header:?} to {}: {}",
                tier.name, answer.body
            );
        }
    }
    // The body is the 5 bytes announced, each time, in both sinks.
    // (The record lines may reach the test's reader after the replies.)
    for tier in [&sink, &behind] {
        let hello = |l: &str| crate::util::message_of(l) == "hello";
        let logged = tier.wait_lines(headers.len(), hello).unwrap_or_default();
        assert_eq!(logged.len(), headers.len(), "{}", tier.output());
    }
    // Zero is no body at all: the empty message is refused as such.
    let raw =
        "POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 00\r\nConnection: close\r\n\r\n";
    let answer = send(sink.addr, raw);
    assert_eq!(
        (answer.status, answer.body.starts_with("empty message")),
        (400, true),
        "{}",
        answer.body
    );
}

#[test]
fn absolute_form_targets_are_served_unless_they_carry_userinfo() {
    let (sink, _relay, _behind) = tiers();
    for target in [
        "https://sink-svc/sink.php",
        "HTTP://sink-svc:8080/sink.php",
        "https://h?x=1",
    ] {
        let raw = format!("POST {target} HTTP/1.1\r\nHost: sink-svc\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
        assert_eq!(send(sink.addr, &raw).status, 200, "{target}");
    }
    let raw = "POST http://user:pass@sink-svc/sink.php HTTP/1.1\r\nHost: sink-svc\r\nContent-Length: 5\r\n\r\nhello";
    let answer = send(sink.addr, raw);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("userinfo"), "{}", answer.body);
}

#[test]
fn chunk_extensions_must_have_a_name_and_close_their_quotes() {
    let (sink, _relay, _behind) = tiers();
    let post = |chunks: &str| {
        format!("POST /sink.php HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunks}")
    };
    for good in [
        "5;name=value\r\nhello\r\n0\r\n\r\n",
        "5;a=\"q u\\\"o\";b\r\nhello\r\n0\r\n\r\n",
    ] {
        let answer = send(sink.addr, &post(good));
        assert_eq!(answer.status, 200, "{good:?}: {}", answer.body);
    }
    for bad in [
        "2;\r\nhe\r\n0\r\n\r\n",
        "2;n=\"unclosed\r\nhe\r\n0\r\n\r\n",
        "2;=v\r\nhe\r\n0\r\n\r\n",
        // RFC 9112 §7.1: whitespace after the size only before a `;`.
        "2 \r\nhe\r\n0\r\n\r\n",
        "2\t\r\nhe\r\n0\r\n\r\n",
    ] {
        let answer = send(sink.addr, &post(bad));
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.body);
    }
    assert!(
        !sink.output().contains(" : he\t") && !sink.lines().iter().any(|l| l.ends_with(" : he")),
        "{}",
        sink.output()
    );
}

/// The whole of what the server sends on `raw`'s connection, until it closes.
fn everything_sent(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(raw).unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn a_refused_head_has_no_body_and_connect_is_not_implemented() {
    let (sink, _relay, _behind) = tiers();
    let long = format!("HEAD /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    for (raw, status) in [
        (
            &b"HEAD /sink.php HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n"[..],
            "400",
        ),
        // Refused before the request line parsed: too long, or an unknown version.
        (long.as_bytes(), "414"),
        (b"HEAD /sink.php HTTP/1.2\r\nHost: t\r\n\r\n", "505"),
    ] {
        let all = everything_sent(sink.addr, raw);
        let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{all}");
        assert!(head.contains("Content-Length: "), "{all}");
        assert_eq!(body, "", "a HEAD answer carries no body: {all:?}");
    }
    let answer = send(
        sink.addr,
        "CONNECT sink-svc:443 HTTP/1.1\r\nHost: sink-svc:443\r\n\r\n",
    );
    assert_eq!(answer.status, 501, "{}", answer.body);
}

#[test]
fn transfer_codings_are_one_list_however_many_lines_they_take() {
    let (sink, _relay, _behind) = tiers();
    let post = |te: &str, body: &str| {
        format!("POST /sink.php HTTP/1.1\r\nHost: t\r\n{te}\r\nConnection: close\r\n\r\n{body}")
    };
    let chunked = "5\r\nhello\r\n0\r\n\r\n";
    for (te, status) in [
        ("Transfer-Encoding: deflate, chunked", 501),
        (
            "Transfer-Encoding: deflate\r\nTransfer-Encoding: chunked",
            501,
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            400,
        ),
        ("Transfer-Encoding: ,chunked", 200),
        ("Transfer-Encoding: chunked,", 200),
    ] {
        let answer = send(sink.addr, &post(te, chunked));
        assert_eq!(answer.status, status, "{te:?}: {}", answer.body);
    }
}

#[test]
fn bytes_that_cannot_start_a_request_are_answered_at_once() {
    let (sink, _relay, _behind) = tiers();
    // The start of a TLS 1.2 ClientHello, sent to the HTTP port: no line feed will come.
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
    ];
    let started = Instant::now();
    let all = everything_sent(sink.addr, &hello);
    assert!(all.starts_with("HTTP/1.1 400 "), "{all:?}");
    // CLIENT_TIMEOUT is 10 s: the answer must not wait for it.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        started.elapsed()
    );
}

#[test]
fn an_http_1_0_client_is_not_sent_100_continue() {
    // RFC 9110 §10.1.1: a server must not send a 100 to an HTTP/1.0 client.
    let (sink, relay, _behind) = tiers();
    for tier in [&sink, &relay] {
        let all = everything_sent(
            tier.addr,
            b"POST /sink.php HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert!(
            all.starts_with("HTTP/1.1 200 OK\r\n"),
            "{}: {all}",
            tier.name
        );
        assert!(!all.contains(" 100 "), "{all}");
    }
}

#[test]
fn framing_is_judged_before_method_and_path() {
    // A broken body is 400 whatever the method and path (it was 405 or 200
    // when the route needed no body), and a body where none is expected is
    // read, so the connection stays.
    let (sink, relay, _behind) = tiers();
    let trailer = "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: \x01\r\n\r\n";
    let bad_size = "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n";
    for tier in [&sink, &relay] {
        for line in [
            "GET /sink.php",
            "DELETE /x",
            "GET /healthz",
            "POST /metrics",
            "POST /sink.php",
        ] {
            for framing in [trailer, bad_size] {
                let raw = format!("{line} HTTP/1.1\r\nHost: t\r\n{framing}");
                let answer = send(tier.addr, &raw);
                assert_eq!(
                    answer.status, 400,
                    "{}: {raw:?}: {}",
                    tier.name, answer.body
                );
            }
        }
        let mut stream = TcpStream::connect(tier.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
            .write_all(b"DELETE /x HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let first = crate::util::read_answer(&mut stream).unwrap();
        let second = crate::util::read_answer(&mut stream).unwrap();
        assert_eq!(
            (first.status, second.status, second.body.as_str()),
            (405, 200, "ok")
        );
    }
}
