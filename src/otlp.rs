//! Spans of every message, exported over OTLP/HTTP with JSON to a collector, off the message path: a tracer without an SDK.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set,
//! as OpenTelemetry's SDKs name the settings. Each tier records the spans of
//! the messages it handles: the sender one CLIENT span per message (its
//! attempts as events, each with its outcome), the relay a SERVER span and a
//! CLIENT span per attempt to a sink (the address tried; a failover is a
//! second one), the sink a SERVER span (the record's write as an event).
//! They join into one trace through the `traceparent` each hop sends: a
//! CLIENT span's id is the parent id the next tier receives. Which traces are
//! recorded is the sampler's choice (`OTEL_TRACES_SAMPLER`, by default
//! `parentbased_always_on`: the sender's sampled flag is honoured downstream).
//!
//! Nothing here ever holds a message: a finished span goes into a bounded
//! queue (`OTEL_BSP_MAX_QUEUE_SIZE`) or, when it is full, is dropped and
//! counted; one exporter thread per process ([`export`]) sends batches,
//! encoded by [`encode`], at most every `OTEL_BSP_SCHEDULE_DELAY` or as a
//! batch fills, retries a failed export with backoff (honouring
//! `Retry-After` on 429 and 503), counts its failures, and flushes what is
//! left when the tier stops.

mod encode;
mod export;
pub mod hops;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use crate::config::{Sampler, TracingConfig};
use crate::observe::metrics::Metrics;
use crate::observe::trace::TraceParent;
use crate::role::Role;

/// A span's kind, as OTLP numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Handling a request.
    Server = 2,
    /// Making one.
    Client = 3,
}

/// An attribute's value: text (a constant costs no allocation), an
/// address (formatted by the exporter's thread, off the message's path) or
/// a whole number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Cow<'static, str>),
    Ip(IpAddr),
    Int(i64),
}

/// A named moment in a span, with attributes.
#[derive(Debug, Clone)]
pub struct SpanEvent {
    pub name: &'static str,
    pub time: SystemTime,
    pub attributes: Vec<(&'static str, Value)>,
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The caller's span, if the trace came with one.
    pub parent_id: Option<[u8; 8]>,
    pub name: String,
    pub kind: Kind,
    pub start: SystemTime,
    pub end: SystemTime,
    pub attributes: Vec<(&'static str, Value)>,
    pub events: Vec<SpanEvent>,
    /// An error, with its description (OTLP's status code 2); else unset.
    pub error: Option<String>,
}

impl Span {
    /// A span of `kind` named `name` in `trace`, with id `span_id`, starting at `start`.
    pub fn new(
        trace: &TraceParent,
        parent: Option<[u8; 8]>,
        span_id: [u8; 8],
        kind: Kind,
        name: String,
        start: SystemTime,
    ) -> Span {
        Span {
            trace_id: trace.trace_id_bytes(),
            span_id,
            parent_id: parent,
            name,
            kind,
            start,
            end: start,
            attributes: Vec::with_capacity(8),
            events: Vec::new(),
            error: None,
        }
    }

    /// Adds a text attribute.
    pub fn text(&mut self, key: &'static str, value: impl Into<Cow<'static, str>>) {
        self.attributes.push((key, Value::Str(value.into())));
    }

    /// Adds an address attribute.
    pub fn ip(&mut self, key: &'static str, value: IpAddr) {
        self.attributes.push((key, Value::Ip(value)));
    }

    /// Adds a whole-number attribute.
    pub fn number(&mut self, key: &'static str, value: i64) {
        self.attributes.push((key, Value::Int(value)));
    }
}

/// A new span id: random, never all zero.
pub fn span_id() -> [u8; 8] {
    crate::random::random_nonzero().to_be_bytes()
}

/// This process's tracer: which traces it records, and where their spans go.
#[derive(Clone)]
pub struct Tracer {
    exporter: Option<Arc<export::Exporter>>,
    sampler: Sampler,
    /// `OTEL_TRACES_SAMPLER_ARG` as a share of the trace id space (for the ratio samplers).
    ratio_bound: u64,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracer(on: {})", self.exporter.is_some())
    }
}

impl Tracer {
    /// A tracer that records nothing.
    pub fn off() -> Tracer {
        Tracer {
            exporter: None,
            sampler: Sampler::ParentBasedAlwaysOn,
            ratio_bound: u64::MAX,
        }
    }

    /// The tracer `config` asks for, for the tier `role` at `version`, its
    /// counts in `metrics`; off without an endpoint or with
    /// `OTEL_SDK_DISABLED=true`. Its spans name the tier (`OTEL_SERVICE_NAME`,
    /// or the role), its version, and `OTEL_RESOURCE_ATTRIBUTES`. Its exporter
    /// thread starts now.
    pub fn start(
        config: &TracingConfig,
        role: Role,
        version: &str,
        metrics: &Arc<Metrics>,
    ) -> std::io::Result<Tracer> {
        let service = config
            .service_name
            .clone()
            .unwrap_or_else(|| role.name().to_string());
        let mut resource = vec![
            ("service.name".to_string(), service),
            ("service.version".to_string(), version.to_string()),
        ];
        resource.extend(config.resource.iter().cloned());
        let Some(endpoint) = config.endpoint.clone().filter(|_| !config.disabled) else {
            return Ok(Tracer::off());
        };
        let exporter = export::Exporter::start(config, endpoint, resource, Arc::clone(metrics))?;
        Ok(Tracer {
            exporter: Some(exporter),
            sampler: config.sampler,
            ratio_bound: (config.ratio.clamp(0.0, 1.0) * u64::MAX as f64) as u64,
        })
    }

    /// Whether spans are recorded at all (nothing is built when not).
    pub fn enabled(&self) -> bool {
        self.exporter.is_some()
    }

    /// Whether a span of `trace` is recorded: a parent-based sampler follows
    /// the caller's sampled flag, the others decide from the trace id.
    pub fn records(&self, trace: &TraceParent) -> bool {
        self.enabled()
            && match self.sampler {
                Sampler::ParentBasedAlwaysOn
                | Sampler::ParentBasedAlwaysOff
                | Sampler::ParentBasedTraceIdRatio => trace.sampled(),
                Sampler::AlwaysOn => true,
                Sampler::AlwaysOff => false,
                Sampler::TraceIdRatio => self.in_ratio(trace),
            }
    }

    /// The sampled flag of a trace started here (a root): the sampler's decision.
    pub fn sample_root(&self, trace: TraceParent) -> TraceParent {
        let sampled = match self.sampler {
            Sampler::ParentBasedAlwaysOn | Sampler::AlwaysOn => true,
            Sampler::ParentBasedAlwaysOff | Sampler::AlwaysOff => false,
            Sampler::ParentBasedTraceIdRatio | Sampler::TraceIdRatio => self.in_ratio(&trace),
        };
        trace.with_sampled(sampled)
    }

    /// The trace id's low 8 bytes below the ratio's share (as the
    /// specification's `TraceIdRatioBased` suggests).
    fn in_ratio(&self, trace: &TraceParent) -> bool {
        let id = trace.trace_id_bytes();
        let mut low = [0u8; 8];
        low.copy_from_slice(&id[8..]);
        u64::from_be_bytes(low) < self.ratio_bound || self.ratio_bound == u64::MAX
    }

    /// Queues a finished span for export; when the queue is full it is dropped and counted.
    pub fn record(&self, span: Span) {
        if let Some(exporter) = &self.exporter {
            exporter.push(span);
        }
    }

    /// Exports what is queued, within `within`; called once, as the tier stops.
    pub fn flush(&self, within: std::time::Duration) {
        if let Some(exporter) = &self.exporter {
            exporter.flush(within);
        }
    }
}
