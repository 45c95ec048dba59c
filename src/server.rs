//! The HTTP server every tier runs: routing, limits, the message path and the stop sequence.
//!
//! The vendored tiny_http owns each connection on a thread of its own: it
//! reads a request under the connection's `CLIENT_TIMEOUT` deadline and strict
//! framing rules, answers protocol errors itself, and calls [`Service`] on the
//! same thread for everything else. So a message is parsed, handled and
//! answered on one thread. Here, each request is routed on its method and
//! path: probes, `/metrics`, 404 and 405 are answered at once; a message has
//! its body read (at most `MAX_BODY_BYTES`, under the same deadline) before it
//! takes one of `MAX_IN_FLIGHT` slots, so a slow upload never holds a slot;
//! then the tier's [`MessageHandler`] runs, a panic in it is answered 500, and
//! the reply is sent. Only [`answer`] calls `respond`. [`Server::run`] waits
//! for the stop, reporting connections closed by timeouts and limits once a
//! second (never a line per connection, which a flood would turn into a flood
//! of lines), then stops accepting, closes idle connections and waits for the
//! messages in flight.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Method, Rejection, Request};

use crate::config::ServerConfig;
use crate::in_flight::InFlight;
use crate::logger::{Event, Logger};
use crate::metrics::{ClosedReason, Gauges, Metrics};
use crate::shutdown::{Phase, Shutdown};
use crate::Error;

/// A message: a POST to any path but the reserved ones, its body read and checked.
///
/// It borrows its body and request id from a buffer the connection's thread
/// keeps, so a message costs no allocation of its own.
#[derive(Debug)]
pub struct Message<'a> {
    /// The client's IP address.
    pub peer: IpAddr,
    /// The body, valid UTF-8, never empty.
    pub body: &'a str,
    /// The `X-Request-Id` header as received (when it is UTF-8), unchecked.
    pub request_id: Option<&'a str>,
}

impl<'a> Message<'a> {
    /// The log event `name` for this message: the seed's line `<verb> <peer> at
    /// <date> : <message>`, and request `id`.
    pub fn event<'e>(&'e self, name: &'static str, verb: &'static str, id: &'e str) -> Event<'e> {
        Event::seed(name, verb, self.peer, self.body).request_id(id)
    }
}

/// What a tier answers; it may borrow from the message and the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// HTTP status code.
    pub status: u16,
    /// Plain-text body.
    pub body: Cow<'a, str>,
    /// Extra headers.
    pub headers: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Reply<'a> {
    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<Cow<'a, str>>) -> Reply<'a> {
        Reply {
            status,
            body: body.into(),
            headers: Vec::with_capacity(8),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<Cow<'a, str>>) -> Reply<'a> {
        self.headers.push((name, value.into()));
        self
    }
}

/// A tier's answer to a message.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles one message and says what to answer.
    fn handle<'a>(&'a self, message: &Message<'a>) -> Reply<'a>;
}

/// Pages a tier serves to `GET` besides the probes and `/metrics` (the sender's flow page).
pub trait Pages: Send + Sync + 'static {
    /// The page at `path` (without the query), or `None` for 404.
    fn page(&self, path: &str) -> Option<Reply<'_>>;
}

/// What a tier serves besides the probes and `/metrics`.
pub enum Serves {
    /// Messages, `POST`ed to any other path (relay, sink).
    Messages(Arc<dyn MessageHandler>),
    /// Pages, at the paths they know (sender).
    Pages(Arc<dyn Pages>),
}

/// Stack of the connection threads, where messages are handled (the relay's
/// ureq call included). A stack overflow aborts the whole tier, so the
/// deepest paths are measured on the debug build the tests use: a panicking
/// handler whose hook symbolises a backtrace (the unit test
/// `a_panicking_handler_is_answered_500_within_the_stack` below), and the
/// relay's ureq call (tests/limits.rs). Both must use less than half.
pub const CONNECTION_STACK: usize = 256 * 1024;
/// Resident bytes of the most-used connection thread stack of process `pid`
/// (0 if none is found), read from `/proc/<pid>/smaps`: a stack's pages stay
/// resident once touched, and a connection thread's stack is a writable
/// mapping [`CONNECTION_STACK`] long (glibc) or a few pages longer (musl keeps
/// thread-local storage in it). The tests use it to keep that size honest.
pub fn deepest_connection_stack(pid: u32) -> usize {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut size, mut deepest) = (0, 0);
    for line in smaps.lines() {
        let range = line.split_once(' ').and_then(|(r, _)| r.split_once('-'));
        if let Some((start, end)) = range {
            let address = |x| usize::from_str_radix(x, 16).ok();
            if let (Some(start), Some(end)) = (address(start), address(end)) {
                size = end.saturating_sub(start);
                continue;
            }
        }
        if let Some(rss) = line.strip_prefix("Rss:") {
            let kb = rss.trim().trim_end_matches(" kB").parse().unwrap_or(0);
            if (CONNECTION_STACK..CONNECTION_STACK + 32 * 1024).contains(&size) {
                deepest = deepest.max(kb * 1024);
            }
        }
    }
    deepest
}

/// How often connections closed by timeouts and limits are reported, and open ones counted.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Where a request goes, decided from its method and path alone; a message
/// or a page carries what serves it.
enum Route<'s, 'u> {
    Health,
    Ready,
    Metrics,
    ReservedWrongMethod,
    Message(&'s dyn MessageHandler),
    MessageWrongMethod,
    /// The pages, and the path without its query.
    Page(&'s dyn Pages, &'u str),
    NotFound,
}

fn route<'s, 'u>(method: &Method, url: &'u str, serves: &'s Serves) -> Route<'s, 'u> {
    let path = url.split('?').next().unwrap_or(url);
    let is_get = matches!(method, Method::Get | Method::Head);
    match (path, serves) {
        ("/healthz", _) if is_get => Route::Health,
        ("/readyz", _) if is_get => Route::Ready,
        ("/metrics", _) if is_get => Route::Metrics,
        ("/healthz" | "/readyz" | "/metrics", _) => Route::ReservedWrongMethod,
        (_, Serves::Messages(handler)) if *method == Method::Post => Route::Message(&**handler),
        (_, Serves::Messages(_)) => Route::MessageWrongMethod,
        (_, Serves::Pages(pages)) if is_get => Route::Page(&**pages, path),
        (_, Serves::Pages(_)) => Route::NotFound,
    }
}

/// The `path` label of `three_tier_http_requests_total` for a route.
fn path_class(route: &Route) -> &'static str {
    match route {
        Route::Health => "healthz",
        Route::Ready => "readyz",
        Route::Metrics => "metrics",
        Route::Message(_) | Route::MessageWrongMethod => "message",
        Route::Page(..) => "page",
        Route::ReservedWrongMethod | Route::NotFound => "other",
    }
}

/// A bound listener, ready to run.
pub struct Server {
    listener: TcpListener,
    config: ServerConfig,
    max_connections: usize,
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
}

impl Server {
    /// Binds `LISTEN_ADDR` and logs `listening on <addr>` as the process's
    /// first line; serves at most `max_connections` at once (`MAX_CONNECTIONS`
    /// as the descriptor budget allows, see [`crate::fds`]).
    pub fn bind(
        config: &ServerConfig,
        max_connections: usize,
        logger: Arc<Logger>,
        metrics: Arc<Metrics>,
    ) -> Result<Server, Error> {
        let bound =
            crate::listen::bind(config.listen_addr, config.listen_fallback).map_err(|source| {
                Error::Bind {
                    addr: config.listen_addr,
                    source,
                }
            })?;
        let listener = bound.listener;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        logger.event("listening", &format!("listening on {addr}"));
        if let Some(e) = bound.fell_back {
            let text = format!(
                "IPv6 is not available ({e}): listening on IPv4 only, not on the default {}",
                config.listen_addr
            );
            logger.log(&Event::new("limit", &text).warn());
        }
        Ok(Server {
            listener,
            config: config.clone(),
            max_connections,
            logger,
            metrics,
        })
    }

    /// Serves until `shutdown` reaches [`Phase::Stopping`], then finishes messages in flight.
    pub fn run(self, serves: Serves, shutdown: Arc<Shutdown>) -> Result<(), Error> {
        let service = Arc::new(Service {
            serves,
            max_body_bytes: self.config.max_body_bytes,
            max_in_flight: self.config.max_in_flight,
            in_flight: InFlight::new(self.config.max_in_flight),
            logger: Arc::clone(&self.logger),
            metrics: Arc::clone(&self.metrics),
            shutdown: Arc::clone(&shutdown),
        });
        let http_config = tiny_http::Config {
            max_connections: self.max_connections,
            client_timeout: self.config.client_timeout,
            stack_size: CONNECTION_STACK,
            thread_name: "http-conn".into(),
        };
        let http = tiny_http::Server::start(self.listener, http_config, service.clone())
            .map_err(|e| Error::io("starting the HTTP server", e))?;
        let report = Report {
            logger: &self.logger,
            metrics: &self.metrics,
            client_timeout: self.config.client_timeout,
            max_connections: self.max_connections,
        };
        while !shutdown.wait_for(Phase::Stopping, REPORT_EVERY) {
            report.connections(&http);
        }
        http.stop_accepting();
        let closed = http.close_idle();
        let waiting = service.in_flight.current();
        self.logger.event(
            "stopping",
            &format!(
                "stopped accepting: closed {closed} idle connection(s), waiting for {waiting} request(s) in flight"
            ),
        );
        // Requests still arriving (an upload) are read and answered too:
        // wait for every connection, not only for the messages being handled
        // (each of which is on a connection).
        let left = http.wait_closed(self.config.shutdown_timeout);
        report.connections(&http);
        if left > 0 {
            return Err(Error::ShutdownTimeout { in_flight: left });
        }
        self.logger.event("stopped", "stopped");
        Ok(())
    }
}

/// Reports connections closed by `CLIENT_TIMEOUT` and `MAX_CONNECTIONS`, as
/// counts, and how many are open.
struct Report<'a> {
    logger: &'a Logger,
    metrics: &'a Metrics,
    client_timeout: Duration,
    max_connections: usize,
}

impl Report<'_> {
    fn connections(&self, http: &tiny_http::Server) {
        self.metrics.connections_open(http.connections());
        let counts = http.take_counts();
        let timeout = self.client_timeout.as_millis();
        let max = self.max_connections;
        let lines = [
            (counts.timed_out, ClosedReason::Timeout, format!("closed {} connection(s) that missed CLIENT_TIMEOUT={timeout}ms (idle, a request not delivered, or a response not read)", counts.timed_out)),
            (counts.evicted, ClosedReason::Evicted, format!("closed {} idle connection(s) to admit new ones at MAX_CONNECTIONS={max}", counts.evicted)),
            (counts.refused, ClosedReason::Refused, format!("answered {} new connection(s) 503 at MAX_CONNECTIONS={max}, none idle", counts.refused)),
        ];
        for (n, reason, text) in lines {
            if n == 0 {
                continue;
            }
            self.metrics.connections_closed(reason, n);
            let event = Event::new("connections", &text);
            self.logger.log(&if reason == ClosedReason::Refused {
                event.warn()
            } else {
                event
            });
        }
    }
}

/// The application side of the server: what tiny_http calls for each request.
struct Service {
    serves: Serves,
    max_body_bytes: usize,
    max_in_flight: usize,
    in_flight: Arc<InFlight>,
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    shutdown: Arc<Shutdown>,
}

impl tiny_http::Handler for Service {
    fn handle(&self, request: Request) {
        let ready = self.shutdown.phase() == Phase::Running;
        let route = route(request.method(), request.url(), &self.serves);
        let class = path_class(&route);
        let reply = match route {
            Route::Health => Reply::text(200, "ok"),
            Route::Ready if !ready => Reply::text(503, "draining"),
            Route::Ready if !self.logger.ready() => {
                Reply::text(503, "the record cannot be written")
            }
            Route::Ready => Reply::text(200, "ready"),
            Route::Metrics => Reply::text(200, self.metrics.render(&self.gauges()))
                .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
            Route::ReservedWrongMethod => {
                Reply::text(405, "use GET").with_header("Allow", "GET, HEAD")
            }
            Route::NotFound => Reply::text(404, "not found"),
            Route::Page(pages, path) => pages
                .page(path)
                .unwrap_or_else(|| Reply::text(404, "not found")),
            Route::MessageWrongMethod => {
                Reply::text(405, "messages are sent with POST").with_header("Allow", "POST")
            }
            Route::Message(handler) => return self.message(request, handler, ready),
        };
        self.answer(request, &reply, class, ready);
    }

    fn rejected(&self, peer: SocketAddr, request: Option<(&Method, &str)>, rejection: Rejection) {
        self.metrics.request("other", rejection.status);
        let what = match request {
            Some((method, url)) => format!("{method} {}", crate::escape_message(url)),
            None => "a malformed request".to_string(),
        };
        let text = format!(
            "answered {what} from {}: {} {}",
            peer.ip().to_canonical(),
            rejection.status,
            rejection.reason
        );
        self.logger.log(
            &Event::new("rejected", &text)
                .warn()
                .status(rejection.status)
                .peer(peer.ip().to_canonical()),
        );
    }
}

impl Service {
    /// What the other parts of the tier count, for `/metrics`.
    fn gauges(&self) -> Gauges {
        Gauges {
            in_flight: self.in_flight.current(),
            record_failures: self.logger.record_failures(),
            stdout_dropped: self.logger.stdout_dropped(),
        }
    }
}

/// Why a message's body gave no message.
enum BodyFailure {
    /// Answer this.
    Reply(Reply<'static>),
    /// The client missed `CLIENT_TIMEOUT`: close without an answer.
    TimedOut,
}

/// Runs `f` with a byte buffer kept per thread (a message's body and request
/// id go in it); a nested call gets a fresh one.
fn with_message_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
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

impl Service {
    /// Reads, admits and handles a message, then answers it.
    fn message(&self, mut request: Request, handler: &dyn MessageHandler, ready: bool) {
        with_message_buffer(|buf| {
            let message = match self.read_message(&mut request, buf) {
                Ok(message) => message,
                Err(BodyFailure::Reply(reply)) => {
                    return self.answer(request, &reply, "message", ready)
                }
                Err(BodyFailure::TimedOut) => return request.drop_connection(),
            };
            // The slot is held until the answer is written: a stop waits for it.
            let Some(_slot) = self.in_flight.try_admit() else {
                let text = format!(
                    "busy: MAX_IN_FLIGHT={} requests in flight",
                    self.max_in_flight
                );
                let reply = Reply::text(503, text).with_header("Retry-After", "1");
                return self.answer(request, &reply, "message", ready);
            };
            if request.client_closed() {
                // Its client stopped waiting (a stall outlasted its deadline):
                // nobody would hear the answer, and a retry may be under way.
                let n = self.metrics.abandoned();
                if n.is_power_of_two() {
                    let text = format!("not handled: {n} message(s) so far whose client had closed its connection (it stopped waiting)");
                    self.logger.log(&Event::new("abandoned", &text).warn());
                }
                return request.drop_connection();
            }
            let handled = catch_unwind(AssertUnwindSafe(|| handler.handle(&message)));
            let reply =
                handled.unwrap_or_else(|_| Reply::text(500, "internal error: see the server log"));
            self.answer(request, &reply, "message", ready);
        })
    }

    /// The message a request carries: its body read whole into `buf`, within
    /// `MAX_BODY_BYTES`, as text, with its request id copied after it.
    fn read_message<'b>(
        &self,
        request: &mut Request,
        buf: &'b mut Vec<u8>,
    ) -> Result<Message<'b>, BodyFailure> {
        let max = self.max_body_bytes;
        let too_large = || Reply::text(413, format!("message larger than MAX_BODY_BYTES={max}"));
        let announced = request.body_length();
        if announced.is_some_and(|n| n > max) {
            return Err(BodyFailure::Reply(too_large()));
        }
        match request.as_reader().take(max as u64 + 1).read_to_end(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                return Err(BodyFailure::TimedOut)
            }
            Err(e) => {
                let text = format!("message body could not be read: {e}");
                return Err(BodyFailure::Reply(Reply::text(400, text)));
            }
            Ok(_) if buf.len() > max => return Err(BodyFailure::Reply(too_large())),
            Ok(_) => {}
        }
        if buf.is_empty() {
            let reply = Reply::text(400, "empty message: send the text as the POST body");
            return Err(BodyFailure::Reply(reply));
        }
        let body_len = buf.len();
        let id = request
            .header(crate::request_id::HEADER)
            .filter(|id| std::str::from_utf8(id).is_ok());
        let has_id = id.is_some();
        if let Some(id) = id {
            buf.extend_from_slice(id);
        }
        let (body, id) = buf.split_at(body_len);
        let Ok(body) = std::str::from_utf8(body) else {
            return Err(BodyFailure::Reply(Reply::text(
                400,
                "message is not valid UTF-8 text",
            )));
        };
        Ok(Message {
            peer: request
                .remote_addr()
                .map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip().to_canonical()),
            body,
            request_id: has_id.then(|| std::str::from_utf8(id).unwrap_or_default()),
        })
    }

    /// Sends the reply and counts it; a rejection is logged. While draining,
    /// every reply closes its connection so that clients move to other pods.
    fn answer(&self, request: Request, reply: &Reply, class: &'static str, ready: bool) {
        self.metrics.request(class, reply.status);
        if reply.status >= 400 {
            self.log_rejection(&request, reply);
        }
        let typed = reply
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("Content-Type"));
        let default_type = (!typed).then_some(("Content-Type", "text/plain; charset=utf-8"));
        let own = reply
            .headers
            .iter()
            .map(|(name, value)| (*name, value.as_ref()));
        let closing = (!ready).then_some(("Connection", "close"));
        // Names are ours; a value that cannot be sent goes out empty.
        let headers = default_type.into_iter().chain(own).chain(closing);
        if let Err(e) = request.respond_with(reply.status, headers, reply.body.as_bytes()) {
            let text = format!("could not send the response: {e}");
            self.logger.log(&Event::new("respond_failed", &text).warn());
        }
    }

    fn log_rejection(&self, request: &Request, reply: &Reply) {
        let peer = request.remote_addr().map(|p| p.ip().to_canonical());
        let text = format!(
            "answered {} {} from {}: {} {}",
            request.method(),
            crate::escape_message(request.url()),
            peer.map_or_else(|| "?".to_string(), |p| p.to_string()),
            reply.status,
            crate::escape_message(&reply.body)
        );
        let mut event = Event::new("rejected", &text).warn().status(reply.status);
        if let Some(p) = peer {
            event = event.peer(p);
        }
        self.logger.log(&event);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Write;

    struct Panics;

    impl MessageHandler for Panics {
        fn handle<'a>(&'a self, _: &Message<'a>) -> Reply<'a> {
            // What a panic hook does at worst: capture and symbolise a backtrace.
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            panic!("handler panicked, backtrace of {} bytes", trace.len());
        }
    }

    #[test]
    fn a_panicking_handler_is_answered_500_within_the_stack() {
        let config = crate::config::Config::from_lookup(crate::Role::Sink, |name| {
            (name == "LISTEN_ADDR").then(|| "127.0.0.1:0".to_string())
        })
        .unwrap();
        let logger = Arc::new(
            Logger::new(
                crate::Role::Sink,
                None,
                [127, 0, 0, 1].into(),
                crate::logger::LogFormat::Text,
                false,
            )
            .unwrap(),
        );
        let metrics = Arc::new(Metrics::new(crate::Role::Sink));
        let server = Server::bind(&config.server, 64, logger, metrics).unwrap();
        let addr = server.listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let stopper = Arc::clone(&shutdown);
        let running =
            std::thread::spawn(move || server.run(Serves::Messages(Arc::new(Panics)), shutdown));
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
            )
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
        let deepest = deepest_connection_stack(std::process::id());
        assert!(deepest > 0, "no connection thread stack found");
        assert!(
            deepest < CONNECTION_STACK / 2,
            "a connection thread used {deepest} of {CONNECTION_STACK} bytes of stack"
        );
        stopper.stop();
        running.join().unwrap().unwrap();
    }

    #[test]
    fn routes() {
        struct Nothing;
        impl MessageHandler for Nothing {
            fn handle<'a>(&'a self, _: &Message<'a>) -> Reply<'a> {
                Reply::text(200, "")
            }
        }
        impl Pages for Nothing {
            fn page(&self, _: &str) -> Option<Reply<'_>> {
                None
            }
        }
        /// The route's name, and the path a page route carries.
        fn named(route: Route) -> String {
            match route {
                Route::Health => "health".into(),
                Route::Ready => "ready".into(),
                Route::Metrics => "metrics".into(),
                Route::ReservedWrongMethod => "reserved, wrong method".into(),
                Route::Message(_) => "message".into(),
                Route::MessageWrongMethod => "message, wrong method".into(),
                Route::Page(_, path) => format!("page {path}"),
                Route::NotFound => "not found".into(),
            }
        }
        let messages = Serves::Messages(Arc::new(Nothing));
        let pages = Serves::Pages(Arc::new(Nothing));
        let cases = [
            (Method::Get, "/healthz", &messages, "health"),
            (Method::Head, "/readyz?x", &pages, "ready"),
            (Method::Get, "/metrics", &pages, "metrics"),
            (
                Method::Post,
                "/metrics",
                &messages,
                "reserved, wrong method",
            ),
            (
                Method::Post,
                "/healthz",
                &messages,
                "reserved, wrong method",
            ),
            (Method::Post, "/relay.php", &messages, "message"),
            (Method::Post, "/", &messages, "message"),
            (
                Method::Get,
                "/relay.php",
                &messages,
                "message, wrong method",
            ),
            (Method::Get, "/", &pages, "page /"),
            (Method::Get, "/flow?x=1", &pages, "page /flow"),
            (Method::Post, "/relay.php", &pages, "not found"),
        ];
        for (method, url, serves, expected) in cases {
            assert_eq!(
                named(route(&method, url, serves)),
                expected,
                "{method} {url}"
            );
        }
    }
}
