//! IPv6: one socket takes both families by default, and the seed's 3/2/3
//! works in an IPv6-only cluster, names, ids and files included.

use std::collections::HashSet;
use std::process::Command;

use crate::util::{self, TierProcess};
use crate::world::{self, World};

/// curl's answer to `url` over `family` (`-4` or `-6`).
fn curl(family: &str, url: &str) -> String {
    let out = Command::new("curl")
        .args([family, "-sS", "--max-time", "5", url])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "curl {family} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_tier_started_without_listen_addr_answers_over_ipv6_and_ipv4() {
    world::inside(
        module_path!(),
        "a_tier_started_without_listen_addr_answers_over_ipv6_and_ipv4",
        world::V4,
        |_| {
            let sink = TierProcess::start_on_default_address(
                "sink",
                "sink",
                &[("POD_IP", "10.244.3.1".into())],
            );
            assert_eq!(sink.addr.to_string(), "[::]:8080", "{}", sink.output());
            assert_eq!(curl("-6", "http://[::1]:8080/healthz"), "ok");
            assert_eq!(curl("-4", "http://127.0.0.1:8080/healthz"), "ok");
            // An IPv4 client is named as IPv4, not as ::ffff:127.0.0.1.
            let answer =
                util::post("127.0.0.1:8080".parse().unwrap(), "/sink.php", "over IPv4").unwrap();
            assert_eq!(answer.body, "Logged message from 127.0.0.1");
        },
    );
}

/// `fd00:10:244:<subnet>::<i>`, a pod address in the IPv6-only world.
fn pod_ip(subnet: u8, i: usize) -> String {
    format!("fd00:10:244:{subnet}::{i}")
}

fn pods(
    world: &World,
    bin: &str,
    subnet: u8,
    n: usize,
    env: &[(&str, String)],
) -> Vec<TierProcess> {
    (1..=n)
        .map(|i| world.pod(bin, &format!("{bin}-{i}"), &pod_ip(subnet, i), env))
        .collect()
}

fn endpoints(subnet: u8, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("[{}]:8080", pod_ip(subnet, i)))
        .collect()
}

#[test]
fn the_seeds_3_2_3_runs_in_an_ipv6_only_cluster() {
    world::inside(
        module_path!(),
        "the_seeds_3_2_3_runs_in_an_ipv6_only_cluster",
        world::V6_ONLY,
        |world| {
            let logs = world.dir().join("logs");
            std::fs::create_dir_all(&logs).unwrap();
            let log_dir = ("LOG_DIR", logs.display().to_string());
            let _sinks = pods(world, "sink", 3, 3, std::slice::from_ref(&log_dir));
            world.service("sink-svc", "fd00:10:96::20", 80, &endpoints(3, 3));
            let relay_env = [log_dir.clone(), ("SINK_URL", "sink-svc/sink.php".into())];
            let _relays = pods(world, "relay", 2, 2, &relay_env);
            world.service("relay-svc", "fd00:10:96::30", 80, &endpoints(2, 2));
            let sender_env = [
                ("RELAY_URL", "relay-svc/relay.php".to_string()),
                ("SEND_INTERVAL", "50ms".into()),
            ];
            let mut senders = pods(world, "sender", 1, 3, &sender_env);
            for sender in &senders {
                sender
                    .wait_lines(10, |l| l.contains(" -> relay "))
                    .expect("10 messages through");
            }
            // /flow names every hop by its IPv6 address.
            let flow = util::get(senders[0].addr, "/flow").unwrap().body;
            let flow: serde_json::Value = serde_json::from_str(&flow).unwrap();
            assert_eq!(flow["sender"]["ip"], pod_ip(1, 1));
            let message = &flow["messages"][0];
            assert!(
                message["id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{}-", pod_ip(1, 1))),
                "{message}"
            );
            assert!(
                message["relay"]
                    .as_str()
                    .unwrap()
                    .starts_with("fd00:10:244:2::"),
                "{message}"
            );
            assert!(
                message["sink"]
                    .as_str()
                    .unwrap()
                    .starts_with("fd00:10:244:3::"),
                "{message}"
            );
            let mut sent = 0;
            for (i, sender) in senders.iter_mut().enumerate() {
                sender.sigterm();
                assert_eq!(sender.exit_code(), 0, "{}", sender.output());
                let ip = pod_ip(1, i + 1);
                let ids: Vec<String> = sender
                    .matching(|l| util::record(l, util::Verb::Sending).is_some())
                    .iter()
                    .map(|l| util::request_id_of(l).unwrap().to_string())
                    .collect();
                assert!(
                    ids.iter()
                        .enumerate()
                        .all(|(n, id)| *id == format!("{ip}-{}", n + 1)),
                    "{ids:?}"
                );
                let lineage = sender.matching(|l| l.contains(" -> relay "));
                assert_eq!(lineage.len(), ids.len(), "{}", sender.output());
                for line in &lineage {
                    let (_, hops) = line.split_once(" -> relay ").unwrap();
                    assert!(
                        hops.starts_with("fd00:10:244:2::")
                            && hops.contains(" -> sink fd00:10:244:3::"),
                        "{line}"
                    );
                    assert!(hops.contains(" 200 in "), "{line}");
                }
                sent += ids.len();
            }
            // The seed's file names with IPv6 addresses, and the loss report over them.
            let files: Vec<std::path::PathBuf> = std::fs::read_dir(&logs)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            let names: HashSet<String> = files
                .iter()
                .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            for i in 1..=2 {
                assert!(
                    names.contains(&format!("Relay_{}.txt", pod_ip(2, i))),
                    "{names:?}"
                );
            }
            let sink_files: Vec<std::path::PathBuf> = files
                .into_iter()
                .filter(|f| f.to_string_lossy().contains("/Sink_fd00:10:244:3::"))
                .collect();
            assert!(
                sink_files.len() >= 2,
                "messages reached more than one sink: {names:?}"
            );
            let (code, report) = util::loss_report(&sink_files);
            assert_eq!(code, 0, "{report}");
            assert!(
                report.contains(&format!(
                    "total: 3 sender(s), received {sent}, duplicates 0, gaps 0, damaged lines 0"
                )),
                "{report}"
            );
            for i in 1..=3 {
                assert!(
                    report.contains(&format!("sender {}: received ", pod_ip(1, i))),
                    "{report}"
                );
            }
            // The sink names its peer by an IPv6 address. (In this world every pod
            // is on one loopback, so the kernel picks the Service's address as the
            // relay's source; in a cluster it is the relay pod's.)
            let text = std::fs::read_to_string(&sink_files[0]).unwrap();
            assert!(
                text.lines().all(|l| l.starts_with("From fd00:10:")),
                "{text}"
            );
        },
    );
}
