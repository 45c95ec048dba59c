//! What one tier counts: its requests, messages, failures, connections and latency, on the message path without a lock.
//!
//! Counters are atomics; the one labelled family (requests by path class
//! and status) is an array of them; the latency is a [`histogram`] with an
//! exemplar per bucket. [`exposition`] writes them out for `/metrics`.

mod exposition;
mod histogram;

pub use exposition::Format;
use histogram::Histogram;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::role::Role;

/// Why a call to the next tier did not end in a 2xx: the `reason` label of
/// `three_tier_upstream_failures_total` (a [`crate::next_hop::upstream::PostError`],
/// or an answer that was not 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// No connection could be made.
    Refused,
    /// The hop's timeout ran out.
    Timeout,
    /// The next tier answered, but not 2xx.
    Status,
    /// The exchange broke after connecting.
    Broken,
}

const REASONS: [(FailureReason, &str); 4] = [
    (FailureReason::Refused, "refused"),
    (FailureReason::Timeout, "timeout"),
    (FailureReason::Status, "status"),
    (FailureReason::Broken, "broken"),
];

/// The `path` classes of `three_tier_http_requests_total`, in the order they are shown.
const PATH_CLASSES: [&str; 7] = [
    "fault", "healthz", "message", "metrics", "other", "page", "readyz",
];
/// The kinds of fault counted (see [`crate::observe::fault`]): a status, a close, a
/// delay, `/readyz` held at 503, and (sender) an `X-Fault` header sent.
pub const FAULT_KINDS: [&str; 5] = ["status", "close", "delay", "unready", "header"];
/// Status codes counted: 100 to 599, the only ones a tier sends.
const STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedReason {
    /// Idle, or no whole request, for `CLIENT_TIMEOUT`.
    Timeout,
    /// Idle, closed to admit a new connection at `MAX_CONNECTIONS`.
    Evicted,
    /// New, answered 503 at `MAX_CONNECTIONS` with none idle.
    Refused,
}

const CLOSED: [(ClosedReason, &str); 3] = [
    (ClosedReason::Timeout, "timeout"),
    (ClosedReason::Evicted, "evicted"),
    (ClosedReason::Refused, "refused"),
];

/// What other parts of a tier count, read when `/metrics` is rendered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Message requests being handled now.
    pub in_flight: usize,
    /// `MAX_IN_FLIGHT`.
    pub in_flight_limit: usize,
    /// `MAX_CONNECTIONS` as served (after the descriptor budget).
    pub connections_limit: usize,
    /// Whether `/readyz` would answer 200 now.
    pub ready: bool,
    /// Messages that could not be recorded (the logger's count).
    pub record_failures: u64,
    /// Stdout lines dropped because nothing read them (the logger's count).
    pub stdout_dropped: u64,
}

/// Every metric one tier exposes.
#[derive(Debug)]
pub struct Metrics {
    role: Role,
    /// One counter per path class and status, so counting takes no lock.
    requests: Box<[AtomicU64]>,
    messages: AtomicU64,
    /// Sender: messages given up after every retry, and attempts retried.
    given_up: AtomicU64,
    retries: AtomicU64,
    failures: [AtomicU64; 4],
    closed: [AtomicU64; 3],
    /// Inbound connections open, as last sampled by the server.
    open: AtomicU64,
    /// Host name lookups of the next tier, and those that failed.
    dns_lookups: AtomicU64,
    dns_failures: AtomicU64,
    /// Messages not handled because their client had gone.
    abandoned: AtomicU64,
    /// Messages a relay had already forwarded once (a loop), answered 508.
    looped: AtomicU64,
    /// Spans sent to the collector, spans lost (a full queue, or an export
    /// given up), and exports that failed (see [`crate::otlp`]).
    spans_exported: AtomicU64,
    spans_dropped: AtomicU64,
    span_export_failures: AtomicU64,
    /// Incoming `traceparent` headers that were invalid and replaced.
    traceparent_replaced: AtomicU64,
    /// Faults injected, by [`FAULT_KINDS`].
    faults: [AtomicU64; 5],
    /// The HTTP server's own errors.
    accept_errors: AtomicU64,
    thread_start_errors: AtomicU64,
    upstream: Histogram,
}

impl Metrics {
    /// Empty metrics for `role`.
    pub fn new(role: Role) -> Metrics {
        Metrics {
            role,
            requests: (0..PATH_CLASSES.len() * STATUSES.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            messages: AtomicU64::new(0),
            given_up: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            failures: Default::default(),
            closed: Default::default(),
            open: AtomicU64::new(0),
            dns_lookups: AtomicU64::new(0),
            dns_failures: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
            looped: AtomicU64::new(0),
            spans_exported: AtomicU64::new(0),
            spans_dropped: AtomicU64::new(0),
            span_export_failures: AtomicU64::new(0),
            traceparent_replaced: AtomicU64::new(0),
            faults: Default::default(),
            accept_errors: AtomicU64::new(0),
            thread_start_errors: AtomicU64::new(0),
            upstream: Histogram::default(),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, path_class: &'static str, status: u16) {
        let class = PATH_CLASSES.iter().position(|c| *c == path_class);
        if let (Some(class), true) = (class, STATUSES.contains(&status)) {
            let i = class * STATUSES.len() + usize::from(status - STATUSES.start());
            self.requests[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one message: sent (sender), relayed with a 2xx (relay) or logged (sink).
    pub fn message(&self) {
        self.messages.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one message the sender gave up on after every retry.
    pub fn given_up(&self) {
        self.given_up.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one attempt the sender is about to retry.
    pub fn retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one fault injected, of `kind` (one of [`FAULT_KINDS`]).
    pub fn fault(&self, kind: &str) {
        if let Some(i) = FAULT_KINDS.iter().position(|k| *k == kind) {
            self.faults[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one incoming `traceparent` that was invalid and replaced.
    pub fn traceparent_replaced(&self) {
        self.traceparent_replaced.fetch_add(1, Ordering::Relaxed);
    }

    /// Records one call to the next tier for message trace `trace_id`: how
    /// long it took and, if it failed, why.
    pub fn upstream(&self, took: Duration, failure: Option<FailureReason>, trace_id: &str) {
        self.upstream.observe(took, trace_id);
        if let Some(reason) = failure {
            let i = REASONS.iter().position(|(r, _)| *r == reason).unwrap_or(0);
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts `n` connections the server closed for `reason`.
    pub fn connections_closed(&self, reason: ClosedReason, n: u64) {
        let i = CLOSED.iter().position(|(r, _)| *r == reason).unwrap_or(0);
        self.closed[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Counts the HTTP server's own errors: failed `accept` calls, and
    /// connection threads that could not be started.
    pub fn server_errors(&self, accept: u64, thread_start: u64) {
        self.accept_errors.fetch_add(accept, Ordering::Relaxed);
        self.thread_start_errors
            .fetch_add(thread_start, Ordering::Relaxed);
    }

    /// Counts one lookup of a next tier's host name.
    pub fn dns_lookup(&self) {
        self.dns_lookups.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one lookup that failed or was not answered within the hop's timeout.
    pub fn dns_failure(&self) {
        self.dns_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one message not handled because its client had closed its
    /// connection (it stopped waiting); returns the count so far.
    pub fn abandoned(&self) -> u64 {
        self.abandoned.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts one message that came back to the relay that had forwarded it
    /// (a loop); returns the count so far.
    pub fn looped(&self) -> u64 {
        self.looped.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts `n` spans the collector took.
    pub fn spans_exported(&self, n: u64) {
        self.spans_exported.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` spans lost: the queue was full, or their export was given up.
    pub fn spans_dropped(&self, n: u64) {
        self.spans_dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one export that failed (each try).
    pub fn span_export_failed(&self) {
        self.span_export_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Records how many inbound connections are open now (the server samples it each second).
    pub fn connections_open(&self, n: usize) {
        self.open.store(n as u64, Ordering::Relaxed);
    }
}
