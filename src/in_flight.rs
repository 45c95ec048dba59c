//! Counts requests being handled, caps them, and waits for them to finish.
//!
//! The design card's model is one thread per request; `MAX_IN_FLIGHT` bounds how
//! many such threads exist. Past the cap a request is refused at once (503)
//! rather than queued, so nothing grows without bound.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The counter shared by the server loop and its request threads.
#[derive(Debug)]
pub struct InFlight {
    max: usize,
    count: Mutex<usize>,
    idle: Condvar,
}

/// One admitted request; dropping it (however the thread ends) frees its slot.
#[derive(Debug)]
pub struct Slot(Arc<InFlight>);

impl InFlight {
    /// A counter admitting at most `max` requests at once.
    pub fn new(max: usize) -> Arc<InFlight> {
        Arc::new(InFlight {
            max,
            count: Mutex::new(0),
            idle: Condvar::new(),
        })
    }

    /// Admits a request if fewer than `max` are in flight.
    pub fn try_admit(self: &Arc<Self>) -> Option<Slot> {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot(Arc::clone(self)))
    }

    /// How many requests are in flight now.
    pub fn current(&self) -> usize {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits up to `timeout` for the count to reach zero; returns what is left.
    pub fn wait_idle(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            count = self
                .idle
                .wait_timeout(count, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *count
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|p| p.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.idle.notify_all();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn admits_up_to_max_and_frees_on_drop() {
        let f = InFlight::new(2);
        let a = f.try_admit().unwrap();
        let _b = f.try_admit().unwrap();
        assert!(f.try_admit().is_none());
        drop(a);
        assert_eq!(f.current(), 1);
        assert!(f.try_admit().is_some());
    }

    #[test]
    fn wait_idle_returns_when_the_last_slot_goes() {
        let f = InFlight::new(4);
        let slot = f.try_admit().unwrap();
        let t = std::thread::spawn(move || drop(slot));
        assert_eq!(f.wait_idle(Duration::from_secs(30)), 0);
        t.join().unwrap();
        let _held = f.try_admit().unwrap();
        assert_eq!(f.wait_idle(Duration::from_millis(1)), 1);
    }
}
