//! A message, its answer, and the one line that records it: written here for every tier, parsed here for every reader.
//!
//! A [`Message`] is what a relay or a sink takes in, a [`Reply`] what it
//! answers, [`MessageHandler`] what each of them does with one (inside the
//! envelope of [`crate::http::envelope`]). The record line keeps the seed's texts:
//!
//! ```text
//! ********  Sending Message sent from 10.0.0.1 on Tue, 24 Nov 2026 23:48:17 GMT<TAB>request_id=10.0.0.1-7
//! Relaying from 10.0.0.1 at Tue, 24 Nov 2026 23:48:17 GMT : Message sent from …<TAB>request_id=10.0.0.1-7
//! From 10.0.1.2 at Tue, 24 Nov 2026 23:48:17 GMT : Message sent from …<TAB>request_id=10.0.0.1-7
//! ```
//!
//! The message is escaped (see [`crate::escape`]), so one message is one
//! line, and a line about a message ends with a tab (`<TAB>` above) and `request_id=<id>`,
//! which no escaped message holds. [`Record`] writes such a line and reads
//! one back (with the `[sink-1] ` prefix that `scripts/run-local.sh` adds,
//! and in the JSON form of `LOG_FORMAT=json`): the loss report, the tests and
//! the scripts read records through it, and nothing else knows the format.

use std::borrow::Cow;
use std::io;
use std::net::IpAddr;

use crate::escape::escape_into;
use crate::format::{with_http_date, with_ip_text};
use crate::observe::trace::{is_trace_id, TraceParent};
use crate::role::Role;

/// A message: a POST to any path but the reserved ones, its body read and checked.
///
/// It borrows its body and request id from a buffer the connection's thread
/// keeps, so a message costs no allocation of its own.
#[derive(Debug)]
pub struct Message<'a> {
    /// The client's IP address.
    pub peer: IpAddr,
    /// The body, valid UTF-8, never empty.
    pub body: &'a str,
    /// The `X-Request-Id` header as received (when it is UTF-8), unchecked.
    pub request_id: Option<&'a str>,
    /// The `traceparent` header as received (when it is UTF-8), unchecked.
    pub traceparent: Option<&'a str>,
    /// The `tracestate` header as received (when it is UTF-8), unchecked.
    pub tracestate: Option<&'a str>,
    /// The `X-Fault` header as received (when it is UTF-8), unchecked.
    pub fault: Option<&'a str>,
    /// The (first) `Via` header as received (when it is UTF-8), unchecked.
    pub via: Option<&'a str>,
    /// The request's path, without its query.
    pub path: &'a str,
}

/// What the envelope has done for a message before its handler runs.
#[derive(Debug)]
pub struct Stamped<'f> {
    /// The message's request id (the client's if valid, else a new one).
    pub id: &'f str,
    /// Its trace (the client's if valid, else a new one).
    pub trace: TraceParent,
    /// This tier's span of the message (the next hop's parent when no attempt has its own).
    pub span_id: [u8; 8],
    /// The trace's id as text, as its record carries it.
    pub trace_id: &'f str,
    /// Whether its record was written.
    pub recorded: &'f io::Result<()>,
}

/// What a tier answers; it may borrow from the message and the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    /// HTTP status code.
    pub status: u16,
    /// Plain-text body.
    pub body: Cow<'a, str>,
    /// Extra headers.
    pub headers: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Reply<'a> {
    /// A plain-text reply.
    pub fn text(status: u16, body: impl Into<Cow<'a, str>>) -> Reply<'a> {
        Reply {
            status,
            body: body.into(),
            headers: Vec::with_capacity(8),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<Cow<'a, str>>) -> Reply<'a> {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a relay or a sink does with a message, inside the envelope that every
/// message gets (see [`crate::http::envelope`]): the envelope has given it its request
/// id and trace and tried to write its record ([`Stamped`]), and adds the
/// tier's own lineage headers and `X-Request-Id` to whatever it answers.
pub trait MessageHandler: Send + Sync + 'static {
    /// Handles `message` as `stamped`, and says what to answer.
    fn handle<'a>(&'a self, message: &Message<'a>, stamped: &Stamped) -> Reply<'a>;

    /// What to answer at once, before the message is recorded or meets a
    /// fault, if it must not be handled at all (a relay's loop, see
    /// [`crate::observe::via`]); `id` is its request id.
    fn refuse(&self, message: &Message, id: &str) -> Option<Reply<'static>> {
        let _ = (message, id);
        None
    }
}

/// Pages a tier serves to `GET` besides the probes and `/metrics` (the sender's flow page).
pub trait Pages: Send + Sync + 'static {
    /// The page at `path` (without the query), or `None` for 404.
    fn page(&self, path: &str) -> Option<Reply<'_>>;
}

/// The seed's verb of a record line: which tier wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// The sender: `********  Sending <message>`.
    Sending,
    /// The relay: `Relaying from <peer> at <date> : <message>`.
    Relaying,
    /// The sink: `From <peer> at <date> : <message>`.
    From,
}

impl Verb {
    const ALL: [Verb; 3] = [Verb::Sending, Verb::Relaying, Verb::From];

    /// How a line of this verb starts.
    pub fn prefix(self) -> &'static str {
        match self {
            Verb::Sending => "********  Sending ",
            Verb::Relaying => "Relaying from ",
            Verb::From => "From ",
        }
    }

    /// The tier that writes this verb's records.
    pub fn role(self) -> Role {
        match self {
            Verb::Sending => Role::Sender,
            Verb::Relaying => Role::Relay,
            Verb::From => Role::Sink,
        }
    }

    /// The event name of this verb's records (JSON's `event`).
    pub fn event(self) -> &'static str {
        match self {
            Verb::Sending => "sending",
            Verb::Relaying => "relaying",
            Verb::From => "logged",
        }
    }
}

/// What follows the text of every line about a message, before its id.
const ID_SUFFIX: &str = "\trequest_id=";
/// What follows the text of a line about a message, before its trace id
/// (which comes before the request id, so that a reader that knows only the
/// request id still finds it at the end).
const TRACE_SUFFIX: &str = "\ttrace_id=";

/// Appends the `\trequest_id=<id>` that ends a line about message `id`.
pub fn push_request_id(out: &mut String, id: &str) {
    out.push_str(ID_SUFFIX);
    out.push_str(id);
}

/// Appends the `\ttrace_id=<trace id>` that comes before a line's request id.
pub fn push_trace_id(out: &mut String, trace_id: &str) {
    out.push_str(TRACE_SUFFIX);
    out.push_str(trace_id);
}

/// The trace id a line carries, if any (a `\ttrace_id=` before its request id).
pub fn trace_id_of(line: &str) -> Option<&str> {
    let text = line.rsplit_once(ID_SUFFIX).map_or(line, |(text, _)| text);
    text.rsplit_once(TRACE_SUFFIX)
        .map(|(_, id)| id)
        .filter(|id| is_trace_id(id))
}

/// The request id a line ends with, if any (a `\trequest_id=` suffix).
pub fn request_id_of(line: &str) -> Option<&str> {
    line.rsplit_once(ID_SUFFIX).map(|(_, id)| id)
}

/// A line without the `\ttrace_id=` and `\trequest_id=` it ends with, if it has them.
pub fn without_ids(line: &str) -> &str {
    let text = line.rsplit_once(ID_SUFFIX).map_or(line, |(text, _)| text);
    match text.rsplit_once(TRACE_SUFFIX) {
        Some((text, id)) if is_trace_id(id) => text,
        _ => text,
    }
}

/// A line without the `[tier] ` prefix that `scripts/run-local.sh` adds.
pub fn without_tier_prefix(line: &str) -> &str {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .map_or(line, |(_, rest)| rest)
}

/// Why a line is not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRecord {
    /// Another line (`listening on`, lineage, …).
    Other,
    /// It starts as a record and is not a whole one; the reason.
    Damaged(&'static str),
}

/// One record line, as written or read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Which tier wrote it.
    pub verb: Verb,
    /// The client the tier had the message from (relay and sink records).
    pub peer: Option<IpAddr>,
    /// When the tier recorded it, an HTTP date (relay and sink records).
    pub date: Option<&'a str>,
    /// The message as the line holds it: escaped as [`crate::escape`] does in a text line, JSON-escaped in JSON.
    pub message: Cow<'a, str>,
    /// Its request id.
    pub request_id: &'a str,
    /// Its trace id, if the line has one (lines written before traces have none).
    pub trace_id: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// Appends the record line of `message` (as received, escaped here) to
    /// `out`, without its request id; `peer` for a relay's or a sink's, which
    /// also carry the current HTTP date.
    pub fn write(out: &mut String, verb: Verb, peer: Option<IpAddr>, message: &str) {
        out.push_str(verb.prefix());
        if let Some(peer) = peer {
            with_ip_text(peer, |ip| out.push_str(ip));
            out.push_str(" at ");
            with_http_date(|date| out.push_str(date));
            out.push_str(" : ");
        }
        escape_into(out, message);
    }

    /// The record a text line holds, of whichever tier (a `[tier] ` prefix allowed).
    pub fn parse(line: &'a str) -> Result<Record<'a>, NotRecord> {
        let bare = without_tier_prefix(line);
        let verb = Verb::ALL
            .into_iter()
            .find(|v| bare.starts_with(v.prefix()))
            .ok_or(NotRecord::Other)?;
        Record::parse_as(line, verb)
    }

    /// The record of `verb`'s tier a text line holds; any other line is [`NotRecord::Other`].
    pub fn parse_as(line: &'a str, verb: Verb) -> Result<Record<'a>, NotRecord> {
        const NO_ID: NotRecord = NotRecord::Damaged("a message line without its request id");
        let line = without_tier_prefix(line);
        let rest = line.strip_prefix(verb.prefix()).ok_or(NotRecord::Other)?;
        let (text, request_id) = match rest.rsplit_once(ID_SUFFIX) {
            Some((text, id)) if crate::observe::request_id::is_valid(id) => (text, id),
            _ => return Err(NO_ID),
        };
        let (text, trace_id) = match text.rsplit_once(TRACE_SUFFIX) {
            Some((text, id)) if is_trace_id(id) => (text, Some(id)),
            _ => (text, None),
        };
        let (peer, date, message) = match verb {
            Verb::Sending => (None, None, text),
            _ => {
                let (peer, date, message) = peer_date_message(text).ok_or(NO_ID)?;
                (Some(peer), Some(date), message)
            }
        };
        Ok(Record {
            verb,
            peer,
            date,
            message: Cow::Borrowed(message),
            request_id,
            trace_id,
        })
    }

    /// The record a `LOG_FORMAT=json` line holds, of the tier that writes
    /// `verb`'s records (the fields the logger writes: `tier`, `event`,
    /// `request_id`, `trace_id`, `peer`, `message`).
    pub fn parse_json(line: &'a str, verb: Verb) -> Result<Record<'a>, NotRecord> {
        let line = without_tier_prefix(line);
        let (tier, event) = (verb.role().name(), verb.event());
        let field = |name: &str| json_field(line, name);
        if !line.starts_with('{') || field("tier") != Some(tier) || field("event") != Some(event) {
            return Err(NotRecord::Other);
        }
        let request_id = field("request_id")
            .filter(|id| crate::observe::request_id::is_valid(id))
            .ok_or(NotRecord::Damaged("a logged message without a request id"))?;
        Ok(Record {
            verb,
            peer: field("peer").and_then(|p| p.parse().ok()),
            date: None,
            message: Cow::Borrowed(field("message").unwrap_or_default()),
            request_id,
            trace_id: field("trace_id").filter(|id| is_trace_id(id)),
        })
    }

    /// Whether a second record of `verb` starts inside `line` after its
    /// start: a record whose write was cut short, with the next one glued to
    /// it. (A message that quotes a record prefix reads so too, which errs on
    /// the safe side.)
    pub fn is_glued(line: &str, verb: Verb) -> bool {
        let line = without_tier_prefix(line);
        let prefix = verb.prefix();
        line.match_indices(prefix)
            .any(|(i, _)| i > 0 && peer_date_message(&line[i + prefix.len()..]).is_some())
    }
}

/// The text of string field `name` in a JSON line, still JSON-escaped.
fn json_field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (_, rest) = line.split_once(&format!("\"{name}\":\""))?;
    let mut escaped = false;
    let end = rest.char_indices().find(|&(_, c)| {
        let closes = c == '"' && !escaped;
        escaped = c == '\\' && !escaped;
        closes
    })?;
    Some(&rest[..end.0])
}

/// `<peer> at <HTTP date> : <message>`, the part of a relay's or a sink's record after its verb.
fn peer_date_message(rest: &str) -> Option<(IpAddr, &str, &str)> {
    let (ip, rest) = rest.split_once(" at ")?;
    let peer = ip.parse::<IpAddr>().ok()?;
    let date = rest
        .get(..29)
        .filter(|d| httpdate::parse_http_date(d).is_ok())?;
    let message = rest.get(29..)?.strip_prefix(" : ")?;
    Some((peer, date, message))
}

#[cfg(test)]
mod test {
    use super::*;

    fn written(verb: Verb, peer: Option<&str>, message: &str, id: &str) -> String {
        let mut line = String::new();
        Record::write(&mut line, verb, peer.map(|p| p.parse().unwrap()), message);
        push_request_id(&mut line, id);
        line
    }

    #[test]
    fn every_tier_writes_the_seeds_line_and_reads_it_back() {
        let sent = written(
            Verb::Sending,
            None,
            "Message sent from 10.0.0.1 on x",
            "10.0.0.1-7",
        );
        assert_eq!(
            sent,
            "********  Sending Message sent from 10.0.0.1 on x\trequest_id=10.0.0.1-7"
        );
        let relayed = written(
            Verb::Relaying,
            Some("10.0.0.1"),
            "hello\nthere",
            "10.0.0.1-7",
        );
        assert!(
            relayed.starts_with("Relaying from 10.0.0.1 at "),
            "{relayed}"
        );
        assert!(
            relayed.ends_with(" GMT : hello\\nthere\trequest_id=10.0.0.1-7"),
            "{relayed}"
        );
        let logged = written(Verb::From, Some("fd00::2"), "hi", "fd00::1-3");
        for (line, verb) in [
            (&sent, Verb::Sending),
            (&relayed, Verb::Relaying),
            (&logged, Verb::From),
        ] {
            let record = Record::parse(line).unwrap();
            assert_eq!(record.verb, verb, "{line}");
            assert_eq!(Some(record.request_id), request_id_of(line));
        }
        let logged = Record::parse(&logged).unwrap();
        assert_eq!(logged.peer, Some("fd00::2".parse().unwrap()));
        assert_eq!(logged.message, "hi");
        assert!(httpdate::parse_http_date(logged.date.unwrap()).is_ok());
        let prefixed = format!(
            "[sink-1] {}",
            written(Verb::From, Some("10.0.1.1"), "m", "a-1")
        );
        assert_eq!(Record::parse(&prefixed).unwrap().verb, Verb::From);
    }

    #[test]
    fn other_lines_and_damaged_records_are_told_apart() {
        assert_eq!(
            Record::parse("listening on [::]:8080"),
            Err(NotRecord::Other)
        );
        assert_eq!(Record::parse("10.0.0.1-7 -> relay 10.0.1.1 -> sink 10.0.2.1 200 in 1.0 ms\trequest_id=10.0.0.1-7"), Err(NotRecord::Other));
        assert!(matches!(
            Record::parse("From 10.0.0.1 at x : m"),
            Err(NotRecord::Damaged(_))
        ));
        assert_eq!(
            Record::parse_as("From 10.0.0.1 at x : m", Verb::Relaying),
            Err(NotRecord::Other)
        );
        assert!(matches!(
            Record::parse("From nowhere at Tue, 24 Nov 2026 23:48:17 GMT : m\trequest_id=a-1"),
            Err(NotRecord::Damaged(_))
        ));
        let one = written(Verb::From, Some("10.0.0.1"), "cut sho", "a-1");
        let (torn, _) = one.split_once('\t').unwrap();
        let glued = format!(
            "{torn}{}",
            written(Verb::From, Some("10.0.0.1"), "next", "a-2")
        );
        assert!(Record::is_glued(&glued, Verb::From));
        assert!(!Record::is_glued(&one, Verb::From));
    }

    #[test]
    fn json_lines_are_read_as_records_of_their_tier() {
        let line = r#"{"ts":"2026-11-25T00:20:55.614Z","level":"info","tier":"sink","event":"logged","request_id":"127.0.0.1-2","peer":"127.0.0.1","status":null,"duration_ms":null,"message":"Message sent"}"#;
        let record = Record::parse_json(line, Verb::From).unwrap();
        assert_eq!(
            (record.request_id, record.peer),
            ("127.0.0.1-2", Some("127.0.0.1".parse().unwrap()))
        );
        let quoted = line.replace("Message sent", r#"say \"hi\" \\"#);
        assert_eq!(
            Record::parse_json(&quoted, Verb::From).unwrap().message,
            r#"say \"hi\" \\"#
        );
        assert_eq!(
            Record::parse_json(line, Verb::Relaying),
            Err(NotRecord::Other)
        );
        let no_id = line.replace(r#""request_id":"127.0.0.1-2""#, r#""request_id":null"#);
        assert!(matches!(
            Record::parse_json(&no_id, Verb::From),
            Err(NotRecord::Damaged(_))
        ));
    }
}
