//! Tier 3: logs each message and answers `Logged message from <peer ip>`.
//!
//! The seed's `sink.php`: the line `From <peer ip> at <date> : <message>` goes to
//! stdout and, with `LOG_DIR`, to `Sink_<ip>.txt`, tagged with the message's
//! request id. The answer carries the id and the sink's own address and host
//! name (see [`crate::lineage`]). If the record cannot be written the sink
//! answers 503 with `Retry-After` instead of claiming the message was logged,
//! and is not ready until it can (see [`crate::logger::Logger::ready`]).

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::Config;
use crate::lineage;
use crate::logger::{with_ip_text, Logger};
use crate::metrics::Metrics;
use crate::request_id::{self, IdSource};
use crate::server::{Message, MessageHandler, Reply};
use crate::tier::Tier;
use crate::Error;

/// The sink's message handler.
#[derive(Debug)]
pub struct Sink {
    logger: Arc<Logger>,
    metrics: Arc<Metrics>,
    ids: IdSource,
    own_headers: Vec<(&'static str, String)>,
}

impl Sink {
    fn new(tier: &Tier) -> Sink {
        Sink {
            logger: Arc::clone(&tier.logger),
            metrics: Arc::clone(&tier.metrics),
            ids: IdSource::new(tier.ip, "s"),
            own_headers: lineage::own_headers(
                lineage::SINK_IP,
                lineage::SINK_HOST,
                tier.ip,
                &tier.host,
            ),
        }
    }
}

impl MessageHandler for Sink {
    fn handle<'a>(&'a self, message: &Message<'a>) -> Reply<'a> {
        let id = self.ids.keep_or_make(message.request_id);
        let recorded = self.logger.record(&message.event("logged", "From", &id));
        let mut reply = match recorded {
            Ok(()) => {
                self.metrics.message();
                let answer = with_ip_text(message.peer, |ip| ["Logged message from ", ip].concat());
                Reply::text(200, answer)
            }
            // 503: not recorded, so a client may send it again (elsewhere).
            Err(e) => Reply::text(503, format!("sink: message not logged: {e}"))
                .with_header("Retry-After", "1"),
        };
        let own = self.own_headers.iter();
        reply
            .headers
            .extend(own.map(|(name, value)| (*name, Cow::Borrowed(value.as_str()))));
        reply.with_header(request_id::HEADER, id)
    }
}

/// Runs the sink until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), Error> {
    crate::tier::serve(&config, |tier| Arc::new(Sink::new(tier)))
}
