//! Tier 1: posts `Message sent from <ip> on <date>` to `RELAY_URL` every `SEND_INTERVAL`.
//!
//! The seed's shell loop, made dependable. Each message is printed as
//! `********  Sending <message>` and followed by the relay's reply, as the
//! seed's `curl` printed it. Delivery is at least once: every outcome after
//! which the message may not have been logged (no connection, `RELAY_TIMEOUT`,
//! a broken reply, 502, 503 or 504) is retried, with the same request id, up
//! to `SEND_RETRIES` times with exponential backoff and jitter, then logged as
//! failed; the sender goes on with the next and never exits on a transient
//! error (unless `SEND_FAIL_FAST=on`: a smoke test stops at the first). A retry after a timeout may deliver a message twice; the loss report
//! shows such duplicates by request id. Messages start every `SEND_INTERVAL`,
//! give or take a tenth at random (a slow exchange delays the next start, it
//! does not pile messages up). Senders started together would otherwise stay
//! in step, and in step, round-robin relays send each sender's messages to the
//! same sink every time (three senders and three sinks alias exactly). On
//! SIGTERM the send in flight finishes, retries stop, and the process exits 0.
//! Each message carries `X-Request-Id: <ip>-<n>` (n counts from 1; retries keep
//! it), every line about it ends with that id, and after the seed's lines the
//! sender prints the message's lineage: `<id> -> relay <ip> (<version>) -> sink
//! <ip> (<version>) <status> in <ms> ms`. The sender also serves `/healthz`, `/readyz` and `/metrics`,
//! and its flow page: `GET /` draws where its messages went from `GET /flow`
//! (see [`crate::tiers::flow`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::client::{AttemptHook, Payload};
use crate::config::{SendConfig, SenderConfig};
use crate::error::Error;
use crate::escape::escape_message;
use crate::format::now_http_date;
use crate::http::server::Serves;
use crate::http::shutdown::Phase;
use crate::next_hop::upstream::{Upstream, UpstreamReply};
use crate::observe::lineage;
use crate::observe::metrics::FailureReason;
use crate::observe::request_id::IdSource;
use crate::observe::trace::TraceParent;
use crate::otlp::hops::Message as MessageSpan;
use crate::otlp::Tracer;
use crate::record::logger::Event;
use crate::record::message::{Pages, Verb};
use crate::role::Role;
use crate::tiers::flow::{self, Flow, Identity};
use crate::tiers::tier::Tier;
use jitter::Jitter;

mod jitter;

/// First retry waits about this long; each further retry doubles it.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// No retry waits longer than this. With the default `SEND_RETRIES` (6) the
/// waits add up to 2.5 to 5.1 s (half of each is random): longer than a pod
/// takes to restart and rejoin its Service, so a message outlives one.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Runs the sender until `SEND_COUNT` messages were sent, or SIGTERM or SIGINT.
pub fn run(config: SenderConfig) -> Result<(), Error> {
    let (peer, send) = (&config.relay, &config.send);
    let (tier, server) = Tier::start(&config.tier, true)?;
    let relay_url = peer
        .urls
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>();
    let flow = Arc::new(Flow::new(Identity {
        ip: tier.ip,
        host: tier.host.clone(),
        version: tier.version.clone(),
        relay_url: relay_url.join(","),
    }));
    let shutdown = Arc::clone(&tier.shutdown);
    let pages: Arc<dyn Pages> = Arc::clone(&flow) as Arc<dyn Pages>;
    let server_thread = thread::Builder::new()
        .name("server".into())
        .spawn(move || server.run(Serves::Pages(pages), shutdown))
        .map_err(|e| Error::io("starting the server", e))?;

    let relay = Upstream::new(peer, tier.max_pooled, &tier.logger, &tier.metrics);
    let sending = Sending {
        tier: &tier,
        relay: &relay,
        relay_path: peer
            .urls
            .first()
            .map_or_else(|| "/".into(), |u| u.path.clone()),
        send,
        flow: &flow,
    };
    let loop_result = sending.run();
    tier.tracer
        .flush(crate::tiers::tier::flush_within(&config.tier));
    // Nothing is in flight on the sender's server (it serves pages and
    // probes only): once sending is over, stop at once, without a drain.
    tier.shutdown.stop();
    let served = server_thread
        .join()
        .unwrap_or_else(|_| Err(Error::io("server", std::io::Error::other("panicked"))));
    loop_result.and(served)
}

/// One message, its request id and its trace (all its attempts share them).
struct Outgoing {
    id: String,
    text: String,
    /// Its trace: a new one, sampled as the tracer's sampler says.
    trace: TraceParent,
    /// The `traceparent` header it is sent with.
    traceparent: String,
    /// Its trace id, for the log lines and the flow page.
    trace_id: String,
}

impl Outgoing {
    fn new(id: String, text: String, tracer: &Tracer) -> Outgoing {
        let trace = tracer.sample_root(TraceParent::start());
        Outgoing {
            id,
            text,
            trace,
            traceparent: trace.header(),
            trace_id: crate::observe::trace::as_str(&trace.trace_id()).to_string(),
        }
    }

    /// `event` about this message: its request id and trace id.
    fn tag<'e>(&'e self, event: Event<'e>) -> Event<'e> {
        event.request_id(&self.id).trace_id(&self.trace_id)
    }
}

/// How one attempt went.
enum Tried {
    /// Answered 2xx.
    Delivered(UpstreamReply),
    /// Anything else, and whether a retry may deliver it.
    Failed {
        reason: String,
        retryable: bool,
        reply: Option<UpstreamReply>,
    },
}

/// What sending needs, borrowed for the sender's life.
struct Sending<'a> {
    tier: &'a Tier,
    relay: &'a Upstream,
    /// The path of the first `RELAY_URL`: the message span's name.
    relay_path: String,
    send: &'a SendConfig,
    flow: &'a Flow,
}

impl Sending<'_> {
    /// Sends a message every `SEND_INTERVAL` until `SEND_COUNT` or a stop.
    fn run(&self) -> Result<(), Error> {
        let (tier, send) = (self.tier, self.send);
        let mut jitter = Jitter::seeded();
        let ids = IdSource::new(tier.ip, "");
        let (mut total, mut failed) = (0u64, 0u64);
        let mut next_start = Instant::now();
        while tier.shutdown.phase() == Phase::Running && send.count.is_none_or(|n| total < n) {
            total += 1;
            let text = message_text(tier.ip, &now_http_date());
            let message = Outgoing::new(ids.next_id(), text, &tier.tracer);
            if !self.message(&message, &mut jitter) {
                failed += 1;
                if send.fail_fast {
                    break;
                }
            }
            if send.count == Some(total) {
                break;
            }
            next_start += jitter.spread(send.interval);
            let now = Instant::now();
            if next_start < now {
                next_start = now;
            }
            tier.shutdown.wait_for(Phase::Draining, next_start - now);
        }
        if tier.shutdown.phase() == Phase::Running && failed > 0 {
            return Err(Error::SendFailures { failed, total });
        }
        Ok(())
    }

    /// Sends one message with retries; returns whether it was answered 2xx.
    fn message(&self, message: &Outgoing, jitter: &mut Jitter) -> bool {
        let record = Event::record(Verb::Sending, None, &message.text);
        self.tier.logger.log(&message.tag(record));
        self.tier.metrics.message();
        let mut entry = flow::Entry {
            id: message.id.clone(),
            trace_id: message.trace_id.clone(),
            sent: Some(SystemTime::now()),
            ..flow::Entry::default()
        };
        let started = Instant::now();
        let tracer = &self.tier.tracer;
        let span = tracer
            .records(&message.trace)
            .then(|| MessageSpan::start(tracer, &message.trace, &self.relay_path, &message.id));
        // SEND_FAULT: on the first attempt of a fraction of the messages.
        let mut fault = self
            .send
            .fault
            .as_ref()
            .filter(|f| jitter.chance(f.per_million))
            .map(|f| f.header.as_str());
        loop {
            entry.attempts += 1;
            let hook = span.as_ref().map(|s| s as &dyn AttemptHook);
            let tried = self.attempt(message, fault.take(), &mut entry, hook);
            let (reason, reply) = match tried {
                Tried::Delivered(reply) => {
                    if let Some(span) = span {
                        span.end(entry.attempts, Ok(reply.status));
                    }
                    self.delivered(message, &reply, started, entry);
                    return true;
                }
                Tried::Failed {
                    retryable: false,
                    reason,
                    reply,
                } => (reason, reply),
                Tried::Failed { reason, reply, .. } => {
                    let retries_left = entry.attempts <= self.send.retries;
                    if retries_left && self.retry(message, entry.attempts, &reason, jitter) {
                        continue;
                    }
                    (reason, reply)
                }
            };
            if let Some(span) = span {
                span.end(
                    entry.attempts,
                    reply.as_ref().map(|r| r.status).ok_or(reason.as_str()),
                );
            }
            self.gave_up(message, &reason, reply.as_ref(), started, entry);
            return false;
        }
    }

    /// Posts once (with an `X-Fault` header if `fault`), counts the outcome and records its path.
    fn attempt(
        &self,
        message: &Outgoing,
        fault: Option<&str>,
        entry: &mut flow::Entry,
        hook: Option<&dyn AttemptHook>,
    ) -> Tried {
        if let Some(fault) = fault {
            self.tier.metrics.fault("header");
            let text = format!("fault requested (SEND_FAULT): X-Fault: {fault}");
            self.tier
                .logger
                .log(&message.tag(Event::new("fault", &text)));
            entry.faults.push(format!("sent {fault}"));
        }
        let call = Instant::now();
        let outcome = self.relay.post(&Payload {
            body: &message.text,
            request_id: &message.id,
            traceparent: &message.traceparent,
            tracestate: None,
            fault,
            via: None,
            attempts: hook,
        });
        let took = call.elapsed();
        let failure = match &outcome {
            Ok(reply) if (200..300).contains(&reply.status) => None,
            Ok(_) => Some(FailureReason::Status),
            Err(e) => Some(e.reason()),
        };
        self.tier.metrics.upstream(took, failure, &message.trace_id);
        let reply = outcome.as_ref().ok();
        let (relay, sink) = (hop(reply, Role::Relay), hop(reply, Role::Sink));
        let failed_sinks: Vec<String> = reply
            .into_iter()
            .flat_map(|r| {
                r.header_values(&lineage::names::SINK_FAILED)
                    .chain(r.header_values(&lineage::names::SINK_FAILOVER))
            })
            .map(String::from)
            .collect();
        self.flow.attempt(flow::Attempt {
            relay: relay.ip,
            sink: sink.ip,
            failed_sinks: &failed_sinks,
            ok: failure.is_none(),
        });
        entry.relay = relay.ip.map(String::from);
        entry.relay_version = relay.version.map(String::from);
        entry.sink = sink.ip.map(String::from);
        entry.sink_version = sink.version.map(String::from);
        entry.status = reply.map(|r| r.status);
        entry.failed_sinks.extend(failed_sinks);
        // The faults met: by a relay failed over from (its 503), then on the way that answered.
        let met = reply.into_iter().flat_map(UpstreamReply::faults_met);
        let attempt = entry.attempts;
        entry
            .faults
            .extend(met.map(|m| format!("met {m} (attempt {attempt})")));
        match outcome {
            Ok(reply) if failure.is_none() => Tried::Delivered(reply),
            Ok(reply) => Tried::Failed {
                reason: format!(
                    "{} answered {}: {}",
                    reply.url,
                    reply.status,
                    escape_message(&reply.body)
                ),
                // 502, 503, 504: the message may not have arrived.
                retryable: matches!(reply.status, 502..=504),
                reply: Some(reply),
            },
            // Whatever broke, the message may not have arrived.
            Err(e) => Tried::Failed {
                reason: format!("relay {e}"),
                retryable: true,
                reply: None,
            },
        }
    }

    /// Waits before retry `attempt`; `false` if a stop came first.
    fn retry(&self, message: &Outgoing, attempt: u32, reason: &str, jitter: &mut Jitter) -> bool {
        if self.tier.shutdown.phase() != Phase::Running {
            return false;
        }
        self.tier.metrics.retry();
        let wait = jitter.backoff(attempt);
        let text = format!(
            "retry {attempt}/{} in {}ms: {reason}",
            self.send.retries,
            wait.as_millis()
        );
        self.tier
            .logger
            .log(&message.tag(Event::new("retry", &text).warn()));
        !self.tier.shutdown.wait_for(Phase::Draining, wait)
    }

    fn delivered(
        &self,
        message: &Outgoing,
        reply: &UpstreamReply,
        started: Instant,
        mut entry: flow::Entry,
    ) {
        let body = escape_message(&reply.body);
        let event = Event::new("reply", &body).status(reply.status);
        self.tier
            .logger
            .log(&message.tag(event).message(&reply.body));
        // /flow holds the message before its last line, the lineage, is out.
        entry.took = started.elapsed();
        self.flow.message(entry);
        log_lineage(self.tier, message, Some(reply), started);
    }

    fn gave_up(
        &self,
        message: &Outgoing,
        reason: &str,
        reply: Option<&UpstreamReply>,
        started: Instant,
        mut entry: flow::Entry,
    ) {
        let text = format!(
            "message failed after {} attempt(s): {reason}: {}",
            entry.attempts, message.text
        );
        self.tier.metrics.given_up();
        let mut event = message
            .tag(Event::new("failed", &text).warn())
            .message(&message.text);
        if let Some(status) = reply.map(|r| r.status) {
            event = event.status(status);
        }
        self.tier.logger.log(&event);
        entry.took = started.elapsed();
        entry.error = Some(reason.to_string());
        self.flow.message(entry);
        log_lineage(self.tier, message, reply, started);
    }
}

/// The relay or sink hop as `reply` names it.
fn hop(reply: Option<&UpstreamReply>, role: Role) -> lineage::Hop<'_> {
    let (ip, version) = match role {
        Role::Sink => (&lineage::names::SINK_IP, &lineage::names::SINK_VERSION),
        Role::Relay | Role::Sender => (&lineage::names::RELAY_IP, &lineage::names::RELAY_VERSION),
    };
    lineage::Hop {
        ip: reply.and_then(|r| r.header(ip)),
        version: reply.and_then(|r| r.header_where(version, lineage::is_version)),
    }
}

/// Prints `<id> -> relay <ip> (<version>) -> sink <ip> (<version>) <status> in <ms> ms`.
fn log_lineage(tier: &Tier, message: &Outgoing, reply: Option<&UpstreamReply>, started: Instant) {
    let took = started.elapsed();
    let status = reply.map(|r| r.status);
    let text = lineage::line(
        &message.id,
        hop(reply, Role::Relay),
        hop(reply, Role::Sink),
        status,
        took,
    );
    let mut event = message.tag(Event::new("lineage", &text)).duration(took);
    if let Some(status) = status {
        event = event.status(status);
    }
    tier.logger.log(&event);
}

/// The sender's identity as it appears in its messages.
pub fn message_text(ip: IpAddr, date: &str) -> String {
    format!("Message sent from {ip} on {date}")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn message_text_is_the_seeds() {
        assert_eq!(
            message_text("10.0.0.1".parse().unwrap(), "Tue, 24 Nov 2026 23:48:17 GMT"),
            "Message sent from 10.0.0.1 on Tue, 24 Nov 2026 23:48:17 GMT"
        );
    }
}
