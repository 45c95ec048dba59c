//! Who this instance is: the IP it names in messages and log file names.
//!
//! The seed used `hostname -I` in the sender and `gethostbyname(gethostname())`
//! in the PHP tiers. We take `POD_IP` when set (the downward API in Kubernetes),
//! else the first non-loopback address the host name resolves to, else the
//! address of the interface that routes outward, else 127.0.0.1.

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};

/// Picks the instance IP from what is known; see the module doc for the order.
pub fn choose_ip(
    pod_ip: Option<IpAddr>,
    host_name_addrs: &[IpAddr],
    outbound: Option<IpAddr>,
) -> IpAddr {
    pod_ip
        .or_else(|| host_name_addrs.iter().copied().find(|ip| is_usable(*ip)))
        .or(outbound.filter(|ip| !ip.is_unspecified()))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn is_usable(ip: IpAddr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified()
}

/// This host's name, as `gethostname(2)` reports it.
pub fn host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Looks the instance IP up on this host (for a tier without `POD_IP`).
pub fn local_ip() -> IpAddr {
    let host_addrs: Vec<IpAddr> = (host_name().as_str(), 0)
        .to_socket_addrs()
        .map(|addrs| addrs.map(|a| a.ip()).collect())
        .unwrap_or_default();
    choose_ip(None, &host_addrs, outbound_ip())
}

/// The source address the kernel would use for traffic leaving the host.
///
/// Connecting a UDP socket only asks the routing table; no packet is sent.
/// The target is a documentation address (RFC 5737 / RFC 3849).
fn outbound_ip() -> Option<IpAddr> {
    [("0.0.0.0:0", "192.0.2.1:9"), ("[::]:0", "[2001:db8::1]:9")]
        .iter()
        .find_map(|(bind, target)| {
            let socket = UdpSocket::bind(bind).ok()?;
            socket.connect(target).ok()?;
            socket.local_addr().ok().map(|a| a.ip())
        })
}

#[cfg(test)]
mod test {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn pod_ip_wins() {
        assert_eq!(
            choose_ip(
                Some(ip("10.0.0.9")),
                &[ip("192.168.1.2")],
                Some(ip("172.16.0.1"))
            ),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn host_name_address_unless_loopback() {
        assert_eq!(
            choose_ip(
                None,
                &[ip("127.0.1.1"), ip("192.168.1.2")],
                Some(ip("172.16.0.1"))
            ),
            ip("192.168.1.2")
        );
        assert_eq!(
            choose_ip(None, &[ip("127.0.1.1"), ip("::1")], Some(ip("172.16.0.1"))),
            ip("172.16.0.1")
        );
    }

    #[test]
    fn outbound_interface_then_loopback() {
        assert_eq!(
            choose_ip(None, &[], Some(ip("172.16.0.1"))),
            ip("172.16.0.1")
        );
        assert_eq!(choose_ip(None, &[], Some(ip("0.0.0.0"))), ip("127.0.0.1"));
        assert_eq!(choose_ip(None, &[], None), ip("127.0.0.1"));
    }
}
