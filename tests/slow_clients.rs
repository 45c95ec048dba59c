//! Many connections at once: slow ones are cut off on time, kept-alive ones are all served.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{get, heavy_load, metric_in, post, raise_open_file_limit, TierProcess};

const CLIENTS: usize = 1000;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection's deadline is kept by socket timeouts that may overrun it by a
/// few tens of milliseconds; the test itself looks five times a second.
const LATE: Duration = Duration::from_secs(2);

#[test]
fn slow_clients_neither_starve_healthz_nor_outlive_client_timeout() {
    let _alone = heavy_load();
    // Our 1000 sockets plus the sink's 1000 (the child inherits the limit).
    raise_open_file_limit(4096);
    let sink = TierProcess::start("sink", "sink", &[("CLIENT_TIMEOUT", "2s".into())]);
    let request = b"POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";

    let mut clients: Vec<(TcpStream, Instant, Option<Instant>)> = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let stream = TcpStream::connect(sink.addr).expect("connect");
        stream.set_nonblocking(true).unwrap();
        clients.push((stream, Instant::now(), None));
    }
    // The accept thread starts a thread per connection, so a burst of 1000 keeps
    // it busy for tens of milliseconds (bench/flood.py measures /healthz during
    // bursts). Here /healthz is measured while the sink holds them all.
    wait_until_open(&sink, CLIENTS);

    let mut slowest_health = Duration::ZERO;
    let mut answered_while_all_held = 0;
    let mut sent = 0;
    let give_up = Instant::now() + CLIENT_TIMEOUT + LATE + Duration::from_secs(5);
    while clients.iter().any(|c| c.2.is_none()) && Instant::now() < give_up {
        // One more byte from every open client; the request is never completed in time.
        for (stream, _, closed) in clients.iter_mut().filter(|c| c.2.is_none()) {
            if stream.write(&request[sent..=sent]).is_err() {
                *closed = Some(Instant::now());
            }
        }
        sent += 1;
        // For one second: /healthz and a look at every client, five times.
        let pace = Instant::now() + Duration::from_secs(1);
        while Instant::now() < pace {
            let asked = Instant::now();
            let answer = get(sink.addr, "/healthz").expect("healthz answered");
            assert_eq!(answer.status, 200);
            slowest_health = slowest_health.max(asked.elapsed());
            if clients.iter().all(|c| c.2.is_none()) {
                answered_while_all_held += 1;
            }
            for (stream, _, closed) in clients.iter_mut().filter(|c| c.2.is_none()) {
                let mut buf = [0u8; 64];
                match stream.read(&mut buf) {
                    Ok(0) => *closed = Some(Instant::now()),
                    Ok(_) => panic!("a client that sent no complete request got an answer"),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => *closed = Some(Instant::now()),
                }
            }
            // Pacing of the scenario (five looks a second), not a wait for the server.
            std::thread::sleep(
                Duration::from_millis(200).min(pace.saturating_duration_since(Instant::now())),
            );
        }
    }
    assert!(
        answered_while_all_held >= 2,
        "/healthz was answered {answered_while_all_held} time(s) while all {CLIENTS} clients were held"
    );
    assert!(
        sent < request.len(),
        "the test must stop before any request is complete"
    );
    assert!(
        slowest_health < Duration::from_millis(100),
        "/healthz took {slowest_health:?}"
    );
    for (i, (_, opened, closed)) in clients.iter().enumerate() {
        let closed =
            closed.unwrap_or_else(|| panic!("client {i} still open after {:?}", opened.elapsed()));
        let lived = closed - *opened;
        assert!(
            lived >= CLIENT_TIMEOUT,
            "client {i} closed early, after {lived:?}"
        );
        assert!(
            lived <= CLIENT_TIMEOUT + LATE + Duration::from_secs(1),
            "client {i} closed late, after {lived:?}"
        );
    }
    sink.wait_line(|l| l.starts_with("closed ") && l.contains("CLIENT_TIMEOUT=2000ms"))
        .unwrap_or_else(|| panic!("closing is not logged\n{}", sink.output()));
    assert_eq!(post(sink.addr, "/sink.php", "after").unwrap().status, 200);
}

/// Waits (at most 10 s) until the tier reports at least `n` connections open.
fn wait_until_open(tier: &TierProcess, n: usize) {
    let series = "three_tier_connections_open";
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = get(tier.addr, "/metrics").expect("metrics answered").body;
        let open = metric_in(&metrics, series).unwrap_or_else(|| panic!("no {series}:\n{metrics}"));
        if open >= n as f64 {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "{series} is {open}, not {n}, after 10 s"
        );
        // The gauge is sampled once a second; ask again a little later.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kept_alive_connections_opened_together_are_all_served() {
    // Each connection's thread in tiny_http lives as long as the connection.
    // Opened together and kept open, every one must still be served at once,
    // not when another one closes.
    let sink = TierProcess::start("sink", "sink", &[]);
    let request = b"POST /sink.php HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    let mut clients: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(sink.addr).expect("connect"))
        .collect();
    for client in &mut clients {
        client.write_all(request).expect("send");
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let answer = crate::util::read_answer(client)
            .unwrap_or_else(|e| panic!("connection {i} was not served: {e}"));
        assert_eq!(answer.status, 200, "connection {i}");
    }
}
