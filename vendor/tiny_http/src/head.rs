//! A request's target and header fields, as received, in one buffer reused per connection (three-tier patch).
//!
//! Upstream kept each header as two `AsciiString`s, two allocations per
//! field and request, and could not hold a value with bytes above 0x7f at
//! all. Here the request target and every field's name and value are copied
//! once into one buffer and looked up as ranges of it. The connection keeps
//! the buffer between requests (the [`crate::Request`] hands it back when it
//! is done), so a kept-alive connection parses heads without allocating.
//! Names are tokens and compare case-insensitively; values are bytes,
//! already trimmed of optional whitespace.

use std::fmt;
use std::ops::Range;

/// The target and header fields of one request.
#[derive(Default, Clone)]
pub struct Fields {
    buf: Vec<u8>,
    target: Range<usize>,
    /// Name and value ranges of each field, in the order received.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl Fields {
    /// Empties the fields for the next request, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.target = 0..0;
        self.spans.clear();
    }

    /// Sets the request target (callers check it is visible ASCII).
    pub(crate) fn set_target(&mut self, target: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(target);
        self.target = start..self.buf.len();
    }

    /// Appends a field whose name and value were checked by the parser.
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        let name = start..self.buf.len();
        self.buf.extend_from_slice(value);
        let value = name.end..self.buf.len();
        self.spans.push((name, value));
    }

    /// The request target, as received (origin form, or `*`).
    pub fn target(&self) -> &str {
        std::str::from_utf8(&self.buf[self.target.clone()]).unwrap_or("")
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Every field as `(name, value)`, in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.iter_bytes()
            .map(|(name, value)| (std::str::from_utf8(name).unwrap_or(""), value))
    }

    /// Every field as `(name, value)` bytes, in the order received (names
    /// are tokens, so no check that they are text is needed).
    pub(crate) fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans
            .iter()
            .map(|(name, value)| (&self.buf[name.clone()], &self.buf[value.clone()]))
    }

    /// Every value of the field `name` (any case), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter_bytes()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The first value of the field `name` (any case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        let (_, value) = self
            .spans
            .iter()
            .find(|(n, _)| self.buf[n.clone()].eq_ignore_ascii_case(name.as_bytes()))?;
        Some(&self.buf[value.clone()])
    }

    /// The first value of each of `names` (any case), in one pass over the
    /// fields: for a handler that wants several, cheaper than a [`Fields::get`]
    /// each (three-tier.5).
    pub fn first_of<const N: usize>(&self, names: &[&str; N]) -> [Option<&[u8]>; N] {
        let mut found = [None; N];
        for (name, value) in self.iter_bytes() {
            let wanted = names
                .iter()
                .position(|w| name.eq_ignore_ascii_case(w.as_bytes()));
            if let Some(slot) = wanted.and_then(|i| found.get_mut(i)) {
                slot.get_or_insert(value);
            }
        }
        found
    }

    /// The first value of `name` as text, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// How many fields named `name` (any case) there are.
    pub fn count(&self, name: &str) -> usize {
        let matches = |(n, _): &&(Range<usize>, Range<usize>)| {
            self.buf[n.clone()].eq_ignore_ascii_case(name.as_bytes())
        };
        self.spans.iter().filter(matches).count()
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.iter() {
            list.entry(&(name, String::from_utf8_lossy(value)));
        }
        list.finish()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn first_of_gives_each_names_first_value_as_get_does() {
        let mut f = Fields::default();
        f.push(b"Host", b"relay-svc");
        f.push(b"x-request-id", b"a-1");
        f.push(b"X-Request-Id", b"a-2");
        f.push(b"Via", b"1.1 relay");
        let names = ["X-Request-Id", "traceparent", "VIA", "Host"];
        let found = f.first_of(&names);
        assert_eq!(found, names.map(|n| f.get(n)));
        assert_eq!(found[0], Some(&b"a-1"[..]));
        assert_eq!(found[1], None);
    }

    #[test]
    fn fields_keep_order_and_match_names_in_any_case() {
        let mut f = Fields::default();
        f.set_target(b"/relay.php?x=1");
        f.push(b"Host", b"relay-svc");
        f.push(b"X-Test", "D\u{fc}sseldorf".as_bytes());
        f.push(b"x-test", b"two");
        assert_eq!(f.target(), "/relay.php?x=1");
        assert_eq!(f.get("host"), Some(&b"relay-svc"[..]));
        assert_eq!(f.get_str("X-TEST"), Some("D\u{fc}sseldorf"));
        assert_eq!(
            f.all("X-Test").collect::<Vec<_>>(),
            ["D\u{fc}sseldorf".as_bytes(), b"two"]
        );
        assert_eq!((f.count("x-test"), f.len()), (2, 3));
        let capacity = f.buf.capacity();
        f.clear();
        assert!(f.is_empty() && f.target().is_empty() && f.get("Host").is_none());
        assert_eq!(
            f.buf.capacity(),
            capacity,
            "the memory is kept for the next request"
        );
    }
}
