//! The loss report as a reader sees it: a text line per sender and a total, or one JSON object for scripts.
//!
//! Duplicates and gap ranges are listed up to [`SHOWN`] per sender (`[4-17
//! 30]`), ids in no form the tiers make up to [`SHOWN_FOREIGN`], damaged
//! lines up to 20, each then `…`; the JSON form lists every one.

use std::fmt;

use super::Report;
use crate::json::json_string;

/// How many duplicates or gap ranges a text report shows per sender.
const SHOWN: usize = 20;
/// How many foreign ids a report shows.
pub(super) const SHOWN_FOREIGN: usize = 5;

/// Up to [`SHOWN`] items, shown by `show`, as `[a b c …]`; empty for none.
fn listed<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut text: Vec<String> = items.iter().take(SHOWN).map(show).collect();
    if items.len() > SHOWN {
        text.push("…".into());
    }
    format!(" [{}]", text.join(" "))
}

fn list(numbers: &[u64]) -> String {
    listed(numbers, u64::to_string)
}

/// Gap ranges as `[4-17 30]`.
fn ranges(gaps: &[(u64, u64)]) -> String {
    listed(gaps, |&(a, b)| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut received, mut dups, mut gaps) = (0, 0, 0);
        for (sender, tally) in &self.senders {
            let (d, g) = (tally.duplicates(), tally.gaps());
            let missing = tally.missing();
            writeln!(
                f,
                "sender {sender}: received {}, duplicates {}{}, gaps {missing}{}",
                tally.received(),
                d.len(),
                list(&d),
                ranges(&g)
            )?;
            received += tally.received();
            dups += d.len();
            gaps += missing;
        }
        if self.untracked > 0 {
            writeln!(
                f,
                "untracked (ids not made by a sender): {}",
                self.untracked
            )?;
        }
        if self.foreign > 0 {
            writeln!(
                f,
                "ids in no form or range the tiers make (not counted for gaps): {}, such as {}",
                self.foreign,
                self.foreign_examples.join(" ")
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

impl Report {
    /// The report as one JSON object, for scripts: `complete`, per sender
    /// `received`, `highest`, `duplicates`, `gaps` (how many are missing)
    /// and `missing` (as `[first, last]` ranges), `untracked`, `foreign`
    /// and the first `foreign_ids`, `damaged` lines, and per input the
    /// `sink_records` and `relay_records` it held.
    pub fn to_json(&self) -> String {
        let mut out = format!("{{\"complete\":{},\"senders\":{{", self.is_complete());
        for (i, (sender, tally)) in self.senders.iter().enumerate() {
            let highest = tally.seen.keys().next_back().copied().unwrap_or(0);
            let missing: Vec<[u64; 2]> = tally.gaps().iter().map(|&(a, b)| [a, b]).collect();
            out.push_str(if i > 0 { "," } else { "" });
            json_string(&mut out, sender);
            out.push_str(&format!(
                ":{{\"received\":{},\"highest\":{highest},\"duplicates\":{:?},\"gaps\":{},\"missing\":{missing:?}}}",
                tally.received(),
                tally.duplicates(),
                tally.missing(),
            ));
        }
        out.push_str(&format!(
            "}},\"untracked\":{},\"foreign\":{},\"foreign_ids\":[",
            self.untracked, self.foreign
        ));
        for (i, id) in self.foreign_examples.iter().enumerate() {
            out.push_str(if i > 0 { "," } else { "" });
            json_string(&mut out, id);
        }
        out.push_str("],\"damaged\":[");
        for (i, d) in self.damaged.iter().enumerate() {
            out.push_str(if i > 0 {
                ",{\"source\":"
            } else {
                "{\"source\":"
            });
            json_string(&mut out, &d.source);
            out.push_str(&format!(",\"line\":{},\"reason\":", d.line));
            json_string(&mut out, d.reason);
            out.push('}');
        }
        out.push_str("],\"sources\":{");
        for (i, (source, counts)) in self.sources.iter().enumerate() {
            out.push_str(if i > 0 { "," } else { "" });
            json_string(&mut out, source);
            out.push_str(&format!(
                ":{{\"sink_records\":{},\"relay_records\":{}}}",
                counts.sink_records, counts.relay_records
            ));
        }
        out.push_str("}}\n");
        out
    }
}
