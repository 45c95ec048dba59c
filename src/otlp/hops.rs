//! The spans of one hop, as the tiers record them: a tier's handling of a message (SERVER), each attempt of the relay's (CLIENT), the sender's message (CLIENT, its attempts as events).
//!
//! Attributes follow OpenTelemetry's HTTP semantic conventions
//! (`http.request.method`, `url.full`, `url.path`, `server.address`,
//! `network.peer.address`, `http.response.status_code`, `error.type`), and
//! every span names its message's request id (`three_tier.request_id`). A
//! SERVER span is an error when it answers 5xx, a CLIENT one on any 4xx or
//! 5xx or when no answer came, as the conventions say.

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use super::{span_id, Kind, Span, SpanEvent, Tracer, Value};
use crate::client::AttemptHook;
use crate::observe::trace::TraceParent;

/// The request id's attribute.
const REQUEST_ID: &str = "three_tier.request_id";

/// A tier's handling of one message (relay or sink): a SERVER span, the
/// child of the caller's span, whose id is `span_id`.
pub struct Handling {
    span: Span,
}

impl Handling {
    /// Handling of the message `request_id` from `peer` to `path`, started at `start`.
    pub fn start(
        trace: &TraceParent,
        span_id: [u8; 8],
        path: &str,
        peer: IpAddr,
        request_id: &str,
        start: SystemTime,
    ) -> Handling {
        let mut span = Span::new(
            trace,
            Some(trace.parent_id()),
            span_id,
            Kind::Server,
            post(path),
            start,
        );
        span.text("http.request.method", "POST");
        span.text("url.path", path.to_owned());
        span.ip("network.peer.address", peer);
        span.text(REQUEST_ID, request_id.to_owned());
        Handling { span }
    }

    /// The record was written (or not, and why): an event.
    pub fn recorded(&mut self, outcome: Result<(), String>) {
        let attributes = match outcome {
            Ok(()) => vec![("three_tier.recorded", Value::Str("yes".into()))],
            Err(e) => vec![
                ("three_tier.recorded", Value::Str("no".into())),
                ("error.type", Value::Str(e.into())),
            ],
        };
        self.span.events.push(SpanEvent {
            name: "record",
            time: SystemTime::now(),
            attributes,
        });
    }

    /// Ends it with the answer's `status` (`None`: no answer, the connection closed) and records it.
    pub fn end(mut self, tracer: &Tracer, status: Option<u16>) {
        self.span.end = SystemTime::now();
        match status {
            Some(status) => {
                self.span
                    .number("http.response.status_code", i64::from(status));
                if status >= 500 {
                    self.span.error = Some(format!("answered {status}"));
                }
            }
            None => self.span.error = Some("closed without an answer".into()),
        }
        tracer.record(self.span);
    }
}

/// The relay's attempts at the sinks, each a CLIENT span, the child of its
/// handling's span: the [`AttemptHook`] the relay's post is given.
pub struct Attempts<'t> {
    tracer: &'t Tracer,
    trace: TraceParent,
    /// The handling's span.
    parent: [u8; 8],
    request_id: &'t str,
    current: RefCell<Option<Span>>,
}

impl<'t> Attempts<'t> {
    pub fn new(
        tracer: &'t Tracer,
        trace: TraceParent,
        parent: [u8; 8],
        request_id: &'t str,
    ) -> Attempts<'t> {
        Attempts {
            tracer,
            trace,
            parent,
            request_id,
            current: RefCell::new(None),
        }
    }
}

impl AttemptHook for Attempts<'_> {
    fn started(&self, url: &str, addr: SocketAddr) -> Option<String> {
        let id = span_id();
        let path = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.find('/').map(|i| &rest[i..]));
        let start = SystemTime::now();
        let mut span = Span::new(
            &self.trace,
            Some(self.parent),
            id,
            Kind::Client,
            post(path.unwrap_or("/")),
            start,
        );
        span.text("http.request.method", "POST");
        span.text("url.full", url.to_owned());
        if let Some(host) = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', ':']).next())
        {
            span.text("server.address", host.to_owned());
        }
        span.ip("network.peer.address", addr.ip());
        span.number("network.peer.port", i64::from(addr.port()));
        span.text(REQUEST_ID, self.request_id.to_owned());
        *self.current.borrow_mut() = Some(span);
        Some(self.trace.with_parent(id).header())
    }

    fn ended(&self, outcome: Result<u16, &str>) {
        let Some(mut span) = self.current.borrow_mut().take() else {
            return;
        };
        span.end = SystemTime::now();
        client_outcome(&mut span, outcome);
        self.tracer.record(span);
    }
}

/// A span's name: `POST <path>`, as the HTTP conventions name a request.
fn post(path: &str) -> String {
    let mut name = String::with_capacity(5 + path.len());
    name.push_str("POST ");
    name.push_str(path);
    name
}

/// How a CLIENT span's call ended, in its attributes and status.
fn client_outcome(span: &mut Span, outcome: Result<u16, &str>) {
    match outcome {
        Ok(status) => {
            span.number("http.response.status_code", i64::from(status));
            if status >= 400 {
                span.error = Some(format!("answered {status}"));
            }
        }
        Err(reason) => {
            span.text("error.type", reason.to_owned());
            span.error = Some(reason.to_string());
        }
    }
}

/// The sender's message: one CLIENT span, whose id is the parent id every
/// attempt sends; each attempt an event with its outcome.
pub struct Message<'t> {
    tracer: &'t Tracer,
    span: RefCell<Span>,
    attempt: RefCell<Option<(SocketAddr, SystemTime)>>,
}

impl<'t> Message<'t> {
    /// The message `request_id` to `path` in `trace` (its parent id is this span's id).
    pub fn start(
        tracer: &'t Tracer,
        trace: &TraceParent,
        path: &str,
        request_id: &str,
    ) -> Message<'t> {
        let mut span = Span::new(
            trace,
            None,
            trace.parent_id(),
            Kind::Client,
            post(path),
            SystemTime::now(),
        );
        span.text("http.request.method", "POST");
        span.text(REQUEST_ID, request_id.to_owned());
        Message {
            tracer,
            span: RefCell::new(span),
            attempt: RefCell::new(None),
        }
    }

    /// Ends it: with the last answer's status, or given up for `reason`; records it.
    pub fn end(self, attempts: u32, outcome: Result<u16, &str>) {
        let mut span = self.span.into_inner();
        span.end = SystemTime::now();
        span.number("three_tier.attempts", i64::from(attempts));
        client_outcome(&mut span, outcome);
        self.tracer.record(span);
    }
}

impl AttemptHook for Message<'_> {
    fn started(&self, url: &str, addr: SocketAddr) -> Option<String> {
        let mut span = self.span.borrow_mut();
        if !span.attributes.iter().any(|(k, _)| *k == "url.full") {
            span.text("url.full", url.to_owned());
        }
        *self.attempt.borrow_mut() = Some((addr, SystemTime::now()));
        None
    }

    fn ended(&self, outcome: Result<u16, &str>) {
        let Some((addr, _)) = self.attempt.borrow_mut().take() else {
            return;
        };
        let attributes = vec![
            ("network.peer.address", Value::Ip(addr.ip())),
            match outcome {
                Ok(status) => ("http.response.status_code", Value::Int(i64::from(status))),
                Err(reason) => ("error.type", Value::Str(reason.to_owned().into())),
            },
        ];
        self.span.borrow_mut().events.push(SpanEvent {
            name: "attempt",
            time: SystemTime::now(),
            attributes,
        });
    }
}
