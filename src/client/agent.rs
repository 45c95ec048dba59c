//! The sender's exchange: a ureq `Agent` plugged into the pool through ureq's `unversioned` API (hence the exact pin in Cargo.toml).
//!
//! ureq does the HTTP; this module gives it what decides cost and spreading:
//!
//! - **A resolver that never starts a thread.** Addresses come to ureq as IP
//!   literals ([`crate::dns`] looks names up, off the message path); ureq's
//!   default resolver started a thread for every request that had a timeout.
//! - **The pool's connections.** ureq's `Connector` is not told which
//!   request it connects for, so the connection chosen for a request (or
//!   "make a new one") is handed to it through a thread-local [`Handoff`]:
//!   ureq runs the whole exchange on the calling thread.
//! - **A transport with fewer syscalls.** The request head and body are sent
//!   with one write when the reply is awaited; socket timeouts come from the
//!   exchange's deadline.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tiny_http::deadline::{is_timeout, Direction};
use ureq::config::AutoHeaderValue;
use ureq::http::header::{CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};
use ureq::Agent;

use super::names::{AGENT, CLOSE, TEXT_PLAIN, TRACEPARENT, TRACESTATE, VIA, X_FAULT, X_REQUEST_ID};
use super::pool::{Conn, Pool, BUFFER};
use super::{Exchange, ExchangeFailure, RawReply, MAX_REPLY_BYTES};

/// A ureq agent whose connections are the pool's.
pub fn agent(pool: &Arc<Pool>) -> Agent {
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
    let connector = PoolConnector {
        pool: Arc::clone(pool),
    };
    Agent::with_parts(config, connector, IpResolver)
}

/// Sends `exchange` with `agent` on `lease` (or a new connection).
pub fn send(
    agent: &Agent,
    pool: &Pool,
    exchange: &Exchange,
    lease: Option<Conn>,
) -> Result<RawReply, ExchangeFailure> {
    DONT_REUSE.with(|d| d.set(false));
    let uses = lease.as_ref().map_or(0, |conn| conn.uses);
    let payload = exchange.payload;
    let mut request = agent
        .post(exchange.uri.clone())
        .header(HOST, exchange.host.clone())
        .header(CONTENT_TYPE, TEXT_PLAIN)
        .header(USER_AGENT, AGENT)
        .header(X_REQUEST_ID, payload.request_id)
        .header(TRACEPARENT, payload.traceparent);
    for (name, value) in [
        (TRACESTATE, payload.tracestate),
        (X_FAULT, payload.fault),
        (VIA, payload.via),
    ] {
        if let Some(value) = value {
            request = request.header(name, value);
        }
    }
    if uses + 1 >= pool.max_requests {
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
    let sent = request.send(payload.body);
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

/// Sorts a ureq error into what the caller may do next. On a `reused`
/// connection, a failure before the reply is reported as `Failed`, so that
/// the client tries a new connection.
fn classify(error: ureq::Error, reused: bool) -> ExchangeFailure {
    match &error {
        ureq::Error::Timeout(ureq::Timeout::Connect) => {
            ExchangeFailure::NotConnected("connect timed out".into())
        }
        ureq::Error::Timeout(_) => ExchangeFailure::TimedOut,
        ureq::Error::Io(e) if e.kind() == io::ErrorKind::TimedOut => ExchangeFailure::TimedOut,
        ureq::Error::Io(e) if super::is_connect_failure(e) && !reused => {
            ExchangeFailure::NotConnected(e.to_string())
        }
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            ExchangeFailure::NotConnected(error.to_string())
        }
        _ => ExchangeFailure::Failed(error.to_string()),
    }
}

thread_local! {
    /// The connection (or none: make one) and deadline for the exchange running on this thread.
    static HANDOFF: RefCell<Option<Handoff>> = const { RefCell::new(None) };
    /// Set when the exchange on this thread answered 503: its connection goes back to no pool.
    static DONT_REUSE: Cell<bool> = const { Cell::new(false) };
}

struct Handoff {
    lease: Option<Conn>,
    addr: SocketAddr,
    deadline: Instant,
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
        let mut conn = match lease {
            Some(conn) => conn,
            None => Conn::connect(addr, deadline).map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut => ureq::Error::Timeout(ureq::Timeout::Connect),
                _ => ureq::Error::Io(e),
            })?,
        };
        conn.uses += 1;
        Ok(Some(OutboundConn {
            conn: Some(conn),
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
    conn: Option<Conn>,
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
        let addr = self.conn.as_ref().map(|c| c.addr);
        write!(f, "OutboundConn({addr:?})")
    }
}

fn timed_out() -> ureq::Error {
    ureq::Error::Timeout(ureq::Timeout::Global)
}

impl OutboundConn {
    /// The connection's buffers and the pending output, borrowed together.
    fn parts(&mut self) -> (&mut LazyBuffers, &mut Vec<u8>) {
        match self.conn.as_mut() {
            Some(conn) => (&mut conn.buffers, &mut self.pending),
            None => (&mut self.spare, &mut self.pending),
        }
    }

    fn conn(&mut self) -> Result<&mut Conn, ureq::Error> {
        self.conn.as_mut().ok_or(ureq::Error::ConnectionFailed)
    }

    /// Has the next call in `direction` end by the exchange's deadline;
    /// `Err` once the deadline has passed.
    fn arm(&mut self, direction: Direction) -> Result<(), ureq::Error> {
        let deadline = self.deadline;
        let armed = self.conn()?.arm(deadline, direction);
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
            let written = (&self.conn()?.stream).write_all(&pending);
            match written {
                Ok(()) => {}
                Err(e) if is_timeout(&e) => {
                    // The option fired early or the deadline passed: check which.
                    self.conn()?.fired(Direction::Write);
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
            let Some(conn) = self.conn.as_mut() else {
                return Err(ureq::Error::ConnectionFailed);
            };
            let input = conn.buffers.input_append_buf();
            match (&conn.stream).read(input) {
                Ok(n) => {
                    conn.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if is_timeout(&e) => conn.fired(Direction::Read),
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
        let Some(conn) = self.conn.take() else {
            return;
        };
        let refused = DONT_REUSE.with(|d| d.replace(false));
        if self.abandoned {
            conn.reset();
        } else if self.reusable && self.pending.is_empty() && !refused {
            self.pool.put(conn);
        } else {
            conn.close();
        }
    }
}
