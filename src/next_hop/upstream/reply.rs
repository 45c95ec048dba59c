//! What a post to the next tier ends with: the answer as received, or why there was none.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ureq_proto::http::{HeaderMap, HeaderName};

use crate::observe::metrics::FailureReason;

/// The next tier's answer.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    /// Its HTTP status.
    pub status: u16,
    /// Its body (at most 64 KiB, lossily decoded as UTF-8).
    pub body: String,
    /// The URL that answered.
    pub url: Arc<str>,
    /// Its headers, as received (see [`UpstreamReply::header`]).
    pub headers: HeaderMap,
    /// The address that answered.
    pub addr: IpAddr,
    /// Addresses that refused a connection, or answered 503, before this
    /// one answered (failover).
    pub refused: Vec<IpAddr>,
    /// The headers of each 503 failed over from (what they said, such as
    /// the fault they met).
    pub refused_headers: Vec<HeaderMap>,
}

impl UpstreamReply {
    /// The value of header `name` (any case), if the next tier sent it and
    /// it is a safe id (see [`crate::observe::request_id::is_valid`]): these values
    /// go into log lines and headers of our own.
    pub fn header(&self, name: &HeaderName) -> Option<&str> {
        self.header_where(name, crate::observe::request_id::is_valid)
    }

    /// Header `name`'s value if `valid` says it is safe to pass on and print.
    pub fn header_where(&self, name: &HeaderName, valid: fn(&str) -> bool) -> Option<&str> {
        let value = self.headers.get(name)?.to_str().ok()?;
        valid(value).then_some(value)
    }

    /// Every safe value of header `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.header_values_where(name, crate::observe::request_id::is_valid)
    }

    /// Every value of header `name` that `valid` says is safe, in order.
    pub fn header_values_where<'a>(
        &'a self,
        name: &'a HeaderName,
        valid: fn(&str) -> bool,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(move |v| valid(v))
    }

    /// The faults met (`X-Fault-Met`, see [`crate::observe::fault`]): by the pods
    /// failed over from first, then by the one that answered.
    pub fn faults_met(&self) -> impl Iterator<Item = &str> {
        let met = &crate::observe::lineage::names::FAULT_MET;
        let refused = self
            .refused_headers
            .iter()
            .flat_map(move |h| h.get_all(met));
        refused
            .chain(self.headers.get_all(met))
            .filter_map(|v| v.to_str().ok())
            .filter(|v| crate::observe::fault::is_met(v))
    }
}

/// Why a post to the next tier failed, every address tried: the hop's
/// failure vocabulary (one address's is [`crate::client::ExchangeFailure`]).
/// The relay answers these 502 or 504, the sender retries them, and
/// [`PostError::reason`] is their metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// No connection could be made to any URL; nothing was sent.
    Unreachable {
        /// One "url: reason" per attempt.
        attempts: Vec<String>,
        /// The addresses that refused.
        refused: Vec<IpAddr>,
    },
    /// The hop's timeout ran out.
    Timeout {
        /// The URL being tried.
        url: String,
        /// The timeout.
        after: Duration,
        /// The address being tried, if one was.
        addr: Option<IpAddr>,
    },
    /// The exchange failed after connecting; the message may have arrived.
    Failed {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
        /// The address that failed.
        addr: IpAddr,
    },
}

impl PostError {
    /// The addresses that failed: refused, timed out or broke.
    pub fn failed_addrs(&self) -> Vec<IpAddr> {
        match self {
            PostError::Unreachable { refused, .. } => refused.clone(),
            PostError::Timeout { addr, .. } => addr.iter().copied().collect(),
            PostError::Failed { addr, .. } => vec![*addr],
        }
    }

    /// The metric label for this failure.
    pub fn reason(&self) -> FailureReason {
        match self {
            PostError::Unreachable { .. } => FailureReason::Refused,
            PostError::Timeout { .. } => FailureReason::Timeout,
            PostError::Failed { .. } => FailureReason::Broken,
        }
    }
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Unreachable { attempts, .. } => {
                write!(f, "unreachable: {}", attempts.join("; "))
            }
            PostError::Timeout { url, after, .. } => {
                write!(f, "{url}: timed out after {}ms", after.as_millis())
            }
            PostError::Failed { url, reason, .. } => write!(f, "{url}: {reason}"),
        }
    }
}
