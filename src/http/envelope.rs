//! The envelope around every message a relay or a sink handles: its request id, its record, its lineage.
//!
//! Both message tiers do the same around what differs between them: keep the
//! client's `X-Request-Id` if it is valid or make one (`<ip>-r<n>` on a relay,
//! `<ip>-s<n>` on a sink), keep its `traceparent` if valid or start a trace
//! (see [`crate::observe::trace`]), write the tier's record line (`Relaying from …`,
//! `From …`, see [`crate::record::message::Record`]), hand the message, its id and
//! whether the record was written to the tier's [`MessageHandler`], and add
//! the tier's own lineage headers (see [`crate::observe::lineage`]) and `X-Request-Id`
//! to its answer. Before all that, with `FAULTS=on`, the message meets the
//! faults asked of this tier (see [`crate::observe::fault`]): each is logged with the
//! message's request id, counted, and named in `X-Fault-Met`; a status is
//! answered at once and a close leaves the message unanswered, unrecorded
//! either way. A message the handler refuses outright (a relay's loop) is
//! answered before any of that. The server runs an [`Envelope`] for every
//! message it admits.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::observe::fault::{self, Action, Faults};
use crate::observe::metrics::Metrics;
use crate::observe::request_id::{self, IdSource};
use crate::observe::trace::TraceParent;
use crate::otlp::hops::Handling;
use crate::otlp::Tracer;
use crate::record::logger::{Event, Logger};
use crate::record::message::{Message, MessageHandler, Reply, Stamped, Verb};
use crate::role::Role;

/// What the faults a message met left to do.
enum Met {
    /// Handle it as usual.
    Continue,
    /// Close its connection unanswered.
    Close,
    /// Answer this.
    Answer(Reply<'static>),
}

/// A message tier's handler in the envelope every message gets.
pub struct Envelope {
    handler: Arc<dyn MessageHandler>,
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    verb: Verb,
    ids: IdSource,
    own_headers: Vec<(&'static str, String)>,
    role: Role,
    faults: Arc<Faults>,
    /// Records each message's handling as a SERVER span (see [`crate::otlp`]).
    tracer: Tracer,
}

impl Envelope {
    /// The envelope of tier `role` (relay or sink) at `ip`, which adds
    /// `own_headers` ([`crate::observe::lineage::own_headers`]) to its answers, with
    /// `faults`, around `handler`.
    pub fn new(
        role: Role,
        ip: IpAddr,
        own_headers: Vec<(&'static str, String)>,
        logger: Arc<Logger>,
        metrics: Arc<Metrics>,
        faults: Arc<Faults>,
        handler: Arc<dyn MessageHandler>,
    ) -> Envelope {
        let (verb, id_prefix) = match role {
            Role::Relay => (Verb::Relaying, "r"),
            Role::Sink | Role::Sender => (Verb::From, "s"),
        };
        Envelope {
            handler,
            logger,
            metrics,
            verb,
            ids: IdSource::new(ip, id_prefix),
            own_headers,
            role,
            faults,
            tracer: Tracer::off(),
        }
    }

    /// The same envelope, recording its messages' spans with `tracer`.
    pub fn traced(self, tracer: Tracer) -> Envelope {
        Envelope { tracer, ..self }
    }

    /// Whether it records spans (which are named for the message's path).
    pub fn records_spans(&self) -> bool {
        self.tracer.enabled()
    }

    /// This tier's faults (`/fault` and `/readyz` ask them too).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Gives `message` its id, its trace and its record, has the handler
    /// answer it, and adds the tier's headers to the answer; `None`: close
    /// its connection unanswered (a fault asked so, or `gone` said the
    /// client has gone: asked once, after any injected delay and before the
    /// record, so a message whose client gave up is not recorded).
    pub fn handle<'a>(
        &'a self,
        message: &Message<'a>,
        gone: &dyn Fn() -> bool,
    ) -> Option<Reply<'a>> {
        let id = self.ids.keep_or_make(message.request_id);
        let trace = self.trace_of(message);
        let recorded = self.tracer.records(&trace);
        // The relay's span id is the sink's parent id, recorded or not; a
        // sink needs one only for its span.
        let span_id = if recorded || self.role == Role::Relay {
            crate::otlp::span_id()
        } else {
            [0; 8]
        };
        let mut span = recorded.then(|| {
            Handling::start(
                &trace,
                span_id,
                message.path,
                message.peer,
                &id,
                SystemTime::now(),
            )
        });
        let reply = self.handle_traced(message, gone, id, trace, span_id, span.as_mut());
        if let Some(span) = span {
            span.end(&self.tracer, reply.as_ref().map(|r| r.status));
        }
        reply
    }

    /// [`Envelope::handle`] once the message has its id, trace and span.
    fn handle_traced<'a>(
        &'a self,
        message: &Message<'a>,
        gone: &dyn Fn() -> bool,
        id: Cow<'a, str>,
        trace: TraceParent,
        span_id: [u8; 8],
        span: Option<&mut Handling>,
    ) -> Option<Reply<'a>> {
        if let Some(refused) = self.handler.refuse(message, &id) {
            return Some(self.finish(refused, Vec::new(), id));
        }
        let actions = self.faults.meet(message.fault);
        let mut met = Vec::new();
        if !actions.is_empty() {
            match self.meet_faults(&actions, &id, &mut met) {
                Met::Continue => {}
                Met::Close => return None,
                Met::Answer(reply) => return Some(self.finish(reply, met, id)),
            }
        }
        if gone() {
            return None;
        }
        let trace_id = trace.trace_id();
        let event = Event::record(self.verb, Some(message.peer), message.body)
            .request_id(&id)
            .trace_id(crate::observe::trace::as_str(&trace_id));
        let recorded = self.logger.record(&event);
        if let Some(span) = span {
            span.recorded(recorded.as_ref().map(|_| ()).map_err(ToString::to_string));
        }
        let stamped = Stamped {
            id: &id,
            trace,
            span_id,
            trace_id: crate::observe::trace::as_str(&trace_id),
            recorded: &recorded,
        };
        let reply = self.handler.handle(message, &stamped);
        Some(self.finish(reply, met, id))
    }

    /// Logs, counts and carries out, in order, the faults a message meets,
    /// naming each in `met`: its delays add up to at most
    /// [`Faults::max_total_delay`], waited in one of the tier's delay slots
    /// (none free: 503, see [`crate::observe::fault`]).
    fn meet_faults(
        &self,
        actions: &[(Action, &'static str)],
        id: &str,
        met: &mut Vec<String>,
    ) -> Met {
        let mut slot = None;
        let mut left = self.faults.max_total_delay();
        for (action, source) in actions {
            if matches!(action, Action::Delay(_)) && slot.is_none() {
                match self.faults.delay_slot() {
                    Ok(taken) => slot = Some(taken),
                    Err(busy) => {
                        let text = format!("fault not injected: {busy}");
                        self.logger
                            .log(&Event::new("fault", &text).warn().request_id(id));
                        return Met::Answer(Reply::text(503, busy).with_header("Retry-After", "1"));
                    }
                }
            }
            let named = action.describe(self.role);
            let text = format!("fault injected ({source}): {named}");
            self.logger
                .log(&Event::new("fault", &text).warn().request_id(id));
            self.metrics.fault(action.kind());
            met.push(named);
            match action {
                Action::Delay(wait) => {
                    let wait = (*wait).min(left);
                    left -= wait;
                    std::thread::sleep(wait);
                }
                Action::Close => return Met::Close,
                Action::Status(status) => {
                    let text = format!("fault injected: {}", met.join(", "));
                    return Met::Answer(Reply::text(*status, text));
                }
            }
        }
        Met::Continue
    }

    /// `reply` with the tier's own headers, the faults met and the request id.
    fn finish<'a>(&'a self, mut reply: Reply<'a>, met: Vec<String>, id: Cow<'a, str>) -> Reply<'a> {
        let own = self.own_headers.iter();
        reply
            .headers
            .extend(own.map(|(name, value)| (*name, Cow::Borrowed(value.as_str()))));
        for named in met {
            reply = reply.with_header(fault::MET, named);
        }
        reply.with_header(request_id::HEADER, id)
    }

    /// The client's trace if its `traceparent` is valid, else a new one (an
    /// invalid one is counted).
    fn trace_of(&self, message: &Message) -> TraceParent {
        let Some(given) = message.traceparent else {
            return self.tracer.sample_root(TraceParent::start());
        };
        TraceParent::parse(given).unwrap_or_else(|| {
            self.metrics.traceparent_replaced();
            self.tracer.sample_root(TraceParent::start())
        })
    }
}
