//! Which relay and which sink handled a message, carried back in response headers.
//!
//! The sink answers with `X-Sink-Ip`, `X-Sink-Host` and `X-Sink-Version`; the
//! relay passes those on and adds `X-Relay-Ip`, `X-Relay-Host` and
//! `X-Relay-Version` (see [`crate::version::label`]). Every tier echoes
//! `X-Request-Id`. The sender prints one line per message from them:
//! `<request id> -> relay <ip> (<version>) -> sink <ip> (<version>) <status> in
//! <ms> ms`, so the logs of one sender show the Services balancing messages
//! across pods, and a rollout moving them to new ones. A relay also
//! names sinks that failed: `X-Sink-Failed` on its 502 or 504, and
//! `X-Sink-Failover` for each that refused before another answered.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::role::Role;

/// The relay's address header.
pub const RELAY_IP: &str = "X-Relay-Ip";
/// The relay's host name header.
pub const RELAY_HOST: &str = "X-Relay-Host";
/// The relay's version header.
pub const RELAY_VERSION: &str = "X-Relay-Version";
/// The sink's address header.
pub const SINK_IP: &str = "X-Sink-Ip";
/// The sink's host name header.
pub const SINK_HOST: &str = "X-Sink-Host";
/// The sink's version header.
pub const SINK_VERSION: &str = "X-Sink-Version";
/// On a relay's 502 or 504: the sink address that failed (one header per address).
pub const SINK_FAILED: &str = "X-Sink-Failed";
/// On a relay's answer: a sink address that refused before another answered.
pub const SINK_FAILOVER: &str = "X-Sink-Failover";

/// The same names as a `HeaderMap` looks them up, made once: a lookup by
/// `&str` parses and lowercases the name each time (a test keeps the two
/// forms equal).
pub mod names {
    use ureq_proto::http::HeaderName;

    /// [`super::RELAY_IP`].
    pub static RELAY_IP: HeaderName = HeaderName::from_static("x-relay-ip");
    /// [`super::RELAY_VERSION`].
    pub static RELAY_VERSION: HeaderName = HeaderName::from_static("x-relay-version");
    /// [`super::SINK_IP`].
    pub static SINK_IP: HeaderName = HeaderName::from_static("x-sink-ip");
    /// [`super::SINK_HOST`].
    pub static SINK_HOST: HeaderName = HeaderName::from_static("x-sink-host");
    /// [`super::SINK_VERSION`].
    pub static SINK_VERSION: HeaderName = HeaderName::from_static("x-sink-version");
    /// [`super::SINK_FAILED`].
    pub static SINK_FAILED: HeaderName = HeaderName::from_static("x-sink-failed");
    /// [`super::SINK_FAILOVER`].
    pub static SINK_FAILOVER: HeaderName = HeaderName::from_static("x-sink-failover");
    /// [`crate::observe::fault::MET`].
    pub static FAULT_MET: HeaderName = HeaderName::from_static("x-fault-met");
}

/// The headers tier `role` at `ip`, named `host`, at `version`, adds about
/// itself to its answers (the sender answers no messages: none).
pub fn own_headers(
    role: Role,
    ip: IpAddr,
    host: &str,
    version: &str,
) -> Vec<(&'static str, String)> {
    let (ip_header, host_header, version_header) = match role {
        Role::Relay => (RELAY_IP, RELAY_HOST, RELAY_VERSION),
        Role::Sink => (SINK_IP, SINK_HOST, SINK_VERSION),
        Role::Sender => return Vec::new(),
    };
    let mut headers = vec![
        (ip_header, ip.to_string()),
        (version_header, version.to_string()),
    ];
    if crate::observe::request_id::is_valid(host) {
        headers.push((host_header, host.to_string()));
    }
    headers
}

/// Whether `text` may be passed on and printed as a hop's version: 1 to 80
/// letters, digits, spaces or `.`, `_`, `-`, `+`, `:` ([`crate::version::label`]
/// writes `v0.1.0+abc1234 blue`).
pub fn is_version(text: &str) -> bool {
    (1..=80).contains(&text.len())
        && text.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b' ' | b'.' | b'_' | b'-' | b'+' | b':')
        })
}

/// One hop as a reply named it: its address and version, either unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hop<'a> {
    /// `X-Relay-Ip` or `X-Sink-Ip`.
    pub ip: Option<&'a str>,
    /// `X-Relay-Version` or `X-Sink-Version`.
    pub version: Option<&'a str>,
}

impl fmt::Display for Hop<'_> {
    /// `10.0.1.2 (v0.1.0+abc1234 blue)`, `10.0.1.2` without a version, `?` without an address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ip.unwrap_or("?"))?;
        match self.version {
            Some(version) => write!(f, " ({version})"),
            None => Ok(()),
        }
    }
}

/// The sender's lineage line.
pub fn line(
    request_id: &str,
    relay: Hop,
    sink: Hop,
    status: Option<u16>,
    took: Duration,
) -> String {
    format!(
        "{request_id} -> relay {relay} -> sink {sink} {} in {:.1} ms",
        status.map_or_else(|| "failed".to_string(), |s| s.to_string()),
        took.as_secs_f64() * 1000.0
    )
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_header_names_made_once_are_the_headers() {
        let pairs = [
            (RELAY_IP, &names::RELAY_IP),
            (RELAY_VERSION, &names::RELAY_VERSION),
            (SINK_IP, &names::SINK_IP),
            (SINK_HOST, &names::SINK_HOST),
            (SINK_VERSION, &names::SINK_VERSION),
            (SINK_FAILED, &names::SINK_FAILED),
            (SINK_FAILOVER, &names::SINK_FAILOVER),
            (crate::observe::fault::MET, &names::FAULT_MET),
        ];
        for (text, name) in pairs {
            assert!(text.eq_ignore_ascii_case(name.as_str()), "{text}");
        }
    }

    #[test]
    fn lineage_line_shape() {
        let hop = |ip, version| Hop {
            ip: Some(ip),
            version,
        };
        assert_eq!(
            line(
                "10.0.0.1-7",
                hop("10.0.1.2", Some("v0.1.0 blue")),
                hop("10.0.2.3", None),
                Some(200),
                Duration::from_micros(2345)
            ),
            "10.0.0.1-7 -> relay 10.0.1.2 (v0.1.0 blue) -> sink 10.0.2.3 200 in 2.3 ms"
        );
        let none = Hop::default();
        assert_eq!(
            line("10.0.0.1-8", none, none, None, Duration::from_millis(5000)),
            "10.0.0.1-8 -> relay ? -> sink ? failed in 5000.0 ms"
        );
    }

    #[test]
    fn versions_are_what_a_label_writes() {
        assert!(is_version("v0.1.0+abc1234 blue") && is_version("v0.1.0"));
        assert!(!is_version("") && !is_version("v1 <b>") && !is_version(&"v".repeat(81)));
    }

    #[test]
    fn unsafe_host_names_are_not_sent() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(own_headers(Role::Sink, ip, "sink-7f9c", "v1").len(), 3);
        assert_eq!(own_headers(Role::Sink, ip, "bad host", "v1").len(), 2);
        let relay = own_headers(Role::Relay, ip, "relay-1", "v1 blue");
        assert_eq!(relay[0].0, RELAY_IP);
        assert_eq!(relay[1], (RELAY_VERSION, "v1 blue".to_string()));
    }
}
