//! Tier 3: logs each message and answers `Logged message from <peer ip>`.
//!
//! The seed's `sink.php`: the line `From <peer ip> at <date> : <message>` goes to
//! stdout and, with `LOG_DIR`, to `Sink_<ip>.txt`, tagged with the message's
//! request id, and the answer carries the id and the sink's own address and
//! host name (the envelope of [`crate::http::envelope`] does both). If the record could
//! not be written the sink answers 503 with `Retry-After` instead of claiming
//! the message was logged, and is not ready until it can be (see
//! [`crate::record::logger::Logger::ready`]).

use std::sync::Arc;

use crate::config::SinkConfig;
use crate::error::Error;
use crate::format::with_ip_text;
use crate::observe::metrics::Metrics;
use crate::record::message::{Message, MessageHandler, Reply, Stamped};

/// The sink's message handler.
#[derive(Debug)]
pub struct Sink {
    metrics: Arc<Metrics>,
}

impl MessageHandler for Sink {
    fn handle<'a>(&'a self, message: &Message<'a>, stamped: &Stamped) -> Reply<'a> {
        match stamped.recorded {
            Ok(()) => {
                self.metrics.message();
                let answer = with_ip_text(message.peer, |ip| ["Logged message from ", ip].concat());
                Reply::text(200, answer)
            }
            // 503: not recorded, so a client may send it again (elsewhere).
            Err(e) => Reply::text(503, format!("sink: message not logged: {e}"))
                .with_header("Retry-After", "1"),
        }
    }
}

/// Runs the sink until SIGTERM or SIGINT.
pub fn run(config: SinkConfig) -> Result<(), Error> {
    crate::tiers::tier::serve(&config.tier, false, |tier| Sink {
        metrics: Arc::clone(&tier.metrics),
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::observe::metrics::Gauges;
    use crate::role::Role;
    use std::io;

    fn sink() -> Sink {
        Sink {
            metrics: Arc::new(Metrics::new(Role::Sink)),
        }
    }

    fn message(body: &str) -> Message<'_> {
        Message {
            peer: "10.0.1.7".parse().unwrap(),
            body,
            request_id: None,
            traceparent: None,
            tracestate: None,
            fault: None,
            via: None,
            path: "/sink.php",
        }
    }

    fn stamped(recorded: &io::Result<()>) -> Stamped<'_> {
        Stamped {
            id: "10.0.0.1-1",
            trace: crate::observe::trace::TraceParent::start(),
            span_id: [7; 8],
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
            recorded,
        }
    }

    #[test]
    fn a_recorded_message_is_answered_with_the_seeds_text_and_counted() {
        let sink = sink();
        let reply = sink.handle(&message("hi"), &stamped(&Ok(())));
        assert_eq!(
            (reply.status, reply.body.as_ref()),
            (200, "Logged message from 10.0.1.7")
        );
        assert!(sink
            .metrics
            .render(&Gauges::default())
            .contains("three_tier_messages_logged_total 1\n"));
    }

    #[test]
    fn a_message_not_recorded_is_answered_503_to_be_sent_again() {
        let sink = sink();
        let full = Err(io::Error::other("No space left on device"));
        let reply = sink.handle(&message("hi"), &stamped(&full));
        assert_eq!(reply.status, 503);
        assert_eq!(
            reply.body,
            "sink: message not logged: No space left on device"
        );
        assert_eq!(reply.headers, vec![("Retry-After", "1".into())]);
        assert!(sink
            .metrics
            .render(&Gauges::default())
            .contains("three_tier_messages_logged_total 0\n"));
    }
}
