//! The frame around every message a relay or a sink handles: its request id, its record, its lineage.
//!
//! Both message tiers do the same around what differs between them: keep the
//! client's `X-Request-Id` if it is valid or make one (`<ip>-r<n>` on a relay,
//! `<ip>-s<n>` on a sink), write the tier's record line (`Relaying from …`,
//! `From …`, see [`crate::message::Record`]), hand the message, its id and
//! whether the record was written to the tier's [`MessageHandler`], and add
//! the tier's own lineage headers (see [`crate::lineage`]) and `X-Request-Id`
//! to its answer. The server runs a [`Frame`] for every message it admits.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::lineage;
use crate::logger::{Event, Logger};
use crate::message::{Message, MessageHandler, Reply, Verb};
use crate::request_id::{self, IdSource};
use crate::role::Role;

/// A message tier's handler in the frame every message gets.
pub struct Frame {
    handler: Arc<dyn MessageHandler>,
    logger: Arc<Logger>,
    verb: Verb,
    ids: IdSource,
    own_headers: Vec<(&'static str, String)>,
}

impl Frame {
    /// The frame of tier `role` (relay or sink) at `ip`, named `host`, around `handler`.
    pub fn new(
        role: Role,
        ip: IpAddr,
        host: &str,
        logger: Arc<Logger>,
        handler: Arc<dyn MessageHandler>,
    ) -> Frame {
        let (verb, id_prefix) = match role {
            Role::Relay => (Verb::Relaying, "r"),
            Role::Sink | Role::Sender => (Verb::From, "s"),
        };
        Frame {
            handler,
            logger,
            verb,
            ids: IdSource::new(ip, id_prefix),
            own_headers: lineage::own_headers(role, ip, host),
        }
    }

    /// Gives `message` its id and its record, has the handler answer it, and
    /// adds the tier's headers to the answer.
    pub fn handle<'a>(&'a self, message: &Message<'a>) -> Reply<'a> {
        let id = self.ids.keep_or_make(message.request_id);
        let event = Event::record(self.verb, Some(message.peer), message.body).request_id(&id);
        let recorded = self.logger.record(&event);
        let mut reply = self.handler.handle(message, &id, &recorded);
        let own = self.own_headers.iter();
        reply
            .headers
            .extend(own.map(|(name, value)| (*name, Cow::Borrowed(value.as_str()))));
        reply.with_header(request_id::HEADER, id)
    }
}
