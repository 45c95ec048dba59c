//! Settings misspelt in the environment: one warning for each variable that is one or two edits from a setting's name.
//!
//! Configuration is by environment only, so `SEND_INTERVALL=1s` would pass
//! silently and the tier run at the default. At start a tier names, in one
//! line each, the variables within edit distance 2 of a setting they are
//! not (`SEND_INTERVALL is not a setting; did you mean SEND_INTERVAL?`), and
//! runs on: it does not refuse to start. The variables Kubernetes injects
//! for every Service in the namespace (`RELAY_SVC_PORT`,
//! `SINK_SVC_SERVICE_HOST`, `SINK_SVC_PORT_80_TCP_ADDR`, …) are not settings
//! and are never named.

use crate::config::SETTINGS;

/// How many edits away a name may be to be taken for a misspelling.
const MAX_EDITS: usize = 2;

/// The warnings for `names` (the environment's variable names), in order.
pub fn warnings<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    names
        .into_iter()
        .filter(|name| !is_kubernetes_service_variable(name))
        .filter(|name| SETTINGS.iter().all(|s| s.name != *name))
        .filter_map(|name| {
            let nearest = SETTINGS
                .iter()
                .map(|s| (distance(name, s.name), s.name))
                .filter(|(d, _)| *d <= MAX_EDITS)
                .min()?;
            Some(format!(
                "{name} is not a setting; did you mean {}? (see --help)",
                nearest.1
            ))
        })
        .collect()
}

/// The warnings for this process's environment.
pub fn in_environment() -> Vec<String> {
    let names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    warnings(names.iter().map(String::as_str))
}

/// What Kubernetes sets for each Service (`<NAME>_SERVICE_HOST`,
/// `<NAME>_SERVICE_PORT[_<PORT NAME>]`, `<NAME>_PORT` and the Docker-link
/// style `<NAME>_PORT_<n>_<PROTO>[_PROTO|_PORT|_ADDR]`).
fn is_kubernetes_service_variable(name: &str) -> bool {
    if name.ends_with("_SERVICE_HOST")
        || name.ends_with("_SERVICE_PORT")
        || name.contains("_SERVICE_PORT_")
        || name.ends_with("_PORT")
    {
        return true;
    }
    let Some((_, link)) = name.split_once("_PORT_") else {
        return false;
    };
    let mut parts = link.split('_');
    let port = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let proto = parts
        .next()
        .is_some_and(|p| matches!(p, "TCP" | "UDP" | "SCTP"));
    let rest = parts
        .next()
        .is_none_or(|p| matches!(p, "PROTO" | "PORT" | "ADDR"));
    port && proto && rest && parts.next().is_none()
}

/// The Levenshtein distance of two ASCII names (bytes), stopping early
/// where it cannot stay within [`MAX_EDITS`].
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > MAX_EDITS {
        return MAX_EDITS + 1;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_name_two_edits_from_a_setting_is_named_with_it() {
        let found = warnings([
            "SEND_INTERVALL",
            "RELAY_URLS",
            "SINKURL",
            "LOG_FROMAT",
            "SEND_INTERVAL",
            "PATH",
            "HOME",
            "RELAY_SVC_PORT",
            "SINK_SVC_SERVICE_HOST",
            "SINK_SVC_SERVICE_PORT_HTTP",
            "SINK_SVC_PORT_80_TCP_ADDR",
            "SINK_SVC_PORT_80_TCP",
            "KUBERNETES_PORT_443_TCP_PROTO",
        ]);
        assert_eq!(
            found,
            vec![
                "SEND_INTERVALL is not a setting; did you mean SEND_INTERVAL? (see --help)",
                "RELAY_URLS is not a setting; did you mean RELAY_URL? (see --help)",
                "SINKURL is not a setting; did you mean SINK_URL? (see --help)",
                "LOG_FROMAT is not a setting; did you mean LOG_FORMAT? (see --help)",
            ]
        );
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("LOG_DIR", "LOG_DIR"), 0);
    }
}
