//! A small blocking HTTP/1.1 server: a thread per connection, handlers run on it.
//!
//! This is three-tier's patched copy of tiny_http 0.12.0 (see PATCHES.md). The
//! types an application uses keep their upstream names ([`Request`],
//! [`Response`], [`Header`], [`Method`], [`StatusCode`]), but the core is
//! rebuilt around one rule: a connection is owned by one thread, which reads
//! each request under a deadline and strict framing rules, runs the
//! application's [`Handler`] on it, writes the response and reads the next.
//!
//! ```no_run
//! use std::sync::Arc;
//! struct Hello;
//! impl tiny_http::Handler for Hello {
//!     fn handle(&self, request: tiny_http::Request) {
//!         let _ = request.respond(tiny_http::Response::from_string("hello"));
//!     }
//! }
//! let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! let server = tiny_http::Server::start(listener, tiny_http::Config::default(), Arc::new(Hello)).unwrap();
//! ```
//!
//! The accept thread admits a connection only while fewer than
//! [`Config::max_connections`] are open (else it closes the oldest idle one,
//! or answers 503), and hands it to a connection thread. Requests that break
//! the protocol are answered by the server itself (400, 414, 417, 431, 501,
//! 505) and reported through [`Handler::rejected`].
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
pub use head::Fields;
pub use parse::Rejection;
pub use request::{Body, Request};
pub use response::{InvalidHeader, Response};

mod body;
mod common;
mod conn;
pub mod deadline;
mod head;
mod parse;
mod registry;
mod request;
mod response;
mod scan;
mod socket;
mod threads;

use registry::{Admission, Registry};
use threads::Threads;

/// What the application does with requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. Runs on the connection's thread; the connection
    /// reads its next request only after this returns.
    fn handle(&self, request: Request);

    /// Called after the server itself answered a request that broke the
    /// protocol with `rejection`; `request` is its method and target if the
    /// request line could be parsed.
    fn rejected(&self, peer: SocketAddr, request: Option<(&Method, &str)>, rejection: Rejection) {
        let _ = (peer, request, rejection);
    }
}

/// How the server bounds connections and time.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most connections open at once. Defaults to 1024.
    pub max_connections: usize,
    /// A connection must deliver each whole request (line, headers and body)
    /// within this time from when it started waiting for it, and is closed
    /// when idle this long; writing a response may block at most this long.
    /// Defaults to 10 s.
    pub client_timeout: Duration,
    /// Stack size of connection threads, where handlers run. Defaults to 256 KiB.
    pub stack_size: usize,
    /// Name of connection threads (at most 15 bytes show in `/proc`). Defaults to `http-conn`.
    pub thread_name: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_connections: 1024,
            client_timeout: Duration::from_secs(10),
            stack_size: 256 * 1024,
            thread_name: "http-conn".to_string(),
        }
    }
}

/// Connections closed or refused, and errors of the server's own, since the last [`Server::take_counts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Closed because `client_timeout` passed (idle, or a request not delivered in time).
    pub timed_out: u64,
    /// Idle connections closed to admit a new one at `max_connections`.
    pub evicted: u64,
    /// New connections answered 503 at `max_connections`, none being idle,
    /// or because no thread could be started for them.
    pub refused: u64,
    /// `accept` calls that failed (each pauses the accept thread 10 ms).
    pub accept_failed: u64,
    /// Connection threads that could not be started (their connections are among `refused`).
    pub thread_failed: u64,
    /// The last of those errors, if any.
    pub last_error: Option<String>,
}

/// State shared by the accept thread and the connection threads.
pub(crate) struct Shared {
    config: Config,
    handler: Arc<dyn Handler>,
    registry: Registry,
    threads: Arc<Threads>,
    closing: AtomicBool,
    timed_out: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
    accept_failed: AtomicU64,
    thread_failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    /// Counts an error of the server's own in `counter`, keeping its text.
    fn failed(&self, counter: &AtomicU64, error: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }
}

/// A running server. Dropping it stops accepting; connections already open finish.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Starts accepting on `listener`, serving each connection with `handler`.
    pub fn start(
        listener: TcpListener,
        config: Config,
        handler: Arc<dyn Handler>,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            registry: Registry::new(config.max_connections),
            threads: Threads::new(
                config.thread_name.clone(),
                config.stack_size,
                Registry::most(config.max_connections),
            ),
            config,
            handler,
            closing: AtomicBool::new(false),
            timed_out: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            accept_failed: AtomicU64::new(0),
            thread_failed: AtomicU64::new(0),
            last_error: Mutex::new(None),
        });
        let inside = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept_loop(listener, inside))?;
        Ok(Server {
            shared,
            addr,
            accept: Mutex::new(Some(accept)),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes the listening socket; from now on every
    /// response closes its connection. Returns once the listener is closed.
    pub fn stop_accepting(&self) {
        if self.shared.closing.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept thread with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let woke = TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok();
        let accept = self.accept.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (true, Some(accept)) = (woke, accept) {
            let _ = accept.join();
        }
    }

    /// Closes every idle connection; returns how many.
    pub fn close_idle(&self) -> usize {
        self.shared.registry.close_idle()
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.registry.len()
    }

    /// Waits until every connection has closed (after [`Server::stop_accepting`]
    /// and [`Server::close_idle`], the busy ones finish their request and
    /// close), at most `timeout`; returns how many are still open.
    pub fn wait_closed(&self, timeout: Duration) -> usize {
        self.shared.registry.wait_empty(timeout)
    }

    /// Connections timed out, evicted and refused, and the server's own
    /// errors, since the last call: the server logs nothing itself.
    pub fn take_counts(&self) -> Counts {
        let shared = &self.shared;
        Counts {
            timed_out: shared.timed_out.swap(0, Ordering::Relaxed),
            evicted: shared.evicted.swap(0, Ordering::Relaxed),
            refused: shared.refused.swap(0, Ordering::Relaxed),
            accept_failed: shared.accept_failed.swap(0, Ordering::Relaxed),
            thread_failed: shared.thread_failed.swap(0, Ordering::Relaxed),
            last_error: shared
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.closing.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => admit(&shared, stream, peer),
            // Errors that pass (out of descriptors or memory, a client that
            // reset before accept) pause and retry; so does anything else,
            // since a server that stops accepting is worse than one that
            // retries (upstream ended the accept thread on any error).
            Err(e) => {
                shared.failed(&shared.accept_failed, format!("accept failed: {e}"));
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn admit(shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    if stream
        .set_write_timeout(Some(shared.config.client_timeout))
        .is_err()
    {
        return;
    }
    let (slot, evicted) = match shared.registry.admit(stream) {
        Admission::Admitted { slot, evicted } => (slot, evicted),
        Admission::Full(stream) => {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            refuse(&stream, "too many connections");
            return;
        }
    };
    if evicted {
        shared.evicted.fetch_add(1, Ordering::Relaxed);
    }
    let stream = Arc::clone(&slot.stream);
    let registered = conn::Registered {
        shared: Arc::clone(shared),
        slot,
    };
    if let Err((job, e)) = shared
        .threads
        .run(Box::new(move || conn::serve(registered, peer)))
    {
        shared.failed(
            &shared.thread_failed,
            format!("cannot start a connection thread: {e}"),
        );
        shared.refused.fetch_add(1, Ordering::Relaxed);
        refuse(&stream, "cannot start a connection thread");
        drop(job);
    }
}

/// Answers 503 and closes, without a thread: what is already buffered is
/// read first, so the close does not reset the connection under the answer.
fn refuse(stream: &TcpStream, reason: &'static str) {
    let mut response = Response::from_string(format!("busy: {reason}")).with_status_code(503);
    let _ = response.add_header_text("Retry-After", "1");
    let mut buf = [0u8; 4096];
    let _ = stream.set_nonblocking(true);
    let _ = io::Read::read(&mut &*stream, &mut buf);
    let mut out = Vec::new();
    response.serialize_into(&mut out, false, true, false);
    let _ = io::Write::write_all(&mut &*stream, &out);
    let _ = stream.shutdown(Shutdown::Write);
}
