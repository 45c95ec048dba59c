//! Counts requests being handled and caps them.
//!
//! A message takes a slot once its body has been read, and keeps it until its
//! response is written; `MAX_IN_FLIGHT` bounds how many are handled at once.
//! Past the cap a request is refused at once (503) rather than queued, so
//! nothing grows without bound. The count is an atomic: taking and returning a
//! slot is one atomic operation each. (A stop waits for connections, which
//! every message in flight has, not for this count: see
//! [`crate::http::server::Server::run`].)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The counter shared by every connection thread.
#[derive(Debug)]
pub struct InFlight {
    max: usize,
    count: AtomicUsize,
}

/// One admitted request; dropping it (however the request ends) frees its slot.
#[derive(Debug)]
pub struct Permit(Arc<InFlight>);

impl InFlight {
    /// A counter admitting at most `max` requests at once.
    pub fn new(max: usize) -> Arc<InFlight> {
        Arc::new(InFlight {
            max,
            count: AtomicUsize::new(0),
        })
    }

    /// Admits a request if fewer than `max` are in flight.
    pub fn try_admit(self: &Arc<Self>) -> Option<Permit> {
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(Arc::clone(self)))
    }

    /// The most admitted at once.
    pub fn max(&self) -> usize {
        self.max
    }

    /// How many requests are in flight now.
    pub fn current(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::SeqCst);
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
}
