//! The exporter: one thread that takes queued spans in batches and posts them to the collector with ureq, never in a message's way.
//!
//! A span is queued under a short lock, or dropped and counted when the
//! queue holds `OTEL_BSP_MAX_QUEUE_SIZE`; only a queue that reaches a whole
//! batch wakes the thread, which otherwise wakes every
//! `OTEL_BSP_SCHEDULE_DELAY`. An export that fails (no connection, a
//! timeout, 429, 502, 503, 504) is tried again up to [`RETRIES`] times, after
//! the `Retry-After` the receiver asked for (at most [`MAX_WAIT`]) or a
//! doubling backoff; any other status, or the last failure, drops the batch.
//! Each failed export is counted (`three_tier_span_export_failures_total`)
//! and every span lost, for either reason, too
//! (`three_tier_spans_dropped_total`). A receiver that is down, slow, refusing
//! or silent costs the messages nothing: at worst the queue fills and spans
//! are dropped. When the tier stops, [`Exporter::flush`] sends what is left
//! within the time it is given.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::{encode, Span};
use crate::config::TracingConfig;
use crate::metrics::Metrics;

/// Retries of a failed export, after its first try.
const RETRIES: u32 = 3;
/// The longest wait before a retry, whatever `Retry-After` asks.
const MAX_WAIT: Duration = Duration::from_secs(5);
/// The first retry's wait; each further one doubles it.
const BACKOFF: Duration = Duration::from_millis(200);

/// The queue and the thread that empties it.
pub struct Exporter {
    state: Mutex<State>,
    /// A batch is ready, or a flush asked for.
    wake: Condvar,
    /// The queue has been emptied during a flush.
    emptied: Condvar,
    capacity: usize,
    batch: usize,
    delay: Duration,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct State {
    spans: VecDeque<Span>,
    /// A flush is under way, until this.
    flush_until: Option<Instant>,
    /// Spans taken from the queue and not yet sent or dropped.
    sending: usize,
}

/// Where the batches go and how.
struct Collector {
    agent: ureq::Agent,
    url: String,
    headers: Vec<(String, String)>,
    /// The process's resource, encoded once.
    resource: String,
}

impl Exporter {
    /// The exporter for `config`, posting to `url`, with its thread started.
    pub fn start(
        config: &TracingConfig,
        url: String,
        resource: Vec<(String, String)>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Arc<Exporter>> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(config.timeout))
            .build()
            .into();
        let collector = Collector {
            agent,
            url,
            headers: config.headers.clone(),
            resource: encode::resource(&resource),
        };
        let exporter = Arc::new(Exporter {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            emptied: Condvar::new(),
            capacity: config.queue,
            batch: config.batch.min(config.queue).max(1),
            delay: config.delay,
            metrics,
        });
        let worker = Arc::clone(&exporter);
        thread::Builder::new()
            .name("otlp-export".into())
            .stack_size(256 * 1024)
            .spawn(move || worker.run(&collector))?;
        Ok(exporter)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `span`, or drops and counts it when the queue is full.
    pub fn push(&self, span: Span) {
        let mut state = self.lock();
        if state.spans.len() >= self.capacity {
            drop(state);
            self.metrics.spans_dropped(1);
            return;
        }
        state.spans.push_back(span);
        if state.spans.len() == self.batch {
            self.wake.notify_one();
        }
    }

    /// Sends what is queued, waiting at most `within`.
    pub fn flush(&self, within: Duration) {
        let until = Instant::now() + within;
        let mut state = self.lock();
        state.flush_until = Some(until);
        self.wake.notify_one();
        while !state.spans.is_empty() || state.sending > 0 {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .emptied
                .wait_timeout(state, left)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
    }

    /// The thread: waits for a batch, a flush or the schedule, then sends.
    fn run(&self, collector: &Collector) {
        loop {
            let (batch, until) = self.next_batch();
            if batch.is_empty() {
                self.emptied.notify_all();
                continue;
            }
            let n = batch.len();
            self.send(collector, &batch, until);
            self.lock().sending -= n;
            self.emptied.notify_all();
        }
    }

    /// The next batch, once one is full, the schedule comes round or a
    /// flush asks; and the flush's deadline, if one is under way.
    fn next_batch(&self) -> (Vec<Span>, Option<Instant>) {
        let mut state = self.lock();
        let wake_at = Instant::now() + self.delay;
        while state.spans.len() < self.batch && state.flush_until.is_none() {
            let left = wake_at.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        let take = state.spans.len().min(self.batch);
        let batch: Vec<Span> = state.spans.drain(..take).collect();
        state.sending += batch.len();
        let until = state.flush_until;
        if state.spans.is_empty() && batch.is_empty() {
            state.flush_until = None;
        }
        (batch, until)
    }

    /// Posts `batch`, retrying as the module doc says (never past a flush's `until`).
    fn send(&self, collector: &Collector, batch: &[Span], until: Option<Instant>) {
        let body = encode::request(&collector.resource, batch);
        for attempt in 0..=RETRIES {
            let wait = match collector.post(&body) {
                Ok((status, _)) if (200..300).contains(&status) => {
                    self.metrics.spans_exported(batch.len() as u64);
                    return;
                }
                Ok((429 | 502..=504, retry_after)) => retry_after.unwrap_or(backoff(attempt)),
                // Refused for good (a 400 names a malformed batch): not sent again.
                Ok(_) => {
                    self.metrics.span_export_failed();
                    break;
                }
                Err(()) => backoff(attempt),
            };
            self.metrics.span_export_failed();
            let past = until.is_some_and(|u| Instant::now() + wait >= u);
            if attempt == RETRIES || past {
                break;
            }
            thread::sleep(wait.min(MAX_WAIT));
        }
        self.metrics.spans_dropped(batch.len() as u64);
    }
}

impl Collector {
    /// One POST of `body`: the status and the `Retry-After` it asked for
    /// (in seconds); `Err` when no answer came (refused, timed out, broken).
    fn post(&self, body: &str) -> Result<(u16, Option<Duration>), ()> {
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send(body).map_err(|_| ())?;
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Ok((response.status().as_u16(), retry_after))
    }
}

/// The wait before retry `attempt` + 1.
fn backoff(attempt: u32) -> Duration {
    BACKOFF.saturating_mul(1 << attempt.min(8)).min(MAX_WAIT)
}
