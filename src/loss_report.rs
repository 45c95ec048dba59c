//! Loss accounting from the sink logs alone: per sender, received, duplicates and gaps.
//!
//! `sink --loss-report [FILE ...]` reads sink log lines (the `LOG_DIR` files,
//! or stdout as saved from `kubectl logs`, in text or JSON, with or without a
//! `[sink-1] ` prefix as `scripts/run-local.sh` adds) from the files or stdin.
//! Every sender numbers its messages 1, 2, 3 … in `X-Request-Id: <ip>-<n>`, and a
//! retry keeps the number, so per sender a number seen twice is a duplicate and a
//! number below the highest one seen but never seen is a gap: a message the
//! sender gave up on. It keeps no state of its own.

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

/// What the sink logs say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// By sender ip.
    pub senders: BTreeMap<String, SenderTally>,
    /// Messages logged with an id that a sender did not make (from a relay or sink, or none).
    pub untracked: u64,
}

impl Report {
    /// Reads sink log lines.
    pub fn from_lines<I: IntoIterator<Item = String>>(lines: I) -> Report {
        let mut report = Report::default();
        for line in lines {
            match logged_request_id(&line) {
                None => {}
                Some(id) => match request_id::split(id) {
                    Some((sender, seq)) => {
                        *report
                            .senders
                            .entry(sender.to_string())
                            .or_default()
                            .seen
                            .entry(seq)
                            .or_default() += 1;
                    }
                    None => report.untracked += 1,
                },
            }
        }
        report
    }

    /// No duplicates and no gaps.
    pub fn is_clean(&self) -> bool {
        self.senders
            .values()
            .all(|t| t.duplicates().is_empty() && t.gaps().is_empty())
    }
}

/// The request id of a sink's "message logged" line, in text or JSON; `None` for other lines.
fn logged_request_id(line: &str) -> Option<&str> {
    let line = match line.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map_or(line, |(_, l)| l),
        None => line,
    };
    if line.starts_with('{') {
        if !line.contains(r#""tier":"sink""#) || !line.contains(r#""event":"logged""#) {
            return None;
        }
        let (_, rest) = line.split_once(r#""request_id":""#)?;
        return rest.split_once('"').map(|(id, _)| id);
    }
    if !line.starts_with("From ") {
        return None;
    }
    line.rsplit_once("\trequest_id=").map(|(_, id)| id)
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
        writeln!(
            f,
            "total: {} sender(s), received {received}, duplicates {dups}, gaps {gaps}",
            self.senders.len()
        )
    }
}

/// Reads `paths` (stdin when empty or `-`), prints the report; returns whether it is clean.
pub fn run(paths: &[String]) -> Result<bool, Error> {
    let mut lines = Vec::new();
    let stdin = [String::from("-")];
    for path in if paths.is_empty() { &stdin[..] } else { paths } {
        let reader: Box<dyn BufRead> = if path == "-" {
            Box::new(io::stdin().lock())
        } else {
            let file = File::open(path).map_err(|e| Error::io(format!("reading {path}"), e))?;
            Box::new(BufReader::new(file))
        };
        for line in reader.lines() {
            lines.push(line.map_err(|e| Error::io(format!("reading {path}"), e))?);
        }
    }
    let report = Report::from_lines(lines);
    print!("{report}");
    Ok(report.is_clean())
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
            "From 127.0.0.1 at x : a\trequest_id=10.0.0.1-1",
            "From 127.0.0.1 at x : a\trequest_id=10.0.0.1-3",
            "From 127.0.0.1 at x : a\trequest_id=10.0.0.1-3",
            "[sink-2] From 127.0.0.1 at x : a\trequest_id=10.0.0.2-1",
            r#"{"ts":"t","level":"info","tier":"sink","event":"logged","request_id":"10.0.0.2-2","peer":null,"status":null,"duration_ms":null,"message":"x"}"#,
            r#"{"ts":"t","level":"info","tier":"relay","event":"relaying","request_id":"10.0.0.2-9","peer":null,"status":null,"duration_ms":null,"message":"x"}"#,
            "Relaying from 127.0.0.1 at x : a\trequest_id=10.0.0.2-7",
            "From 127.0.0.1 at x : no id here",
            "From 127.0.0.1 at x : a\trequest_id=10.0.0.9-r4",
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
        assert!(!report.is_clean());
        assert_eq!(
            report.to_string(),
            "sender 10.0.0.1: received 3, duplicates 1 [3], gaps 1 [2]\n\
             sender 10.0.0.2: received 2, duplicates 0, gaps 0\n\
             untracked (ids not made by a sender): 1\n\
             total: 2 sender(s), received 5, duplicates 1, gaps 1\n"
        );
    }

    #[test]
    fn a_message_text_cannot_fake_an_id() {
        // An escaped message never holds a raw tab, so only our suffix counts.
        let report = Report::from_lines(lines(&["From 1.2.3.4 at x : hi\\trequest_id=6.6.6.6-1"]));
        assert!(report.senders.is_empty());
        assert_eq!(report.untracked, 0);
    }
}
