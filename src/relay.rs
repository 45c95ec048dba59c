//! Tier 2: logs each message, forwards it to `SINK_URL` and answers with the sink's reply.
//!
//! The seed's `relay.php`, with the failures it ignored made visible. The line
//! `Relaying from <peer ip> at <date> : <message>` goes to stdout and, with
//! `LOG_DIR`, to `Relay_<ip>.txt`. The sink's status and body are passed through
//! as they are, 5xx included (a sink's 503 tells the sender to retry). When no
//! sink answers, the relay says so itself: 502 when no connection could be made
//! or the exchange broke, 504 when `SINK_TIMEOUT` ran out, each with one line
//! naming the URL and the reason.

use std::sync::Arc;

use crate::config::Config;
use crate::escape_message;
use crate::logger::{now_http_date, Logger};
use crate::server::{Message, MessageHandler, Reply};
use crate::upstream::{PostError, Upstream};
use crate::Error;

/// The relay's message handler.
#[derive(Debug)]
pub struct Relay {
    logger: Arc<Logger>,
    sink: Upstream,
}

impl MessageHandler for Relay {
    fn handle(&self, message: &Message) -> Reply {
        let line = format!(
            "Relaying from {} at {} : {}",
            message.peer,
            now_http_date(),
            escape_message(&message.body)
        );
        if let Err(e) = self.logger.message(&line) {
            // The relay's own log is a record, not the delivery: forward anyway.
            self.logger.event(&format!("relay: {e}"));
        }
        match self.sink.post(&message.body, &[]) {
            Ok(reply) => Reply::text(reply.status, reply.body),
            Err(e) => {
                let status = match e {
                    PostError::Timeout { .. } => 504,
                    PostError::Unreachable { .. } | PostError::Failed { .. } => 502,
                };
                let text = format!("relay: sink {e}");
                self.logger.event(&text);
                Reply::text(status, text)
            }
        }
    }
}

/// Runs the relay until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), Error> {
    let peer = config.peer.clone().ok_or_else(|| Error::Config {
        name: "SINK_URL",
        value: None,
        expected: crate::parse::URL_LIST_FORM.into(),
    })?;
    crate::tier::serve(&config, move |logger| {
        Arc::new(Relay {
            logger,
            sink: Upstream::new(&peer),
        })
    })
}
