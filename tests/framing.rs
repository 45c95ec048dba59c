//! Hostile framing on raw sockets: each case gets its status, its connection
//! closes, and a request smuggled behind it is never served or logged.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use crate::util::{closed_by_server, get, post, read_answer, TierProcess, PATIENCE};

/// A whole, valid request sent after each case: if it is ever served, the
/// case's framing was read the way a smuggler hoped.
const SMUGGLED: &str = "POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\nSMUGGLED";

/// (name, request head and body before the smuggled one, expected status)
fn cases() -> Vec<(&'static str, String, u16)> {
    let post = |headers: &str, body: &str| {
        format!("POST /sink.php HTTP/1.1\r\nHost: t\r\n{headers}\r\n{body}")
    };
    let mut cases = vec![
        (
            "Content-Length with Transfer-Encoding",
            post(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            400,
        ),
        (
            "Transfer-Encoding with Content-Length",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                "0\r\n\r\n",
            ),
            400,
        ),
        (
            "two different Content-Lengths",
            post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
            400,
        ),
        (
            "two equal Content-Lengths",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        (
            "Content-Length -1",
            post("Content-Length: -1\r\n", "hello"),
            400,
        ),
        (
            "Content-Length 1e3",
            post("Content-Length: 1e3\r\n", "hello"),
            400,
        ),
        (
            "Content-Length list",
            post("Content-Length: 5, 5\r\n", "hello"),
            400,
        ),
        (
            "Content-Length +5",
            post("Content-Length: +5\r\n", "hello"),
            400,
        ),
        (
            "Content-Length overflow",
            post("Content-Length: 99999999999999999999\r\n", "hello"),
            413,
        ),
        (
            // RFC 9112 §6.3: a final coding other than chunked leaves the length unknown.
            "Transfer-Encoding gzip",
            post("Transfer-Encoding: gzip\r\n", "hello"),
            400,
        ),
        (
            "Transfer-Encoding gzip, chunked",
            post(
                "Transfer-Encoding: gzip, chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            501,
        ),
        (
            "Transfer-Encoding twice",
            post(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            400,
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            "POST /sink.php HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .into(),
            400,
        ),
        (
            "chunk size not hex",
            post("Transfer-Encoding: chunked\r\n", "zz\r\nhello\r\n0\r\n\r\n"),
            400,
        ),
        (
            "chunk longer than its size",
            post(
                "Transfer-Encoding: chunked\r\n",
                "5\r\nhelloEXTRA\r\n0\r\n\r\n",
            ),
            400,
        ),
        (
            "chunk size line too long",
            post(
                "Transfer-Encoding: chunked\r\n",
                &format!("{}5\r\nhello\r\n0\r\n\r\n", "0".repeat(2000)),
            ),
            400,
        ),
        (
            "malformed trailer",
            post(
                "Transfer-Encoding: chunked\r\n",
                "5\r\nhello\r\n0\r\nno colon here\r\n\r\n",
            ),
            400,
        ),
        (
            "no Host in HTTP/1.1",
            "POST /sink.php HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".into(),
            400,
        ),
        (
            "two Hosts",
            post("Host: u\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        (
            "NUL in a header value",
            post("X-A: a\0b\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        (
            "lone CR in a header value",
            post("X-A: a\rb\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        (
            "control character in a header name",
            post("X\x01A: b\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        (
            "space before the colon",
            post("Content-Length : 5\r\n", "hello"),
            400,
        ),
        (
            "folded header",
            post("X-A: a\r\n  b\r\nContent-Length: 5\r\n", "hello"),
            400,
        ),
        (
            "bare LF line ends",
            "POST /sink.php HTTP/1.1\nHost: t\nContent-Length: 5\n\nhello".into(),
            400,
        ),
        (
            "HTTP/2.0",
            "POST /sink.php HTTP/2.0\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".into(),
            505,
        ),
        ("HTTP/0.9 request line", "GET /sink.php\r\n".into(), 400),
        (
            "HTTP/0.9 version",
            "GET /sink.php HTTP/0.9\r\n\r\n".into(),
            400,
        ),
        (
            "unknown Expect",
            post("Expect: 200-ok\r\nContent-Length: 5\r\n", "hello"),
            417,
        ),
        (
            "request line over 8 KiB",
            format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9 * 1024)),
            414,
        ),
        (
            "header line over 8 KiB",
            post(&format!("X-Long: {}\r\n", "a".repeat(9 * 1024)), ""),
            431,
        ),
        (
            "headers over 16 KiB in all",
            post(
                &format!("X-A: {0}\r\nX-B: {0}\r\nX-C: {0}\r\n", "a".repeat(6 * 1024)),
                "",
            ),
            431,
        ),
        (
            "over 100 header lines",
            post(&"X-A: b\r\n".repeat(101), ""),
            431,
        ),
    ];
    // HEAD, GET and friends go through the same parser; one bad one of each kind.
    cases.push((
        "NUL in the request target",
        "GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n".into(),
        400,
    ));
    cases
}

/// Sends every case to `tier` on a connection of its own; each must get its
/// status and then see its connection closed.
fn every_case_gets_its_status_and_a_close(tier: &TierProcess) {
    for (name, raw, status) in cases() {
        let mut stream = TcpStream::connect(tier.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        // The smuggled request may be refused by a server that already closed.
        let _ = stream.write_all(SMUGGLED.as_bytes());
        let answer = read_answer(&mut stream)
            .unwrap_or_else(|e| panic!("{name}: no answer ({e})\n{}", tier.output()));
        assert_eq!(answer.status, status, "{name}: {}", answer.body);
        assert_eq!(
            answer.header("Connection").as_deref(),
            Some("close"),
            "{name}"
        );
        assert!(
            closed_by_server(&mut stream, PATIENCE),
            "{name}: the connection stayed open"
        );
    }
}

/// After a sentinel message is logged (all earlier connections are closed, so
/// anything they smuggled would be logged before it), no log holds `SMUGGLED`.
fn nothing_smuggled_was_served(entry: &TierProcess, logs: &[&TierProcess], sink: &TierProcess) {
    assert_eq!(
        post(entry.addr, "/sink.php", "sentinel").unwrap().status,
        200
    );
    // Each tier on the way logged the sentinel after anything smuggled.
    for tier in logs.iter().chain([&sink]) {
        tier.wait_line(|l| l.contains("sentinel"))
            .unwrap_or_else(|| panic!("{} never logged the sentinel", tier.name));
    }
    for tier in logs {
        let smuggled = tier.matching(|l| l.contains("SMUGGLED"));
        assert!(smuggled.is_empty(), "{} served {smuggled:?}", tier.name);
    }
}

#[test]
fn sink_refuses_every_framing_case_and_serves_nothing_behind_it() {
    let sink = TierProcess::start("sink", "sink", &[]);
    every_case_gets_its_status_and_a_close(&sink);
    nothing_smuggled_was_served(&sink, &[&sink], &sink);
    assert_eq!(
        sink.matching(|l| l.starts_with("From ")).len(),
        1,
        "only the sentinel was logged\n{}",
        sink.output()
    );
}

#[test]
fn relay_refuses_every_framing_case_and_sends_the_sink_nothing() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink.url("/sink.php"))]);
    every_case_gets_its_status_and_a_close(&relay);
    nothing_smuggled_was_served(&relay, &[&relay, &sink], &sink);
    // One message reached the relay (the sentinel), and the sink got exactly it.
    assert_eq!(
        relay
            .matching(|l| crate::util::record(l, crate::util::Verb::Relaying).is_some())
            .len(),
        1
    );
    assert_eq!(sink.matching(|l| l.starts_with("From ")).len(), 1);
}

#[test]
fn a_cut_off_body_is_never_a_message() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let cut = [
        format!(
            "POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n{}",
            "x".repeat(1000)
        ),
        "POST /sink.php HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nhalf a ch"
            .to_string(),
        "POST /sink.php HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
            .to_string(),
    ];
    for raw in &cut {
        let mut stream = TcpStream::connect(sink.addr).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        // The client is done sending; it can still read the answer.
        stream.shutdown(Shutdown::Write).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let answer = read_answer(&mut stream).unwrap();
        assert_eq!(answer.status, 400, "{raw:.60}: {}", answer.body);
    }
    nothing_smuggled_was_served(&sink, &[&sink], &sink);
    assert_eq!(
        sink.matching(|l| l.starts_with("From ")).len(),
        1,
        "only the sentinel"
    );
}

#[test]
fn a_ten_megabyte_chunk_size_line_is_refused_in_bounded_memory() {
    let _alone = crate::util::heavy_load();
    let sink = TierProcess::start("sink", "sink", &[]);
    let mut stream = TcpStream::connect(sink.addr).unwrap();
    stream
        .write_all(b"POST /sink.php HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    // 10 MB of '0' and no CR, from another thread: the server answers (and
    // stops reading) long before the client is done writing.
    let feeder = thread::spawn(move || {
        let zeros = vec![b'0'; 64 * 1024];
        for _ in 0..160 {
            if writer.write_all(&zeros).is_err() {
                break;
            }
        }
    });
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let answer = read_answer(&mut stream).unwrap();
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.body.contains("chunk-size line too long"),
        "{}",
        answer.body
    );
    drop(stream);
    feeder.join().unwrap();
    let peak = sink.status("VmHWM");
    assert!(peak < 16 * 1024, "the sink peaked at {peak} kB");
}

#[test]
fn an_upgrade_is_not_granted_and_the_body_is_framed_as_usual() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let raw = "POST /sink.php HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 5\r\n\r\nhello\
               POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nworld";
    let mut stream = TcpStream::connect(sink.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    for _ in 0..2 {
        assert_eq!(read_answer(&mut stream).unwrap().status, 200);
    }
    let logged = sink.wait_lines(2, |l| l.starts_with("From ")).unwrap();
    assert!(
        logged[0].contains(" : hello\t") && logged[1].contains(" : world\t"),
        "{logged:?}"
    );
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let mut stream = TcpStream::connect(sink.addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
        .write_all(b"POST /sink.php HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").unwrap();
    assert_eq!(read_answer(&mut stream).unwrap().status, 200);
}

#[test]
fn a_sink_status_the_relay_cannot_pass_on_is_answered_502() {
    for (status_line, extra) in [
        ("999 Odd", ""),
        ("302 Found", "Location: http://elsewhere/\r\n"),
        (
            "101 Switching Protocols",
            "Upgrade: x\r\nConnection: upgrade\r\n",
        ),
    ] {
        let fake = TcpListener::bind("127.0.0.1:0").unwrap();
        let sink_url = format!("http://{}/sink.php", fake.local_addr().unwrap());
        let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink_url)]);
        let server = thread::spawn(move || {
            let (mut s, _) = fake.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).unwrap();
            let reply = format!("HTTP/1.1 {status_line}\r\n{extra}Content-Length: 2\r\n\r\nno");
            s.write_all(reply.as_bytes()).unwrap();
        });
        let answer = post(relay.addr, "/relay.php", "hello").unwrap();
        assert_eq!(
            answer.status, 502,
            "sink answered {status_line}: {}",
            answer.body
        );
        server.join().unwrap();
    }
}

#[test]
fn a_long_request_line_gets_its_414_while_the_client_is_still_sending() {
    // The status must reach a client that keeps sending: the server reads and
    // discards for a while before it closes, instead of resetting the connection.
    let sink = TierProcess::start("sink", "sink", &[]);
    let mut stream = TcpStream::connect(sink.addr).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || {
        let line = format!(
            "GET /{} HTTP/1.1\r\nHost: t\r\n\r\n",
            "a".repeat(100 * 1024)
        );
        let _ = writer.write_all(line.as_bytes());
    });
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let answer = read_answer(&mut stream).unwrap();
    assert_eq!(answer.status, 414);
    sending.join().unwrap();
    assert!(closed_by_server(&mut stream, Duration::from_secs(5)));
    assert_eq!(get(sink.addr, "/healthz").unwrap().status, 200);
}
