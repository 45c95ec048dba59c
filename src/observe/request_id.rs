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
    /// `<ip>-<prefix>`, written once.
    head: String,
    next: AtomicU64,
}

impl IdSource {
    /// Ids for messages this process originates (`prefix` is empty for the sender, `r` for the relay).
    pub fn new(ip: IpAddr, prefix: &'static str) -> IdSource {
        IdSource {
            head: format!("{ip}-{prefix}"),
            next: AtomicU64::new(1),
        }
    }

    /// The next id (its number written by hand: no formatting machinery per message).
    pub fn next_id(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut id = String::with_capacity(self.head.len() + 20);
        id.push_str(&self.head);
        crate::format::push_decimal(&mut id, n);
        id
    }

    /// `given` if it is a valid id (borrowed), else a new one.
    pub fn keep_or_make<'a>(&self, given: Option<&'a str>) -> std::borrow::Cow<'a, str> {
        match given {
            Some(id) if is_valid(id) => std::borrow::Cow::Borrowed(id),
            _ => std::borrow::Cow::Owned(self.next_id()),
        }
    }
}

/// The highest sequence number a loss report counts: 2^53 - 1, the largest
/// integer every JSON reader keeps exactly; a sender sending 1,000 messages a
/// second reaches it after 285,000 years. An id beyond it was not made by a
/// sender, and expanding it into gaps would be meaningless.
pub const MAX_SEQUENCE: u64 = (1 << 53) - 1;

/// Splits an id a sender makes, `<sender ip>-<sequence>`, into its parts:
/// an IP address, then a sequence number from 1 to [`MAX_SEQUENCE`] in
/// plain decimal; `None` for an id of any other form.
pub fn sender_sequence(id: &str) -> Option<(&str, u64)> {
    let (sender, seq) = id.rsplit_once('-')?;
    Some((sender, sequence(sender, seq)?))
}

/// Whether `id` is of the form a relay or a sink makes (`<ip>-r<n>`, `<ip>-s<n>`).
pub fn is_made_by_a_tier(id: &str) -> bool {
    let Some((ip, seq)) = id.rsplit_once('-') else {
        return false;
    };
    let Some(n) = seq.strip_prefix('r').or_else(|| seq.strip_prefix('s')) else {
        return false;
    };
    sequence(ip, n).is_some()
}

/// `seq` as a sequence number, if `ip` is an IP address and `seq` a number
/// from 1 to [`MAX_SEQUENCE`] without sign or leading zero.
fn sequence(ip: &str, seq: &str) -> Option<u64> {
    ip.parse::<IpAddr>().ok()?;
    let digits = !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit());
    if !digits || seq.starts_with('0') {
        return None;
    }
    seq.parse().ok().filter(|n| *n <= MAX_SEQUENCE)
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
        let mut big = String::new();
        crate::format::push_decimal(&mut big, u64::MAX);
        crate::format::push_decimal(&mut big, 0);
        assert_eq!(big, "184467440737095516150");
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
    fn only_the_forms_the_tiers_make_are_split() {
        assert_eq!(sender_sequence("10.0.0.7-12"), Some(("10.0.0.7", 12)));
        assert_eq!(sender_sequence("fd00::2-3"), Some(("fd00::2", 3)));
        let max = format!("10.0.0.7-{MAX_SEQUENCE}");
        assert_eq!(sender_sequence(&max), Some(("10.0.0.7", MAX_SEQUENCE)));
        for other in [
            "10.0.0.1-r4",
            "nodash",
            "client-abc-5",
            "10.0.0.7-0",
            "10.0.0.7-007",
            "10.0.0.7-+7",
            "10.0.0.7-9007199254740992",
            "127.0.0.9-18446744073709551615",
        ] {
            assert_eq!(sender_sequence(other), None, "{other}");
        }
        assert!(is_made_by_a_tier("10.0.0.1-r4") && is_made_by_a_tier("fd00::2-s1"));
        for other in [
            "10.0.0.1-4",
            "x-r4",
            "10.0.0.1-r",
            "10.0.0.1-r0",
            "10.0.0.1-t4",
        ] {
            assert!(!is_made_by_a_tier(other), "{other}");
        }
    }
}
