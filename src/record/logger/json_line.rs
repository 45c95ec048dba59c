//! An event as one JSON object on one line (`LOG_FORMAT=json`), written with the crate's own JSON string writer.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::{Event, Level};
use crate::format::{rfc3339, with_ip_text};
use crate::json::{json_opt, json_string};
use crate::role::Role;

/// Appends `e`, as tier `role` logs it, as one JSON object (no newline) to `out`.
pub fn json_into(role: Role, e: &Event, out: &mut String) {
    out.push_str("{\"ts\":");
    json_string(out, &rfc3339(SystemTime::now()));
    out.push_str(",\"level\":");
    json_string(
        out,
        if e.level == Level::Info {
            "info"
        } else {
            "warn"
        },
    );
    out.push_str(",\"tier\":");
    json_string(out, role.name());
    out.push_str(",\"event\":");
    json_string(out, e.event);
    out.push_str(",\"request_id\":");
    json_opt(out, e.request_id);
    out.push_str(",\"trace_id\":");
    json_opt(out, e.trace_id);
    out.push_str(",\"peer\":");
    match e.peer {
        Some(peer) => with_ip_text(peer, |ip| json_string(out, ip)),
        None => out.push_str("null"),
    }
    match e.status {
        Some(status) => {
            let _ = write!(out, ",\"status\":{status}");
        }
        None => out.push_str(",\"status\":null"),
    }
    match e.duration {
        Some(d) => {
            let _ = write!(out, ",\"duration_ms\":{:.3}", d.as_secs_f64() * 1000.0);
        }
        None => out.push_str(",\"duration_ms\":null"),
    }
    out.push_str(",\"message\":");
    match e.message {
        Some(message) => json_string(out, message),
        None => json_string(out, &e.text()),
    }
    out.push('}');
}
