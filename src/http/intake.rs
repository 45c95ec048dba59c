//! A message's way in: its body read whole, within `MAX_BODY_BYTES`, checked as text, with its request id.
//!
//! A relay or a sink reads a POSTed body before the message takes a slot (so
//! a slow upload never holds one), into a buffer its connection's thread
//! keeps, and the [`Message`] borrows body and request id from it: no
//! allocation per message. A body announced or found larger than the limit
//! is answered 413, an empty one or one that is not UTF-8 400, a body that
//! could not be read 400; a client that missed `CLIENT_TIMEOUT` gets no
//! answer (its connection is closed).

use std::cell::RefCell;
use std::io::Read;
use std::net::IpAddr;

use tiny_http::Request;

use crate::observe::trace::{TRACEPARENT, TRACESTATE};
use crate::record::message::{Message, Reply};

/// The request headers a message keeps, in the order `read_message` copies them.
const CARRIED: [&str; 5] = [
    crate::observe::request_id::HEADER,
    TRACEPARENT,
    TRACESTATE,
    crate::observe::fault::HEADER,
    crate::observe::via::HEADER,
];

/// Why a message's body gave no message: the intake's failure vocabulary
/// (the vendored server's own refusals, before a request reaches the tier,
/// are `tiny_http::Rejection`s).
pub enum BodyFailure {
    /// Answer this.
    Reply(Reply<'static>),
    /// The client missed `CLIENT_TIMEOUT`: close without an answer.
    TimedOut,
}

/// Runs `f` with a byte buffer kept per thread (a message's body and request
/// id go in it); a nested call gets a fresh one.
pub fn with_message_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            f(&mut buf)
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Reads a request's body whole into `buf`, within `max` bytes: the framing
/// of every request is checked this way before it is answered, whatever its
/// method and path (a broken chunked body is 400, not the 405 its method
/// would get).
pub fn read_body(request: &mut Request, max: usize, buf: &mut Vec<u8>) -> Result<(), BodyFailure> {
    let too_large = || Reply::text(413, format!("body larger than MAX_BODY_BYTES={max}"));
    let announced = request.body_length();
    if announced.is_some_and(|n| n > max) {
        return Err(BodyFailure::Reply(too_large()));
    }
    match request.as_reader().take(max as u64 + 1).read_to_end(buf) {
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(BodyFailure::TimedOut),
        Err(e) => {
            let text = format!("body could not be read: {e}");
            Err(BodyFailure::Reply(Reply::text(400, text)))
        }
        Ok(_) if buf.len() > max => Err(BodyFailure::Reply(too_large())),
        Ok(_) => Ok(()),
    }
}

/// The message a request carries: its body read whole into `buf`, within
/// `max` bytes (`MAX_BODY_BYTES`), as text, with the headers it carries on
/// (`X-Request-Id`, `traceparent`, `tracestate`, `X-Fault`, `Via`) copied
/// after it, and with `keep_path` the path (else the message's path is empty).
pub fn read_message<'b>(
    request: &mut Request,
    max: usize,
    keep_path: bool,
    buf: &'b mut Vec<u8>,
) -> Result<Message<'b>, BodyFailure> {
    read_body(request, max, buf)?;
    if buf.is_empty() {
        let reply = Reply::text(400, "empty message: send the text as the POST body");
        return Err(BodyFailure::Reply(reply));
    }
    // The headers the message needs, copied after the body when they are UTF-8.
    let body_len = buf.len();
    let mut ranges = [const { None }; CARRIED.len()];
    let values = request.headers().first_of(&CARRIED);
    for (range, value) in ranges.iter_mut().zip(values) {
        if let Some(value) = value.filter(|v| v.is_ascii() || std::str::from_utf8(v).is_ok()) {
            let start = buf.len() - body_len;
            buf.extend_from_slice(value);
            *range = Some(start..buf.len() - body_len);
        }
    }
    // The path, without the query, when a span will be named for it.
    let path_start = buf.len() - body_len;
    if keep_path {
        let url = request.url();
        buf.extend_from_slice(url.split('?').next().unwrap_or(url).as_bytes());
    }
    let path_range = path_start..buf.len() - body_len;
    let (body, headers) = buf.split_at(body_len);
    let Ok(body) = std::str::from_utf8(body) else {
        return Err(BodyFailure::Reply(Reply::text(
            400,
            "message is not valid UTF-8 text",
        )));
    };
    // Each piece is UTF-8, so all of them are, and each range falls on a
    // character boundary: checked once, sliced by range.
    let headers = std::str::from_utf8(headers).unwrap_or_default();
    let piece = |range: std::ops::Range<usize>| headers.get(range).unwrap_or_default();
    let [request_id, traceparent, tracestate, fault, via] = ranges.map(|r| r.map(piece));
    Ok(Message {
        peer: request
            .remote_addr()
            .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip().to_canonical()),
        body,
        request_id,
        traceparent,
        tracestate,
        fault,
        via,
        path: piece(path_range),
    })
}
