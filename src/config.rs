//! Every setting, declared once, and the validated configuration of each tier.
//!
//! Configuration comes from environment variables only, with the seed's names
//! (`RELAY_URL`, `SINK_URL`). [`SETTINGS`] is the single table of name, default,
//! tiers and help text: `--help` prints it, README.md mirrors it (a test checks
//! that), and each default is parsed by the same code as a value a user sets, so
//! a default is written in exactly one place. [`Config::from_lookup`] turns the
//! strings into typed values, and every rejection names the variable, its value
//! and the accepted form.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::logger::LogFormat;
use crate::parse::{self, Url};
use crate::{Error, Role};

/// One environment variable.
#[derive(Debug)]
pub struct Setting {
    /// The variable's name.
    pub name: &'static str,
    /// Its default as text; empty when unset means "not set".
    pub default: &'static str,
    /// The tiers that read it.
    pub roles: &'static [Role],
    /// One line of help.
    pub help: &'static str,
}

const ALL: &[Role] = &[Role::Sender, Role::Relay, Role::Sink];
const SENDER: &[Role] = &[Role::Sender];
const RELAY: &[Role] = &[Role::Relay];
const LOGGING: &[Role] = &[Role::Relay, Role::Sink];
const PEERS: &[Role] = &[Role::Sender, Role::Relay];

/// Every variable any tier reads.
pub const SETTINGS: &[Setting] = &[
    Setting { name: "LISTEN_ADDR", default: "[::]:8080", roles: ALL, help: "address and port to serve on; the default takes IPv6 and IPv4 on one socket (0.0.0.0:8080 where the kernel has no IPv6); the sender serves its flow page, /flow and the probes" },
    Setting { name: "RELAY_URL", default: "", roles: SENDER, help: "required: where to post messages; comma-separated URLs are used round-robin" },
    Setting { name: "SEND_INTERVAL", default: "5s", roles: SENDER, help: "time between messages, give or take a tenth at random (250ms, 5s, 1m or whole seconds)" },
    Setting { name: "SEND_COUNT", default: "", roles: SENDER, help: "stop after this many messages; exit 0 if all were answered 2xx, else 1 (unset: forever)" },
    Setting { name: "SEND_RETRIES", default: "6", roles: SENDER, help: "retries of a message whose delivery is uncertain: no connection, RELAY_TIMEOUT, a broken reply, 502, 503 or 504 (same request id: delivery is at least once); they wait 100 ms, 200 ms, ... at most 2 s each, half of it random, 2.5-5.1 s in all by default, longer than a pod restart" },
    Setting { name: "RELAY_TIMEOUT", default: "5s", roles: SENDER, help: "deadline for one sender-to-relay exchange" },
    Setting { name: "SINK_URL", default: "", roles: RELAY, help: "required: where to forward messages; comma-separated URLs are used round-robin" },
    Setting { name: "SINK_TIMEOUT", default: "2s", roles: RELAY, help: "deadline for one relay-to-sink exchange" },
    Setting { name: "UPSTREAM_MAX_REQUESTS", default: "10", roles: PEERS, help: "requests per connection to the next tier before it is closed and a new one opened (1: a new connection per message); bounded reuse lets a Service spread connections over pods" },
    Setting { name: "UPSTREAM_MAX_AGE", default: "4s", roles: PEERS, help: "a connection to the next tier is not reused once this old (keep it below the next tier's CLIENT_TIMEOUT)" },
    Setting { name: "DNS_REFRESH", default: "5s", roles: PEERS, help: "a host name in RELAY_URL or SINK_URL is looked up again at most this often, off the message path; a failed lookup keeps the last answer" },
    Setting { name: "LOG_DIR", default: "", roles: LOGGING, help: "also append message lines to LOG_DIR/Relay_<ip>.txt or LOG_DIR/Sink_<ip>.txt" },
    Setting { name: "LOG_FSYNC", default: "off", roles: LOGGING, help: "on: flush each message line in LOG_DIR to disk before the message is acknowledged (off: the kernel writes it back)" },
    Setting { name: "LOG_FORMAT", default: "text", roles: ALL, help: "stdout log lines: text (the seed's lines) or json (one object per line)" },
    Setting { name: "POD_IP", default: "", roles: ALL, help: "this instance's IP for messages and file names (unset: host name's address, else the outbound interface's)" },
    Setting { name: "MAX_CONNECTIONS", default: "1024", roles: ALL, help: "inbound connections open at once (lowered to what RLIMIT_NOFILE allows); at the limit the oldest idle one is closed, or the new one answered 503" },
    Setting { name: "MAX_IN_FLIGHT", default: "1024", roles: ALL, help: "messages handled at once (their bodies already read); more are answered 503 with Retry-After; by default as many as MAX_CONNECTIONS, so no admitted connection is refused" },
    Setting { name: "MAX_BODY_BYTES", default: "16384", roles: ALL, help: "largest message accepted; larger bodies get 413 unread" },
    Setting { name: "CLIENT_TIMEOUT", default: "10s", roles: ALL, help: "an inbound connection must deliver a whole request within this, and is closed when idle this long" },
    Setting { name: "DRAIN_DELAY", default: "5s", roles: ALL, help: "after SIGTERM, keep serving with /readyz at 503 for this long, while endpoints and load balancers catch up (see README: Rolling updates)" },
    Setting { name: "SHUTDOWN_TIMEOUT", default: "10s", roles: ALL, help: "then wait at most this long for requests in flight" },
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

/// The `--help` text for `role`.
pub fn help(role: Role) -> String {
    let mut out = format!(
        "{name} {version}: the {name} tier of the three-tier case study\n\n\
         Usage: {name} [--help | --version]{loss}\n\n\
         Configured by environment variables only:\n",
        name = role.name(),
        version = env!("CARGO_PKG_VERSION"),
        loss = if role == Role::Sink {
            "\n       sink --loss-report [FILE ...]   per sender: messages received, duplicates, gaps (exit 1 if any)"
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
            "  {:<17} {}\n  {:<17} default: {}\n",
            s.name, s.help, "", default
        ));
    }
    out.push_str("\nExit codes: 0 clean stop, 1 runtime failure, 2 invalid configuration.\n");
    out
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

/// Where a tier sends to: `RELAY_URL` with `RELAY_TIMEOUT`, or `SINK_URL` with `SINK_TIMEOUT`.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// The variable the URLs came from, for messages.
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
}

/// The validated configuration of one tier.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which tier.
    pub role: Role,
    /// The HTTP server's settings.
    pub server: ServerConfig,
    /// `POD_IP`, when set.
    pub pod_ip: Option<IpAddr>,
    /// `LOG_DIR`, when set (relay and sink).
    pub log_dir: Option<PathBuf>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_FSYNC`: flush each record to disk.
    pub log_fsync: bool,
    /// The next tier (sender and relay).
    pub peer: Option<PeerConfig>,
    /// Sending settings (sender).
    pub send: Option<SendConfig>,
}

impl Config {
    /// Reads `role`'s configuration from the process environment.
    pub fn from_env(role: Role) -> Result<Config, Error> {
        Config::from_lookup(role, |name| std::env::var(name).ok())
    }

    /// Reads `role`'s configuration through `lookup` (a variable name to its value).
    pub fn from_lookup(
        role: Role,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        if let Some((name, replacement)) = REMOVED.iter().find(|(name, _)| lookup(name).is_some()) {
            return Err(Error::Removed { name, replacement });
        }
        let vars = Vars {
            role,
            lookup: &lookup,
        };
        let server = ServerConfig {
            listen_addr: vars.get("LISTEN_ADDR", |t| {
                t.trim().parse::<SocketAddr>().map_err(|_| {
                    "an IP address and port such as 0.0.0.0:8080 or [::]:8080".to_string()
                })
            })?,
            listen_fallback: lookup("LISTEN_ADDR").is_none(),
            max_connections: vars.get("MAX_CONNECTIONS", |t| parse::number_in(t, 1, 1_000_000))?
                as usize,
            max_in_flight: vars.get("MAX_IN_FLIGHT", |t| parse::number_in(t, 1, 100_000))? as usize,
            max_body_bytes: vars.get("MAX_BODY_BYTES", |t| parse::number_in(t, 1, 64 << 20))?
                as usize,
            client_timeout: vars.get("CLIENT_TIMEOUT", positive_duration)?,
            drain_delay: vars.get("DRAIN_DELAY", duration)?,
            shutdown_timeout: vars.get("SHUTDOWN_TIMEOUT", duration)?,
        };
        let pod_ip = vars.get_opt("POD_IP", |t| {
            t.trim()
                .parse::<IpAddr>()
                .map_err(|_| "an IPv4 or IPv6 address such as 10.1.2.3".to_string())
        })?;
        let log_dir = match role {
            Role::Sender => None,
            _ => vars.get_opt("LOG_DIR", |t| {
                if t.trim().is_empty() {
                    Err("a directory path".to_string())
                } else {
                    Ok(PathBuf::from(t))
                }
            })?,
        };
        let log_fsync = match role {
            Role::Sender => false,
            _ => vars.get("LOG_FSYNC", |t| match t.trim() {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err("on or off"),
            })?,
        };
        let log_format = vars.get("LOG_FORMAT", |t| match t.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("text or json"),
        })?;
        let peer = match role {
            Role::Sender => Some(vars.peer("RELAY_URL", "RELAY_TIMEOUT")?),
            Role::Relay => Some(vars.peer("SINK_URL", "SINK_TIMEOUT")?),
            Role::Sink => None,
        };
        let send = match role {
            Role::Sender => Some(SendConfig {
                interval: vars.get("SEND_INTERVAL", positive_duration)?,
                count: vars.get_opt("SEND_COUNT", |t| parse::number_in(t, 1, u64::MAX))?,
                retries: vars.get("SEND_RETRIES", |t| parse::number_in(t, 0, 100))? as u32,
            }),
            _ => None,
        };
        Ok(Config {
            role,
            server,
            pod_ip,
            log_dir,
            log_format,
            log_fsync,
            peer,
            send,
        })
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    parse::duration(text).map_err(str::to_string)
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match parse::duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{} greater than zero", parse::DURATION_FORM)),
    }
}

/// Looks variables up, falling back to the [`SETTINGS`] default.
struct Vars<'a> {
    role: Role,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Vars<'_> {
    fn setting(&self, name: &'static str) -> &'static Setting {
        match SETTINGS
            .iter()
            .find(|s| s.name == name && s.roles.contains(&self.role))
        {
            Some(s) => s,
            None => unreachable!(
                "{name} is read by {} but not declared for it in SETTINGS",
                self.role
            ),
        }
    }

    /// The raw text: the variable if set, else the default; `None` if neither.
    fn text(&self, name: &'static str) -> Option<(String, bool)> {
        let setting = self.setting(name);
        match (self.lookup)(name) {
            Some(v) => Some((v, true)),
            None if !setting.default.is_empty() => Some((setting.default.to_string(), false)),
            None => None,
        }
    }

    fn get_opt<T, E: Into<String>>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<Option<T>, Error> {
        match self.text(name) {
            None => Ok(None),
            Some((text, _)) => parse(&text)
                .map(Some)
                .map_err(|e| Error::config(name, &text, e)),
        }
    }

    fn get<T, E: Into<String>>(
        &self,
        name: &'static str,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Result<T, Error> {
        match self.get_opt(name, parse)? {
            Some(v) => Ok(v),
            None => Err(Error::Config {
                name,
                value: None,
                expected: parse::URL_LIST_FORM.to_string(),
            }),
        }
    }

    fn peer(&self, urls: &'static str, timeout: &'static str) -> Result<PeerConfig, Error> {
        Ok(PeerConfig {
            variable: urls,
            urls: self.get(urls, parse::url_list)?,
            timeout: self.get(timeout, positive_duration)?,
            max_requests: self.get("UPSTREAM_MAX_REQUESTS", |t| {
                parse::number_in(t, 1, 1_000_000)
            })? as u32,
            max_age: self.get("UPSTREAM_MAX_AGE", positive_duration)?,
            dns_refresh: self.get("DNS_REFRESH", positive_duration)?,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::collections::HashMap;

    fn load(role: Role, vars: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(role, |k| map.get(k).cloned())
    }

    fn error(role: Role, vars: &[(&str, &str)]) -> String {
        match load(role, vars) {
            Ok(c) => panic!("accepted {vars:?}: {c:?}"),
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                e.to_string()
            }
        }
    }

    #[test]
    fn every_default_parses_for_every_role() {
        let sender = load(Role::Sender, &[("RELAY_URL", "relay-svc/relay.php")]).unwrap();
        assert_eq!(sender.server.listen_addr, "[::]:8080".parse().unwrap());
        assert!(sender.server.listen_fallback);
        assert_eq!(sender.server.max_in_flight, 1024);
        assert_eq!(sender.server.max_connections, 1024);
        assert_eq!(sender.server.max_body_bytes, 16384);
        assert_eq!(sender.server.client_timeout, Duration::from_secs(10));
        assert_eq!(sender.server.drain_delay, Duration::from_secs(5));
        assert_eq!(sender.server.shutdown_timeout, Duration::from_secs(10));
        let send = sender.send.unwrap();
        assert_eq!(send.interval, Duration::from_secs(5));
        assert_eq!(send.count, None);
        assert_eq!(send.retries, 6);
        let peer = sender.peer.unwrap();
        assert_eq!(peer.timeout, Duration::from_secs(5));
        assert_eq!(
            (peer.max_requests, peer.max_age),
            (10, Duration::from_secs(4))
        );
        assert_eq!(peer.urls[0].host, "relay-svc");

        let relay = load(Role::Relay, &[("SINK_URL", "sink-svc/sink.php")]).unwrap();
        assert_eq!(relay.peer.unwrap().timeout, Duration::from_secs(2));
        assert!(relay.log_dir.is_none() && relay.pod_ip.is_none());

        let sink = load(Role::Sink, &[]).unwrap();
        assert!(sink.peer.is_none() && sink.send.is_none());
    }

    #[test]
    fn values_override_defaults() {
        let c = load(
            Role::Sender,
            &[
                ("RELAY_URL", "127.0.0.1:1/,127.0.0.1:2/"),
                ("SEND_INTERVAL", "50ms"),
                ("SEND_COUNT", "20"),
                ("SEND_RETRIES", "0"),
                ("POD_IP", "10.0.0.7"),
                ("LISTEN_ADDR", "127.0.0.1:0"),
            ],
        )
        .unwrap();
        let send = c.send.unwrap();
        assert_eq!(send.interval, Duration::from_millis(50));
        assert_eq!(send.count, Some(20));
        assert_eq!(send.retries, 0);
        assert_eq!(c.peer.unwrap().urls.len(), 2);
        assert_eq!(c.pod_ip, Some("10.0.0.7".parse().unwrap()));
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
        let c = load(
            Role::Sink,
            &[("DRAIN_DELAY", "0"), ("SHUTDOWN_TIMEOUT", "0")],
        )
        .unwrap();
        assert_eq!(c.server.drain_delay, Duration::ZERO);
    }

    #[test]
    fn help_lists_every_setting_of_the_role_with_its_default() {
        let h = help(Role::Relay);
        for s in settings_for(Role::Relay) {
            assert!(h.contains(s.name), "{} missing", s.name);
        }
        assert!(h.contains("default: 2s"));
        assert!(!h.contains("SEND_INTERVAL"));
    }
}
