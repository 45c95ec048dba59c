//! Each tier's checked configuration, read from the rows of its role: what a tier's run function gets.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::form::{SendFault, Value};
use super::{Vars, REMOVED};
use crate::error::Error;
use crate::role::Role;
use crate::values::Url;

/// How stdout lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The seed's lines.
    Text,
    /// One JSON object per line.
    Json,
}

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

/// Which traces a tier records (`OTEL_TRACES_SAMPLER`, see [`crate::otlp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// `parentbased_always_on`: as the caller's sampled flag says; a trace started here: yes.
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: as the caller says; a trace started here: no.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: as the caller says; a trace started here: by its id.
    ParentBasedTraceIdRatio,
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: by the trace id, whatever the caller says.
    TraceIdRatio,
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

    /// Reads it through `vars`.
    fn read(vars: &Vars) -> Result<Self, Error>;

    /// Reads it through `lookup` (a variable name to its value).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        if let Some((name, replacement)) = REMOVED.iter().find(|(name, _)| lookup(name).is_some()) {
            return Err(Error::Removed { name, replacement });
        }
        Self::read(&Vars {
            role: Self::ROLE,
            lookup: &lookup,
        })
    }

    /// Reads it from the process environment.
    fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

impl TierSettings for SenderConfig {
    const ROLE: Role = Role::Sender;

    fn read(vars: &Vars) -> Result<Self, Error> {
        let tier = TierConfig::read(vars)?;
        let fault = match vars.value("SEND_FAULT")? {
            None => None,
            Some(Value::SendFault(_)) if !tier.faults => {
                let text = (vars.lookup)("SEND_FAULT").unwrap_or_default();
                let expected =
                    "SEND_FAULT to be unset while FAULTS is off (set FAULTS=on to inject faults)";
                return Err(Error::config("SEND_FAULT", &text, expected));
            }
            Some(Value::SendFault(fault)) => Some(fault),
            other => vars.mismatch("SEND_FAULT", other),
        };
        Ok(SenderConfig {
            tier,
            relay: PeerConfig::read(vars, "RELAY_URL", "RELAY_TIMEOUT")?,
            send: SendConfig {
                interval: vars.duration("SEND_INTERVAL")?,
                count: vars.number_opt("SEND_COUNT")?,
                retries: vars.number("SEND_RETRIES")? as u32,
                fault,
                fail_fast: vars.word("SEND_FAIL_FAST")? == "on",
            },
        })
    }
}

impl TierSettings for RelayConfig {
    const ROLE: Role = Role::Relay;

    fn read(vars: &Vars) -> Result<Self, Error> {
        Ok(RelayConfig {
            tier: TierConfig::read(vars)?,
            sink: PeerConfig::read(vars, "SINK_URL", "SINK_TIMEOUT")?,
        })
    }
}

impl TierSettings for SinkConfig {
    const ROLE: Role = Role::Sink;

    fn read(vars: &Vars) -> Result<Self, Error> {
        Ok(SinkConfig {
            tier: TierConfig::read(vars)?,
        })
    }
}

impl TierConfig {
    fn read(vars: &Vars) -> Result<TierConfig, Error> {
        let server = ServerConfig {
            listen_addr: match vars.value("LISTEN_ADDR")? {
                Some(Value::SocketAddr(addr)) => addr,
                other => vars.mismatch("LISTEN_ADDR", other),
            },
            listen_fallback: (vars.lookup)("LISTEN_ADDR").is_none(),
            max_connections: vars.number("MAX_CONNECTIONS")? as usize,
            max_in_flight: vars.number("MAX_IN_FLIGHT")? as usize,
            max_body_bytes: vars.number("MAX_BODY_BYTES")? as usize,
            client_timeout: vars.duration("CLIENT_TIMEOUT")?,
            drain_delay: vars.duration("DRAIN_DELAY")?,
            shutdown_timeout: vars.duration("SHUTDOWN_TIMEOUT")?,
        };
        let pod_ip = match vars.value("POD_IP")? {
            None => None,
            Some(Value::Ip(ip)) => Some(ip),
            other => vars.mismatch("POD_IP", other),
        };
        let demo_version = match vars.value("DEMO_VERSION")? {
            None => None,
            Some(Value::Label(label)) => Some(label),
            other => vars.mismatch("DEMO_VERSION", other),
        };
        let dir = match vars
            .reads("LOG_DIR")
            .then(|| vars.value("LOG_DIR"))
            .transpose()?
        {
            None | Some(None) => None,
            Some(Some(Value::Dir(dir))) => Some(dir),
            Some(other) => vars.mismatch("LOG_DIR", other),
        };
        let fsync = vars.reads("LOG_FSYNC") && vars.word("LOG_FSYNC")? == "on";
        let format = match vars.word("LOG_FORMAT")? {
            "json" => LogFormat::Json,
            _ => LogFormat::Text,
        };
        Ok(TierConfig {
            role: vars.role,
            server,
            pod_ip,
            demo_version,
            faults: vars.word("FAULTS")? == "on",
            log: LogConfig { dir, format, fsync },
            tracing: TracingConfig::read(vars)?,
        })
    }
}

impl TracingConfig {
    fn read(vars: &Vars) -> Result<TracingConfig, Error> {
        let url = |name: &'static str| match vars.value(name)? {
            None => Ok(None),
            Some(Value::Url(url)) => Ok(Some(url.to_string())),
            other => vars.mismatch(name, other),
        };
        let traces = url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")?;
        let base = url("OTEL_EXPORTER_OTLP_ENDPOINT")?
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')));
        let pairs = |name: &'static str| match vars.value(name)? {
            None => Ok(Vec::new()),
            Some(Value::KeyValues(pairs)) => Ok(pairs),
            other => vars.mismatch(name, other),
        };
        let sampler = match vars.word("OTEL_TRACES_SAMPLER")? {
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio,
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio,
            _ => Sampler::ParentBasedAlwaysOn,
        };
        let ratio = match vars.required("OTEL_TRACES_SAMPLER_ARG")? {
            Value::Ratio(per_million) => f64::from(per_million) / 1e6,
            other => vars.mismatch("OTEL_TRACES_SAMPLER_ARG", Some(other)),
        };
        let service_name = match vars.value("OTEL_SERVICE_NAME")? {
            None => None,
            Some(Value::Text(name)) => Some(name),
            other => vars.mismatch("OTEL_SERVICE_NAME", other),
        };
        // Checked by its form: http/json is the one value it takes.
        vars.word("OTEL_EXPORTER_OTLP_PROTOCOL")?;
        Ok(TracingConfig {
            endpoint: traces.or(base),
            headers: pairs("OTEL_EXPORTER_OTLP_HEADERS")?,
            timeout: vars.duration("OTEL_EXPORTER_OTLP_TIMEOUT")?,
            service_name,
            resource: pairs("OTEL_RESOURCE_ATTRIBUTES")?,
            sampler,
            ratio,
            disabled: vars.word("OTEL_SDK_DISABLED")? == "true",
            queue: vars.number("OTEL_BSP_MAX_QUEUE_SIZE")? as usize,
            delay: vars.duration("OTEL_BSP_SCHEDULE_DELAY")?,
            batch: vars.number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")? as usize,
        })
    }
}

impl PeerConfig {
    fn read(vars: &Vars, urls: &'static str, timeout: &'static str) -> Result<PeerConfig, Error> {
        Ok(PeerConfig {
            variable: urls,
            urls: match vars.required(urls)? {
                Value::Urls(urls) => urls,
                other => vars.mismatch(urls, Some(other)),
            },
            timeout: vars.duration(timeout)?,
            max_requests: vars.number("UPSTREAM_MAX_REQUESTS")? as u32,
            max_age: vars.duration("UPSTREAM_MAX_AGE")?,
            dns_refresh: vars.duration("DNS_REFRESH")?,
        })
    }
}
