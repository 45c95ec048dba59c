//! Where this sender's messages went: its last messages and a minute of traffic per path, for its flow page.
//!
//! The sender is the one tier that sees whole paths: each reply names the
//! relay pod and the sink pod that handled the message (`X-Relay-Ip`,
//! `X-Sink-Ip`), and a relay names a sink that failed (`X-Sink-Failed` on
//! its 502 or 504) or that it failed over from (`X-Sink-Failover` on a 2xx).
//! [`Flow`] keeps, in bounded memory, the last [`MESSAGES`] messages and, per
//! edge (sender to relay, relay to sink), how many attempts went well or not
//! in the last minute, counted in five-second buckets; at most [`MAX_EDGES`]
//! edges per bucket are named (pod addresses change in a rollout), the rest
//! are summed as `other`. `GET /flow` serves it as JSON, and `GET /` is the
//! page ([`PAGE`]) that draws it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::format::rfc3339;
use crate::json::{json_opt, json_string};
use crate::record::message::{Pages, Reply};

/// Messages kept for the page.
pub const MESSAGES: usize = 100;
/// Distinct edges named per bucket.
pub const MAX_EDGES: usize = 64;
/// How far back edge counts go.
const WINDOW: Duration = Duration::from_secs(60);
/// The width of one bucket of edge counts.
const BUCKET: Duration = Duration::from_secs(5);

/// The flow page: one self-contained HTML file, embedded in the binary.
pub const PAGE: &str = include_str!("flow.html");

/// One message as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// Its request id.
    pub id: String,
    /// Its trace id (see [`crate::observe::trace`]).
    pub trace_id: String,
    /// When it was sent.
    pub sent: Option<SystemTime>,
    /// The relay pod that answered last, if any did.
    pub relay: Option<String>,
    /// That relay's version (`X-Relay-Version`).
    pub relay_version: Option<String>,
    /// The sink pod that logged it, if one did.
    pub sink: Option<String>,
    /// That sink's version (`X-Sink-Version`).
    pub sink_version: Option<String>,
    /// The last status, `None` if no answer came.
    pub status: Option<u16>,
    /// From the first attempt to the outcome.
    pub took: Duration,
    /// How many attempts it took.
    pub attempts: u32,
    /// Sinks the relays reported failing or failed over from.
    pub failed_sinks: Vec<String>,
    /// Faults asked for (`sent sink=503`) and met (`met sink=503 (attempt 1)`), see [`crate::observe::fault`].
    pub faults: Vec<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// One attempt's path, for the edge counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempt<'a> {
    /// The relay that answered (`None`: none could be reached).
    pub relay: Option<&'a str>,
    /// The sink that logged it.
    pub sink: Option<&'a str>,
    /// Sinks reported failing on the way.
    pub failed_sinks: &'a [String],
    /// Whether the attempt got a 2xx.
    pub ok: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct EdgeCounts {
    ok: u64,
    failed: u64,
}

impl EdgeCounts {
    fn add(&mut self, ok: bool) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
    }

    fn merge(&mut self, other: EdgeCounts) {
        self.ok += other.ok;
        self.failed += other.failed;
    }
}

/// Edge counts of one five-second bucket.
#[derive(Debug)]
struct Bucket {
    index: u64,
    edges: BTreeMap<(String, String), EdgeCounts>,
    other: EdgeCounts,
}

impl Bucket {
    fn add(&mut self, from: &str, to: &str, ok: bool) {
        let key = (from.to_string(), to.to_string());
        if self.edges.len() < MAX_EDGES || self.edges.contains_key(&key) {
            self.edges.entry(key).or_default().add(ok);
        } else {
            self.other.add(ok);
        }
    }
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Entry>,
    buckets: VecDeque<Bucket>,
}

/// Who the sender is, as the page shows it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `POD_IP` (or the address found instead).
    pub ip: IpAddr,
    /// The host name (the pod name in Kubernetes).
    pub host: String,
    /// Its version ([`crate::version::label`]).
    pub version: String,
    /// `RELAY_URL` as configured.
    pub relay_url: String,
}

/// The sender's record of its messages' paths.
#[derive(Debug)]
pub struct Flow {
    identity: Identity,
    started: Instant,
    state: Mutex<State>,
}

impl Flow {
    /// An empty record for the sender `identity`.
    pub fn new(identity: Identity) -> Flow {
        Flow {
            identity,
            started: Instant::now(),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one attempt on the edges it took.
    pub fn attempt(&self, attempt: Attempt) {
        self.attempt_at(attempt, Instant::now());
    }

    /// The index of the bucket `now` falls in.
    fn bucket_index(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_secs() / BUCKET.as_secs()
    }

    fn attempt_at(&self, attempt: Attempt, now: Instant) {
        let index = self.bucket_index(now);
        let mut state = self.lock();
        // Buckets out of the window are never shown again.
        while state
            .buckets
            .front()
            .is_some_and(|b| !in_window(b.index, index))
        {
            state.buckets.pop_front();
        }
        if state.buckets.back().is_none_or(|b| b.index != index) {
            state.buckets.push_back(Bucket {
                index,
                edges: BTreeMap::new(),
                other: EdgeCounts::default(),
            });
        }
        let bucket = state.buckets.back_mut().expect("a bucket was just pushed");
        let relay = attempt.relay.unwrap_or("?");
        bucket.add(
            "sender",
            relay,
            attempt.ok || attempt.relay.is_some() && attempt.sink.is_some(),
        );
        if let Some(sink) = attempt.sink {
            bucket.add(relay, sink, attempt.ok);
        }
        for failed in attempt.failed_sinks {
            bucket.add(relay, failed, false);
        }
    }

    /// Keeps `entry` as the newest message, dropping the oldest beyond [`MESSAGES`].
    pub fn message(&self, entry: Entry) {
        let mut state = self.lock();
        state.messages.push_front(entry);
        state.messages.truncate(MESSAGES);
    }

    /// The record as JSON: identity, edges over the last minute, messages newest first.
    pub fn to_json(&self) -> String {
        self.to_json_at(Instant::now())
    }

    fn to_json_at(&self, now: Instant) -> String {
        let state = self.lock();
        let index = self.bucket_index(now);
        let mut edges: BTreeMap<&(String, String), EdgeCounts> = BTreeMap::new();
        let mut other = EdgeCounts::default();
        for bucket in state.buckets.iter().filter(|b| in_window(b.index, index)) {
            for (key, counts) in &bucket.edges {
                edges.entry(key).or_default().merge(*counts);
            }
            other.merge(bucket.other);
        }
        let mut out = String::with_capacity(512 + 200 * state.messages.len());
        out.push_str("{\"sender\":{\"ip\":");
        json_string(&mut out, &self.identity.ip.to_string());
        out.push_str(",\"host\":");
        json_string(&mut out, &self.identity.host);
        out.push_str(",\"version\":");
        json_string(&mut out, &self.identity.version);
        out.push_str(",\"relay_url\":");
        json_string(&mut out, &self.identity.relay_url);
        let _ = write!(
            out,
            "}},\"window_seconds\":{},\"edges\":[",
            WINDOW.as_secs()
        );
        for (i, ((from, to), counts)) in edges.iter().enumerate() {
            out.push_str(if i == 0 { "{\"from\":" } else { ",{\"from\":" });
            json_string(&mut out, from);
            out.push_str(",\"to\":");
            json_string(&mut out, to);
            let _ = write!(out, ",\"ok\":{},\"failed\":{}}}", counts.ok, counts.failed);
        }
        let _ = write!(
            out,
            "],\"other_edges\":{{\"ok\":{},\"failed\":{}}},\"messages\":[",
            other.ok, other.failed
        );
        for (i, entry) in state.messages.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            entry_json(&mut out, entry);
        }
        out.push_str("]}");
        out
    }
}

impl Pages for Flow {
    fn page(&self, path: &str) -> Option<Reply<'_>> {
        match path {
            "/" => Some(
                Reply::text(200, PAGE)
                    .with_header("Content-Type", "text/html; charset=utf-8")
                    // The page may talk to this sender only: no script, font
                    // or connection elsewhere (a cluster may have no internet).
                    .with_header(
                        "Content-Security-Policy",
                        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
                    )
                    .with_header("Cache-Control", "no-store"),
            ),
            "/flow" => Some(
                Reply::text(200, self.to_json())
                    .with_header("Content-Type", "application/json")
                    .with_header("Cache-Control", "no-store"),
            ),
            _ => None,
        }
    }
}

/// Whether bucket `index` is within [`WINDOW`] of the current bucket `now`.
fn in_window(index: u64, now: u64) -> bool {
    index + WINDOW.as_secs() / BUCKET.as_secs() > now
}

fn entry_json(out: &mut String, e: &Entry) {
    out.push_str("{\"id\":");
    json_string(out, &e.id);
    out.push_str(",\"trace_id\":");
    json_string(out, &e.trace_id);
    out.push_str(",\"sent\":");
    json_opt(out, e.sent.map(rfc3339).as_deref());
    out.push_str(",\"relay\":");
    json_opt(out, e.relay.as_deref());
    out.push_str(",\"relay_version\":");
    json_opt(out, e.relay_version.as_deref());
    out.push_str(",\"sink\":");
    json_opt(out, e.sink.as_deref());
    out.push_str(",\"sink_version\":");
    json_opt(out, e.sink_version.as_deref());
    match e.status {
        Some(status) => {
            let _ = write!(out, ",\"status\":{status}");
        }
        None => out.push_str(",\"status\":null"),
    }
    let _ = write!(
        out,
        ",\"ms\":{:.1},\"attempts\":{},\"failed_sinks\":[",
        e.took.as_secs_f64() * 1000.0,
        e.attempts
    );
    for (i, sink) in e.failed_sinks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, sink);
    }
    out.push_str("],\"faults\":[");
    for (i, fault) in e.faults.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, fault);
    }
    out.push_str("],\"error\":");
    json_opt(out, e.error.as_deref());
    out.push('}');
}

#[cfg(test)]
mod test {
    use super::*;

    fn flow() -> Flow {
        Flow::new(Identity {
            ip: "10.0.0.1".parse().unwrap(),
            host: "sender-abc".into(),
            version: "v0.1.0 blue".into(),
            relay_url: "http://relay-svc:80/relay.php".into(),
        })
    }

    fn entry(n: usize) -> Entry {
        Entry {
            id: format!("10.0.0.1-{n}"),
            relay: Some("10.0.1.1".into()),
            relay_version: Some("v0.1.0 blue".into()),
            sink: Some("10.0.2.1".into()),
            status: Some(200),
            attempts: 1,
            ..Entry::default()
        }
    }

    #[test]
    fn keeps_the_last_messages_newest_first() {
        let flow = flow();
        for n in 1..=MESSAGES + 10 {
            flow.message(entry(n));
        }
        let json: serde_json::Value = serde_json::from_str(&flow.to_json()).unwrap();
        let messages = json["messages"].as_array().unwrap();
        assert_eq!(messages.len(), MESSAGES, "N + 10 messages keep N");
        assert_eq!(messages[0]["id"], format!("10.0.0.1-{}", MESSAGES + 10));
        assert_eq!(messages[MESSAGES - 1]["id"], "10.0.0.1-11");
        assert_eq!(messages[0]["status"], 200);
        assert_eq!(json["sender"]["relay_url"], "http://relay-svc:80/relay.php");
        assert_eq!(json["sender"]["version"], "v0.1.0 blue");
        assert_eq!(messages[0]["relay_version"], "v0.1.0 blue");
        assert_eq!(messages[0]["sink_version"], serde_json::Value::Null);
        assert_eq!(json["window_seconds"], 60);
    }

    #[test]
    fn edges_count_a_minute_and_failures_show() {
        let flow = flow();
        let t0 = flow.started;
        let ok = Attempt {
            relay: Some("10.0.1.1"),
            sink: Some("10.0.2.1"),
            failed_sinks: &[],
            ok: true,
        };
        let failed = ["10.0.2.3".to_string()];
        for _ in 0..3 {
            flow.attempt_at(ok, t0);
        }
        let failover = Attempt {
            failed_sinks: &failed,
            ..ok
        };
        flow.attempt_at(failover, t0 + Duration::from_secs(30));
        flow.attempt_at(Attempt::default(), t0 + Duration::from_secs(30));
        let json: serde_json::Value =
            serde_json::from_str(&flow.to_json_at(t0 + Duration::from_secs(31))).unwrap();
        let edge = |from: &str, to: &str| {
            json["edges"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["from"] == from && e["to"] == to)
                .map(|e| (e["ok"].as_u64().unwrap(), e["failed"].as_u64().unwrap()))
        };
        assert_eq!(edge("sender", "10.0.1.1"), Some((4, 0)));
        assert_eq!(edge("10.0.1.1", "10.0.2.1"), Some((4, 0)));
        assert_eq!(edge("10.0.1.1", "10.0.2.3"), Some((0, 1)), "the failover");
        assert_eq!(edge("sender", "?"), Some((0, 1)), "no relay reached");
        // A minute later only the later attempts count.
        let later: serde_json::Value =
            serde_json::from_str(&flow.to_json_at(t0 + Duration::from_secs(75))).unwrap();
        assert_eq!(later["edges"].as_array().unwrap().len(), 4);
        let json: serde_json::Value =
            serde_json::from_str(&flow.to_json_at(t0 + Duration::from_secs(95))).unwrap();
        assert!(json["edges"].as_array().unwrap().is_empty(), "{json}");
        // What is out of the window is dropped by the next attempt: memory stays bounded.
        flow.attempt_at(ok, t0 + Duration::from_secs(95));
        assert_eq!(flow.lock().buckets.len(), 1);
    }

    #[test]
    fn distinct_edges_are_capped() {
        let flow = flow();
        let sinks: Vec<String> = (0..MAX_EDGES + 20).map(|i| format!("10.0.9.{i}")).collect();
        for sink in &sinks {
            flow.attempt(Attempt {
                relay: Some("10.0.1.1"),
                sink: Some(sink),
                failed_sinks: &[],
                ok: true,
            });
        }
        let json: serde_json::Value = serde_json::from_str(&flow.to_json()).unwrap();
        assert_eq!(json["edges"].as_array().unwrap().len(), MAX_EDGES);
        assert_eq!(json["other_edges"]["ok"], 21);
    }
}
