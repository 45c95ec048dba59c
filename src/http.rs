//! The way in: the HTTP server every tier runs, from the listening socket to the answer.
//!
//! It routes, admits and reads each request (a message's body and the
//! headers it carries), puts the message in its envelope (request id, record, lineage,
//! span) for the tier's handler, answers, reports the connections it closed,
//! and stops as Kubernetes expects.

pub(crate) mod connection_report;
pub(crate) mod envelope;
pub(crate) mod fds;
pub(crate) mod intake;
pub(crate) mod listen;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod shutdown;
#[doc(hidden)]
pub mod test_probes;
