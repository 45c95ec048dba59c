//! Every setting, declared once, and the checked configuration of each tier.
//!
//! Configuration comes from environment variables only, with the seed's names
//! (`RELAY_URL`, `SINK_URL`). [`SETTINGS`] is the one table of them: each row
//! has the name, the default, the tiers that read it, its help and its
//! [`Form`] with the bounds; `--help` prints the rows, README.md mirrors them
//! (a test checks that), and a default is parsed by the same code as a value
//! a user sets. Each tier's configuration ([`SenderConfig`], [`RelayConfig`],
//! [`SinkConfig`]) is read from the rows through [`TierSettings`], so a tier's
//! run function gets what it needs already checked, and every rejection names
//! the variable, its value and the accepted form.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::role::Role;
use crate::values::{self, Url};

/// The form a setting's value takes, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// An IP address and port.
    SocketAddr,
    /// An IPv4 or IPv6 address.
    Ip,
    /// One or more http URLs, comma-separated.
    Urls,
    /// A duration; `positive`: greater than zero.
    Duration {
        /// Zero is refused.
        positive: bool,
    },
    /// A whole number from `min` to `max`.
    Number {
        /// The least accepted.
        min: u64,
        /// The most accepted.
        max: u64,
    },
    /// One of these words.
    Word(&'static [&'static str]),
    /// A directory path.
    Dir,
    /// A short label: 1 to 32 letters, digits, `.`, `_` or `-`.
    Label,
    /// An `X-Fault` value and the fraction of messages to send it with: `sink=503@0.1`.
    SendFault,
}

/// A value of some [`Form`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    SocketAddr(SocketAddr),
    Ip(IpAddr),
    Urls(Vec<Url>),
    Duration(Duration),
    Number(u64),
    Word(&'static str),
    Dir(PathBuf),
    Label(String),
    SendFault(SendFault),
}

/// `SEND_FAULT`: the `X-Fault` header the sender adds to the first attempt of
/// a fraction of its messages (see [`crate::fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFault {
    /// The header's value, such as `sink=503`.
    pub header: String,
    /// How many messages in a million carry it.
    pub per_million: u32,
}

impl SendFault {
    fn parse(text: &str) -> Option<SendFault> {
        let (header, fraction) = text.trim().rsplit_once('@')?;
        let fraction: f64 = fraction.trim().parse().ok()?;
        let valid = crate::fault::is_header(header) && fraction > 0.0 && fraction <= 1.0;
        valid.then(|| SendFault {
            header: header.trim().to_string(),
            per_million: (fraction * 1e6).round() as u32,
        })
    }
}

impl Form {
    /// The accepted form, as error messages and `--help` name it.
    pub fn expected(self) -> String {
        match self {
            Form::SocketAddr => "an IP address and port such as 0.0.0.0:8080 or [::]:8080".into(),
            Form::Ip => "an IPv4 or IPv6 address such as 10.1.2.3".into(),
            Form::Urls => values::URL_LIST_FORM.into(),
            Form::Duration { positive: false } => values::DURATION_FORM.into(),
            Form::Duration { positive: true } => {
                format!("{} greater than zero", values::DURATION_FORM)
            }
            Form::Number { min, max } => format!("a whole number from {min} to {max}"),
            Form::Word(words) => words.join(" or "),
            Form::Dir => "a directory path".into(),
            Form::Label => "1 to 32 letters, digits, '.', '_' or '-', such as blue or v2".into(),
            Form::SendFault => format!(
                "<X-Fault>@<fraction from 0 to 1>, such as sink=503@0.1, where X-Fault is {}",
                crate::fault::HEADER_FORM
            ),
        }
    }

    /// `text` as a value of this form, or `Err` with [`Form::expected`].
    fn parse(self, text: &str) -> Result<Value, String> {
        let trimmed = text.trim();
        let value = match self {
            Form::SocketAddr => trimmed.parse().ok().map(Value::SocketAddr),
            Form::Ip => trimmed.parse().ok().map(Value::Ip),
            Form::Urls => values::url_list(text).ok().map(Value::Urls),
            Form::Duration { positive } => values::duration(text)
                .ok()
                .filter(|d| !(positive && d.is_zero()))
                .map(Value::Duration),
            Form::Number { min, max } => values::number_in(text, min, max).ok().map(Value::Number),
            Form::Word(words) => words
                .iter()
                .find(|w| **w == trimmed)
                .map(|w| Value::Word(w)),
            Form::Dir => (!trimmed.is_empty()).then(|| Value::Dir(PathBuf::from(text))),
            Form::Label => is_label(trimmed).then(|| Value::Label(trimmed.to_string())),
            Form::SendFault => SendFault::parse(text).map(Value::SendFault),
        };
        value.ok_or_else(|| self.expected())
    }
}

/// Whether `text` is a [`Form::Label`]: safe in a header, a log line and a page.
fn is_label(text: &str) -> bool {
    (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

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
    /// The form its value takes.
    pub form: Form,
}

const ALL: &[Role] = &[Role::Sender, Role::Relay, Role::Sink];
const SENDER: &[Role] = &[Role::Sender];
const RELAY: &[Role] = &[Role::Relay];
const LOGGING: &[Role] = &[Role::Relay, Role::Sink];
const PEERS: &[Role] = &[Role::Sender, Role::Relay];

const POSITIVE: Form = Form::Duration { positive: true };
const ANY_DURATION: Form = Form::Duration { positive: false };
const CONNECTIONS: Form = Form::Number {
    min: 1,
    max: 1_000_000,
};

/// Every variable any tier reads.
pub const SETTINGS: &[Setting] = &[
    Setting { name: "LISTEN_ADDR", default: "[::]:8080", roles: ALL, form: Form::SocketAddr, help: "address and port to serve on; the default takes IPv6 and IPv4 on one socket (IPV6_V6ONLY off), and falls back to 0.0.0.0:8080, with a log line, where the kernel has no IPv6; the sender serves its flow page, /flow and the probes" },
    Setting { name: "RELAY_URL", default: "", roles: SENDER, form: Form::Urls, help: "required: where to post messages; comma-separated URLs are used round-robin" },
    Setting { name: "SEND_INTERVAL", default: "5s", roles: SENDER, form: POSITIVE, help: "time between messages, give or take a tenth at random so that senders started together do not stay in step" },
    Setting { name: "SEND_COUNT", default: "", roles: SENDER, form: Form::Number { min: 1, max: u64::MAX }, help: "stop after this many messages; exit 0 if all were answered 2xx, else 1 (unset: forever)" },
    Setting { name: "SEND_FAIL_FAST", default: "off", roles: SENDER, form: Form::Word(&["on", "off"]), help: "on: stop at the first message that failed after its retries and exit 1, as a smoke test should (off: go on with the next)" },
    Setting { name: "SEND_RETRIES", default: "6", roles: SENDER, form: Form::Number { min: 0, max: 100 }, help: "retries of a message whose delivery is uncertain: no connection, RELAY_TIMEOUT, a broken reply, 502, 503 or 504 (same request id: delivery is at least once); they wait 100 ms, 200 ms, ... at most 2 s each, half of it random, 2.5-5.1 s in all by default, longer than a pod restart" },
    Setting { name: "RELAY_TIMEOUT", default: "5s", roles: SENDER, form: POSITIVE, help: "deadline for one sender-to-relay exchange" },
    Setting { name: "SINK_URL", default: "", roles: RELAY, form: Form::Urls, help: "required: where to forward messages; comma-separated URLs are used round-robin" },
    Setting { name: "SINK_TIMEOUT", default: "2s", roles: RELAY, form: POSITIVE, help: "deadline for one relay-to-sink exchange" },
    Setting { name: "UPSTREAM_MAX_REQUESTS", default: "10", roles: PEERS, form: CONNECTIONS, help: "requests per connection to the next tier before it is closed and a new one opened (1: a new connection per message); bounded reuse lets a Service spread connections over pods" },
    Setting { name: "UPSTREAM_MAX_AGE", default: "4s", roles: PEERS, form: POSITIVE, help: "a connection to the next tier is not reused once this old (keep it below the next tier's CLIENT_TIMEOUT)" },
    Setting { name: "DNS_REFRESH", default: "5s", roles: PEERS, form: POSITIVE, help: "a host name in RELAY_URL or SINK_URL (a Service name) is looked up again at most this often, off the message path; a lookup that fails or outlasts the hop's timeout keeps the last answer" },
    Setting { name: "LOG_DIR", default: "", roles: LOGGING, form: Form::Dir, help: "also append message lines to LOG_DIR/Relay_<ip>.txt or LOG_DIR/Sink_<ip>.txt" },
    Setting { name: "LOG_FSYNC", default: "off", roles: LOGGING, form: Form::Word(&["on", "off"]), help: "on: flush each message line in LOG_DIR to disk before the message is acknowledged (off: the kernel writes it back)" },
    Setting { name: "LOG_FORMAT", default: "text", roles: ALL, form: Form::Word(&["text", "json"]), help: "stdout log lines: text (the seed's lines) or json (one object per line)" },
    Setting { name: "FAULTS", default: "off", roles: ALL, form: Form::Word(&["on", "off"]), help: "on: the relay and the sink apply the faults an X-Fault header or POST /fault asks for, and the sender may send SEND_FAULT (for drills and demos: the dev and lab overlays' faults component sets it; see docs/faults.md)" },
    Setting { name: "SEND_FAULT", default: "", roles: SENDER, form: Form::SendFault, help: "with FAULTS=on: send this X-Fault header with the first attempt of this fraction of messages (retries go without), such as sink=503@0.1" },
    Setting { name: "DEMO_VERSION", default: "", roles: ALL, form: Form::Label, help: "a label shown beside this build's version wherever a hop names its version (X-Relay-Version, X-Sink-Version, the sender's lineage line and flow page), such as a colour that a rollout changes" },
    Setting { name: "POD_IP", default: "", roles: ALL, form: Form::Ip, help: "this instance's IP for messages and file names (unset: the host name's address, else the outbound interface's)" },
    Setting { name: "MAX_CONNECTIONS", default: "1024", roles: ALL, form: CONNECTIONS, help: "inbound connections open at once, lowered to what RLIMIT_NOFILE allows (logged); at the limit the oldest idle connection is closed to admit a new one, or with none idle the new one is answered 503" },
    Setting { name: "MAX_IN_FLIGHT", default: "1024", roles: ALL, form: Form::Number { min: 1, max: 100_000 }, help: "messages handled at once (their bodies already read); more are answered 503 with Retry-After; by default as many as MAX_CONNECTIONS, so no admitted connection is refused" },
    Setting { name: "MAX_BODY_BYTES", default: "16384", roles: ALL, form: Form::Number { min: 1, max: 64 << 20 }, help: "largest message accepted; larger bodies get 413 unread" },
    Setting { name: "CLIENT_TIMEOUT", default: "10s", roles: ALL, form: POSITIVE, help: "an inbound connection must deliver a whole request within this, and is closed when idle this long" },
    Setting { name: "DRAIN_DELAY", default: "5s", roles: ALL, form: ANY_DURATION, help: "after SIGTERM, keep serving with /readyz at 503 for this long, while endpoints and load balancers catch up (see docs/operating.md)" },
    Setting { name: "SHUTDOWN_TIMEOUT", default: "10s", roles: ALL, form: ANY_DURATION, help: "then wait at most this long for the connections still open to finish" },
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
            s.form.expected()
        ));
    }
    out.push_str("\nExit codes: 0 clean stop, 1 runtime failure, 2 invalid configuration.\n");
    out
}

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

/// A tier's configuration, read from the [`SETTINGS`] rows of its role.
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

/// The environment as one tier's settings see it: each variable's value, or
/// its default, parsed in the form its [`SETTINGS`] row gives.
pub struct Vars<'a> {
    role: Role,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn setting(&self, name: &'static str) -> &'static Setting {
        match settings_for(self.role).find(|s| s.name == name) {
            Some(s) => s,
            None => unreachable!(
                "{name} is read by {} but not declared for it in SETTINGS",
                self.role
            ),
        }
    }

    /// Whether this tier reads `name`.
    fn reads(&self, name: &str) -> bool {
        settings_for(self.role).any(|s| s.name == name)
    }

    /// The value of `name`, or of its default; `None` if neither is set.
    fn value(&self, name: &'static str) -> Result<Option<Value>, Error> {
        let setting = self.setting(name);
        let text = (self.lookup)(name)
            .or_else(|| (!setting.default.is_empty()).then(|| setting.default.to_string()));
        match text {
            None => Ok(None),
            Some(text) => setting
                .form
                .parse(&text)
                .map(Some)
                .map_err(|expected| Error::config(name, &text, expected)),
        }
    }

    /// The value of `name`, which must be set.
    fn required(&self, name: &'static str) -> Result<Value, Error> {
        self.value(name)?.ok_or_else(|| Error::Config {
            name,
            value: None,
            expected: self.setting(name).form.expected(),
        })
    }

    fn duration(&self, name: &'static str) -> Result<Duration, Error> {
        match self.required(name)? {
            Value::Duration(d) => Ok(d),
            other => self.mismatch(name, Some(other)),
        }
    }

    fn number(&self, name: &'static str) -> Result<u64, Error> {
        match self.required(name)? {
            Value::Number(n) => Ok(n),
            other => self.mismatch(name, Some(other)),
        }
    }

    fn number_opt(&self, name: &'static str) -> Result<Option<u64>, Error> {
        match self.value(name)? {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n)),
            other => self.mismatch(name, other),
        }
    }

    fn word(&self, name: &'static str) -> Result<&'static str, Error> {
        match self.required(name)? {
            Value::Word(w) => Ok(w),
            other => self.mismatch(name, Some(other)),
        }
    }

    /// A setting read as another form than its row declares: a bug here, not an input.
    fn mismatch(&self, name: &str, value: Option<Value>) -> ! {
        unreachable!(
            "{name} is declared as {:?} in SETTINGS but read as another form ({value:?})",
            self.setting_form(name)
        )
    }

    fn setting_form(&self, name: &str) -> Option<Form> {
        SETTINGS.iter().find(|s| s.name == name).map(|s| s.form)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::collections::HashMap;

    fn load<C: TierSettings>(vars: &[(&str, &str)]) -> Result<C, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        C::from_lookup(|k| map.get(k).cloned())
    }

    fn error(role: Role, vars: &[(&str, &str)]) -> String {
        let read = match role {
            Role::Sender => load::<SenderConfig>(vars).map(|_| ()),
            Role::Relay => load::<RelayConfig>(vars).map(|_| ()),
            Role::Sink => load::<SinkConfig>(vars).map(|_| ()),
        };
        match read {
            Ok(()) => panic!("{role} accepted {vars:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                e.to_string()
            }
        }
    }

    #[test]
    fn every_default_parses_for_every_role() {
        let sender: SenderConfig = load(&[("RELAY_URL", "relay-svc/relay.php")]).unwrap();
        let (send, peer, sender) = (sender.send, sender.relay, sender.tier);
        assert_eq!(sender.server.listen_addr, "[::]:8080".parse().unwrap());
        assert!(sender.server.listen_fallback);
        assert_eq!(sender.server.max_in_flight, 1024);
        assert_eq!(sender.server.max_connections, 1024);
        assert_eq!(sender.server.max_body_bytes, 16384);
        assert_eq!(sender.server.client_timeout, Duration::from_secs(10));
        assert_eq!(sender.server.drain_delay, Duration::from_secs(5));
        assert_eq!(sender.server.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(send.interval, Duration::from_secs(5));
        assert_eq!(send.count, None);
        assert_eq!(send.retries, 6);
        assert_eq!(peer.timeout, Duration::from_secs(5));
        assert_eq!(
            (peer.max_requests, peer.max_age),
            (10, Duration::from_secs(4))
        );
        assert_eq!(peer.urls[0].host, "relay-svc");

        assert_eq!(
            (sender.log.format, sender.log.fsync),
            (LogFormat::Text, false)
        );

        let relay: RelayConfig = load(&[("SINK_URL", "sink-svc/sink.php")]).unwrap();
        assert_eq!(relay.sink.timeout, Duration::from_secs(2));
        assert!(relay.tier.log.dir.is_none() && relay.tier.pod_ip.is_none());
        assert_eq!(relay.tier.demo_version, None);

        let sink: SinkConfig = load(&[("LOG_FSYNC", "on"), ("LOG_FORMAT", "json")]).unwrap();
        assert_eq!(
            (sink.tier.log.format, sink.tier.log.fsync),
            (LogFormat::Json, true)
        );
    }

    #[test]
    fn values_override_defaults() {
        let c: SenderConfig = load(&[
            ("RELAY_URL", "127.0.0.1:1/,127.0.0.1:2/"),
            ("SEND_INTERVAL", "50ms"),
            ("SEND_COUNT", "20"),
            ("SEND_RETRIES", "0"),
            ("POD_IP", "10.0.0.7"),
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("DEMO_VERSION", " blue "),
            ("FAULTS", "on"),
            ("SEND_FAULT", "sink=503, relay-delay=1s@0.25"),
        ])
        .unwrap();
        assert_eq!(c.tier.demo_version.as_deref(), Some("blue"));
        let fault = c.send.fault.unwrap();
        assert_eq!(
            (fault.header.as_str(), fault.per_million),
            ("sink=503, relay-delay=1s", 250_000)
        );
        assert_eq!(c.send.interval, Duration::from_millis(50));
        assert_eq!(c.send.count, Some(20));
        assert_eq!(c.send.retries, 0);
        assert_eq!(c.relay.urls.len(), 2);
        assert_eq!(c.tier.pod_ip, Some("10.0.0.7".parse().unwrap()));
    }

    #[test]
    fn every_configuration_error_names_variable_value_and_form() {
        let relay = [("RELAY_URL", "r/")];
        type Case<'a> = (Role, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (
                Role::Sender,
                &[],
                "config: RELAY_URL is not set: expected one or more http URLs",
            ),
            (
                Role::Relay,
                &[],
                "config: SINK_URL is not set: expected one or more http URLs",
            ),
            (
                Role::Sender,
                &[("RELAY_URL", "https://x/")],
                r#"config: RELAY_URL="https://x/" is invalid: expected one or more http URLs"#,
            ),
            (
                Role::Relay,
                &[("SINK_URL", "a,,b")],
                r#"config: SINK_URL="a,,b" is invalid: expected one or more http URLs"#,
            ),
            (
                Role::Sender,
                &[relay[0], ("SEND_INTERVAL", "5x")],
                r#"config: SEND_INTERVAL="5x" is invalid: expected a duration such as 250ms, 5s or 1m, or a whole number of seconds"#,
            ),
            (
                Role::Sender,
                &[relay[0], ("SEND_INTERVAL", "0")],
                r#"config: SEND_INTERVAL="0" is invalid: expected a duration such as 250ms, 5s or 1m, or a whole number of seconds greater than zero"#,
            ),
            (
                Role::Sender,
                &[relay[0], ("SEND_COUNT", "0")],
                r#"config: SEND_COUNT="0" is invalid: expected a whole number from 1 to 18446744073709551615"#,
            ),
            (
                Role::Sender,
                &[relay[0], ("SEND_RETRIES", "many")],
                r#"config: SEND_RETRIES="many" is invalid: expected a whole number from 0 to 100"#,
            ),
            (
                Role::Sender,
                &[relay[0], ("RELAY_TIMEOUT", "0ms")],
                r#"config: RELAY_TIMEOUT="0ms" is invalid: expected a duration"#,
            ),
            (
                Role::Relay,
                &[("SINK_URL", "s/"), ("SINK_TIMEOUT", "fast")],
                r#"config: SINK_TIMEOUT="fast" is invalid: expected a duration"#,
            ),
            (
                Role::Sink,
                &[("LISTEN_ADDR", "8080")],
                r#"config: LISTEN_ADDR="8080" is invalid: expected an IP address and port such as 0.0.0.0:8080"#,
            ),
            (
                Role::Sink,
                &[("MAX_IN_FLIGHT", "0")],
                r#"config: MAX_IN_FLIGHT="0" is invalid: expected a whole number from 1 to 100000"#,
            ),
            (
                Role::Sink,
                &[("MAX_BODY_BYTES", "1e6")],
                r#"config: MAX_BODY_BYTES="1e6" is invalid: expected a whole number from 1 to 67108864"#,
            ),
            (
                Role::Sink,
                &[("CLIENT_TIMEOUT", "0s")],
                r#"config: CLIENT_TIMEOUT="0s" is invalid: expected a duration"#,
            ),
            (
                Role::Sink,
                &[("DRAIN_DELAY", "-1")],
                r#"config: DRAIN_DELAY="-1" is invalid: expected a duration"#,
            ),
            (
                Role::Sink,
                &[("SHUTDOWN_TIMEOUT", "10h")],
                r#"config: SHUTDOWN_TIMEOUT="10h" is invalid: expected a duration"#,
            ),
            (
                Role::Relay,
                &[("SINK_URL", "http://s/"), ("DEMO_VERSION", "blue green")],
                r#"config: DEMO_VERSION="blue green" is invalid: expected 1 to 32 letters, digits, '.', '_' or '-', such as blue or v2"#,
            ),
            (
                Role::Sender,
                &[("RELAY_URL", "http://r/"), ("SEND_FAULT", "sink=503@0.1")],
                r#"config: SEND_FAULT="sink=503@0.1" is invalid: expected SEND_FAULT to be unset while FAULTS is off (set FAULTS=on to inject faults)"#,
            ),
            (
                Role::Sender,
                &[("RELAY_URL", "http://r/"), ("FAULTS", "on"), ("SEND_FAULT", "sink=200@2")],
                "config: SEND_FAULT=\"sink=200@2\" is invalid: expected <X-Fault>@<fraction from 0 to 1>, such as sink=503@0.1, where X-Fault is comma-separated relay=<status 400-599|close>, sink=<status 400-599|close>, relay-delay=<duration>, sink-delay=<duration> (at most 10s), such as sink=503 or sink-delay=1500ms",
            ),
            (
                Role::Sink,
                &[("POD_IP", "pod-7")],
                r#"config: POD_IP="pod-7" is invalid: expected an IPv4 or IPv6 address such as 10.1.2.3"#,
            ),
            (
                Role::Sink,
                &[("LOG_DIR", "")],
                r#"config: LOG_DIR="" is invalid: expected a directory path"#,
            ),
            (
                Role::Sender,
                &[relay[0], ("UPSTREAM_MAX_REQUESTS", "0")],
                r#"config: UPSTREAM_MAX_REQUESTS="0" is invalid: expected a whole number from 1 to 1000000"#,
            ),
            (
                Role::Relay,
                &[("SINK_URL", "s/"), ("UPSTREAM_MAX_AGE", "0s")],
                r#"config: UPSTREAM_MAX_AGE="0s" is invalid: expected a duration"#,
            ),
            (
                Role::Sink,
                &[("MAX_CONNECTIONS", "0")],
                r#"config: MAX_CONNECTIONS="0" is invalid: expected a whole number from 1 to 1000000"#,
            ),
            (
                Role::Relay,
                &[("SINK_URL", "s/"), ("UPSTREAM_KEEPALIVE", "on")],
                "config: UPSTREAM_KEEPALIVE is no longer read: use UPSTREAM_MAX_REQUESTS (requests per connection; 1 is what UPSTREAM_KEEPALIVE=off did) and UPSTREAM_MAX_AGE",
            ),
            (
                Role::Sink,
                &[("LOG_FSYNC", "yes")],
                r#"config: LOG_FSYNC="yes" is invalid: expected on or off"#,
            ),
            (
                Role::Relay,
                &[("SINK_URL", "s/"), ("LOG_FORMAT", "xml")],
                r#"config: LOG_FORMAT="xml" is invalid: expected text or json"#,
            ),
        ];
        for (role, vars, want) in cases {
            let got = error(*role, vars);
            assert!(
                got.starts_with(want),
                "{role} {vars:?}:\n got: {got}\nwant: {want}…"
            );
        }
    }

    #[test]
    fn zero_drain_delay_is_allowed() {
        let c: SinkConfig = load(&[("DRAIN_DELAY", "0"), ("SHUTDOWN_TIMEOUT", "0")]).unwrap();
        assert_eq!(c.tier.server.drain_delay, Duration::ZERO);
    }

    #[test]
    fn help_lists_every_setting_of_the_role_with_its_default() {
        let h = help(Role::Relay);
        for s in settings_for(Role::Relay) {
            assert!(h.contains(s.name), "{} missing", s.name);
        }
        assert!(h.contains("default: 2s; accepts a duration such as 250ms"));
        assert!(h.contains("default: 1024; accepts a whole number from 1 to 100000"));
        assert!(!h.contains("SEND_INTERVAL"));
    }

    #[test]
    fn every_default_is_a_value_of_its_form() {
        for s in SETTINGS.iter().filter(|s| !s.default.is_empty()) {
            assert!(
                s.form.parse(s.default).is_ok(),
                "{}={} is not {}",
                s.name,
                s.default,
                s.form.expected()
            );
        }
    }
}
