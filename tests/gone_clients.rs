//! Clients that gave up: a request whose client reset its connection before
//! the tier got to it is not carried out (not recorded, not forwarded), on
//! a new connection and on a kept-alive one, however long the tier stalled.
//! A kept-alive client answered moments before is taken to be there without
//! a syscall (`tiny_http::Request::client_closed`); these tests pin that
//! the shortcut never covers a client that had time to give up.

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use crate::util::{
    heavy_load, metric, post_request, read_answer, recorded_ids, signal_stop, temp_dir, TierProcess,
};

/// A kept-alive POST of `body` to the sink.
fn message(body: &str) -> Vec<u8> {
    post_request("/sink.php", body, "")
}

/// Closes `stream` with a reset, as a client whose deadline passed does.
fn reset(stream: TcpStream) {
    rustix::net::sockopt::set_socket_linger(&stream, Some(Duration::ZERO)).unwrap();
    drop(stream);
}

#[test]
fn a_request_whose_client_reset_while_the_sink_was_stopped_is_not_recorded() {
    let dir = temp_dir("gone-stopped-sink");
    let sink = TierProcess::start("sink", "sink", &[("LOG_DIR", dir.display().to_string())]);
    let mut kept = TcpStream::connect(sink.addr).unwrap();
    kept.write_all(&message("kept-1")).unwrap();
    assert_eq!(read_answer(&mut kept).unwrap().status, 200);
    signal_stop(sink.pid, true);
    // While it is stopped: a second request on the kept-alive connection,
    // and a first one on a new connection (the kernel completes the
    // handshake), each followed by a reset.
    kept.write_all(&message("kept-2")).unwrap();
    reset(kept);
    let mut fresh = TcpStream::connect(sink.addr).unwrap();
    fresh.write_all(&message("fresh-1")).unwrap();
    reset(fresh);
    // The stall itself, longer than a kept-alive client is trusted for.
    thread::sleep(Duration::from_millis(100));
    signal_stop(sink.pid, false);
    let mut after = TcpStream::connect(sink.addr).unwrap();
    after.write_all(&message("after")).unwrap();
    assert_eq!(read_answer(&mut after).unwrap().status, 200);
    sink.wait_lines(2, |l| l.starts_with("From "))
        .expect("kept-1 and after recorded");
    // Both requests were read and found without a client.
    sink.wait_line(|l| l.starts_with("not handled: 2 message(s)"))
        .unwrap_or_else(|| panic!("not both found gone:\n{}", sink.output()));
    let record = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        record.contains("kept-1") && record.contains("after"),
        "{record}"
    );
    assert!(
        !record.contains("kept-2") && !record.contains("fresh-1"),
        "a request whose client had gone was recorded:\n{record}\n{}",
        sink.output()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn after_a_stalled_relay_the_attempts_whose_clients_gave_up_are_not_forwarded() {
    let _heavy = heavy_load();
    let dir = temp_dir("gone-stalled-relay");
    let sink = TierProcess::start("sink", "sink", &[("LOG_DIR", dir.display().to_string())]);
    let relay = TierProcess::start("relay", "relay", &[("SINK_URL", sink.url("/sink.php"))]);
    let env = [
        ("RELAY_URL", relay.url("/relay.php")),
        ("RELAY_TIMEOUT", "1s".into()),
        ("SEND_INTERVAL", "100ms".into()),
        ("SEND_COUNT", "30".into()),
    ];
    let mut sender = TierProcess::start("sender", "sender", &env);
    sender
        .wait_lines(5, |l| l.contains(" -> relay "))
        .expect("messages before the stall");
    signal_stop(relay.pid, true);
    thread::sleep(Duration::from_secs(3)); // the stall: three RELAY_TIMEOUTs
    signal_stop(relay.pid, false);
    assert_eq!(sender.exit_code(), 0, "{}", sender.output());
    let ids = recorded_ids(&dir, "Sink_");
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "logged more than once: {twice:?}\n{}",
        relay.output()
    );
    assert_eq!(ids.len(), 30, "every message logged");
    assert!(
        metric(&relay, "three_tier_messages_abandoned_total") >= 1.0,
        "{}",
        relay.output()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
