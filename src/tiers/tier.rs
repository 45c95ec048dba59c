//! Start-up that every tier shares: identity, logger, metrics, signal handler, bound server.
//!
//! The order matters for operators and tests alike: the configuration has been
//! validated before this runs, the log file is opened and the signals caught
//! before the port is bound (so an unwritable `LOG_DIR` fails before traffic
//! arrives, and a SIGTERM is never lost), and the first line a tier prints is
//! `listening on <addr>`; warnings (a lowered `MAX_CONNECTIONS`, a misspelt
//! setting) follow it.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::TierConfig;
use crate::error::Error;
use crate::http::envelope::Envelope;
use crate::http::server::{Server, Serves};
use crate::http::shutdown::{catch_signals, handle_signals, Shutdown};
use crate::identity;
use crate::observe::fault::Faults;
use crate::observe::metrics::Metrics;
use crate::otlp::Tracer;
use crate::record::logger::Logger;
use crate::record::message::MessageHandler;

/// A started tier: who it is, where it logs and counts, and its shutdown state.
pub struct Tier {
    /// The instance IP (see [`crate::identity`]).
    pub ip: IpAddr,
    /// The host name (the pod name in Kubernetes).
    pub host: String,
    /// Its version as hops name it ([`crate::version::label`], with `DEMO_VERSION`).
    pub version: String,
    /// The tier's logger.
    pub logger: Arc<Logger>,
    /// The tier's metrics, served on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The process's shutdown state, driven by SIGTERM and SIGINT.
    pub shutdown: Arc<Shutdown>,
    /// Idle connections to the next tier it may keep (see [`crate::http::fds`]).
    pub max_pooled: usize,
    /// Its faults, on with `FAULTS=on` (see [`crate::observe::fault`]).
    pub faults: Arc<Faults>,
    /// Its tracer, on with an OTLP endpoint (see [`crate::otlp`]).
    pub tracer: Tracer,
}

impl Tier {
    /// Opens the log, catches signals, binds `LISTEN_ADDR`, then handles
    /// the signals and starts the tracer; a tier that `forwards` to a next
    /// tier keeps part of its file descriptors for that (see
    /// [`crate::http::fds`]). Each step gets only the part of `config` it
    /// needs.
    pub fn start(config: &TierConfig, forwards: bool) -> Result<(Tier, Server), Error> {
        let ip = config.pod_ip.unwrap_or_else(identity::local_ip);
        let host = identity::host_name();
        let version = match &config.demo_version {
            Some(demo) => format!("{} {demo}", crate::version::label()),
            None => crate::version::label(),
        };
        let logger = Arc::new(Logger::new(
            config.role,
            config.log.dir.as_deref(),
            ip,
            config.log.format,
            config.log.fsync,
        )?);
        let metrics = Arc::new(Metrics::new(config.role));
        // Caught first: a SIGTERM that follows `listening on` is never lost.
        let signals = catch_signals()?;
        let (budget, lowered) = crate::http::fds::budget(config.server.max_connections, forwards);
        let server = Server::bind(
            &config.server,
            budget.max_connections,
            Arc::clone(&logger),
            Arc::clone(&metrics),
        )?;
        let shutdown = Shutdown::new();
        handle_signals(
            signals,
            Arc::clone(&shutdown),
            config.server.drain_delay,
            Arc::clone(&logger),
        )?;
        // After `listening on`: a lowered MAX_CONNECTIONS, a misspelt setting
        // (see [`crate::tiers::typos`]).
        let warnings = lowered.into_iter().map(|text| ("limit", text));
        let typos = crate::tiers::typos::in_environment()
            .into_iter()
            .map(|text| ("config_warning", text));
        for (event, text) in warnings.chain(typos) {
            logger.log(&crate::record::logger::Event::new(event, &text).warn());
        }
        let tracer = Tracer::start(&config.tracing, config.role, &version, &metrics)
            .map_err(|e| Error::io("starting the span exporter", e))?;
        let faults = Faults::new(
            config.role,
            config.faults,
            config.server.max_in_flight,
            config.server.client_timeout,
        );
        let tier = Tier {
            ip,
            host,
            version,
            logger,
            metrics,
            shutdown,
            max_pooled: budget.max_pooled,
            faults: Arc::new(faults),
            tracer,
        };
        Ok((tier, server))
    }
}

/// How long a stopping tier waits for its last spans to be exported.
pub fn flush_within(config: &TierConfig) -> std::time::Duration {
    config.tracing.timeout.min(config.server.shutdown_timeout)
}

/// Runs a message-handling tier (relay, sink) until it is stopped: its
/// handler in the envelope every message gets (see [`crate::http::envelope`]).
pub fn serve<H: MessageHandler>(
    config: &TierConfig,
    forwards: bool,
    make_handler: impl FnOnce(&Tier) -> H,
) -> Result<(), Error> {
    let (tier, server) = Tier::start(config, forwards)?;
    let handler = Arc::new(make_handler(&tier));
    let logger = Arc::clone(&tier.logger);
    let metrics = Arc::clone(&tier.metrics);
    let own_headers =
        crate::observe::lineage::own_headers(config.role, tier.ip, &tier.host, &tier.version);
    let faults = Arc::clone(&tier.faults);
    let envelope = Envelope::new(
        config.role,
        tier.ip,
        own_headers,
        logger,
        metrics,
        faults,
        handler,
    )
    .traced(tier.tracer.clone());
    let served = server.run(
        Serves::Messages(Arc::new(envelope)),
        Arc::clone(&tier.shutdown),
    );
    tier.tracer.flush(flush_within(config));
    served
}
