//! Faults on demand, for drills and demos: off unless `FAULTS=on`.
//!
//! Two ways in, both applied by the relay or the sink to a message on its
//! arrival, before it is recorded (so a refused message is not logged, and
//! the sender's retry is not a duplicate). Per message: the request header
//! `X-Fault: sink=503, relay-delay=1500ms` names what each tier does to that
//! message only (`relay=` or `sink=` a status 400-599 or `close`, the
//! connection closed unanswered; `relay-delay=` or `sink-delay=` a wait of at
//! most [`MAX_DELAY`]); the relay forwards the header to the sink, and the
//! sender adds it to the first attempt of a fraction of its messages
//! (`SEND_FAULT=sink=503@0.1`; a retry goes without, as after a transient
//! fault). Per replica: `POST /fault?status=503&for=60s` (or `delay=`,
//! `refuse`, `unready`) sets a standing fault on that pod until `DELETE
//! /fault` or the `for` time (default [`DEFAULT_FOR`], at most [`MAX_FOR`]);
//! `GET /fault` shows it. `/healthz`, `/metrics` and `/fault` are never
//! affected, and `/readyz` only by `unready`, as in podinfo's rule. A fault
//! met is answered with `X-Fault-Met: sink=503` (the relay passes the sink's
//! on), logged with the message's request id and counted by kind. With
//! faults off the header is ignored and `/fault` is a path like any other.
//!
//! A drill cannot take the ordinary traffic's place: a header names each kind
//! (an answer, a delay) at most once per tier; the delays a message meets at
//! a tier (its header's and the standing one) add up to at most
//! [`MAX_DELAY`] and at most `CLIENT_TIMEOUT`, the time a connection is given
//! for a whole request; and at most half of `MAX_IN_FLIGHT` messages wait in
//! an injected delay at once (each also holds its in-flight slot), so the
//! other half is always there for messages without one: past it a message
//! with a delay is answered 503 with `Retry-After`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::in_flight::{InFlight, Permit};
use crate::role::Role;
use crate::values;

/// The per-message request header.
pub const HEADER: &str = "X-Fault";
/// The answer's header naming the fault a message met, such as `sink=503`.
pub const MET: &str = "X-Fault-Met";
/// The control endpoint.
pub const PATH: &str = "/fault";
/// The longest delay a fault may ask for.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// How long a standing fault lasts unless `for` says otherwise.
pub const DEFAULT_FOR: Duration = Duration::from_secs(300);
/// The longest a standing fault may last.
pub const MAX_FOR: Duration = Duration::from_secs(3600);

/// The per-message faults' form, for error messages.
pub const HEADER_FORM: &str = "comma-separated relay=<status 400-599|close>, sink=<status 400-599|close>, relay-delay=<duration>, sink-delay=<duration> (at most 10s), such as sink=503 or sink-delay=1500ms";

/// What a tier does to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Answer this status without handling the message.
    Status(u16),
    /// Close the connection without answering.
    Close,
    /// Wait this long, then handle the message as usual.
    Delay(Duration),
}

impl Action {
    /// The metric label: `status`, `close` or `delay`.
    pub fn kind(self) -> &'static str {
        match self {
            Action::Status(_) => "status",
            Action::Close => "close",
            Action::Delay(_) => "delay",
        }
    }

    /// As `X-Fault-Met` and the log name it, for tier `role`: `sink=503`, `relay-delay=1500ms`.
    pub fn describe(self, role: Role) -> String {
        match self {
            Action::Status(status) => format!("{role}={status}"),
            Action::Close => format!("{role}=close"),
            Action::Delay(d) => format!("{role}-delay={}ms", d.as_millis()),
        }
    }
}

/// The actions an `X-Fault` header asks of `role`, or why it is not one.
pub fn parse_header(text: &str, role: Role) -> Result<Vec<Action>, String> {
    let mut actions = Vec::new();
    let mut seen = Vec::with_capacity(4);
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not key=value"))?;
        let (tier, delay) = match key.trim() {
            "relay" => (Role::Relay, false),
            "sink" => (Role::Sink, false),
            "relay-delay" => (Role::Relay, true),
            "sink-delay" => (Role::Sink, true),
            other => {
                return Err(format!(
                    "{other:?} is not relay, sink, relay-delay or sink-delay"
                ))
            }
        };
        let action = if delay {
            Action::Delay(delay_of(value)?)
        } else {
            answer_of(value)?
        };
        if seen.contains(&key.trim()) {
            return Err(format!("{:?} is named twice: one of each", key.trim()));
        }
        seen.push(key.trim());
        if tier == role {
            actions.push(action);
        }
    }
    Ok(actions)
}

/// Whether `text` is a valid `X-Fault` value naming at least one fault.
pub fn is_header(text: &str) -> bool {
    let relay = parse_header(text, Role::Relay);
    let sink = parse_header(text, Role::Sink);
    matches!((relay, sink), (Ok(r), Ok(s)) if !r.is_empty() || !s.is_empty())
}

/// Whether `text` may be passed on and shown as an `X-Fault-Met` value
/// ([`Action::describe`] writes them: `sink=503`, `relay-delay=1500ms`).
pub fn is_met(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'-'))
}

fn delay_of(value: &str) -> Result<Duration, String> {
    values::duration(value.trim())
        .ok()
        .filter(|d| *d <= MAX_DELAY)
        .ok_or_else(|| format!("delay {value:?} is not a duration of at most 10s, such as 1500ms"))
}

fn answer_of(value: &str) -> Result<Action, String> {
    match value.trim() {
        "close" => Ok(Action::Close),
        v => v
            .parse::<u16>()
            .ok()
            .filter(|s| (400..=599).contains(s))
            .map(Action::Status)
            .ok_or_else(|| format!("{v:?} is not a status from 400 to 599 or close")),
    }
}

/// A standing fault on this replica (`POST /fault`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// What each message meets: an answer or a close (`status=`, `refuse`).
    pub answer: Option<Action>,
    /// A wait before each message (`delay=`).
    pub delay: Option<Duration>,
    /// `/readyz` answers 503 (`unready`).
    pub unready: bool,
    /// When it ends.
    pub until: Instant,
}

impl Standing {
    /// A standing fault from `POST /fault`'s parameters (`a=1&b=2`, from the
    /// query and the body), or why they are not one.
    pub fn parse(params: &str, now: Instant) -> Result<Standing, String> {
        let (mut answer, mut delay, mut unready, mut lasts) = (None, None, false, DEFAULT_FOR);
        for part in params
            .split(['&', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            match key {
                "status" => answer = Some(answer_of(value).map_err(|e| format!("status: {e}"))?),
                "refuse" => answer = Some(Action::Close),
                "delay" => delay = Some(delay_of(value)?),
                "unready" => unready = true,
                "for" => {
                    lasts = values::duration(value)
                        .ok()
                        .filter(|d| !d.is_zero() && *d <= MAX_FOR)
                        .ok_or_else(|| {
                            format!("for {value:?} is not a duration from 1ms to 1h, such as 60s")
                        })?
                }
                other => {
                    return Err(format!(
                        "{other:?} is not status, delay, refuse, unready or for"
                    ))
                }
            }
        }
        if answer.is_none() && delay.is_none() && !unready {
            return Err("name a fault: status=<400-599>, delay=<duration>, refuse or unready (and for=<duration>, default 5m)".into());
        }
        Ok(Standing {
            answer,
            delay,
            unready,
            until: now + lasts,
        })
    }

    /// As `GET /fault` and the log name it.
    pub fn describe(&self, now: Instant) -> String {
        let mut parts = Vec::new();
        match self.answer {
            Some(Action::Status(s)) => parts.push(format!("status={s}")),
            Some(Action::Close) => parts.push("refuse".to_string()),
            _ => {}
        }
        if let Some(d) = self.delay {
            parts.push(format!("delay={}ms", d.as_millis()));
        }
        if self.unready {
            parts.push("unready".to_string());
        }
        let left = self.until.saturating_duration_since(now).as_secs();
        format!("{} for {left}s more", parts.join(" "))
    }
}

/// What a request to `/fault` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// `GET`: the standing fault.
    Show,
    /// `POST`: set it.
    Set,
    /// `DELETE`: clear it.
    Clear,
}

/// This tier's faults: whether they are on, and the standing one.
#[derive(Debug)]
pub struct Faults {
    enabled: bool,
    role: Role,
    standing: Mutex<Option<Standing>>,
    /// The most a message waits in injected delays here.
    max_total_delay: Duration,
    /// Messages waiting in an injected delay, at most half of `MAX_IN_FLIGHT`.
    delays: Arc<InFlight>,
}

impl Faults {
    /// Faults for tier `role`, `enabled` by `FAULTS=on`, in a tier handling
    /// at most `max_in_flight` messages at once, each within `client_timeout`.
    pub fn new(
        role: Role,
        enabled: bool,
        max_in_flight: usize,
        client_timeout: Duration,
    ) -> Faults {
        Faults {
            enabled,
            role,
            standing: Mutex::new(None),
            max_total_delay: MAX_DELAY.min(client_timeout),
            delays: InFlight::new((max_in_flight / 2).max(1)),
        }
    }

    /// The most one message may wait in injected delays here, all added up.
    pub fn max_total_delay(&self) -> Duration {
        self.max_total_delay
    }

    /// A slot to wait in an injected delay; `Err` with the text of a 503
    /// when half of `MAX_IN_FLIGHT` messages already wait in one.
    pub fn delay_slot(&self) -> Result<Permit, String> {
        self.delays.try_admit().ok_or_else(|| {
            let most = self.delays.max();
            format!(
                "busy: half of MAX_IN_FLIGHT ({most}) messages already wait in an injected delay"
            )
        })
    }

    /// Whether `FAULTS=on`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn lock(&self) -> MutexGuard<'_, Option<Standing>> {
        self.standing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The standing fault, if one is set and not over.
    pub fn standing(&self, now: Instant) -> Option<Standing> {
        let mut standing = self.lock();
        if standing.as_ref().is_some_and(|s| s.until <= now) {
            *standing = None;
        }
        standing.clone()
    }

    /// Sets (`Some`) or clears (`None`) the standing fault.
    pub fn set(&self, standing: Option<Standing>) {
        *self.lock() = standing;
    }

    /// Answers `/fault` (`verb`, with `params` from the query): the status
    /// and text, and a line for the log when the standing fault changed.
    pub fn control(&self, verb: Control, params: &str) -> (u16, String, Option<String>) {
        let now = Instant::now();
        match verb {
            Control::Show => match self.standing(now) {
                Some(s) => (200, format!("fault: {}", s.describe(now)), None),
                None => (200, "no fault".into(), None),
            },
            Control::Clear => {
                self.set(None);
                (
                    200,
                    "fault cleared".into(),
                    Some("fault cleared (DELETE /fault)".into()),
                )
            }
            Control::Set => match Standing::parse(params, now) {
                Ok(s) => {
                    let text = format!("fault set: {}", s.describe(now));
                    self.set(Some(s));
                    (200, text.clone(), Some(format!("{text} (POST /fault)")))
                }
                Err(e) => (400, format!("POST /fault?{params}: {e}"), None),
            },
        }
    }

    /// Whether a standing `unready` holds `/readyz` at 503.
    pub fn unready(&self) -> bool {
        self.enabled && self.standing(Instant::now()).is_some_and(|s| s.unready)
    }

    /// What a message with `X-Fault` value `header` meets here, each with
    /// where it came from (`X-Fault` or `POST /fault`): the header's actions
    /// for this tier, then the standing fault's (an invalid header is
    /// ignored: the message is answered as if it had none).
    pub fn meet(&self, header: Option<&str>) -> Vec<(Action, &'static str)> {
        if !self.enabled {
            return Vec::new();
        }
        let from_header = header
            .and_then(|h| parse_header(h, self.role).ok())
            .unwrap_or_default();
        let mut actions: Vec<_> = from_header.into_iter().map(|a| (a, HEADER)).collect();
        if let Some(s) = self.standing(Instant::now()) {
            let standing = s.delay.map(Action::Delay).into_iter().chain(s.answer);
            actions.extend(standing.map(|a| (a, "POST /fault")));
        }
        actions
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_header_names_each_tiers_faults() {
        let text = "sink=503, relay-delay=1500ms,relay=close";
        assert_eq!(
            parse_header(text, Role::Relay),
            Ok(vec![
                Action::Delay(Duration::from_millis(1500)),
                Action::Close
            ])
        );
        assert_eq!(
            parse_header(text, Role::Sink),
            Ok(vec![Action::Status(503)])
        );
        assert_eq!(Action::Status(503).describe(Role::Sink), "sink=503");
        assert_eq!(
            Action::Delay(Duration::from_millis(1500)).describe(Role::Relay),
            "relay-delay=1500ms"
        );
        assert!(is_header("sink=504") && !is_header("") && !is_header("sink=200"));
        for bad in ["sink=200", "sink=abc", "db=503", "sink-delay=11s", "sink"] {
            assert!(parse_header(bad, Role::Sink).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_standing_fault_parses_lasts_and_ends() {
        let now = Instant::now();
        let s = Standing::parse("status=503&for=60s", now).unwrap();
        assert_eq!(
            (s.answer, s.until),
            (Some(Action::Status(503)), now + Duration::from_secs(60))
        );
        assert_eq!(s.describe(now), "status=503 for 60s more");
        let s = Standing::parse("delay=250ms\nunready", now).unwrap();
        assert_eq!(
            (s.delay, s.unready, s.until),
            (Some(Duration::from_millis(250)), true, now + DEFAULT_FOR)
        );
        for bad in ["", "for=60s", "status=700", "for=2h&refuse", "color=red"] {
            assert!(Standing::parse(bad, now).is_err(), "{bad}");
        }
        let faults = Faults::new(Role::Sink, true, 4, Duration::from_secs(10));
        faults.set(Some(Standing::parse("refuse&for=1ms", now).unwrap()));
        assert_eq!(faults.standing(now), faults.standing(now));
        assert_eq!(
            faults.standing(now + Duration::from_millis(1)),
            None,
            "over at its time"
        );
    }

    #[test]
    fn a_header_names_each_kind_once_and_delay_slots_are_half_of_max_in_flight() {
        let repeated = "relay-delay=1s,relay-delay=1s,relay-delay=1s";
        assert!(parse_header(repeated, Role::Relay).is_err());
        assert!(parse_header("sink=503,sink=close", Role::Relay).is_err());
        let on = Faults::new(Role::Sink, true, 4, Duration::from_secs(3));
        assert_eq!(
            on.max_total_delay(),
            Duration::from_secs(3),
            "CLIENT_TIMEOUT"
        );
        let long = Faults::new(Role::Sink, true, 4, Duration::from_secs(60));
        assert_eq!(long.max_total_delay(), MAX_DELAY);
        let (first, second) = (on.delay_slot().unwrap(), on.delay_slot().unwrap());
        let busy = on.delay_slot().unwrap_err();
        assert!(
            busy.starts_with("busy: half of MAX_IN_FLIGHT (2)"),
            "{busy}"
        );
        drop((first, second));
        assert!(on.delay_slot().is_ok(), "a slot is freed with its delay");
    }

    #[test]
    fn off_meets_nothing() {
        let off = Faults::new(Role::Sink, false, 4, Duration::from_secs(10));
        off.set(Some(Standing::parse("unready", Instant::now()).unwrap()));
        assert!(off.meet(Some("sink=503")).is_empty() && !off.unready());
        let on = Faults::new(Role::Sink, true, 4, Duration::from_secs(10));
        assert_eq!(
            on.meet(Some("sink=503")),
            vec![(Action::Status(503), HEADER)]
        );
        assert!(
            on.meet(Some("sink=nonsense")).is_empty(),
            "an invalid header is ignored"
        );
        on.set(Some(Standing::parse("delay=5ms", Instant::now()).unwrap()));
        assert_eq!(
            on.meet(Some("relay=504")),
            vec![(Action::Delay(Duration::from_millis(5)), "POST /fault")]
        );
    }
}
