//! Posting a message to the next tier: a pod at random, failover and one deadline per hop.
//!
//! `RELAY_URL` and `SINK_URL` may list several URLs, and a host name may resolve
//! to several addresses (a headless Service, a podman network alias, DNS round
//! robin). Names are looked up off the message path (see [`crate::next_hop::dns`]). Each
//! post starts at a random URL and, within it, a random address, as kube-proxy
//! picks a pod, holding back for a moment the addresses that just failed (see
//! [`pick`]). A connection that cannot be made moves on to the next address,
//! then the next URL: nothing was sent, so that is safe; so does a 503, by
//! which the next tier says it did not take the message. Any other failure
//! ends the attempt, since the message may have arrived. All attempts share
//! the hop's timeout. A payload's `X-Fault` goes to the first pod that answers
//! only: the pods failed over to meet the message as it is, so a drill shows
//! a failover that succeeds.
//!
//! Connections are reused a bounded number of times (`UPSTREAM_MAX_REQUESTS`,
//! `UPSTREAM_MAX_AGE`; see [`crate::client`]): behind a Kubernetes Service each
//! new connection may reach another pod, so bounded reuse still spreads
//! messages over pods while saving most TCP handshakes. Proxy variables
//! (`HTTP_PROXY`, `ALL_PROXY`) are ignored on purpose: traffic between tiers
//! stays in the cluster.

mod pick;
mod reply;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq_proto::http::{HeaderMap, HeaderValue, Uri};

use crate::client::{Client, Exchange, ExchangeFailure, Payload};
use crate::config::PeerConfig;
use crate::next_hop::dns::{Host, Lookups, Unresolved};
use crate::observe::metrics::Metrics;
use crate::record::logger::Logger;
use crate::values::Url;
pub use reply::{PostError, UpstreamReply};

/// One configured URL.
#[derive(Debug)]
struct Target {
    url: Url,
    /// `url` as text, for replies and errors.
    text: Arc<str>,
    /// What the client sends: the URI and the `Host` header, made once.
    uri: Uri,
    host_header: HeaderValue,
    host: Host,
}

/// The next tier, as configured by `RELAY_URL`/`SINK_URL` and its timeout.
#[derive(Debug)]
pub struct Upstream {
    targets: Vec<Target>,
    /// Addresses whose last attempt failed, tried last for a moment.
    recent: pick::Recent,
    timeout: Duration,
    client: Client,
}

impl Upstream {
    /// An upstream for `peer`'s URLs, timeout and reuse bounds, keeping at
    /// most `max_pooled` idle connections; names are looked up from now on,
    /// their failures logged and counted.
    pub fn new(
        peer: &PeerConfig,
        max_pooled: usize,
        logger: &Arc<Logger>,
        metrics: &Arc<Metrics>,
    ) -> Upstream {
        let lookups = Lookups {
            variable: peer.variable,
            refresh: peer.dns_refresh,
            timeout: peer.timeout,
            logger: Arc::clone(logger),
            metrics: Arc::clone(metrics),
        };
        Upstream {
            targets: peer
                .urls
                .iter()
                .map(|url| Target {
                    url: url.clone(),
                    text: url.to_string().into(),
                    // Checked when the configuration was read.
                    uri: url.uri().unwrap_or_default(),
                    host_header: HeaderValue::from_str(&url.host_header())
                        .unwrap_or(HeaderValue::from_static("invalid")),
                    host: Host::new(&url.host, url.port, &lookups),
                })
                .collect(),
            recent: pick::Recent::default(),
            timeout: peer.timeout,
            client: Client::new(peer.max_requests, peer.max_age, max_pooled),
        }
    }

    /// Posts `payload` (its body as text/plain, its request id and trace
    /// headers), trying URLs and addresses in turn from a random one.
    pub fn post(&self, payload: &Payload) -> Result<UpstreamReply, PostError> {
        let deadline = Instant::now() + self.timeout;
        let mut tries = Tries::default();
        let held = |i: usize| self.recent.any() && self.all_held(&self.targets[i], deadline);
        let mut order = pick::order(self.targets.len(), held).peekable();
        while let Some(i) = order.next() {
            tries.more_targets = order.peek().is_some();
            if let Some(outcome) =
                self.post_to_target(&self.targets[i], payload, deadline, &mut tries)
            {
                return outcome;
            }
        }
        Err(PostError::Unreachable {
            attempts: tries.attempts,
            refused: tries.refused,
        })
    }

    /// Whether every address of `target` is held back (see [`pick`]).
    fn all_held(&self, target: &Target, deadline: Instant) -> bool {
        let addrs = target.host.addrs(deadline);
        addrs.is_ok_and(|addrs| addrs.iter().all(|a| self.recent.is_held(*a)))
    }

    /// Tries `target`'s addresses in turn from a random one; `None` when none
    /// could be connected to, or all answered 503 with more URLs to try.
    fn post_to_target(
        &self,
        target: &Target,
        payload: &Payload,
        deadline: Instant,
        tries: &mut Tries,
    ) -> Option<Result<UpstreamReply, PostError>> {
        let url = &target.text;
        let addrs = match target.host.addrs(deadline) {
            Ok(addrs) => addrs,
            Err(Unresolved::TimedOut) => return Some(Err(self.timed_out(url.to_string(), None))),
            Err(Unresolved::Failed(e)) => {
                tries
                    .attempts
                    .push(format!("{url}: cannot resolve {}: {e}", target.url.host));
                return None;
            }
        };
        let held = |j: usize| self.recent.is_held(addrs[j]);
        let mut order = pick::order(addrs.len(), held).peekable();
        let answered_before = tries.answered;
        while let Some(j) = order.next() {
            let addr = addrs[j];
            if Instant::now() >= deadline {
                return Some(Err(self.timed_out(url.to_string(), Some(addr.ip()))));
            }
            let more = order.peek().is_some() || tries.more_targets;
            match self.attempt(target, addr, payload, deadline, tries, more) {
                Some(outcome) => return Some(outcome),
                None => continue,
            }
        }
        if tries.answered == answered_before {
            // Every address refused a connection: the pods may have moved.
            target.host.all_refused();
        }
        None
    }

    /// One attempt at `addr`; `None` to go on to the next address (no
    /// connection, or a 503 when `more` addresses remain).
    fn attempt(
        &self,
        target: &Target,
        addr: SocketAddr,
        payload: &Payload,
        deadline: Instant,
        tries: &mut Tries,
        more: bool,
    ) -> Option<Result<UpstreamReply, PostError>> {
        let url = &target.text;
        let traceparent = payload.attempts.and_then(|hook| hook.started(url, addr));
        let payload = Payload {
            // Only the first pod that answers meets the payload's fault.
            fault: payload.fault.filter(|_| tries.answered.is_none()),
            traceparent: traceparent.as_deref().unwrap_or(payload.traceparent),
            ..*payload
        };
        let exchange = Exchange {
            addr,
            uri: &target.uri,
            host: &target.host_header,
            payload: &payload,
            deadline,
        };
        let outcome = self.client.post(&exchange);
        match &outcome {
            Ok(reply) if reply.status != 503 => self.recent.answered(addr),
            _ => self.recent.failed(addr),
        }
        if let Some(hook) = payload.attempts {
            hook.ended(match &outcome {
                Ok(reply) => Ok(reply.status),
                Err(ExchangeFailure::TimedOut) => Err("timed out"),
                Err(ExchangeFailure::NotConnected(reason) | ExchangeFailure::Failed(reason)) => {
                    Err(reason)
                }
            });
        }
        let outcome = match outcome {
            Ok(reply) if reply.status == 503 && more => {
                tries.attempts.push(format!("{url} ({addr}): answered 503"));
                tries.refused.push(addr.ip());
                tries.answered = Some(addr);
                tries.refused_headers.push(reply.headers);
                return None;
            }
            Ok(reply) => Ok(UpstreamReply {
                status: reply.status,
                body: String::from_utf8(reply.body)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                url: Arc::clone(url),
                headers: reply.headers,
                addr: addr.ip(),
                refused: std::mem::take(&mut tries.refused),
                refused_headers: std::mem::take(&mut tries.refused_headers),
            }),
            Err(ExchangeFailure::NotConnected(reason)) => {
                tries.attempts.push(format!("{url} ({addr}): {reason}"));
                tries.refused.push(addr.ip());
                return None;
            }
            Err(ExchangeFailure::TimedOut) => Err(self.timed_out(url.to_string(), Some(addr.ip()))),
            Err(ExchangeFailure::Failed(reason)) => Err(PostError::Failed {
                url: url.to_string(),
                reason,
                addr: addr.ip(),
            }),
        };
        Some(outcome)
    }

    fn timed_out(&self, url: String, addr: Option<IpAddr>) -> PostError {
        PostError::Timeout {
            url,
            after: self.timeout,
            addr,
        }
    }
}

/// What a post met before its outcome.
#[derive(Default)]
struct Tries {
    /// One "url: reason" per connection that could not be made (or answered 503).
    attempts: Vec<String>,
    /// The addresses that refused (or answered 503).
    refused: Vec<IpAddr>,
    /// The headers of each 503 that was failed over from.
    refused_headers: Vec<HeaderMap>,
    /// The first address that answered (a 503 failed over from), if one did.
    answered: Option<SocketAddr>,
    /// Whether URLs after the one being tried remain.
    more_targets: bool,
}

#[cfg(test)]
mod test {
    use super::*;

    fn payload(body: &str) -> Payload<'_> {
        Payload {
            body,
            request_id: "a-1",
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            tracestate: None,
            fault: None,
            via: None,
            attempts: None,
        }
    }
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::thread;

    fn peer(urls: &str, timeout: Duration) -> PeerConfig {
        PeerConfig {
            variable: "SINK_URL",
            urls: crate::values::url_list(urls).unwrap(),
            timeout,
            max_requests: 1,
            max_age: Duration::from_secs(4),
            dns_refresh: Duration::from_secs(5),
        }
    }

    fn upstream(peer: &PeerConfig) -> Upstream {
        let (logger, metrics) = crate::next_hop::dns::test::watchers();
        Upstream::new(peer, 8, &logger, &metrics)
    }

    /// A one-shot HTTP server on loopback that answers `status` and records the request head.
    fn one_shot(status: u16) -> (SocketAddr, thread::JoinHandle<String>) {
        one_shot_answering(move |_| {
            format!("HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody")
        })
    }

    /// A one-shot HTTP server on loopback that answers what `answer` makes
    /// of the request head (its lines as sent), and returns that head.
    fn one_shot_answering(
        answer: impl Fn(&str) -> String + Send + 'static,
    ) -> (SocketAddr, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            (&stream).write_all(answer(&head).as_bytes()).unwrap();
            head
        });
        (addr, handle)
    }

    fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }

    #[test]
    fn non_2xx_status_and_body_come_back() {
        let (addr, server) = one_shot(503);
        let up = upstream(&peer(&format!("{addr}/sink.php"), Duration::from_secs(5)));
        let reply = up.post(&payload("hello")).unwrap();
        assert_eq!((reply.status, reply.body.as_str()), (503, "body"));
        let head = server.join().unwrap();
        assert!(head.starts_with("POST /sink.php HTTP/1.1\r\n"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains(&format!("host: {addr}\r\n")),
            "{head}"
        );
        assert!(
            head.to_ascii_lowercase().contains("x-request-id: a-1\r\n"),
            "{head}"
        );
    }

    #[test]
    fn keepalive_reuses_one_connection() {
        // Accepts a single connection and answers two requests on it: a second
        // connection would never be served, and the second post would time out.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut stream = stream;
            for _ in 0..2 {
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0; length];
                std::io::Read::read_exact(&mut reader, &mut body).unwrap();
                write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
            }
        });
        let mut config = peer(&format!("{addr}/"), Duration::from_secs(3));
        config.max_requests = 10;
        let up = upstream(&config);
        assert_eq!(up.post(&payload("one")).unwrap().status, 200);
        assert_eq!(up.post(&payload("two")).unwrap().status, 200);
        server.join().unwrap();
    }

    #[test]
    fn refused_url_fails_over_to_the_next() {
        let dead = closed_port();
        let (addr, server) = one_shot(200);
        let up = upstream(&peer(&format!("{dead}/,{addr}/"), Duration::from_secs(5)));
        let reply = up.post(&payload("hello")).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(&*reply.url, format!("http://{addr}/"));
        server.join().unwrap();
    }

    #[test]
    fn all_refused_is_unreachable_naming_each_url() {
        let (a, b) = (closed_port(), closed_port());
        let up = upstream(&peer(&format!("{a}/x,{b}/y"), Duration::from_secs(5)));
        match up.post(&payload("hello")) {
            Err(PostError::Unreachable { attempts, .. }) => {
                assert_eq!(attempts.len(), 2);
                let text = attempts.join(" ");
                assert!(
                    text.contains(&format!("http://{a}/x"))
                        && text.contains(&format!("http://{b}/y")),
                    "{text}"
                );
                assert!(text.to_lowercase().contains("refused"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let up = upstream(&peer(&format!("{addr}/"), Duration::from_millis(300)));
        let started = Instant::now();
        match up.post(&payload("hello")) {
            Err(PostError::Timeout { url, after, .. }) => {
                assert_eq!(url, format!("http://{addr}/"));
                assert_eq!(after, Duration::from_millis(300));
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(listener);
    }

    #[test]
    fn a_fault_goes_to_the_first_pod_that_answers_only() {
        // Two sinks answer 503 to what carries X-Fault, 200 to the rest.
        let servers: Vec<_> = (0..2).map(|_| fault_sensitive()).collect();
        let urls = servers
            .iter()
            .map(|(a, _)| format!("{a}/"))
            .collect::<Vec<_>>()
            .join(",");
        let up = upstream(&peer(&urls, Duration::from_secs(5)));
        let mut with_fault = payload("hello");
        with_fault.fault = Some("sink=503");
        let reply = up.post(&with_fault).unwrap();
        assert_eq!(reply.status, 200, "the second sink met no fault");
        assert_eq!(reply.refused.len(), 1);
        let met = reply.refused_headers[0].get("x-fault-met").unwrap();
        assert_eq!(met, "sink=503");
        let heads: Vec<String> = servers
            .into_iter()
            .map(|(_, h)| h.join().unwrap())
            .collect();
        let with: Vec<_> = heads
            .iter()
            .filter(|h| h.to_ascii_lowercase().contains("x-fault:"))
            .collect();
        assert_eq!(with.len(), 1, "{heads:?}");
    }

    /// A one-shot server that answers 503 with `X-Fault-Met` to a request
    /// carrying `X-Fault`, else 200; returns the request head it read.
    fn fault_sensitive() -> (SocketAddr, thread::JoinHandle<String>) {
        one_shot_answering(|head| {
            let close = "Content-Length: 0\r\nConnection: close\r\n\r\n";
            if head.to_ascii_lowercase().contains("x-fault:") {
                format!("HTTP/1.1 503 X\r\nX-Fault-Met: sink=503\r\n{close}")
            } else {
                format!("HTTP/1.1 200 OK\r\n{close}")
            }
        })
    }

    #[test]
    fn an_address_that_failed_is_tried_last_for_a_while() {
        let dead = closed_port();
        let (addr, server) = one_shot(200);
        let up = upstream(&peer(&format!("{dead}/,{addr}/"), Duration::from_secs(5)));
        up.recent.failed(dead);
        // Whatever the random start, the live one is tried first: one attempt.
        let reply = up.post(&payload("hello")).unwrap();
        assert_eq!((reply.status, reply.refused.len()), (200, 0));
        server.join().unwrap();
    }
}
