//! The listening socket: one socket for IPv4 and IPv6 by default, and a backlog that takes a burst.
//!
//! `LISTEN_ADDR` defaults to `[::]:8080` with `IPV6_V6ONLY` off, so one socket
//! takes connections over IPv6 and (as IPv4-mapped addresses, shown as plain
//! IPv4) over IPv4: a tier is reachable in IPv4, IPv6 and dual-stack clusters
//! alike. Where the kernel has no IPv6, the default falls back to
//! `0.0.0.0:8080` with one log line. An address that is set is bound as it is
//! (an IPv6 one dual-stack too). The backlog is raised to [`LISTEN_BACKLOG`]:
//! with std's small one, a burst of connections waits for SYN retransmits
//! (1 s, 3 s) before it is even accepted.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// Connections the kernel queues until they are accepted (capped by `net.core.somaxconn`).
pub const LISTEN_BACKLOG: i32 = 1024;

/// Where the listener ended up, and why if not where asked.
#[derive(Debug)]
pub struct Bound {
    /// The listening socket.
    pub listener: TcpListener,
    /// Set when the default fell back to IPv4: why IPv6 was not available.
    pub fell_back: Option<io::Error>,
}

/// Binds `addr`; with `fallback` (the default address), binds `0.0.0.0` on
/// the same port when the kernel has no IPv6.
pub fn bind(addr: SocketAddr, fallback: bool) -> io::Result<Bound> {
    match open(addr) {
        Err(e) if fallback && addr.is_ipv6() && no_ipv6(&e) => {
            let ipv4 = SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), addr.port());
            Ok(Bound {
                listener: open(ipv4)?,
                fell_back: Some(e),
            })
        }
        other => other.map(|listener| Bound {
            listener,
            fell_back: None,
        }),
    }
}

/// Whether `e` says this kernel cannot do IPv6 (no IPv6 sockets, or no IPv6 address to bind).
fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        rustix::io::Errno::from_io_error(e),
        Some(rustix::io::Errno::AFNOSUPPORT | rustix::io::Errno::ADDRNOTAVAIL)
    )
}

/// A listening TCP socket on `addr`, `SO_REUSEADDR` set as std sets it, IPv6 dual-stack.
fn open(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = if addr.is_ipv6() {
        AddressFamily::INET6
    } else {
        AddressFamily::INET
    };
    let socket = rustix::net::socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    rustix::net::sockopt::set_socket_reuseaddr(&socket, true)?;
    if addr.is_ipv6() {
        rustix::net::sockopt::set_ipv6_v6only(&socket, false)?;
    }
    rustix::net::bind(&socket, &addr)?;
    rustix::net::listen(&socket, LISTEN_BACKLOG)?;
    Ok(TcpListener::from(socket))
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// Accepts one connection on `listener` and answers the peer's address.
    fn echo_peer(listener: &TcpListener, connect: SocketAddr) -> SocketAddr {
        let mut client = TcpStream::connect(connect).unwrap();
        let (mut conn, peer) = listener.accept().unwrap();
        conn.write_all(b"x").unwrap();
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).unwrap();
        peer
    }

    #[test]
    fn an_ipv6_wildcard_takes_ipv4_and_ipv6() {
        let bound = bind("[::]:0".parse().unwrap(), true).unwrap();
        assert!(bound.fell_back.is_none());
        let port = bound.listener.local_addr().unwrap().port();
        let v6 = echo_peer(
            &bound.listener,
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], port)),
        );
        assert_eq!(v6.ip().to_string(), "::1");
        let v4 = echo_peer(&bound.listener, SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(v4.ip().to_canonical().to_string(), "127.0.0.1");
    }

    #[test]
    fn only_the_kernel_lacking_ipv6_makes_the_default_fall_back() {
        let errno = |e: rustix::io::Errno| io::Error::from(e);
        assert!(no_ipv6(&errno(rustix::io::Errno::AFNOSUPPORT)));
        assert!(no_ipv6(&errno(rustix::io::Errno::ADDRNOTAVAIL)));
        assert!(!no_ipv6(&errno(rustix::io::Errno::ADDRINUSE)));
        assert!(!no_ipv6(&errno(rustix::io::Errno::ACCESS)));
    }

    #[test]
    fn an_address_in_use_is_an_error_not_a_fallback() {
        let taken = bind("[::]:0".parse().unwrap(), true).unwrap();
        let port = taken.listener.local_addr().unwrap().port();
        let again = bind(SocketAddr::from(([0u16; 8], port)), true);
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }
}
