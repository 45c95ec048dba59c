//! The frame around every message a relay or a sink handles: its request id, its record, its lineage.
//!
//! Both message tiers do the same around what differs between them: keep the
//! client's `X-Request-Id` if it is valid or make one (`<ip>-r<n>` on a relay,
//! `<ip>-s<n>` on a sink), keep its `traceparent` if valid or start a trace
//! (see [`crate::trace`]), write the tier's record line (`Relaying from …`,
//! `From …`, see [`crate::message::Record`]), hand the message, its id and
//! whether the record was written to the tier's [`MessageHandler`], and add
//! the tier's own lineage headers (see [`crate::lineage`]) and `X-Request-Id`
//! to its answer. The server runs a [`Frame`] for every message it admits.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::lineage;
use crate::logger::{Event, Logger};
use crate::message::{Framed, Message, MessageHandler, Reply, Verb};
use crate::metrics::Metrics;
use crate::request_id::{self, IdSource};
use crate::role::Role;
use crate::trace::TraceParent;

/// A message tier's handler in the frame every message gets.
pub struct Frame {
    handler: Arc<dyn MessageHandler>,
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    verb: Verb,
    ids: IdSource,
    own_headers: Vec<(&'static str, String)>,
}

impl Frame {
    /// The frame of tier `role` (relay or sink) at `ip`, named `host`, around `handler`.
    pub fn new(
        role: Role,
        ip: IpAddr,
        host: &str,
        logger: Arc<Logger>,
        metrics: Arc<Metrics>,
        handler: Arc<dyn MessageHandler>,
    ) -> Frame {
        let (verb, id_prefix) = match role {
            Role::Relay => (Verb::Relaying, "r"),
            Role::Sink | Role::Sender => (Verb::From, "s"),
        };
        Frame {
            handler,
            logger,
            metrics,
            verb,
            ids: IdSource::new(ip, id_prefix),
            own_headers: lineage::own_headers(role, ip, host),
        }
    }

    /// Gives `message` its id, its trace and its record, has the handler
    /// answer it, and adds the tier's headers to the answer.
    pub fn handle<'a>(&'a self, message: &Message<'a>) -> Reply<'a> {
        let id = self.ids.keep_or_make(message.request_id);
        let trace = self.trace_of(message);
        let trace_id = trace.trace_id();
        let event = Event::record(self.verb, Some(message.peer), message.body)
            .request_id(&id)
            .trace_id(crate::trace::as_str(&trace_id));
        let recorded = self.logger.record(&event);
        let framed = Framed {
            id: &id,
            trace,
            recorded: &recorded,
        };
        let mut reply = self.handler.handle(message, &framed);
        let own = self.own_headers.iter();
        reply
            .headers
            .extend(own.map(|(name, value)| (*name, Cow::Borrowed(value.as_str()))));
        reply.with_header(request_id::HEADER, id)
    }

    /// The client's trace if its `traceparent` is valid, else a new one (an
    /// invalid one is counted).
    fn trace_of(&self, message: &Message) -> TraceParent {
        let Some(given) = message.traceparent else {
            return TraceParent::start();
        };
        TraceParent::parse(given).unwrap_or_else(|| {
            self.metrics.traceparent_replaced();
            TraceParent::start()
        })
    }
}
