//! A batch of spans as OTLP/HTTP's JSON request body (`ExportTraceServiceRequest`), written with the crate's JSON string writer.
//!
//! As the OTLP specification's JSON encoding asks: lowerCamelCase keys,
//! trace and span ids as hex (not base64), enums as integers, 64-bit
//! integers (times, whole-number attributes) as decimal strings.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Span, SpanEvent, Value};
use crate::format::push_decimal;
use crate::json::json_string;
use crate::observe::trace::push_hex;

/// The instrumentation scope every span is recorded by.
const SCOPE: &str = "three-tier";

/// The process's resource, as [`request`] takes it: `{"attributes":[...]}`.
pub fn resource(attributes: &[(String, String)]) -> String {
    let mut out = String::from("{\"attributes\":[");
    for (i, (key, value)) in attributes.iter().enumerate() {
        comma(&mut out, i);
        open_attribute(&mut out, key);
        string_value(&mut out, value);
        out.push_str("}}");
    }
    out.push_str("]}");
    out
}

/// `spans` from the process `resource` ([`resource`]'s) describes, as one request body.
pub fn request(resource: &str, spans: &[Span]) -> String {
    let mut out = String::with_capacity(256 + spans.len() * 640);
    out.push_str("{\"resourceSpans\":[{\"resource\":");
    out.push_str(resource);
    out.push_str(",\"scopeSpans\":[{\"scope\":{\"name\":");
    json_string(&mut out, SCOPE);
    out.push_str(",\"version\":");
    json_string(&mut out, crate::version::VERSION);
    out.push_str("},\"spans\":[");
    for (i, span) in spans.iter().enumerate() {
        comma(&mut out, i);
        write_span(&mut out, span);
    }
    out.push_str("]}]}]}");
    out
}

fn write_span(out: &mut String, span: &Span) {
    out.push_str("{\"traceId\":\"");
    push_hex(out, &span.trace_id);
    out.push_str("\",\"spanId\":\"");
    push_hex(out, &span.span_id);
    out.push('"');
    if let Some(parent) = span.parent_id {
        out.push_str(",\"parentSpanId\":\"");
        push_hex(out, &parent);
        out.push('"');
    }
    out.push_str(",\"name\":");
    json_string(out, &span.name);
    out.push_str(",\"kind\":");
    push_decimal(out, span.kind as u64);
    time(out, "startTimeUnixNano", span.start);
    time(out, "endTimeUnixNano", span.end);
    out.push_str(",\"attributes\":[");
    attributes(out, &span.attributes);
    out.push_str("],\"events\":[");
    for (i, event) in span.events.iter().enumerate() {
        comma(out, i);
        write_event(out, event);
    }
    out.push_str("],\"status\":{");
    if let Some(message) = &span.error {
        out.push_str("\"code\":2,\"message\":");
        json_string(out, message);
    }
    out.push_str("}}");
}

fn write_event(out: &mut String, event: &SpanEvent) {
    out.push('{');
    time(out, "timeUnixNano", event.time);
    out.push_str(",\"name\":");
    json_string(out, event.name);
    out.push_str(",\"attributes\":[");
    attributes(out, &event.attributes);
    out.push_str("]}");
}

fn attributes(out: &mut String, attributes: &[(&'static str, Value)]) {
    for (i, (key, value)) in attributes.iter().enumerate() {
        comma(out, i);
        attribute(out, key, value);
    }
}

/// An attribute of a span or an event; its key is one of the crate's
/// constants (plain ASCII: nothing to escape).
fn attribute(out: &mut String, key: &'static str, value: &Value) {
    out.push_str("{\"key\":\"");
    out.push_str(key);
    out.push_str("\",\"value\":{");
    match value {
        Value::Str(text) => string_value(out, text),
        Value::Ip(ip) => {
            out.push_str("\"stringValue\":\"");
            push_ip(out, *ip);
            out.push('"');
        }
        Value::Int(n) => {
            out.push_str(if *n < 0 {
                "\"intValue\":\"-"
            } else {
                "\"intValue\":\""
            });
            push_decimal(out, n.unsigned_abs());
            out.push('"');
        }
    }
    out.push_str("}}");
}

/// `{"key":<key>,"value":{`: an attribute up to its value, its key escaped.
fn open_attribute(out: &mut String, key: &str) {
    out.push_str("{\"key\":");
    json_string(out, key);
    out.push_str(",\"value\":{");
}

fn string_value(out: &mut String, text: &str) {
    out.push_str("\"stringValue\":");
    json_string(out, text);
}

/// `ip` as text: an IPv4 address octet by octet, an IPv6 one as `Display` writes it.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                comma_or(out, i, '.');
                push_decimal(out, u64::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// `,"<key>":"<unix nanoseconds>"` (a leading comma: never the first field).
fn time(out: &mut String, key: &str, at: SystemTime) {
    // u64 nanoseconds reach the year 2554.
    let nanos = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    if !out.ends_with('{') {
        out.push(',');
    }
    out.push('"');
    out.push_str(key);
    out.push_str("\":\"");
    push_decimal(out, nanos);
    out.push('"');
}

fn comma(out: &mut String, i: usize) {
    comma_or(out, i, ',');
}

/// `separator` before every item but the first (`i` = 0).
fn comma_or(out: &mut String, i: usize, separator: char) {
    if i > 0 {
        out.push(separator);
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::otlp::Kind;
    use std::time::Duration;

    #[test]
    fn a_span_is_the_specifications_json_with_hex_ids_and_integer_enums() {
        let at = UNIX_EPOCH + Duration::from_nanos(1_733_480_000_000_000_000);
        let span = Span {
            trace_id: [0x0a; 16],
            span_id: [0xb7; 8],
            parent_id: Some([0x01; 8]),
            name: "POST /relay.php".into(),
            kind: Kind::Server,
            start: at,
            end: at + Duration::from_millis(1),
            attributes: vec![
                ("http.request.method", Value::Str("POST".into())),
                ("http.response.status_code", Value::Int(503)),
                (
                    "network.peer.address",
                    Value::Ip("10.0.0.17".parse().unwrap()),
                ),
                ("server.address", Value::Ip("fd00::1:2".parse().unwrap())),
                ("three_tier.offset", Value::Int(-40)),
            ],
            events: vec![SpanEvent {
                name: "record",
                time: at,
                attributes: vec![("three_tier.outcome", Value::Str("written \"ok\"".into()))],
            }],
            error: Some("sink answered 503".into()),
        };
        let resource = [("service.name".to_string(), "relay".to_string())];
        let body = request(&super::resource(&resource), &[span]);
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        let span = &parsed["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "0a".repeat(16));
        assert_eq!(span["spanId"], "b7".repeat(8));
        assert_eq!(span["parentSpanId"], "01".repeat(8));
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1733480000000000000");
        assert_eq!(span["endTimeUnixNano"], "1733480000001000000");
        assert_eq!(span["attributes"][1]["value"]["intValue"], "503");
        assert_eq!(span["attributes"][2]["value"]["stringValue"], "10.0.0.17");
        assert_eq!(span["attributes"][3]["value"]["stringValue"], "fd00::1:2");
        assert_eq!(span["attributes"][4]["value"]["intValue"], "-40");
        assert_eq!(span["events"][0]["name"], "record");
        assert_eq!(span["events"][0]["timeUnixNano"], "1733480000000000000");
        assert_eq!(span["status"]["code"], 2);
        let resource = &parsed["resourceSpans"][0]["resource"]["attributes"][0];
        assert_eq!(resource["value"]["stringValue"], "relay");
    }
}
