//! One accepted connection's socket, input buffer and read deadline (three-tier patch).
//!
//! Upstream tiny_http read with no timeout at all, so one silent client held a
//! thread and a descriptor for ever. Here every read has a deadline: the
//! connection layer sets one per request (`CLIENT_TIMEOUT` from the moment the
//! connection starts waiting for the request, covering its line, headers and
//! body) and this module has [`crate::deadline`] keep `SO_RCVTIMEO` to it.
//! Writing one response has a limit of its own (`CLIENT_TIMEOUT` too), from
//! its first `write` to its last, kept with `SO_SNDTIMEO` the same way, so a
//! client that never reads cannot hold a thread in `write`. One descriptor per connection:
//! the stream is shared through an `Arc` with the connection registry, which
//! shuts it down to evict or close it.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::deadline::{is_timeout, Direction, Timeouts};
use crate::scan;

/// How far past its deadline a read or write may block.
const SLACK: Duration = Duration::from_millis(50);
/// Input buffer size at the start and after a request with a large head.
const INITIAL_BUFFER: usize = 2 * 1024;
/// Largest input buffer: one request or header line of the maximum size with room around it.
pub(crate) const MAX_BUFFER: usize = 16 * 1024 + 256;

/// The socket of one connection, with its read deadline.
pub(crate) struct Socket {
    pub stream: Arc<TcpStream>,
    /// What `SO_RCVTIMEO` and `SO_SNDTIMEO` hold.
    timeouts: Timeouts,
    /// How long writing one response may take.
    write_limit: Duration,
    deadline: Instant,
    /// Set once a read found the deadline passed, or a write its limit.
    pub timed_out: bool,
    /// Set once a write failed: the connection is of no further use.
    pub write_failed: bool,
}

impl Socket {
    /// Wraps an accepted stream whose `SO_SNDTIMEO` is already `write_limit`.
    pub fn new(stream: Arc<TcpStream>, deadline: Instant, write_limit: Duration) -> Socket {
        Socket {
            stream,
            timeouts: Timeouts::unknown(SLACK).with_write(write_limit),
            write_limit,
            deadline,
            timed_out: false,
            write_failed: false,
        }
    }

    /// Every read from now on must end by `deadline`.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = deadline;
    }

    /// Reads into `buf`, failing with `TimedOut` once the deadline has passed.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.arm(self.deadline, Direction::Read)?;
            match (&*self.stream).read(buf) {
                // The option fired before the deadline: set it anew and go on.
                Err(e) if is_timeout(&e) => self.timeouts.fired(Direction::Read),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Has the next call in `direction` end by `deadline`; `TimedOut`, and
    /// the connection marked timed out, once it has passed.
    fn arm(&mut self, deadline: Instant, direction: Direction) -> io::Result<()> {
        let armed = self.timeouts.arm(&self.stream, deadline, direction);
        if armed
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            self.timed_out = true;
        }
        armed
    }

    /// Writes all of `bytes` within the write limit, however many `write`
    /// calls it takes (each is bounded by `SO_SNDTIMEO`, so partial writes
    /// shorten it to what is left).
    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let result = self.write_until(bytes, Instant::now() + self.write_limit);
        self.write_failed |= result.is_err();
        result
    }

    fn write_until(&mut self, mut bytes: &[u8], deadline: Instant) -> io::Result<()> {
        while !bytes.is_empty() {
            self.arm(deadline, Direction::Write)?;
            match (&*self.stream).write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if is_timeout(&e) => self.timeouts.fired(Direction::Write),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Bytes read from the socket and not yet parsed.
pub(crate) struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// Why no line could be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// More than the limit without a line feed.
    TooLong,
    /// The bytes so far cannot start the line expected.
    Invalid,
    /// The peer closed before a whole line arrived.
    Eof,
    Io(io::Error),
}

impl Input {
    pub fn new() -> Input {
        Input {
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
        }
    }

    /// The buffered bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Returns to the small buffer if a large head grew it and nothing is buffered.
    pub fn shrink(&mut self) {
        if self.is_empty() && self.buf.len() > INITIAL_BUFFER {
            self.buf = vec![0; INITIAL_BUFFER];
        }
    }

    /// Reads more from `socket` into free space (moving or growing the buffer
    /// up to [`MAX_BUFFER`]); returns how many bytes came, 0 at end of stream.
    pub fn fill(&mut self, socket: &mut Socket) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < MAX_BUFFER {
                let size = (self.buf.len() * 2).min(MAX_BUFFER);
                self.buf.resize(size, 0);
            } else {
                return Err(io::Error::other("input buffer full"));
            }
        }
        let n = socket.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Waits until the buffered data starts with a whole line and returns its
    /// length up to and including the LF. A line of more than `max` bytes
    /// before its CRLF is [`LineError::TooLong`].
    pub fn line(&mut self, socket: &mut Socket, max: usize) -> Result<usize, LineError> {
        self.line_checked(socket, max, |_| true)
    }

    /// [`Input::line`], failing with [`LineError::Invalid`] as soon as the
    /// bytes received so far, with no line feed yet, fail `start_ok`.
    pub fn line_checked(
        &mut self,
        socket: &mut Socket,
        max: usize,
        start_ok: impl Fn(&[u8]) -> bool,
    ) -> Result<usize, LineError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = scan::find(&self.data()[scanned..], b'\n') {
                // The line's bytes before its LF: at most `max` and a CR.
                if scanned + i > max + 1 {
                    return Err(LineError::TooLong);
                }
                return Ok(scanned + i + 1);
            }
            scanned = self.data().len();
            if scanned > max + 1 {
                return Err(LineError::TooLong);
            }
            if !start_ok(self.data()) {
                return Err(LineError::Invalid);
            }
            match self.fill(socket) {
                Ok(0) => return Err(LineError::Eof),
                Ok(_) => {}
                Err(e) => return Err(LineError::Io(e)),
            }
        }
    }

    /// Copies up to `buf.len()` buffered bytes into `buf`; returns how many.
    pub fn take_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        n
    }
}
