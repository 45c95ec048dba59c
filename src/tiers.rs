//! The three programs and what starts them: a message begins in the sender, is relayed, and ends in the sink.
//!
//! The top wing: each tier's run function, the start-up they share, the
//! command line, and the sender's flow page. Everything below it is reached
//! from here; nothing below imports it.

pub mod cli;
pub(crate) mod flow;
pub mod relay;
pub mod sender;
pub mod sink;
pub(crate) mod tier;
pub(crate) mod typos;
