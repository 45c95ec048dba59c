//! Prometheus metrics for one tier, in the text exposition format.
//!
//! The set is small and fixed, so the encoder is hand-written (a few dozen
//! lines, no dependency) and checked against a real parser: the integration
//! tests feed `/metrics` to `promtool check metrics`. Counters are atomics; the
//! one labelled family (requests by path class and status) is a small map.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::role::Role;

/// Why a call to the next tier did not end in a 2xx: the `reason` label of
/// `three_tier_upstream_failures_total` (a [`crate::upstream::PostError`],
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
const PATH_CLASSES: [&str; 6] = ["healthz", "message", "metrics", "other", "page", "readyz"];
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

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let seconds = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {count}\n{name}_sum {sum}\n{name}_count {count}"
        );
    }
}

/// What other parts of a tier count, read when `/metrics` is rendered.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Message requests being handled now.
    pub in_flight: usize,
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
    failures: [AtomicU64; 4],
    closed: [AtomicU64; 3],
    /// Inbound connections open, as last sampled by the server.
    open: AtomicU64,
    /// Host name lookups of the next tier, and those that failed.
    dns_lookups: AtomicU64,
    dns_failures: AtomicU64,
    /// Messages not handled because their client had gone.
    abandoned: AtomicU64,
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
            failures: Default::default(),
            closed: Default::default(),
            open: AtomicU64::new(0),
            dns_lookups: AtomicU64::new(0),
            dns_failures: AtomicU64::new(0),
            abandoned: AtomicU64::new(0),
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

    /// Records one call to the next tier: how long it took and, if it failed, why.
    pub fn upstream(&self, took: Duration, failure: Option<FailureReason>) {
        self.upstream.observe(took);
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

    /// Records how many inbound connections are open now (the server samples it each second).
    pub fn connections_open(&self, n: usize) {
        self.open.store(n as u64, Ordering::Relaxed);
    }

    /// The exposition text, with what `gauges` the caller read.
    pub fn render(&self, gauges: &Gauges) -> String {
        let in_flight = gauges.in_flight;
        let mut out = String::with_capacity(4096);
        let tier = self.role.name();
        let _ = writeln!(
            out,
            "# HELP three_tier_build_info Build of this tier; always 1.\n# TYPE three_tier_build_info gauge\n\
             three_tier_build_info{{tier=\"{tier}\",version=\"{}\",revision=\"{}\"}} 1",
            crate::version::VERSION,
            crate::version::REVISION
        );
        let _ = writeln!(
            out,
            "# HELP three_tier_http_requests_total Requests answered, by path class and status code.\n\
             # TYPE three_tier_http_requests_total counter"
        );
        let per_class = self.requests.chunks(STATUSES.len());
        for (class, counts) in PATH_CLASSES.iter().zip(per_class) {
            for (code, n) in STATUSES.zip(counts) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "three_tier_http_requests_total{{path=\"{class}\",code=\"{code}\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP three_tier_http_requests_in_flight Message requests being handled now.\n\
             # TYPE three_tier_http_requests_in_flight gauge\nthree_tier_http_requests_in_flight {in_flight}"
        );
        let _ = writeln!(
            out,
            "# HELP three_tier_connections_closed_total Inbound connections closed by the server on its own, by reason.\n\
             # TYPE three_tier_connections_closed_total counter"
        );
        for ((_, reason), n) in CLOSED.iter().zip(&self.closed) {
            let _ = writeln!(
                out,
                "three_tier_connections_closed_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP three_tier_connections_open Inbound connections open, sampled each second; MAX_CONNECTIONS bounds it.\n\
             # TYPE three_tier_connections_open gauge\nthree_tier_connections_open {}",
            self.open.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP three_tier_server_errors_total The HTTP server's own errors: failed accept calls, connection threads not started.\n\
             # TYPE three_tier_server_errors_total counter\n\
             three_tier_server_errors_total{{kind=\"accept\"}} {}\n\
             three_tier_server_errors_total{{kind=\"thread_start\"}} {}",
            self.accept_errors.load(Ordering::Relaxed),
            self.thread_start_errors.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP three_tier_stdout_dropped_total Log lines not written to stdout because nothing read it (LOG_DIR still has the record).\n\
             # TYPE three_tier_stdout_dropped_total counter\nthree_tier_stdout_dropped_total {}",
            gauges.stdout_dropped
        );
        if self.role != Role::Sender {
            let _ = writeln!(
                out,
                "# HELP three_tier_record_failures_total Messages not recorded (LOG_DIR, or stdout without it), so not acknowledged.\n\
                 # TYPE three_tier_record_failures_total counter\nthree_tier_record_failures_total {}\n\
                 # HELP three_tier_messages_abandoned_total Messages not handled because their client had closed its connection (it stopped waiting).\n\
                 # TYPE three_tier_messages_abandoned_total counter\nthree_tier_messages_abandoned_total {}",
                gauges.record_failures,
                self.abandoned.load(Ordering::Relaxed)
            );
        }
        let (name, help) = match self.role {
            Role::Sender => (
                "three_tier_messages_sent_total",
                "Messages sent (each once, however many retries).",
            ),
            Role::Relay => (
                "three_tier_messages_relayed_total",
                "Messages forwarded and answered 2xx by a sink.",
            ),
            Role::Sink => ("three_tier_messages_logged_total", "Messages logged."),
        };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
            self.messages.load(Ordering::Relaxed)
        );
        let (histogram, peer) = match self.role {
            Role::Sender => ("three_tier_relay_request_duration_seconds", "relay"),
            Role::Relay => ("three_tier_sink_request_duration_seconds", "sink"),
            Role::Sink => return out,
        };
        let _ = writeln!(
            out,
            "# HELP three_tier_upstream_failures_total Calls to the {peer} that did not end in a 2xx, by reason.\n\
             # TYPE three_tier_upstream_failures_total counter"
        );
        for ((_, reason), n) in REASONS.iter().zip(&self.failures) {
            let _ = writeln!(
                out,
                "three_tier_upstream_failures_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        self.upstream.render(
            &mut out,
            histogram,
            &format!("Duration of one call to the {peer}, retries excluded."),
        );
        let _ = writeln!(
            out,
            "# HELP three_tier_dns_lookups_total Lookups of the {peer}'s host names (at most one per name each DNS_REFRESH).\n\
             # TYPE three_tier_dns_lookups_total counter\nthree_tier_dns_lookups_total {}\n\
             # HELP three_tier_dns_failures_total Lookups of the {peer}'s host names that failed or took longer than the hop's timeout; the last answer stays in use.\n\
             # TYPE three_tier_dns_failures_total counter\nthree_tier_dns_failures_total {}",
            self.dns_lookups.load(Ordering::Relaxed),
            self.dns_failures.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn counters_and_histogram_render() {
        let m = Metrics::new(Role::Relay);
        m.request("message", 200);
        m.request("message", 200);
        m.request("healthz", 200);
        m.message();
        m.upstream(Duration::from_millis(3), None);
        m.upstream(Duration::from_secs(20), Some(FailureReason::Timeout));
        let text = m.render(&Gauges {
            in_flight: 1,
            ..Gauges::default()
        });
        assert!(text.contains("three_tier_http_requests_total{path=\"message\",code=\"200\"} 2\n"));
        assert!(text.contains("three_tier_http_requests_in_flight 1\n"));
        assert!(text.contains("three_tier_messages_relayed_total 1\n"));
        assert!(text.contains("three_tier_upstream_failures_total{reason=\"timeout\"} 1\n"));
        assert!(text.contains("three_tier_sink_request_duration_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("three_tier_sink_request_duration_seconds_bucket{le=\"10\"} 1\n"));
        assert!(text.contains("three_tier_sink_request_duration_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("three_tier_sink_request_duration_seconds_count 2\n"));
        assert!(text.contains("three_tier_build_info{tier=\"relay\""));
        m.connections_closed(ClosedReason::Evicted, 3);
        m.connections_open(7);
        m.server_errors(2, 1);
        let text = m.render(&Gauges::default());
        assert!(text.contains("three_tier_server_errors_total{kind=\"accept\"} 2\n"));
        assert!(text.contains("three_tier_server_errors_total{kind=\"thread_start\"} 1\n"));
        assert!(text.contains("three_tier_connections_open 7\n"));
        assert!(text.contains("three_tier_connections_closed_total{reason=\"evicted\"} 3\n"));
        assert!(text.contains("three_tier_connections_closed_total{reason=\"timeout\"} 0\n"));
    }

    #[test]
    fn sink_has_no_upstream_metrics() {
        let text = Metrics::new(Role::Sink).render(&Gauges::default());
        assert!(text.contains("three_tier_messages_logged_total 0\n"));
        assert!(!text.contains("upstream"));
    }
}
