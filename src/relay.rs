//! Tier 2: logs each message, forwards it to `SINK_URL` and answers with the sink's reply.
//!
//! The seed's `relay.php`, with the failures it ignored made visible. The line
//! `Relaying from <peer ip> at <date> : <message>` goes to stdout and, with
//! `LOG_DIR`, to `Relay_<ip>.txt`, tagged with the request id (the client's
//! `X-Request-Id` if valid, else a new one), which is passed to the sink. The
//! sink's status and body are passed through as they are, 5xx included (a
//! sink's 503 tells the sender to retry), with the sink's lineage headers and
//! the relay's own; a status outside 200-599, or a redirect, is answered 502. When no sink answers, the relay says so itself: 502 when no
//! connection could be made or the exchange broke, 504 when `SINK_TIMEOUT` ran
//! out, each with one line naming the URL and the reason, and `X-Sink-Failed`
//! naming the sink address; a sink that refused before another answered is
//! named in `X-Sink-Failover` (see [`crate::lineage`]).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, PeerConfig};
use crate::lineage;
use crate::logger::{Event, Logger};
use crate::metrics::{FailureReason, Metrics};
use crate::request_id::{self, IdSource};
use crate::server::{Message, MessageHandler, Reply};
use crate::tier::Tier;
use crate::upstream::{PostError, Upstream, UpstreamReply};
use crate::Error;

/// The relay's message handler.
#[derive(Debug)]
pub struct Relay {
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    ids: IdSource,
    own_headers: Vec<(&'static str, String)>,
    sink: Upstream,
}

impl Relay {
    fn new(tier: &Tier, sink: &PeerConfig) -> Relay {
        Relay {
            logger: Arc::clone(&tier.logger),
            metrics: Arc::clone(&tier.metrics),
            ids: IdSource::new(tier.ip, "r"),
            own_headers: lineage::own_headers(
                lineage::RELAY_IP,
                lineage::RELAY_HOST,
                tier.ip,
                &tier.host,
            ),
            sink: Upstream::new(sink, tier.max_pooled, &tier.logger, &tier.metrics),
        }
    }
}

impl MessageHandler for Relay {
    fn handle<'a>(&'a self, message: &Message<'a>) -> Reply<'a> {
        let id = self.ids.keep_or_make(message.request_id);
        let event = message.event("relaying", "Relaying from", &id);
        if let Err(e) = self.logger.record(&event) {
            // The relay's own log is a record, not the delivery: forward anyway.
            self.logger.log(
                &Event::new("log_failed", &format!("relay: {e}"))
                    .warn()
                    .request_id(&id),
            );
        }
        let started = Instant::now();
        let outcome = self.sink.post(message.body, &id);
        let took = started.elapsed();
        let mut reply = match outcome {
            Ok(reply) if passes_on(reply.status) => self.passed_on(reply, took),
            Ok(reply) => {
                let text = format!(
                    "relay: sink {} answered {}, which the relay does not pass on (it follows no redirects)",
                    reply.url, reply.status
                );
                self.failed(&id, FailureReason::Status, 502, text, &[reply.addr], took)
            }
            Err(e) => {
                let status = match e {
                    PostError::Timeout { .. } => 504,
                    PostError::Unreachable { .. } | PostError::Failed { .. } => 502,
                };
                let text = format!("relay: sink {e}");
                self.failed(&id, e.reason(), status, text, &e.failed_addrs(), took)
            }
        };
        let own = self.own_headers.iter();
        reply
            .headers
            .extend(own.map(|(name, value)| (*name, Cow::Borrowed(value.as_str()))));
        reply.with_header(request_id::HEADER, id)
    }
}

impl Relay {
    /// The sink's answer, as it is, with its lineage and any sink failed over from.
    fn passed_on(&self, reply: UpstreamReply, took: Duration) -> Reply<'static> {
        let ok = (200..300).contains(&reply.status);
        self.metrics
            .downstream(took, (!ok).then_some(FailureReason::Status));
        if ok {
            self.metrics.message();
        }
        let mut answer = Reply::text(reply.status, String::new());
        for name in [lineage::SINK_IP, lineage::SINK_HOST] {
            if let Some(value) = reply.header(name) {
                answer = answer.with_header(name, value.to_string());
            }
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
        id: &str,
        reason: FailureReason,
        status: u16,
        text: String,
        sinks: &[IpAddr],
        took: Duration,
    ) -> Reply<'static> {
        self.metrics.downstream(took, Some(reason));
        self.logger.log(
            &Event::new("sink_failed", &text)
                .warn()
                .request_id(id)
                .status(status)
                .duration(took),
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
pub fn run(config: Config) -> Result<(), Error> {
    let peer = config.peer.clone().ok_or_else(|| Error::Config {
        name: "SINK_URL",
        value: None,
        expected: crate::parse::URL_LIST_FORM.into(),
    })?;
    crate::tier::serve(&config, move |tier| Arc::new(Relay::new(tier, &peer)))
}
