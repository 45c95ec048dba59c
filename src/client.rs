//! One HTTP exchange with one address of the next tier, on connections reused a bounded number of times.
//!
//! The sender and the relay drive ureq's protocol core, ureq-proto
//! ([`proto`]: ureq 3's own call state machine, without its agent's run loop
//! and layers) over connections of their own pool ([`pool`]). The last
//! request on a connection says `Connection: close` (the server closes it and keeps the
//! TIME_WAIT), a reply of 503 is not followed by another request on its
//! connection (behind a Service the next may reach another pod), and a
//! request on a reused connection that the server had closed meanwhile (it
//! was idle too long, or the server began stopping) fails before any reply
//! arrives and is sent once more on a new connection. An exchange given up
//! at its deadline resets its connection: the server takes a reset as "the
//! client has gone" and does not carry the message out, while a plain close
//! (a FIN) may be a client that half-closed after its request and still
//! reads the answer.

mod pool;
mod proto;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ureq_proto::http::{HeaderMap, HeaderValue, Uri};

use pool::Pool;
// One connection and one request on it, for a caller with a server of its
// own (the span exporter): the pool's connection, ureq-proto's call.
pub use pool::Conn;
pub use proto::{call, Done};

/// Largest reply body read.
const MAX_REPLY_BYTES: u64 = 64 * 1024;

/// The header names and values every request carries, made once.
mod names {
    use ureq_proto::http::{HeaderName, HeaderValue};

    pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
    pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
    pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
    pub const X_FAULT: HeaderName = HeaderName::from_static("x-fault");
    pub const VIA: HeaderName = HeaderName::from_static("via");
    pub const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
    pub const AGENT: HeaderValue =
        HeaderValue::from_static(concat!("three-tier/", env!("CARGO_PKG_VERSION")));
    pub const CLOSE: HeaderValue = HeaderValue::from_static("close");
}

/// How one exchange with one address ended, if not with a reply: the
/// client's failure vocabulary. [`crate::next_hop::upstream`] turns these, over all the
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
    /// An `X-Fault` header to send (see [`crate::observe::fault`]).
    pub fault: Option<&'a str>,
    /// A `Via` header to send (a relay's, see [`crate::observe::via`]).
    pub via: Option<&'a str>,
    /// Told of each attempt the post makes (tracing, see [`crate::otlp`]).
    pub attempts: Option<&'a dyn AttemptHook>,
}

/// Told of each attempt a post makes, to one address: what tracing records.
pub trait AttemptHook {
    /// An attempt at `addr` of `url` starts; the `traceparent` to send with
    /// it instead of the payload's, if it has a span of its own.
    fn started(&self, url: &str, addr: SocketAddr) -> Option<String>;

    /// The attempt ended: with a status, or without one, for this reason.
    fn ended(&self, outcome: Result<u16, &str>);
}

impl fmt::Debug for dyn AttemptHook + '_ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttemptHook")
    }
}

/// A reply as received.
#[derive(Debug)]
pub struct RawReply {
    /// The status code.
    pub status: u16,
    /// The headers, as parsed.
    pub headers: HeaderMap,
    /// The body, at most 64 KiB.
    pub body: Vec<u8>,
}

/// The HTTP client of one tier.
pub struct Client {
    pool: Pool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client(max_requests={})", self.pool.max_requests)
    }
}

impl Client {
    /// A client whose connections carry at most `max_requests` requests,
    /// are not reused after `max_age`, and of which at most `max_pooled`
    /// wait idle.
    pub fn new(max_requests: u32, max_age: Duration, max_pooled: usize) -> Client {
        Client {
            pool: Pool::new(max_requests, max_age, max_pooled),
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

    /// One exchange on ureq-proto; the connection goes back to the pool, or is closed or reset.
    fn send(&self, exchange: &Exchange, lease: Option<Conn>) -> Result<RawReply, ExchangeFailure> {
        let mut conn = match lease {
            Some(conn) => conn,
            None => {
                Conn::connect(exchange.addr, exchange.deadline).map_err(|e| match e.kind() {
                    io::ErrorKind::TimedOut => {
                        ExchangeFailure::NotConnected("connect timed out".into())
                    }
                    _ => ExchangeFailure::NotConnected(e.to_string()),
                })?
            }
        };
        conn.uses += 1;
        let last = self.pool.is_last(&conn);
        match proto::send(&mut conn, exchange, last) {
            Ok(done) => {
                if done.reusable {
                    self.pool.put(conn);
                } else {
                    conn.close();
                }
                Ok(done.reply)
            }
            Err(ExchangeFailure::TimedOut) => {
                conn.reset();
                Err(ExchangeFailure::TimedOut)
            }
            Err(e) => {
                conn.close();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{Shutdown, TcpListener};
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
                attempts: None,
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
        // Reused at once, the connection is not peeked at: the request fails
        // before any reply and is sent again on a new connection.
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

    #[test]
    fn a_connection_idle_for_a_while_is_peeked_at_and_a_closed_one_not_written_to() {
        // The server answers on the first connection, then closes its side
        // (a FIN) and keeps reading it: a request written there would show.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            let mut buf = [0u8; 4096];
            let (mut first, _) = listener.accept().unwrap();
            let _ = first.read(&mut buf).unwrap();
            first.write_all(answer).unwrap();
            first.shutdown(Shutdown::Write).unwrap();
            let (mut second, _) = listener.accept().unwrap();
            let _ = second.read(&mut buf).unwrap();
            second.write_all(answer).unwrap();
            first
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            first.read(&mut buf).unwrap()
        });
        let client = Client::new(100, Duration::from_secs(60), 8);
        assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        // Idle past PEEK_AFTER: pacing of the scenario, not a wait for the server.
        thread::sleep(pool::PEEK_AFTER + Duration::from_millis(50));
        assert_eq!(client.post(&exchange(addr)).unwrap().status, 200);
        assert_eq!(
            server.join().unwrap(),
            0,
            "a request went to the closed connection"
        );
    }
}
