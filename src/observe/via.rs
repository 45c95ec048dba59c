//! `Via`: the relays a message has passed, so that a relay sees a message come back to it.
//!
//! A relay whose `SINK_URL` reaches itself (directly, or through another
//! relay) would forward each message to itself until its connections ran
//! out. So every relay names itself in `Via` (RFC 9110 §7.6.3) as it
//! forwards, `1.1 relay-<16 hex digits>`, a pseudonym drawn at random when
//! the process starts (so two relays on one host, or a restarted one, never
//! share it), after whatever `Via` it received. A relay that finds its own
//! pseudonym in a message's `Via` has seen the message before: it answers
//! `508 Loop Detected` at once, without recording, forwarding or meeting a
//! fault, and counts it (`three_tier_messages_looped_total`).

/// The header.
pub const HEADER: &str = "Via";

/// This relay's hop in `Via`.
#[derive(Debug, Clone)]
pub struct Hop {
    /// `relay-<16 hex digits>`.
    pseudonym: String,
}

impl Hop {
    /// A hop with a new random pseudonym.
    pub fn new() -> Hop {
        Hop {
            pseudonym: format!("relay-{:016x}", crate::random::random_nonzero()),
        }
    }

    /// Whether `via` (a received `Via` value) names this relay.
    pub fn is_in(&self, via: &str) -> bool {
        via.split(',').any(|entry| {
            let mut parts = entry.split_whitespace();
            parts.next().is_some() && parts.next() == Some(self.pseudonym.as_str())
        })
    }

    /// The `Via` to send on: `received`, then this relay.
    pub fn after(&self, received: Option<&str>) -> String {
        match received.map(str::trim).filter(|v| !v.is_empty()) {
            Some(before) => format!("{before}, 1.1 {}", self.pseudonym),
            None => format!("1.1 {}", self.pseudonym),
        }
    }
}

impl Default for Hop {
    fn default() -> Hop {
        Hop::new()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_relay_finds_itself_and_only_itself() {
        let (one, two) = (Hop::new(), Hop::new());
        assert_ne!(one.pseudonym, two.pseudonym);
        let first = one.after(None);
        assert!(first.starts_with("1.1 relay-") && first.len() == 4 + 6 + 16);
        assert!(one.is_in(&first) && !two.is_in(&first));
        let second = two.after(Some(&first));
        assert_eq!(second, format!("{first}, 1.1 {}", two.pseudonym));
        assert!(one.is_in(&second) && two.is_in(&second));
        assert_eq!(
            one.after(Some("HTTP/1.0 nginx ")),
            format!("HTTP/1.0 nginx, 1.1 {}", one.pseudonym)
        );
        // The pseudonym must be a whole received-by, not a part of one or a comment.
        let part = format!("1.1 {}x, 1.0 p ({})", one.pseudonym, one.pseudonym);
        assert!(!one.is_in(&part));
    }
}
