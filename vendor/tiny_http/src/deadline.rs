//! Socket timeouts that make each blocking read or write end by a deadline (three-tier patch).
//!
//! A blocking socket knows timeouts (`SO_RCVTIMEO`, `SO_SNDTIMEO`), not
//! deadlines. [`Timeouts`] turns one into the other: before each call it sets
//! the option to the time left, but only when the time left has dropped more
//! than a slack below what the option holds (setting it is a syscall; a busy
//! kept-alive connection sets it once), or when the option is unknown
//! because it fired early. Once the deadline has passed it says so with
//! `TimedOut` instead of calling. The server's connections use it for
//! `CLIENT_TIMEOUT`, and three-tier's client for its hop timeouts.

use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Which way a socket call goes, for its timeout option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `read`, bounded by `SO_RCVTIMEO`.
    Read,
    /// `write`, bounded by `SO_SNDTIMEO`.
    Write,
}

/// What a socket's two timeout options hold, as far as is known.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    read: Option<Duration>,
    write: Option<Duration>,
    slack: Duration,
}

impl Timeouts {
    /// Options not known yet (the next call of each direction sets its own);
    /// a call may block at most `slack` past its deadline.
    pub const fn unknown(slack: Duration) -> Timeouts {
        Timeouts {
            read: None,
            write: None,
            slack,
        }
    }

    /// Known to hold `write` for `SO_SNDTIMEO` (set at accept).
    pub const fn with_write(mut self, write: Duration) -> Timeouts {
        self.write = Some(write);
        self
    }

    /// Sets `stream`'s option for `direction` so that the next call ends by
    /// `deadline`; `TimedOut` once the deadline has passed.
    pub fn arm(
        &mut self,
        stream: &TcpStream,
        deadline: Instant,
        direction: Direction,
    ) -> io::Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let what = match direction {
                Direction::Read => "read deadline passed",
                Direction::Write => "write deadline passed",
            };
            return Err(io::Error::new(io::ErrorKind::TimedOut, what));
        }
        // A socket timeout cannot be zero (that means "no timeout").
        let left = left.max(Duration::from_millis(1));
        let slack = self.slack;
        let set = self.option(direction);
        if set.is_none_or(|set| set > left + slack) {
            match direction {
                Direction::Read => stream.set_read_timeout(Some(left))?,
                Direction::Write => stream.set_write_timeout(Some(left))?,
            }
            *self.option(direction) = Some(left);
        }
        Ok(())
    }

    /// The option for `direction` fired (it may have fired early): the next call sets it anew.
    pub fn fired(&mut self, direction: Direction) {
        *self.option(direction) = None;
    }

    fn option(&mut self, direction: Direction) -> &mut Option<Duration> {
        match direction {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }
}

/// Whether a socket call's error is its timeout option firing.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_read_ends_by_its_deadline_and_then_refuses_to_start() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut timeouts = Timeouts::unknown(Duration::from_millis(20));
        let deadline = Instant::now() + Duration::from_millis(100);
        timeouts.arm(&stream, deadline, Direction::Read).unwrap();
        let set = stream.read_timeout().unwrap().unwrap();
        assert!(
            set <= Duration::from_millis(100) && set > Duration::ZERO,
            "{set:?}"
        );
        let err = io::Read::read(&mut &stream, &mut [0; 1]).unwrap_err();
        assert!(is_timeout(&err), "{err}");
        assert!(Instant::now() >= deadline - Duration::from_millis(20));
        timeouts.fired(Direction::Read);
        while Instant::now() < deadline {
            std::thread::yield_now();
        }
        let passed = timeouts
            .arm(&stream, deadline, Direction::Read)
            .unwrap_err();
        assert_eq!(passed.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn the_option_is_set_again_only_when_it_is_too_long_by_more_than_the_slack() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut timeouts = Timeouts::unknown(Duration::from_secs(1));
        let far = Instant::now() + Duration::from_secs(30);
        timeouts.arm(&stream, far, Direction::Write).unwrap();
        let first = stream.write_timeout().unwrap().unwrap();
        timeouts
            .arm(&stream, far - Duration::from_millis(500), Direction::Write)
            .unwrap();
        assert_eq!(
            stream.write_timeout().unwrap().unwrap(),
            first,
            "within the slack: kept"
        );
        timeouts
            .arm(&stream, far - Duration::from_secs(5), Direction::Write)
            .unwrap();
        assert!(
            stream.write_timeout().unwrap().unwrap() < first,
            "beyond the slack: set anew"
        );
    }
}
