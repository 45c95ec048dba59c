//! Integration tests: the real binaries, real sockets, loopback only.
//!
//! Every test starts its own processes on port 0, reads the bound address from
//! their first log line, and ends them by PID when it is done.

// Process and HTTP helpers shared by the scenarios.
mod util;
// A cluster in a network namespace: pods, ClusterIP Services, cluster DNS.
mod world;

// Rejections: 400, 404, 405, 413, 503, and the server still healthy afterwards.
mod bad_input;
// Service names through the cluster DNS: looked up off the message path, kept through outages.
mod dns;
// Requests the RFCs allow are served; refusals get the RFCs' statuses.
mod conformance;
// The last ways to lose or stall a message: a removed LOG_DIR, a failing sink, an undrained stdout, ...
mod delivery;
// The message record through a full disk, log rotation and lost replies.
mod durable;
// Faults on demand: X-Fault, POST /fault, SEND_FAULT; off changes nothing.
mod faults;
// The sender's flow page, in Debian's chromium.
mod flow_page;
// One socket for IPv4 and IPv6 by default; the 3/2/3 in an IPv6-only cluster.
mod ipv6;
// Clients that gave up: their requests are not carried out, after any stall.
mod gone_clients;
// Hostile framing (smuggling, bad lengths, cut-off bodies) on raw sockets.
mod framing;
// Connection floods, clients that never read, slow uploads, a thread per message.
mod limits;
// The seed's own bash + curl sender against our relay.
mod seed_sender;
// Request ids, JSON logs and the loss report.
mod observability;
// Span export over OTLP: flushed on SIGTERM, never in a message's way.
mod otlp;
// README.md lists every setting, endpoint and set-up command.
mod readme;
// The musl build recipe is shared by CI's script and Containerfile.multi.
mod recipe;
// Every script answers --help with its usage and exit 0.
mod scripts;
// What a connection carries over its life: a sequence fuzzer, and the sequences it found.
mod sequences;
// SIGTERM under load: nothing answered 2xx is lost, and the exit is clean.
mod shutdown;
// A sink that stops and comes back: 502, retries, recovery.
mod sink_outage;
// Bounded connection reuse spreads messages over a kube-proxy-style ClusterIP.
mod spread;
// A thousand slow clients do not starve /healthz and are cut off on time.
mod slow_clients;
// Three senders, two relays, three sinks on one host.
mod topology;
// W3C Trace Context: one trace id from the sender to the sink.
mod trace;
