//! Makes any message safe to write as exactly one log line.
//!
//! A message is arbitrary UTF-8 from the network. Control characters (C0, DEL,
//! C1), the Unicode line and paragraph separators and the backslash itself are
//! written as escapes, so one message is always one line and an escape in the
//! log cannot be confused with the same characters typed by a sender.

use std::borrow::Cow;
use std::fmt::Write;

/// Escapes `message` for a one-line log entry; borrows when nothing needs escaping.
pub fn escape_message(message: &str) -> Cow<'_, str> {
    if !message.chars().any(needs_escape) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len() + 8);
    escape_into(&mut out, message);
    Cow::Owned(out)
}

/// Appends `message`, escaped for a one-line log entry, to `out`. Runs of
/// characters that need nothing are copied whole: a message that ends in a
/// line break costs one escape, not a pass character by character.
pub fn escape_into(out: &mut String, message: &str) {
    let bytes = message.as_bytes();
    let (mut run, mut at) = (0, 0);
    while at < bytes.len() {
        let b = bytes[at];
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            at += 1;
            continue;
        }
        // `at` is on a character's first byte: ASCII moves one byte at a time.
        let c = message[at..].chars().next().unwrap_or_default();
        if b >= 0x80 && !needs_escape(c) {
            at += c.len_utf8();
            continue;
        }
        out.push_str(&message[run..at]);
        escape_char(out, c);
        at += c.len_utf8();
        run = at;
    }
    out.push_str(&message[run..]);
}

/// Appends the escape of `c`, a character that needs one.
fn escape_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

#[cfg(test)]
mod test {
    use super::escape_message;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let m = "Message sent from 10.0.0.1 on Tue, 24 Nov 2026 23:48:17 GMT";
        assert!(matches!(escape_message(m), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escape_message("héllo “quoted” 🚀"), "héllo “quoted” 🚀");
    }

    #[test]
    fn line_breaks_and_controls_are_escaped() {
        assert_eq!(escape_message("a\nb\r\nc\td"), "a\\nb\\r\\nc\\td");
        assert_eq!(
            escape_message("bell\u{7}esc\u{1b}[31m"),
            "bell\\u{7}esc\\u{1b}[31m"
        );
        assert_eq!(escape_message("del\u{7f}nel\u{85}"), "del\\u{7f}nel\\u{85}");
        assert_eq!(
            escape_message("ls\u{2028}ps\u{2029}"),
            "ls\\u{2028}ps\\u{2029}"
        );
        assert_eq!(escape_message("nul\0"), "nul\\u{0}");
    }

    #[test]
    fn backslash_is_escaped_so_escapes_are_unambiguous() {
        assert_eq!(escape_message("C:\\n"), "C:\\\\n");
        assert_ne!(escape_message("a\\nb"), escape_message("a\nb"));
    }

    #[test]
    fn output_never_holds_a_line_break() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let escaped = escape_message(&all);
        assert!(!escaped.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}', '\u{b}', '\u{c}']));
    }
}
