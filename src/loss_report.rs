//! Loss accounting from the sink logs alone: per sender, received, duplicates and gaps.
//!
//! `sink --loss-report [FILE ...]` reads sink log lines (the `LOG_DIR` files,
//! or stdout as saved from `kubectl logs`, in text or JSON, with or without a
//! `[sink-1] ` prefix as `scripts/run-local.sh` adds) from the files or stdin.
//! Every sender numbers its messages 1, 2, 3 … in `X-Request-Id: <ip>-<n>`, and a
//! retry keeps the number, so per sender a number seen twice is a duplicate and a
//! number below the highest one seen but never seen is a gap: a message the
//! sender gave up on. Delivery is at least once, so duplicates are reported
//! but allowed; gaps are not. The report is meant for the day something went
//! wrong, so it reads damaged input too: a line that is not valid UTF-8, a
//! message line without its request id, or in a `LOG_DIR` file any line that
//! is not a whole record (a torn line after a full disk, say) is counted and
//! named by file and line number, and the rest is still counted. Exit codes:
//! 0 nothing missing and nothing damaged, 1 gaps or damaged lines, 2 a file
//! that cannot be read.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};

use crate::request_id;
use crate::Error;

/// Per-sender tallies.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SenderTally {
    /// How often each sequence number was logged.
    pub seen: BTreeMap<u64, u64>,
}

impl SenderTally {
    /// Messages logged, duplicates included.
    pub fn received(&self) -> u64 {
        self.seen.values().sum()
    }

    /// Sequence numbers logged more than once.
    pub fn duplicates(&self) -> Vec<u64> {
        self.seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Sequence numbers from 1 to the highest seen that were never logged.
    pub fn gaps(&self) -> Vec<u64> {
        let max = self.seen.keys().next_back().copied().unwrap_or(0);
        (1..=max).filter(|s| !self.seen.contains_key(s)).collect()
    }
}

/// A line that is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damaged {
    /// The file (`-` for standard input).
    pub source: String,
    /// Its line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// What the sink logs say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// By sender ip.
    pub senders: BTreeMap<String, SenderTally>,
    /// Messages logged with an id that a sender did not make (from a relay or sink, or none).
    pub untracked: u64,
    /// Lines that are not valid records, in order.
    pub damaged: Vec<Damaged>,
}

/// What one line is.
#[derive(Debug, PartialEq, Eq)]
enum Kind<'a> {
    /// A sink's record of a message, with its request id.
    Record(&'a str),
    /// Something that should have been a record and is not.
    Broken(&'static str),
    /// A torn line with the next record glued to its end: the record counts, the line is damaged.
    Glued(&'a str),
    /// Another line of a saved stdout (`listening on`, lineage, …).
    Other,
}

impl Report {
    /// Reads sink log lines; `strict` for a `LOG_DIR` file, in which every line must be a record.
    pub fn add_line(&mut self, source: &str, number: usize, bytes: &[u8], strict: bool) {
        let kind = match std::str::from_utf8(bytes) {
            Err(_) => Kind::Broken("not valid UTF-8"),
            Ok(line) => match classify(line) {
                Kind::Other if strict => Kind::Broken("not a whole sink record"),
                kind => kind,
            },
        };
        match kind {
            Kind::Other => {}
            Kind::Broken(reason) => self.damage(source, number, reason),
            Kind::Glued(id) => {
                self.damage(
                    source,
                    number,
                    "a torn line with the next record glued to it",
                );
                self.count(id);
            }
            Kind::Record(id) => self.count(id),
        }
    }

    fn damage(&mut self, source: &str, line: usize, reason: &'static str) {
        self.damaged.push(Damaged {
            source: source.to_string(),
            line,
            reason,
        });
    }

    fn count(&mut self, id: &str) {
        match request_id::split(id) {
            Some((sender, seq)) => {
                *self
                    .senders
                    .entry(sender.to_string())
                    .or_default()
                    .seen
                    .entry(seq)
                    .or_default() += 1;
            }
            None => self.untracked += 1,
        }
    }

    /// Reads the lines of a saved stdout (not strict).
    pub fn from_lines<I: IntoIterator<Item = String>>(lines: I) -> Report {
        let mut report = Report::default();
        for (i, line) in lines.into_iter().enumerate() {
            report.add_line("-", i + 1, line.as_bytes(), false);
        }
        report
    }

    /// Nothing missing (no gaps) and nothing damaged; duplicates are allowed.
    pub fn is_complete(&self) -> bool {
        self.damaged.is_empty() && self.senders.values().all(|t| t.gaps().is_empty())
    }
}

/// What a line of sink output is, in text or JSON.
fn classify(line: &str) -> Kind<'_> {
    let line = match line.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map_or(line, |(_, l)| l),
        None => line,
    };
    if line.starts_with('{') {
        if !line.contains(r#""tier":"sink""#) || !line.contains(r#""event":"logged""#) {
            return Kind::Other;
        }
        return match line
            .split_once(r#""request_id":""#)
            .and_then(|(_, rest)| rest.split_once('"'))
        {
            Some((id, _)) if request_id::is_valid(id) => Kind::Record(id),
            _ => Kind::Broken("a logged message without a request id"),
        };
    }
    if !line.starts_with("From ") {
        return Kind::Other;
    }
    let id = match line.rsplit_once("\trequest_id=") {
        Some((_, id)) if request_id::is_valid(id) && starts_a_record(line) => id,
        _ => return Kind::Broken("a message line without its request id"),
    };
    // A record whose write was cut short, followed by the next one on the same
    // line: a second record prefix inside the line. (A message that quotes such
    // a prefix reads as damaged too, which errs on the safe side.)
    let glued = line
        .match_indices("From ")
        .any(|(i, _)| i > 0 && starts_a_record(&line[i..]));
    if glued {
        Kind::Glued(id)
    } else {
        Kind::Record(id)
    }
}

/// Whether `text` starts with a record's prefix: `From <ip> at <HTTP date> : `.
fn starts_a_record(text: &str) -> bool {
    let Some((ip, rest)) = text
        .strip_prefix("From ")
        .and_then(|r| r.split_once(" at "))
    else {
        return false;
    };
    ip.parse::<std::net::IpAddr>().is_ok()
        && rest
            .get(..29)
            .is_some_and(|d| httpdate::parse_http_date(d).is_ok())
        && rest.get(29..).is_some_and(|r| r.starts_with(" : "))
}

fn list(numbers: &[u64]) -> String {
    const SHOWN: usize = 20;
    let mut text: Vec<String> = numbers.iter().take(SHOWN).map(u64::to_string).collect();
    if numbers.len() > SHOWN {
        text.push("…".into());
    }
    if text.is_empty() {
        String::new()
    } else {
        format!(" [{}]", text.join(" "))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut received, mut dups, mut gaps) = (0, 0, 0);
        for (sender, tally) in &self.senders {
            let (d, g) = (tally.duplicates(), tally.gaps());
            writeln!(
                f,
                "sender {sender}: received {}, duplicates {}{}, gaps {}{}",
                tally.received(),
                d.len(),
                list(&d),
                g.len(),
                list(&g)
            )?;
            received += tally.received();
            dups += d.len();
            gaps += g.len();
        }
        if self.untracked > 0 {
            writeln!(
                f,
                "untracked (ids not made by a sender): {}",
                self.untracked
            )?;
        }
        if !self.damaged.is_empty() {
            writeln!(f, "damaged lines: {}", self.damaged.len())?;
            for d in self.damaged.iter().take(20) {
                writeln!(f, "  {}:{}: {}", d.source, d.line, d.reason)?;
            }
            if self.damaged.len() > 20 {
                writeln!(f, "  …")?;
            }
        }
        writeln!(
            f,
            "total: {} sender(s), received {received}, duplicates {dups}, gaps {gaps}, damaged lines {}",
            self.senders.len(),
            self.damaged.len()
        )
    }
}

/// Reads `paths` (stdin when empty or `-`), prints the report; returns whether it is complete.
pub fn run(paths: &[String]) -> Result<bool, Error> {
    let mut report = Report::default();
    let stdin = [String::from("-")];
    for path in if paths.is_empty() { &stdin[..] } else { paths } {
        let reading = |e| Error::io(format!("reading {path}"), e);
        let mut reader: Box<dyn BufRead> = if path == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(BufReader::new(File::open(path).map_err(reading)?))
        };
        // A saved stdout holds other lines too; a LOG_DIR file holds records only.
        let strict = path != "-";
        let mut line = Vec::new();
        for number in 1.. {
            line.clear();
            if reader.read_until(b'\n', &mut line).map_err(reading)? == 0 {
                break;
            }
            if line.pop() != Some(b'\n') {
                // The last line ended without a newline: cut off mid-write.
                report.damage(path, number, "the last line is incomplete");
                break;
            }
            report.add_line(path, number, &line, strict);
        }
    }
    print!("{report}");
    Ok(report.is_complete())
}

#[cfg(test)]
mod test {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn counts_gaps_and_duplicates_per_sender() {
        let report = Report::from_lines(lines(&[
            "From 127.0.0.1 at Thu, 26 Nov 2026 00:00:00 GMT : a\trequest_id=10.0.0.1-1",
            "From 127.0.0.1 at Thu, 26 Nov 2026 00:00:00 GMT : a\trequest_id=10.0.0.1-3",
            "From 127.0.0.1 at Thu, 26 Nov 2026 00:00:00 GMT : a\trequest_id=10.0.0.1-3",
            "[sink-2] From 127.0.0.1 at Thu, 26 Nov 2026 00:00:00 GMT : a\trequest_id=10.0.0.2-1",
            r#"{"ts":"t","level":"info","tier":"sink","event":"logged","request_id":"10.0.0.2-2","peer":null,"status":null,"duration_ms":null,"message":"x"}"#,
            r#"{"ts":"t","level":"info","tier":"relay","event":"relaying","request_id":"10.0.0.2-9","peer":null,"status":null,"duration_ms":null,"message":"x"}"#,
            "Relaying from 127.0.0.1 at x : a\trequest_id=10.0.0.2-7",
            "From 127.0.0.1 at Thu, 26 Nov 2026 00:00:00 GMT : no id here",
            "From 127.0.0.1 at Thu, 26 Nov 2026 00:00:00 GMT : a\trequest_id=10.0.0.9-r4",
            "listening on 127.0.0.1:1",
        ]));
        let one = &report.senders["10.0.0.1"];
        assert_eq!(
            (one.received(), one.duplicates(), one.gaps()),
            (3, vec![3], vec![2])
        );
        let two = &report.senders["10.0.0.2"];
        assert_eq!(
            (two.received(), two.duplicates(), two.gaps()),
            (2, vec![], vec![])
        );
        assert_eq!(report.untracked, 1);
        assert!(!report.is_complete());
        assert_eq!(
            report.to_string(),
            "sender 10.0.0.1: received 3, duplicates 1 [3], gaps 1 [2]\n\
             sender 10.0.0.2: received 2, duplicates 0, gaps 0\n\
             untracked (ids not made by a sender): 1\n\
             damaged lines: 1\n\
             \x20 -:8: a message line without its request id\n\
             total: 2 sender(s), received 5, duplicates 1, gaps 1, damaged lines 1\n"
        );
    }

    #[test]
    fn duplicates_are_allowed_and_damage_is_named_by_line() {
        let mut report = Report::default();
        let record = |n: u64| {
            format!("From 1.2.3.4 at Thu, 26 Nov 2026 00:00:00 GMT : m\trequest_id=10.0.0.1-{n}")
        };
        for (i, line) in [record(1), record(1), record(2)].iter().enumerate() {
            report.add_line("Sink_a.txt", i + 1, line.as_bytes(), true);
        }
        assert!(report.is_complete(), "a duplicate is not a loss");
        report.add_line(
            "Sink_a.txt",
            4,
            b"From 1.2.3.4 at Thu, 26 Nov 2026 00:00:00 GMT : to\xff\xfe",
            true,
        );
        report.add_line("Sink_a.txt", 5, b"listening on 0.0.0.0:8080", true);
        report.add_line("-", 9, b"listening on 0.0.0.0:8080", false);
        assert_eq!(
            report.damaged,
            vec![
                Damaged {
                    source: "Sink_a.txt".into(),
                    line: 4,
                    reason: "not valid UTF-8"
                },
                Damaged {
                    source: "Sink_a.txt".into(),
                    line: 5,
                    reason: "not a whole sink record"
                },
            ]
        );
        assert!(!report.is_complete());
        assert_eq!(report.senders["10.0.0.1"].received(), 3);
    }

    #[test]
    fn a_message_text_cannot_fake_an_id() {
        // An escaped message never holds a raw tab, so only our suffix counts.
        let report = Report::from_lines(lines(&[
            "From 1.2.3.4 at Thu, 26 Nov 2026 00:00:00 GMT : hi\\trequest_id=6.6.6.6-1",
        ]));
        assert!(report.senders.is_empty());
        assert_eq!(report.untracked, 0);
        assert_eq!(report.damaged.len(), 1, "a message line without an id");
    }
}
