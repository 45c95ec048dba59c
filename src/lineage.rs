//! Which relay and which sink handled a message, carried back in response headers.
//!
//! The sink answers with `X-Sink-Ip` and `X-Sink-Host`; the relay passes those
//! on and adds `X-Relay-Ip` and `X-Relay-Host`. Every tier echoes
//! `X-Request-Id`. The sender prints one line per message from them:
//! `<request id> -> relay <ip> -> sink <ip> <status> in <ms> ms`, so the logs of
//! one sender show the Services balancing messages across pods. A relay also
//! names sinks that failed: `X-Sink-Failed` on its 502 or 504, and
//! `X-Sink-Failover` for each that refused before another answered.

use std::net::IpAddr;
use std::time::Duration;

use crate::role::Role;

/// The relay's address header.
pub const RELAY_IP: &str = "X-Relay-Ip";
/// The relay's host name header.
pub const RELAY_HOST: &str = "X-Relay-Host";
/// The sink's address header.
pub const SINK_IP: &str = "X-Sink-Ip";
/// The sink's host name header.
pub const SINK_HOST: &str = "X-Sink-Host";
/// On a relay's 502 or 504: the sink address that failed (one header per address).
pub const SINK_FAILED: &str = "X-Sink-Failed";
/// On a relay's answer: a sink address that refused before another answered.
pub const SINK_FAILOVER: &str = "X-Sink-Failover";

/// The headers tier `role` at `ip`, named `host`, adds about itself to its
/// answers (the sender answers no messages: none).
pub fn own_headers(role: Role, ip: IpAddr, host: &str) -> Vec<(&'static str, String)> {
    let (ip_header, host_header) = match role {
        Role::Relay => (RELAY_IP, RELAY_HOST),
        Role::Sink => (SINK_IP, SINK_HOST),
        Role::Sender => return Vec::new(),
    };
    let mut headers = vec![(ip_header, ip.to_string())];
    if crate::request_id::is_valid(host) {
        headers.push((host_header, host.to_string()));
    }
    headers
}

/// The sender's lineage line.
pub fn line(
    request_id: &str,
    relay: Option<&str>,
    sink: Option<&str>,
    status: Option<u16>,
    took: Duration,
) -> String {
    format!(
        "{request_id} -> relay {} -> sink {} {} in {:.1} ms",
        relay.unwrap_or("?"),
        sink.unwrap_or("?"),
        status.map_or_else(|| "failed".to_string(), |s| s.to_string()),
        took.as_secs_f64() * 1000.0
    )
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn lineage_line_shape() {
        assert_eq!(
            line(
                "10.0.0.1-7",
                Some("10.0.1.2"),
                Some("10.0.2.3"),
                Some(200),
                Duration::from_micros(2345)
            ),
            "10.0.0.1-7 -> relay 10.0.1.2 -> sink 10.0.2.3 200 in 2.3 ms"
        );
        assert_eq!(
            line("10.0.0.1-8", None, None, None, Duration::from_millis(5000)),
            "10.0.0.1-8 -> relay ? -> sink ? failed in 5000.0 ms"
        );
    }

    #[test]
    fn unsafe_host_names_are_not_sent() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(own_headers(Role::Sink, ip, "sink-7f9c").len(), 2);
        assert_eq!(own_headers(Role::Sink, ip, "bad host").len(), 1);
        assert_eq!(own_headers(Role::Relay, ip, "relay-1")[0].0, RELAY_IP);
    }
}
