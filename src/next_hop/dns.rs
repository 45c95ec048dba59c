//! Host names in `RELAY_URL` and `SINK_URL`, looked up off the message path.
//!
//! In a pod, a Service name is looked up through the cluster DNS (the search
//! path, `ndots:5`), so a lookup per message would be a DNS round trip per
//! message, and would stop all delivery while the DNS is down. Instead each
//! host name keeps its last good answer (all its addresses, sorted, so that
//! only [`crate::next_hop::upstream`]'s counter rotates over them) and one long-lived
//! thread of its own looks it up again, at most every `DNS_REFRESH`: a message
//! that finds the answer due asks for a refresh and goes on with the answer it
//! has. Only the first lookup, with nothing cached yet, is waited for, within
//! the hop's deadline. A lookup that fails, or is not answered within the
//! hop's timeout, keeps the last good answer, is counted in
//! `three_tier_dns_failures_total`, and is logged once when the name starts
//! failing and once when it recovers. When every address of a name refused a
//! connection, the name is looked up again at once (at most once a second),
//! so pods that moved are found without waiting for the refresh; a name with
//! no answer yet is looked up again at most every 250 ms. An IP literal needs
//! no lookup and no thread.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crate::observe::metrics::Metrics;
use crate::record::logger::{Event, Logger};

/// Looks a host name up: the system resolver (`getaddrinfo`), or a script in the tests.
pub type LookupFn = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// Least time between two lookups of a name whose every address refused a connection.
const RETRY_GAP: Duration = Duration::from_secs(1);
/// Least time between two lookups of a name that has no answer yet: short,
/// so that a sender's quick retries at start-up meet a new lookup, not the
/// last one's error, yet at most a few lookups a second.
const NO_ANSWER_GAP: Duration = Duration::from_millis(250);

/// Why no address could be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// The first lookup did not finish before the deadline.
    TimedOut,
    /// The name has no answer yet: the last lookup failed with this.
    Failed(String),
}

/// How a name is looked up, and who hears about it.
#[derive(Debug, Clone)]
pub struct Lookups {
    /// The variable the name came from (`SINK_URL`), for log lines.
    pub variable: &'static str,
    /// `DNS_REFRESH`: an answer older than this is looked up again.
    pub refresh: Duration,
    /// A lookup not answered within this (the hop's timeout) counts as failed.
    pub timeout: Duration,
    /// Where failures and changes are logged.
    pub logger: Arc<Logger>,
    /// Where lookups and failures are counted.
    pub metrics: Arc<Metrics>,
}

/// The host of one URL: an address, or a name with its cached answer.
#[derive(Debug)]
pub enum Host {
    /// An IP literal: its one address, always.
    Literal(Arc<[SocketAddr]>),
    /// A name, looked up by a thread of its own.
    Name(Resolved),
}

impl Host {
    /// The host `host` (a name or an IP literal) at `port`; a name's first lookup starts now.
    pub fn new(host: &str, port: u16, lookups: &Lookups) -> Host {
        Host::with(host, port, lookups, Arc::new(system_lookup))
    }

    /// The same, looking names up with `look_up`.
    fn with(host: &str, port: u16, lookups: &Lookups, look_up: Arc<LookupFn>) -> Host {
        match host.parse::<IpAddr>() {
            Ok(ip) => Host::Literal(Arc::new([SocketAddr::new(ip, port)])),
            Err(_) => Host::Name(Resolved::start(host, port, lookups.clone(), look_up)),
        }
    }

    /// The addresses to use now, sorted; waits (until `deadline`) only for a first lookup.
    pub fn addrs(&self, deadline: Instant) -> Result<Arc<[SocketAddr]>, Unresolved> {
        match self {
            Host::Literal(addrs) => Ok(Arc::clone(addrs)),
            Host::Name(name) => name.name.addrs(deadline),
        }
    }

    /// Every address refused a connection: look the name up again soon.
    pub fn all_refused(&self) {
        if let Host::Name(name) = self {
            name.name.all_refused();
        }
    }
}

/// A name and its lookup thread, which ends when this is dropped.
#[derive(Debug)]
pub struct Resolved {
    name: Arc<Name>,
}

impl Resolved {
    fn start(host: &str, port: u16, lookups: Lookups, look_up: Arc<LookupFn>) -> Resolved {
        let name = Arc::new(Name {
            host: host.to_string(),
            port,
            lookups,
            look_up,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        name.lock().running = Some(Instant::now());
        let worker = Arc::clone(&name);
        let spawned = thread::Builder::new()
            .name("dns".into())
            .stack_size(64 * 1024)
            .spawn(move || worker.serve());
        if let Err(e) = spawned {
            // No thread, no lookups: every message says why.
            let mut state = name.lock();
            state.running = None;
            state.stopped = true;
            state.error = Some(format!("cannot start the lookup thread: {e}"));
        }
        Resolved { name }
    }
}

impl Drop for Resolved {
    fn drop(&mut self) {
        self.name.lock().stopped = true;
        self.name.changed.notify_all();
    }
}

struct Name {
    host: String,
    port: u16,
    lookups: Lookups,
    look_up: Arc<LookupFn>,
    state: Mutex<State>,
    /// Signalled when a lookup is asked for, when one ends, and at stop.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The last good answer, sorted and without duplicates.
    answer: Option<Arc<[SocketAddr]>>,
    /// When the lookup now running started.
    running: Option<Instant>,
    /// When the last lookup started.
    last_start: Option<Instant>,
    /// The running lookup has been counted as failed already (it took too long).
    overdue: bool,
    /// Every address refused: the next lookup is due after [`RETRY_GAP`].
    refused: bool,
    /// Lookups are failing (logged once, until one succeeds in time).
    failing: bool,
    /// Lookups finished, so that a waiter sees one end.
    finished: u64,
    /// Why the last lookup failed.
    error: Option<String>,
    /// The owner is gone: the thread ends.
    stopped: bool,
}

/// What to log after the lock is released.
enum Note {
    Nothing,
    Changed(Arc<[SocketAddr]>),
    Failing(String, Option<Arc<[SocketAddr]>>),
    Recovered,
}

impl Name {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn addrs(&self, deadline: Instant) -> Result<Arc<[SocketAddr]>, Unresolved> {
        let now = Instant::now();
        let mut state = self.lock();
        let note = self.check_overdue(&mut state, now);
        self.start_if_due(&mut state, now);
        if let Some(answer) = &state.answer {
            let answer = Arc::clone(answer);
            drop(state);
            self.report(note);
            return Ok(answer);
        }
        let seen = state.finished;
        let outcome = loop {
            if state.finished != seen || state.running.is_none() {
                break match &state.answer {
                    Some(answer) => Ok(Arc::clone(answer)),
                    None => Err(Unresolved::Failed(state.error.clone().unwrap_or_default())),
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(Unresolved::TimedOut);
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(p) => p.into_inner().0,
            };
        };
        drop(state);
        self.report(note);
        outcome
    }

    /// Waits (at most 10 s) until `n` lookups have finished; for the tests.
    #[cfg(test)]
    fn wait_finished(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut state = self.lock();
        while state.finished < n {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{n} lookups did not finish: {state:?}");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn all_refused(&self) {
        let mut state = self.lock();
        state.refused = true;
        self.start_if_due(&mut state, Instant::now());
    }

    /// Asks the thread for a lookup if none runs and the last one is old enough.
    fn start_if_due(&self, state: &mut State, now: Instant) {
        if state.running.is_some() || state.stopped {
            return;
        }
        let gap = if state.answer.is_none() {
            NO_ANSWER_GAP
        } else if state.refused {
            RETRY_GAP
        } else {
            self.lookups.refresh
        };
        let gap = gap.min(self.lookups.refresh);
        if state
            .last_start
            .is_none_or(|t| now.duration_since(t) >= gap)
        {
            state.running = Some(now);
            self.changed.notify_all();
        }
    }

    /// A lookup still running past the timeout counts as failed, once.
    fn check_overdue(&self, state: &mut State, now: Instant) -> Note {
        let Some(started) = state.running else {
            return Note::Nothing;
        };
        let took = now.duration_since(started);
        if state.overdue || took <= self.lookups.timeout {
            return Note::Nothing;
        }
        state.overdue = true;
        self.failed(state, self.too_slow(took))
    }

    fn too_slow(&self, took: Duration) -> String {
        format!(
            "no answer within {}ms (after {}ms)",
            self.lookups.timeout.as_millis(),
            took.as_millis()
        )
    }

    /// Counts a failed lookup and says whether the name just started failing.
    fn failed(&self, state: &mut State, reason: String) -> Note {
        self.lookups.metrics.dns_failure();
        state.error = Some(reason.clone());
        if std::mem::replace(&mut state.failing, true) {
            return Note::Nothing;
        }
        Note::Failing(reason, state.answer.clone())
    }

    /// The lookup thread: one lookup each time one is asked for, until stopped.
    fn serve(&self) {
        loop {
            let started = {
                let mut state = self.lock();
                loop {
                    if state.stopped {
                        return;
                    }
                    if let Some(started) = state.running {
                        state.last_start = Some(started);
                        state.overdue = false;
                        break started;
                    }
                    state = match self.changed.wait(state) {
                        Ok(state) => state,
                        Err(p) => p.into_inner(),
                    };
                }
            };
            self.lookups.metrics.dns_lookup();
            let result = (self.look_up)(&self.host, self.port);
            let note = {
                let mut state = self.lock();
                let note = self.finish(&mut state, result, started.elapsed());
                state.running = None;
                state.refused = false;
                state.finished += 1;
                note
            };
            self.changed.notify_all();
            self.report(note);
        }
    }

    fn finish(
        &self,
        state: &mut State,
        result: io::Result<Vec<SocketAddr>>,
        took: Duration,
    ) -> Note {
        let addrs = match result {
            Ok(addrs) => in_fixed_order(addrs),
            Err(e) => return self.lookup_failed(state, e.to_string()),
        };
        if addrs.is_empty() {
            return self.lookup_failed(state, "no addresses".into());
        }
        let changed = state.answer.as_deref() != Some(addrs.as_slice());
        let answer: Arc<[SocketAddr]> = addrs.into();
        if changed {
            state.answer = Some(Arc::clone(&answer));
        }
        if took > self.lookups.timeout {
            let slow = if state.overdue {
                Note::Nothing
            } else {
                self.failed(state, self.too_slow(took))
            };
            return if changed { Note::Changed(answer) } else { slow };
        }
        state.error = None;
        match (std::mem::replace(&mut state.failing, false), changed) {
            (true, _) => Note::Recovered,
            (false, true) => Note::Changed(answer),
            (false, false) => Note::Nothing,
        }
    }

    fn lookup_failed(&self, state: &mut State, reason: String) -> Note {
        if state.overdue {
            // Counted once already, when it ran past the timeout.
            state.error = Some(reason);
            return Note::Nothing;
        }
        self.failed(state, reason)
    }

    fn report(&self, note: Note) {
        let (host, variable) = (&self.host, self.lookups.variable);
        let logger = &self.lookups.logger;
        match note {
            Note::Nothing => {}
            Note::Changed(answer) => logger.event(
                "dns",
                &format!("{host} ({variable}) resolves to {}", list(&answer)),
            ),
            Note::Failing(reason, answer) => {
                let keeping = match answer {
                    Some(answer) => format!("using its last answer, {}", list(&answer)),
                    None => "messages to it fail until it resolves".to_string(),
                };
                let text = format!(
                    "cannot look up {host} ({variable}): {reason}; {keeping} (logged once until a lookup succeeds)"
                );
                logger.log(&Event::new("dns_failed", &text).warn());
            }
            Note::Recovered => {
                let answer = self.lock().answer.clone();
                let now = answer.as_deref().map_or_else(String::new, list);
                logger.event(
                    "dns_recovered",
                    &format!("{host} ({variable}) resolves again: {now}"),
                );
            }
        }
    }
}

impl std::fmt::Debug for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Name({}:{})", self.host, self.port)
    }
}

/// `getaddrinfo` through the standard library.
fn system_lookup(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

/// Addresses as `10.0.0.1, 10.0.0.2` (the port is the URL's).
fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(|a| a.ip().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `addrs` sorted and without duplicates, whatever order the resolver used.
///
/// Sorted, so that only our counter rotates: a resolver that rotates its
/// answers itself (dnsmasq does) would otherwise cancel our rotation out and
/// send every message to the same address.
pub fn in_fixed_order(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.sort_unstable();
    addrs.dedup();
    addrs
}

#[cfg(test)]
pub(crate) mod test;
