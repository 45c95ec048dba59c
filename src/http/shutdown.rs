//! The stop sequence Kubernetes expects, driven by SIGTERM or SIGINT.
//!
//! A process is [`Phase::Running`] until the first signal. It then turns
//! [`Phase::Draining`]: `/readyz` answers 503 so endpoints drop the pod, while
//! requests are still served for `DRAIN_DELAY`. Then it is [`Phase::Stopping`]:
//! the server stops accepting and waits for requests in flight. A second signal
//! skips what is left of the drain delay. The handler is installed explicitly,
//! because a process that is PID 1 in a container gets no default action for
//! SIGTERM and would otherwise wait for SIGKILL. SIGHUP, the conventional
//! "reopen your logs" after rotation, reopens the `LOG_DIR` file and otherwise
//! changes nothing (the sender, which has none, says so and goes on).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::Error;
use crate::record::logger::Logger;

/// Where a process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Serving and ready.
    Running,
    /// Still serving, but `/readyz` answers 503.
    Draining,
    /// No longer accepting; finishing requests in flight.
    Stopping,
}

/// The shared phase, with a way to wait for it to change.
pub struct Shutdown {
    phase: Mutex<Phase>,
    changed: Condvar,
}

impl Shutdown {
    /// A new process-wide shutdown state, [`Phase::Running`].
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown {
            phase: Mutex::new(Phase::Running),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        *self.lock()
    }

    /// Moves to [`Phase::Draining`] unless already past it; returns whether it moved.
    pub fn drain(&self) -> bool {
        self.advance(Phase::Draining)
    }

    /// Moves to [`Phase::Stopping`], waking every [`Shutdown::wait_for`].
    pub fn stop(&self) {
        self.advance(Phase::Stopping);
    }

    fn advance(&self, to: Phase) -> bool {
        let mut phase = self.lock();
        if *phase >= to {
            return false;
        }
        *phase = to;
        self.changed.notify_all();
        true
    }

    /// Waits up to `timeout` while the phase is below `phase`; returns whether it got there.
    pub fn wait_for(&self, phase: Phase, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut current = self.lock();
        while *current < phase {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            current = self
                .changed
                .wait_timeout(current, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// Catches SIGTERM, SIGINT and SIGHUP from now on: one that arrives before
/// [`handle_signals`] runs waits for it, so none is lost while a tier starts.
pub fn catch_signals() -> Result<Signals, Error> {
    Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::io("installing the SIGTERM, SIGINT and SIGHUP handler", e))
}

/// Handles the `signals` caught, on a thread of their own: the first SIGTERM
/// or SIGINT drains for `drain_delay`, then stops; SIGHUP reopens the log file.
pub fn handle_signals(
    mut signals: Signals,
    shutdown: Arc<Shutdown>,
    drain_delay: Duration,
    logger: Arc<Logger>,
) -> Result<(), Error> {
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if !stop_on(signal, &shutdown, drain_delay, &logger) {
                    logger.reopen();
                }
            }
        })
        .map_err(|e| Error::io("starting the signal thread", e))?;
    Ok(())
}

/// Acts on a SIGTERM or SIGINT, and says so: the first drains for
/// `drain_delay` and then stops, another stops now. `false` for any other
/// signal (SIGHUP).
fn stop_on(signal: i32, shutdown: &Arc<Shutdown>, drain_delay: Duration, logger: &Logger) -> bool {
    let name = match signal {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        _ => return false,
    };
    let timer = Arc::clone(shutdown);
    let stop_after_the_delay = move || {
        if !timer.wait_for(Phase::Stopping, drain_delay) {
            timer.stop();
        }
    };
    if shutdown.drain() {
        let text = format!(
            "received {name}: not ready, draining for {}ms, then stopping",
            drain_delay.as_millis()
        );
        logger.event("signal", &text);
        thread::spawn(stop_after_the_delay);
    } else {
        logger.event("signal", &format!("received {name} again: stopping now"));
        shutdown.stop();
    }
    true
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn phases_only_move_forward() {
        let s = Shutdown::new();
        assert_eq!(s.phase(), Phase::Running);
        assert!(s.drain());
        assert!(!s.drain());
        s.stop();
        assert!(!s.drain());
        assert_eq!(s.phase(), Phase::Stopping);
    }

    #[test]
    fn wait_for_returns_when_another_thread_stops() {
        let s = Shutdown::new();
        let t = {
            let s = Arc::clone(&s);
            thread::spawn(move || s.wait_for(Phase::Stopping, Duration::from_secs(30)))
        };
        s.stop();
        assert!(t.join().unwrap());
        let fresh = Shutdown::new();
        assert!(!fresh.wait_for(Phase::Draining, Duration::from_millis(1)));
    }
}
