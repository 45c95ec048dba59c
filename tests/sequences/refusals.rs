//! Requests the server refuses: a good message with one rule broken, and the status that earns.
//!
//! Each kind of refusal the vendored server or the message path makes: a
//! control character or a bad name in a header, a `Content-Length` that is
//! not digits or is repeated or meets `Transfer-Encoding`, codings other than
//! `chunked`, a missing or repeated `Host`, too many or too long header lines,
//! a request line too long, an unknown version, a bare LF, a folded line, an
//! `Expect` other than `100-continue`, `CONNECT`, a broken chunk-size line, a
//! body over `MAX_BODY_BYTES`, a method that is not a token.

use super::grammar::{draft, Draft, Outcome, Part, Rng};

/// A message with one rule broken, and the status its refusal has.
pub fn refused(rng: &mut Rng, path: &str, id: &str) -> Part {
    let mut draft = draft(rng, path, id);
    draft.version = "HTTP/1.1";
    draft.closes = false;
    draft
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("connection") && !n.eq_ignore_ascii_case("host"));
    draft.headers.push(("Host".into(), b"t".to_vec()));
    let mut head = false;
    let broken = break_rule(rng, &mut draft, &mut head);
    let (mut bytes, _) = draft.write(rng);
    if let Some(rewrite) = broken.rewrite {
        bytes = rewrite(bytes);
    }
    Part {
        bytes,
        outcome: Outcome::Refused(Some(broken.status)),
        id: Some(id.to_string()),
        head,
        closes: true,
        may_continue: draft.expect,
    }
}

/// A rule broken: the status its refusal has, and a change to the
/// request's bytes when the rule is not one the draft can break.
struct Broken {
    status: u16,
    rewrite: Option<fn(Vec<u8>) -> Vec<u8>>,
}

fn status(status: u16) -> Broken {
    Broken {
        status,
        rewrite: None,
    }
}

/// Breaks one rule of `draft`; says which status that earns.
fn break_rule(rng: &mut Rng, draft: &mut Draft, head: &mut bool) -> Broken {
    let header = |name: &str, value: &[u8]| (name.to_string(), value.to_vec());
    match rng.below(20) {
        0 => {
            let c = rng.pick(&[0x01u8, 0x00, 0x0b, 0x1f, 0x7f]);
            draft.headers.push(header("X-Bad", &[b'a', c, b'b']));
            status(400)
        }
        1 => {
            draft.headers.push(header("X@Client", b"x"));
            status(400)
        }
        2 => {
            draft.chunked = false;
            let bad: &[u8] = rng.pick(&[&b"1x"[..], b"-5", b"5, 5", b"+5", b"0x5"]);
            draft.headers.push(header("Content-Length", bad));
            status(400)
        }
        3 => {
            draft.chunked = false;
            draft.headers.push(header("Content-Length", b"3"));
            status(400)
        }
        4 => {
            draft.chunked = true;
            draft.headers.push(header("Content-Length", b"3"));
            status(400)
        }
        5 => {
            draft.chunked = true;
            draft.headers.push(header("Transfer-Encoding", b"gzip"));
            status(501)
        }
        6 => {
            draft
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("host"));
            status(400)
        }
        7 => {
            draft.headers.push(header("Host", b"other"));
            status(400)
        }
        8 => {
            for i in 0..101 {
                draft.headers.push(header(&format!("X-{i}"), b"v"));
            }
            status(431)
        }
        9 => {
            draft.headers.push(header("X-Long", &[b'v'; 9000]));
            status(431)
        }
        10 => {
            *head = rng.chance(50);
            if *head {
                draft.method = "HEAD".into();
            }
            draft.target = format!("/{}", "a".repeat(9000));
            status(414)
        }
        11 => {
            *head = rng.chance(50);
            if *head {
                draft.method = "HEAD".into();
            }
            draft.version = rng.pick(&["HTTP/1.2", "HTTP/2.0"]);
            status(505)
        }
        12 => {
            draft.version = rng.pick(&["HTTP/0.9", "HTTP/1.1x", "http/1.1"]);
            status(400)
        }
        13 => Broken {
            status: 400,
            rewrite: Some(|b| replace_first_header_end(b, b"\n")),
        },
        14 => Broken {
            status: 400,
            rewrite: Some(|b| replace_first_header_end(b, b"\r\n folded\r\n")),
        },
        15 => {
            draft.headers.push(header("Expect", b"something-else"));
            status(417)
        }
        16 => {
            draft.method = "CONNECT".into();
            draft.target = "sink-svc:443".into();
            status(501)
        }
        17 => {
            // A chunk-size line the server reads only with the body.
            draft.chunked = false;
            draft.headers.push(header("Transfer-Encoding", b"chunked"));
            let line: &[u8] = rng.pick(&[&b"zz"[..], b"a ", b"5;", b"-1"]);
            draft.body = [line, &b"\r\n"[..], &draft.body, b"\r\n0\r\n\r\n"].concat();
            Broken {
                status: 400,
                rewrite: Some(strip_length),
            }
        }
        18 => {
            draft.chunked = false;
            draft.body = Vec::new();
            draft.headers.push(header("Content-Length", b"1000000"));
            Broken {
                status: 413,
                rewrite: Some(strip_length),
            }
        }
        _ => {
            draft.method = "PO(ST".into();
            status(400)
        }
    }
}

/// Replaces the `\r\n` that ends the first header line with `with`.
fn replace_first_header_end(bytes: Vec<u8>, with: &[u8]) -> Vec<u8> {
    let crlf = |from: usize| {
        from + bytes[from..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or(0)
    };
    let first_header = crlf(0) + 2;
    let end = crlf(first_header);
    [&bytes[..end], with, &bytes[end + 2..]].concat()
}

/// Removes the framing line `Draft::write` added last (the draft carries
/// its own framing header instead).
fn strip_length(bytes: Vec<u8>) -> Vec<u8> {
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(bytes.len());
    let start = bytes[..head_end]
        .windows(2)
        .rposition(|w| w == b"\r\n")
        .unwrap_or(0);
    [&bytes[..start], &bytes[head_end..]].concat()
}
