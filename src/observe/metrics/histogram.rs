//! A latency histogram with fixed buckets and an exemplar per bucket, recorded without a lock on the message path.
//!
//! Counts and the sum are atomics; each bucket's exemplar (the trace id of
//! the latest call that fell in it, and when) sits behind a lock that an
//! observation skips when another holds it, so no message ever waits for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::observe::trace::TraceIdText;

/// Upper bounds of the latency histogram buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The latest call that fell in a bucket, for its exemplar.
#[derive(Debug, Clone, Copy)]
pub struct Exemplar {
    pub trace_id: TraceIdText,
    pub seconds: f64,
    /// Unix time, seconds.
    pub at: f64,
}

/// A latency histogram with fixed buckets, and an exemplar per bucket.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
    /// One per bucket and one for +Inf; a busy slot is skipped, never waited for.
    exemplars: [Mutex<Option<Exemplar>>; BUCKETS.len() + 1],
}

impl Histogram {
    pub fn observe(&self, d: Duration, trace_id: &str) {
        let seconds = d.as_secs_f64();
        let bucket = BUCKETS.iter().position(|b| seconds <= *b);
        if let Some(i) = bucket {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        let (Ok(mut slot), Ok(id)) = (
            self.exemplars[bucket.unwrap_or(BUCKETS.len())].try_lock(),
            <TraceIdText>::try_from(trace_id.as_bytes()),
        ) else {
            return;
        };
        let at = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |t| t.as_secs_f64());
        *slot = Some(Exemplar {
            trace_id: id,
            seconds,
            at,
        });
    }

    /// Each bucket as an exposition writes it: its bound (`+Inf` last), the
    /// calls at or below it, and its exemplar.
    pub fn cumulative(&self) -> Vec<(String, u64, Option<Exemplar>)> {
        let mut cumulative = 0;
        let bounds = BUCKETS
            .iter()
            .map(|b| b.to_string())
            .chain(["+Inf".to_string()]);
        let mut buckets = Vec::with_capacity(BUCKETS.len() + 1);
        for (i, bound) in bounds.enumerate() {
            cumulative += self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed));
            if i == BUCKETS.len() {
                cumulative = self.count();
            }
            buckets.push((bound, cumulative, self.exemplar(i)));
        }
        buckets
    }

    /// The seconds of all calls observed.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// The calls observed.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn exemplar(&self, bucket: usize) -> Option<Exemplar> {
        *self.exemplars[bucket]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}
