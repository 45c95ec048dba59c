//! The exposition `/metrics` serves: Prometheus's text format or OpenMetrics, every family a tier exposes, written by hand.
//!
//! The set is small and fixed, so the encoder is a few dozen lines with no
//! dependency, checked against real parsers: the integration tests feed
//! `/metrics` to `promtool check metrics`, and scripts/test-monitoring.py's
//! OpenMetrics to prometheus_client.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::histogram::{Exemplar, Histogram};
use super::{Gauges, Metrics, CLOSED, FAULT_KINDS, PATH_CLASSES, REASONS, STATUSES};
use crate::role::Role;

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

/// Writes an exposition in either format: families, samples, exemplars.
pub struct Writer {
    out: String,
    format: Format,
}

impl Writer {
    /// `# HELP` and `# TYPE` of the family whose samples are named `name`
    /// (OpenMetrics names a counter's family without `_total`, an info
    /// family without `_info`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let (family, kind) = match (self.format, kind) {
            (Format::OpenMetrics, "counter") => (name.trim_end_matches("_total"), kind),
            (Format::OpenMetrics, "info") => (name.trim_end_matches("_info"), kind),
            (_, "info") => (name, "gauge"),
            _ => (name, kind),
        };
        let _ = writeln!(self.out, "# HELP {family} {help}\n# TYPE {family} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        self.sample_with_exemplar(name, labels, value, None);
    }

    pub fn sample_with_exemplar(
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
            let id = crate::observe::trace::as_str(&e.trace_id);
            let _ = write!(
                self.out,
                " # {{trace_id=\"{id}\"}} {} {:.3}",
                e.seconds, e.at
            );
        }
        self.out.push('\n');
    }

    /// A histogram family: its buckets with their exemplars, its sum and count.
    pub fn histogram(&mut self, h: &Histogram, name: &str, help: &str) {
        self.family(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, cumulative, exemplar) in h.cumulative() {
            let labels = format!("le=\"{bound}\"");
            self.sample_with_exemplar(&bucket, &labels, cumulative, exemplar);
        }
        self.sample(&format!("{name}_sum"), "", h.sum_seconds());
        self.sample(&format!("{name}_count"), "", h.count());
    }

    /// A family of one sample without labels.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }

    pub fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

impl Metrics {
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
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        w.single(
            "three_tier_spans_exported_total",
            "counter",
            "Spans the trace collector took (OTLP).",
            load(&self.spans_exported),
        );
        w.single(
            "three_tier_spans_dropped_total",
            "counter",
            "Spans lost: the export queue was full, or their export was given up.",
            load(&self.spans_dropped),
        );
        w.single("three_tier_span_export_failures_total", "counter", "Span exports that failed (each try: no answer, a timeout, or a status that is not 2xx).", load(&self.span_export_failures));
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
        w.histogram(&self.upstream, histogram, &help);
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
    use crate::observe::metrics::{ClosedReason, FailureReason};
    use std::time::Duration;

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
