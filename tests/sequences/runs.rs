//! Running connections against a tier, several at a time, and tallying what each showed: answers, ids, failures, records.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use super::grammar::{Outcome, Part};
use super::wire::{self, check_end, check_part, Mode, Plan};

/// Connections at once: enough to overlap, few enough for two cores.
pub const WORKERS: usize = 8;

/// What one run of connections against a tier found.
#[derive(Default)]
pub struct Tally {
    pub connections: usize,
    pub requests: usize,
    pub answered: Vec<String>,
    pub unanswered: Vec<String>,
    pub refused: usize,
    pub cut_off: usize,
    pub pipelined: usize,
    pub fin: usize,
    pub failures: Vec<String>,
}

/// Runs `plan` against `tier` and checks every answer; `Err` says what broke,
/// with the bytes both ways.
pub fn check(addr: SocketAddr, plan: &Plan, answered: &mut Vec<String>) -> Result<(), String> {
    let mut found = Vec::new();
    let mut check =
        |received: &mut wire::Received, part: &Part| check_part(received, part, &mut found);
    let outcome = wire::run(addr, plan, &mut check).and_then(|mut received| {
        check_end(&mut received)
            .map_err(|e| (e, received.bytes.clone()))
            .map_err(|(e, bytes)| format!("{e}\nreceived: b\"{}\"", bytes.escape_ascii()))
    });
    answered.extend(found);
    outcome.map_err(|e| describe(plan, &e))
}

/// A failing plan, as bytes that can be replayed.
fn describe(plan: &Plan, error: &str) -> String {
    let mut text = format!(
        "{error}\nmode {:?}, FIN {}, writes split at {:?}; parts:\n",
        plan.mode, plan.fin, plan.splits
    );
    for part in &plan.parts {
        let shown: Vec<u8> = part.bytes.iter().copied().take(600).collect();
        text.push_str(&format!(
            "  {:?} (head {}, closes {}): b\"{}\"{}\n",
            part.outcome,
            part.head,
            part.closes,
            shown.escape_ascii(),
            if part.bytes.len() > 600 { "…" } else { "" }
        ));
    }
    text
}

/// Runs connections `range` (each made by `plan` from its index) against
/// `addr`, [`WORKERS`] at a time; `seed` names the run in failures.
pub fn run(
    addr: SocketAddr,
    range: std::ops::Range<usize>,
    plan: &(dyn Fn(usize) -> Plan + Sync),
    seed: u64,
    tally: &Mutex<Tally>,
) {
    std::thread::scope(|scope| {
        for worker in 0..WORKERS {
            let range = range.clone();
            scope.spawn(move || {
                for index in range.skip(worker).step_by(WORKERS) {
                    let plan = plan(index);
                    let mut answered = Vec::new();
                    let result = check(addr, &plan, &mut answered);
                    count(
                        &mut tally.lock().unwrap(),
                        &plan,
                        answered,
                        result,
                        seed,
                        index,
                    );
                }
            });
        }
    });
}

pub fn count(
    tally: &mut Tally,
    plan: &Plan,
    answered: Vec<String>,
    result: Result<(), String>,
    seed: u64,
    index: usize,
) {
    tally.connections += 1;
    tally.requests += plan.parts.len();
    tally.pipelined += usize::from(plan.mode == Mode::Pipelined);
    tally.fin += usize::from(plan.fin);
    for part in &plan.parts {
        tally.refused += usize::from(matches!(part.outcome, Outcome::Refused(_)));
        tally.cut_off += usize::from(matches!(part.outcome, Outcome::CutOff { .. }));
        if let Some(id) = &part.id {
            if !answered.contains(id) {
                tally.unanswered.push(id.clone());
            }
        }
    }
    tally.answered.extend(answered);
    if let Err(e) = result {
        tally.failures.push(format!(
            "connection {index} (SEQUENCES_SEED={seed:x} SEQUENCES_ONLY={index}): {e}"
        ));
    }
}

/// Every id answered 2xx recorded once, every other id never, in each of `records`.
pub fn check_records(tally: &Tally, records: &[(&str, HashMap<String, usize>)]) -> Vec<String> {
    let mut wrong = Vec::new();
    for (name, ids) in records {
        for id in &tally.answered {
            let n = ids.get(id).copied().unwrap_or(0);
            if n != 1 {
                wrong.push(format!("{name}: {id} answered 2xx, recorded {n} time(s)"));
            }
        }
        for id in &tally.unanswered {
            if let Some(n) = ids.get(id) {
                wrong.push(format!(
                    "{name}: {id} not answered 2xx, recorded {n} time(s)"
                ));
            }
        }
    }
    wrong
}
