//! The forms a setting's value takes: their bounds, what each accepts in words, the parsers [`super::Set`] uses, and the typed values of two word settings.

use std::time::Duration;

use crate::values;

/// The form a setting's value takes, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// An IP address and port.
    SocketAddr,
    /// An IPv4 or IPv6 address.
    Ip,
    /// One or more http URLs, comma-separated.
    Urls,
    /// A duration; `positive`: greater than zero.
    Duration {
        /// Zero is refused.
        positive: bool,
    },
    /// A whole number from `min` to `max`.
    Number {
        /// The least accepted.
        min: u64,
        /// The most accepted.
        max: u64,
    },
    /// One of these words.
    Word(&'static [&'static str]),
    /// A directory path.
    Dir,
    /// A short label: 1 to 32 letters, digits, `.`, `_` or `-`.
    Label,
    /// An `X-Fault` value and the fraction of messages to send it with: `sink=503@0.1`.
    SendFault,
    /// One http URL (tracing's collector).
    Url,
    /// Milliseconds as a whole number, as OpenTelemetry's settings give them (or a duration).
    Millis,
    /// `key=value` pairs, comma-separated, values percent-encoded (OpenTelemetry's lists).
    KeyValues,
    /// A share from 0 to 1.
    Ratio,
    /// Printable text of 1 to 255 characters.
    Text,
}

/// `SEND_FAULT`: the `X-Fault` header the sender adds to the first attempt of
/// a fraction of its messages (see [`crate::observe::fault`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendFault {
    /// The header's value, such as `sink=503`.
    pub header: String,
    /// How many messages in a million carry it.
    pub per_million: u32,
}

impl SendFault {
    pub(super) fn parse(text: &str) -> Option<SendFault> {
        let (header, fraction) = text.trim().rsplit_once('@')?;
        let fraction: f64 = fraction.trim().parse().ok()?;
        let valid = crate::observe::fault::is_header(header) && fraction > 0.0 && fraction <= 1.0;
        valid.then(|| SendFault {
            header: header.trim().to_string(),
            per_million: (fraction * 1e6).round() as u32,
        })
    }
}

impl Form {
    /// The accepted form, as error messages and `--help` name it.
    pub fn expected(self) -> String {
        match self {
            Form::SocketAddr => "an IP address and port such as 0.0.0.0:8080 or [::]:8080".into(),
            Form::Ip => "an IPv4 or IPv6 address such as 10.1.2.3".into(),
            Form::Urls => values::URL_LIST_FORM.into(),
            Form::Duration { positive: false } => values::DURATION_FORM.into(),
            Form::Duration { positive: true } => {
                format!("{} greater than zero", values::DURATION_FORM)
            }
            Form::Number { min, max } => format!("a whole number from {min} to {max}"),
            Form::Word(words) => words.join(" or "),
            Form::Dir => "a directory path".into(),
            Form::Label => "1 to 32 letters, digits, '.', '_' or '-', such as blue or v2".into(),
            Form::SendFault => format!(
                "<X-Fault>@<fraction from 0 to 1>, such as sink=503@0.1, where X-Fault is {}",
                crate::observe::fault::HEADER_FORM
            ),
            Form::Url => "one http URL such as http://otel-collector.observability:4318 (plain HTTP: this build has no TLS)".into(),
            Form::Millis => "a whole number of milliseconds such as 10000 (or a duration such as 10s)".into(),
            Form::KeyValues => "key=value pairs separated by commas, values percent-encoded, such as k8s.pod.name=relays-1,team=demo".into(),
            Form::Ratio => "a number from 0 to 1 such as 0.25".into(),
            Form::Text => "1 to 255 printable characters".into(),
        }
    }
}

/// [`Form::Millis`]: a whole number of milliseconds, or a duration.
pub(super) fn millis(text: &str) -> Option<Duration> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok().map(Duration::from_millis);
    }
    values::duration(text).ok()
}

/// [`Form::KeyValues`]: `k=v,k2=v2`, keys not empty, values percent-decoded
/// to printable text; an empty list is none.
pub(super) fn key_values(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        let (key, value) = (key.trim(), percent_decode(value.trim())?);
        if key.is_empty() || !is_text(key) || !(value.is_empty() || is_text(&value)) {
            return None;
        }
        pairs.push((key.to_string(), value));
    }
    Some(pairs)
}

/// `%XX` escapes decoded, as UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Whether `text` is a [`Form::Text`]: 1 to 255 characters, none a control character.
pub(super) fn is_text(text: &str) -> bool {
    (1..=255).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

/// Whether `text` is a [`Form::Label`]: safe in a header, a log line and a page.
pub(super) fn is_label(text: &str) -> bool {
    (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// How stdout lines are written (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// The seed's lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which traces a tier records (`OTEL_TRACES_SAMPLER`, see [`crate::otlp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sampler {
    /// `parentbased_always_on`: as the caller's sampled flag says; a trace started here: yes.
    #[default]
    ParentBasedAlwaysOn,
    /// `parentbased_always_off`: as the caller says; a trace started here: no.
    ParentBasedAlwaysOff,
    /// `parentbased_traceidratio`: as the caller says; a trace started here: by its id.
    ParentBasedTraceIdRatio,
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: by the trace id, whatever the caller says.
    TraceIdRatio,
}

impl Sampler {
    /// The sampler `OTEL_TRACES_SAMPLER` names (its form admits no other word).
    pub(super) fn named(word: &str) -> Sampler {
        match word {
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio,
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio,
            _ => Sampler::ParentBasedAlwaysOn,
        }
    }
}
