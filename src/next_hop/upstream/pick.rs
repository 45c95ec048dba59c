//! Where a post starts: a pod of the next tier at random, as kube-proxy picks one, and not one whose last attempt just failed.
//!
//! On one host a list of URLs stands in for a Service, and a name may
//! resolve to several addresses (a headless Service). Each post starts at a
//! random URL and, within it, a random address (kube-proxy's iptables and
//! nftables modes pick a backend at random per new connection), so that no
//! sender is tied to a subset of pods by the timing of its messages; after
//! a failure it goes on in turn. An address whose last attempt failed (no
//! connection, a timeout, a broken exchange, a 503) is tried after the
//! others for [`HOLD`], so a sick pod is not hit first again by every retry;
//! when every one has failed, they are all tried anyway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an address that failed is tried last.
pub const HOLD: Duration = Duration::from_secs(2);

/// The addresses whose last attempt failed, and when.
#[derive(Debug, Default)]
pub struct Recent {
    /// Whether `failed` holds anything: the common case takes no lock.
    any: AtomicBool,
    failed: Mutex<Vec<(SocketAddr, Instant)>>,
}

impl Recent {
    fn lock(&self) -> MutexGuard<'_, Vec<(SocketAddr, Instant)>> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An attempt at `addr` failed now.
    pub fn failed(&self, addr: SocketAddr) {
        let now = Instant::now();
        let mut failed = self.lock();
        failed.retain(|(a, at)| *a != addr && now.duration_since(*at) < HOLD);
        failed.push((addr, now));
        self.any.store(true, Ordering::Relaxed);
    }

    /// An attempt at `addr` was answered: it is no longer held back.
    pub fn answered(&self, addr: SocketAddr) {
        if !self.any.load(Ordering::Relaxed) {
            return;
        }
        let mut failed = self.lock();
        failed.retain(|(a, _)| *a != addr);
        self.any.store(!failed.is_empty(), Ordering::Relaxed);
    }

    /// Whether any address is held back now (without a lock).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Relaxed)
    }

    /// Whether `addr` failed within [`HOLD`].
    pub fn is_held(&self, addr: SocketAddr) -> bool {
        if !self.any.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        self.lock()
            .iter()
            .any(|(a, at)| *a == addr && now.duration_since(*at) < HOLD)
    }
}

/// The order in which to try `n` choices: in turn from a random one, those
/// `held` says are held back after the others (`held` is asked once each;
/// past 64 choices none is held back). Allocates nothing.
pub fn order(n: usize, held: impl Fn(usize) -> bool) -> impl Iterator<Item = usize> {
    let start = if n > 1 { crate::random::below(n) } else { 0 };
    let mut mask = 0u64;
    for i in 0..n.min(64) {
        if held(i) {
            mask |= 1 << i;
        }
    }
    let is_held = move |i: &usize| *i < 64 && mask & (1 << *i) != 0;
    let turn = move |i: usize| (start + i) % n;
    let first = (0..n).map(turn).filter(move |i| !is_held(i));
    first.chain((0..n).map(turn).filter(is_held))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn every_choice_once_from_a_random_start_the_held_ones_last() {
        let mut starts = [0usize; 3];
        for _ in 0..300 {
            let all: Vec<usize> = order(3, |_| false).collect();
            starts[all[0]] += 1;
            let mut sorted = all.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![0, 1, 2]);
            assert_eq!(
                (all[1], all[2]),
                ((all[0] + 1) % 3, (all[0] + 2) % 3),
                "in turn"
            );
        }
        // Each start a third of the time: under 50 of 300 has a chance below 1e-9.
        assert!(starts.iter().all(|n| *n > 50), "{starts:?}");
        let held: Vec<usize> = order(3, |i| i == 1).collect();
        assert_eq!(held[2], 1, "{held:?}");
        assert_eq!(order(1, |_| true).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_failed_address_is_held_until_answered_or_for_hold() {
        let recent = Recent::default();
        let (a, b): (SocketAddr, SocketAddr) = (
            "10.0.2.1:80".parse().unwrap(),
            "10.0.2.2:80".parse().unwrap(),
        );
        assert!(!recent.is_held(a));
        recent.failed(a);
        assert!(recent.is_held(a) && !recent.is_held(b));
        recent.answered(a);
        assert!(!recent.is_held(a));
    }
}
