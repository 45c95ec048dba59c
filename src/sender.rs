//! Tier 1: posts `Message sent from <ip> on <date>` to `RELAY_URL` every `SEND_INTERVAL`.
//!
//! The seed's shell loop, made dependable. Each message is printed as
//! `********  Sending <message>` and followed by the relay's reply, as the
//! seed's `curl` printed it. Delivery is at least once: every outcome after
//! which the message may not have been logged (no connection, `RELAY_TIMEOUT`,
//! a broken reply, 502, 503 or 504) is retried, with the same request id, up
//! to `SEND_RETRIES` times with exponential backoff and jitter, then logged as
//! failed; the sender goes on with the next and never exits on a transient
//! error. A retry after a timeout may deliver a message twice; the loss report
//! shows such duplicates by request id. Messages start every `SEND_INTERVAL`
//! (a slow exchange delays the next start, it does not pile messages up). On
//! SIGTERM the send in flight finishes, retries stop, and the process exits 0.
//! Each message carries `X-Request-Id: <ip>-<n>` (n counts from 1; retries keep
//! it), every line about it ends with that id, and after the seed's lines the
//! sender prints the message's lineage: `<id> -> relay <ip> -> sink <ip> <status>
//! in <ms> ms`. The sender also serves `/healthz`, `/readyz` and `/metrics`.

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, SendConfig};
use crate::escape_message;
use crate::lineage;
use crate::logger::{now_http_date, Event};
use crate::metrics::FailureReason;
use crate::request_id::{self, IdSource};
use crate::shutdown::Phase;
use crate::tier::Tier;
use crate::upstream::{Upstream, UpstreamReply};
use crate::Error;

/// First retry waits about this long; each further retry doubles it.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// No retry waits longer than this.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Runs the sender until `SEND_COUNT` messages were sent, or SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), Error> {
    let (Some(peer), Some(send)) = (config.peer.clone(), config.send.clone()) else {
        return Err(Error::Config {
            name: "RELAY_URL",
            value: None,
            expected: crate::parse::URL_LIST_FORM.into(),
        });
    };
    let (tier, server) = Tier::start(&config)?;
    let shutdown = Arc::clone(&tier.shutdown);
    let server_thread = thread::Builder::new()
        .name("server".into())
        .spawn(move || server.run(None, shutdown))
        .map_err(|e| Error::io("starting the probe server", e))?;

    let relay = Upstream::new(&peer);
    let loop_result = send_loop(&tier, &relay, &send);
    // No Service routes to a sender: once sending is over, stop at once.
    tier.shutdown.stop();
    let served = server_thread
        .join()
        .unwrap_or_else(|_| Err(Error::io("probe server", std::io::Error::other("panicked"))));
    loop_result.and(served)
}

fn send_loop(tier: &Tier, relay: &Upstream, send: &SendConfig) -> Result<(), Error> {
    let mut jitter = Jitter::seeded();
    let ids = IdSource::new(tier.ip, "");
    let (mut total, mut failed) = (0u64, 0u64);
    let mut next_start = Instant::now();
    while tier.shutdown.phase() == Phase::Running && send.count.is_none_or(|n| total < n) {
        total += 1;
        let message = Outgoing {
            id: ids.next_id(),
            text: message_text(tier.ip, &now_http_date()),
        };
        if !send_one(tier, relay, send, &message, &mut jitter) {
            failed += 1;
        }
        if send.count == Some(total) {
            break;
        }
        next_start += send.interval;
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

/// One message and its request id.
struct Outgoing {
    id: String,
    text: String,
}

/// Sends one message with retries; returns whether it was answered 2xx.
fn send_one(
    tier: &Tier,
    relay: &Upstream,
    send: &SendConfig,
    message: &Outgoing,
    jitter: &mut Jitter,
) -> bool {
    let (logger, id) = (&tier.logger, message.id.as_str());
    let sending = format!("********  Sending {}", message.text);
    logger.log(
        &Event::new("sending", &sending)
            .request_id(id)
            .message(&message.text),
    );
    tier.metrics.message();
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let call = Instant::now();
        let outcome = relay.post(&message.text, &[(request_id::HEADER, id)]);
        let took = call.elapsed();
        let failure = match &outcome {
            Ok(reply) if (200..300).contains(&reply.status) => None,
            Ok(_) => Some(FailureReason::Status),
            Err(e) => Some(e.reason()),
        };
        tier.metrics.downstream(took, failure);
        let retryable = match &outcome {
            Ok(reply) if failure.is_none() => {
                let body = escape_message(&reply.body);
                logger.log(
                    &Event::new("reply", &body)
                        .request_id(id)
                        .status(reply.status)
                        .message(&reply.body),
                );
                log_lineage(tier, id, Some(reply), started);
                return true;
            }
            Ok(reply) => matches!(reply.status, 502..=504),
            // Whatever broke, the message may not have arrived.
            Err(_) => true,
        };
        let reason = match &outcome {
            Ok(reply) => format!(
                "{} answered {}: {}",
                reply.url,
                reply.status,
                escape_message(&reply.body)
            ),
            Err(e) => format!("relay {e}"),
        };
        let status = outcome.as_ref().ok().map(|r| r.status);
        let stopping = tier.shutdown.phase() != Phase::Running;
        if !retryable || attempt >= send.retries || stopping {
            let text = format!(
                "message failed after {} attempt(s): {reason}: {}",
                attempt + 1,
                message.text
            );
            let mut event = Event::new("failed", &text)
                .warn()
                .request_id(id)
                .message(&message.text);
            if let Some(status) = status {
                event = event.status(status);
            }
            logger.log(&event);
            log_lineage(tier, id, outcome.as_ref().ok(), started);
            return false;
        }
        attempt += 1;
        let wait = jitter.backoff(attempt);
        let text = format!(
            "retry {attempt}/{} in {}ms: {reason}",
            send.retries,
            wait.as_millis()
        );
        logger.log(&Event::new("retry", &text).warn().request_id(id));
        if tier.shutdown.wait_for(Phase::Draining, wait) {
            let text = format!(
                "message failed: stopping before retry {attempt}: {}",
                message.text
            );
            logger.log(
                &Event::new("failed", &text)
                    .warn()
                    .request_id(id)
                    .message(&message.text),
            );
            return false;
        }
    }
}

/// Prints `<id> -> relay <ip> -> sink <ip> <status> in <ms> ms`.
fn log_lineage(tier: &Tier, id: &str, reply: Option<&UpstreamReply>, started: Instant) {
    let took = started.elapsed();
    let header = |name: &str| reply.and_then(|r| r.header(name));
    let status = reply.map(|r| r.status);
    let text = lineage::line(
        id,
        header(lineage::RELAY_IP),
        header(lineage::SINK_IP),
        status,
        took,
    );
    let mut event = Event::new("lineage", &text).request_id(id).duration(took);
    if let Some(status) = status {
        event = event.status(status);
    }
    tier.logger.log(&event);
}

/// Exponential backoff with "equal jitter": half fixed, half random.
struct Jitter(u64);

impl Jitter {
    fn seeded() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }

    /// xorshift64: plenty for spreading retries, no dependency.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The wait before retry `attempt` (1-based).
    fn backoff(&mut self, attempt: u32) -> Duration {
        let ceiling = BACKOFF_BASE
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(BACKOFF_MAX);
        let half = ceiling / 2;
        half + Duration::from_nanos(self.next() % (half.as_nanos() as u64 + 1))
    }
}

/// The sender's identity as it appears in its messages.
pub fn message_text(ip: IpAddr, date: &str) -> String {
    format!("Message sent from {ip} on {date}")
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let mut j = Jitter(42);
        for attempt in 1..=12u32 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_MAX);
            for _ in 0..50 {
                let d = j.backoff(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let mut j = Jitter::seeded();
        let waits: std::collections::HashSet<Duration> = (0..20).map(|_| j.backoff(3)).collect();
        assert!(waits.len() > 1);
    }

    #[test]
    fn message_text_is_the_seeds() {
        assert_eq!(
            message_text("10.0.0.1".parse().unwrap(), "Tue, 24 Nov 2026 23:48:17 GMT"),
            "Message sent from 10.0.0.1 on Tue, 24 Nov 2026 23:48:17 GMT"
        );
    }
}
