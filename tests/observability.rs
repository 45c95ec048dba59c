//! Request ids, JSON logs and loss accounting, observed from outside.

use std::collections::BTreeSet;

use crate::util::loss_report_of_lines;
use crate::util::{exchange, request_id_of, temp_dir, text_of, TierProcess};

#[test]
fn a_client_request_id_reaches_the_sink_log_and_comes_back() {
    let sink = TierProcess::start("sink", "sink", &[("POD_IP", "127.0.2.9".into())]);
    let relay = TierProcess::start(
        "relay",
        "relay",
        &[
            ("SINK_URL", sink.url("/sink.php")),
            ("POD_IP", "127.0.1.9".into()),
        ],
    );
    let raw = "POST /relay.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: client-abc.42\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let answer = exchange(relay.addr, raw.as_bytes()).unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "Logged message from 127.0.0.1")
    );
    assert_eq!(
        answer.header("X-Request-Id").as_deref(),
        Some("client-abc.42")
    );
    assert_eq!(answer.header("X-Relay-Ip").as_deref(), Some("127.0.1.9"));
    assert_eq!(answer.header("X-Sink-Ip").as_deref(), Some("127.0.2.9"));
    let line = sink.wait_line(|l| l.starts_with("From ")).unwrap();
    assert_eq!(request_id_of(&line), Some("client-abc.42"), "{line}");
    let line = relay
        .wait_line(|l| crate::util::record(l, crate::util::Verb::Relaying).is_some())
        .unwrap();
    assert_eq!(request_id_of(&line), Some("client-abc.42"), "{line}");

    // An id with characters that do not belong in a log line is replaced, not echoed.
    let raw = "POST /relay.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: a b\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi";
    let answer = exchange(relay.addr, raw.as_bytes()).unwrap();
    assert_eq!(
        answer.header("X-Request-Id").as_deref(),
        Some("127.0.1.9-r1")
    );
}

#[test]
fn json_logs_parse_line_by_line_whatever_the_message() {
    let env = [("LOG_FORMAT", "json".to_string())];
    let sink = TierProcess::start("sink", "sink", &env);
    let relay = TierProcess::start(
        "relay",
        "relay",
        &[env[0].clone(), ("SINK_URL", sink.url("/sink.php"))],
    );
    let nasty = [
        "quotes \" and 'single'",
        "back\\slash \\n not a newline",
        "controls \u{1}\u{7}\u{1b}[31m\t\r\nnext line",
        "non-ASCII: héllo, 日本語, emoji 🚀, \u{2028}separator",
        "{\"looks\":\"like json\"}",
    ];
    for (i, message) in nasty.iter().enumerate() {
        let raw = format!(
            "POST /relay.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: json-{i}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{message}",
            message.len()
        );
        assert_eq!(exchange(relay.addr, raw.as_bytes()).unwrap().status, 200);
    }
    // Something that is not a message too: a rejection.
    assert_eq!(
        crate::util::get(relay.addr, "/relay.php").unwrap().status,
        405
    );
    sink.wait_lines(nasty.len() + 1, |_| true)
        .expect("sink lines");
    relay
        .wait_lines(nasty.len() + 2, |_| true)
        .expect("relay lines");

    for (tier, event) in [(&sink, "logged"), (&relay, "relaying")] {
        let mut messages = BTreeSet::new();
        for line in tier.lines() {
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", tier.name));
            for key in [
                "ts",
                "level",
                "tier",
                "event",
                "request_id",
                "peer",
                "status",
                "duration_ms",
                "message",
            ] {
                assert!(value.get(key).is_some(), "{line} lacks {key}");
            }
            assert_eq!(value["tier"], tier.name.as_str());
            let ts = value["ts"].as_str().unwrap();
            assert!(
                ts.len() == 24 && ts.ends_with('Z') && &ts[10..11] == "T",
                "{ts}"
            );
            if value["event"] == event {
                assert_eq!(value["peer"], "127.0.0.1");
                messages.insert(value["message"].as_str().unwrap().to_string());
            }
        }
        let want: BTreeSet<String> = nasty.iter().map(|m| m.to_string()).collect();
        assert_eq!(messages, want, "{} messages round-trip exactly", tier.name);
    }
    assert!(relay
        .lines()
        .iter()
        .any(|l| l.contains(r#""event":"rejected""#) && l.contains(r#""status":405"#)));
}

#[test]
fn loss_report_gaps_are_exactly_the_messages_the_sender_gave_up_on() {
    let dir = std::env::temp_dir().join(format!("three-tier-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sink_env = |addr: String| {
        vec![
            ("LOG_DIR", dir.display().to_string()),
            ("POD_IP", "127.0.2.1".to_string()),
            ("DRAIN_DELAY", "0".to_string()),
            ("LISTEN_ADDR", addr),
        ]
    };
    let mut sink = TierProcess::start("sink", "sink", &sink_env("127.0.0.1:0".into()));
    let sink_addr = sink.addr;
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink.url("/sink.php"))]);
    let env = [
        ("RELAY_URL", relay.url("/relay.php")),
        ("SEND_INTERVAL", "50ms".into()),
        ("SEND_RETRIES", "0".into()),
        ("POD_IP", "10.0.0.1".into()),
    ];
    let mut sender = TierProcess::start("sender", "sender", &env);
    let delivered = |l: &str| text_of(l) == "Logged message from 127.0.0.1";
    sender
        .wait_lines(3, delivered)
        .expect("deliveries before the outage");

    sink.sigterm();
    assert_eq!(sink.exit_code(), 0);
    drop(sink);
    sender
        .wait_lines(3, |l| l.starts_with("message failed after 1 attempt(s): "))
        .expect("failures during the outage");
    let before = sender.matching(delivered).len();
    let _sink = TierProcess::start("sink", "sink-again", &sink_env(sink_addr.to_string()));
    sender
        .wait_lines(before + 3, delivered)
        .expect("deliveries after the outage");
    sender.sigterm();
    assert_eq!(sender.exit_code(), 0);

    let failed: Vec<u64> = sender
        .matching(|l| l.starts_with("message failed"))
        .iter()
        .filter_map(|l| request_id_of(l)?.rsplit_once('-')?.1.parse().ok())
        .collect();
    assert!(failed.len() >= 3);
    let file = dir.join("Sink_127.0.2.1.txt");
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let report = loss_report_of_lines(&lines);
    let sender_line = report
        .lines()
        .find(|l| l.starts_with("sender 10.0.0.1: "))
        .unwrap_or_else(|| panic!("{report}"));
    // Gap ranges, `[4-6 9]`, each number listed.
    let gaps: Vec<u64> = sender_line
        .rsplit_once("gaps ")
        .and_then(|(_, g)| {
            g.split_once('[').map(|(_, list)| {
                let ranges = list.trim_end_matches(']').split(' ');
                let numbers = |r: &str| -> Vec<u64> {
                    let (a, b) = r.split_once('-').unwrap_or((r, r));
                    (a.parse().unwrap()..=b.parse().unwrap()).collect()
                };
                ranges.flat_map(numbers).collect()
            })
        })
        .unwrap_or_default();
    assert_eq!(
        gaps, failed,
        "gaps in the sink log must be exactly the failed messages\n{report}"
    );
    assert!(sender_line.contains("duplicates 0,"), "{report}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `sink --loss-report` on `files`; returns its peak memory (kB, the
/// process's maximum resident set as `getrusage` gives it) and its report.
fn loss_report_memory(files: &[std::path::PathBuf]) -> (u64, String) {
    let mut report = crate::util::command("sink");
    report.arg("--loss-report").args(files);
    let argv = std::iter::once(report.get_program()).chain(report.get_args());
    let measure = "import resource, subprocess, sys\n\
        r = subprocess.run(sys.argv[1:], capture_output=True, timeout=60)\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.stdout.write(r.stdout.decode())";
    let out = std::process::Command::new("python3")
        .args(["-c", measure])
        .args(argv)
        .output()
        .expect("python3 measures the report's memory");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (kb, report) = text.split_once('\n').unwrap_or_else(|| panic!("{text}"));
    (
        kb.trim().parse().unwrap_or_else(|_| panic!("{text}")),
        report.to_string(),
    )
}

#[test]
fn the_loss_report_takes_memory_for_lines_not_for_the_values_of_ids() {
    // Any client can post these ids, and the tiers record them.
    let dir = temp_dir("loss-report-ids");
    let sink = TierProcess::start("sink", "sink", &[("LOG_DIR", dir.display().to_string())]);
    let post = |id: &str| {
        let raw = format!("POST /sink.php HTTP/1.1\r\nHost: t\r\nX-Request-Id: {id}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        assert_eq!(
            crate::util::exchange(sink.addr, raw.as_bytes())
                .unwrap()
                .status,
            200
        );
    };
    for id in [
        "127.0.0.9-1",
        "127.0.0.9-4",
        "127.0.0.9-18446744073709551615",
    ] {
        post(id);
    }
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let (small, _) = loss_report_memory(&files);
    for id in [
        "127.0.0.9-9007199254740991",
        "127.0.0.9-18446744073709551614",
        "client-7",
    ] {
        post(id);
    }
    let (large, report) = loss_report_memory(&files);
    assert!(
        report.starts_with("sender 127.0.0.9: received 3, duplicates 0, gaps 9007199254740988 [2-3 5-9007199254740990]\n"),
        "{report}"
    );
    assert!(
        report.contains("ids in no form or range the tiers make (not counted for gaps): 3, such as 127.0.0.9-18446744073709551615 127.0.0.9-18446744073709551614 client-7\n"),
        "{report}"
    );
    // A gap of 2^53 numbers costs what any gap does.
    assert!(
        large < small + 10 * 1024,
        "{small} kB for 3 lines, {large} kB for 6"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_misspelt_setting_is_named_once_and_a_kubernetes_service_variable_is_not() {
    let env = [
        ("SEND_INTERVALL", "1s".to_string()),
        ("RELAY_SVC_PORT", "tcp://10.96.0.7:80".to_string()),
        ("SINK_SVC_SERVICE_HOST", "10.96.0.8".to_string()),
    ];
    let sink = TierProcess::start("sink", "sink", &env);
    let warning = "SEND_INTERVALL is not a setting; did you mean SEND_INTERVAL? (see --help)";
    // It still runs; a refusal's line comes after every start-up line.
    assert_eq!(
        crate::util::get(sink.addr, "/sink.php").unwrap().status,
        405
    );
    sink.wait_line(|l| l.starts_with("answered GET /sink.php"))
        .expect("the refusal's line");
    let named = sink.matching(|l| l.contains("is not a setting"));
    assert_eq!(named, vec![warning.to_string()], "{}", sink.output());
    assert!(!sink.output().contains("SVC"), "{}", sink.output());
}
