//! The settings as read: one field for each row of the table, and [`Set`], how a row fills its field.
//!
//! Reading a tier's environment fills a `Raw` row by row (a value, or the
//! row's default), each row storing into its own field; a field whose row the
//! tier does not read keeps its `Default`. The tiers' configurations
//! ([`super::TierConfig`] and the rest) are then put together from it, with
//! the few rules that join two settings (`SEND_FAULT` needs `FAULTS=on`, the
//! two OTLP endpoints, a required URL list).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::form::{is_label, is_text, key_values, millis, Form, LogFormat, Sampler, SendFault};
use crate::values::{self, Url};

/// Every setting's value, as its row read it.
#[derive(Debug, Default)]
pub struct Raw {
    pub listen_addr: Option<SocketAddr>,
    pub relay_urls: Option<Vec<Url>>,
    pub send_interval: Duration,
    pub send_count: Option<u64>,
    pub send_fail_fast: bool,
    pub send_retries: u64,
    pub relay_timeout: Duration,
    pub sink_urls: Option<Vec<Url>>,
    pub sink_timeout: Duration,
    pub upstream_max_requests: u64,
    pub upstream_max_age: Duration,
    pub dns_refresh: Duration,
    pub log_dir: Option<PathBuf>,
    pub log_fsync: bool,
    pub log_format: LogFormat,
    pub faults: bool,
    pub send_fault: Option<SendFault>,
    pub demo_version: Option<String>,
    pub pod_ip: Option<IpAddr>,
    pub max_connections: u64,
    pub max_in_flight: u64,
    pub max_body_bytes: u64,
    pub client_timeout: Duration,
    pub drain_delay: Duration,
    pub shutdown_timeout: Duration,
    pub otlp_endpoint: Option<Url>,
    pub otlp_traces_endpoint: Option<Url>,
    pub otlp_headers: Vec<(String, String)>,
    pub otlp_timeout: Duration,
    pub service_name: Option<String>,
    pub resource: Vec<(String, String)>,
    pub sampler: Sampler,
    /// Parts in a million.
    pub sampler_ratio: u32,
    pub sdk_disabled: bool,
    pub bsp_queue: u64,
    pub bsp_delay: Duration,
    pub bsp_batch: u64,
}

/// The field a setting sets, typed by the form its value takes (with the
/// form's bounds): parsing a value and storing it are one step, so a row of
/// [`super::SETTINGS`] cannot read a value in one form and store another.
#[derive(Clone, Copy)]
pub enum Set {
    /// An IP address and port.
    SocketAddr(fn(&mut Raw, SocketAddr)),
    /// An IPv4 or IPv6 address.
    Ip(fn(&mut Raw, IpAddr)),
    /// One or more http URLs, comma-separated.
    Urls(fn(&mut Raw, Vec<Url>)),
    /// A duration; `positive`: greater than zero.
    Duration {
        /// Zero is refused.
        positive: bool,
        /// Where it goes.
        to: fn(&mut Raw, Duration),
    },
    /// A whole number from `min` to `max`.
    Number {
        /// The least accepted.
        min: u64,
        /// The most accepted.
        max: u64,
        /// Where it goes.
        to: fn(&mut Raw, u64),
    },
    /// One of these words.
    Word(&'static [&'static str], fn(&mut Raw, &'static str)),
    /// A directory path.
    Dir(fn(&mut Raw, PathBuf)),
    /// A short label.
    Label(fn(&mut Raw, String)),
    /// `SEND_FAULT`'s form.
    SendFault(fn(&mut Raw, SendFault)),
    /// One http URL.
    Url(fn(&mut Raw, Url)),
    /// Milliseconds, or a duration.
    Millis(fn(&mut Raw, Duration)),
    /// `key=value` pairs.
    KeyValues(fn(&mut Raw, Vec<(String, String)>)),
    /// A share from 0 to 1, in parts in a million.
    Ratio(fn(&mut Raw, u32)),
    /// Printable text.
    Text(fn(&mut Raw, String)),
}

impl Set {
    /// The form its value takes.
    pub fn form(&self) -> Form {
        match *self {
            Set::SocketAddr(_) => Form::SocketAddr,
            Set::Ip(_) => Form::Ip,
            Set::Urls(_) => Form::Urls,
            Set::Duration { positive, .. } => Form::Duration { positive },
            Set::Number { min, max, .. } => Form::Number { min, max },
            Set::Word(words, _) => Form::Word(words),
            Set::Dir(_) => Form::Dir,
            Set::Label(_) => Form::Label,
            Set::SendFault(_) => Form::SendFault,
            Set::Url(_) => Form::Url,
            Set::Millis(_) => Form::Millis,
            Set::KeyValues(_) => Form::KeyValues,
            Set::Ratio(_) => Form::Ratio,
            Set::Text(_) => Form::Text,
        }
    }

    /// Parses `text` in its form and stores it in `raw`, or `Err` with
    /// [`Form::expected`].
    pub(super) fn apply(&self, raw: &mut Raw, text: &str) -> Result<(), String> {
        let trimmed = text.trim();
        let stored = match *self {
            Set::SocketAddr(to) => trimmed.parse().ok().map(|v| to(raw, v)),
            Set::Ip(to) => trimmed.parse().ok().map(|v| to(raw, v)),
            Set::Urls(to) => values::url_list(text).ok().map(|v| to(raw, v)),
            Set::Duration { positive, to } => values::duration(text)
                .ok()
                .filter(|d| !(positive && d.is_zero()))
                .map(|v| to(raw, v)),
            Set::Number { min, max, to } => {
                values::number_in(text, min, max).ok().map(|v| to(raw, v))
            }
            Set::Word(words, to) => words.iter().find(|w| **w == trimmed).map(|w| to(raw, w)),
            Set::Dir(to) => (!trimmed.is_empty()).then(|| to(raw, PathBuf::from(text))),
            Set::Label(to) => is_label(trimmed).then(|| to(raw, trimmed.to_string())),
            Set::SendFault(to) => SendFault::parse(text).map(|v| to(raw, v)),
            Set::Url(to) => match values::url_list(trimmed).ok() {
                Some(mut urls) if urls.len() == 1 => urls.pop().map(|v| to(raw, v)),
                _ => None,
            },
            Set::Millis(to) => millis(trimmed).map(|v| to(raw, v)),
            Set::KeyValues(to) => key_values(trimmed).map(|v| to(raw, v)),
            Set::Ratio(to) => trimmed
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .map(|r| to(raw, (r * 1e6).round() as u32)),
            Set::Text(to) => is_text(trimmed).then(|| to(raw, trimmed.to_string())),
        };
        stored.ok_or_else(|| self.form().expected())
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set({:?})", self.form())
    }
}
