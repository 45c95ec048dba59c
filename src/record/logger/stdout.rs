//! Standard output, written so that it never holds a message: whole lines, without std's lock, dropped and counted when nothing reads them.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Lines up to this long go out in one `write(2)` that no other write can
/// split: POSIX makes pipe writes of at most `PIPE_BUF` bytes atomic.
const PIPE_BUF: usize = 4096;
/// How long a line waits for room on stdout before it is dropped.
const STDOUT_WAIT: Duration = Duration::from_millis(20);

/// Standard output, written so that it never holds a message.
///
/// The lines are written without std's stdout lock, which every connection
/// thread would otherwise queue on: a line that fits `PIPE_BUF` is one atomic
/// write, and only a longer line, which the kernel may split, excludes the
/// others while it is written. Where stdout can be opened again as a
/// description of our own (`/proc/self/fd/1`: a pipe or a terminal, not a
/// socket), that one is non-blocking, so a full pipe, which nothing drains,
/// costs a line at most [`STDOUT_WAIT`] before it is dropped and counted;
/// once a line was dropped, the next ones do not wait, until one gets
/// through. Setting `O_NONBLOCK` on fd 1 itself would change it for every
/// process that shares it (the shell, the container runtime).
#[derive(Debug)]
pub struct Stdout {
    /// Our own non-blocking description of stdout, if one could be opened.
    own: Option<File>,
    /// A line was dropped and none got through since.
    stalled: AtomicBool,
    /// The last write failed with an error of its own (a reader gone, a full
    /// device), not for want of room: only a line that goes through clears it.
    broken: AtomicBool,
    pub dropped: AtomicU64,
}

impl Stdout {
    pub fn open() -> Stdout {
        use std::os::unix::fs::OpenOptionsExt;
        let own = std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open("/proc/self/fd/1")
            .ok();
        Stdout {
            own,
            stalled: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match &self.own {
            Some(file) => file.as_fd(),
            None => rustix::stdio::stdout(),
        }
    }

    /// Whether a line would go out now (for a record that is stdout): there
    /// is room, and the last write did not fail with an error of its own (a
    /// pipe whose reader is gone, `/dev/full`), which no poll can see.
    pub fn writable(&self) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        if self.broken.load(Ordering::Relaxed) {
            return false;
        }
        let fd = self.fd();
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        let ready = matches!(
            poll(&mut fds, Some(&rustix::event::Timespec::default())),
            Ok(1)
        );
        let revents = fds[0].revents();
        ready && revents.contains(PollFlags::OUT) && !revents.intersects(PollFlags::ERR)
    }

    /// Writes one whole line, or drops it (counted) when stdout has had no
    /// room for [`STDOUT_WAIT`]; `Err` when it was not written.
    pub fn write(&self, line: &[u8]) -> io::Result<()> {
        static LONG_LINE: RwLock<()> = RwLock::new(());
        // Held until the line is written; which one depends on the length.
        let (_shared, _exclusive);
        if line.len() <= PIPE_BUF {
            _shared = LONG_LINE.read().unwrap_or_else(|p| p.into_inner());
        } else {
            _exclusive = LONG_LINE.write().unwrap_or_else(|p| p.into_inner());
        }
        let fd = self.fd();
        let give_up = Instant::now() + STDOUT_WAIT;
        let mut rest = line;
        while !rest.is_empty() {
            match rustix::io::write(fd, rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) if self.wait(fd, give_up) => {}
                Err(rustix::io::Errno::AGAIN) => {
                    return Err(self.drop_line(line.len() - rest.len()))
                }
                Err(e) => {
                    self.broken.store(true, Ordering::Relaxed);
                    return Err(e.into());
                }
            }
        }
        self.stalled.store(false, Ordering::Relaxed);
        self.broken.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Waits until `fd` takes more or `give_up`; `false` at once while stalled.
    fn wait(&self, fd: BorrowedFd<'_>, give_up: Instant) -> bool {
        use rustix::event::{poll, PollFd, PollFlags};
        if self.stalled.load(Ordering::Relaxed) {
            return false;
        }
        let left = give_up.saturating_duration_since(Instant::now());
        let Ok(left) = rustix::event::Timespec::try_from(left) else {
            return false;
        };
        if left == rustix::event::Timespec::default() {
            return false;
        }
        let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
        matches!(poll(&mut fds, Some(&left)), Ok(1))
    }

    /// Counts a dropped line; one cut off after `written` bytes is ended, so
    /// that the next line starts on a line of its own.
    fn drop_line(&self, written: usize) -> io::Error {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.stalled.store(true, Ordering::Relaxed);
        if written > 0 {
            let _ = rustix::io::write(self.fd(), b"\n");
        }
        io::Error::new(
            io::ErrorKind::WouldBlock,
            "stdout takes no more (nothing reads it): line dropped",
        )
    }
}
