//! Connections the server closed on its own, reported once a second as counts, never a line each.
//!
//! The vendored server counts connections it closed because they missed
//! `CLIENT_TIMEOUT`, were idle when `MAX_CONNECTIONS` was reached (evicted),
//! or arrived with none idle to evict (answered 503). A flood would make a
//! line per connection a flood of lines, so [`ConnectionReport`] takes the
//! counts once a second, adds them to `/metrics` and writes one line per
//! reason that has any, and samples the number of connections open. The
//! server's own errors (a failed `accept`, a connection thread that could not
//! start) are counted and reported the same way.

use std::time::Duration;

use crate::observe::metrics::{ClosedReason, Metrics};
use crate::record::logger::{Event, Logger};

/// Reports connections closed by `CLIENT_TIMEOUT` and `MAX_CONNECTIONS`, as
/// counts, and how many are open.
pub struct ConnectionReport<'a> {
    /// Where the lines go.
    pub logger: &'a Logger,
    /// Where the counts go.
    pub metrics: &'a Metrics,
    /// `CLIENT_TIMEOUT`, named in the lines.
    pub client_timeout: Duration,
    /// `MAX_CONNECTIONS` as served, named in the lines.
    pub max_connections: usize,
}

impl ConnectionReport<'_> {
    /// Reports what `http` closed since the last call, and samples how many are open.
    pub fn connections(&self, http: &tiny_http::Server) {
        self.metrics.connections_open(http.connections());
        let counts = http.take_counts();
        let timeout = self.client_timeout.as_millis();
        let max = self.max_connections;
        let lines = [
            (counts.timed_out, ClosedReason::Timeout, format!("closed {} connection(s) that missed CLIENT_TIMEOUT={timeout}ms (idle, a request not delivered, or a response not read)", counts.timed_out)),
            (counts.evicted, ClosedReason::Evicted, format!("closed {} idle connection(s) to admit new ones at MAX_CONNECTIONS={max}", counts.evicted)),
            (counts.refused, ClosedReason::Refused, format!("answered {} new connection(s) 503 at MAX_CONNECTIONS={max}, none idle", counts.refused)),
        ];
        for (n, reason, text) in lines {
            if n == 0 {
                continue;
            }
            self.metrics.connections_closed(reason, n);
            let event = Event::new("connections", &text);
            self.logger.log(&if reason == ClosedReason::Refused {
                event.warn()
            } else {
                event
            });
        }
        self.server_errors(&counts);
    }

    /// The server's own errors: failed `accept` calls and connection threads that did not start.
    fn server_errors(&self, counts: &tiny_http::Counts) {
        let (accept, thread) = (counts.accept_failed, counts.thread_failed);
        if accept + thread == 0 {
            return;
        }
        self.metrics.server_errors(accept, thread);
        let last = counts.last_error.as_deref().unwrap_or("?");
        let text = format!("{accept} failed accept(s) and {thread} connection thread(s) not started (the connection answered 503) in the last second; the last: {last}");
        self.logger.log(&Event::new("server_errors", &text).warn());
    }
}
