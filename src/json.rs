//! The crate's JSON encoder: strings and nulls, for the log lines of `LOG_FORMAT=json` and the flow page's `/flow`.
//!
//! The objects the tiers write are small and fixed, so they are written field
//! by field; only strings need care. The tests check the output with a real
//! parser (serde_json), control characters, quotes and U+2028/U+2029 included.

use std::fmt::Write as _;

/// Appends `value` as a JSON string, or `null`.
pub fn json_opt(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => json_string(out, v),
        None => out.push_str("null"),
    }
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters
/// escaped (and U+2028/U+2029, which some JavaScript readers take for line
/// ends); the runs between them are copied whole.
pub fn json_string(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        let width = match bytes[at] {
            b'"' | b'\\' | 0x00..=0x1f | 0x7f => 1,
            // U+2028 and U+2029 in UTF-8: E2 80 A8 and E2 80 A9.
            0xe2 if bytes.get(at + 1) == Some(&0x80)
                && matches!(bytes.get(at + 2), Some(0xa8 | 0xa9)) =>
            {
                3
            }
            _ => {
                at += 1;
                continue;
            }
        };
        // `at` is an ASCII byte or a character's first byte: a boundary.
        out.push_str(&s[copied..at]);
        escape(out, &s[at..at + width]);
        at += width;
        copied = at;
    }
    out.push_str(&s[copied..]);
    out.push('"');
}

/// One character `c` (as text) of [`json_string`]'s that needs escaping.
fn escape(out: &mut String, c: &str) {
    match c {
        "\"" => out.push_str("\\\""),
        "\\" => out.push_str("\\\\"),
        "\n" => out.push_str("\\n"),
        "\r" => out.push_str("\\r"),
        "\t" => out.push_str("\\t"),
        _ => {
            let code = c.chars().next().map_or(0, u32::from);
            let _ = write!(out, "\\u{code:04x}");
        }
    }
}
