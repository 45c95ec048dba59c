//! One connection's life on its own thread: read a request, run the handler, repeat (three-tier patch).
//!
//! Upstream parsed requests on a connection thread, queued them for another
//! thread to handle, and ordered the responses through channels. Here the
//! thread that parsed a request also runs the handler on it and writes its
//! response, so a request never changes threads. The loop:
//!
//! 1. Wait for a request: idle in the registry while nothing is buffered, with
//!    the deadline `client_timeout` from the moment the wait began.
//! 2. Read its head under that deadline and the limits of `parse.rs`. A head
//!    that breaks a rule gets its status and the connection closes.
//! 3. Call the handler with the [`Request`]; it reads the body (same deadline)
//!    and responds.
//! 4. Keep the connection only if the response allowed it and the body was
//!    read to its proper end; otherwise close it, gracefully when input may
//!    be left unread (shut down writing, then read and discard for up to a
//!    second, so the client sees the status and not a reset).

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::body::BodyState;
use crate::common::{HTTPVersion, Method};
use crate::head::Fields;
use crate::parse::{self, HeadInfo, Rejection};
use crate::registry::Slot;
use crate::request::Request;
use crate::response::Response;
use crate::socket::{Input, LineError, Socket};
use crate::Shared;

/// How long a closing connection reads and discards what the client still sends.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// How much a closing connection reads and discards at most.
const LINGER_BYTES: usize = 256 * 1024;
/// Empty lines accepted before a request line (RFC 9112 §2.2 asks for at least one).
const EMPTY_LINES: usize = 4;

/// What a connection's thread and its current request share.
pub(crate) struct Conn {
    pub peer: SocketAddr,
    pub shared: Arc<Shared>,
    io: Mutex<Io>,
}

/// The connection's I/O state.
pub(crate) struct Io {
    pub socket: Socket,
    pub input: Input,
    /// The current request's body.
    pub body: BodyState,
    /// `100 Continue` is owed once the body is read.
    pub continue_pending: bool,
    /// `Some(close)` once the current request was answered (or dropped, `Some(true)`).
    pub answered: Option<bool>,
    /// The head buffer, between requests: the next head is parsed into it.
    pub spare: Fields,
    /// The output buffer: each response is serialized into it and written from it.
    pub out: Vec<u8>,
    /// The registry closed this connection while its thread was reading a
    /// request it had not yet seen: that one is answered, then it closes.
    pub evicted: bool,
    /// When the write of the last answer began, if it went through: the
    /// client had not reset its connection by then (see
    /// [`crate::Request::client_closed`]).
    pub answered_at: Option<Instant>,
}

impl Io {
    /// Serializes a response with `fill` into the connection's output buffer,
    /// emptied first, and writes it: the one way a response reaches the
    /// socket, so no response is ever written twice (three-tier.3: the refusal
    /// path appended to the previous response's bytes and sent them again).
    pub fn write_response<T>(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>) -> T,
    ) -> (T, io::Result<()>) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let filled = fill(&mut out);
        let began = Instant::now();
        let written = self.socket.write_all(&out);
        if written.is_ok() {
            self.answered_at = Some(began);
        }
        self.out = out;
        (filled, written)
    }
}

impl Conn {
    pub fn lock(&self) -> MutexGuard<'_, Io> {
        self.io.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the server has stopped accepting (every response then closes).
    pub fn closing(&self) -> bool {
        self.shared.closing.load(Ordering::SeqCst)
    }
}

/// A parsed request head.
pub(crate) struct Head {
    pub method: Method,
    pub version: HTTPVersion,
    /// The target and header fields.
    pub fields: Fields,
    pub info: HeadInfo,
}

/// What waiting for the next request gave.
enum Next {
    Request(Head),
    /// A rule was broken: answer this, then close. The request line, if it parsed.
    Reject(Rejection, Option<(Method, String)>),
    /// Nothing more will come: end of stream, closed by the registry, or an I/O error.
    Closed,
    /// `client_timeout` passed before a whole head arrived.
    TimedOut,
}

/// Removes the connection from the registry when its thread is done, however it ends.
pub(crate) struct Registered {
    pub shared: Arc<Shared>,
    pub slot: Arc<Slot>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.registry.remove(&self.slot);
    }
}

/// Serves one accepted connection until it closes.
pub(crate) fn serve(registered: Registered, peer: SocketAddr) {
    let shared = Arc::clone(&registered.shared);
    let timeout = shared.config.client_timeout;
    let socket = Socket::new(
        Arc::clone(&registered.slot.stream),
        Instant::now() + timeout,
        timeout,
    );
    let conn = Arc::new(Conn {
        peer,
        shared: Arc::clone(&shared),
        io: Mutex::new(Io {
            socket,
            input: Input::new(),
            body: BodyState::Done,
            continue_pending: false,
            answered: None,
            spare: Fields::default(),
            out: Vec::new(),
            evicted: false,
            answered_at: None,
        }),
    });
    loop {
        let next = next_request(&conn, &registered.slot);
        match next {
            Next::Request(head) => {
                if !handle(&conn, head) {
                    return;
                }
                conn.lock().socket.set_deadline(Instant::now() + timeout);
            }
            Next::Reject(rejection, line) => {
                let request = line.as_ref().map(|(m, t)| (m, t.as_str()));
                shared.handler.rejected(peer, request, rejection);
                let mut io = conn.lock();
                let response =
                    Response::from_string(rejection.reason).with_status_code(rejection.status);
                // A refused HEAD is answered with the headers only (RFC 9110
                // §9.3.2), also when its line is too long or its version unknown.
                let head_only = match &line {
                    Some((method, _)) => *method == Method::Head,
                    None => parse::is_head(io.input.data()),
                };
                let _ =
                    io.write_response(|out| response.serialize_into(out, head_only, true, false));
                close_gracefully(&mut io);
                return;
            }
            Next::TimedOut => {
                shared.timed_out.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Next::Closed => return,
        }
    }
}

/// Runs the handler on one request; returns whether the connection stays open.
fn handle(conn: &Arc<Conn>, head: Head) -> bool {
    {
        let mut io = conn.lock();
        io.body = BodyState::new(head.info.framing);
        io.continue_pending = head.info.expect_continue;
        io.answered = None;
    }
    conn.shared
        .handler
        .handle(Request::new(Arc::clone(conn), head));
    let mut io = conn.lock();
    if io.socket.timed_out {
        // A missed deadline, reading or writing: close without lingering.
        conn.shared.timed_out.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    let keep = io.answered == Some(false) && io.body.is_done() && !conn.closing() && !io.evicted;
    if !keep {
        if io.socket.write_failed {
            // The client is gone; lingering is for one that reads the answer.
        } else if io.body.is_done() && io.input.is_empty() {
            let _ = io.socket.stream.shutdown(Shutdown::Write);
        } else {
            close_gracefully(&mut io);
        }
        return false;
    }
    io.input.shrink();
    true
}

/// Waits for and reads the next request head.
fn next_request(conn: &Conn, slot: &Slot) -> Next {
    let mut io = conn.lock();
    let io = &mut *io;
    if io.input.is_empty() {
        slot.set_idle(&conn.shared.registry);
        // Checked after going idle: either this sees the flag, or close_idle sees us idle.
        if conn.closing() {
            return Next::Closed;
        }
        let first = io.input.fill(&mut io.socket);
        // Closed by the registry meanwhile: a request read just before is
        // still answered (the registry shut down reading only), then no more.
        io.evicted = !slot.set_busy();
        match first {
            Ok(0) => return Next::Closed,
            Ok(_) => {}
            Err(_) if io.socket.timed_out => return Next::TimedOut,
            Err(_) => return Next::Closed,
        }
    }
    read_head(io)
}

/// Maps a failure to read a line to what the connection does next.
fn line_failed(error: LineError, socket: &Socket, too_long: Rejection) -> Next {
    match error {
        LineError::TooLong => Next::Reject(too_long, None),
        LineError::Invalid => Next::Reject(parse::reject(400, "not an HTTP request"), None),
        LineError::Io(_) if socket.timed_out => Next::TimedOut,
        // A client that closes mid-request gets nothing: it can no longer read.
        LineError::Eof | LineError::Io(_) => Next::Closed,
    }
}

fn read_head(io: &mut Io) -> Next {
    let mut fields = std::mem::take(&mut io.spare);
    fields.clear();
    let (method, version) = match read_request_line(io, &mut fields) {
        Ok(line) => line,
        Err(next) => return next,
    };
    let with_line = |r: Rejection, fields: &Fields| {
        Next::Reject(r, Some((method.clone(), fields.target().to_string())))
    };
    let mut bytes = 0;
    loop {
        let len = match io.input.line(&mut io.socket, parse::MAX_HEADER_LINE) {
            Ok(len) => len,
            Err(e) => {
                let too_long = parse::reject(431, "header line too long");
                return match line_failed(e, &io.socket, too_long) {
                    Next::Reject(r, _) => with_line(r, &fields),
                    other => other,
                };
            }
        };
        bytes += len;
        if bytes > parse::MAX_HEADER_BYTES {
            return with_line(parse::reject(431, "header section too large"), &fields);
        }
        let more = header_line(&io.input.data()[..len - 1], &mut fields);
        io.input.consume(len);
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(r) => return with_line(r, &fields),
        }
    }
    match parse::head_info(version, &fields) {
        Ok(info) => Next::Request(Head {
            method,
            version,
            fields,
            info,
        }),
        Err(r) => with_line(r, &fields),
    }
}

/// Adds one header line (its LF removed) to `fields`; `Ok(false)` for the
/// empty line that ends the head.
fn header_line(line: &[u8], fields: &mut Fields) -> Result<bool, Rejection> {
    if fields.len() < parse::MAX_HEADERS {
        if let Some((name, value)) = parse::header_line_quick(line) {
            fields.push(name, value);
            return Ok(true);
        }
    }
    let text = parse::strip_cr(line)?;
    if text.is_empty() {
        return Ok(false);
    }
    if fields.len() >= parse::MAX_HEADERS {
        return Err(parse::reject(431, "too many header lines"));
    }
    let (name, value) = parse::header_line(text)?;
    fields.push(name, value);
    Ok(true)
}

/// Reads the request line, skipping a few empty lines before it; its target goes into `fields`.
fn read_request_line(io: &mut Io, fields: &mut Fields) -> Result<(Method, HTTPVersion), Next> {
    for _ in 0..=EMPTY_LINES {
        let len = io
            .input
            .line_checked(
                &mut io.socket,
                parse::MAX_REQUEST_LINE,
                parse::could_be_request_line,
            )
            .map_err(|e| line_failed(e, &io.socket, parse::reject(414, "request line too long")))?;
        let text =
            parse::strip_cr(&io.input.data()[..len - 1]).map_err(|r| Next::Reject(r, None))?;
        if text.is_empty() {
            io.input.consume(len);
            continue;
        }
        let line = parse::request_line(text).map_err(|r| Next::Reject(r, None))?;
        fields.set_target(line.target.as_bytes());
        let parsed = (line.method, line.version);
        io.input.consume(len);
        return Ok(parsed);
    }
    Err(Next::Reject(
        parse::reject(400, "empty lines instead of a request"),
        None,
    ))
}

/// Shuts down writing, then reads and discards what the client still sends
/// (bounded in time and bytes), so that the client reads the response before
/// the close instead of a reset.
fn close_gracefully(io: &mut Io) {
    let _ = io.socket.stream.shutdown(Shutdown::Write);
    io.socket.set_deadline(Instant::now() + LINGER_TIME);
    let mut discarded = io.input.data().len();
    io.input.consume(discarded);
    let mut buf = [0u8; 4096];
    while discarded < LINGER_BYTES {
        match io.socket.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => discarded += n,
        }
    }
}

/// Writes `100 Continue` if the request asked for it and it has not been sent.
pub(crate) fn send_continue(io: &mut Io) -> io::Result<()> {
    if std::mem::take(&mut io.continue_pending) {
        io.socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    Ok(())
}
