//! The HTTP server every tier runs: it routes, admits and answers each request, and stops.
//!
//! The vendored tiny_http owns each connection on a thread of its own: it
//! reads a request under the connection's `CLIENT_TIMEOUT` deadline and strict
//! framing rules, answers protocol errors itself, and calls [`Service`] on the
//! same thread for everything else. So a message is parsed, handled and
//! answered on one thread. Here, each request is routed (see
//! [`crate::http::routes`]): probes, `/metrics`, 404 and 405 are answered at once; a
//! message has its body read (at most `MAX_BODY_BYTES`, under the same
//! deadline) before it takes one of `MAX_IN_FLIGHT` slots, so a slow upload
//! never holds a slot; then the tier's [`Envelope`] runs, a panic in it is
//! answered 500, and the reply is sent. Only `Service::answer` calls
//! `respond`. [`Server::run`] waits for the stop, reporting closed
//! connections once a second (see [`crate::http::connection_report`]), then stops accepting,
//! closes idle connections and waits for every open connection to finish.

use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tiny_http::{Method, Rejection, Request};

use crate::config::ServerConfig;
use crate::error::Error;
use crate::http::connection_report::ConnectionReport;
use crate::http::envelope::Envelope;
use crate::http::intake::{read_body, read_message, with_message_buffer, BodyFailure};
pub use crate::http::routes::Serves;
use crate::http::routes::{path_class, route, Route};
use crate::http::shutdown::{Phase, Shutdown};
use crate::in_flight::InFlight;
use crate::observe::fault::{Control, Faults};
use crate::observe::metrics::{Format, Gauges, Metrics};
use crate::record::logger::{Event, Logger};
use crate::record::message::Reply;

/// Stack of the connection threads, where messages are handled (the relay's
/// ureq call included). A stack overflow aborts the whole tier, so the
/// deepest paths are measured on the debug build the tests use: a panicking
/// handler whose hook symbolises a backtrace (the unit test
/// `a_panicking_handler_is_answered_500_within_the_stack` below), and the
/// relay's ureq call (tests/limits.rs). Both must use less than half.
pub const CONNECTION_STACK: usize = 256 * 1024;
/// How often connections closed by timeouts and limits are reported, and open ones counted.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A client whose previous answer on its connection was written less than
/// this ago is taken to be there still, without a syscall to ask (see
/// `tiny_http::Request::client_closed`): no client sensibly gives up sooner,
/// and under load, where it matters, messages follow one another faster.
const CLIENT_SEEN_WITHIN: Duration = Duration::from_millis(10);

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
    /// as the descriptor budget allows, see [`crate::http::fds`]).
    pub fn bind(
        config: &ServerConfig,
        max_connections: usize,
        logger: Arc<Logger>,
        metrics: Arc<Metrics>,
    ) -> Result<Server, Error> {
        let bound = crate::http::listen::bind(config.listen_addr, config.listen_fallback).map_err(
            |source| Error::Bind {
                addr: config.listen_addr,
                source,
            },
        )?;
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
            max_connections: self.max_connections,
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
        let report = ConnectionReport {
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

/// The application side of the server: what tiny_http calls for each request.
struct Service {
    serves: Serves,
    max_body_bytes: usize,
    max_in_flight: usize,
    max_connections: usize,
    in_flight: Arc<InFlight>,
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    shutdown: Arc<Shutdown>,
}

impl tiny_http::Handler for Service {
    fn handle(&self, mut request: Request) {
        let ready = self.shutdown.phase() == Phase::Running;
        if request.body_length() != Some(0) && !self.takes_message(&request) {
            // The framing is judged before the method and path: a broken body is 400 on any route.
            let read = with_message_buffer(|buf| read_body(&mut request, self.max_body_bytes, buf));
            if let Err(failure) = read {
                return self.refuse_body(request, failure, ready);
            }
        }
        let route = route(request.method(), request.url(), &self.serves);
        let class = path_class(&route);
        let reply = match route {
            Route::Health => Reply::text(200, "ok"),
            Route::Ready if !ready => Reply::text(503, "draining"),
            Route::Ready if !self.logger.ready() => {
                Reply::text(503, "the record cannot be written")
            }
            Route::Ready if self.faults().is_some_and(Faults::unready) => {
                self.metrics.fault("unready");
                Reply::text(503, "fault: unready (DELETE /fault clears it)")
            }
            Route::Ready => Reply::text(200, "ready"),
            Route::Fault(envelope, query) => self.fault(request.method(), query, envelope.faults()),
            Route::Metrics => {
                let accept = request
                    .header("Accept")
                    .and_then(|a| std::str::from_utf8(a).ok());
                let format = Format::from_accept(accept);
                let text = self.metrics.render_as(&self.gauges(ready), format);
                Reply::text(200, text).with_header("Content-Type", format.content_type())
            }
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
            Route::Message(envelope) => return self.message(request, envelope, ready),
        };
        self.answer(request, &reply, class, ready);
    }

    fn rejected(&self, peer: SocketAddr, request: Option<(&Method, &str)>, rejection: Rejection) {
        self.metrics.request("other", rejection.status);
        let what = match request {
            Some((method, url)) => format!("{method} {}", crate::escape::escape_message(url)),
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
    /// Whether `request` is a message (whose body the message path reads).
    fn takes_message(&self, request: &Request) -> bool {
        let route = route(request.method(), request.url(), &self.serves);
        matches!(route, Route::Message(_))
    }

    /// Answers a body that could not be read (or closes, for a client that missed its deadline).
    fn refuse_body(&self, request: Request, failure: BodyFailure, ready: bool) {
        match failure {
            BodyFailure::Reply(reply) => {
                let class = path_class(&route(request.method(), request.url(), &self.serves));
                self.answer(request, &reply, class, ready)
            }
            BodyFailure::TimedOut => request.drop_connection(),
        }
    }

    /// The tier's faults, if it takes messages.
    fn faults(&self) -> Option<&Faults> {
        match &self.serves {
            Serves::Messages(envelope) => Some(envelope.faults()),
            Serves::Pages(_) => None,
        }
    }

    /// `/fault`: shows, sets or clears the standing fault; a change is logged.
    fn fault(&self, method: &Method, query: &str, faults: &Faults) -> Reply<'static> {
        let verb = match method {
            Method::Post => Control::Set,
            Method::Delete => Control::Clear,
            _ => Control::Show,
        };
        let (status, text, changed) = faults.control(verb, query);
        if let Some(line) = changed {
            self.logger.log(&Event::new("fault", &line).warn());
        }
        Reply::text(status, text)
    }

    /// What the other parts of the tier count, for `/metrics`.
    fn gauges(&self, ready: bool) -> Gauges {
        Gauges {
            in_flight: self.in_flight.current(),
            in_flight_limit: self.max_in_flight,
            connections_limit: self.max_connections,
            ready: ready && self.logger.ready(),
            record_failures: self.logger.record_failures(),
            stdout_dropped: self.logger.stdout_dropped(),
        }
    }
}

impl Service {
    /// Reads, admits and handles a message, then answers it.
    fn message(&self, mut request: Request, envelope: &Envelope, ready: bool) {
        with_message_buffer(|buf| {
            let message = match read_message(
                &mut request,
                self.max_body_bytes,
                envelope.records_spans(),
                buf,
            ) {
                Ok(message) => message,
                Err(BodyFailure::Reply(reply)) => {
                    return self.answer(request, &reply, "message", ready)
                }
                Err(BodyFailure::TimedOut) => return request.drop_connection(),
            };
            // The permit is held until the answer is written: a stop waits for it.
            let Some(_permit) = self.in_flight.try_admit() else {
                let text = format!(
                    "busy: MAX_IN_FLIGHT={} requests in flight",
                    self.max_in_flight
                );
                let reply = Reply::text(503, text).with_header("Retry-After", "1");
                return self.answer(request, &reply, "message", ready);
            };
            let gone = || self.client_gone(&request);
            let handled = catch_unwind(AssertUnwindSafe(|| envelope.handle(&message, &gone)));
            match handled {
                Ok(Some(reply)) => self.answer(request, &reply, "message", ready),
                // A fault closes the connection unanswered.
                Ok(None) => request.drop_connection(),
                Err(_) => {
                    let reply = Reply::text(500, "internal error: see the server log");
                    self.answer(request, &reply, "message", ready);
                }
            }
        })
    }

    /// Whether `request`'s client has gone (it reset its connection: it
    /// stopped waiting, a stall outlasted its deadline): nobody would hear
    /// the answer, and a retry may be under way. Counted, and logged now and
    /// then.
    fn client_gone(&self, request: &Request) -> bool {
        if !request.client_closed(CLIENT_SEEN_WITHIN) {
            return false;
        }
        let n = self.metrics.abandoned();
        if n.is_power_of_two() {
            let text = format!("not handled: {n} message(s) so far whose client had reset its connection (it stopped waiting)");
            self.logger.log(&Event::new("abandoned", &text).warn());
        }
        true
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
            crate::escape::escape_message(request.url()),
            peer.map_or_else(|| "?".to_string(), |p| p.to_string()),
            reply.status,
            crate::escape::escape_message(&reply.body)
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
    use std::io::{Read, Write};

    use crate::config::{SinkConfig, TierSettings};
    use crate::record::message::{Message, MessageHandler, Stamped};
    use crate::role::Role;

    struct Panics;

    impl MessageHandler for Panics {
        fn handle<'a>(&'a self, _: &Message<'a>, _: &Stamped) -> Reply<'a> {
            // What a panic hook does at worst: capture and symbolise a backtrace.
            let trace = std::backtrace::Backtrace::force_capture().to_string();
            panic!("handler panicked, backtrace of {} bytes", trace.len());
        }
    }

    #[test]
    fn a_panicking_handler_is_answered_500_within_the_stack() {
        let config = SinkConfig::from_lookup(|name| {
            (name == "LISTEN_ADDR").then(|| "127.0.0.1:0".to_string())
        })
        .unwrap();
        let logger = Arc::new(
            Logger::new(
                crate::role::Role::Sink,
                None,
                [127, 0, 0, 1].into(),
                crate::config::LogFormat::Text,
                false,
            )
            .unwrap(),
        );
        let metrics = Arc::new(Metrics::new(crate::role::Role::Sink));
        let envelope = Envelope::new(
            Role::Sink,
            [127, 0, 0, 1].into(),
            Vec::new(),
            Arc::clone(&logger),
            Arc::clone(&metrics),
            Arc::new(crate::observe::fault::Faults::new(
                Role::Sink,
                false,
                4,
                Duration::from_secs(1),
            )),
            Arc::new(Panics),
        );
        let server = Server::bind(&config.tier.server, 64, logger, metrics).unwrap();
        let addr = server.listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let stopper = Arc::clone(&shutdown);
        let running =
            std::thread::spawn(move || server.run(Serves::Messages(Arc::new(envelope)), shutdown));
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
            )
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 500 "), "{answer}");
        let deepest = crate::http::test_probes::deepest_connection_stack(std::process::id());
        assert!(deepest > 0, "no connection thread stack found");
        assert!(
            deepest < CONNECTION_STACK / 2,
            "a connection thread used {deepest} of {CONNECTION_STACK} bytes of stack"
        );
        stopper.stop();
        running.join().unwrap().unwrap();
    }
}
