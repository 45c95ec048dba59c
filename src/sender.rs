//! Tier 1: posts `Message sent from <ip> on <date>` to `RELAY_URL` every `SEND_INTERVAL`.
//!
//! The seed's shell loop, made dependable. Each message is printed as
//! `********  Sending <message>` and followed by the relay's reply, as the
//! seed's `curl` printed it. A message that could not connect, or was answered
//! 502, 503 or 504, is retried up to `SEND_RETRIES` times with exponential
//! backoff and jitter, then logged as failed; the sender goes on with the next
//! and never exits on a transient error. Messages start every `SEND_INTERVAL`
//! (a slow exchange delays the next start, it does not pile messages up). On
//! SIGTERM the send in flight finishes, retries stop, and the process exits 0.
//! The sender also serves `/healthz` and `/readyz` for its probes.

use std::net::IpAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Config, SendConfig};
use crate::escape_message;
use crate::logger::{now_http_date, Logger};
use crate::shutdown::{Phase, Shutdown};
use crate::tier::Tier;
use crate::upstream::{PostError, Upstream};
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
    let (mut total, mut failed) = (0u64, 0u64);
    let mut next_start = Instant::now();
    while tier.shutdown.phase() == Phase::Running && send.count.is_none_or(|n| total < n) {
        total += 1;
        let text = message_text(tier.ip, &now_http_date());
        if !send_one(
            &tier.logger,
            relay,
            send,
            &text,
            &tier.shutdown,
            &mut jitter,
        ) {
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

/// Sends one message with retries; returns whether it was answered 2xx.
fn send_one(
    logger: &Logger,
    relay: &Upstream,
    send: &SendConfig,
    text: &str,
    shutdown: &Shutdown,
    jitter: &mut Jitter,
) -> bool {
    logger.event(&format!("********  Sending {text}"));
    let mut attempt = 0;
    loop {
        let outcome = relay.post(text, &[]);
        let retryable = match &outcome {
            Ok(reply) if (200..300).contains(&reply.status) => {
                logger.event(&escape_message(&reply.body));
                return true;
            }
            Ok(reply) => matches!(reply.status, 502..=504),
            Err(PostError::Unreachable { .. }) => true,
            Err(_) => false,
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
        let stopping = shutdown.phase() != Phase::Running;
        if !retryable || attempt >= send.retries || stopping {
            logger.event(&format!(
                "message failed after {} attempt(s): {reason}: {text}",
                attempt + 1
            ));
            return false;
        }
        attempt += 1;
        let wait = jitter.backoff(attempt);
        logger.event(&format!(
            "retry {attempt}/{} in {}ms: {reason}",
            send.retries,
            wait.as_millis()
        ));
        if shutdown.wait_for(Phase::Draining, wait) {
            logger.event(&format!(
                "message failed: stopping before retry {attempt}: {text}"
            ));
            return false;
        }
    }
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
