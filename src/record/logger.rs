//! Log lines: one event per line on stdout, flushed, as text or JSON, and the seed's message files.
//!
//! In the default text format, message lines keep the seed's own texts
//! (`Relaying from …`, `From …`, `********  Sending …`), so the case study
//! still reads true; a line about one message ends with a tab and
//! `request_id=<id>`, after `\ttrace_id=<trace id>` when it has one (an escaped message never holds a tab, so the split is
//! unambiguous). With `LOG_FORMAT=json` each line is one JSON object with `ts`
//! (RFC 3339), `level`, `tier`, `event`, `request_id`, `trace_id`, `peer`, `status`,
//! `duration_ms` and `message`. A message line is a record: with `LOG_DIR` set
//! it is appended, always as text, to `LOG_DIR/Relay_<ip>.txt` or
//! `LOG_DIR/Sink_<ip>.txt` as the seed's PHP pages did (see
//! [`crate::record::log_dir`]), and only once it is there is it echoed on stdout;
//! without `LOG_DIR`, stdout is the record. Either way [`Logger::record`] says
//! whether the record was written, so that no tier acknowledges a message it
//! did not record, and [`Logger::ready`] whether it works (a failing record
//! makes the tier not ready until a probe finds it working again). The file
//! is opened at start-up, so a directory that cannot be written is a
//! configuration error, not a lost message. Stdout never holds a message: a
//! line it cannot take within a short bound (nothing reads it) is dropped and
//! counted, and where stdout is the record the message is not acknowledged.

mod json_line;
mod stdout;

use std::cell::RefCell;
use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use stdout::Stdout;

use crate::config::LogFormat;
use crate::error::Error;
use crate::record::log_dir::{RecordFile, Rotation};
use crate::record::message::{push_request_id, push_trace_id, Record, Verb};
use crate::role::Role;

/// Severity of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something failed and was handled.
    Warn,
}

/// What an event's text line says.
#[derive(Debug, Clone, Copy)]
enum Line<'a> {
    /// This text, as it is.
    Plain(&'a str),
    /// A message's record line (see [`crate::record::message::Record`]).
    Record {
        verb: Verb,
        peer: Option<IpAddr>,
        message: &'a str,
    },
}

/// One thing that happened, with what is known about it.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    level: Level,
    event: &'static str,
    line: Line<'a>,
    request_id: Option<&'a str>,
    trace_id: Option<&'a str>,
    peer: Option<IpAddr>,
    status: Option<u16>,
    duration: Option<Duration>,
    message: Option<&'a str>,
}

impl<'a> Event<'a> {
    /// An event named `event` whose text line is `text`.
    pub fn new(event: &'static str, text: &'a str) -> Event<'a> {
        Event::with_line(event, Line::Plain(text))
    }

    /// The record of a message that tier `verb` has from `peer` (none for
    /// the sender's own), named for the tier's event (`sending`, `relaying`,
    /// `logged`), with its peer and message as fields.
    pub fn record(verb: Verb, peer: Option<IpAddr>, message: &'a str) -> Event<'a> {
        let line = Line::Record {
            verb,
            peer,
            message,
        };
        let mut event = Event::with_line(verb.event(), line).message(message);
        event.peer = peer;
        event
    }

    fn with_line(event: &'static str, line: Line<'a>) -> Event<'a> {
        Event {
            level: Level::Info,
            event,
            line,
            request_id: None,
            trace_id: None,
            peer: None,
            status: None,
            duration: None,
            message: None,
        }
    }

    /// Marks the event as a handled failure.
    pub fn warn(mut self) -> Self {
        self.level = Level::Warn;
        self
    }

    /// The message's request id.
    pub fn request_id(mut self, id: &'a str) -> Self {
        self.request_id = Some(id);
        self
    }

    /// The message's trace id (32 hex digits, see [`crate::observe::trace`]).
    pub fn trace_id(mut self, id: &'a str) -> Self {
        self.trace_id = Some(id);
        self
    }

    /// The client's address.
    pub fn peer(mut self, ip: IpAddr) -> Self {
        self.peer = Some(ip);
        self
    }

    /// The HTTP status involved.
    pub fn status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// How long it took.
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = Some(d);
        self
    }

    /// The message text itself (JSON's `message`; the text line already shows it escaped).
    pub fn message(mut self, m: &'a str) -> Self {
        self.message = Some(m);
        self
    }

    /// Appends the text line, without the request id, to `out`.
    fn text_into(&self, out: &mut String) {
        match self.line {
            Line::Plain(text) => out.push_str(text),
            Line::Record {
                verb,
                peer,
                message,
            } => Record::write(out, verb, peer, message),
        }
    }

    /// Appends the text line and its `\trequest_id=` suffix to `out`.
    fn text_line_into(&self, out: &mut String) {
        self.text_into(out);
        if let Some(id) = self.trace_id {
            push_trace_id(out, id);
        }
        if let Some(id) = self.request_id {
            push_request_id(out, id);
        }
    }

    /// The text line, without the request id, as a string of its own.
    fn text(&self) -> std::borrow::Cow<'a, str> {
        match self.line {
            Line::Plain(text) => std::borrow::Cow::Borrowed(text),
            Line::Record { .. } => {
                let mut out = String::new();
                self.text_into(&mut out);
                std::borrow::Cow::Owned(out)
            }
        }
    }
}

/// Runs `f` with an empty string kept per thread for building lines, so a
/// line allocates nothing once the buffer has grown; a nested call (a line
/// written while another is built) gets a fresh one.
fn with_line_buffer<T>(f: impl FnOnce(&mut String) -> T) -> T {
    thread_local! {
        static LINE: RefCell<String> = const { RefCell::new(String::new()) };
    }
    LINE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            f(&mut line)
        }
        Err(_) => f(&mut String::new()),
    })
}

/// Writes log lines for one tier.
#[derive(Debug)]
pub struct Logger {
    role: Role,
    format: LogFormat,
    file: Option<RecordFile>,
    stdout: Stdout,
    /// The last record failed; the tier is not ready until one works again.
    failing: AtomicBool,
    /// Messages not recorded.
    record_failures: AtomicU64,
}

impl Logger {
    /// A logger for `role`; with `log_dir`, opens `<dir>/<Prefix>_<ip>.txt` for
    /// appending (flushing each line to disk when `fsync`).
    pub fn new(
        role: Role,
        log_dir: Option<&Path>,
        ip: IpAddr,
        format: LogFormat,
        fsync: bool,
    ) -> Result<Logger, Error> {
        let file = match log_dir {
            None => None,
            Some(dir) => {
                let path = dir.join(format!("{}_{}.txt", role.log_file_prefix(), ip));
                let file = RecordFile::open(path.clone(), fsync).map_err(|e| {
                    Error::config(
                        "LOG_DIR",
                        &dir.display().to_string(),
                        format!("a directory this user can write ({}: {e})", path.display()),
                    )
                })?;
                Some(file)
            }
        };
        Ok(Logger {
            role,
            format,
            file,
            stdout: Stdout::open(),
            failing: AtomicBool::new(false),
            record_failures: AtomicU64::new(0),
        })
    }

    /// Messages that could not be recorded, so far.
    pub fn record_failures(&self) -> u64 {
        self.record_failures.load(Ordering::Relaxed)
    }

    /// Stdout lines dropped because nothing read them, so far.
    pub fn stdout_dropped(&self) -> u64 {
        self.stdout.dropped.load(Ordering::Relaxed)
    }

    /// Whether messages can be recorded: yes unless the last record failed
    /// and it still cannot be written (the file is probed, or stdout, when
    /// it is the record, checked for room).
    pub fn ready(&self) -> bool {
        if !self.failing.load(Ordering::Relaxed) {
            return true;
        }
        let works = match &self.file {
            Some(file) => file.probe().is_ok(),
            None => self.stdout.writable(),
        };
        if works && self.failing.swap(false, Ordering::Relaxed) {
            self.event("record_ok", "the record can be written again: ready");
        }
        works
    }

    /// Writes a plain event line named `event` (no request, no fields) to stdout.
    pub fn event(&self, event: &'static str, line: &str) {
        self.log(&Event::new(event, line));
    }

    /// Writes `event` to stdout in the configured format.
    pub fn log(&self, event: &Event) {
        // A closed stdout must not take a request down with it.
        let _ = self.write_stdout(event);
    }

    fn write_stdout(&self, event: &Event) -> io::Result<()> {
        with_line_buffer(|line| {
            self.format_into(event, line);
            self.stdout.write(line.as_bytes())
        })
    }

    /// Appends `event` as a stdout line, with its newline, to `out`.
    fn format_into(&self, event: &Event, out: &mut String) {
        match self.format {
            LogFormat::Text => event.text_line_into(out),
            LogFormat::Json => json_line::json_into(self.role, event, out),
        }
        out.push('\n');
    }

    /// Records a message event: with `LOG_DIR`, appends its text line to the
    /// file, then shows it on stdout; without, writes it to stdout, which is
    /// then the record. `Err` means the message was not recorded, and stdout
    /// says so instead of showing the seed's line. The text line is built
    /// once: the file and a text stdout get the same bytes.
    pub fn record(&self, event: &Event) -> io::Result<()> {
        let result = with_line_buffer(|line| {
            let Some(file) = &self.file else {
                self.format_into(event, line);
                return self.stdout.write(line.as_bytes()).map(|()| Rotation::None);
            };
            event.text_line_into(line);
            line.push('\n');
            let appended = file.append(line.as_bytes()).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot append to {}: {e}", file.path().display()),
                )
            })?;
            if self.format == LogFormat::Json {
                line.clear();
                self.format_into(event, line);
            }
            let _ = self.stdout.write(line.as_bytes());
            Ok(appended)
        });
        match result {
            Ok(rotation) => {
                self.rotated(rotation);
                if self.failing.swap(false, Ordering::Relaxed) {
                    self.event("record_ok", "the record can be written again: ready");
                }
                Ok(())
            }
            Err(e) => {
                self.record_failures.fetch_add(1, Ordering::Relaxed);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    let text = format!("the record cannot be written ({e}): messages are answered 503 and /readyz 503 until it can");
                    self.log(&Event::new("record_failed", &text).warn());
                }
                let text = format!("message not logged: {e}: {}", event.text());
                let mut failed = Event::new("not_logged", &text).warn();
                failed.request_id = event.request_id;
                failed.trace_id = event.trace_id;
                failed.message = event.message;
                self.log(&failed);
                Err(e)
            }
        }
    }

    /// Says that the record file was followed to a new one, or could not be.
    fn rotated(&self, rotation: Rotation) {
        let Some(file) = &self.file else { return };
        let path = file.path().display();
        match rotation {
            Rotation::None => {}
            Rotation::Followed => self.event(
                "reopened",
                &format!("reopened {path}: the path named another file or none (rotated)"),
            ),
            Rotation::Failed(e) => self.log(
                &Event::new(
                    "reopen_failed",
                    &format!("cannot reopen {path}, writing on to the old file: {e}"),
                )
                .warn(),
            ),
            Rotation::Recreated => self.log(
                &Event::new(
                    "reopened",
                    &format!("{path} had been deleted: created it again"),
                )
                .warn(),
            ),
        }
    }

    /// Reopens the `LOG_DIR` file at its path (SIGHUP, after log rotation) and says so.
    pub fn reopen(&self) {
        let Some(file) = &self.file else {
            self.event("reopened", "received SIGHUP: no LOG_DIR file to reopen");
            return;
        };
        let path = file.path().display();
        match file.reopen() {
            Ok(()) => self.event("reopened", &format!("received SIGHUP: reopened {path}")),
            Err(e) => self.log(
                &Event::new(
                    "reopen_failed",
                    &format!(
                        "received SIGHUP: cannot reopen {path}, writing on to the old file: {e}"
                    ),
                )
                .warn(),
            ),
        }
    }

    #[cfg(test)]
    fn json(&self, e: &Event) -> String {
        let mut out = String::new();
        json_line::json_into(self.role, e, &mut out);
        out
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn ip() -> IpAddr {
        "10.1.2.3".parse().unwrap()
    }

    #[test]
    fn message_lines_are_appended_to_the_seed_file_name_with_the_request_id() {
        let dir = std::env::temp_dir().join(format!("three-tier-logger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let logger = Logger::new(Role::Sink, Some(&dir), ip(), LogFormat::Json, false).unwrap();
        logger
            .record(&Event::new("logged", "From 1.2.3.4 at x : one").request_id("a-1"))
            .unwrap();
        logger
            .record(&Event::new("logged", "From 1.2.3.4 at x : two"))
            .unwrap();
        let text = std::fs::read_to_string(dir.join("Sink_10.1.2.3.txt")).unwrap();
        assert_eq!(
            text,
            "From 1.2.3.4 at x : one\trequest_id=a-1\nFrom 1.2.3.4 at x : two\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unwritable_log_dir_is_a_config_error() {
        let missing = Path::new("/nonexistent/three-tier");
        let err =
            Logger::new(Role::Relay, Some(missing), ip(), LogFormat::Text, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let text = err.to_string();
        assert!(text.starts_with(r#"config: LOG_DIR="/nonexistent/three-tier" is invalid: expected a directory this user can write (/nonexistent/three-tier/Relay_10.1.2.3.txt: "#), "{text}");
    }

    #[test]
    fn json_has_every_field_and_escapes_everything() {
        let logger = Logger::new(Role::Relay, None, ip(), LogFormat::Json, false).unwrap();
        let line = logger.json(
            &Event::new("relaying", "ignored")
                .warn()
                .request_id("10.0.0.1-3")
                .trace_id("0af7651916cd43dd8448eb211c80319c")
                .peer(ip())
                .status(502)
                .duration(Duration::from_micros(1500))
                .message("q\"b\\c\nd\u{1}e\u{2028}é"),
        );
        assert!(line.starts_with("{\"ts\":\""), "{line}");
        assert!(line.ends_with(
            "\"level\":\"warn\",\"tier\":\"relay\",\"event\":\"relaying\",\"request_id\":\"10.0.0.1-3\",\"trace_id\":\"0af7651916cd43dd8448eb211c80319c\",\"peer\":\"10.1.2.3\",\"status\":502,\"duration_ms\":1.500,\"message\":\"q\\\"b\\\\c\\nd\\u0001e\\u2028é\"}"
        ), "{line}");
        let plain = logger.json(&Event::new("event", "listening on x"));
        assert!(plain.ends_with("\"request_id\":null,\"trace_id\":null,\"peer\":null,\"status\":null,\"duration_ms\":null,\"message\":\"listening on x\"}"), "{plain}");
    }
}
