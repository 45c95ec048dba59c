//! Per-request deadlines for inbound connections, which tiny_http does not have.
//!
//! tiny_http accepts connections on its own thread and gives us only parsed
//! requests, never the sockets, so it cannot be told to time a client out. A
//! socket option would not do either: `SO_RCVTIMEO` is a timeout per read (a
//! client dribbling one byte a second never trips it), and set on the listener
//! it also makes `accept()` fail, which ends tiny_http's accept loop.
//!
//! So a watchdog thread looks at the process's own sockets instead. Every tick
//! it lists `/proc/self/fd`; a socket it has not seen before is identified once
//! (a duplicate of the descriptor, checked by inode, then `getsockname` and
//! `getpeername`): if its local port is our listening port and it has a peer, it
//! is an inbound connection, known by its peer address, which is also what
//! tiny_http's `Request::remote_addr` reports. Each such connection has a
//! deadline: `CLIENT_TIMEOUT` from when it was first seen or its last response
//! was sent, paused while a request whose body has been read is being handled.
//! A connection past its deadline is shut down through a duplicate descriptor
//! verified by inode, so a number that was closed and reused meanwhile is never
//! touched; tiny_http's blocked read then returns and the connection ends.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rustix::net::Shutdown as How;

use crate::logger::Logger;

/// What a connection is doing, and since when.
#[derive(Debug, Clone, Copy)]
enum ConnPhase {
    /// Expected to deliver a whole request by `since + timeout`.
    Waiting(Instant),
    /// A request was received whole and is being handled: no deadline.
    Busy(Instant),
    /// Already shut down by us.
    Closed(Instant),
}

impl ConnPhase {
    fn changed_at(self) -> Instant {
        match self {
            ConnPhase::Waiting(t) | ConnPhase::Busy(t) | ConnPhase::Closed(t) => t,
        }
    }
}

/// A socket found in `/proc/self/fd`.
#[derive(Debug, Clone, Copy)]
struct Socket {
    fd: RawFd,
    /// The peer, when the socket is an inbound connection to our port.
    peer: Option<SocketAddr>,
}

#[derive(Debug, Default)]
struct State {
    sockets: HashMap<u64, Socket>,
    phases: HashMap<SocketAddr, ConnPhase>,
    stopped: bool,
}

/// The watchdog for one listening port.
#[derive(Debug)]
pub struct ConnWatch {
    port: u16,
    timeout: Duration,
    logger: Arc<Logger>,
    state: Mutex<State>,
    wake: Condvar,
}

impl ConnWatch {
    /// Starts watching connections to `port`, closing them `timeout` after their deadline began.
    pub fn start(
        port: u16,
        timeout: Duration,
        logger: Arc<Logger>,
    ) -> std::io::Result<Arc<ConnWatch>> {
        let watch = Arc::new(ConnWatch {
            port,
            timeout,
            logger,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let tick = (timeout / 10).clamp(Duration::from_millis(20), Duration::from_secs(1));
        let watcher = Arc::clone(&watch);
        thread::Builder::new()
            .name("conn-watch".into())
            .spawn(move || loop {
                {
                    let state = watcher.lock();
                    let (state, _) = watcher
                        .wake
                        .wait_timeout_while(state, tick, |s| !s.stopped)
                        .unwrap_or_else(|p| p.into_inner());
                    if state.stopped {
                        return;
                    }
                }
                watcher.scan(Instant::now());
            })?;
        Ok(watch)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The request from `peer` has been read whole: its deadline is paused.
    pub fn request_received(&self, peer: SocketAddr) {
        self.set_phase(peer, ConnPhase::Busy(Instant::now()));
    }

    /// The response to `peer` was sent: the next request's deadline starts now.
    pub fn response_sent(&self, peer: SocketAddr) {
        self.set_phase(peer, ConnPhase::Waiting(Instant::now()));
    }

    fn set_phase(&self, peer: SocketAddr, phase: ConnPhase) {
        let mut state = self.lock();
        if !matches!(state.phases.get(&peer), Some(ConnPhase::Closed(_))) {
            state.phases.insert(peer, phase);
        }
    }

    /// Shuts down the receiving side of `peer`'s connection, so an unread body
    /// is not waited for; the response can still be written.
    pub fn stop_reading(&self, peer: SocketAddr) {
        self.shutdown_peer(peer, How::Read);
    }

    /// Shuts down `peer`'s connection in both directions.
    pub fn close(&self, peer: SocketAddr) {
        self.shutdown_peer(peer, How::Both);
        let mut state = self.lock();
        state.phases.insert(peer, ConnPhase::Closed(Instant::now()));
    }

    fn shutdown_peer(&self, peer: SocketAddr, how: How) {
        let found = self.find(peer).or_else(|| {
            // Accepted since the last tick: look now.
            self.scan(Instant::now());
            self.find(peer)
        });
        if let Some((inode, fd)) = found {
            shutdown_socket(fd, inode, how);
        }
    }

    fn find(&self, peer: SocketAddr) -> Option<(u64, RawFd)> {
        let state = self.lock();
        state
            .sockets
            .iter()
            .find(|(_, s)| s.peer == Some(peer))
            .map(|(inode, s)| (*inode, s.fd))
    }

    /// Shuts down every connection that is not handling a request (used when stopping).
    pub fn close_idle(&self) -> usize {
        let now = Instant::now();
        self.scan(now);
        let mut state = self.lock();
        close_where(&mut state, now, |phase| {
            matches!(phase, Some(ConnPhase::Waiting(_)) | None)
        })
    }

    /// Ends the watchdog thread.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.wake.notify_all();
    }

    /// One pass: learn new sockets, forget gone ones, close the overdue; returns how many closed.
    fn scan(&self, now: Instant) -> usize {
        let listing = list_sockets();
        let mut state = self.lock();
        let live: HashSet<u64> = listing.iter().map(|(_, inode)| *inode).collect();
        state.sockets.retain(|inode, _| live.contains(inode));
        for (fd, inode) in listing {
            if state.sockets.contains_key(&inode) {
                continue;
            }
            let peer = identify(fd, inode, self.port);
            state.sockets.insert(inode, Socket { fd, peer });
            if let Some(peer) = peer {
                state.phases.entry(peer).or_insert(ConnPhase::Waiting(now));
            }
        }
        // Phases of connections that are gone; keep any set since this scan began.
        let peers: HashSet<SocketAddr> = state.sockets.values().filter_map(|s| s.peer).collect();
        state
            .phases
            .retain(|peer, phase| peers.contains(peer) || phase.changed_at() >= now);

        let timeout = self.timeout;
        let closed = close_where(
            &mut state,
            now,
            |phase| matches!(phase, Some(ConnPhase::Waiting(since)) if now.saturating_duration_since(since) >= timeout),
        );
        drop(state);
        if closed > 0 {
            self.logger.event(
                "closed_overdue",
                &format!(
                "closed {closed} connection(s) that sent no complete request within CLIENT_TIMEOUT={}ms",
                self.timeout.as_millis()
            ));
        }
        closed
    }
}

/// Shuts down every inbound connection whose phase (`None`: not seen yet) satisfies
/// `select`, marks it closed, and returns how many.
fn close_where(
    state: &mut State,
    now: Instant,
    select: impl Fn(Option<ConnPhase>) -> bool,
) -> usize {
    let chosen: Vec<(u64, RawFd, SocketAddr)> = state
        .sockets
        .iter()
        .filter_map(|(inode, s)| s.peer.map(|peer| (*inode, s.fd, peer)))
        .filter(|(_, _, peer)| select(state.phases.get(peer).copied()))
        .collect();
    for (inode, fd, peer) in &chosen {
        shutdown_socket(*fd, *inode, How::Both);
        state.phases.insert(*peer, ConnPhase::Closed(now));
    }
    chosen.len()
}

/// The sockets this process holds: (descriptor, inode).
fn list_sockets() -> Vec<(RawFd, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let fd: RawFd = entry.file_name().to_str()?.parse().ok()?;
        let target = std::fs::read_link(entry.path()).ok()?;
        let inode = target
            .to_str()?
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        Some((fd, inode))
    })
    .collect()
}

/// The peer of socket `fd`/`inode` if it is a connection accepted on `port`.
fn identify(fd: RawFd, inode: u64, port: u16) -> Option<SocketAddr> {
    let socket = duplicate(fd, inode)?;
    let local = SocketAddr::try_from(rustix::net::getsockname(&socket).ok()?).ok()?;
    if local.port() != port {
        return None;
    }
    let peer = rustix::net::getpeername(&socket).ok()??;
    SocketAddr::try_from(peer).ok()
}

fn shutdown_socket(fd: RawFd, inode: u64, how: How) {
    if let Some(socket) = duplicate(fd, inode) {
        // ENOTCONN means the peer is already gone: nothing left to do.
        let _ = rustix::net::shutdown(&socket, how);
    }
}

/// A duplicate of descriptor `fd`, if it still refers to socket `inode`.
#[allow(unsafe_code)]
fn duplicate(fd: RawFd, inode: u64) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: the number comes from /proc/self/fd and is only passed to
    // fcntl(F_DUPFD_CLOEXEC), never read, written or closed through. Should
    // tiny_http close it meanwhile, the call fails with EBADF; should the number
    // be reused, the duplicate refers to the new file, and the inode check
    // below rejects it. Everything afterwards acts on the duplicate we own.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let dup = rustix::io::fcntl_dupfd_cloexec(borrowed, 0).ok()?;
    let stat = rustix::fs::fstat(&dup).ok()?;
    (stat.st_ino == inode).then_some(dup)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn logger() -> Arc<Logger> {
        Arc::new(
            Logger::new(
                crate::Role::Sink,
                None,
                "127.0.0.1".parse().unwrap(),
                crate::logger::LogFormat::Text,
            )
            .unwrap(),
        )
    }

    #[test]
    fn finds_accepted_connections_by_peer_and_ignores_the_rest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let watch = ConnWatch::start(port, Duration::from_secs(60), logger()).unwrap();
        watch.scan(Instant::now());
        let state = watch.lock();
        let peers: Vec<SocketAddr> = state.sockets.values().filter_map(|s| s.peer).collect();
        assert_eq!(
            peers,
            vec![peer],
            "only the accepted side is ours: not the listener, not the client"
        );
        drop(state);
        watch.stop();
    }

    #[test]
    fn overdue_connection_is_shut_down_and_busy_one_is_not() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut idle = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut idle_server, idle_peer) = listener.accept().unwrap();
        let mut busy = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_busy_server, busy_peer) = listener.accept().unwrap();
        let timeout = Duration::from_secs(5);
        let watch = ConnWatch::start(port, timeout, logger()).unwrap();
        let t0 = Instant::now();
        watch.scan(t0);
        watch.request_received(busy_peer);
        assert_eq!(watch.scan(t0 + timeout / 2), 0, "not yet due");
        assert_eq!(
            watch.scan(t0 + timeout * 2),
            1,
            "only the waiting one is due"
        );
        // The server side reads EOF, the client sees the connection end.
        let mut buf = [0u8; 1];
        assert_eq!(idle_server.read(&mut buf).unwrap(), 0);
        assert_eq!(idle.read(&mut buf).unwrap(), 0);
        busy.write_all(b"x").unwrap();
        assert!(matches!(
            watch.lock().phases.get(&idle_peer),
            Some(ConnPhase::Closed(_))
        ));
        assert!(matches!(
            watch.lock().phases.get(&busy_peer),
            Some(ConnPhase::Busy(_))
        ));
        watch.stop();
    }

    #[test]
    fn gone_connections_are_forgotten() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server_side, peer) = listener.accept().unwrap();
        let watch = ConnWatch::start(port, Duration::from_secs(60), logger()).unwrap();
        watch.scan(Instant::now());
        watch.response_sent(peer);
        drop(server_side);
        drop(client);
        watch.scan(Instant::now() + Duration::from_millis(1));
        let state = watch.lock();
        assert!(state.phases.is_empty(), "{:?}", state.phases);
        assert!(state.sockets.values().all(|s| s.peer.is_none()));
        drop(state);
        watch.stop();
    }

    #[test]
    fn duplicate_rejects_a_number_that_now_names_another_file() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        use std::os::fd::AsRawFd;
        let fd = listener.as_raw_fd();
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        assert!(duplicate(fd, inode).is_some());
        assert!(duplicate(fd, inode + 1).is_none());
    }
}
