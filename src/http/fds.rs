//! The descriptor budget: how many inbound connections and pooled outbound ones `RLIMIT_NOFILE` allows.
//!
//! Every inbound connection is a descriptor; in a tier that forwards (the
//! sender, the relay) a message being handled may hold a second one, to the
//! next tier, and idle connections to it wait in a pool. A few more are the
//! process's own (the listener, stdio, the log file, the signal pipe, spares).
//! The soft limit is first raised to the hard one (as Go programs do), since
//! a soft limit of 1024 is a shell default, not a decision. Then the pool
//! gets at most a quarter of what is left (at most [`MAX_POOLED`]), and
//! `MAX_CONNECTIONS` is lowered if the rest cannot hold it (with a line for
//! the tier's log), so that a small limit shrinks both sides instead of
//! leaving one connection.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors kept for all but connections: the listener, stdio, the log
/// file, the signal pipe, and room to spare.
const RESERVED: u64 = 32;
/// Most idle connections to the next tier kept, whatever the limit.
pub const MAX_POOLED: usize = 64;

/// What the descriptor limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Inbound connections open at once (`MAX_CONNECTIONS`, perhaps lowered).
    pub max_connections: usize,
    /// Idle connections to the next tier kept for reuse (0 without one).
    pub max_pooled: usize,
}

/// The budget for `configured` connections, in a tier that forwards or not,
/// and what the log should say when `MAX_CONNECTIONS` had to be lowered.
pub fn budget(configured: usize, forwards: bool) -> (Budget, Option<String>) {
    let Some(nofile) = raised_limit() else {
        let max_pooled = if forwards { MAX_POOLED } else { 0 };
        let budget = Budget {
            max_connections: configured,
            max_pooled,
        };
        return (budget, None);
    };
    let budget = split(nofile, configured, forwards);
    let lowered = (budget.max_connections < configured).then(|| {
        format!(
            "MAX_CONNECTIONS={configured} lowered to {}: RLIMIT_NOFILE={nofile} allows no more",
            budget.max_connections
        )
    });
    (budget, lowered)
}

/// The soft `RLIMIT_NOFILE`, raised to the hard one if it can be; `None` if unlimited.
fn raised_limit() -> Option<u64> {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current
}

/// How `nofile` descriptors are shared out.
fn split(nofile: u64, configured: usize, forwards: bool) -> Budget {
    let free = nofile.saturating_sub(RESERVED);
    if !forwards {
        return Budget {
            max_connections: (configured as u64).min(free.max(1)) as usize,
            max_pooled: 0,
        };
    }
    let max_pooled = (free / 4).min(MAX_POOLED as u64);
    let allowed = ((free - max_pooled) / 2).max(1);
    Budget {
        max_connections: (configured as u64).min(allowed) as usize,
        max_pooled: max_pooled as usize,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_small_limit_shrinks_the_pool_and_the_connections_together() {
        let both = |max_connections, max_pooled| Budget {
            max_connections,
            max_pooled,
        };
        // Plenty: as configured, the whole pool.
        assert_eq!(split(1_048_576, 1024, true), both(1024, 64));
        assert_eq!(split(1_048_576, 1024, false), both(1024, 0));
        // The usual soft limit: the pool at 64, two descriptors a connection.
        assert_eq!(split(1024, 1024, true), both(464, 64));
        assert_eq!(split(1024, 1024, false), both(992, 0));
        // RLIMIT_NOFILE=96 used to leave a relay one connection at a time.
        assert_eq!(split(96, 1024, true), both(24, 16));
        assert_eq!(split(40, 1024, true), both(3, 2));
        // Nothing left: still one connection, no pool.
        assert_eq!(split(8, 1024, true), both(1, 0));
        assert_eq!(split(8, 1024, false), both(1, 0));
    }
}
