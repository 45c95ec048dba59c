//! Tier 3: logs each message and answers `Logged message from <peer ip>`.
//!
//! The seed's `sink.php`: the line `From <peer ip> at <date> : <message>` goes to
//! stdout and, with `LOG_DIR`, to `Sink_<ip>.txt`. If that file cannot be
//! written the sink answers 500 instead of claiming the message was logged.

use std::sync::Arc;

use crate::config::Config;
use crate::escape_message;
use crate::logger::{now_http_date, Logger};
use crate::server::{Message, MessageHandler, Reply};
use crate::Error;

/// The sink's message handler.
#[derive(Debug)]
pub struct Sink {
    logger: Arc<Logger>,
}

impl MessageHandler for Sink {
    fn handle(&self, message: &Message) -> Reply {
        let line = format!(
            "From {} at {} : {}",
            message.peer,
            now_http_date(),
            escape_message(&message.body)
        );
        match self.logger.message(&line) {
            Ok(()) => Reply::text(200, format!("Logged message from {}", message.peer)),
            Err(e) => Reply::text(500, format!("sink: message not logged: {e}")),
        }
    }
}

/// Runs the sink until SIGTERM or SIGINT.
pub fn run(config: Config) -> Result<(), Error> {
    crate::tier::serve(&config, |logger| Arc::new(Sink { logger }))
}
