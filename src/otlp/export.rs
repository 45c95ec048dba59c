//! The exporter: one thread that takes queued spans in batches and posts them to the collector with ureq-proto, never in a message's way.
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
use std::net::ToSocketAddrs;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use ureq_proto::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use ureq_proto::http::{HeaderName, HeaderValue, Method, Request, Uri};

use super::{encode, Span};
use crate::client::{self, Conn, Done, ExchangeFailure};
use crate::config::TracingConfig;
use crate::observe::metrics::Metrics;
use crate::values;

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

/// Where the batches go and how: the collector's address, the request's
/// fixed parts, and one connection kept between exports.
struct Collector {
    host: String,
    port: u16,
    uri: Uri,
    host_header: HeaderValue,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
    /// The process's resource, encoded once.
    resource: String,
    conn: Option<Conn>,
}

impl Exporter {
    /// The exporter for `config`, posting to `url`, with its thread started.
    pub fn start(
        config: &TracingConfig,
        url: String,
        resource: Vec<(String, String)>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Arc<Exporter>> {
        let mut collector = Collector::new(config, &url, encode::resource(&resource))?;
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
            .spawn(move || worker.run(&mut collector))?;
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
        let left = until.saturating_duration_since(Instant::now());
        let _ = self
            .emptied
            .wait_timeout_while(state, left, |s| !s.spans.is_empty() || s.sending > 0);
    }

    /// The thread: waits for a batch, a flush or the schedule, then sends.
    fn run(&self, collector: &mut Collector) {
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
        let state = self.lock();
        let waiting = |s: &mut State| s.spans.len() < self.batch && s.flush_until.is_none();
        let mut state = self
            .wake
            .wait_timeout_while(state, self.delay, waiting)
            .map_or_else(|p| p.into_inner().0, |r| r.0);
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
    fn send(&self, collector: &mut Collector, batch: &[Span], until: Option<Instant>) {
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
    /// The collector at `url` (an `http://` URL, checked by the settings),
    /// sent `OTEL_EXPORTER_OTLP_HEADERS` and given `OTEL_EXPORTER_OTLP_TIMEOUT`.
    fn new(config: &TracingConfig, url: &str, resource: String) -> io::Result<Collector> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        let parsed = values::url_list(url)
            .ok()
            .and_then(|mut urls| urls.pop())
            .ok_or_else(|| invalid(format!("{url:?} is not an http URL")))?;
        let uri = Uri::try_from(url).map_err(|e| invalid(format!("{url:?}: {e}")))?;
        let host_header = HeaderValue::try_from(parsed.host_header())
            .map_err(|e| invalid(format!("{url:?}: {e}")))?;
        let mut headers = Vec::with_capacity(config.headers.len());
        for (name, value) in &config.headers {
            let header = |e: String| {
                invalid(format!(
                    "OTEL_EXPORTER_OTLP_HEADERS: {name}={value:?} is not a header: {e}"
                ))
            };
            let name = HeaderName::try_from(name.as_str()).map_err(|e| header(e.to_string()))?;
            let value = HeaderValue::try_from(value.as_str()).map_err(|e| header(e.to_string()))?;
            headers.push((name, value));
        }
        Ok(Collector {
            host: parsed.host,
            port: parsed.port,
            uri,
            host_header,
            headers,
            timeout: config.timeout,
            resource,
            conn: None,
        })
    }

    /// One POST of `body`, within the export timeout: the status and the
    /// `Retry-After` it asked for (in seconds); `Err` when no answer came
    /// (refused, timed out, broken). A kept connection that fails other
    /// than by the deadline (the collector closed it while idle) is
    /// replaced once, within the same deadline.
    fn post(&mut self, body: &str) -> Result<(u16, Option<Duration>), ()> {
        let deadline = Instant::now() + self.timeout;
        if let Some(mut conn) = self.conn.take() {
            match client::call(
                &mut conn,
                self.request(body.len()),
                body.as_bytes(),
                deadline,
                false,
            ) {
                Ok(done) => return Ok(self.answered(conn, done)),
                Err(ExchangeFailure::TimedOut) => return Err(()),
                Err(_) => {}
            }
        }
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or(())?;
        let mut conn = Conn::connect(addr, deadline).map_err(|_| ())?;
        let done = client::call(
            &mut conn,
            self.request(body.len()),
            body.as_bytes(),
            deadline,
            false,
        )
        .map_err(|_| ())?;
        Ok(self.answered(conn, done))
    }

    /// The request's head for a body of `len` bytes.
    fn request(&self, len: usize) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.host_header.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("three-tier/", env!("CARGO_PKG_VERSION"))),
        );
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
        request
    }

    /// An answer came: keeps `conn` if it may carry the next export.
    fn answered(&mut self, conn: Conn, done: Done) -> (u16, Option<Duration>) {
        let retry_after = done
            .reply
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if done.reusable {
            self.conn = Some(conn);
        }
        (done.reply.status, retry_after)
    }
}

/// The wait before retry `attempt` + 1.
fn backoff(attempt: u32) -> Duration {
    BACKOFF.saturating_mul(1 << attempt.min(8)).min(MAX_WAIT)
}
