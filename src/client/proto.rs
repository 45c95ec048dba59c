//! One exchange on ureq's own protocol core, ureq-proto: its call state machine over a connection of ours.
//!
//! ureq 3 is built on ureq-proto, a sans-IO HTTP/1.1 client: it writes the
//! request into a buffer and parses the reply from one, and ureq adds the
//! agent, its configuration, a run loop and connection layers around it.
//! The tiers (and the span exporter) drive the call directly: the request
//! head and body are written into one buffer and sent
//! with one write, the reply head is parsed once (ureq-proto's parser, on
//! httparse), the body decoded whatever its framing, at most 64 KiB. Only the
//! pool ([`super::pool`]) and its deadlines are this project's. Buffers are
//! the thread's, kept between messages: a message allocates only what the
//! `http` types ureq-proto takes and gives do.

use std::cell::RefCell;
use std::io;
use std::time::Instant;

use ureq_proto::client::state::{RecvBody, RecvResponse, SendRequest};
use ureq_proto::client::{Call, RecvBodyResult, RecvResponseResult, SendRequestResult};
use ureq_proto::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use ureq_proto::http::{HeaderValue, Method, Request, Response};
use ureq_proto::BodyMode;

use super::names::{AGENT, CLOSE, TEXT_PLAIN, TRACEPARENT, TRACESTATE, VIA, X_FAULT, X_REQUEST_ID};
use super::pool::Conn;
use super::{Exchange, ExchangeFailure, RawReply, MAX_REPLY_BYTES};

/// A reply and whether its connection may carry another request.
pub struct Done {
    pub reply: RawReply,
    pub reusable: bool,
}

/// Sends `exchange` on `conn` (its last request when `last`: it says
/// `Connection: close`) and reads the reply. A failure leaves `conn` to be
/// dropped: reset after a timeout (see [`super::pool`]), else closed.
pub fn send(conn: &mut Conn, exchange: &Exchange, last: bool) -> Result<Done, ExchangeFailure> {
    let request = request(exchange, last)?;
    call(
        conn,
        request,
        exchange.payload.body.as_bytes(),
        exchange.deadline,
        last,
    )
}

/// Sends `request` with `body` on `conn` by `deadline` and reads the reply:
/// [`send`] for any request (the span exporter's too).
pub fn call(
    conn: &mut Conn,
    request: Request<()>,
    body: &[u8],
    deadline: Instant,
    last: bool,
) -> Result<Done, ExchangeFailure> {
    BUFFERS.with(|cell| {
        let mut buffers = cell.borrow_mut();
        let Buffers { out, input } = &mut *buffers;
        let call = Call::new(request).map_err(protocol)?;
        let call = write(conn, call.proceed(), body, deadline, out)?;
        let mut incoming = Incoming {
            input,
            start: 0,
            end: 0,
        };
        let (response, after) = read_head(conn, call, deadline, &mut incoming)?;
        let status = response.status().as_u16();
        let (body, reusable) = read_body(conn, after, deadline, &mut incoming)?;
        // A 503 says the server did not take the request: behind a Service
        // the next connection may reach another pod.
        let reusable = reusable && incoming.start == incoming.end && status != 503 && !last;
        let reply = RawReply {
            status,
            headers: response.into_parts().0.headers,
            body,
        };
        Ok(Done { reply, reusable })
    })
}

/// Size of each of the thread's buffers.
const BUFFER: usize = 16 * 1024;

/// The thread's buffers: the request goes out of `out`, the reply comes into `input`.
struct Buffers {
    out: Vec<u8>,
    input: Vec<u8>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers {
        out: vec![0; BUFFER],
        input: vec![0; BUFFER],
    });
}

/// The request ureq-proto writes: the message's headers, its length, and
/// `Connection: close` on a connection's `last` request.
///
/// Made in place: a `Request::builder()` moves all its parts at every header.
fn request(exchange: &Exchange, last: bool) -> Result<Request<()>, ExchangeFailure> {
    let payload = exchange.payload;
    let mut request = Request::new(());
    *request.method_mut() = Method::POST;
    *request.uri_mut() = exchange.uri.clone();
    let headers = request.headers_mut();
    headers.reserve(12);
    headers.insert(HOST, exchange.host.clone());
    headers.insert(CONTENT_TYPE, TEXT_PLAIN);
    headers.insert(USER_AGENT, AGENT);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(payload.body.len()));
    let given = [
        (X_REQUEST_ID, Some(payload.request_id)),
        (TRACEPARENT, Some(payload.traceparent)),
        (TRACESTATE, payload.tracestate),
        (X_FAULT, payload.fault),
        (VIA, payload.via),
    ];
    for (name, value) in given {
        let Some(value) = value else { continue };
        let value = HeaderValue::from_str(value)
            .map_err(|e| ExchangeFailure::Failed(format!("cannot send {name}: {value:?}: {e}")))?;
        headers.insert(name, value);
    }
    if last {
        headers.insert(CONNECTION, CLOSE);
    }
    Ok(request)
}

/// Writes the head and the body into `out`, sending it whenever it is full
/// and once at the end (one write for a message that fits).
fn write(
    conn: &mut Conn,
    mut call: Call<SendRequest>,
    mut body: &[u8],
    deadline: Instant,
    out: &mut [u8],
) -> Result<Call<RecvResponse>, ExchangeFailure> {
    let mut used = call.write(out).map_err(protocol)?;
    let mut call = match call.proceed().map_err(protocol)? {
        Some(SendRequestResult::SendBody(call)) => call,
        _ => return Err(protocol_text("the request has no body to send")),
    };
    while !call.can_proceed() {
        let (taken, written) = call.write(body, &mut out[used..]).map_err(protocol)?;
        body = &body[taken..];
        used += written;
        if taken == 0 && written == 0 {
            // The buffer is full.
            conn.write_all_by(&out[..used], deadline)
                .map_err(io_failure)?;
            used = 0;
        }
    }
    conn.write_all_by(&out[..used], deadline)
        .map_err(io_failure)?;
    call.proceed()
        .ok_or_else(|| protocol_text("the request was not sent whole"))
}

/// The reply as it arrives: `input[start..end]` has been read and not used yet.
struct Incoming<'a> {
    input: &'a mut [u8],
    start: usize,
    end: usize,
}

impl Incoming<'_> {
    fn data(&self) -> &[u8] {
        &self.input[self.start..self.end]
    }

    /// Reads more by the deadline, after what is left; `false` at the end of the stream.
    fn more(&mut self, conn: &mut Conn, deadline: Instant) -> Result<bool, ExchangeFailure> {
        if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.input.len() {
            return Err(protocol_text("a reply head or chunk line over 16 KiB"));
        }
        let read = conn.read_by(&mut self.input[self.end..], deadline);
        let n = read.map_err(io_failure)?;
        self.end += n;
        Ok(n > 0)
    }
}

/// What comes after the reply's head: its body, or nothing (and whether
/// the connection stays usable then).
type AfterHead = Result<Call<RecvBody>, bool>;

/// Reads until the reply's head parses.
fn read_head(
    conn: &mut Conn,
    mut call: Call<RecvResponse>,
    deadline: Instant,
    incoming: &mut Incoming,
) -> Result<(Response<()>, AfterHead), ExchangeFailure> {
    let response = loop {
        if !incoming.more(conn, deadline)? {
            return Err(ExchangeFailure::Failed(
                "the connection closed before the reply".into(),
            ));
        }
        if let (used, Some(response)) = call
            .try_response(incoming.data(), false)
            .map_err(protocol)?
        {
            incoming.start += used;
            break response;
        }
    };
    let after = match call.proceed() {
        Some(RecvResponseResult::RecvBody(call)) => Ok(call),
        Some(RecvResponseResult::Cleanup(call)) => Err(!call.must_close_connection()),
        // A redirect: the relay answers it 502 itself, and follows nothing.
        Some(RecvResponseResult::Redirect(_)) => Err(false),
        None => return Err(protocol_text("the reply head did not parse")),
    };
    Ok((response, after))
}

/// Decodes the reply's body, whatever its framing, at most
/// [`MAX_REPLY_BYTES`]; returns it and whether the connection may be reused.
fn read_body(
    conn: &mut Conn,
    after: AfterHead,
    deadline: Instant,
    incoming: &mut Incoming,
) -> Result<(Vec<u8>, bool), ExchangeFailure> {
    let mut call = match after {
        Ok(call) => call,
        Err(reusable) => return Ok((Vec::new(), reusable)),
    };
    let mut body = match call.body_mode() {
        BodyMode::LengthDelimited(n) => Vec::with_capacity(n.min(MAX_REPLY_BYTES) as usize),
        _ => Vec::new(),
    };
    let mut chunk = [0u8; 1024];
    while !call.can_proceed() {
        let (used, decoded) = call.read(incoming.data(), &mut chunk).map_err(protocol)?;
        incoming.start += used;
        body.extend_from_slice(&chunk[..decoded]);
        if body.len() as u64 > MAX_REPLY_BYTES {
            return Err(protocol_text("a reply body over 64 KiB"));
        }
        if used == 0 && decoded == 0 && !call.can_proceed() && !incoming.more(conn, deadline)? {
            if call.body_mode() == BodyMode::CloseDelimited {
                return Ok((body, false));
            }
            return Err(ExchangeFailure::Failed(
                "the connection closed before the reply's end".into(),
            ));
        }
    }
    let reusable = match call.proceed() {
        Some(RecvBodyResult::Cleanup(call)) => !call.must_close_connection(),
        _ => false,
    };
    Ok((body, reusable))
}

fn protocol(e: ureq_proto::Error) -> ExchangeFailure {
    ExchangeFailure::Failed(format!("http: {e}"))
}

fn protocol_text(text: &str) -> ExchangeFailure {
    ExchangeFailure::Failed(format!("http: {text}"))
}

/// A read or write that failed: by the deadline, or otherwise.
fn io_failure(e: io::Error) -> ExchangeFailure {
    match e.kind() {
        io::ErrorKind::TimedOut => ExchangeFailure::TimedOut,
        _ => ExchangeFailure::Failed(e.to_string()),
    }
}
