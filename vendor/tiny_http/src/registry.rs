//! The open connections: how many, which are idle, and a handle to close each (three-tier patch).
//!
//! Upstream accepted every connection and gave each a thread, so 5,000 idle
//! clients meant 5,000 threads. Here at most `max_connections` are served at
//! once. Each connection is a [`Slot`]: its stream (the one descriptor the
//! connection has) and an atomic state, idle since some time or busy. A
//! connection is idle while it waits for the first byte of a request, fresh or
//! kept alive, and nothing has arrived for it: one whose next request is
//! already in the socket (its thread has not read it yet) is not idle. At the
//! limit, a new connection displaces the oldest idle one, as nginx reuses
//! idle connections; with none idle, it is refused. A kept-alive connection
//! counts as idle for this only after [`KEPT_ALIVE_IDLE`]: between two
//! requests a busy client is idle for microseconds, and closing it then
//! would reset the request it is sending. A connection that has sent
//! nothing yet (an idle flood) makes room at once. Closing
//! means `shutdown(2)` of the shared stream's reading side: the connection's
//! own thread, blocked in `read`, then sees the end of the stream and leaves;
//! a thread that has just read a request (taken from the socket a moment
//! before, so the check could not see it) answers it with `Connection:
//! close`, since its writing side is open. The state is
//! an atomic so that a connection going idle or busy, once per request, never
//! takes the registry's lock.

use std::collections::HashMap;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The state value of a connection that is reading or answering a request.
const BUSY: u64 = 0;
/// The state value of a connection that has been closed by the registry.
const GONE: u64 = u64::MAX;

/// Connections closed to make room may still be finishing; this many more may exist meanwhile.
const EVICTING_SLACK: usize = 4;
/// How long a new connection waits for closed ones to finish before it is refused.
const ROOM_WAIT: Duration = Duration::from_secs(1);
/// How long a connection that has served a request must wait idle before it may make room.
const KEPT_ALIVE_IDLE: Duration = Duration::from_secs(1);

/// One open connection.
pub(crate) struct Slot {
    id: u64,
    pub stream: Arc<TcpStream>,
    /// `BUSY`, `GONE`, or 1 + milliseconds since the registry's epoch at which it went idle.
    state: AtomicU64,
    /// It has served a request (it is kept alive, not fresh).
    served: AtomicBool,
}

impl Slot {
    /// Marks the connection idle (waiting for a request) from now.
    pub fn set_idle(&self, registry: &Registry) {
        let since = registry.idle_now();
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s != GONE).then_some(since)
            });
    }

    /// Marks the connection busy; `false` if the registry closed it first.
    pub fn set_busy(&self) -> bool {
        self.served.store(true, Ordering::Relaxed);
        self.state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s != GONE).then_some(BUSY)
            })
            .is_ok()
    }

    /// Closes the connection if it is idle with state `seen` and no request
    /// has arrived for it; returns whether it did.
    fn close_if_idle(&self, seen: u64) -> bool {
        if seen == BUSY || seen == GONE || has_input(&self.stream) {
            return false;
        }
        if self
            .state
            .compare_exchange(seen, GONE, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        let _ = self.stream.shutdown(Shutdown::Read);
        true
    }

    fn idle_since(&self) -> Option<u64> {
        match self.state.load(Ordering::SeqCst) {
            BUSY | GONE => None,
            since => Some(since),
        }
    }
}

/// Whether bytes are waiting to be read on `stream` (a non-blocking peek):
/// a request that arrived while its connection looked idle.
fn has_input(stream: &TcpStream) -> bool {
    use rustix::net::{recv, RecvFlags};
    let mut byte = [0u8; 1];
    matches!(recv(stream, &mut byte, RecvFlags::PEEK | RecvFlags::DONTWAIT), Ok((n, _)) if n > 0)
}

/// What happened to a new connection.
pub(crate) enum Admission {
    /// Admitted; `evicted` tells whether an idle one was closed for it.
    Admitted { slot: Arc<Slot>, evicted: bool },
    /// At the limit with no idle connection to close.
    Full(TcpStream),
}

/// All open connections.
pub(crate) struct Registry {
    slots: Mutex<Slots>,
    /// Signalled when a connection leaves.
    left: Condvar,
    max: usize,
    epoch: Instant,
}

struct Slots {
    by_id: HashMap<u64, Arc<Slot>>,
    next_id: u64,
    /// Threads waiting on `left`: a leaving connection signals only then
    /// (a `notify_all` is a syscall even with nobody waiting).
    waiting: usize,
}

impl Slots {
    /// Waits on `left` for at most `timeout`, counted in `waiting` meanwhile.
    fn wait<'a>(
        mut slots: MutexGuard<'a, Slots>,
        left: &Condvar,
        timeout: Duration,
    ) -> MutexGuard<'a, Slots> {
        slots.waiting += 1;
        let mut slots = left
            .wait_timeout(slots, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        slots.waiting -= 1;
        slots
    }
}

impl Registry {
    /// The most connections that can exist at once with `max` admitted:
    /// those closed to make room may still be finishing.
    pub fn most(max: usize) -> usize {
        max.max(1) + EVICTING_SLACK
    }

    pub fn new(max: usize) -> Registry {
        Registry {
            slots: Mutex::new(Slots {
                by_id: HashMap::new(),
                next_id: 0,
                waiting: 0,
            }),
            left: Condvar::new(),
            max: max.max(1),
            epoch: Instant::now(),
        }
    }

    /// A registry whose clock started `age` ago, for the tests.
    #[cfg(test)]
    fn aged(max: usize, age: Duration) -> Registry {
        Registry {
            epoch: Instant::now() - age,
            ..Registry::new(max)
        }
    }

    /// The state of a connection that goes idle now.
    fn idle_now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits `stream`, closing the oldest idle connection if the limit is
    /// reached. A new connection is idle: it has not sent a request yet.
    pub fn admit(&self, stream: TcpStream) -> Admission {
        let mut slots = self.lock();
        let mut evicted = false;
        if slots.by_id.len() >= self.max {
            // Connections closed earlier may still be leaving: wait for them, briefly.
            let give_up = Instant::now() + ROOM_WAIT;
            while slots.by_id.len() >= self.max + EVICTING_SLACK {
                let left = give_up.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Admission::Full(stream);
                }
                slots = Slots::wait(slots, &self.left, left);
            }
            let kept_alive_before = self
                .idle_now()
                .saturating_sub(KEPT_ALIVE_IDLE.as_millis() as u64);
            evicted = slots.by_id.len() >= self.max && evict_oldest_idle(&slots, kept_alive_before);
            if slots.by_id.len() >= self.max && !evicted {
                return Admission::Full(stream);
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let slot = Arc::new(Slot {
            id,
            stream: Arc::new(stream),
            state: AtomicU64::new(self.idle_now()),
            served: AtomicBool::new(false),
        });
        slots.by_id.insert(id, Arc::clone(&slot));
        Admission::Admitted { slot, evicted }
    }

    /// Forgets a connection whose thread has finished with it.
    pub fn remove(&self, slot: &Slot) {
        let waiting = {
            let mut slots = self.lock();
            slots.by_id.remove(&slot.id);
            slots.waiting > 0
        };
        // Both an admission waiting for room and a stop waiting for the end.
        if waiting {
            self.left.notify_all();
        }
    }

    /// Closes every idle connection; returns how many.
    pub fn close_idle(&self) -> usize {
        let slots = self.lock();
        slots
            .by_id
            .values()
            .filter(|s| s.idle_since().is_some_and(|since| s.close_if_idle(since)))
            .count()
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Waits until no connection is open, at most `timeout`; returns how many are left.
    pub fn wait_empty(&self, timeout: Duration) -> usize {
        let give_up = Instant::now() + timeout;
        let mut slots = self.lock();
        loop {
            let left = give_up.saturating_duration_since(Instant::now());
            if slots.by_id.is_empty() || left.is_zero() {
                return slots.by_id.len();
            }
            slots = Slots::wait(slots, &self.left, left);
        }
    }
}

/// Closes the oldest idle connection that may make room: one that has sent
/// nothing yet, or a kept-alive one idle since `kept_alive_before` or earlier.
fn evict_oldest_idle(slots: &Slots, kept_alive_before: u64) -> bool {
    // Idle states change under us; retry on the next oldest if one turned busy.
    let mut candidates: Vec<(u64, &Arc<Slot>)> = slots
        .by_id
        .values()
        .filter_map(|s| s.idle_since().map(|since| (since, s)))
        .filter(|(since, s)| !s.served.load(Ordering::Relaxed) || *since <= kept_alive_before)
        .collect();
    candidates.sort_unstable_by_key(|(since, _)| *since);
    candidates
        .into_iter()
        .any(|(since, slot)| slot.close_if_idle(since))
}

#[cfg(test)]
mod test {
    use super::*;
    use std::net::TcpListener;

    fn stream(listener: &TcpListener) -> TcpStream {
        TcpStream::connect(listener.local_addr().unwrap()).unwrap()
    }

    #[test]
    fn at_the_limit_the_oldest_idle_connection_makes_room() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let registry = Registry::aged(2, Duration::from_secs(60));
        let admit = |r: &Registry| match r.admit(stream(&listener)) {
            Admission::Admitted { slot, evicted } => (slot, evicted),
            Admission::Full(_) => panic!("refused"),
        };
        let (a, _) = admit(&registry);
        let (b, _) = admit(&registry);
        assert!(a.set_busy() && b.set_busy());
        // Both busy: no room.
        assert!(matches!(
            registry.admit(stream(&listener)),
            Admission::Full(_)
        ));
        // Both idle again, but only just: a client between two requests.
        a.set_idle(&registry);
        b.set_idle(&registry);
        assert!(matches!(
            registry.admit(stream(&listener)),
            Admission::Full(_)
        ));
        // Idle for longer than KEPT_ALIVE_IDLE, a made older than b: a goes.
        let long_ago = |registry: &Registry, ms: u64| {
            registry.idle_now() - KEPT_ALIVE_IDLE.as_millis() as u64 - ms
        };
        a.state.store(long_ago(&registry, 10), Ordering::SeqCst);
        b.state.store(long_ago(&registry, 5), Ordering::SeqCst);
        let (_c, evicted) = admit(&registry);
        assert!(evicted);
        assert!(!a.set_busy(), "the older idle connection was closed");
        assert!(b.set_busy(), "the newer one was kept");
        registry.remove(&a);
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn a_connection_that_sent_nothing_makes_room_at_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let registry = Registry::new(1);
        let Admission::Admitted { slot: quiet, .. } = registry.admit(stream(&listener)) else {
            panic!("refused");
        };
        let Admission::Admitted { evicted, .. } = registry.admit(stream(&listener)) else {
            panic!("refused");
        };
        assert!(
            evicted && !quiet.set_busy(),
            "the fresh idle connection was closed for the new one"
        );
    }

    #[test]
    fn close_idle_closes_only_idle_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let registry = Registry::new(8);
        let slots: Vec<Arc<Slot>> = (0..3)
            .map(|_| match registry.admit(stream(&listener)) {
                Admission::Admitted { slot, .. } => slot,
                Admission::Full(_) => panic!("refused"),
            })
            .collect();
        assert!(slots[1].set_busy(), "new connections start idle");
        assert_eq!(registry.close_idle(), 2);
        assert!(slots[1].set_busy());
        assert!(!slots[0].set_busy());
    }
}
