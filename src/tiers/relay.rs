//! Tier 2: logs each message, forwards it to `SINK_URL` and answers with the sink's reply.
//!
//! The seed's `relay.php`, with the failures it ignored made visible. The line
//! `Relaying from <peer ip> at <date> : <message>` goes to stdout and, with
//! `LOG_DIR`, to `Relay_<ip>.txt`, tagged with the request id (the client's
//! `X-Request-Id` if valid, else a new one), which is passed to the sink (the
//! envelope of [`crate::http::envelope`] does the id, the line and the relay's own
//! lineage headers). The sink's status and body are passed through as they
//! are, 5xx included (a sink's 503 tells the sender to retry), with the
//! sink's lineage headers; a status outside 200-599, or a redirect, is
//! answered 502. A relay whose own line cannot be written forwards anyway: the
//! sink's record is the delivery. When no sink answers, the relay says so itself: 502 when no
//! connection could be made or the exchange broke, 504 when `SINK_TIMEOUT` ran
//! out, each with one line naming the URL and the reason, and `X-Sink-Failed`
//! naming the sink address; a sink that refused before another answered is
//! named in `X-Sink-Failover` (see [`crate::observe::lineage`]). The relay names
//! itself in `Via` as it forwards, and answers `508 Loop Detected` to a
//! message that already names it, before recording it (see [`crate::observe::via`]).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{AttemptHook, Payload};
use crate::config::RelayConfig;
use crate::error::Error;
use crate::next_hop::upstream::{PostError, Upstream, UpstreamReply};
use crate::observe::lineage;
use crate::observe::metrics::{FailureReason, Metrics};
use crate::observe::via::Hop;
use crate::otlp::hops::Attempts;
use crate::otlp::Tracer;
use crate::record::logger::{Event, Logger};
use crate::record::message::{Message, MessageHandler, Reply, Stamped};

/// The relay's message handler.
#[derive(Debug)]
pub struct Relay {
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    sink: Upstream,
    /// `FAULTS=on`: pass `X-Fault` on to the sink.
    faults: bool,
    /// This relay in `Via`.
    hop: Hop,
    /// Records each attempt at a sink as a CLIENT span (see [`crate::otlp`]).
    tracer: Tracer,
}

impl MessageHandler for Relay {
    fn refuse(&self, message: &Message, id: &str) -> Option<Reply<'static>> {
        let via = message.via.filter(|via| self.hop.is_in(via))?;
        let n = self.metrics.looped();
        let text = format!(
            "relay: this message has come back to the relay that forwarded it (Via: {}): SINK_URL leads back to a relay; {n} so far",
            crate::escape::escape_message(via)
        );
        let event = Event::new("loop", &text).warn().request_id(id).status(508);
        self.logger.log(&event);
        Some(Reply::text(508, text))
    }

    fn handle<'a>(&'a self, message: &Message<'a>, stamped: &Stamped) -> Reply<'a> {
        let trace_id = stamped.trace_id;
        if let Err(e) = stamped.recorded {
            // The relay's own log is a record, not the delivery: forward anyway.
            let text = format!("relay: {e}");
            let event = Event::new("log_failed", &text).warn();
            self.logger
                .log(&event.request_id(stamped.id).trace_id(trace_id));
        }
        // The sink's caller is this relay's span, or, traced, each attempt's own.
        let traceparent = stamped.trace.with_parent(stamped.span_id).header();
        let traced = self.tracer.records(&stamped.trace);
        let attempts =
            traced.then(|| Attempts::new(&self.tracer, stamped.trace, stamped.span_id, stamped.id));
        let via = self.hop.after(message.via);
        let payload = Payload {
            body: message.body,
            request_id: stamped.id,
            traceparent: &traceparent,
            tracestate: message
                .tracestate
                .and_then(crate::observe::trace::tracestate_to_pass),
            fault: message.fault.filter(|_| self.faults),
            via: Some(&via),
            attempts: attempts.as_ref().map(|a| a as &dyn AttemptHook),
        };
        let started = Instant::now();
        let outcome = self.sink.post(&payload);
        let call = Call {
            id: stamped.id,
            trace_id,
            took: started.elapsed(),
        };
        self.answer(&call, outcome)
    }
}

/// One call to the sink, for the metrics and the log.
struct Call<'a> {
    id: &'a str,
    trace_id: &'a str,
    took: Duration,
}

impl Relay {
    /// What the relay answers for the sink's `outcome` of `call`.
    fn answer(&self, call: &Call, outcome: Result<UpstreamReply, PostError>) -> Reply<'static> {
        match outcome {
            Ok(reply) if passes_on(reply.status) => self.passed_on(call, reply),
            Ok(reply) => {
                let text = format!(
                    "relay: sink {} answered {}, which the relay does not pass on (it follows no redirects)",
                    reply.url, reply.status
                );
                self.failed(call, FailureReason::Status, 502, text, &[reply.addr])
            }
            Err(e) => {
                let status = match e {
                    PostError::Timeout { .. } => 504,
                    PostError::Unreachable { .. } | PostError::Failed { .. } => 502,
                };
                let text = format!("relay: sink {e}");
                self.failed(call, e.reason(), status, text, &e.failed_addrs())
            }
        }
    }
}

impl Relay {
    /// The sink's answer, as it is, with its lineage and any sink failed over from.
    fn passed_on(&self, call: &Call, reply: UpstreamReply) -> Reply<'static> {
        let ok = (200..300).contains(&reply.status);
        let failure = (!ok).then_some(FailureReason::Status);
        self.metrics.upstream(call.took, failure, call.trace_id);
        if ok {
            self.metrics.message();
        }
        let mut answer = Reply::text(reply.status, String::new());
        let passed = [
            (lineage::SINK_IP, &lineage::names::SINK_IP),
            (lineage::SINK_HOST, &lineage::names::SINK_HOST),
        ];
        for (header, name) in passed {
            if let Some(value) = reply.header(name) {
                answer = answer.with_header(header, value.to_string());
            }
        }
        let version = reply.header_where(&lineage::names::SINK_VERSION, lineage::is_version);
        if let Some(version) = version {
            answer = answer.with_header(lineage::SINK_VERSION, version.to_string());
        }
        for met in reply.faults_met() {
            answer = answer.with_header(crate::observe::fault::MET, met.to_string());
        }
        for refused in &reply.refused {
            answer = answer.with_header(lineage::SINK_FAILOVER, refused.to_string());
        }
        answer.body = Cow::Owned(reply.body);
        answer
    }

    /// The relay's own 502 or 504, logged, naming the sink addresses that failed.
    fn failed(
        &self,
        call: &Call,
        reason: FailureReason,
        status: u16,
        text: String,
        sinks: &[IpAddr],
    ) -> Reply<'static> {
        self.metrics
            .upstream(call.took, Some(reason), call.trace_id);
        self.logger.log(
            &Event::new("sink_failed", &text)
                .warn()
                .request_id(call.id)
                .trace_id(call.trace_id)
                .status(status)
                .duration(call.took),
        );
        let mut answer = Reply::text(status, text);
        for sink in sinks {
            answer = answer.with_header(lineage::SINK_FAILED, sink.to_string());
        }
        answer
    }
}

/// Whether a sink's status goes back to the client as it is: a final status
/// (200-599) that is not a redirect. A redirect would point the client at a
/// sink it cannot reach, and anything else is not HTTP.
fn passes_on(status: u16) -> bool {
    (200..=599).contains(&status) && !(300..400).contains(&status)
}

/// Runs the relay until SIGTERM or SIGINT.
pub fn run(config: RelayConfig) -> Result<(), Error> {
    crate::tiers::tier::serve(&config.tier, true, |tier| Relay {
        logger: Arc::clone(&tier.logger),
        metrics: Arc::clone(&tier.metrics),
        sink: Upstream::new(&config.sink, tier.max_pooled, &tier.logger, &tier.metrics),
        faults: config.tier.faults,
        hop: Hop::new(),
        tracer: tier.tracer.clone(),
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::config::{LogFormat, RelayConfig, TierSettings};
    use crate::observe::metrics::Gauges;
    use crate::role::Role;
    use std::time::Duration;
    use ureq_proto::http::HeaderMap;

    /// A relay whose sink is never called: the tests hand it the sink's outcomes.
    fn relay() -> Relay {
        let config = RelayConfig::from_lookup(|name| {
            (name == "SINK_URL").then(|| "127.0.0.1:9/sink.php".to_string())
        })
        .unwrap();
        let ip = [127, 0, 0, 1].into();
        let logger = Arc::new(Logger::new(Role::Relay, None, ip, LogFormat::Text, false).unwrap());
        let metrics = Arc::new(Metrics::new(Role::Relay));
        Relay {
            sink: Upstream::new(&config.sink, 4, &logger, &metrics),
            logger,
            metrics,
            faults: false,
            hop: Hop::new(),
            tracer: Tracer::off(),
        }
    }

    fn sink_reply(status: u16, headers: &[(&'static str, &str)]) -> UpstreamReply {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, value.parse().unwrap());
        }
        UpstreamReply {
            status,
            body: format!("sink said {status}"),
            url: "http://127.0.0.1:9/sink.php".into(),
            headers: map,
            addr: "10.0.2.1".parse().unwrap(),
            refused: vec!["10.0.2.9".parse().unwrap()],
            refused_headers: Vec::new(),
        }
    }

    fn call(id: &str, took: Duration) -> Call<'_> {
        Call {
            id,
            trace_id: "0af7651916cd43dd8448eb211c80319c",
            took,
        }
    }

    fn metrics(relay: &Relay) -> String {
        relay.metrics.render(&Gauges::default())
    }

    #[test]
    fn a_sinks_answer_is_passed_on_with_its_lineage_and_failover() {
        let relay = relay();
        let ok = sink_reply(
            200,
            &[
                (lineage::SINK_IP, "10.0.2.1"),
                (lineage::SINK_HOST, "bad host"),
                (lineage::SINK_VERSION, "v0.1.0+abc1234 blue"),
            ],
        );
        let reply = relay.answer(&call("a-1", Duration::from_millis(1)), Ok(ok));
        assert_eq!((reply.status, reply.body.as_ref()), (200, "sink said 200"));
        assert_eq!(
            reply.headers,
            vec![
                (lineage::SINK_IP, "10.0.2.1".into()),
                (lineage::SINK_VERSION, "v0.1.0+abc1234 blue".into()),
                (lineage::SINK_FAILOVER, "10.0.2.9".into())
            ],
            "an unsafe header value is not passed on"
        );
        assert!(metrics(&relay).contains("three_tier_messages_relayed_total 1\n"));
        let busy = relay.answer(
            &call("a-2", Duration::from_millis(1)),
            Ok(sink_reply(503, &[])),
        );
        assert_eq!(busy.status, 503, "a sink's 503 tells the sender to retry");
        assert!(metrics(&relay).contains("three_tier_messages_relayed_total 1\n"));
        assert!(
            metrics(&relay).contains("three_tier_upstream_failures_total{reason=\"status\"} 1\n")
        );
    }

    #[test]
    fn a_redirect_or_no_answer_is_the_relays_own_502_or_504_naming_the_sink() {
        let relay = relay();
        let moved = relay.answer(&call("a-1", Duration::ZERO), Ok(sink_reply(302, &[])));
        assert_eq!(moved.status, 502);
        assert!(
            moved
                .body
                .contains("answered 302, which the relay does not pass on"),
            "{}",
            moved.body
        );
        assert_eq!(
            moved.headers,
            vec![(lineage::SINK_FAILED, "10.0.2.1".into())]
        );
        let timeout = PostError::Timeout {
            url: "http://sink-svc:80/".into(),
            after: Duration::from_secs(2),
            addr: Some("10.0.2.3".parse().unwrap()),
        };
        let late = relay.answer(&call("a-2", Duration::from_secs(2)), Err(timeout));
        assert_eq!(late.status, 504);
        assert_eq!(
            late.headers,
            vec![(lineage::SINK_FAILED, "10.0.2.3".into())]
        );
        let refused = PostError::Unreachable {
            attempts: vec!["http://10.0.2.4:80/: connection refused".into()],
            refused: vec!["10.0.2.4".parse().unwrap()],
        };
        let down = relay.answer(&call("a-3", Duration::ZERO), Err(refused));
        assert_eq!(down.status, 502);
        assert!(down.body.starts_with("relay: sink "), "{}", down.body);
        let text = metrics(&relay);
        for reason in ["status", "timeout", "refused"] {
            assert!(
                text.contains(&format!(
                    "three_tier_upstream_failures_total{{reason=\"{reason}\"}} 1\n"
                )),
                "{reason}: {text}"
            );
        }
    }
}
