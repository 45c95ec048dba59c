//! The rules of `parse.rs`, one test a rule.

use super::*;

fn headers(lines: &[&str]) -> Fields {
    let mut fields = Fields::default();
    for line in lines {
        let (name, value) = header_line(line.as_bytes()).unwrap();
        fields.push(name, value);
    }
    fields
}

fn info(version: HTTPVersion, lines: &[&str]) -> Result<HeadInfo, Rejection> {
    head_info(version, &headers(lines))
}

const V11: HTTPVersion = HTTPVersion(1, 1);

#[test]
fn request_lines() {
    let ok = request_line(b"POST /relay.php?x=1 HTTP/1.1").unwrap();
    assert_eq!(
        (ok.method, ok.target.as_ref()),
        (Method::Post, "/relay.php?x=1")
    );
    let abs = request_line(b"GET http://h:80 HTTP/1.0").unwrap();
    assert_eq!(abs.target, "/");
    assert_eq!(
        request_line(b"GET http://h?q HTTP/1.1").unwrap().target,
        "/?q"
    );
    for (line, status) in [
        (&b"GET / HTTP/2.0"[..], 505),
        (b"GET / HTTP/0.9", 400),
        (b"GET / HTTP/3.0", 505),
        (b"GET /", 400),
        (b"GET  / HTTP/1.1", 400),
        (b"GET / HTTP/1.1 ", 400),
        (b"GET /a\x00b HTTP/1.1", 400),
        (b"GE(T / HTTP/1.1", 400),
        (b"GET / http/1.1", 400),
        (b"GET relay HTTP/1.1", 400),
        (b"GET * HTTP/1.1", 400),
        (b"GET /\xff HTTP/1.1", 400),
        (b"GET http://user:pass@h/ HTTP/1.1", 400),
        (b"GET https://@h/ HTTP/1.1", 400),
        (b"CONNECT h:443 HTTP/1.1", 501),
    ] {
        assert_eq!(
            request_line(line).map(|_| ()).unwrap_err().status,
            status,
            "{line:?}"
        );
    }
    assert!(request_line(b"OPTIONS * HTTP/1.1").is_ok());
    let https = request_line(b"GET HTTPS://h:8443/sink.php?x HTTP/1.1").unwrap();
    assert_eq!(https.target, "/sink.php?x");
}

#[test]
fn bytes_that_cannot_start_a_request_are_known_at_once() {
    for ok in [
        &b""[..],
        b"\r",
        b"G",
        b"GET",
        b"GET /",
        b"M-SEARCH * HT",
        &[b'X'; 100],
    ] {
        assert!(could_be_request_line(ok), "{ok:?}");
    }
    // A TLS ClientHello, a leading space, a control byte, a bad method byte.
    for bad in [
        &b"\x16\x03\x01\x02\x00"[..],
        b" GET /",
        b"G\x00T",
        b"GE(T /",
        b"\r\r",
    ] {
        assert!(!could_be_request_line(bad), "{bad:?}");
    }
}

#[test]
fn line_endings() {
    assert_eq!(strip_cr(b"abc\r").unwrap(), b"abc");
    assert!(strip_cr(b"abc").is_err());
    assert!(strip_cr(b"a\rbc\r").is_err());
}

#[test]
fn header_lines() {
    let (name, value) = header_line(b"X-A:  b c \t").unwrap();
    assert_eq!((name, value), (&b"X-A"[..], &b"b c"[..]));
    for bad in [
        &b" folded: x"[..],
        b"X-A : b",
        b"X A: b",
        b"no colon",
        b"X-A: a\x00b",
        b"X-A: a\x7fb",
        b"X-A: a\x1bb",
        b": empty name",
    ] {
        assert_eq!(header_line(bad).unwrap_err().status, 400, "{bad:?}");
    }
    // obs-text (RFC 9110 §5.5) is carried as opaque bytes.
    let (_, value) = header_line("Test: D\u{fc}sseldorf \u{1f680}".as_bytes()).unwrap();
    assert_eq!(value, "D\u{fc}sseldorf \u{1f680}".as_bytes());
    assert_eq!(header_line(b"X-A: \xff\x80").unwrap().1, b"\xff\x80");
}

#[test]
fn content_length_is_digits_only() {
    for (good, n) in [
        ("Content-Length: 5", 5),
        ("content-length:5", 5),
        ("Content-Length: 0", 0),
        ("Content-Length: 0005", 5),
        ("Content-Length: 00", 0),
        ("Content-Length:  42 ", 42),
        ("Content-Length:\t7\t", 7),
    ] {
        let info = info(V11, &["Host: h", good]).unwrap();
        let want = if n == 0 {
            Framing::Empty
        } else {
            Framing::Length(n)
        };
        assert_eq!(info.framing, want, "{good}");
    }
    for bad in [
        "Content-Length: -1",
        "Content-Length: +5",
        "Content-Length: 1e3",
        "Content-Length: 5, 5",
        "Content-Length: 5 5",
        "Content-Length: ",
        "Content-Length: 0x5",
    ] {
        assert_eq!(
            header_line(bad.as_bytes()).unwrap_err().status,
            400,
            "{bad}"
        );
    }
    let huge = info(V11, &["Host: h", "Content-Length: 99999999999999999999"]).unwrap();
    assert_eq!(huge.framing, Framing::Length(u64::MAX));
}

#[test]
fn framing_rules() {
    assert_eq!(info(V11, &["Host: h"]).unwrap().framing, Framing::Empty);
    assert_eq!(
        info(V11, &["Host: h", "Content-Length: 0"])
            .unwrap()
            .framing,
        Framing::Empty
    );
    assert_eq!(
        info(V11, &["Host: h", "Transfer-Encoding: Chunked"])
            .unwrap()
            .framing,
        Framing::Chunked
    );
    for (lines, status) in [
        (
            &["Host: h", "Content-Length: 5", "Transfer-Encoding: chunked"][..],
            400,
        ),
        (&["Host: h", "Content-Length: 5", "Content-Length: 5"], 400),
        (&["Host: h", "Content-Length: 5", "Content-Length: 6"], 400),
        // A final coding other than chunked leaves the length unknown (RFC 9112 §6.3).
        (&["Host: h", "Transfer-Encoding: gzip"], 400),
        (&["Host: h", "Transfer-Encoding: chunked, gzip"], 400),
        // Codings before chunked are not supported (RFC 9112 §6.1), on one line or two.
        (&["Host: h", "Transfer-Encoding: gzip, chunked"], 501),
        (
            &[
                "Host: h",
                "Transfer-Encoding: deflate",
                "Transfer-Encoding: chunked",
            ],
            501,
        ),
        // chunked at most once, however it is written.
        (&["Host: h", "Transfer-Encoding: chunked, chunked"], 400),
        (
            &[
                "Host: h",
                "Transfer-Encoding: chunked",
                "Transfer-Encoding: chunked",
            ],
            400,
        ),
        (&["Host: h", "Transfer-Encoding: ,"], 400),
        (&["Content-Length: 1"], 400),
        (&["Host: a", "Host: b"], 400),
        (&["Host: a b"], 400),
        (&["Host: h", "Expect: something"], 417),
    ] {
        assert_eq!(info(V11, lines).unwrap_err().status, status, "{lines:?}");
    }
    for list in [
        "Transfer-Encoding: ,chunked",
        "Transfer-Encoding: chunked ,",
        "Transfer-Encoding: , chunked,,",
    ] {
        let info = info(V11, &["Host: h", list]).unwrap();
        assert_eq!(
            info.framing,
            Framing::Chunked,
            "empty list elements are ignored: {list}"
        );
    }
    let old = HTTPVersion(1, 0);
    assert_eq!(
        info(old, &["Transfer-Encoding: chunked"])
            .unwrap_err()
            .status,
        400
    );
    assert!(info(old, &[]).is_ok(), "HTTP/1.0 needs no Host");
}

#[test]
fn persistence_and_expect() {
    assert!(!info(V11, &["Host: h"]).unwrap().close);
    assert!(
        info(V11, &["Host: h", "Connection: keep-alive, Close"])
            .unwrap()
            .close
    );
    assert!(info(HTTPVersion(1, 0), &[]).unwrap().close);
    assert!(
        !info(HTTPVersion(1, 0), &["Connection: keep-alive"])
            .unwrap()
            .close
    );
    assert!(
        info(V11, &["Host: h", "Expect: 100-Continue"])
            .unwrap()
            .expect_continue
    );
    // RFC 9110 §10.1.1: an HTTP/1.0 client is not sent `100 Continue`.
    assert!(
        !info(HTTPVersion(1, 0), &["Expect: 100-continue"])
            .unwrap()
            .expect_continue
    );
    // An upgrade is not offered: the request is an ordinary one.
    let up = info(
        V11,
        &["Host: h", "Connection: upgrade", "Upgrade: websocket"],
    )
    .unwrap();
    assert_eq!((up.framing, up.close), (Framing::Empty, false));
}

#[test]
fn chunk_sizes() {
    assert_eq!(chunk_size(b"1a"), Ok(26));
    assert_eq!(chunk_size(b"0"), Ok(0));
    assert_eq!(chunk_size(b"000000000000000000000010"), Ok(16));
    assert_eq!(chunk_size(b"5;name=value"), Ok(5));
    assert_eq!(chunk_size(b"5 ; name"), Ok(5));
    assert_eq!(chunk_size(b"5;a=1;b ; c = \"q\\\"uo ted\""), Ok(5));
    assert_eq!(chunk_size(b"5;n=\"\""), Ok(5));
    for bad in [
        &b""[..],
        b"x",
        b"5x",
        b"-5",
        b"5;\x01",
        b"11111111111111111",
        // RFC 9112 §7.1.1: an extension needs a name; a quoted value must close.
        b"2;",
        b"2; ;x",
        b"2;=v",
        b"2;n=\"unclosed",
        b"2;n=",
        b"2;n=a b",
        b"2;n=\"a\x01\"",
        // Whitespace only before a `;`.
        b"a ",
        b"a\t",
        b"5;a ",
    ] {
        assert_eq!(chunk_size(bad).unwrap_err().status, 400, "{bad:?}");
    }
}

#[test]
fn the_quick_header_line_answers_as_strip_cr_then_header_line() {
    let mut gen = crate::scan::test::Bytes(0x2545_f491_4f6c_dd1d);
    let samples: [&[u8]; 6] = [
        b"Host: a\r",
        b"content-length: 0012 \r",
        b"Content-Length: 1x\r",
        b"X: \x80\xff\r",
        b" X: y\r",
        b"\r",
    ];
    let mut accepted = 0;
    for i in 0..200_000 {
        let mut line = match samples.get(i) {
            Some(sample) => sample.to_vec(),
            None => gen.line(),
        };
        // Most random lines end in CR and have a name and a colon, as real ones do.
        if i >= samples.len() && i % 4 != 0 {
            line.splice(0..0, b"X-Name: ".iter().copied());
            line.push(b'\r');
        }
        let slow = strip_cr(&line)
            .ok()
            .filter(|text| !text.is_empty())
            .and_then(|text| header_line(text).ok());
        assert_eq!(header_line_quick(&line), slow, "{line:?}");
        accepted += usize::from(slow.is_some());
    }
    assert!(
        accepted > 50_000,
        "only {accepted} lines were valid: the test says little"
    );
}
