//! The sequences the fuzzer's issue met on 87a0e36, kept as fixed cases on both tiers.

use std::sync::Mutex;

use super::grammar::{Outcome, Part};
use super::runs::{check, check_records, count, Tally};
use super::wire::{Mode, Plan};
use crate::util::{recorded_ids, temp_dir, TierProcess};

/// A message with request id `id`, framed by `Content-Length`.
fn good(path: &str, id: &str) -> Part {
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Length: 5\r\n\r\nhello"
    );
    Part {
        bytes: raw.into_bytes(),
        outcome: Outcome::Message,
        id: Some(id.to_string()),
        head: false,
        closes: false,
        may_continue: false,
    }
}

/// `raw` refused with `status`.
fn refusal(raw: &[u8], id: &str, status: u16) -> Part {
    Part {
        bytes: raw.to_vec(),
        outcome: Outcome::Refused(Some(status)),
        id: Some(id.to_string()),
        head: false,
        closes: true,
        may_continue: false,
    }
}

/// The sequences the issue "every request answered exactly once" met on
/// 87a0e36: a kept-alive or pipelining client whose request after a good
/// one was refused was first sent a copy of the good one's `200` (told
/// "logged", never recorded), and a FIN right after a request lost it.
fn regressions(path: &str) -> Vec<(&'static str, Plan)> {
    let with = |name: &str, value: &str, id: &str| {
        format!("POST {path} HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\n{name}: {value}\r\nContent-Length: 5\r\n\r\nhello").into_bytes()
    };
    let many: String = (0..100).map(|i| format!("X-Extra-{i}: v\r\n")).collect();
    let plan = |mode, fin, parts: Vec<Part>| Plan {
        parts,
        mode,
        fin,
        splits: Vec::new(),
    };
    vec![
        (
            "http.client: a good POST, then one with the header name X@Client",
            plan(
                Mode::OneAtATime,
                false,
                vec![
                    good(path, "rg.1.0"),
                    refusal(&with("X@Client", "x", "rg.1.1"), "rg.1.1", 400),
                ],
            ),
        ),
        (
            "nginx's upstream keep-alive: a good POST, then 100 extra headers",
            plan(
                Mode::OneAtATime,
                false,
                vec![
                    good(path, "rg.2.0"),
                    refusal(&with("X-Last", &many, "rg.2.1"), "rg.2.1", 431),
                ],
            ),
        ),
        (
            "pipelined: a good POST, then H: \\x01",
            plan(
                Mode::Pipelined,
                true,
                vec![
                    good(path, "rg.3.0"),
                    refusal(&with("H", "\x01", "rg.3.1"), "rg.3.1", 400),
                ],
            ),
        ),
        (
            "pipelined: a good POST, then a NUL byte",
            plan(
                Mode::Pipelined,
                true,
                vec![good(path, "rg.4.0"), refusal(b"\0", "rg.4.1", 400)],
            ),
        ),
        (
            "pipelined: a good POST, then a TLS ClientHello",
            plan(
                Mode::Pipelined,
                true,
                vec![
                    good(path, "rg.5.0"),
                    refusal(
                        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
                        "rg.5.1",
                        400,
                    ),
                ],
            ),
        ),
        (
            "pipelined: two good POSTs, then Content-Length: 1x",
            plan(
                Mode::Pipelined,
                true,
                vec![
                    good(path, "rg.6.0"),
                    good(path, "rg.6.1"),
                    refusal(
                        format!(
                            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\nhello"
                        )
                        .as_bytes(),
                        "rg.6.2",
                        400,
                    ),
                ],
            ),
        ),
        (
            "a good POST, then the client's FIN at once",
            plan(Mode::Pipelined, true, vec![good(path, "rg.7.0")]),
        ),
        (
            "two good POSTs pipelined, then the client's FIN",
            plan(
                Mode::Pipelined,
                true,
                vec![good(path, "rg.8.0"), good(path, "rg.8.1")],
            ),
        ),
    ]
}

#[test]
fn the_sequences_that_broke_87a0e36_are_each_answered_once_and_recorded_once() {
    let dir = temp_dir("sequences-regressions");
    let log_dir = ("LOG_DIR", dir.display().to_string());
    let sink = TierProcess::start("sink", "sink", std::slice::from_ref(&log_dir));
    let relay_dir = temp_dir("sequences-regressions-relay");
    let relay_sink = TierProcess::start(
        "sink",
        "sink behind the relay",
        &[("LOG_DIR", relay_dir.display().to_string())],
    );
    let relay = TierProcess::start(
        "relay",
        "relay",
        &[("SINK_URL", relay_sink.url("/sink.php"))],
    );
    for (tier, path, dir) in [
        (&sink, "/sink.php", &dir),
        (&relay, "/relay.php", &relay_dir),
    ] {
        let tally = Mutex::new(Tally::default());
        for (i, (name, plan)) in regressions(path).into_iter().enumerate() {
            let mut answered = Vec::new();
            let result = check(tier.addr, &plan, &mut answered).map_err(|e| format!("{name}: {e}"));
            count(&mut tally.lock().unwrap(), &plan, answered, result, 0, i);
        }
        let tally = tally.into_inner().unwrap();
        assert!(
            tally.failures.is_empty(),
            "{}: {}",
            tally.failures.join("\n"),
            tier.output()
        );
        let wrong = check_records(&tally, &[("Sink_", recorded_ids(dir, "Sink_"))]);
        assert!(wrong.is_empty(), "{}: {wrong:?}", tier.name);
        assert_eq!(tally.answered.len(), 10, "{}", tier.name);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&relay_dir);
}
