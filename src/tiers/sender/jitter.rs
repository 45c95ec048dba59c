//! The sender's chance: the spread of its intervals, the backoff of its retries, which messages carry `SEND_FAULT`.

use std::time::{Duration, SystemTime};

use super::{BACKOFF_BASE, BACKOFF_MAX};

/// Exponential backoff with "equal jitter": half fixed, half random.
pub struct Jitter(u64);

impl Jitter {
    pub fn seeded() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter(nanos ^ (u64::from(std::process::id()) << 32) | 1)
    }

    /// xorshift64: plenty for spreading retries, no dependency.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `interval`, give or take a tenth at random (mean `interval`).
    pub fn spread(&mut self, interval: Duration) -> Duration {
        let tenth = interval / 10;
        let random = Duration::from_nanos(self.next() % (2 * tenth.as_nanos() as u64 + 1));
        interval - tenth + random
    }

    /// The wait before retry `attempt` (1-based).
    /// True `per_million` times in a million.
    pub fn chance(&mut self, per_million: u32) -> bool {
        self.next() % 1_000_000 < u64::from(per_million)
    }

    pub fn backoff(&mut self, attempt: u32) -> Duration {
        let ceiling = BACKOFF_BASE
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(BACKOFF_MAX);
        let half = ceiling / 2;
        half + Duration::from_nanos(self.next() % (half.as_nanos() as u64 + 1))
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let mut j = Jitter(42);
        for attempt in 1..=12u32 {
            let ceiling = BACKOFF_BASE
                .saturating_mul(1 << (attempt - 1))
                .min(BACKOFF_MAX);
            for _ in 0..50 {
                let d = j.backoff(attempt);
                assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
            }
        }
    }

    #[test]
    fn intervals_spread_by_a_tenth_around_the_setting() {
        let mut j = Jitter(7);
        let interval = Duration::from_millis(200);
        let spread: Vec<Duration> = (0..1000).map(|_| j.spread(interval)).collect();
        assert!(spread
            .iter()
            .all(|d| *d >= Duration::from_millis(180) && *d <= Duration::from_millis(220)));
        let mean = spread.iter().sum::<Duration>() / 1000;
        assert!(
            mean > Duration::from_millis(195) && mean < Duration::from_millis(205),
            "{mean:?}"
        );
        assert!(
            spread
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 100
        );
    }

    #[test]
    fn jitter_varies() {
        let mut j = Jitter::seeded();
        let waits: std::collections::HashSet<Duration> = (0..20).map(|_| j.backoff(3)).collect();
        assert!(waits.len() > 1);
    }
}
