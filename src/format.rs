//! Text that the message path formats for every message: numbers, and dates and addresses cached per thread.
//!
//! The seed's `<date>` is an HTTP date (`Tue, 24 Nov 2026 23:48:17 GMT`), the
//! JSON logs' `ts` an RFC 3339 time, and a client's address appears in every
//! line and answer about its messages. A connection's thread serves one
//! client, and a second holds many messages, so the HTTP date is formatted at
//! most once a second per thread and an address once per client.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `n` in decimal to `out`.
pub fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits only: always UTF-8.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// `t` as RFC 3339 UTC with milliseconds, e.g. `2026-11-25T00:08:40.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// The seed's `<date>`: an HTTP date such as `Tue, 24 Nov 2026 23:48:17 GMT`.
pub fn now_http_date() -> String {
    with_http_date(str::to_string)
}

/// Calls `f` with `ip` as text, formatted once per thread for the last
/// address it saw: a connection's thread serves one client, whose address
/// is in every line and answer about its messages.
pub fn with_ip_text<T>(ip: IpAddr, f: impl FnOnce(&str) -> T) -> T {
    thread_local! {
        static CACHED: RefCell<Option<(IpAddr, String)>> = const { RefCell::new(None) };
    }
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        match &mut *cached {
            Some((last, _)) if *last == ip => {}
            slot => *slot = Some((ip, ip.to_string())),
        }
        f(cached.as_ref().map_or("", |(_, text)| text.as_str()))
    })
}

/// Calls `f` with the current HTTP date, formatted at most once a second per
/// thread: every message line carries one.
pub fn with_http_date<T>(f: impl FnOnce(&str) -> T) -> T {
    thread_local! {
        static CACHED: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            cached.1.clear();
            let _ = write!(cached.1, "{}", httpdate::HttpDate::from(now));
            cached.0 = second;
        }
        f(&cached.1)
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_912_120_123);
        assert_eq!(rfc3339(t), "2026-11-29T00:28:40.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn http_date_has_the_rfc_7231_shape() {
        let d = now_http_date();
        assert!(d.ends_with(" GMT") && d.len() == 29, "{d}");
    }

    #[test]
    fn an_address_is_formatted_once_per_client() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(with_ip_text(a, str::to_string), "10.0.0.1");
        assert_eq!(with_ip_text(b, str::to_string), "fd00::2");
        assert_eq!(with_ip_text(a, str::to_string), "10.0.0.1");
    }
}
