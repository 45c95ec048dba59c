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

/// Appends `s` as a JSON string: quotes, backslashes and control characters escaped.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
