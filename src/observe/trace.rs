//! W3C Trace Context: the `traceparent` a message carries from the sender to the sink.
//!
//! The sender starts a trace per message (version `00`, a random 16-byte
//! trace id, a random 8-byte parent id, the sampled flag set); the relay
//! keeps the trace and sends the sink a parent id of its own hop, with the
//! client's `tracestate` as it came; a valid incoming `traceparent` is kept,
//! an invalid one replaced by a new trace (and counted), a missing one
//! started. Every log line about the message carries its trace id, so a
//! tracing back end or a mesh that speaks Trace Context can join the three
//! tiers' lines by the same id as `X-Request-Id` does. Ids come from a
//! generator per thread seeded by the kernel (see [`crate::random`]): unique
//! and unpredictable enough for ids, with no syscall per message.

use crate::random::random_nonzero;

/// The request header that carries the trace.
pub const TRACEPARENT: &str = "traceparent";
/// The vendor header passed along unchanged.
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` passed on (the spec's 32 members of at most 256 bytes
/// would be 8 KiB; 512 bytes is what the spec asks every vendor to keep).
const MAX_TRACESTATE: usize = 512;

/// One hop's `traceparent`: the trace it belongs to and the caller's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

/// A trace id as text: 32 lower-case hex digits.
pub type TraceIdText = [u8; 32];

impl TraceParent {
    /// A new trace: random ids, sampled.
    pub fn start() -> TraceParent {
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&random_nonzero().to_be_bytes());
        trace_id[8..].copy_from_slice(&random_nonzero().to_be_bytes());
        TraceParent {
            trace_id,
            parent_id: random_nonzero().to_be_bytes(),
            flags: 0x01,
        }
    }

    /// The same trace with a parent id of this hop, for the next tier.
    pub fn next_hop(self) -> TraceParent {
        TraceParent {
            parent_id: random_nonzero().to_be_bytes(),
            ..self
        }
    }

    /// The same trace with `parent_id` as the caller's span.
    pub fn with_parent(self, parent_id: [u8; 8]) -> TraceParent {
        TraceParent { parent_id, ..self }
    }

    /// The same trace with its sampled flag set as `sampled` says.
    pub fn with_sampled(self, sampled: bool) -> TraceParent {
        TraceParent {
            flags: if sampled {
                self.flags | 1
            } else {
                self.flags & !1
            },
            ..self
        }
    }

    /// Whether the caller sampled the trace (the flag's low bit).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id's bytes.
    pub fn trace_id_bytes(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The caller's span id.
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// A `traceparent` header value, if it is one of version `00` (or a
    /// later version read as `00` asks), with ids that are not all zero.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let v = value.trim_matches([' ', '\t']).as_bytes();
        let later_version = v.len() > 55 && v[55] == b'-' && &v[..2] != b"00";
        if !(v.len() == 55 || later_version) || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
            return None;
        }
        let version = hex::<1>(&v[..2])?;
        if version == [0xff] {
            return None;
        }
        let trace_id = hex::<16>(&v[3..35]).filter(|id| id != &[0; 16])?;
        let parent_id = hex::<8>(&v[36..52]).filter(|id| id != &[0; 8])?;
        let [flags] = hex::<1>(&v[53..55])?;
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The header value, version `00`.
    pub fn header(&self) -> String {
        let mut out = String::with_capacity(55);
        out.push_str("00-");
        push_hex(&mut out, &self.trace_id);
        out.push('-');
        push_hex(&mut out, &self.parent_id);
        out.push('-');
        push_hex(&mut out, &[self.flags]);
        out
    }

    /// The trace id as 32 hex digits.
    pub fn trace_id(&self) -> TraceIdText {
        let mut out = [0; 32];
        for (i, b) in self.trace_id.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }
}

/// The trace id text as a `&str`.
pub fn as_str(id: &TraceIdText) -> &str {
    // Hex digits only: always UTF-8.
    std::str::from_utf8(id).unwrap_or_default()
}

/// A `tracestate` value that may be passed on as it came: at most 512 bytes
/// of visible ASCII, spaces, commas and tabs (its members are not checked).
pub fn tracestate_to_pass(value: &str) -> Option<&str> {
    let ok = !value.is_empty()
        && value.len() <= MAX_TRACESTATE
        && value
            .bytes()
            .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    ok.then_some(value)
}

/// Whether `text` is a trace id as written: 32 lower-case hex digits, not all zero.
pub fn is_trace_id(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && text.bytes().any(|b| b != b'0')
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `bytes` as lower-case hex to `out` (ids as OTLP's JSON writes them).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// `N` bytes from `2 * N` lower-case hex digits (the spec allows no upper case).
fn hex<const N: usize>(digits: &[u8]) -> Option<[u8; N]> {
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    // A lowercase hex digit's value, or 16 and up for anything else: one
    // lookup a digit and one test at the end (every message has a trace).
    let mut bad = 0;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (NIBBLE[usize::from(pair[0])], NIBBLE[usize::from(pair[1])]);
        bad |= high | low;
        *byte = high << 4 | (low & 0xf);
    }
    (bad < 16).then_some(out)
}

/// Each byte's value as a lowercase hex digit; 16 for a byte that is not one.
const NIBBLE: [u8; 256] = {
    let mut table = [16; 256];
    let mut d = 0;
    while d < 16 {
        table[b"0123456789abcdef"[d] as usize] = d as u8;
        d += 1;
    }
    table
};

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn the_specs_example_reads_and_writes_back() {
        let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let parent = TraceParent::parse(value).unwrap();
        assert_eq!(parent.header(), value);
        assert_eq!(
            as_str(&parent.trace_id()),
            "0af7651916cd43dd8448eb211c80319c"
        );
        let next = parent.next_hop();
        assert_eq!(next.trace_id(), parent.trace_id());
        assert_ne!(next.header(), value, "a new parent id for the next hop");
        assert!(next.header().ends_with("-01"));
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",
            "00-0af7651916cd43dd8448eb211c8031xx-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        // A later version may carry more after its flags.
        let later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more";
        assert!(TraceParent::parse(later).is_some());
    }

    #[test]
    fn every_pair_of_bytes_decodes_as_lowercase_hex_or_not_at_all() {
        let digit = |d: u8| (d as char).to_digit(16).filter(|_| !d.is_ascii_uppercase());
        for high in 0..=255u8 {
            for low in 0..=255u8 {
                let plain = digit(high)
                    .zip(digit(low))
                    .map(|(h, l)| [(h * 16 + l) as u8]);
                assert_eq!(hex::<1>(&[high, low]), plain, "{high:#x} {low:#x}");
            }
        }
        assert_eq!(hex::<1>(b"abc"), None, "a length other than 2 N");
    }

    #[test]
    fn new_traces_are_distinct_valid_and_sampled() {
        let ids: std::collections::HashSet<_> =
            (0..1000).map(|_| TraceParent::start().trace_id()).collect();
        assert_eq!(ids.len(), 1000);
        let started = TraceParent::start();
        assert_eq!(TraceParent::parse(&started.header()), Some(started));
        assert!(is_trace_id(as_str(&started.trace_id())));
        assert!(started.header().ends_with("-01"));
    }

    #[test]
    fn tracestate_is_passed_on_only_when_safe() {
        assert_eq!(
            tracestate_to_pass("congo=t61rcWkgMzE"),
            Some("congo=t61rcWkgMzE")
        );
        assert_eq!(tracestate_to_pass("a=1\r\nX-Evil: 1"), None);
        assert_eq!(tracestate_to_pass(&"a".repeat(513)), None);
        assert_eq!(tracestate_to_pass(""), None);
    }
}
