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
//! message line without its request id, or in a sink's `LOG_DIR` file
//! (`Sink_<ip>.txt`) any line that is not a whole record (a torn line after a
//! full disk, say) is counted and named by file and line number, and the rest
//! is still counted; any other file is read as a saved stdout. With `--json`
//! the report is one JSON object, which also says how many sink and relay
//! records each input held (the scripts check delivery with it). Exit codes:
//! 0 nothing missing and nothing damaged, 1 gaps or damaged lines, 2 a file
//! that cannot be read.

mod render;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};

use crate::error::Error;
use crate::observe::request_id;
use crate::record::message::{without_tier_prefix, NotRecord, Record, Verb};

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

    /// Sequence numbers from 1 to the highest seen that were never logged,
    /// as ranges `(first, last)`: as many as the numbers seen at most,
    /// whatever their values.
    pub fn gaps(&self) -> Vec<(u64, u64)> {
        let mut ranges = Vec::new();
        let mut next = 1;
        for &seq in self.seen.keys() {
            if seq > next {
                ranges.push((next, seq - 1));
            }
            next = seq.saturating_add(1);
        }
        ranges
    }

    /// How many sequence numbers the gaps hold.
    pub fn missing(&self) -> u64 {
        self.gaps().iter().map(|(a, b)| b - a + 1).sum()
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

/// The records one input held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SourceCounts {
    /// Sink records (`From …`), torn-and-glued ones included.
    pub sink_records: u64,
    /// Relay records (`Relaying from …`): a saved relay stdout may be read too.
    pub relay_records: u64,
}

/// What the sink logs say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// By sender ip.
    pub senders: BTreeMap<String, SenderTally>,
    /// Messages logged with an id that a relay or a sink made.
    pub untracked: u64,
    /// Messages logged with an id in no form or range the tiers make (a
    /// client's own id, or a sequence number no sender reaches): counted
    /// apart, never expanded into gaps.
    pub foreign: u64,
    /// The first few of those ids, to show.
    pub foreign_examples: Vec<String>,
    /// Lines that are not valid records, in order.
    pub damaged: Vec<Damaged>,
    /// What each input held, by its name (`-` for standard input).
    pub sources: BTreeMap<String, SourceCounts>,
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
        let counts = self.sources.entry(source.to_string()).or_default();
        let kind = match std::str::from_utf8(bytes) {
            Err(_) => Kind::Broken("not valid UTF-8"),
            Ok(line) if !strict && is_relay_record(line) => {
                counts.relay_records += 1;
                Kind::Other
            }
            Ok(line) => match classify(line) {
                Kind::Other if strict => Kind::Broken("not a whole sink record"),
                kind => kind,
            },
        };
        if matches!(kind, Kind::Record(_) | Kind::Glued(_)) {
            counts.sink_records += 1;
        }
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

    pub(super) fn damage(&mut self, source: &str, line: usize, reason: &'static str) {
        self.damaged.push(Damaged {
            source: source.to_string(),
            line,
            reason,
        });
    }

    fn count(&mut self, id: &str) {
        match request_id::sender_sequence(id) {
            Some((sender, seq)) => {
                *self
                    .senders
                    .entry(sender.to_string())
                    .or_default()
                    .seen
                    .entry(seq)
                    .or_default() += 1;
            }
            None if request_id::is_made_by_a_tier(id) => self.untracked += 1,
            None => {
                self.foreign += 1;
                if self.foreign_examples.len() < render::SHOWN_FOREIGN {
                    self.foreign_examples.push(id.to_string());
                }
            }
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

    /// Nothing missing (no gaps) and nothing damaged; duplicates and foreign ids are allowed.
    pub fn is_complete(&self) -> bool {
        self.damaged.is_empty() && self.senders.values().all(|t| t.gaps().is_empty())
    }
}

/// Whether `path` names a sink's `LOG_DIR` file, `Sink_<ip>.txt`.
fn is_sink_file(path: &str) -> bool {
    let name = std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str());
    name.is_some_and(|n| n.starts_with("Sink_") && n.ends_with(".txt"))
}

/// Whether a line is a relay's record, in text or JSON.
fn is_relay_record(line: &str) -> bool {
    Record::parse_as(line, Verb::Relaying).is_ok()
        || Record::parse_json(line, Verb::Relaying).is_ok()
}

/// What a line of sink output is, in text or JSON.
fn classify(line: &str) -> Kind<'_> {
    let read = if without_tier_prefix(line).starts_with('{') {
        Record::parse_json(line, Verb::From)
    } else {
        Record::parse_as(line, Verb::From)
    };
    match read {
        Err(NotRecord::Other) => Kind::Other,
        Err(NotRecord::Damaged(reason)) => Kind::Broken(reason),
        Ok(record) if Record::is_glued(line, Verb::From) => Kind::Glued(record.request_id),
        Ok(record) => Kind::Record(record.request_id),
    }
}

/// Reads `paths` (stdin when empty or `-`), prints the report (as JSON with
/// `json`); returns whether it is complete.
pub fn run(paths: &[String], json: bool) -> Result<bool, Error> {
    let mut report = Report::default();
    let stdin = [String::from("-")];
    for path in if paths.is_empty() { &stdin[..] } else { paths } {
        let reading = |e| Error::io(format!("reading {path}"), e);
        let mut reader: Box<dyn BufRead> = if path == "-" {
            Box::new(io::stdin().lock())
        } else {
            Box::new(BufReader::new(File::open(path).map_err(reading)?))
        };
        // A saved stdout holds other lines too; a sink's LOG_DIR file holds records only.
        let strict = is_sink_file(path);
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
    if json {
        print!("{}", report.to_json());
    } else {
        print!("{report}");
    }
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
            (3, vec![3], vec![(2, 2)])
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
    fn the_json_report_has_every_tally_and_what_each_input_held() {
        let mut report = Report::default();
        let sink = "From 1.2.3.4 at Thu, 26 Nov 2026 00:00:00 GMT : m\trequest_id=10.0.0.1-";
        for n in [1, 3, 3] {
            report.add_line("Sink_a.txt", n, format!("{sink}{n}").as_bytes(), true);
        }
        let relayed =
            "Relaying from 1.2.3.4 at Thu, 26 Nov 2026 00:00:00 GMT : m\trequest_id=10.0.0.1-1";
        report.add_line("-", 1, relayed.as_bytes(), false);
        report.add_line("-", 2, b"\"quoted\" \xff", false);
        assert_eq!(
            report.to_json(),
            "{\"complete\":false,\"senders\":{\"10.0.0.1\":{\"received\":3,\"highest\":3,\"duplicates\":[3],\"gaps\":1,\"missing\":[[2, 2]]}},\
             \"untracked\":0,\"foreign\":0,\"foreign_ids\":[],\"damaged\":[{\"source\":\"-\",\"line\":2,\"reason\":\"not valid UTF-8\"}],\
             \"sources\":{\"-\":{\"sink_records\":0,\"relay_records\":1},\"Sink_a.txt\":{\"sink_records\":3,\"relay_records\":0}}}\n"
        );
    }

    #[test]
    fn gaps_are_ranges_and_foreign_ids_are_counted_apart() {
        let sink = "From 1.2.3.4 at Thu, 26 Nov 2026 00:00:00 GMT : m\trequest_id=";
        let ids = [
            "127.0.0.9-3",
            "127.0.0.9-18",
            "127.0.0.9-19",
            "127.0.0.9-31",
            // Beyond what a sender makes: reported apart, never expanded.
            "127.0.0.9-18446744073709551615",
            "127.0.0.9-9007199254740992",
            "client-7",
            "127.0.0.9-r5",
        ];
        let report = Report::from_lines(ids.iter().map(|id| format!("{sink}{id}")));
        let tally = &report.senders["127.0.0.9"];
        assert_eq!(tally.gaps(), vec![(1, 2), (4, 17), (20, 30)]);
        assert_eq!(tally.missing(), 27);
        assert_eq!((report.foreign, report.untracked), (3, 1));
        let text = report.to_string();
        assert!(
            text.starts_with(
                "sender 127.0.0.9: received 4, duplicates 0, gaps 27 [1-2 4-17 20-30]\n"
            ),
            "{text}"
        );
        assert!(text.contains("ids in no form or range the tiers make (not counted for gaps): 3, such as 127.0.0.9-18446744073709551615 127.0.0.9-9007199254740992 client-7\n"), "{text}");
        assert!(
            report
                .to_json()
                .contains("\"gaps\":27,\"missing\":[[1, 2], [4, 17], [20, 30]]"),
            "{}",
            report.to_json()
        );
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
