//! A response: status, headers and a body held in memory, sent with one write.
//!
//! three-tier patch: upstream streamed a generic reader, chose chunked coding
//! from the request's `TE` header, wrote the status line, each header and the
//! body in separate small writes, and formatted the `Date` header anew for
//! each response. Our bodies are small and always in memory, so a response is
//! serialized into the connection's own buffer (reused from one response to
//! the next) with a `Content-Length`, and written with a single `write`; the
//! date string is formatted once a second per thread. A [`Response`] holds
//! its header lines as built; [`crate::Request::respond_with`] writes the
//! application's headers straight into the buffer, under the same rules:
//! `Connection: close` may be set by the application (it means "close after
//! this response"); the other framing headers (`Transfer-Encoding`,
//! `Content-Length`, `Trailer`, `Upgrade`, other `Connection` values) are the
//! server's to write.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{Header, StatusCode};
use crate::parse;

/// An HTTP response to a [`crate::Request`].
#[derive(Debug, Clone)]
pub struct Response {
    status_code: StatusCode,
    /// The header lines set so far, as sent: `Name: value\r\n` each.
    head: Vec<u8>,
    /// Where in `head` the `Content-Type` line is, so a later one replaces it.
    content_type: Option<std::ops::Range<usize>>,
    has_date: bool,
    body: Vec<u8>,
    close: bool,
}

/// A header name or value that cannot be sent as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHeader;

impl Response {
    /// A 200 response with `data` as its body and no `Content-Type`.
    pub fn from_data(data: impl Into<Vec<u8>>) -> Response {
        Response {
            status_code: StatusCode(200),
            head: Vec::with_capacity(256),
            content_type: None,
            has_date: false,
            body: data.into(),
            close: false,
        }
    }

    /// A 200 `text/plain; charset=UTF-8` response.
    pub fn from_string(data: impl Into<String>) -> Response {
        let mut response = Response::from_data(data.into().into_bytes());
        let _ = response.add_header_text("Content-Type", "text/plain; charset=UTF-8");
        response
    }

    /// A response with `status_code` and no body.
    pub fn empty(status_code: impl Into<StatusCode>) -> Response {
        Response::from_data(Vec::new()).with_status_code(status_code)
    }

    /// The same response with another status.
    pub fn with_status_code(mut self, code: impl Into<StatusCode>) -> Response {
        self.status_code = code.into();
        self
    }

    /// The same response with one more header (see [`Response::add_header_text`]).
    pub fn with_header(mut self, header: impl Into<Header>) -> Response {
        self.add_header(header);
        self
    }

    /// Adds a header (see [`Response::add_header_text`]); one that cannot be sent is dropped.
    pub fn add_header(&mut self, header: impl Into<Header>) {
        let header = header.into();
        let _ = self.add_header_text(header.field.as_str().as_str(), header.value.as_str());
    }

    /// Adds a header. The name must be a token and the value visible ASCII,
    /// spaces and tabs: a line break would let a value inject headers.
    /// `Content-Type` replaces an earlier one; `Connection: close` closes the
    /// connection after this response; the framing headers the server writes
    /// itself (`Content-Length`, `Transfer-Encoding`, `Trailer`, `Upgrade`,
    /// other `Connection` values) are ignored.
    pub fn add_header_text(&mut self, name: &str, value: &str) -> Result<(), InvalidHeader> {
        match kind(name, value)? {
            Kind::Close => self.close = true,
            Kind::Server => {}
            Kind::ContentType => {
                if let Some(old) = self.content_type.take() {
                    self.head.drain(old);
                }
                let start = self.head.len();
                push_line(&mut self.head, name, value);
                self.content_type = Some(start..self.head.len());
            }
            Kind::Date => {
                self.has_date = true;
                push_line(&mut self.head, name, value);
            }
            Kind::Other => push_line(&mut self.head, name, value),
        }
        Ok(())
    }

    /// The status code.
    pub fn status_code(&self) -> StatusCode {
        self.status_code
    }

    /// Appends the bytes on the wire to `out` (see [`serialize_parts`]);
    /// returns whether the connection closes after it.
    pub(crate) fn serialize_into(
        &self,
        out: &mut Vec<u8>,
        head_only: bool,
        close: bool,
        is_1_0: bool,
    ) -> bool {
        let head = Head {
            status: self.status_code.0,
            head_only,
            close: close || self.close,
            is_1_0,
        };
        write_head(out, head.status, |out| {
            out.extend_from_slice(&self.head);
            self.has_date
        });
        finish(out, &head, &self.body)
    }

    /// The bytes on the wire, in a buffer of their own.
    #[cfg(test)]
    fn serialize(&self, head_only: bool, close: bool, keep_alive_1_0: bool) -> Vec<u8> {
        let mut out = Vec::new();
        self.serialize_into(&mut out, head_only, close, keep_alive_1_0);
        out
    }
}

/// What the server decides about a response besides its headers and body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head {
    /// The status code.
    pub status: u16,
    /// A `HEAD` request: the headers only.
    pub head_only: bool,
    /// The connection closes after this response.
    pub close: bool,
    /// The request was HTTP/1.0 (a kept connection says `keep-alive`).
    pub is_1_0: bool,
}

/// How a header the application sets is treated.
enum Kind {
    /// `Connection: close`: close after this response.
    Close,
    /// Framing the server writes itself: ignored.
    Server,
    ContentType,
    Date,
    Other,
}

/// Checks a header: the name must be a token and the value visible ASCII,
/// spaces and tabs (a line break would let a value inject headers).
fn kind(name: &str, value: &str) -> Result<Kind, InvalidHeader> {
    if !parse::is_token(name.as_bytes()) || !parse::is_field_value(value.as_bytes()) {
        return Err(InvalidHeader);
    }
    // Told apart by length first: most names are none of these (three-tier.5).
    let is = |other: &str| name.eq_ignore_ascii_case(other);
    Ok(match name.len() {
        10 if is("Connection") => {
            if value.eq_ignore_ascii_case("close") {
                Kind::Close
            } else {
                Kind::Server
            }
        }
        14 if is("Content-Length") => Kind::Server,
        17 if is("Transfer-Encoding") => Kind::Server,
        7 if is("Trailer") || is("Upgrade") => Kind::Server,
        12 if is("Content-Type") => Kind::ContentType,
        4 if is("Date") => Kind::Date,
        _ => Kind::Other,
    })
}

fn push_line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    out.push(b' ');
    out.extend_from_slice(value.as_bytes());
    crlf(out);
}

/// Ends a line. Two pushes, not a two-byte copy: a `memcpy` call for two
/// bytes costs musl's static build more than the bytes (three-tier.5).
fn crlf(out: &mut Vec<u8>) {
    out.push(b'\r');
    out.push(b'\n');
}

/// Appends a response of `head.status` with `headers` (checked as
/// [`Response::add_header_text`] checks them, one that cannot be sent going
/// out with an empty value; none replaced) and `body` to `out`; returns
/// whether the connection closes after it.
pub(crate) fn serialize_parts<'h>(
    out: &mut Vec<u8>,
    mut head: Head,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    body: &[u8],
) -> bool {
    write_head(out, head.status, |out| {
        let mut has_date = false;
        for (name, value) in headers {
            match kind(name, value) {
                Ok(Kind::Close) => head.close = true,
                Ok(Kind::Server) => {}
                Ok(kind) => {
                    has_date |= matches!(kind, Kind::Date);
                    push_line(out, name, value);
                }
                Err(InvalidHeader) if parse::is_token(name.as_bytes()) => push_line(out, name, ""),
                Err(InvalidHeader) => {}
            }
        }
        has_date
    });
    finish(out, &head, body)
}

/// The status line, the headers `headers` writes (it says whether one was
/// `Date`), and a `Date` if not.
fn write_head(out: &mut Vec<u8>, status: u16, headers: impl FnOnce(&mut Vec<u8>) -> bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_number(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(StatusCode(status).default_reason_phrase().as_bytes());
    crlf(out);
    if !headers(out) {
        out.extend_from_slice(b"Date: ");
        with_date(|date| out.extend_from_slice(date.as_bytes()));
        crlf(out);
    }
}

/// The framing headers, the blank line and the body; returns `head.close`.
fn finish(out: &mut Vec<u8>, head: &Head, body: &[u8]) -> bool {
    let code = head.status;
    let no_body = (100..200).contains(&code) || code == 204 || code == 304;
    if !(100..200).contains(&code) && code != 204 {
        out.extend_from_slice(b"Content-Length: ");
        push_number(out, body.len() as u64);
        crlf(out);
    }
    if head.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if head.is_1_0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    crlf(out);
    if !head.head_only && !no_body {
        out.extend_from_slice(body);
    }
    head.close
}

/// Appends `n` in decimal, without the formatting machinery.
fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

thread_local! {
    /// The current second and its HTTP date, per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the current time as an HTTP date, formatted at most once a second per thread.
fn with_date(f: impl FnOnce(&str)) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, httpdate::fmt_http_date(now));
        }
        f(&cached.1);
    });
}

#[cfg(test)]
mod test {
    use super::*;

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn one_buffer_with_length_date_and_connection() {
        let mut r = Response::from_string("hello").with_status_code(201);
        r.add_header(Header::from_bytes(&b"X-A"[..], &b"1"[..]).unwrap());
        r.add_header(Header::from_bytes(&b"Content-Length"[..], &b"99"[..]).unwrap());
        r.add_header(Header::from_bytes(&b"Transfer-Encoding"[..], &b"chunked"[..]).unwrap());
        let wire = text(r.serialize(false, true, false));
        assert!(wire.starts_with("HTTP/1.1 201 Created\r\nContent-Type: text/plain; charset=UTF-8\r\nX-A: 1\r\nDate: "), "{wire}");
        assert!(
            wire.ends_with(" GMT\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"),
            "{wire}"
        );
        assert!(!wire.contains("chunked"));
        let mut typed = Response::from_string("x");
        typed
            .add_header_text("content-type", "application/json")
            .unwrap();
        let wire = text(typed.serialize(false, false, false));
        assert_eq!(
            wire.matches("ontent-").count(),
            2,
            "one Content-Type, one Content-Length: {wire}"
        );
        assert!(
            wire.contains("content-type: application/json\r\n"),
            "{wire}"
        );
        let head = text(r.serialize(true, false, true));
        assert!(
            head.ends_with("Content-Length: 5\r\nConnection: keep-alive\r\n\r\n"),
            "{head}"
        );
    }

    #[test]
    fn header_injection_is_refused() {
        let mut r = Response::empty(200);
        assert_eq!(
            r.add_header_text("X-A", "a\r\nSet-Cookie: b"),
            Err(InvalidHeader)
        );
        assert_eq!(r.add_header_text("X A", "b"), Err(InvalidHeader));
        assert_eq!(r.add_header_text("X-A", "\u{e9}"), Err(InvalidHeader));
        r.add_header(Header::from_bytes(&b"X-B"[..], &b"1\r\nX-C: 2"[..]).unwrap());
        let wire = text(r.serialize(false, false, false));
        assert!(!wire.contains("X-B") && !wire.contains("X-C"), "{wire}");
    }

    #[test]
    fn connection_close_header_is_a_flag() {
        let mut r = Response::empty(204);
        let mut out = Vec::new();
        assert!(!r.serialize_into(&mut out, false, false, false));
        r.add_header(Header::from_bytes(&b"Connection"[..], &b"upgrade"[..]).unwrap());
        r.add_header(Header::from_bytes(&b"Connection"[..], &b"close"[..]).unwrap());
        out.clear();
        assert!(r.serialize_into(&mut out, false, false, false), "closes");
        let wire = text(out);
        assert!(
            !wire.contains("Content-Length") && !wire.contains("upgrade"),
            "{wire}"
        );
        assert!(
            wire.ends_with("\r\nConnection: close\r\n\r\n"),
            "one Connection line, the server's: {wire}"
        );
    }

    #[test]
    fn respond_with_writes_the_same_rules_without_a_response() {
        let mut out = b"old".to_vec();
        out.clear();
        let head = Head {
            status: 200,
            head_only: false,
            close: false,
            is_1_0: true,
        };
        let headers = [
            ("Content-Type", "text/plain"),
            ("X-Id", "a\r\nInjected: 1"),
            ("Bad Name", "x"),
            ("Content-Length", "99"),
            ("Date", "Tue, 01 Dec 2026 00:00:00 GMT"),
        ];
        assert!(!serialize_parts(&mut out, head, headers, b"ok"));
        assert_eq!(
            text(out),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Id: \r\nDate: Tue, 01 Dec 2026 00:00:00 GMT\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
        );
        let mut out = Vec::new();
        let head = Head {
            status: 503,
            head_only: true,
            close: false,
            is_1_0: false,
        };
        assert!(serialize_parts(
            &mut out,
            head,
            [("Connection", "close")],
            b"busy"
        ));
        assert!(
            text(out).ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"),
            "head only"
        );
    }
}
