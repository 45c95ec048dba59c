//! Probes the integration tests use to keep the server's limits honest; not for production use.
//!
//! A connection thread's stack is [`CONNECTION_STACK`] long, and a stack
//! overflow aborts the whole tier, so the tests measure how much of it the
//! deepest paths use (a panicking handler, the relay's call to the sink).

pub use crate::http::server::CONNECTION_STACK;

/// Resident bytes of the most-used connection thread stack of process `pid`
/// (0 if none is found), read from `/proc/<pid>/smaps`: a stack's pages stay
/// resident once touched, and a connection thread's stack is a writable
/// mapping [`CONNECTION_STACK`] long (glibc) or a few pages longer (musl keeps
/// thread-local storage in it). The tests use it to keep that size honest.
pub fn deepest_connection_stack(pid: u32) -> usize {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let (mut size, mut deepest) = (0, 0);
    for line in smaps.lines() {
        let range = line.split_once(' ').and_then(|(r, _)| r.split_once('-'));
        if let Some((start, end)) = range {
            let address = |x| usize::from_str_radix(x, 16).ok();
            if let (Some(start), Some(end)) = (address(start), address(end)) {
                size = end.saturating_sub(start);
                continue;
            }
        }
        if let Some(rss) = line.strip_prefix("Rss:") {
            let kb = rss.trim().trim_end_matches(" kB").parse().unwrap_or(0);
            if (CONNECTION_STACK..CONNECTION_STACK + 32 * 1024).contains(&size) {
                deepest = deepest.max(kb * 1024);
            }
        }
    }
    deepest
}
