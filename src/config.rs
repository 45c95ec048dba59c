//! Every setting, declared once, and the checked configuration of each tier.
//!
//! Configuration comes from environment variables only, with the seed's names
//! (`RELAY_URL`, `SINK_URL`). [`SETTINGS`] is the one table of them, a row an
//! item: the name, the default, the tiers that read it, its help, and the
//! field it sets, typed by its form with the bounds ([`Set`]), so a new
//! setting is one row (and its README line, which a test demands). `--help`
//! prints the rows, and a default is parsed by the same code as a value a user
//! sets. Reading fills a [`raw::Raw`] row by row; each tier's configuration
//! ([`SenderConfig`], [`RelayConfig`], [`SinkConfig`]) is put together from it
//! through [`TierSettings`], so a tier's run function gets what it needs
//! already checked, and every rejection names the variable, its value and the
//! accepted form.

mod form;
mod raw;
mod tiers;

pub use form::{Form, SendFault};
pub use raw::Set;
pub use tiers::*;

use crate::role::Role;

/// One environment variable.
#[derive(Debug)]
pub struct Setting {
    /// The variable's name.
    pub name: &'static str,
    /// Its default as text; empty when unset means "not set".
    pub default: &'static str,
    /// The tiers that read it.
    pub roles: &'static [Role],
    /// What it does, in one line.
    pub help: &'static str,
    /// The field it sets, typed by the form its value takes.
    pub set: Set,
}

impl Setting {
    /// The form its value takes.
    pub fn form(&self) -> Form {
        self.set.form()
    }
}

const ALL: &[Role] = &[Role::Sender, Role::Relay, Role::Sink];
const SENDER: &[Role] = &[Role::Sender];
const RELAY: &[Role] = &[Role::Relay];
const LOGGING: &[Role] = &[Role::Relay, Role::Sink];
const PEERS: &[Role] = &[Role::Sender, Role::Relay];

const ON_OFF: &[&str] = &["on", "off"];
const SAMPLERS: &[&str] = &[
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "always_on",
    "always_off",
    "traceidratio",
];

/// Every variable any tier reads.
pub const SETTINGS: &[Setting] = &[
    Setting { name: "LISTEN_ADDR", default: "[::]:8080", roles: ALL, set: Set::SocketAddr(|r, v| r.listen_addr = Some(v)), help: "address and port to serve on; the default takes IPv6 and IPv4 on one socket (IPV6_V6ONLY off), and falls back to 0.0.0.0:8080, with a log line, where the kernel has no IPv6; the sender serves its flow page, /flow and the probes" },
    Setting { name: "RELAY_URL", default: "", roles: SENDER, set: Set::Urls(|r, v| r.relay_urls = Some(v)), help: "required: where to post messages; comma-separated URLs are used round-robin" },
    Setting { name: "SEND_INTERVAL", default: "5s", roles: SENDER, set: Set::Duration { positive: true, to: |r, v| r.send_interval = v }, help: "time between messages, give or take a tenth at random so that senders started together do not stay in step" },
    Setting { name: "SEND_COUNT", default: "", roles: SENDER, set: Set::Number { min: 1, max: u64::MAX, to: |r, v| r.send_count = Some(v) }, help: "stop after this many messages; exit 0 if all were answered 2xx, else 1 (unset: forever)" },
    Setting { name: "SEND_FAIL_FAST", default: "off", roles: SENDER, set: Set::Word(ON_OFF, |r, v| r.send_fail_fast = v == "on"), help: "on: stop at the first message that failed after its retries and exit 1, as a smoke test should (off: go on with the next)" },
    Setting { name: "SEND_RETRIES", default: "6", roles: SENDER, set: Set::Number { min: 0, max: 100, to: |r, v| r.send_retries = v }, help: "retries of a message whose delivery is uncertain: no connection, RELAY_TIMEOUT, a broken reply, 502, 503 or 504 (same request id: delivery is at least once); they wait 100 ms, 200 ms, ... at most 2 s each, half of it random, 2.5-5.1 s in all by default, longer than a pod restart" },
    Setting { name: "RELAY_TIMEOUT", default: "5s", roles: SENDER, set: Set::Duration { positive: true, to: |r, v| r.relay_timeout = v }, help: "deadline for one sender-to-relay exchange" },
    Setting { name: "SINK_URL", default: "", roles: RELAY, set: Set::Urls(|r, v| r.sink_urls = Some(v)), help: "required: where to forward messages; comma-separated URLs are used round-robin" },
    Setting { name: "SINK_TIMEOUT", default: "2s", roles: RELAY, set: Set::Duration { positive: true, to: |r, v| r.sink_timeout = v }, help: "deadline for one relay-to-sink exchange" },
    Setting { name: "UPSTREAM_MAX_REQUESTS", default: "10", roles: PEERS, set: Set::Number { min: 1, max: 1_000_000, to: |r, v| r.upstream_max_requests = v }, help: "requests per connection to the next tier before it is closed and a new one opened (1: a new connection per message); bounded reuse lets a Service spread connections over pods" },
    Setting { name: "UPSTREAM_MAX_AGE", default: "4s", roles: PEERS, set: Set::Duration { positive: true, to: |r, v| r.upstream_max_age = v }, help: "a connection to the next tier is not reused once this old (keep it below the next tier's CLIENT_TIMEOUT)" },
    Setting { name: "DNS_REFRESH", default: "5s", roles: PEERS, set: Set::Duration { positive: true, to: |r, v| r.dns_refresh = v }, help: "a host name in RELAY_URL or SINK_URL (a Service name) is looked up again at most this often, off the message path; a lookup that fails or outlasts the hop's timeout keeps the last answer" },
    Setting { name: "LOG_DIR", default: "", roles: LOGGING, set: Set::Dir(|r, v| r.log_dir = Some(v)), help: "also append message lines to LOG_DIR/Relay_<ip>.txt or LOG_DIR/Sink_<ip>.txt" },
    Setting { name: "LOG_FSYNC", default: "off", roles: LOGGING, set: Set::Word(ON_OFF, |r, v| r.log_fsync = v == "on"), help: "on: flush each message line in LOG_DIR to disk before the message is acknowledged (off: the kernel writes it back)" },
    Setting { name: "LOG_FORMAT", default: "text", roles: ALL, set: Set::Word(&["text", "json"], |r, v| r.log_format = if v == "json" { LogFormat::Json } else { LogFormat::Text }), help: "stdout log lines: text (the seed's lines) or json (one object per line)" },
    Setting { name: "FAULTS", default: "off", roles: ALL, set: Set::Word(ON_OFF, |r, v| r.faults = v == "on"), help: "on: the relay and the sink apply the faults an X-Fault header or POST /fault asks for, and the sender may send SEND_FAULT (for drills and demos: the dev and lab overlays' faults component sets it; see docs/faults.md)" },
    Setting { name: "SEND_FAULT", default: "", roles: SENDER, set: Set::SendFault(|r, v| r.send_fault = Some(v)), help: "with FAULTS=on: send this X-Fault header with the first attempt of this fraction of messages (retries go without), such as sink=503@0.1" },
    Setting { name: "DEMO_VERSION", default: "", roles: ALL, set: Set::Label(|r, v| r.demo_version = Some(v)), help: "a label shown beside this build's version wherever a hop names its version (X-Relay-Version, X-Sink-Version, the sender's lineage line and flow page), such as a colour that a rollout changes" },
    Setting { name: "POD_IP", default: "", roles: ALL, set: Set::Ip(|r, v| r.pod_ip = Some(v)), help: "this instance's IP for messages and file names (unset: the host name's address, else the outbound interface's)" },
    Setting { name: "MAX_CONNECTIONS", default: "1024", roles: ALL, set: Set::Number { min: 1, max: 1_000_000, to: |r, v| r.max_connections = v }, help: "inbound connections open at once, lowered to what RLIMIT_NOFILE allows (logged); at the limit the oldest idle connection is closed to admit a new one, or with none idle the new one is answered 503" },
    Setting { name: "MAX_IN_FLIGHT", default: "1024", roles: ALL, set: Set::Number { min: 1, max: 100_000, to: |r, v| r.max_in_flight = v }, help: "messages handled at once (their bodies already read); more are answered 503 with Retry-After; by default as many as MAX_CONNECTIONS, so no admitted connection is refused" },
    Setting { name: "MAX_BODY_BYTES", default: "16384", roles: ALL, set: Set::Number { min: 1, max: 64 << 20, to: |r, v| r.max_body_bytes = v }, help: "largest message accepted; larger bodies get 413 unread" },
    Setting { name: "CLIENT_TIMEOUT", default: "10s", roles: ALL, set: Set::Duration { positive: true, to: |r, v| r.client_timeout = v }, help: "an inbound connection must deliver a whole request within this, and is closed when idle this long" },
    Setting { name: "DRAIN_DELAY", default: "5s", roles: ALL, set: Set::Duration { positive: false, to: |r, v| r.drain_delay = v }, help: "after SIGTERM, keep serving with /readyz at 503 for this long, while endpoints and load balancers catch up (see docs/operating.md)" },
    Setting { name: "SHUTDOWN_TIMEOUT", default: "10s", roles: ALL, set: Set::Duration { positive: false, to: |r, v| r.shutdown_timeout = v }, help: "then wait at most this long for the connections still open to finish" },
    Setting { name: "OTEL_EXPORTER_OTLP_ENDPOINT", default: "", roles: ALL, set: Set::Url(|r, v| r.otlp_endpoint = Some(v)), help: "tracing: the collector's OTLP/HTTP base URL, such as http://otel-collector.observability:4318; spans go to its /v1/traces (unset, with OTEL_EXPORTER_OTLP_TRACES_ENDPOINT unset too: no tracing)" },
    Setting { name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", default: "", roles: ALL, set: Set::Url(|r, v| r.otlp_traces_endpoint = Some(v)), help: "tracing: the whole URL spans are posted to; wins over OTEL_EXPORTER_OTLP_ENDPOINT" },
    Setting { name: "OTEL_EXPORTER_OTLP_PROTOCOL", default: "http/json", roles: ALL, set: Set::Word(&["http/json"], |_, _| {}), help: "tracing: the protocol spans are sent in; this build speaks OTLP/HTTP with JSON only (grpc and http/protobuf are refused at start)" },
    Setting { name: "OTEL_EXPORTER_OTLP_HEADERS", default: "", roles: ALL, set: Set::KeyValues(|r, v| r.otlp_headers = v), help: "tracing: headers sent with every export, such as an API key: key=value,key2=value2" },
    Setting { name: "OTEL_EXPORTER_OTLP_TIMEOUT", default: "10000", roles: ALL, set: Set::Millis(|r, v| r.otlp_timeout = v), help: "tracing: deadline for one export, in milliseconds" },
    Setting { name: "OTEL_SERVICE_NAME", default: "", roles: ALL, set: Set::Text(|r, v| r.service_name = Some(v)), help: "tracing: service.name of this tier's spans (unset: sender, relay or sink)" },
    Setting { name: "OTEL_RESOURCE_ATTRIBUTES", default: "", roles: ALL, set: Set::KeyValues(|r, v| r.resource = v), help: "tracing: more attributes of this tier's spans, such as k8s.pod.name=relays-7c9f-x2 (kustomize/components/tracing fills the pod's from the downward API)" },
    Setting { name: "OTEL_TRACES_SAMPLER", default: "parentbased_always_on", roles: ALL, set: Set::Word(SAMPLERS, |r, v| r.sampler = Sampler::named(v)), help: "tracing: which traces are recorded; the parentbased samplers follow the caller's sampled flag, so the sender decides for the whole path" },
    Setting { name: "OTEL_TRACES_SAMPLER_ARG", default: "1.0", roles: ALL, set: Set::Ratio(|r, v| r.sampler_ratio = v), help: "tracing: the share of traces the traceidratio samplers record" },
    Setting { name: "OTEL_SDK_DISABLED", default: "false", roles: ALL, set: Set::Word(&["true", "false"], |r, v| r.sdk_disabled = v == "true"), help: "tracing: true turns it off, whatever else is set" },
    Setting { name: "OTEL_BSP_MAX_QUEUE_SIZE", default: "2048", roles: ALL, set: Set::Number { min: 1, max: 1_000_000, to: |r, v| r.bsp_queue = v }, help: "tracing: spans waiting for export at most; more are dropped and counted, never waited for" },
    Setting { name: "OTEL_BSP_SCHEDULE_DELAY", default: "1000", roles: ALL, set: Set::Millis(|r, v| r.bsp_delay = v), help: "tracing: longest wait between two exports, in milliseconds (a full batch goes at once)" },
    Setting { name: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", default: "512", roles: ALL, set: Set::Number { min: 1, max: 1_000_000, to: |r, v| r.bsp_batch = v }, help: "tracing: spans in one export at most" },
];

/// Variables that are no longer read, with what replaced them: a tier started
/// with one set exits 2 rather than silently ignoring it.
pub const REMOVED: &[(&str, &str)] = &[(
    "UPSTREAM_KEEPALIVE",
    "UPSTREAM_MAX_REQUESTS (requests per connection; 1 is what UPSTREAM_KEEPALIVE=off did) and UPSTREAM_MAX_AGE",
)];

/// The settings that `role` reads, in table order.
pub fn settings_for(role: Role) -> impl Iterator<Item = &'static Setting> {
    SETTINGS.iter().filter(move |s| s.roles.contains(&role))
}

/// The `--help` text for `role`: every setting it reads, with its default and accepted form.
pub fn help(role: Role) -> String {
    let mut out = format!(
        "{name} {version}: the {name} tier of the three-tier case study\n\n\
         Usage: {name} [--help | --version]{loss}\n\n\
         Configured by environment variables only:\n",
        name = role.name(),
        version = crate::version::VERSION,
        loss = if role == Role::Sink {
            "\n       sink --loss-report [--json] [FILE ...]   per sender: messages received, duplicates, gaps (exit 1 if any)"
        } else {
            ""
        },
    );
    for s in settings_for(role) {
        let default = if s.default.is_empty() {
            "unset"
        } else {
            s.default
        };
        out.push_str(&format!(
            "  {:<21} {}\n  {:<21} default: {default}; accepts {}\n",
            s.name,
            s.help,
            "",
            s.form().expected()
        ));
    }
    out.push_str("\nExit codes: 0 clean stop, 1 runtime failure, 2 invalid configuration.\n");
    out
}

#[cfg(test)]
mod test;
