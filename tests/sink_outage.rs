//! The relay's only sink goes away mid-run and comes back.

use crate::util::{post, text_of, TierProcess};

#[test]
fn relay_answers_502_sender_retries_and_recovers_when_the_sink_returns() {
    let mut sink = TierProcess::start("sink", "sink", &[("DRAIN_DELAY", "0".into())]);
    let sink_addr = sink.addr;
    let sink_url = sink.url("/sink.php");
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink_url.clone())]);
    let mut sender = TierProcess::start(
        "sender",
        "sender",
        &[
            ("RELAY_URL", relay.url("/relay.php")),
            ("SEND_INTERVAL", "100ms".into()),
            ("SEND_RETRIES", "2".into()),
        ],
    );
    let ok = |l: &str| text_of(l) == "Logged message from 127.0.0.1";
    sender.wait_line(ok).expect("first message delivered");

    sink.sigterm();
    assert_eq!(sink.exit_code(), 0, "{}", sink.output());
    drop(sink);

    let answer = post(relay.addr, "/relay.php", "while the sink is down").unwrap();
    assert_eq!(answer.status, 502, "{}", answer.body);
    assert!(
        answer.body.starts_with("relay: sink unreachable: "),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(&sink_url),
        "names the URL: {}",
        answer.body
    );
    assert!(
        answer.body.to_lowercase().contains("refused"),
        "names the reason: {}",
        answer.body
    );

    sender
        .wait_line(|l| l.starts_with("retry 1/2 in ") && l.contains("answered 502"))
        .expect("a retry after 502");
    sender
        .wait_line(|l| l.starts_with("message failed after 3 attempt(s): "))
        .expect("a failure after the last retry");

    let delivered_before = sender.matching(ok).len();
    let _sink = TierProcess::start(
        "sink",
        "sink-again",
        &[("LISTEN_ADDR", sink_addr.to_string())],
    );
    sender
        .wait_lines(delivered_before + 1, ok)
        .unwrap_or_else(|| panic!("no delivery after the sink came back\n{}", sender.output()));
    assert!(
        sender.wait_exit(std::time::Duration::ZERO).is_none(),
        "the sender kept running"
    );

    sender.sigterm();
    assert_eq!(sender.exit_code(), 0, "{}", sender.output());
}
