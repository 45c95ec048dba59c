//! The message record survives a full disk, log rotation and lost replies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::util::{
    command, exchange, request_id_of, run_with_stdin, temp_dir, Record, TierProcess, Verb,
};
use three_tier::record::message::push_request_id;

/// Posts `text` with `X-Request-Id: id`; returns the status.
fn post_with_id(tier: &TierProcess, id: &str, text: &str) -> u16 {
    let raw = format!(
        "POST /sink.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    exchange(tier.addr, raw.as_bytes()).unwrap().status
}

/// Request ids of the records in a LOG_DIR file's text (every line must be one).
fn ids_in_file(text: &str) -> Vec<String> {
    let tail = &text[text.len().saturating_sub(200)..];
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line is torn: …{tail:?}"
    );
    text.lines()
        .map(|l| {
            assert!(l.starts_with("From "), "not a record: {l:?}");
            request_id_of(l)
                .unwrap_or_else(|| panic!("a record without its id: {l:?}"))
                .to_string()
        })
        .collect()
}

#[test]
fn a_full_disk_leaves_whole_lines_and_acknowledges_only_what_it_holds() {
    // LOG_DIR is a 64 KiB tmpfs, mounted in a mount namespace of the sink's own,
    // so a failing test leaves no mount behind; it is read through /proc/<pid>/root.
    let dir = temp_dir("disk-full");
    let mount = "mount -t tmpfs -o size=64k three-tier-test \"$0\" && exec \"$@\"";
    let sink = TierProcess::start_wrapped(
        &[
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            mount,
            dir.to_str().unwrap(),
        ],
        "sink",
        "sink",
        &[
            ("LOG_DIR", dir.display().to_string()),
            ("POD_IP", "127.0.2.7".into()),
        ],
    );
    let mut answered = BTreeMap::new();
    for n in 1..=2000 {
        let id = format!("10.0.0.9-{n}");
        // Lengths vary, so some line is bound to cross the end of the space.
        let text = format!("message {n} {}", "x".repeat(100 + n % 97));
        let status = post_with_id(&sink, &id, &text);
        answered.insert(id, status);
        if answered.values().filter(|s| **s == 503).count() >= 20 {
            break;
        }
    }
    let file = PathBuf::from(format!("/proc/{}/root", sink.pid))
        .join(dir.strip_prefix("/").unwrap())
        .join("Sink_127.0.2.7.txt");
    let text = String::from_utf8(std::fs::read(&file).unwrap()).expect("the file is valid UTF-8");
    let in_file: BTreeSet<String> = ids_in_file(&text).into_iter().collect();
    let ok: BTreeSet<String> = answered
        .iter()
        .filter(|(_, s)| **s == 200)
        .map(|(id, _)| id.clone())
        .collect();
    // 503: not recorded, so a client sends it again (elsewhere).
    let refused: BTreeSet<String> = answered
        .iter()
        .filter(|(_, s)| **s == 503)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(
        refused.len() >= 20,
        "the disk never filled: {} answered",
        answered.len()
    );
    assert_eq!(
        in_file, ok,
        "the file holds exactly the messages answered 200"
    );
    assert!(answered.values().all(|s| *s == 200 || *s == 503));
    assert_eq!(
        crate::util::get(sink.addr, "/readyz").unwrap().status,
        503,
        "not ready while the disk is full"
    );
    // stdout shows the seed's line for what was recorded, and says what was not.
    // The lines were written before each answer; the test's reader may lag behind.
    sink.wait_lines(ok.len(), |l| l.starts_with("From "))
        .expect("a stdout line for every recorded message");
    sink.wait_lines(refused.len(), |l| l.starts_with("message not logged: "))
        .expect("a stdout line for every message not recorded");
    let on_stdout: BTreeSet<String> = sink
        .matching(|l| l.starts_with("From "))
        .iter()
        .filter_map(|l| request_id_of(l).map(String::from))
        .collect();
    assert_eq!(on_stdout, ok, "stdout agrees with the file");
    let not_logged = sink.matching(|l| l.starts_with("message not logged: "));
    assert_eq!(not_logged.len(), refused.len());
    let (code, report) = crate::util::loss_report(&[&file]);
    assert!(
        report.contains(&format!("received {}, duplicates 0", ok.len())),
        "{report}"
    );
    assert_eq!(code, 0, "{report}");
}

#[test]
fn the_loss_report_names_damaged_lines_and_counts_the_rest() {
    let dir = temp_dir("damaged");
    let file = dir.join("Sink_127.0.2.8.txt");
    // Lines as a sink writes them (see three_tier::record::message), then damaged.
    let line = |message: &str, id: &str| {
        let mut line = String::new();
        Record::write(&mut line, Verb::From, Some([127, 0, 0, 1].into()), message);
        push_request_id(&mut line, id);
        line.push('\n');
        line.into_bytes()
    };
    let record = |n: u32| line(&format!("m{n}"), &format!("10.0.0.5-{n}"));
    let torn = line("a torn line", "10.0.0.5-8");
    let mut bad = line("bad XX bytes", "10.0.0.5-9");
    let at = bad.windows(2).position(|w| w == b"XX").unwrap();
    bad[at..at + 2].copy_from_slice(b"\xff\xfe");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&record(1));
    bytes.extend_from_slice(&torn[..torn.len() - 30]);
    bytes.extend_from_slice(&record(2));
    bytes.extend_from_slice(&bad);
    bytes.extend_from_slice(&record(3));
    std::fs::write(&file, &bytes).unwrap();
    let (code, report) = crate::util::loss_report(&[&file]);
    let name = file.display();
    // Record 2 was written whole after the torn line, on the same line: it counts.
    assert!(
        report.contains("sender 10.0.0.5: received 3, duplicates 0, gaps 0"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "{name}:2: a torn line with the next record glued to it"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!("{name}:3: not valid UTF-8")),
        "{report}"
    );
    assert!(report.ends_with("damaged lines 2\n"), "{report}");
    assert_eq!(code, 1, "damaged lines make the report fail\n{report}");
    // The same lines as a saved stdout (standard input): the non-records are skipped.
    let (status, report) = run_with_stdin(
        command("sink").arg("--loss-report"),
        &format!(
            "listening on 0.0.0.0:8080\n{}{}",
            String::from_utf8_lossy(&record(1)),
            String::from_utf8_lossy(&record(2))
        ),
    );
    assert!(status.success(), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Posts numbered messages until stopped; returns the ids answered 200.
fn steady_traffic(
    sink: &TierProcess,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
) -> thread::JoinHandle<()> {
    let addr = sink.addr;
    thread::spawn(move || {
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let id = format!("10.0.0.6-{n}");
            let raw = format!(
                "POST /sink.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
            );
            if exchange(addr, raw.as_bytes()).is_ok_and(|a| a.status == 200) {
                acked.lock().unwrap().push(id);
            }
        }
    })
}

/// Renames the log under traffic (with or without SIGHUP), reads and deletes
/// the renamed file, and checks every acknowledged message is in one of the two.
fn rotate(signal: bool) {
    let dir = temp_dir(if signal { "rotate-hup" } else { "rotate-mv" });
    let sink = TierProcess::start(
        "sink",
        "sink",
        &[
            ("LOG_DIR", dir.display().to_string()),
            ("POD_IP", "127.0.2.9".into()),
        ],
    );
    let file = dir.join("Sink_127.0.2.9.txt");
    let (stop, acked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let traffic = steady_traffic(&sink, Arc::clone(&stop), Arc::clone(&acked));
    sink.wait_lines(50, |l| l.starts_with("From "))
        .expect("traffic flows");
    let renamed = dir.join("Sink_127.0.2.9.txt.1");
    std::fs::rename(&file, &renamed).unwrap();
    if signal {
        crate::util::signal_hup(sink.pid);
    }
    let reopened = if signal {
        "received SIGHUP: reopened "
    } else {
        "reopened "
    };
    sink.wait_line(|l| l.starts_with(reopened))
        .expect("the sink moved to a new file");
    let after = sink.matching(|l| l.starts_with("From ")).len();
    sink.wait_lines(after + 50, |l| l.starts_with("From "))
        .expect("traffic goes on");
    let old = std::fs::read_to_string(&renamed).unwrap();
    std::fs::remove_file(&renamed).unwrap();
    stop.store(true, Ordering::SeqCst);
    traffic.join().unwrap();
    let new = std::fs::read_to_string(&file).expect("a new file at the path");
    let kept: BTreeSet<String> = ids_in_file(&old)
        .into_iter()
        .chain(ids_in_file(&new))
        .collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<&String> = acked.iter().filter(|id| !kept.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but in neither file: {lost:?}"
    );
    assert!(!new.is_empty(), "nothing was written to the new file");
    // The sink stayed up.
    crate::util::assert_healthy(&sink);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_renamed_log_with_sighup_loses_nothing() {
    rotate(true);
}

#[test]
fn a_renamed_log_without_sighup_loses_nothing() {
    rotate(false);
}

#[test]
fn a_reply_lost_to_a_stalled_relay_is_retried_with_the_same_id() {
    let sink = TierProcess::start("sink", "sink", &[]);
    let good = TierProcess::start("relay", "relay-1", &[("SINK_URL", sink.url("/sink.php"))]);
    let stalled = TierProcess::start("relay", "relay-2", &[("SINK_URL", sink.url("/sink.php"))]);
    // The stalled relay's kernel still accepts connections and takes requests;
    // the process answers nothing until it is continued.
    crate::util::signal_stop(stalled.pid, true);
    let env = [
        (
            "RELAY_URL",
            format!("{},{}", good.url("/relay.php"), stalled.url("/relay.php")),
        ),
        ("SEND_INTERVAL", "50ms".into()),
        ("SEND_COUNT", "10".into()),
        ("RELAY_TIMEOUT", "500ms".into()),
        ("SEND_RETRIES", "3".into()),
        ("POD_IP", "10.0.0.7".into()),
    ];
    let mut sender = TierProcess::start("sender", "sender", &env);
    assert_eq!(
        sender.exit_code(),
        0,
        "every message got a 2xx after retries\n{}",
        sender.output()
    );
    let timed_out: BTreeSet<String> = sender
        .matching(|l| l.starts_with("retry ") && l.contains("timed out"))
        .iter()
        .filter_map(|l| request_id_of(l).map(String::from))
        .collect();
    assert!(
        !timed_out.is_empty(),
        "no message met the stalled relay\n{}",
        sender.output()
    );
    // Continued, the relay finds the requests that timed out with their
    // clients gone, and forwards none of them: each id is logged once, by
    // the retry through the other relay.
    crate::util::signal_stop(stalled.pid, false);
    let logged: Vec<String> = sink
        .wait_lines(10, |l| l.starts_with("From "))
        .expect("every message logged");
    stalled
        .wait_line(|l| l.starts_with("not handled: "))
        .unwrap_or_else(|| {
            panic!(
                "the stalled relay forwarded stale requests\n{}",
                stalled.output()
            )
        });
    for n in 1..=10 {
        let id = format!("10.0.0.7-{n}");
        let times = logged
            .iter()
            .filter(|l| request_id_of(l) == Some(id.as_str()))
            .count();
        assert_eq!(times, 1, "{id} logged {times} times\n{}", sink.output());
    }
    assert!(
        timed_out.iter().all(|id| sink
            .matching(|l| request_id_of(l) == Some(id.as_str()))
            .len()
            == 1),
        "a timed-out message was delivered twice\n{}",
        sink.output()
    );
    let report = crate::util::loss_report_of_lines(&logged);
    assert!(report.contains("received "), "{report}");
    assert!(report.contains(", gaps 0, damaged lines 0"), "{report}");
}
