//! Parsers for the text forms that configuration values take.
//!
//! Each returns `Err(expected)`, a phrase naming the accepted form; the caller
//! adds the variable name and value (see [`crate::config`]). Nothing here does
//! I/O: a host name in a URL is checked for shape only (`crate::next_hop::dns` looks it up).

use std::time::Duration;

/// Accepted duration forms, as shown in error messages and `--help`.
pub const DURATION_FORM: &str = "a duration such as 250ms, 5s or 1m, or a whole number of seconds";

/// Parses `250ms`, `5s`, `1m` or bare whole seconds (`5`).
pub fn duration(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    let (digits, unit_ms) = if let Some(d) = text.strip_suffix("ms") {
        (d, 1)
    } else if let Some(d) = text.strip_suffix('s') {
        (d, 1_000)
    } else if let Some(d) = text.strip_suffix('m') {
        (d, 60_000)
    } else {
        (text, 1_000)
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DURATION_FORM);
    }
    let n: u64 = digits.parse().map_err(|_| DURATION_FORM)?;
    n.checked_mul(unit_ms)
        .filter(|ms| *ms <= 365 * 24 * 3_600_000)
        .map(Duration::from_millis)
        .ok_or(DURATION_FORM)
}

/// Parses a whole number in `min..=max`.
pub fn number_in(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let form = || format!("a whole number from {min} to {max}");
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(form());
    }
    text.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(form)
}

/// One parsed entry of `RELAY_URL` or `SINK_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Host name or IP address, without brackets.
    pub host: String,
    /// TCP port; 80 when the URL has none.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// The `Host` header value: the host, with brackets for IPv6, and the port unless 80.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl Url {
    /// The URI the client sends, `http://<host header><path>`.
    pub fn uri(&self) -> Result<ureq_proto::http::Uri, ureq_proto::http::uri::InvalidUri> {
        format!("http://{}{}", self.host_header(), self.path).parse()
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(f, "http://{host}:{}{}", self.port, self.path)
    }
}

/// Accepted URL-list form, as shown in error messages and `--help`.
pub const URL_LIST_FORM: &str =
    "one or more http URLs separated by commas, such as relay-svc/relay.php or http://127.0.0.1:8080/,http://127.0.0.1:8081/ (no scheme means http; https is not supported)";

/// Parses a comma-separated list of URLs; a URL without a scheme is http.
pub fn url_list(text: &str) -> Result<Vec<Url>, &'static str> {
    let urls: Vec<Url> = text
        .split(',')
        .map(|item| url(item.trim()))
        .collect::<Result<_, _>>()?;
    if urls.is_empty() {
        return Err(URL_LIST_FORM);
    }
    Ok(urls)
}

fn url(text: &str) -> Result<Url, &'static str> {
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some(_) => return Err(URL_LIST_FORM),
        None => text,
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.contains('@') || path.contains('#') || !path.bytes().all(is_path_byte) {
        return Err(URL_LIST_FORM);
    }
    let (host, port) = split_host_port(authority)?;
    let url = Url { host, port, path };
    // The client sends exactly this URI on every message: it must parse.
    url.uri().map_err(|_| URL_LIST_FORM)?;
    Ok(url)
}

fn split_host_port(authority: &str) -> Result<(String, u16), &'static str> {
    let (host, port_text) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or(URL_LIST_FORM)?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| URL_LIST_FORM)?;
        match after {
            "" => (v6, None),
            p => (v6, Some(p.strip_prefix(':').ok_or(URL_LIST_FORM)?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'));
    if !host_ok {
        return Err(URL_LIST_FORM);
    }
    let port = match port_text {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(URL_LIST_FORM)?,
    };
    Ok((host.to_ascii_lowercase(), port))
}

fn is_path_byte(b: u8) -> bool {
    b.is_ascii_graphic()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn durations_in_every_accepted_form() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert_eq!(duration(" 2s "), Ok(Duration::from_secs(2)));
    }

    #[test]
    fn durations_rejected() {
        for bad in [
            "",
            "s",
            "5x",
            "-1s",
            "1.5s",
            "5 s",
            "1h",
            "ms5",
            "99999999999999999999",
        ] {
            assert_eq!(duration(bad), Err(DURATION_FORM), "{bad:?}");
        }
    }

    #[test]
    fn numbers_in_range() {
        assert_eq!(number_in("3", 0, 10), Ok(3));
        assert_eq!(number_in("0", 0, 10), Ok(0));
        assert_eq!(
            number_in("11", 0, 10),
            Err("a whole number from 0 to 10".into())
        );
        assert!(number_in("-1", 0, 10).is_err());
        assert!(number_in("", 0, 10).is_err());
        assert!(number_in("1e3", 0, 10_000).is_err());
    }

    #[test]
    fn url_without_scheme_is_http_on_port_80() {
        let u = &url_list("relay-svc/relay.php").unwrap()[0];
        assert_eq!(u.host, "relay-svc");
        assert_eq!(u.port, 80);
        assert_eq!(u.path, "/relay.php");
        assert_eq!(u.to_string(), "http://relay-svc:80/relay.php");
        assert_eq!(u.host_header(), "relay-svc");
    }

    #[test]
    fn url_forms() {
        let u = &url_list("http://127.0.0.1:8080").unwrap()[0];
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8080");
        let u = &url_list("HTTP://Sink-Svc:81/a/b?x=1").unwrap()[0];
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("sink-svc", 81, "/a/b?x=1")
        );
        let u = &url_list("[::1]:9000/x").unwrap()[0];
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(u.host_header(), "[::1]:9000");
        assert_eq!(u.to_string(), "http://[::1]:9000/x");
        let u = &url_list("host?q").unwrap()[0];
        assert_eq!(u.path, "/?q");
    }

    #[test]
    fn url_lists_split_on_commas() {
        let urls = url_list("127.0.0.1:1/a, 127.0.0.1:2/b").unwrap();
        assert_eq!(urls.len(), 2);
        assert_eq!(urls[1].port, 2);
        assert_eq!(urls[1].path, "/b");
    }

    #[test]
    fn urls_rejected() {
        for bad in [
            "",
            ",",
            "a,,b",
            "https://sink-svc/",
            "ftp://x/",
            "http://",
            "host:0/",
            "host:70000/",
            "host:abc/",
            "user@host/",
            "ho st/",
            "[::1/",
            "[nothost]:80/",
            "host/a b",
            "host/#frag",
        ] {
            assert_eq!(url_list(bad), Err(URL_LIST_FORM), "{bad:?}");
        }
    }
}
