//! The settings table, each tier's reading of it, and every rejection's words.

use super::*;
use crate::error::Error;
use std::collections::HashMap;
use std::time::Duration;

fn load<C: TierSettings>(vars: &[(&str, &str)]) -> Result<C, Error> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    C::from_lookup(|k| map.get(k).cloned())
}

fn error(role: Role, vars: &[(&str, &str)]) -> String {
    let read = match role {
        Role::Sender => load::<SenderConfig>(vars).map(|_| ()),
        Role::Relay => load::<RelayConfig>(vars).map(|_| ()),
        Role::Sink => load::<SinkConfig>(vars).map(|_| ()),
    };
    match read {
        Ok(()) => panic!("{role} accepted {vars:?}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2);
            e.to_string()
        }
    }
}

#[test]
fn every_default_parses_for_every_role() {
    let sender: SenderConfig = load(&[("RELAY_URL", "relay-svc/relay.php")]).unwrap();
    let (send, peer, sender) = (sender.send, sender.relay, sender.tier);
    assert_eq!(sender.server.listen_addr, "[::]:8080".parse().unwrap());
    assert!(sender.server.listen_fallback);
    assert_eq!(sender.server.max_in_flight, 1024);
    assert_eq!(sender.server.max_connections, 1024);
    assert_eq!(sender.server.max_body_bytes, 16384);
    assert_eq!(sender.server.client_timeout, Duration::from_secs(10));
    assert_eq!(sender.server.drain_delay, Duration::from_secs(5));
    assert_eq!(sender.server.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(send.interval, Duration::from_secs(5));
    assert_eq!(send.count, None);
    assert_eq!(send.retries, 6);
    assert_eq!(peer.timeout, Duration::from_secs(5));
    assert_eq!(
        (peer.max_requests, peer.max_age),
        (10, Duration::from_secs(4))
    );
    assert_eq!(peer.urls[0].host, "relay-svc");

    assert_eq!(
        (sender.log.format, sender.log.fsync),
        (LogFormat::Text, false)
    );

    let relay: RelayConfig = load(&[("SINK_URL", "sink-svc/sink.php")]).unwrap();
    assert_eq!(relay.sink.timeout, Duration::from_secs(2));
    assert!(relay.tier.log.dir.is_none() && relay.tier.pod_ip.is_none());
    assert_eq!(relay.tier.demo_version, None);

    let sink: SinkConfig = load(&[("LOG_FSYNC", "on"), ("LOG_FORMAT", "json")]).unwrap();
    assert_eq!(
        (sink.tier.log.format, sink.tier.log.fsync),
        (LogFormat::Json, true)
    );
}

#[test]
fn values_override_defaults() {
    let c: SenderConfig = load(&[
        ("RELAY_URL", "127.0.0.1:1/,127.0.0.1:2/"),
        ("SEND_INTERVAL", "50ms"),
        ("SEND_COUNT", "20"),
        ("SEND_RETRIES", "0"),
        ("POD_IP", "10.0.0.7"),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("DEMO_VERSION", " blue "),
        ("FAULTS", "on"),
        ("SEND_FAULT", "sink=503, relay-delay=1s@0.25"),
    ])
    .unwrap();
    assert_eq!(c.tier.demo_version.as_deref(), Some("blue"));
    let fault = c.send.fault.unwrap();
    assert_eq!(
        (fault.header.as_str(), fault.per_million),
        ("sink=503, relay-delay=1s", 250_000)
    );
    assert_eq!(c.send.interval, Duration::from_millis(50));
    assert_eq!(c.send.count, Some(20));
    assert_eq!(c.send.retries, 0);
    assert_eq!(c.relay.urls.len(), 2);
    assert_eq!(c.tier.pod_ip, Some("10.0.0.7".parse().unwrap()));
}

#[test]
fn every_configuration_error_names_variable_value_and_form() {
    let relay = [("RELAY_URL", "r/")];
    type Case<'a> = (Role, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            Role::Sender,
            &[],
            "config: RELAY_URL is not set: expected one or more http URLs",
        ),
        (
            Role::Relay,
            &[],
            "config: SINK_URL is not set: expected one or more http URLs",
        ),
        (
            Role::Sender,
            &[("RELAY_URL", "https://x/")],
            r#"config: RELAY_URL="https://x/" is invalid: expected one or more http URLs"#,
        ),
        (
            Role::Relay,
            &[("SINK_URL", "a,,b")],
            r#"config: SINK_URL="a,,b" is invalid: expected one or more http URLs"#,
        ),
        (
            Role::Sender,
            &[relay[0], ("SEND_INTERVAL", "5x")],
            r#"config: SEND_INTERVAL="5x" is invalid: expected a duration such as 250ms, 5s or 1m, or a whole number of seconds"#,
        ),
        (
            Role::Sender,
            &[relay[0], ("SEND_INTERVAL", "0")],
            r#"config: SEND_INTERVAL="0" is invalid: expected a duration such as 250ms, 5s or 1m, or a whole number of seconds greater than zero"#,
        ),
        (
            Role::Sender,
            &[relay[0], ("SEND_COUNT", "0")],
            r#"config: SEND_COUNT="0" is invalid: expected a whole number from 1 to 18446744073709551615"#,
        ),
        (
            Role::Sender,
            &[relay[0], ("SEND_RETRIES", "many")],
            r#"config: SEND_RETRIES="many" is invalid: expected a whole number from 0 to 100"#,
        ),
        (
            Role::Sender,
            &[relay[0], ("RELAY_TIMEOUT", "0ms")],
            r#"config: RELAY_TIMEOUT="0ms" is invalid: expected a duration"#,
        ),
        (
            Role::Relay,
            &[("SINK_URL", "s/"), ("SINK_TIMEOUT", "fast")],
            r#"config: SINK_TIMEOUT="fast" is invalid: expected a duration"#,
        ),
        (
            Role::Sink,
            &[("LISTEN_ADDR", "8080")],
            r#"config: LISTEN_ADDR="8080" is invalid: expected an IP address and port such as 0.0.0.0:8080"#,
        ),
        (
            Role::Sink,
            &[("MAX_IN_FLIGHT", "0")],
            r#"config: MAX_IN_FLIGHT="0" is invalid: expected a whole number from 1 to 100000"#,
        ),
        (
            Role::Sink,
            &[("MAX_BODY_BYTES", "1e6")],
            r#"config: MAX_BODY_BYTES="1e6" is invalid: expected a whole number from 1 to 67108864"#,
        ),
        (
            Role::Sink,
            &[("CLIENT_TIMEOUT", "0s")],
            r#"config: CLIENT_TIMEOUT="0s" is invalid: expected a duration"#,
        ),
        (
            Role::Sink,
            &[("DRAIN_DELAY", "-1")],
            r#"config: DRAIN_DELAY="-1" is invalid: expected a duration"#,
        ),
        (
            Role::Sink,
            &[("SHUTDOWN_TIMEOUT", "10h")],
            r#"config: SHUTDOWN_TIMEOUT="10h" is invalid: expected a duration"#,
        ),
        (
            Role::Relay,
            &[("SINK_URL", "http://s/"), ("DEMO_VERSION", "blue green")],
            r#"config: DEMO_VERSION="blue green" is invalid: expected 1 to 32 letters, digits, '.', '_' or '-', such as blue or v2"#,
        ),
        (
            Role::Sender,
            &[("RELAY_URL", "http://r/"), ("SEND_FAULT", "sink=503@0.1")],
            r#"config: SEND_FAULT="sink=503@0.1" is invalid: expected SEND_FAULT to be unset while FAULTS is off (set FAULTS=on to inject faults)"#,
        ),
        (
            Role::Sender,
            &[("RELAY_URL", "http://r/"), ("FAULTS", "on"), ("SEND_FAULT", "sink=200@2")],
            "config: SEND_FAULT=\"sink=200@2\" is invalid: expected <X-Fault>@<fraction from 0 to 1>, such as sink=503@0.1, where X-Fault is comma-separated relay=<status 400-599|close>, sink=<status 400-599|close>, relay-delay=<duration>, sink-delay=<duration> (at most 10s), such as sink=503 or sink-delay=1500ms",
        ),
        (
            Role::Sink,
            &[("POD_IP", "pod-7")],
            r#"config: POD_IP="pod-7" is invalid: expected an IPv4 or IPv6 address such as 10.1.2.3"#,
        ),
        (
            Role::Sink,
            &[("LOG_DIR", "")],
            r#"config: LOG_DIR="" is invalid: expected a directory path"#,
        ),
        (
            Role::Sender,
            &[relay[0], ("UPSTREAM_MAX_REQUESTS", "0")],
            r#"config: UPSTREAM_MAX_REQUESTS="0" is invalid: expected a whole number from 1 to 1000000"#,
        ),
        (
            Role::Relay,
            &[("SINK_URL", "s/"), ("UPSTREAM_MAX_AGE", "0s")],
            r#"config: UPSTREAM_MAX_AGE="0s" is invalid: expected a duration"#,
        ),
        (
            Role::Sink,
            &[("MAX_CONNECTIONS", "0")],
            r#"config: MAX_CONNECTIONS="0" is invalid: expected a whole number from 1 to 1000000"#,
        ),
        (
            Role::Relay,
            &[("SINK_URL", "s/"), ("UPSTREAM_KEEPALIVE", "on")],
            "config: UPSTREAM_KEEPALIVE is no longer read: use UPSTREAM_MAX_REQUESTS (requests per connection; 1 is what UPSTREAM_KEEPALIVE=off did) and UPSTREAM_MAX_AGE",
        ),
        (
            Role::Sink,
            &[("LOG_FSYNC", "yes")],
            r#"config: LOG_FSYNC="yes" is invalid: expected on or off"#,
        ),
        (
            Role::Relay,
            &[("SINK_URL", "s/"), ("LOG_FORMAT", "xml")],
            r#"config: LOG_FORMAT="xml" is invalid: expected text or json"#,
        ),
        (
            Role::Sink,
            &[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
            r#"config: OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is invalid: expected http/json"#,
        ),
        (
            Role::Sink,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")],
            r#"config: OTEL_EXPORTER_OTLP_ENDPOINT="https://collector:4318" is invalid: expected one http URL"#,
        ),
        (
            Role::Sink,
            &[("OTEL_EXPORTER_OTLP_HEADERS", "api-key")],
            r#"config: OTEL_EXPORTER_OTLP_HEADERS="api-key" is invalid: expected key=value pairs"#,
        ),
        (
            Role::Sink,
            &[("OTEL_TRACES_SAMPLER_ARG", "2")],
            r#"config: OTEL_TRACES_SAMPLER_ARG="2" is invalid: expected a number from 0 to 1"#,
        ),
    ];
    for (role, vars, want) in cases {
        let got = error(*role, vars);
        assert!(
            got.starts_with(want),
            "{role} {vars:?}:\n got: {got}\nwant: {want}…"
        );
    }
}

#[test]
fn zero_drain_delay_is_allowed() {
    let c: SinkConfig = load(&[("DRAIN_DELAY", "0"), ("SHUTDOWN_TIMEOUT", "0")]).unwrap();
    assert_eq!(c.tier.server.drain_delay, Duration::ZERO);
}

#[test]
fn help_lists_every_setting_of_the_role_with_its_default() {
    let h = help(Role::Relay);
    for s in settings_for(Role::Relay) {
        assert!(h.contains(s.name), "{} missing", s.name);
    }
    assert!(h.contains("default: 2s; accepts a duration such as 250ms"));
    assert!(h.contains("default: 1024; accepts a whole number from 1 to 100000"));
    assert!(!h.contains("SEND_INTERVAL"));
}

#[test]
fn every_default_is_a_value_of_its_form() {
    for s in SETTINGS.iter().filter(|s| !s.default.is_empty()) {
        assert!(
            s.set.apply(&mut raw::Raw::default(), s.default).is_ok(),
            "{}={} is not {}",
            s.name,
            s.default,
            s.form().expected()
        );
    }
}

#[test]
fn tracing_is_off_without_an_endpoint_and_reads_the_opentelemetry_names() {
    let off: SinkConfig = load(&[]).unwrap();
    assert_eq!(off.tier.tracing.endpoint, None);
    assert_eq!(off.tier.tracing.sampler, Sampler::ParentBasedAlwaysOn);
    assert_eq!(
        (off.tier.tracing.queue, off.tier.tracing.batch),
        (2048, 512)
    );

    let base: SinkConfig = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b, team=demo"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=sinks-1"),
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500"),
    ])
    .unwrap();
    let t = base.tier.tracing;
    assert_eq!(
        t.endpoint.as_deref(),
        Some("http://collector:4318/v1/traces")
    );
    assert_eq!(
        t.headers,
        [
            ("api-key".into(), "a b".into()),
            ("team".into(), "demo".into())
        ]
    );
    assert_eq!(t.resource, [("k8s.pod.name".into(), "sinks-1".into())]);
    assert_eq!(
        (t.sampler, t.ratio, t.timeout),
        (
            Sampler::ParentBasedTraceIdRatio,
            0.25,
            Duration::from_millis(1500)
        )
    );

    let whole: SinkConfig = load(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://other:4318/traces",
        ),
    ])
    .unwrap();
    assert_eq!(
        whole.tier.tracing.endpoint.as_deref(),
        Some("http://other:4318/traces")
    );
}
