//! Start-up that every tier shares: identity, logger, metrics, signal handler, bound server.
//!
//! The order matters for operators and tests alike: the configuration has been
//! validated before this runs, the log file is opened and the signal handler
//! installed before the port is bound (so an unwritable `LOG_DIR` fails before
//! traffic arrives, and a SIGTERM is never lost), and the first line a tier
//! prints is `listening on <addr>`.

use std::net::IpAddr;
use std::sync::Arc;

use crate::config::TierConfig;
use crate::error::Error;
use crate::http::envelope::Envelope;
use crate::http::server::{Server, Serves};
use crate::http::shutdown::{handle_signals, Shutdown};
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
    /// Opens the log, installs the signal handler and binds `LISTEN_ADDR`;
    /// a tier that `forwards` to a next tier keeps part of its file
    /// descriptors for that (see [`crate::http::fds`]).
    pub fn start(config: &TierConfig, forwards: bool) -> Result<(Tier, Server), Error> {
        let ip = identity::local_ip(config.pod_ip);
        let logger = Arc::new(Logger::new(
            config.role,
            config.log.dir.as_deref(),
            ip,
            config.log.format,
            config.log.fsync,
        )?);
        let metrics = Arc::new(Metrics::new(config.role));
        // The handler goes in first: a SIGTERM that follows `listening on` is never lost.
        let shutdown = Shutdown::new();
        handle_signals(
            Arc::clone(&shutdown),
            config.server.drain_delay,
            Arc::clone(&logger),
        )?;
        let budget = crate::http::fds::budget(config.server.max_connections, forwards, &logger);
        let server = Server::bind(
            &config.server,
            budget.max_connections,
            Arc::clone(&logger),
            Arc::clone(&metrics),
        )?;
        // After `listening on`, the first line: a misspelt setting (see [`crate::tiers::typos`]).
        for warning in crate::tiers::typos::in_environment() {
            logger.log(&crate::record::logger::Event::new("config_warning", &warning).warn());
        }
        let host = identity::host_name();
        let version = crate::version::label(config.demo_version.as_deref());
        let tracer = start_tracer(config, &version, &metrics)?;
        let tier = Tier {
            ip,
            host,
            version,
            logger,
            metrics,
            shutdown,
            max_pooled: budget.max_pooled,
            faults: Arc::new(Faults::new(
                config.role,
                config.faults,
                config.server.max_in_flight,
                config.server.client_timeout,
            )),
            tracer,
        };
        Ok((tier, server))
    }
}

/// The tracer `config` asks for: its spans name the tier (`OTEL_SERVICE_NAME`
/// or the role), its `version`, and `OTEL_RESOURCE_ATTRIBUTES`.
fn start_tracer(
    config: &TierConfig,
    version: &str,
    metrics: &Arc<Metrics>,
) -> Result<Tracer, Error> {
    let tracing = &config.tracing;
    let service = tracing
        .service_name
        .clone()
        .unwrap_or_else(|| config.role.name().to_string());
    let mut resource = vec![
        ("service.name".to_string(), service),
        ("service.version".to_string(), version.to_string()),
    ];
    resource.extend(tracing.resource.iter().cloned());
    Tracer::start(tracing, resource, metrics)
        .map_err(|e| Error::io("starting the span exporter", e))
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
