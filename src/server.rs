//! The HTTP server every tier runs: routing, limits, one thread per message, and the stop sequence.
//!
//! tiny_http parses requests on its own connection threads and queues them; the
//! loop here takes each one and either answers it at once (`/healthz`,
//! `/readyz`, 404, 405, 413, 503) or admits it as a message and hands it to a
//! thread of its own, up to `MAX_IN_FLIGHT`. `/metrics` is answered inline too. That thread reads the body (at most
//! `MAX_BODY_BYTES`), calls the tier's [`MessageHandler`] and sends the reply;
//! threads are kept for the next request (see [`crate::workers`]).
//! Only this module calls `respond`. A request answered without its body being
//! read has its connection closed, so the body is never waited for.

use std::io::Read;
use std::net::{IpAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use tiny_http::{Header, Method, Request, Response};

use crate::config::ServerConfig;
use crate::conn_watch::ConnWatch;
use crate::in_flight::{InFlight, Slot};
use crate::logger::{Event, Logger};
use crate::metrics::Metrics;
use crate::shutdown::{Phase, Shutdown};
use crate::workers::{Job, Workers};
use crate::Error;

/// A message: a POST to any path but the reserved ones, its body read and checked.
#[derive(Debug)]
pub struct Message {
    /// The client's IP address.
    pub peer: IpAddr,
    /// The body, valid UTF-8, never empty.
    pub body: String,
    /// The `X-Request-Id` header as received, unchecked.
    pub request_id: Option<String>,
}

impl Message {
    /// The seed's line for this message, e.g. `From <peer> at <date> : <message>` for `verb` "From".
    pub fn seed_line(&self, verb: &str) -> String {
        crate::logger::message_line(
            &format!(
                "{verb} {} at {} : ",
                self.peer,
                crate::logger::now_http_date()
            ),
            &self.body,
        )
    }

    /// The log event `name` for this message, with its `text` line and request `id`.
    pub fn event<'a>(&'a self, name: &'static str, text: &'a str, id: &'a str) -> Event<'a> {
        Event::new(name, text)
            .request_id(id)
            .peer(self.peer)
            .message(&self.body)
    }
}

/// What a tier answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Plain-text body.
    pub body: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// A tier's answer to a message.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles one message and says what to answer.
    fn handle(&self, message: &Message) -> Reply;
}

/// Connections the kernel queues for tiny_http's accept thread.
const LISTEN_BACKLOG: i32 = 1024;

/// Where a request goes, decided from its method and path alone.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Ready,
    Metrics,
    ReservedWrongMethod,
    Message,
    MessageWrongMethod,
    NotFound,
}

fn route(method: &Method, url: &str, takes_messages: bool) -> Route {
    let path = url.split('?').next().unwrap_or(url);
    let is_get = matches!(method, Method::Get | Method::Head);
    match path {
        "/healthz" if is_get => Route::Health,
        "/readyz" if is_get => Route::Ready,
        "/metrics" if is_get => Route::Metrics,
        "/healthz" | "/readyz" | "/metrics" => Route::ReservedWrongMethod,
        _ if !takes_messages => Route::NotFound,
        _ if *method == Method::Post => Route::Message,
        _ => Route::MessageWrongMethod,
    }
}

/// A bound server, ready to run.
pub struct Server {
    http: Arc<tiny_http::Server>,
    config: ServerConfig,
    logger: Arc<Logger>,
    watch: Arc<ConnWatch>,
    in_flight: Arc<InFlight>,
    metrics: Arc<Metrics>,
    workers: Arc<Workers<PendingRequest>>,
}

/// The `path` label of `three_tier_http_requests_total` for a route.
fn path_class(route: &Route) -> &'static str {
    match route {
        Route::Health => "healthz",
        Route::Ready => "readyz",
        Route::Metrics => "metrics",
        Route::Message | Route::MessageWrongMethod => "message",
        Route::ReservedWrongMethod | Route::NotFound => "other",
    }
}

impl Server {
    /// Binds `LISTEN_ADDR` and logs `listening on <addr>` as the process's first line.
    pub fn bind(
        config: &ServerConfig,
        logger: Arc<Logger>,
        metrics: Arc<Metrics>,
    ) -> Result<Server, Error> {
        let listener = TcpListener::bind(config.listen_addr).map_err(|source| Error::Bind {
            addr: config.listen_addr,
            source,
        })?;
        // std listens with a small backlog; a burst of connections then waits for
        // SYN retransmits (1 s, 3 s) before tiny_http even sees it. Calling
        // listen() again on Linux raises the backlog (capped by net.core.somaxconn).
        rustix::net::listen(&listener, LISTEN_BACKLOG)
            .map_err(|e| Error::io("setting the listen backlog", e.into()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("reading the bound address", e))?;
        let http = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::io("starting the HTTP server", std::io::Error::other(e)))?;
        let watch = ConnWatch::start(addr.port(), config.client_timeout, Arc::clone(&logger))
            .map_err(|e| Error::io("starting the connection watchdog", e))?;
        logger.event("listening", &format!("listening on {addr}"));
        Ok(Server {
            http: Arc::new(http),
            config: config.clone(),
            logger,
            watch,
            in_flight: InFlight::new(config.max_in_flight),
            metrics,
            workers: Workers::new(),
        })
    }

    /// Serves until `shutdown` reaches [`Phase::Stopping`], then finishes requests in flight.
    pub fn run(
        self,
        handler: Option<Arc<dyn MessageHandler>>,
        shutdown: Arc<Shutdown>,
    ) -> Result<(), Error> {
        let waker = Arc::downgrade(&self.http);
        shutdown.on_stop(move || {
            if let Some(http) = waker.upgrade() {
                http.unblock();
            }
        });
        let accept_error = loop {
            match self.http.recv() {
                Ok(request) => self.dispatch(request, &handler, &shutdown),
                Err(_) if shutdown.phase() == Phase::Stopping => break None,
                Err(e) => break Some(e),
            }
        };
        // Requests already parsed are answered; then the listener closes.
        while let Ok(Some(request)) = self.http.try_recv() {
            self.dispatch(request, &handler, &shutdown);
        }
        drop(self.http);
        if let Some(e) = accept_error {
            self.watch.stop();
            return Err(Error::io("accepting connections", e));
        }
        let closed = self.watch.close_idle();
        let waiting = self.in_flight.current();
        self.logger.event(
            "stopping",
            &format!(
            "stopped accepting: closed {closed} idle connection(s), waiting for {waiting} request(s) in flight"
        ));
        let left = self.in_flight.wait_idle(self.config.shutdown_timeout);
        self.watch.stop();
        if left > 0 {
            return Err(Error::ShutdownTimeout { in_flight: left });
        }
        self.logger.event("stopped", "stopped");
        Ok(())
    }

    fn dispatch(
        &self,
        request: Request,
        handler: &Option<Arc<dyn MessageHandler>>,
        shutdown: &Arc<Shutdown>,
    ) {
        let ready = shutdown.phase() == Phase::Running;
        let route = route(request.method(), request.url(), handler.is_some());
        let class = path_class(&route);
        let reply = match route {
            Route::Health => Reply::text(200, "ok"),
            Route::Ready if ready => Reply::text(200, "ready"),
            Route::Ready => Reply::text(503, "draining"),
            Route::Metrics => Reply::text(200, self.metrics.render(self.in_flight.current()))
                .with_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
            Route::ReservedWrongMethod => {
                Reply::text(405, "use GET").with_header("Allow", "GET, HEAD")
            }
            Route::NotFound => Reply::text(404, "not found"),
            Route::MessageWrongMethod => {
                Reply::text(405, "messages are sent with POST").with_header("Allow", "POST")
            }
            Route::Message => return self.admit(request, handler, ready),
        };
        self.answer_unread(request, reply, class, ready);
    }

    fn admit(&self, request: Request, handler: &Option<Arc<dyn MessageHandler>>, ready: bool) {
        let max = self.config.max_body_bytes;
        if request.body_length().is_some_and(|n| n > max) {
            let reply = Reply::text(413, format!("message larger than MAX_BODY_BYTES={max}"));
            return self.answer_unread(request, reply, "message", ready);
        }
        let (Some(handler), Some(slot)) = (handler, self.in_flight.try_admit()) else {
            let reply = Reply::text(
                503,
                format!(
                    "busy: MAX_IN_FLIGHT={} requests in flight",
                    self.config.max_in_flight
                ),
            )
            .with_header("Retry-After", "1");
            return self.answer_unread(request, reply, "message", ready);
        };
        let job = RequestJob {
            handler: Arc::clone(handler),
            logger: Arc::clone(&self.logger),
            watch: Arc::clone(&self.watch),
            metrics: Arc::clone(&self.metrics),
            max_body_bytes: max,
            ready,
            _slot: slot,
        };
        // A thread of its own (a kept one if idle); if none can be started the
        // request comes back and is answered 503.
        if let Err((pending, e)) = self.workers.run(PendingRequest { job, request }) {
            let reply = Reply::text(503, format!("busy: cannot start a request thread: {e}"))
                .with_header("Retry-After", "1");
            self.answer_unread(pending.request, reply, "message", ready);
        }
    }

    /// Answers without reading the body; if there may be one, closes the connection.
    fn answer_unread(&self, request: Request, reply: Reply, class: &'static str, ready: bool) {
        let out = Outcome {
            reply,
            body: BodyState::Unread,
            class,
            ready,
        };
        answer(&self.logger, &self.watch, &self.metrics, request, out);
    }
}

/// Whether the request body was read to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    Read,
    Unread,
}

/// Everything a request thread needs.
struct RequestJob {
    handler: Arc<dyn MessageHandler>,
    logger: Arc<Logger>,
    watch: Arc<ConnWatch>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    ready: bool,
    _slot: Slot,
}

/// An admitted request and what its thread needs.
struct PendingRequest {
    job: RequestJob,
    request: Request,
}

impl Job for PendingRequest {
    fn run(self) {
        self.job.run(self.request);
    }
}

impl RequestJob {
    fn run(self, mut request: Request) {
        let peer = request.remote_addr().copied();
        let mut body = Vec::new();
        let limit = self.max_body_bytes as u64 + 1;
        let read = request.as_reader().take(limit).read_to_end(&mut body);
        let reply = match read {
            Err(e) => Err(Reply::text(
                400,
                format!("message body could not be read: {e}"),
            )),
            Ok(_) if body.len() > self.max_body_bytes => Err(Reply::text(
                413,
                format!("message larger than MAX_BODY_BYTES={}", self.max_body_bytes),
            )),
            Ok(_) if body.is_empty() => Ok(Reply::text(
                400,
                "empty message: send the text as the POST body",
            )),
            Ok(_) => match String::from_utf8(body) {
                Err(_) => Ok(Reply::text(400, "message is not valid UTF-8 text")),
                Ok(text) => {
                    if let Some(peer) = peer {
                        self.watch.request_received(peer);
                    }
                    let message = Message {
                        peer: peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip().to_canonical()),
                        body: text,
                        request_id: request
                            .headers()
                            .iter()
                            .find(|h| h.field.equiv(crate::request_id::HEADER))
                            .map(|h| h.value.to_string()),
                    };
                    let handled = catch_unwind(AssertUnwindSafe(|| self.handler.handle(&message)));
                    Ok(handled
                        .unwrap_or_else(|_| Reply::text(500, "internal error: see the server log")))
                }
            },
        };
        let (reply, body) = match reply {
            Ok(reply) => (reply, BodyState::Read),
            Err(reply) => (reply, BodyState::Unread),
        };
        let out = Outcome {
            reply,
            body,
            class: "message",
            ready: self.ready,
        };
        answer(&self.logger, &self.watch, &self.metrics, request, out);
    }
}

/// What to answer, and how the request was handled.
struct Outcome {
    reply: Reply,
    body: BodyState,
    class: &'static str,
    ready: bool,
}

/// Sends the reply, counts it, then starts the connection's next deadline or closes it.
fn answer(logger: &Logger, watch: &ConnWatch, metrics: &Metrics, request: Request, out: Outcome) {
    let Outcome {
        reply,
        body,
        class,
        ready,
    } = out;
    let peer = request.remote_addr().copied();
    let may_have_body = request.body_length().is_some_and(|n| n > 0)
        || request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Transfer-Encoding"));
    let close = !ready || (body == BodyState::Unread && may_have_body);
    metrics.request(class, reply.status);
    if reply.status >= 400 {
        let text = format!(
            "answered {} {} from {}: {} {}",
            request.method(),
            crate::escape_message(request.url()),
            peer.map_or_else(|| "?".to_string(), |p| p.ip().to_canonical().to_string()),
            reply.status,
            crate::escape_message(&reply.body)
        );
        let mut event = Event::new("rejected", &text).warn().status(reply.status);
        if let Some(p) = peer {
            event = event.peer(p.ip().to_canonical());
        }
        logger.log(&event);
    }
    let mut response = Response::from_string(reply.body).with_status_code(reply.status);
    if !reply
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Content-Type"))
    {
        response.add_header(header("Content-Type", "text/plain; charset=utf-8"));
    }
    for (name, value) in &reply.headers {
        response.add_header(header(name, value));
    }
    if close {
        response.add_header(header("Connection", "close"));
        if let (Some(peer), BodyState::Unread) = (peer, body) {
            // tiny_http drains an unread body when the request is dropped; stop
            // reading first so that drain ends at once.
            watch.stop_reading(peer);
        }
    }
    if let Err(e) = request.respond(response) {
        logger.log(
            &Event::new(
                "respond_failed",
                &format!("could not send the response: {e}"),
            )
            .warn(),
        );
    }
    if let Some(peer) = peer {
        if close {
            watch.close(peer);
        } else {
            watch.response_sent(peer);
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    // Names are ours; a value that is not a valid header becomes an empty one.
    Header::from_bytes(name.as_bytes(), value.as_bytes())
        .or_else(|_| Header::from_bytes(name.as_bytes(), &b""[..]))
        .unwrap_or_else(|_| unreachable!("{name} is a valid header name"))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route(&Method::Get, "/healthz", true), Route::Health);
        assert_eq!(route(&Method::Head, "/readyz?x", false), Route::Ready);
        assert_eq!(route(&Method::Get, "/metrics", false), Route::Metrics);
        assert_eq!(
            route(&Method::Post, "/metrics", true),
            Route::ReservedWrongMethod
        );
        assert_eq!(
            route(&Method::Post, "/healthz", true),
            Route::ReservedWrongMethod
        );
        assert_eq!(route(&Method::Post, "/relay.php", true), Route::Message);
        assert_eq!(route(&Method::Post, "/", true), Route::Message);
        assert_eq!(
            route(&Method::Get, "/relay.php", true),
            Route::MessageWrongMethod
        );
        assert_eq!(route(&Method::Post, "/relay.php", false), Route::NotFound);
    }
}
