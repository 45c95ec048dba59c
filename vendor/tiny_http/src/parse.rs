//! The request head, parsed strictly (three-tier patch; RFC 9112 §2-§7).
//!
//! Every function here takes one complete line (without its LF) or the
//! parsed header list, and either accepts it or says which status to answer
//! and why. Nothing here does I/O, so each rule is a unit test. The rules are
//! the ones a request smuggler probes: one way to frame a body, one way to end
//! a line, digits only in `Content-Length`, no control characters anywhere, a
//! `Host` on every HTTP/1.1 request. Whatever is not clearly valid is refused
//! with a status, and the connection closes after it (see `conn.rs`).

use std::borrow::Cow;

use crate::common::{HTTPVersion, Method};
use crate::head::Fields;
use crate::scan;

mod chunk;
pub(crate) use chunk::chunk_size;

/// Longest request line accepted; longer gets 414.
pub(crate) const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Longest header line accepted; longer gets 431.
pub(crate) const MAX_HEADER_LINE: usize = 8 * 1024;
/// Most bytes of header lines in one request (line ends included); more gets 431.
pub(crate) const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header lines in one request; more gets 431.
pub(crate) const MAX_HEADERS: usize = 100;
/// Longest chunk-size line (size and extensions); longer gets 400.
pub(crate) const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes of trailer lines after the last chunk; more gets 400.
pub(crate) const MAX_TRAILER_BYTES: usize = 4 * 1024;

/// A request refused before the application saw it: the status to send and a
/// one-line reason for the body and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// The status code sent.
    pub status: u16,
    /// Why, in a few words.
    pub reason: &'static str,
}

pub(crate) const fn reject(status: u16, reason: &'static str) -> Rejection {
    Rejection { status, reason }
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes (saturated at `u64::MAX` when the digits overflow).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the headers say about the body and the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeadInfo {
    pub framing: Framing,
    /// The client asked to close after this request (or is HTTP/1.0 without keep-alive).
    pub close: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
}

/// A parsed request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestLine<'a> {
    pub method: Method,
    /// The request target in origin form (`/path?query`), or `*`; borrowed
    /// from the line unless an absolute form was reduced to its path.
    pub target: Cow<'a, str>,
    pub version: HTTPVersion,
}

/// `tchar` of RFC 9110 §5.6.2, as a table: every header name is checked.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// A header name, method or other `token`: one or more `tchar`.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|b| TCHAR[usize::from(*b)])
}

/// Header value bytes this server writes: visible ASCII, spaces and tabs
/// (no line break, which would let a value inject headers).
pub(crate) fn is_field_value(s: &[u8]) -> bool {
    scan::is_sent_field_value(s)
}

/// Header value bytes this server reads (RFC 9110 §5.5 field-content):
/// visible ASCII, spaces, tabs and obs-text (0x80-0xff, kept as opaque
/// bytes); no other control character.
fn is_received_field_value(s: &[u8]) -> bool {
    scan::is_received_field_value(s)
}

/// Whether `start`, the first bytes of a line that has not ended yet, can
/// still become a request line (or an empty line before one): a method's
/// token characters up to the first space. Anything else, such as the 0x16
/// that starts a TLS handshake sent to this HTTP port, is refused at once
/// instead of waiting for a line feed that never comes.
pub(crate) fn could_be_request_line(start: &[u8]) -> bool {
    match start {
        [] | [b'\r'] => true,
        _ => {
            // A method is short; looking further would make a slow line quadratic.
            let start = &start[..start.len().min(64)];
            let method = start.iter().position(|b| *b == b' ').unwrap_or(start.len());
            method > 0 && start[..method].iter().all(|b| TCHAR[usize::from(*b)])
        }
    }
}

/// Whether the line that `start` begins is a `HEAD` request, whether or not
/// the rest of it parses: its refusal then carries no body.
pub(crate) fn is_head(start: &[u8]) -> bool {
    start.starts_with(b"HEAD ")
}

/// Strips the CR that must end every line; a bare LF or a CR elsewhere is refused.
pub(crate) fn strip_cr(line: &[u8]) -> Result<&[u8], Rejection> {
    match line.split_last() {
        Some((b'\r', rest)) if !rest.contains(&b'\r') => Ok(rest),
        Some((b'\r', _)) => Err(reject(400, "CR inside a line")),
        _ => Err(reject(400, "line ended by a bare LF, not CRLF")),
    }
}

/// Parses `method SP request-target SP HTTP-version` (the CR already stripped).
pub(crate) fn request_line(line: &[u8]) -> Result<RequestLine<'_>, Rejection> {
    if line.iter().any(|b| b.is_ascii_control()) {
        return Err(reject(400, "control character in the request line"));
    }
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // "GET /" alone is HTTP/0.9, which has no headers and no status line.
        return Err(reject(400, "malformed request line"));
    };
    if !is_token(method) {
        return Err(reject(400, "malformed method"));
    }
    let version = http_version(version)?;
    let method = ascii(method)
        .parse::<Method>()
        .map_err(|_| reject(400, "malformed method"))?;
    if method == Method::Connect {
        // Its authority-form target is for proxies, which this server is not.
        return Err(reject(501, "CONNECT is not supported"));
    }
    let target = origin_form(target, &method)?;
    Ok(RequestLine {
        method,
        target,
        version,
    })
}

fn http_version(v: &[u8]) -> Result<HTTPVersion, Rejection> {
    match v {
        b"HTTP/1.1" => Ok(HTTPVersion(1, 1)),
        b"HTTP/1.0" => Ok(HTTPVersion(1, 0)),
        // HTTP/0.9 has no headers and no status line: nothing can be answered in it.
        b"HTTP/0.9" => Err(reject(400, "HTTP/0.9 is not supported")),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(reject(505, "only HTTP/1.0 and HTTP/1.1 are supported"))
        }
        _ => Err(reject(400, "malformed HTTP version")),
    }
}

/// The target as a path: origin form as sent, absolute form (`http://` or
/// `https://`) reduced to its path (RFC 9112 §3.2.2: a server must accept
/// it) unless its authority has userinfo (RFC 9110 §4.2.4: an error), `*`
/// for OPTIONS.
fn origin_form<'a>(target: &'a [u8], method: &Method) -> Result<Cow<'a, str>, Rejection> {
    let bad = || reject(400, "malformed request target");
    if !target.iter().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    let text = ascii(target);
    if text.starts_with('/') {
        return Ok(Cow::Borrowed(text));
    }
    if text == "*" && *method == Method::Options {
        return Ok(Cow::Borrowed(text));
    }
    let scheme = ["http://", "https://"].into_iter().find(|s| {
        text.get(..s.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(s))
    });
    if let Some(scheme) = scheme {
        let rest = &text[scheme.len()..];
        let path_at = rest.find(['/', '?']).unwrap_or(rest.len());
        if path_at == 0 {
            return Err(bad());
        }
        if rest[..path_at].contains('@') {
            return Err(reject(400, "userinfo in the request target"));
        }
        return Ok(match &rest[path_at..] {
            "" => Cow::Borrowed("/"),
            p if p.starts_with('?') => Cow::Owned(format!("/{p}")),
            p => Cow::Borrowed(p),
        });
    }
    Err(bad())
}

/// Parses one header line `name ":" OWS value OWS` (the CR already stripped)
/// into its name and its value without the whitespace around it.
pub(crate) fn header_line(line: &[u8]) -> Result<(&[u8], &[u8]), Rejection> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(reject(400, "folded header line (obs-fold)"));
    }
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or(reject(400, "header line without a colon"))?;
    let (name, raw) = (&line[..colon], &line[colon + 1..]);
    if !is_token(name) {
        return Err(reject(400, "malformed header name"));
    }
    if !is_received_field_value(raw) {
        return Err(reject(400, "control character in a header value"));
    }
    let value = trim_ows(raw);
    if name.eq_ignore_ascii_case(b"Content-Length") && !is_content_length(value) {
        return Err(reject(400, "Content-Length must be digits only"));
    }
    Ok((name, value))
}

/// [`strip_cr`] and then [`header_line`] in one pass over a line that
/// ends in its CR, for the common case: `Some` only when both would accept
/// the line with this same answer, `None` for anything else (an empty line,
/// or a line they refuse: call them for the reason).
pub(crate) fn header_line_quick(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let (b'\r', text) = line.split_last()? else {
        return None;
    };
    // The name: tchar up to the first byte that is not, which must be the
    // colon (a token has no colon, no whitespace and no CR).
    let colon = text.iter().position(|b| !TCHAR[usize::from(*b)])?;
    if colon == 0 || text[colon] != b':' {
        return None;
    }
    let (name, raw) = (&text[..colon], &text[colon + 1..]);
    // A value has no CR either, so the line has none but its last.
    if !is_received_field_value(raw) {
        return None;
    }
    let value = trim_ows(raw);
    if name.eq_ignore_ascii_case(b"Content-Length") && !is_content_length(value) {
        return None;
    }
    Some((name, value))
}

/// `Content-Length` is `1*DIGIT` (RFC 9110 §8.6): no sign, list or exponent;
/// leading zeros and the whitespace around the value (already trimmed) are
/// allowed.
fn is_content_length(value: &[u8]) -> bool {
    !value.is_empty() && value.iter().all(u8::is_ascii_digit)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn ascii(bytes: &[u8]) -> &str {
    // Callers checked the bytes are visible ASCII; anything else reads as empty.
    std::str::from_utf8(bytes).unwrap_or("")
}

/// The header fields that decide framing and persistence, gathered in one
/// pass: how many of each, and the first value.
#[derive(Default)]
struct Known<'a> {
    hosts: usize,
    host: Option<&'a [u8]>,
    lengths: usize,
    length: Option<&'a [u8]>,
    /// `Transfer-Encoding` lines, and their codings as one list (RFC 9110
    /// §5.3: several lines are one comma-separated list; empty elements are
    /// ignored, §5.6.1).
    encodings: usize,
    codings: Codings,
    /// Whether some `Connection` option was `close`, or `keep-alive`.
    close: bool,
    keep_alive: bool,
    /// Whether some `Expect` was `100-continue`, or something else.
    expect_continue: bool,
    expect_other: bool,
}

impl<'a> Known<'a> {
    fn of(fields: &'a Fields) -> Known<'a> {
        let mut known = Known::default();
        for (name, value) in fields.iter_bytes() {
            let is = |other: &str| name.eq_ignore_ascii_case(other.as_bytes());
            let first = |slot: &mut Option<&'a [u8]>| {
                slot.get_or_insert(value);
            };
            match name.len() {
                4 if is("Host") => {
                    known.hosts += 1;
                    first(&mut known.host);
                }
                14 if is("Content-Length") => {
                    known.lengths += 1;
                    first(&mut known.length);
                }
                17 if is("Transfer-Encoding") => {
                    known.encodings += 1;
                    for coding in ascii(value).split(',').map(str::trim) {
                        known.codings.add(coding);
                    }
                }
                10 if is("Connection") => {
                    for option in ascii(value).split(',').map(str::trim) {
                        known.close |= option.eq_ignore_ascii_case("close");
                        known.keep_alive |= option.eq_ignore_ascii_case("keep-alive");
                    }
                }
                6 if is("Expect") => {
                    if ascii(value).eq_ignore_ascii_case("100-continue") {
                        known.expect_continue = true;
                    } else {
                        known.expect_other = true;
                    }
                }
                _ => {}
            }
        }
        known
    }
}

/// Decides framing, persistence and `Expect` from the whole header list.
pub(crate) fn head_info(version: HTTPVersion, fields: &Fields) -> Result<HeadInfo, Rejection> {
    let known = Known::of(fields);
    if known.hosts > 1 || (known.hosts == 0 && version == HTTPVersion(1, 1)) {
        return Err(reject(
            400,
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    if known
        .host
        .is_some_and(|h| h.iter().any(|b| matches!(b, b' ' | b',' | b'\t' | b'/')))
    {
        return Err(reject(400, "malformed Host header"));
    }
    let framing = framing(version, &known)?;
    let close = if version == HTTPVersion(1, 0) {
        known.close || !known.keep_alive
    } else {
        known.close
    };
    if known.expect_other {
        return Err(reject(417, "only Expect: 100-continue is supported"));
    }
    Ok(HeadInfo {
        framing,
        close,
        // RFC 9110 §10.1.1: no `100 Continue` to an HTTP/1.0 client.
        expect_continue: known.expect_continue && version == HTTPVersion(1, 1),
    })
}

fn framing(version: HTTPVersion, known: &Known<'_>) -> Result<Framing, Rejection> {
    match (known.lengths, known.encodings) {
        (0, 0) => Ok(Framing::Empty),
        (1.., 1..) => Err(reject(
            400,
            "Content-Length together with Transfer-Encoding",
        )),
        (1, 0) => {
            let digits = known.length.map_or("", ascii);
            // Checked as digits by header_line; more than fit in a u64 saturate
            // and are refused as too large by the application.
            let n = digits.parse::<u64>().unwrap_or(u64::MAX);
            Ok(if n == 0 {
                Framing::Empty
            } else {
                Framing::Length(n)
            })
        }
        (_, 0) => Err(reject(400, "repeated Content-Length")),
        (0, _) if version == HTTPVersion(1, 0) => {
            Err(reject(400, "Transfer-Encoding in an HTTP/1.0 request"))
        }
        (0, _) => known.codings.framing(),
    }
}

/// The transfer codings of a request, in order, as far as framing needs them.
#[derive(Default)]
struct Codings {
    /// How many codings were named.
    count: usize,
    /// How many of them were `chunked`.
    chunked: usize,
    /// Whether the last one was `chunked`.
    last_chunked: bool,
}

impl Codings {
    fn add(&mut self, coding: &str) {
        if coding.is_empty() {
            return;
        }
        let chunked = coding.eq_ignore_ascii_case("chunked");
        self.count += 1;
        self.chunked += usize::from(chunked);
        self.last_chunked = chunked;
    }

    /// RFC 9112 §6.1 and §6.3: the body is chunked only if `chunked` is the
    /// final coding, applied once; another final coding leaves its length
    /// unknown (400); other codings before it are not supported (501).
    fn framing(&self) -> Result<Framing, Rejection> {
        if self.count == 0 {
            return Err(reject(400, "Transfer-Encoding names no coding"));
        }
        if !self.last_chunked {
            return Err(reject(400, "Transfer-Encoding does not end in chunked"));
        }
        if self.chunked > 1 {
            return Err(reject(400, "chunked applied more than once"));
        }
        if self.count > 1 {
            return Err(reject(501, "only Transfer-Encoding: chunked is supported"));
        }
        Ok(Framing::Chunked)
    }
}

#[cfg(test)]
mod test;
