//! Each tier's checked configuration, put together from the rows as read ([`super::raw::Raw`]): what a tier's run function gets.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::form::SendFault;
pub use super::form::{LogFormat, Sampler};
use super::raw::Raw;
use super::{settings_for, REMOVED};
use crate::error::Error;
use crate::role::Role;
use crate::values::Url;

/// Settings of the HTTP server every tier runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `LISTEN_ADDR`.
    pub listen_addr: SocketAddr,
    /// `LISTEN_ADDR` was not set: without IPv6 in the kernel, listen on `0.0.0.0` instead.
    pub listen_fallback: bool,
    /// `MAX_CONNECTIONS`, as configured (the server may lower it to fit `RLIMIT_NOFILE`).
    pub max_connections: usize,
    /// `MAX_IN_FLIGHT`.
    pub max_in_flight: usize,
    /// `MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `CLIENT_TIMEOUT`.
    pub client_timeout: Duration,
    /// `DRAIN_DELAY`.
    pub drain_delay: Duration,
    /// `SHUTDOWN_TIMEOUT`.
    pub shutdown_timeout: Duration,
}

/// How a tier logs: `LOG_DIR`, `LOG_FORMAT`, `LOG_FSYNC`.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// `LOG_DIR`, when set (relay and sink).
    pub dir: Option<PathBuf>,
    /// `LOG_FORMAT`.
    pub format: LogFormat,
    /// `LOG_FSYNC`: flush each record to disk.
    pub fsync: bool,
}

/// Tracing's settings, named as OpenTelemetry's SDKs name them (see [`crate::otlp`]).
#[derive(Debug, Clone)]
pub struct TracingConfig {
    /// Where spans are posted: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces`; `None`: no tracing.
    pub endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_HEADERS`.
    pub headers: Vec<(String, String)>,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub timeout: Duration,
    /// `OTEL_SERVICE_NAME`, when set.
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: Vec<(String, String)>,
    /// `OTEL_TRACES_SAMPLER`.
    pub sampler: Sampler,
    /// `OTEL_TRACES_SAMPLER_ARG`, from 0 to 1.
    pub ratio: f64,
    /// `OTEL_SDK_DISABLED=true`.
    pub disabled: bool,
    /// `OTEL_BSP_MAX_QUEUE_SIZE`.
    pub queue: usize,
    /// `OTEL_BSP_SCHEDULE_DELAY`.
    pub delay: Duration,
    /// `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`.
    pub batch: usize,
}

/// What every tier reads: which tier it is, its server, its address, its log.
#[derive(Debug, Clone)]
pub struct TierConfig {
    /// Which tier.
    pub role: Role,
    /// The HTTP server's settings.
    pub server: ServerConfig,
    /// `POD_IP`, when set.
    pub pod_ip: Option<IpAddr>,
    /// `DEMO_VERSION`, when set.
    pub demo_version: Option<String>,
    /// `FAULTS=on`.
    pub faults: bool,
    /// The log's settings.
    pub log: LogConfig,
    /// Tracing's settings.
    pub tracing: TracingConfig,
}

/// Where a tier sends to: `RELAY_URL` with `RELAY_TIMEOUT`, or `SINK_URL` with `SINK_TIMEOUT`.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The variable the URLs came from, for log lines.
    pub variable: &'static str,
    /// The URLs, used round-robin.
    pub urls: Vec<Url>,
    /// Deadline for one exchange, all attempts included.
    pub timeout: Duration,
    /// `UPSTREAM_MAX_REQUESTS`: requests per connection (1: no reuse).
    pub max_requests: u32,
    /// `UPSTREAM_MAX_AGE`: no reuse of a connection this old.
    pub max_age: Duration,
    /// `DNS_REFRESH`: how often a host name is looked up again.
    pub dns_refresh: Duration,
}

/// The sender's own settings.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// `SEND_INTERVAL`.
    pub interval: Duration,
    /// `SEND_COUNT`; `None` sends forever.
    pub count: Option<u64>,
    /// `SEND_RETRIES`.
    pub retries: u32,
    /// `SEND_FAULT`, when set (only with `FAULTS=on`).
    pub fault: Option<SendFault>,
    /// `SEND_FAIL_FAST=on`: stop at the first failed message.
    pub fail_fast: bool,
}

/// The sender's configuration.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// What every tier reads.
    pub tier: TierConfig,
    /// `RELAY_URL` and how to reach it.
    pub relay: PeerConfig,
    /// How to send.
    pub send: SendConfig,
}

/// The relay's configuration.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// What every tier reads.
    pub tier: TierConfig,
    /// `SINK_URL` and how to reach it.
    pub sink: PeerConfig,
}

/// The sink's configuration.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// What every tier reads.
    pub tier: TierConfig,
}

/// A tier's configuration, read from the [`SETTINGS`](super::SETTINGS) rows of its role.
pub trait TierSettings: Sized {
    /// The tier it configures.
    const ROLE: Role;

    /// Puts it together from the rows as read (`lookup` for the rules that
    /// need to know what was set rather than defaulted).
    fn assemble(raw: Raw, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error>;

    /// Reads it through `lookup` (a variable name to its value).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        if let Some((name, replacement)) = REMOVED.iter().find(|(name, _)| lookup(name).is_some()) {
            return Err(Error::Removed { name, replacement });
        }
        let raw = read_rows(Self::ROLE, &lookup)?;
        Self::assemble(raw, &lookup)
    }

    /// Reads it from the process environment.
    fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Each row `role` reads, in table order: its value, or its default, parsed
/// and stored by the row; the first that does not parse is the error.
fn read_rows(role: Role, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Raw, Error> {
    let mut raw = Raw::default();
    for setting in settings_for(role) {
        let text = lookup(setting.name)
            .or_else(|| (!setting.default.is_empty()).then(|| setting.default.to_string()));
        if let Some(text) = text {
            setting
                .set
                .apply(&mut raw, &text)
                .map_err(|expected| Error::config(setting.name, &text, expected))?;
        }
    }
    Ok(raw)
}

/// `name` was not set and has no default, but a tier needs it.
fn missing(name: &'static str) -> Error {
    let expected = super::SETTINGS
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.form().expected())
        .unwrap_or_default();
    Error::Config {
        name,
        value: None,
        expected,
    }
}

impl TierSettings for SenderConfig {
    const ROLE: Role = Role::Sender;

    fn assemble(mut raw: Raw, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        if raw.send_fault.is_some() && !raw.faults {
            let text = lookup("SEND_FAULT").unwrap_or_default();
            let expected =
                "SEND_FAULT to be unset while FAULTS is off (set FAULTS=on to inject faults)";
            return Err(Error::config("SEND_FAULT", &text, expected));
        }
        let urls = raw.relay_urls.take();
        let relay = PeerConfig::assemble("RELAY_URL", urls, raw.relay_timeout, &raw)?;
        let send = SendConfig {
            interval: raw.send_interval,
            count: raw.send_count,
            retries: raw.send_retries as u32,
            fault: raw.send_fault.take(),
            fail_fast: raw.send_fail_fast,
        };
        Ok(SenderConfig {
            tier: TierConfig::assemble(Self::ROLE, raw, lookup)?,
            relay,
            send,
        })
    }
}

impl TierSettings for RelayConfig {
    const ROLE: Role = Role::Relay;

    fn assemble(mut raw: Raw, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let urls = raw.sink_urls.take();
        let sink = PeerConfig::assemble("SINK_URL", urls, raw.sink_timeout, &raw)?;
        Ok(RelayConfig {
            tier: TierConfig::assemble(Self::ROLE, raw, lookup)?,
            sink,
        })
    }
}

impl TierSettings for SinkConfig {
    const ROLE: Role = Role::Sink;

    fn assemble(raw: Raw, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        Ok(SinkConfig {
            tier: TierConfig::assemble(Self::ROLE, raw, lookup)?,
        })
    }
}

impl TierConfig {
    fn assemble(
        role: Role,
        raw: Raw,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TierConfig, Error> {
        let server = ServerConfig {
            listen_addr: raw.listen_addr.ok_or_else(|| missing("LISTEN_ADDR"))?,
            listen_fallback: lookup("LISTEN_ADDR").is_none(),
            max_connections: raw.max_connections as usize,
            max_in_flight: raw.max_in_flight as usize,
            max_body_bytes: raw.max_body_bytes as usize,
            client_timeout: raw.client_timeout,
            drain_delay: raw.drain_delay,
            shutdown_timeout: raw.shutdown_timeout,
        };
        let tracing = TracingConfig {
            endpoint: raw
                .otlp_traces_endpoint
                .map(|url| url.to_string())
                .or_else(|| {
                    raw.otlp_endpoint
                        .map(|base| format!("{}/v1/traces", base.to_string().trim_end_matches('/')))
                }),
            headers: raw.otlp_headers,
            timeout: raw.otlp_timeout,
            service_name: raw.service_name,
            resource: raw.resource,
            sampler: raw.sampler,
            ratio: f64::from(raw.sampler_ratio) / 1e6,
            disabled: raw.sdk_disabled,
            queue: raw.bsp_queue as usize,
            delay: raw.bsp_delay,
            batch: raw.bsp_batch as usize,
        };
        Ok(TierConfig {
            role,
            server,
            pod_ip: raw.pod_ip,
            demo_version: raw.demo_version,
            faults: raw.faults,
            log: LogConfig {
                dir: raw.log_dir,
                format: raw.log_format,
                fsync: raw.log_fsync,
            },
            tracing,
        })
    }
}

impl PeerConfig {
    /// The next hop `variable` names, at `urls` (required) with `timeout`;
    /// connection reuse and DNS as every next hop has them.
    fn assemble(
        variable: &'static str,
        urls: Option<Vec<Url>>,
        timeout: Duration,
        raw: &Raw,
    ) -> Result<PeerConfig, Error> {
        Ok(PeerConfig {
            variable,
            urls: urls.ok_or_else(|| missing(variable))?,
            timeout,
            max_requests: raw.upstream_max_requests as u32,
            max_age: raw.upstream_max_age,
            dns_refresh: raw.dns_refresh,
        })
    }
}
