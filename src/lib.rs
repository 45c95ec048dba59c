//! The Kubernetes three-tier case study as three small blocking programs.
//!
//! A **sender** posts a short text message to `RELAY_URL` every few seconds, a
//! **relay** logs it and forwards it to `SINK_URL`, and a **sink** logs it and
//! answers `Logged message from <peer ip>`. The binaries in `bins/` are thin: each
//! calls [`cli::main`] with its tier's run function ([`sender::run`],
//! [`relay::run`] or [`sink::run`]); `cli::main` reads that tier's
//! configuration (see [`config`]) and runs it. Everything they share (the
//! server loop, the outbound client, logging, shutdown) lives once in this crate.
//!
//! The I/O model is the design card's: blocking sockets, a thread per
//! connection that also handles its requests, no async runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
mod client;
pub mod config;
mod dns;
mod error;
mod escape;
mod fault;
mod fds;
mod flow;
mod format;
mod frame;
mod identity;
mod in_flight;
mod intake;
mod json;
mod lineage;
mod listen;
mod logger;
pub mod loss_report;
pub mod message;
mod metrics;
mod otlp;
mod random;
mod record;
pub mod relay;
mod report;
mod request_id;
mod role;
mod routes;
pub mod sender;
mod server;
mod shutdown;
pub mod sink;
#[doc(hidden)]
pub mod test_probes;
mod tier;
mod trace;
mod typos;
mod upstream;
mod values;
mod version;
mod via;

/// The static musl build's allocator: musl's own serialises every allocation
/// behind one lock (Cargo.toml has the measurements). The glibc build keeps
/// glibc's, whose per-thread arenas do not.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::Error;
pub use escape::escape_message;
pub use role::Role;
