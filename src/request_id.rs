//! Request ids: `X-Request-Id` as `<sender ip>-<sequence>`, checked where it enters.
//!
//! The sender numbers its messages from 1 per process and sends
//! `X-Request-Id: <ip>-<n>`; retries of one message keep its id, so a sink that
//! logs an id twice has received that message twice. The relay passes a valid id
//! on and makes one (`<relay ip>-r<n>`) when a client sent none. Because an id
//! goes into log lines and headers, it is accepted only when short and made of
//! letters, digits and `.:_-`; anything else is replaced, never echoed.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// The header that carries the id.
pub const HEADER: &str = "X-Request-Id";

/// Longest id accepted.
const MAX_LEN: usize = 128;

/// Whether `id` may be used as it is.
pub fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'_' | b'-'))
}

/// Numbers ids for one process: `<ip>-<prefix><n>`, n from 1.
#[derive(Debug)]
pub struct IdSource {
    ip: IpAddr,
    prefix: &'static str,
    next: AtomicU64,
}

impl IdSource {
    /// Ids for messages this process originates (`prefix` is empty for the sender, `r` for the relay).
    pub fn new(ip: IpAddr, prefix: &'static str) -> IdSource {
        IdSource {
            ip,
            prefix,
            next: AtomicU64::new(1),
        }
    }

    /// The next id.
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}{n}", self.ip, self.prefix)
    }

    /// `given` if it is a valid id (borrowed), else a new one.
    pub fn keep_or_make<'a>(&self, given: Option<&'a str>) -> std::borrow::Cow<'a, str> {
        match given {
            Some(id) if is_valid(id) => std::borrow::Cow::Borrowed(id),
            _ => std::borrow::Cow::Owned(self.next_id()),
        }
    }
}

/// Splits `<sender ip>-<sequence>` into its parts; `None` for ids of another shape.
pub fn split(id: &str) -> Option<(&str, u64)> {
    let (sender, seq) = id.rsplit_once('-')?;
    Some((sender, seq.parse().ok()?))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn ids_count_from_one_per_source() {
        let ids = IdSource::new("10.0.0.7".parse().unwrap(), "");
        assert_eq!(ids.next_id(), "10.0.0.7-1");
        assert_eq!(ids.next_id(), "10.0.0.7-2");
        let relay = IdSource::new("fd00::2".parse().unwrap(), "r");
        assert_eq!(relay.next_id(), "fd00::2-r1");
    }

    #[test]
    fn only_safe_ids_are_kept() {
        let ids = IdSource::new("10.0.0.1".parse().unwrap(), "r");
        assert_eq!(
            ids.keep_or_make(Some("client-abc.42:x_y")),
            "client-abc.42:x_y"
        );
        assert_eq!(ids.keep_or_make(Some("bad id")), "10.0.0.1-r1");
        assert_eq!(ids.keep_or_make(Some("line\nbreak")), "10.0.0.1-r2");
        assert_eq!(ids.keep_or_make(Some(&"x".repeat(129))), "10.0.0.1-r3");
        assert_eq!(ids.keep_or_make(None), "10.0.0.1-r4");
    }

    #[test]
    fn split_finds_sender_and_sequence() {
        assert_eq!(split("10.0.0.7-12"), Some(("10.0.0.7", 12)));
        assert_eq!(split("fd00::2-3"), Some(("fd00::2", 3)));
        assert_eq!(split("10.0.0.1-r4"), None);
        assert_eq!(split("nodash"), None);
    }
}
