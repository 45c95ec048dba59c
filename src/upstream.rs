//! Posting a message to the next tier: round-robin, failover and one deadline per hop.
//!
//! `RELAY_URL` and `SINK_URL` may list several URLs, and a host name may resolve
//! to several addresses (a headless Service, a podman network alias, DNS round
//! robin). Names are looked up off the message path (see [`crate::dns`]). Each
//! post starts at the next URL in turn, and within a URL at the next of its
//! addresses, because resolvers return addresses in a fixed order and always
//! taking the first would pin every message to one pod. A connection
//! that cannot be made moves on to the next address, then the next URL: nothing
//! was sent, so that is safe. Any other failure ends the attempt, since the
//! message may have arrived. All attempts share the hop's timeout.
//!
//! Connections are reused a bounded number of times (`UPSTREAM_MAX_REQUESTS`,
//! `UPSTREAM_MAX_AGE`; see [`crate::client`]): behind a Kubernetes Service each
//! new connection may reach another pod, so bounded reuse still spreads
//! messages over pods while saving most TCP handshakes. Proxy variables
//! (`HTTP_PROXY`, `ALL_PROXY`) are ignored on purpose: traffic between tiers
//! stays in the cluster.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http::{HeaderMap, HeaderValue, Uri};

use crate::client::{Client, Exchange, ExchangeFailure, Payload};
use crate::config::PeerConfig;
use crate::dns::{Host, Lookups, Unresolved};
use crate::logger::Logger;
use crate::metrics::{FailureReason, Metrics};
use crate::values::Url;

/// The next tier's answer.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    /// Its HTTP status.
    pub status: u16,
    /// Its body (at most 64 KiB, lossily decoded as UTF-8).
    pub body: String,
    /// The URL that answered.
    pub url: Arc<str>,
    /// Its headers, as received (see [`UpstreamReply::header`]).
    pub headers: HeaderMap,
    /// The address that answered.
    pub addr: IpAddr,
    /// Addresses that refused a connection before this one answered (failover).
    pub refused: Vec<IpAddr>,
}

impl UpstreamReply {
    /// The value of header `name` (any case), if the next tier sent it and
    /// it is a safe id (see [`crate::request_id::is_valid`]): these values
    /// go into log lines and headers of our own.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_where(name, crate::request_id::is_valid)
    }

    /// Header `name`'s value if `valid` says it is safe to pass on and print.
    pub fn header_where(&self, name: &str, valid: fn(&str) -> bool) -> Option<&str> {
        let value = self.headers.get(name)?.to_str().ok()?;
        valid(value).then_some(value)
    }

    /// Every safe value of header `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.header_values_where(name, crate::request_id::is_valid)
    }

    /// Every value of header `name` that `valid` says is safe, in order.
    pub fn header_values_where<'a>(
        &'a self,
        name: &'a str,
        valid: fn(&str) -> bool,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(move |v| valid(v))
    }
}

/// Why a post to the next tier failed, every address tried: the hop's
/// failure vocabulary (one address's is [`crate::client::ExchangeFailure`]).
/// The relay answers these 502 or 504, the sender retries them, and
/// [`PostError::reason`] is their metric label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// No connection could be made to any URL; nothing was sent.
    Unreachable {
        /// One "url: reason" per attempt.
        attempts: Vec<String>,
        /// The addresses that refused.
        refused: Vec<IpAddr>,
    },
    /// The hop's timeout ran out.
    Timeout {
        /// The URL being tried.
        url: String,
        /// The timeout.
        after: Duration,
        /// The address being tried, if one was.
        addr: Option<IpAddr>,
    },
    /// The exchange failed after connecting; the message may have arrived.
    Failed {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
        /// The address that failed.
        addr: IpAddr,
    },
}

impl PostError {
    /// The addresses that failed: refused, timed out or broke.
    pub fn failed_addrs(&self) -> Vec<IpAddr> {
        match self {
            PostError::Unreachable { refused, .. } => refused.clone(),
            PostError::Timeout { addr, .. } => addr.iter().copied().collect(),
            PostError::Failed { addr, .. } => vec![*addr],
        }
    }

    /// The metric label for this failure.
    pub fn reason(&self) -> FailureReason {
        match self {
            PostError::Unreachable { .. } => FailureReason::Refused,
            PostError::Timeout { .. } => FailureReason::Timeout,
            PostError::Failed { .. } => FailureReason::Broken,
        }
    }
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::Unreachable { attempts, .. } => {
                write!(f, "unreachable: {}", attempts.join("; "))
            }
            PostError::Timeout { url, after, .. } => {
                write!(f, "{url}: timed out after {}ms", after.as_millis())
            }
            PostError::Failed { url, reason, .. } => write!(f, "{url}: {reason}"),
        }
    }
}

/// One configured URL and its round-robin position among its addresses.
#[derive(Debug)]
struct Target {
    url: Url,
    /// `url` as text, for replies and errors.
    text: Arc<str>,
    /// What the client sends: the URI and the `Host` header, made once.
    uri: Uri,
    host_header: HeaderValue,
    host: Host,
    next_addr: AtomicUsize,
}

/// The next tier, as configured by `RELAY_URL`/`SINK_URL` and its timeout.
#[derive(Debug)]
pub struct Upstream {
    targets: Vec<Target>,
    next_target: AtomicUsize,
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
                    next_addr: AtomicUsize::new(rotation_start()),
                })
                .collect(),
            next_target: AtomicUsize::new(rotation_start()),
            timeout: peer.timeout,
            client: Client::new(peer.max_requests, peer.max_age, max_pooled),
        }
    }

    /// Posts `payload` (its body as text/plain, its request id and trace
    /// headers), trying URLs and addresses in turn.
    pub fn post(&self, payload: &Payload) -> Result<UpstreamReply, PostError> {
        let deadline = Instant::now() + self.timeout;
        let first = self.next_target.fetch_add(1, Ordering::Relaxed);
        let mut tries = Tries::default();
        for i in 0..self.targets.len() {
            let target = &self.targets[first.wrapping_add(i) % self.targets.len()];
            tries.more_targets = i + 1 < self.targets.len();
            if let Some(outcome) = self.post_to_target(target, payload, deadline, &mut tries) {
                return outcome;
            }
        }
        Err(PostError::Unreachable {
            attempts: tries.attempts,
            refused: tries.refused,
        })
    }

    /// Tries `target`'s addresses in turn; `None` when none could be connected to.
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
        let start = target.next_addr.fetch_add(1, Ordering::Relaxed);
        for j in 0..addrs.len() {
            let addr = addrs[start.wrapping_add(j) % addrs.len()];
            if Instant::now() >= deadline {
                return Some(Err(self.timed_out(url.to_string(), Some(addr.ip()))));
            }
            let exchange = Exchange {
                addr,
                uri: &target.uri,
                host: &target.host_header,
                payload,
                deadline,
            };
            let outcome = match self.client.post(&exchange) {
                Ok(reply) if reply.status == 503 && (j + 1 < addrs.len() || tries.more_targets) => {
                    tries.attempts.push(format!("{url} ({addr}): answered 503"));
                    tries.refused.push(addr.ip());
                    continue;
                }
                Ok(reply) => Ok(UpstreamReply {
                    status: reply.status,
                    body: String::from_utf8(reply.body)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
                    url: Arc::clone(url),
                    headers: reply.headers,
                    addr: addr.ip(),
                    refused: std::mem::take(&mut tries.refused),
                }),
                Err(ExchangeFailure::NotConnected(reason)) => {
                    tries.attempts.push(format!("{url} ({addr}): {reason}"));
                    tries.refused.push(addr.ip());
                    continue;
                }
                Err(ExchangeFailure::TimedOut) => {
                    Err(self.timed_out(url.to_string(), Some(addr.ip())))
                }
                Err(ExchangeFailure::Failed(reason)) => Err(PostError::Failed {
                    url: url.to_string(),
                    reason,
                    addr: addr.ip(),
                }),
            };
            return Some(outcome);
        }
        // Every address refused: the pods may have moved.
        target.host.all_refused();
        None
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
    /// Whether URLs after the one being tried remain.
    more_targets: bool,
}

/// Where a round-robin starts: varied per process, so that instances started
/// together (three senders, say) do not all pick the same relay at the same time.
fn rotation_start() -> usize {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as usize);
    nanos ^ std::process::id() as usize
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
        let (logger, metrics) = crate::dns::test::watchers();
        Upstream::new(peer, 8, &logger, &metrics)
    }

    /// A one-shot HTTP server on loopback that answers `status` and records the request head.
    fn one_shot(status: u16) -> (SocketAddr, thread::JoinHandle<String>) {
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
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody"
            )
            .unwrap();
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
    fn round_robin_alternates_between_urls() {
        let up = upstream(&peer("127.0.0.1:1/,127.0.0.1:2/", Duration::from_secs(1)));
        let firsts: Vec<usize> = (0..4)
            .map(|_| up.next_target.fetch_add(1, Ordering::Relaxed) % 2)
            .collect();
        assert_ne!(firsts[0], firsts[1]);
        assert_eq!(firsts[0], firsts[2]);
        assert_eq!(firsts[1], firsts[3]);
    }
}
