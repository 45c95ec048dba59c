//! The way on: posting a message to the next tier, one address at a time, names looked up off the message path.
//!
//! The exchange on one connection is [`crate::client`]'s; this wing picks
//! the address (a pod at random, failover, a deadline per hop) and keeps the
//! Service names resolved.

pub(crate) mod dns;
pub(crate) mod upstream;
