//! A chunked body's size lines (RFC 9112 §7.1), parsed strictly: hex digits,
//! then extensions that are checked against the grammar and dropped.

use super::{ascii, reject, Rejection, TCHAR};

/// Parses a chunk-size line `1*HEXDIG [chunk-ext]` (the CR already stripped).
pub(crate) fn chunk_size(line: &[u8]) -> Result<u64, Rejection> {
    let bad = || reject(400, "malformed chunk size");
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad());
    }
    if !is_chunk_ext(&line[digits..]) {
        return Err(reject(400, "malformed chunk extension"));
    }
    let hex = ascii(&line[..digits]).trim_start_matches('0');
    if hex.len() > 16 {
        return Err(reject(400, "chunk size too large"));
    }
    if hex.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(hex, 16).map_err(|_| bad())
}

/// RFC 9112 §7.1.1: `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS
/// chunk-ext-val ] )`, a name a token, a value a token or a quoted-string.
/// Checked, not kept: no extension means anything here.
fn is_chunk_ext(mut ext: &[u8]) -> bool {
    let bws = |s: &mut &[u8]| {
        while let [b' ' | b'\t', rest @ ..] = *s {
            *s = rest;
        }
    };
    let token = |s: &mut &[u8]| {
        let n = s.iter().take_while(|b| TCHAR[usize::from(**b)]).count();
        *s = &s[n..];
        n > 0
    };
    loop {
        // Whitespace only before a `;` (RFC 9112 §7.1: `a \r\n` is refused).
        let before = ext;
        bws(&mut ext);
        let Some(rest) = ext.strip_prefix(b";") else {
            return before.is_empty();
        };
        ext = rest;
        bws(&mut ext);
        if !token(&mut ext) {
            return false;
        }
        let mut after = ext;
        bws(&mut after);
        let Some(rest) = after.strip_prefix(b"=") else {
            continue;
        };
        ext = rest;
        bws(&mut ext);
        if !(token(&mut ext) || quoted_string(&mut ext)) {
            return false;
        }
    }
}

/// Consumes a quoted-string (`"` then qdtext or quoted-pairs, then `"`).
fn quoted_string(s: &mut &[u8]) -> bool {
    let [b'"', rest @ ..] = *s else {
        return false;
    };
    let mut at = 0;
    while let Some(&b) = rest.get(at) {
        match b {
            b'"' => {
                *s = &rest[at + 1..];
                return true;
            }
            b'\\' => match rest.get(at + 1) {
                Some(&c) if c == b'\t' || c >= 0x20 && c != 0x7f => at += 2,
                _ => return false,
            },
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => at += 1,
            _ => return false,
        }
    }
    false
}
