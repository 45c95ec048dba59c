//! A response: status, headers and a body held in memory, sent with one write.
//!
//! three-tier patch: upstream streamed a generic reader, chose chunked coding
//! from the request's `TE` header, wrote the status line, each header and the
//! body in separate small writes, and formatted the `Date` header anew for
//! each response. Our bodies are small and always in memory, so a response is
//! one buffer with a `Content-Length`, written with a single `write`, and the
//! date string is formatted once a second per thread. `Connection: close` may
//! be set by the application (it means "close after this response"); the
//! other framing headers (`Transfer-Encoding`, `Content-Length`, `Trailer`,
//! `Upgrade`, other `Connection` values) are the server's to write.

use std::cell::RefCell;
use std::io::Write;
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
        if !parse::is_token(name.as_bytes()) || !parse::is_field_value(value.as_bytes()) {
            return Err(InvalidHeader);
        }
        let is = |other: &str| name.eq_ignore_ascii_case(other);
        if is("Connection") {
            self.close |= value.eq_ignore_ascii_case("close");
            return Ok(());
        }
        if is("Content-Length") || is("Transfer-Encoding") || is("Trailer") || is("Upgrade") {
            return Ok(());
        }
        if is("Content-Type") {
            if let Some(old) = self.content_type.take() {
                self.head.drain(old);
            }
            let start = self.head.len();
            self.push_line(name, value);
            self.content_type = Some(start..self.head.len());
            return Ok(());
        }
        self.has_date |= is("Date");
        self.push_line(name, value);
        Ok(())
    }

    fn push_line(&mut self, name: &str, value: &str) {
        self.head.extend_from_slice(name.as_bytes());
        self.head.extend_from_slice(b": ");
        self.head.extend_from_slice(value.as_bytes());
        self.head.extend_from_slice(b"\r\n");
    }

    /// The status code.
    pub fn status_code(&self) -> StatusCode {
        self.status_code
    }

    /// Whether the application asked to close the connection after this response.
    pub(crate) fn wants_close(&self) -> bool {
        self.close
    }

    /// The bytes on the wire: status line, headers, then the body unless `head_only`.
    pub(crate) fn serialize(&self, head_only: bool, close: bool, keep_alive_1_0: bool) -> Vec<u8> {
        let code = self.status_code.0;
        let no_body = (100..200).contains(&code) || code == 204 || code == 304;
        let mut out = Vec::with_capacity(128 + self.head.len() + self.body.len());
        let _ = write!(
            out,
            "HTTP/1.1 {code} {}\r\n",
            self.status_code.default_reason_phrase()
        );
        if !self.has_date {
            out.extend_from_slice(b"Date: ");
            with_date(|date| out.extend_from_slice(date.as_bytes()));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(&self.head);
        if !(100..200).contains(&code) && code != 204 {
            let _ = write!(out, "Content-Length: {}\r\n", self.body.len());
        }
        if close {
            out.extend_from_slice(b"Connection: close\r\n");
        } else if keep_alive_1_0 {
            out.extend_from_slice(b"Connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only && !no_body {
            out.extend_from_slice(&self.body);
        }
        out
    }
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
        assert!(wire.starts_with("HTTP/1.1 201 Created\r\nDate: "), "{wire}");
        assert!(wire.ends_with(
            "\r\nContent-Type: text/plain; charset=UTF-8\r\nX-A: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
        ), "{wire}");
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
        assert!(!r.wants_close());
        r.add_header(Header::from_bytes(&b"Connection"[..], &b"close"[..]).unwrap());
        r.add_header(Header::from_bytes(&b"Connection"[..], &b"upgrade"[..]).unwrap());
        assert!(r.wants_close());
        let wire = text(r.serialize(false, false, false));
        assert!(
            !wire.contains("Content-Length") && !wire.contains("Connection"),
            "{wire}"
        );
    }
}
