//! A request as the handler sees it: its head, its body as a reader, and one way to answer.
//!
//! three-tier patch: the request belongs to the connection thread that parsed
//! it, which is also the thread that runs the handler, so the body is read
//! from the connection's own buffer and socket (under the connection's
//! deadline and the framing rules of `body.rs`) and the response is written
//! straight to the socket. Whether the connection stays open is decided here,
//! when the response is written: not if the client asked to close, the
//! application answered `Connection: close`, the server is stopping, or the
//! body was not read to its end (whatever is left of it could otherwise be
//! parsed as the next request). A request dropped without an answer gets 500.
//! The head's buffer and the response buffer belong to the connection and
//! are reused by its next request, so answering allocates nothing.

use std::fmt;
use std::io::{self, ErrorKind, Read};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{HTTPVersion, Method};
use crate::conn::{self, Conn, Head};
use crate::head::Fields;
use crate::parse::Framing;
use crate::response::{self, Response};

/// An HTTP request made by a client, to be answered once with [`Request::respond`].
pub struct Request {
    conn: Arc<Conn>,
    method: Method,
    version: HTTPVersion,
    fields: Fields,
    framing: Framing,
    client_close: bool,
    body: Body,
    answered: bool,
}

/// The request body: reads end at the body's proper end, and fail if the body
/// is cut off, breaks its framing or misses the connection's deadline.
pub struct Body {
    conn: Arc<Conn>,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut io = self.conn.lock();
        conn::send_continue(&mut io)?;
        let io = &mut *io;
        io.body.read(&mut io.input, &mut io.socket, buf)
    }
}

impl Request {
    pub(crate) fn new(conn: Arc<Conn>, head: Head) -> Request {
        Request {
            body: Body {
                conn: Arc::clone(&conn),
            },
            conn,
            method: head.method,
            version: head.version,
            fields: head.fields,
            framing: head.info.framing,
            client_close: head.info.close,
            answered: false,
        }
    }

    /// The method (`GET`, `POST`, …).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as a path and query (`/relay.php?x`).
    pub fn url(&self) -> &str {
        self.fields.target()
    }

    /// Every header field as sent.
    pub fn headers(&self) -> &Fields {
        &self.fields
    }

    /// The first value of header `name` (any case), as bytes.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name)
    }

    /// The HTTP version.
    pub fn http_version(&self) -> &HTTPVersion {
        &self.version
    }

    /// The announced body length: `Some(0)` without a body, `None` when
    /// chunked, saturated at `usize::MAX` when larger.
    pub fn body_length(&self) -> Option<usize> {
        match self.framing {
            Framing::Empty => Some(0),
            Framing::Length(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Framing::Chunked => None,
        }
    }

    /// The client's address.
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        Some(&self.conn.peer)
    }

    /// Whether the client has gone: its connection was reset, with nothing
    /// more buffered or waiting (a non-blocking peek). A client that stopped
    /// waiting for its answer resets, so its request need not be carried
    /// out: nobody would hear how it went. The end of the stream alone (a
    /// FIN) is not gone: a client may half-close after its last request and
    /// still read the answers (RFC 9112 §9.6 makes it no cancellation).
    ///
    /// A client known to have been there less than `seen_within` ago is
    /// taken to be there still, without asking the kernel: its previous
    /// answer on this connection was written (no reset had arrived) that
    /// recently. The first request on a connection is always asked about:
    /// the kernel completes a handshake before the server accepts it, so a
    /// client may have given up on a request that waited in the backlog.
    pub fn client_closed(&self, seen_within: Duration) -> bool {
        use rustix::net::{recv, RecvFlags};
        let io = self.conn.lock();
        // Pipelined bytes are buffered, or the registry shut down reading
        // itself (this request is then answered and the connection closes).
        if !io.input.is_empty() || io.evicted {
            return false;
        }
        if io.answered_at.is_some_and(|at| at.elapsed() < seen_within) {
            return false;
        }
        let mut byte = [0u8; 1];
        match recv(
            &*io.socket.stream,
            &mut byte,
            RecvFlags::PEEK | RecvFlags::DONTWAIT,
        ) {
            Ok(_) | Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => false,
            Err(_) => true,
        }
    }

    /// The body. The first read sends `100 Continue` if the client asked for it.
    pub fn as_reader(&mut self) -> &mut dyn Read {
        &mut self.body
    }

    /// Sends `response`, then keeps or closes the connection (see the module doc).
    pub fn respond(mut self, response: Response) -> io::Result<()> {
        self.answered = true;
        self.write(|out, head_only, close, is_1_0| {
            response.serialize_into(out, head_only, close, is_1_0)
        })
    }

    /// Sends a response of `status` with `headers` and `body`, written
    /// straight into the connection's buffer. Headers follow the rules of
    /// [`Response::add_header_text`], except that nothing is replaced; one
    /// that cannot be sent goes out with an empty value.
    pub fn respond_with<'h>(
        mut self,
        status: u16,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        body: &[u8],
    ) -> io::Result<()> {
        self.answered = true;
        self.write(|out, head_only, close, is_1_0| {
            let head = response::Head {
                status,
                head_only,
                close,
                is_1_0,
            };
            response::serialize_parts(out, head, headers, body)
        })
    }

    /// Closes the connection without answering: for a client that missed its
    /// deadline, which is no longer listening for an answer.
    pub fn drop_connection(mut self) {
        self.answered = true;
        self.conn.lock().answered = Some(true);
    }

    /// Serializes the response with `fill` into the connection's buffer and
    /// writes it. `fill` is given the buffer, whether to send the head only,
    /// whether the server closes the connection after this response, and
    /// whether the request is HTTP/1.0; it answers whether the response
    /// closes it (the application may ask to).
    fn write(
        &mut self,
        fill: impl FnOnce(&mut Vec<u8>, bool, bool, bool) -> bool,
    ) -> io::Result<()> {
        let mut io = self.conn.lock();
        io.continue_pending = false;
        let close = self.client_close || !io.body.is_done() || self.conn.closing() || io.evicted;
        let is_1_0 = self.version == HTTPVersion(1, 0);
        let head_only = self.method == Method::Head;
        let (close, result) = io.write_response(|out| fill(out, head_only, close, is_1_0));
        io.answered = Some(close || result.is_err());
        result.or_else(|e| match e.kind() {
            // The client left; nothing to report.
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => {
                Ok(())
            }
            _ => Err(e),
        })
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Request({} {} from {})",
            self.method,
            self.url(),
            self.conn.peer
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.answered {
            let _ = self.write(|out, head_only, close, is_1_0| {
                Response::empty(500).serialize_into(out, head_only, close, is_1_0)
            });
        }
        // The head's buffer goes back to the connection, for its next request.
        self.conn.lock().spare = std::mem::take(&mut self.fields);
    }
}
