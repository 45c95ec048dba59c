//! The connections to the next tier: made under the exchange's deadline, reused a bounded number of times, reset when given up.
//!
//! A [`Conn`] carries at most `UPSTREAM_MAX_REQUESTS` requests and is not
//! reused once `UPSTREAM_MAX_AGE` old: behind a Kubernetes Service each new
//! connection may reach another pod, so bounded reuse keeps spreading
//! messages while saving most handshakes. A pooled connection idle for
//! [`PEEK_AFTER`] or longer is taken only if one non-blocking peek finds it
//! open and silent; one idle less long is taken as it is (a server that
//! closed it meanwhile fails the request before any reply, and the client
//! sends it once more on a new connection). Its socket timeouts
//! come from the exchange's deadline, kept by the vendored server's
//! `tiny_http::deadline`; the thread's buffers are 16 KiB (see [`super::proto`]). A
//! connection whose exchange was given up at its deadline is reset
//! (`SO_LINGER` 0): the server takes a reset as "the client has gone" and
//! does not carry the message out.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tiny_http::deadline::{is_timeout, Direction, Timeouts};

/// How far past its deadline a read or write may block.
const SLACK: Duration = Duration::from_millis(20);

/// A connection idle this long is peeked at before it is taken: servers
/// close idle connections after seconds (or when they stop), so one idle
/// less long is rarely closed, and the retry covers it when it is. Under
/// load, where a syscall a message counts, connections are idle for less.
pub const PEEK_AFTER: Duration = Duration::from_secs(1);

/// A connection to one address of the next tier.
pub struct Conn {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    /// Requests it has carried, the one under way included.
    pub uses: u32,
    opened: Instant,
    /// When it was last put back in the pool.
    idle_since: Instant,
    timeouts: Timeouts,
}

impl Conn {
    /// A new connection to `addr`, made by `deadline`; a connect that runs
    /// out of time fails with `TimedOut`.
    pub fn connect(addr: SocketAddr, deadline: Instant) -> io::Result<Conn> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let stream = TcpStream::connect_timeout(&addr, left)?;
        stream.set_nodelay(true)?;
        let now = Instant::now();
        Ok(Conn {
            stream,
            addr,
            uses: 0,
            opened: now,
            idle_since: now,
            timeouts: Timeouts::unknown(SLACK),
        })
    }

    /// Has the next call in `direction` end by `deadline`; `TimedOut` once it has passed.
    pub fn arm(&mut self, deadline: Instant, direction: Direction) -> io::Result<()> {
        self.timeouts.arm(&self.stream, deadline, direction)
    }

    /// A read or write timed out: the socket option may have fired early.
    pub fn fired(&mut self, direction: Direction) {
        self.timeouts.fired(direction);
    }

    /// Writes all of `bytes` by `deadline` (`TimedOut` once it has passed).
    pub fn write_all_by(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            self.arm(deadline, Direction::Write)?;
            match (&self.stream).write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) => self.fired(Direction::Write),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads into `buf` by `deadline` (`TimedOut` once it has passed); 0 at the end of the stream.
    pub fn read_by(&mut self, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
        loop {
            self.arm(deadline, Direction::Read)?;
            match (&self.stream).read(buf) {
                Err(e) if is_timeout(&e) => self.fired(Direction::Read),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Resets the connection: its exchange was given up (see the module doc).
    pub fn reset(self) {
        let _ = rustix::net::sockopt::set_socket_linger(&self.stream, Some(Duration::ZERO));
    }

    /// Closes the connection, both ways.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Idle connections, most recently used last.
pub struct Pool {
    idle: Mutex<Vec<Conn>>,
    pub max_requests: u32,
    max_age: Duration,
    max_pooled: usize,
}

impl Pool {
    pub fn new(max_requests: u32, max_age: Duration, max_pooled: usize) -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_requests,
            max_age,
            max_pooled,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most recently used idle connection to `addr` that is young enough
    /// and, if it has been idle for [`PEEK_AFTER`], still open.
    pub fn take(&self, addr: SocketAddr) -> Option<Conn> {
        let now = Instant::now();
        loop {
            let conn = {
                let mut pool = self.lock();
                pool.retain(|c| now.duration_since(c.opened) < self.max_age);
                let i = pool.iter().rposition(|c| c.addr == addr)?;
                pool.remove(i)
            };
            if now.duration_since(conn.idle_since) < PEEK_AFTER || is_alive(&conn.stream) {
                return Some(conn);
            }
        }
    }

    /// Whether the request a connection now carries is its last (it says `Connection: close`).
    pub fn is_last(&self, conn: &Conn) -> bool {
        conn.uses >= self.max_requests
    }

    /// Keeps `conn` for the next request if it may carry one; else closes it.
    pub fn put(&self, mut conn: Conn) {
        if conn.uses >= self.max_requests
            || conn.opened.elapsed() >= self.max_age
            || self.max_pooled == 0
        {
            return conn.close();
        }
        conn.idle_since = Instant::now();
        let mut pool = self.lock();
        if pool.len() >= self.max_pooled {
            pool.remove(0).close();
        }
        pool.push(conn);
    }
}

/// An idle connection is usable if the server has neither closed it nor sent
/// anything unasked: one non-blocking peek, which would block.
fn is_alive(stream: &TcpStream) -> bool {
    use rustix::net::{recv, RecvFlags};
    let mut byte = [0u8; 1];
    matches!(
        recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT),
        Err(rustix::io::Errno::AGAIN)
    )
}
