//! The Kubernetes three-tier case study as three small blocking programs.
//!
//! A **sender** posts a short text message to `RELAY_URL` every few seconds, a
//! **relay** logs it and forwards it to `SINK_URL`, and a **sink** logs it and
//! answers `Logged message from <peer ip>`. The binaries in `bins/` are thin: each
//! calls [`tiers::cli::main`] with its tier's run function
//! ([`tiers::sender::run`], [`tiers::relay::run`] or [`tiers::sink::run`]);
//! `cli::main` reads that tier's configuration (see [`config`]) and runs it.
//! Everything they share (the server loop, the outbound client, logging,
//! shutdown) lives once in this crate.
//!
//! The I/O model is the design card's: blocking sockets, a thread per
//! connection that also handles its requests, no async runtime.
//!
//! The modules, in wings along the path a message takes; a wing imports only
//! the ones listed after it:
//!
//! - [`tiers`]: the sender, relay and sink, their shared start-up, the
//!   command line and the sender's flow page.
//! - [`http`]: the way in: listening socket, server, routes, the message's
//!   intake and envelope, connection reports, shutdown.
//! - `next_hop`: the way on: the next tier's addresses, failover, DNS.
//! - `otlp`: spans exported over OTLP/HTTP, off the message path.
//! - [`record`]: the record line, the logger, the `LOG_DIR` files, the loss report.
//! - [`config`]: every setting, declared once, and each tier's checked configuration.
//! - `observe`: request ids, trace context, `Via`, lineage, metrics, faults.
//! - the ground floor, importing nothing of the crate: `client` (one HTTP
//!   exchange, on ureq-proto), `error`, `escape`, `format`, `identity`,
//!   `in_flight`, `json`, `random`, `role`, `values`, `version`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// These docs are for the people who work on the crate, read with
// `--document-private-items` (scripts/test.sh builds them so, warnings
// denied): a public module's doc may point at the private one that does the
// work.
#![allow(rustdoc::private_intra_doc_links)]

pub mod config;
pub mod http;
mod next_hop;
mod observe;
mod otlp;
pub mod record;
pub mod tiers;

mod client;
mod error;
mod escape;
mod format;
mod identity;
mod in_flight;
mod json;
mod random;
mod role;
mod values;
mod version;

/// The static musl build's allocator: musl's own serialises every allocation
/// behind one lock (Cargo.toml has the measurements). The glibc build keeps
/// glibc's, whose per-thread arenas do not.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::Error;
pub use escape::escape_message;
pub use role::Role;
