//! Prometheus metrics for one tier, in the text exposition format.
//!
//! The set is small and fixed, so the encoder is hand-written (a few dozen
//! lines, no dependency) and checked against a real parser: the integration
//! tests feed `/metrics` to `promtool check metrics`. Counters are atomics; the
//! one labelled family (requests by path class and status) is a small map.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use std::time::SystemTime;

use crate::role::Role;
use crate::trace::TraceIdText;

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
const PATH_CLASSES: [&str; 7] = [
    "fault", "healthz", "message", "metrics", "other", "page", "readyz",
];
/// The kinds of fault counted (see [`crate::fault`]): a status, a close, a
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

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The two text formats `/metrics` speaks: Prometheus's 0.0.4, and
/// OpenMetrics 1.0 for a scraper that asks for it, whose histograms carry
/// exemplars (the trace id of a recent call per bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// What a scraper's `Accept` header asks for.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of an exposition in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The latest call that fell in a bucket, for its exemplar.
#[derive(Debug, Clone, Copy)]
struct Exemplar {
    trace_id: TraceIdText,
    seconds: f64,
    /// Unix time, seconds.
    at: f64,
}

/// A latency histogram with fixed buckets, and an exemplar per bucket.
#[derive(Debug, Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
    /// One per bucket and one for +Inf; a busy slot is skipped, never waited for.
    exemplars: [Mutex<Option<Exemplar>>; BUCKETS.len() + 1],
}

impl Histogram {
    fn observe(&self, d: Duration, trace_id: &str) {
        let seconds = d.as_secs_f64();
        let bucket = BUCKETS.iter().position(|b| seconds <= *b);
        if let Some(i) = bucket {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let (Ok(mut slot), Ok(id)) = (
            self.exemplars[bucket.unwrap_or(BUCKETS.len())].try_lock(),
            <TraceIdText>::try_from(trace_id.as_bytes()),
        ) else {
            return;
        };
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |t| t.as_secs_f64());
        *slot = Some(Exemplar {
            trace_id: id,
            seconds,
            at,
        });
    }

    fn render(&self, w: &mut Writer, name: &str, help: &str) {
        w.family(name, "histogram", help);
        let mut cumulative = 0;
        let bounds = BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()]);
        for (i, bound) in bounds.enumerate() {
            cumulative += self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            if i == BUCKETS.len() {
                cumulative = self.count.load(Ordering::Relaxed);
            }
            let labels = format!("le=\"{bound}\"");
            w.sample_with_exemplar(
                &format!("{name}_bucket"),
                &labels,
                cumulative,
                self.exemplar(i),
            );
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        w.sample(&format!("{name}_sum"), "", sum);
        w.sample(
            &format!("{name}_count"),
            "",
            self.count.load(Ordering::Relaxed),
        );
    }

    fn exemplar(&self, bucket: usize) -> Option<Exemplar> {
        *self.exemplars[bucket]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes an exposition in either format: families, samples, exemplars.
struct Writer {
    out: String,
    format: Format,
}

impl Writer {
    /// `# HELP` and `# TYPE` of the family whose samples are named `name`
    /// (OpenMetrics names a counter's family without `_total`, an info
    /// family without `_info`).
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let (family, kind) = match (self.format, kind) {
            (Format::OpenMetrics, "counter") => (name.trim_end_matches("_total"), kind),
            (Format::OpenMetrics, "info") => (name.trim_end_matches("_info"), kind),
            (_, "info") => (name, "gauge"),
            _ => (name, kind),
        };
        let _ = writeln!(self.out, "# HELP {family} {help}\n# TYPE {family} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        self.sample_with_exemplar(name, labels, value, None);
    }

    fn sample_with_exemplar(
        &mut self,
        name: &str,
        labels: &str,
        value: impl std::fmt::Display,
        exemplar: Option<Exemplar>,
    ) {
        let labels = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = write!(self.out, "{name}{labels} {value}");
        if let (Format::OpenMetrics, Some(e)) = (self.format, exemplar) {
            let id = crate::trace::as_str(&e.trace_id);
            let _ = write!(
                self.out,
                " # {{trace_id=\"{id}\"}} {} {:.3}",
                e.seconds, e.at
            );
        }
        self.out.push('\n');
    }

    /// A family of one sample without labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }

    fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

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

    /// Records how many inbound connections are open now (the server samples it each second).
    pub fn connections_open(&self, n: usize) {
        self.open.store(n as u64, Ordering::Relaxed);
    }

    /// The exposition in Prometheus's text format, with what `gauges` the caller read.
    #[cfg(test)]
    pub fn render(&self, gauges: &Gauges) -> String {
        self.render_as(gauges, Format::Prometheus)
    }

    /// The exposition in `format`.
    pub fn render_as(&self, gauges: &Gauges, format: Format) -> String {
        let mut w = Writer {
            out: String::with_capacity(4096),
            format,
        };
        self.every_tier(&mut w, gauges);
        match self.role {
            Role::Sender => self.sender(&mut w),
            Role::Relay | Role::Sink => self.receiver(&mut w, gauges),
        }
        if self.role != Role::Sink {
            self.outbound(&mut w);
        }
        w.finish()
    }

    fn every_tier(&self, w: &mut Writer, gauges: &Gauges) {
        w.family(
            "three_tier_build_info",
            "info",
            "Build of this tier; always 1.",
        );
        let labels = format!(
            "tier=\"{}\",version=\"{}\",revision=\"{}\"",
            self.role.name(),
            crate::version::VERSION,
            crate::version::REVISION
        );
        w.sample("three_tier_build_info", &labels, 1);
        let name = "three_tier_http_requests_total";
        w.family(
            name,
            "counter",
            "Requests answered, by path class and status code.",
        );
        let per_class = self.requests.chunks(STATUSES.len());
        for (class, counts) in PATH_CLASSES.iter().zip(per_class) {
            for (code, n) in STATUSES.zip(counts) {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    w.sample(name, &format!("path=\"{class}\",code=\"{code}\""), n);
                }
            }
        }
        w.single(
            "three_tier_http_requests_in_flight",
            "gauge",
            "Message requests being handled now.",
            gauges.in_flight,
        );
        w.single(
            "three_tier_in_flight_limit",
            "gauge",
            "MAX_IN_FLIGHT: messages handled at once, at most.",
            gauges.in_flight_limit,
        );
        w.single(
            "three_tier_ready",
            "gauge",
            "1 while /readyz answers 200 (not draining, the record writable), else 0.",
            u8::from(gauges.ready),
        );
        let name = "three_tier_connections_closed_total";
        w.family(
            name,
            "counter",
            "Inbound connections closed by the server on its own, by reason.",
        );
        for ((_, reason), n) in CLOSED.iter().zip(&self.closed) {
            w.sample(
                name,
                &format!("reason=\"{reason}\""),
                n.load(Ordering::Relaxed),
            );
        }
        w.single(
            "three_tier_connections_open",
            "gauge",
            "Inbound connections open, sampled each second; MAX_CONNECTIONS bounds it.",
            self.open.load(Ordering::Relaxed),
        );
        w.single(
            "three_tier_connections_limit",
            "gauge",
            "MAX_CONNECTIONS as served (lowered to what RLIMIT_NOFILE allows).",
            gauges.connections_limit,
        );
        let name = "three_tier_server_errors_total";
        w.family(
            name,
            "counter",
            "The HTTP server's own errors: failed accept calls, connection threads not started.",
        );
        w.sample(
            name,
            "kind=\"accept\"",
            self.accept_errors.load(Ordering::Relaxed),
        );
        w.sample(
            name,
            "kind=\"thread_start\"",
            self.thread_start_errors.load(Ordering::Relaxed),
        );
        let name = "three_tier_faults_injected_total";
        w.family(
            name,
            "counter",
            "Faults injected (FAULTS=on: X-Fault, POST /fault, SEND_FAULT), by tier and kind.",
        );
        for (kind, n) in FAULT_KINDS.iter().zip(&self.faults) {
            let labels = format!("tier=\"{}\",kind=\"{kind}\"", self.role.name());
            w.sample(name, &labels, n.load(Ordering::Relaxed));
        }
        w.single("three_tier_stdout_dropped_total", "counter", "Log lines not written to stdout because nothing read it (LOG_DIR still has the record).", gauges.stdout_dropped);
    }

    fn sender(&self, w: &mut Writer) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        w.single(
            "three_tier_messages_sent_total",
            "counter",
            "Messages sent (each once, however many retries).",
            load(&self.messages),
        );
        w.single(
            "three_tier_messages_failed_total",
            "counter",
            "Messages given up after every retry: lost unless an answer was lost instead.",
            load(&self.given_up),
        );
        w.single(
            "three_tier_message_retries_total",
            "counter",
            "Attempts retried (no connection, a timeout, a broken reply, 502, 503 or 504).",
            load(&self.retries),
        );
    }

    fn receiver(&self, w: &mut Writer, gauges: &Gauges) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (name, help) = match self.role {
            Role::Relay => (
                "three_tier_messages_relayed_total",
                "Messages forwarded and answered 2xx by a sink.",
            ),
            _ => ("three_tier_messages_logged_total", "Messages logged."),
        };
        w.single(name, "counter", help, load(&self.messages));
        w.single(
            "three_tier_record_failures_total",
            "counter",
            "Messages not recorded (LOG_DIR, or stdout without it), so not acknowledged.",
            gauges.record_failures,
        );
        w.single("three_tier_messages_abandoned_total", "counter", "Messages not handled because their client had closed its connection (it stopped waiting).", load(&self.abandoned));
        if self.role == Role::Relay {
            w.single(
                "three_tier_messages_looped_total",
                "counter",
                "Messages that came back to the relay that had forwarded them (a loop), answered 508.",
                load(&self.looped),
            );
        }
        w.single(
            "three_tier_traceparent_replaced_total",
            "counter",
            "Incoming traceparent headers that were invalid and replaced by a new trace.",
            load(&self.traceparent_replaced),
        );
    }

    fn outbound(&self, w: &mut Writer) {
        let (histogram, peer) = match self.role {
            Role::Sender => ("three_tier_relay_request_duration_seconds", "relay"),
            _ => ("three_tier_sink_request_duration_seconds", "sink"),
        };
        let name = "three_tier_upstream_failures_total";
        w.family(
            name,
            "counter",
            &format!("Calls to the {peer} that did not end in a 2xx, by reason."),
        );
        for ((_, reason), n) in REASONS.iter().zip(&self.failures) {
            w.sample(
                name,
                &format!("reason=\"{reason}\""),
                n.load(Ordering::Relaxed),
            );
        }
        let help = format!("Duration of one call to the {peer}, retries excluded.");
        self.upstream.render(w, histogram, &help);
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        w.single(
            "three_tier_dns_lookups_total",
            "counter",
            &format!("Lookups of the {peer}'s host names (at most one per name each DNS_REFRESH)."),
            load(&self.dns_lookups),
        );
        w.single("three_tier_dns_failures_total", "counter", &format!("Lookups of the {peer}'s host names that failed or took longer than the hop's timeout; the last answer stays in use."), load(&self.dns_failures));
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
        m.upstream(
            Duration::from_millis(3),
            None,
            "0af7651916cd43dd8448eb211c80319c",
        );
        m.upstream(
            Duration::from_secs(20),
            Some(FailureReason::Timeout),
            "0af7651916cd43dd8448eb211c80319d",
        );
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
    fn openmetrics_names_families_as_the_spec_does_and_carries_exemplars() {
        let m = Metrics::new(Role::Relay);
        m.upstream(
            Duration::from_millis(3),
            None,
            "0af7651916cd43dd8448eb211c80319c",
        );
        let gauges = Gauges::default();
        let text = m.render_as(&gauges, Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE three_tier_build info\nthree_tier_build_info{tier=\"relay\""));
        assert!(text.contains("# TYPE three_tier_upstream_failures counter\nthree_tier_upstream_failures_total{reason=\"refused\"} 0\n"));
        let bucket = "three_tier_sink_request_duration_seconds_bucket{le=\"0.005\"} 1 # {trace_id=\"0af7651916cd43dd8448eb211c80319c\"} 0.003 ";
        assert!(text.contains(bucket), "{text}");
        assert!(
            !text.contains("le=\"0.001\"} 0 #"),
            "no exemplar where no call fell"
        );
        let plain = m.render_as(&gauges, Format::Prometheus);
        assert!(!plain.contains(" # {"), "no exemplars in the 0.0.4 format");
        assert!(plain.contains("# TYPE three_tier_build_info gauge\n"));
        assert_eq!(
            Format::from_accept(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(Some("text/plain")), Format::Prometheus);
    }

    #[test]
    fn sink_has_no_upstream_metrics() {
        let text = Metrics::new(Role::Sink).render(&Gauges::default());
        assert!(text.contains("three_tier_messages_logged_total 0\n"));
        assert!(!text.contains("upstream"));
    }
}
