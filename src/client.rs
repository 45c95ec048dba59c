//! One HTTP exchange with one address of the next tier: ureq, on connections reused a bounded number of times.
//!
//! ureq does the HTTP; this module gives it the parts that decide cost and
//! spreading, through ureq's `unversioned` API (hence the exact version pin in
//! Cargo.toml):
//!
//! - **A resolver that never starts a thread.** Addresses come to ureq as IP
//!   literals ([`crate::dns`] looks names up, off the message path); ureq's default
//!   resolver started a thread for every request that had a timeout.
//! - **Our own pool, with bounded reuse.** A connection carries at most
//!   `UPSTREAM_MAX_REQUESTS` requests and is not reused once `UPSTREAM_MAX_AGE`
//!   old. Behind a Kubernetes Service each new connection is sent to a random
//!   pod, so bounded reuse keeps spreading messages while saving most
//!   handshakes; unbounded reuse would pin a relay to one sink. The last request
//!   on a connection says `Connection: close`, so the server closes and its
//!   side keeps the TIME_WAIT. ureq's `Connector` is not told which request it
//!   connects for, so the connection chosen for a request (or "make a new one")
//!   is handed to it through a thread-local [`Handoff`]: ureq runs the whole
//!   exchange on the calling thread.
//! - **A transport with fewer syscalls.** The request head and body are sent
//!   with one write when the reply is awaited; socket timeouts come from the
//!   exchange's deadline, kept by the vendored server's `tiny_http::deadline`;
//!   a pooled connection's liveness is one non-blocking `recv(MSG_PEEK)`; the
//!   buffers are 16 KiB, not ureq's default 128 KiB zero-filled per connection.
//!
//! A request on a reused connection that the server had closed meanwhile (it
//! was idle too long, or the server began stopping) fails before any reply
//! arrives; it is sent once more on a new connection. An exchange given up at
//! its deadline resets its connection (`SO_LINGER` 0) instead of closing it:
//! the server takes a reset as "the client has gone" and does not carry the
//! message out, while a plain close (a FIN) may be a client that half-closed
//! after its request and still reads the answer.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tiny_http::deadline::{is_timeout, Direction, Timeouts};
use ureq::config::AutoHeaderValue;
use ureq::http::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use ureq::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};
use ureq::Agent;

/// Size of each connection's input and output buffer.
const BUFFER: usize = 16 * 1024;
/// Largest reply body read.
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// How far past its deadline a read or write may block.
const SLACK: Duration = Duration::from_millis(20);
/// The request header every message carries its id in.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const VIA: HeaderName = HeaderName::from_static("via");
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const AGENT: HeaderValue =
    HeaderValue::from_static(concat!("three-tier/", env!("CARGO_PKG_VERSION")));
const CLOSE: HeaderValue = HeaderValue::from_static("close");

/// How one exchange with one address ended, if not with a reply: the
/// client's failure vocabulary. [`crate::upstream`] turns these, over all the
/// addresses of a hop, into its `PostError`.
#[derive(Debug)]
pub enum ExchangeFailure {
    /// No connection could be made; nothing was sent.
    NotConnected(String),
    /// The deadline passed.
    TimedOut,
    /// The exchange failed after connecting; the message may have arrived.
    Failed(String),
}

/// One request to send.
pub struct Exchange<'a> {
    /// The address to send to.
    pub addr: SocketAddr,
    /// The URI (made once per URL: its host is the `Host`, not the address).
    pub uri: &'a Uri,
    /// The `Host` header.
    pub host: &'a HeaderValue,
    /// What is sent.
    pub payload: &'a Payload<'a>,
    /// When the whole exchange must be over.
    pub deadline: Instant,
}

/// A message as it goes to the next tier.
#[derive(Debug, Clone, Copy)]
pub struct Payload<'a> {
    /// The text/plain body.
    pub body: &'a str,
    /// Its `X-Request-Id`.
    pub request_id: &'a str,
    /// Its `traceparent` for this hop.
    pub traceparent: &'a str,
    /// The client's `tracestate`, passed on.
    pub tracestate: Option<&'a str>,
    /// An `X-Fault` header to send (see [`crate::fault`]).
    pub fault: Option<&'a str>,
    /// A `Via` header to send (a relay's, see [`crate::via`]).
    pub via: Option<&'a str>,
}

/// A reply as received.
#[derive(Debug)]
pub struct RawReply {
    /// The status code.
    pub status: u16,
    /// The headers, as ureq parsed them.
    pub headers: HeaderMap,
    /// The body, at most 64 KiB.
    pub body: Vec<u8>,
}

/// The HTTP client of one tier.
pub struct Client {
    agent: Agent,
    pool: Arc<Pool>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client(max_requests={})", self.pool.max_requests)
    }
}

impl Client {
    /// A client whose connections carry at most `max_requests` requests, are
    /// not reused after `max_age`, and of which at most `max_pooled` wait idle.
    pub fn new(max_requests: u32, max_age: Duration, max_pooled: usize) -> Client {
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            // Pooling is ours (see Pool); ureq drops every connection it is done with.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .input_buffer_size(BUFFER)
            .output_buffer_size(BUFFER)
            // Sent as constants with each request instead (no copy per request).
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .build();
        let pool = Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            max_requests,
            max_age,
            max_pooled,
        });
        let connector = PoolConnector {
            pool: Arc::clone(&pool),
        };
        Client {
            agent: Agent::with_parts(config, connector, IpResolver),
            pool,
        }
    }

    /// Sends `exchange` and reads the reply; a reused connection found closed is replaced once.
    pub fn post(&self, exchange: &Exchange) -> Result<RawReply, ExchangeFailure> {
        let lease = self.pool.take(exchange.addr);
        let reused = lease.is_some();
        match self.send(exchange, lease) {
            Err(ExchangeFailure::Failed(_)) | Err(ExchangeFailure::NotConnected(_))
                if reused && Instant::now() < exchange.deadline =>
            {
                self.send(exchange, None)
            }
            other => other,
        }
    }

    fn send(&self, exchange: &Exchange, lease: Option<Idle>) -> Result<RawReply, ExchangeFailure> {
        DONT_REUSE.with(|d| d.set(false));
        let uses = lease.as_ref().map_or(0, |idle| idle.uses);
        let mut request = self
            .agent
            .post(exchange.uri.clone())
            .header(HOST, exchange.host.clone())
            .header(CONTENT_TYPE, TEXT_PLAIN)
            .header(USER_AGENT, AGENT)
            .header(X_REQUEST_ID, exchange.payload.request_id)
            .header(TRACEPARENT, exchange.payload.traceparent);
        if let Some(state) = exchange.payload.tracestate {
            request = request.header(TRACESTATE, state);
        }
        if let Some(fault) = exchange.payload.fault {
            request = request.header(crate::fault::HEADER, fault);
        }
        if let Some(via) = exchange.payload.via {
            request = request.header(VIA, via);
        }
        if uses + 1 >= self.pool.max_requests {
            // The last request on this connection: the server closes it.
            request = request.header(CONNECTION, CLOSE);
        }
        HANDOFF.with(|a| {
            *a.borrow_mut() = Some(Handoff {
                lease,
                addr: exchange.addr,
                deadline: exchange.deadline,
            })
        });
        let sent = request.send(exchange.payload.body);
        HANDOFF.with(|a| a.borrow_mut().take());
        let response = sent.map_err(|e| classify(e, uses > 0))?;
        if response.status() == 503 {
            // Not reused: behind a Service the next connection may reach another pod.
            DONT_REUSE.with(|d| d.set(true));
        }
        let (parts, body) = response.into_parts();
        let body = body
            .into_with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()
            .map_err(|e| classify(e, false))?;
        Ok(RawReply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// Sorts a ureq error into what the caller may do next. On a `reused`
/// connection, a failure before the reply is reported as `Failed`, so that
/// [`Client::post`] tries a new connection.
fn classify(error: ureq::Error, reused: bool) -> ExchangeFailure {
    match &error {
        ureq::Error::Timeout(ureq::Timeout::Connect) => {
            ExchangeFailure::NotConnected("connect timed out".into())
        }
        ureq::Error::Timeout(_) => ExchangeFailure::TimedOut,
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => ExchangeFailure::TimedOut,
        ureq::Error::Io(e) if is_connect_failure(e) && !reused => {
            ExchangeFailure::NotConnected(e.to_string())
        }
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            ExchangeFailure::NotConnected(error.to_string())
        }
        _ => ExchangeFailure::Failed(error.to_string()),
    }
}

/// Errors that only `connect()` gives: the request was never sent.
fn is_connect_failure(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable
    )
}

thread_local! {
    /// The connection (or none: make one) and deadline for the exchange running on this thread.
    static HANDOFF: RefCell<Option<Handoff>> = const { RefCell::new(None) };
    /// Set when the exchange on this thread answered 503: its connection goes back to no pool.
    static DONT_REUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

struct Handoff {
    lease: Option<Idle>,
    addr: SocketAddr,
    deadline: Instant,
}

/// A connection waiting in the pool.
struct Idle {
    stream: TcpStream,
    addr: SocketAddr,
    /// Requests it has carried.
    uses: u32,
    opened: Instant,
    timeouts: Timeouts,
    /// ureq's buffers, allocated (and zero-filled) once per connection.
    buffers: LazyBuffers,
}

/// Idle connections, most recently used last.
struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_requests: u32,
    max_age: Duration,
    max_pooled: usize,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, Vec<Idle>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection to `addr` that is young enough and still open.
    fn take(&self, addr: SocketAddr) -> Option<Idle> {
        let now = Instant::now();
        loop {
            let idle = {
                let mut pool = self.lock();
                pool.retain(|c| now.duration_since(c.opened) < self.max_age);
                let i = pool.iter().rposition(|c| c.addr == addr)?;
                pool.remove(i)
            };
            if is_alive(&idle.stream) {
                return Some(idle);
            }
        }
    }

    /// Keeps `idle` for the next request if it may carry one.
    fn put(&self, idle: Idle) {
        if idle.uses >= self.max_requests
            || idle.opened.elapsed() >= self.max_age
            || self.max_pooled == 0
        {
            return;
        }
        let mut pool = self.lock();
        if pool.len() >= self.max_pooled {
            pool.remove(0);
        }
        pool.push(idle);
    }
}

/// An idle connection is usable if the server has neither closed it nor sent
/// anything unasked: one non-blocking peek, which would block.
fn is_alive(stream: &TcpStream) -> bool {
    use rustix::net::{recv, RecvFlags};
    let mut byte = [0u8; 1];
    matches!(
        recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Err(rustix::io::Errno::AGAIN)
    )
}

/// Resolves without a lookup and without a thread: the address is the one
/// [`crate::upstream`] chose for this exchange (the URI names the host only
/// for the `Host` header), which the connector takes from [`HANDOFF`].
#[derive(Debug)]
struct IpResolver;

impl Resolver for IpResolver {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let addr = HANDOFF.with(|a| a.borrow().as_ref().map(|a| a.addr));
        let mut addrs = self.empty();
        addrs.push(addr.ok_or(ureq::Error::HostNotFound)?);
        Ok(addrs)
    }
}

/// Hands ureq the connection chosen for this exchange, or opens a new one.
struct PoolConnector {
    pool: Arc<Pool>,
}

impl fmt::Debug for PoolConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolConnector")
    }
}

impl Connector for PoolConnector {
    type Out = OutboundConn;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> Result<Option<OutboundConn>, ureq::Error> {
        let attempt = HANDOFF.with(|a| {
            a.borrow_mut()
                .as_mut()
                .map(|a| (a.lease.take(), a.addr, a.deadline))
        });
        let Some((lease, addr, deadline)) = attempt else {
            return Err(ureq::Error::ConnectionFailed);
        };
        let idle = match lease {
            Some(idle) => idle,
            None => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(ureq::Timeout::Connect));
                }
                let stream = TcpStream::connect_timeout(&addr, left).map_err(|e| {
                    if e.kind() == io::ErrorKind::TimedOut {
                        ureq::Error::Timeout(ureq::Timeout::Connect)
                    } else {
                        ureq::Error::Io(e)
                    }
                })?;
                stream.set_nodelay(true)?;
                Idle {
                    stream,
                    addr,
                    uses: 0,
                    opened: Instant::now(),
                    timeouts: Timeouts::unknown(SLACK),
                    buffers: LazyBuffers::new(BUFFER, BUFFER),
                }
            }
        };
        Ok(Some(OutboundConn {
            idle: Some(Idle {
                uses: idle.uses + 1,
                ..idle
            }),
            pending: Vec::new(),
            spare: LazyBuffers::new(1, 1),
            deadline,
            reusable: false,
            abandoned: false,
            pool: Arc::clone(&self.pool),
        }))
    }
}

/// A connection in use by ureq; returned to the pool when ureq is done, if reusable.
struct OutboundConn {
    /// Always `Some` until dropped.
    idle: Option<Idle>,
    /// Output not sent yet: the head and body go out in one write.
    pending: Vec<u8>,
    /// Never used: stands in for the connection's buffers once it is gone
    /// (`LazyBuffers` allocates nothing until used).
    spare: LazyBuffers,
    deadline: Instant,
    /// ureq found the reply complete and the connection fit for another request.
    reusable: bool,
    /// The deadline passed during the exchange: the connection is reset when dropped.
    abandoned: bool,
    pool: Arc<Pool>,
}

impl fmt::Debug for OutboundConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.idle.as_ref().map(|i| i.addr);
        write!(f, "OutboundConn({addr:?})")
    }
}

fn timed_out() -> ureq::Error {
    ureq::Error::Timeout(ureq::Timeout::Global)
}

impl OutboundConn {
    /// The connection's buffers and the pending output, borrowed together.
    fn parts(&mut self) -> (&mut LazyBuffers, &mut Vec<u8>) {
        match self.idle.as_mut() {
            Some(idle) => (&mut idle.buffers, &mut self.pending),
            None => (&mut self.spare, &mut self.pending),
        }
    }

    fn idle(&mut self) -> Result<&mut Idle, ureq::Error> {
        self.idle.as_mut().ok_or(ureq::Error::ConnectionFailed)
    }

    /// Has the next call in `direction` end by the exchange's deadline;
    /// `Err` once the deadline has passed.
    fn arm(&mut self, direction: Direction) -> Result<(), ureq::Error> {
        let deadline = self.deadline;
        let idle = self.idle()?;
        let armed = idle.timeouts.arm(&idle.stream, deadline, direction);
        armed.map_err(|e| match e.kind() {
            io::ErrorKind::TimedOut => self.give_up(),
            _ => ureq::Error::Io(e),
        })
    }

    /// The deadline has passed: the exchange ends, and its connection is reset.
    fn give_up(&mut self) -> ureq::Error {
        self.abandoned = true;
        timed_out()
    }

    fn flush_pending(&mut self) -> Result<(), ureq::Error> {
        while !self.pending.is_empty() {
            self.arm(Direction::Write)?;
            let pending = std::mem::take(&mut self.pending);
            let written = (&self.idle()?.stream).write_all(&pending);
            match written {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {
                    // The option fired early or the deadline passed: check which.
                    self.idle()?.timeouts.fired(Direction::Write);
                    self.pending = pending;
                    if Instant::now() >= self.deadline {
                        return Err(self.give_up());
                    }
                    return Err(ureq::Error::Io(e));
                }
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
        Ok(())
    }
}

impl Transport for OutboundConn {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.parts().0
    }

    fn transmit_output(&mut self, amount: usize, _timeout: NextTimeout) -> Result<(), ureq::Error> {
        let (buffers, pending) = self.parts();
        pending.extend_from_slice(&buffers.output()[..amount]);
        if self.pending.len() >= BUFFER {
            self.flush_pending()?;
        }
        Ok(())
    }

    fn await_input(&mut self, _timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush_pending()?;
        loop {
            self.arm(Direction::Read)?;
            let Some(idle) = self.idle.as_mut() else {
                return Err(ureq::Error::ConnectionFailed);
            };
            let input = idle.buffers.input_append_buf();
            match (&idle.stream).read(input) {
                Ok(n) => {
                    idle.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if is_timeout(&e) => idle.timeouts.fired(Direction::Read),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
    }

    /// ureq asks this only when it is done with a complete reply and would pool
    /// the connection: that is the sign the connection may be reused.
    fn is_open(&mut self) -> bool {
        self.reusable = true;
        true
    }
}

impl Drop for OutboundConn {
    fn drop(&mut self) {
        let Some(idle) = self.idle.take() else {
            return;
        };
        let refused = DONT_REUSE.with(|d| d.replace(false));
        if self.abandoned {
            // A reset tells the server this client is gone (see the module doc).
            let _ = rustix::net::sockopt::set_socket_linger(&idle.stream, Some(Duration::ZERO));
        } else if self.reusable && self.pending.is_empty() && !refused {
            self.pool.put(idle);
        } else {
            let _ = idle.stream.shutdown(Shutdown::Both);
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;
    use std::thread;

    /// A server that answers every request on each connection it accepts and
    /// reports, per connection, how many requests it carried and whether the
    /// last one asked to close.
    fn counting_server(connections: usize) -> (SocketAddr, thread::JoinHandle<Vec<(usize, bool)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            (0..connections)
                .map(|_| {
                    let (stream, _) = listener.accept().unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut stream = stream;
                    let (mut served, mut closed) = (0, false);
                    loop {
                        let mut length = 0;
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).unwrap();
                            let lower = header.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap();
                            }
                            closed |= lower == "connection: close\r\n";
                            if header == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).unwrap();
                        served += 1;
                        let close = if closed { "Connection: close\r\n" } else { "" };
                        write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{close}\r\nok"
                        )
                        .unwrap();
                        if closed {
                            break;
                        }
                    }
                    (served, closed)
                })
                .collect()
        });
        (addr, handle)
    }

    fn exchange(addr: SocketAddr) -> Exchange<'static> {
        static URI: std::sync::OnceLock<Uri> = std::sync::OnceLock::new();
        static HOST: HeaderValue = HeaderValue::from_static("test");
        Exchange {
            addr,
            uri: URI.get_or_init(|| Uri::from_static("http://test/")),
            host: &HOST,
            payload: &Payload {
                body: "hello",
                request_id: "a-1",
                traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                tracestate: None,
                fault: None,
                via: None,
            },
            deadline: Instant::now() + Duration::from_secs(10),
        }
    }

    #[test]
    fn a_connection_carries_max_requests_then_closes_on_the_last() {
        let (addr, server) = counting_server(3);
        let client = Client::new(3, Duration::from_secs(60), 8);
        for _ in 0..7 {
            assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        }
        // 7 requests, 3 per connection: 3 + 3 + 1, and the first two were told to close.
        drop(client);
        assert_eq!(
            server.join().unwrap(),
            vec![(3, true), (3, true), (1, false)]
        );
    }

    #[test]
    fn one_request_per_connection_says_close_every_time() {
        let (addr, server) = counting_server(2);
        let client = Client::new(1, Duration::from_secs(60), 8);
        for _ in 0..2 {
            assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        }
        assert_eq!(server.join().unwrap(), vec![(1, true), (1, true)]);
    }

    #[test]
    fn an_old_connection_is_not_reused() {
        let (addr, server) = counting_server(2);
        let client = Client::new(100, Duration::from_millis(1), 8);
        assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        // Past max_age: pacing of the scenario, not a wait for the server.
        thread::sleep(Duration::from_millis(5));
        assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        drop(client);
        assert_eq!(server.join().unwrap(), vec![(1, false), (1, false)]);
    }

    #[test]
    fn a_pooled_connection_the_server_closed_is_replaced() {
        // The server answers one request per connection and then closes it
        // without saying so, as a server that times idle connections out does.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).unwrap();
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
                stream.shutdown(Shutdown::Both).unwrap();
            }
        });
        let client = Client::new(100, Duration::from_secs(60), 8);
        assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        server.join().unwrap();
    }
}
