//! A cluster in a network namespace of the test's own: pods with addresses of
//! their own, Services as kube-proxy makes them, and the cluster DNS that a
//! pod looks them up through.
//!
//! `world::inside(module_path!(), "test_name", Family::V4, |world| ...)` runs
//! the test's body in a new network namespace. The test binary runs itself
//! again there, that one test only, under `ip netns exec`, which bind-mounts
//! the namespace's `resolv.conf` over `/etc/resolv.conf` the way the kubelet
//! gives a pod its resolver (`search tt.svc.cluster.local svc.cluster.local
//! cluster.local`, `options ndots:5`). Inside, the cluster DNS
//! (`scripts/lib/clusterdns.sh`, dnsmasq answering as CoreDNS does) listens
//! on 10.96.0.10 (or fd00:10:96::a), Services are kube-proxy's iptables
//! rules (`scripts/lib/clusterip.sh`), and every process the body starts
//! lives in the namespace, so nothing reaches the machine's own network.
//! With [`Options::front`], the address the pods ask is a [`Front`] run by
//! the test (dnsmasq then listens behind it), which can answer SERVFAIL,
//! REFUSED or late on demand.
//! Whatever is still running when the body ends is killed by PID, and the
//! namespace is deleted.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::util::TierProcess;

/// The Kubernetes namespace the pods' resolver searches first.
pub const NAMESPACE: &str = "tt";
/// Set in the test binary run inside the namespace: the namespace's name.
const INSIDE: &str = "THREE_TIER_WORLD";

/// Which addresses the world has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 (and the loopback's ::1).
    V4,
    /// IPv6 only: even 127.0.0.1 is removed.
    V6Only,
}

impl Family {
    /// The nameserver in the pods' resolv.conf.
    fn dns_ip(self) -> &'static str {
        match self {
            Family::V4 => "10.96.0.10",
            Family::V6Only => "fd00:10:96::a",
        }
    }

    /// Where dnsmasq listens when a [`Front`] takes the nameserver's address.
    fn behind_front_ip(self) -> &'static str {
        match self {
            Family::V4 => "10.96.0.11",
            Family::V6Only => "fd00:10:96::b",
        }
    }
}

/// What a world has.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Its addresses.
    pub family: Family,
    /// A [`Front`] answers the pods' DNS queries, passing them to dnsmasq behind it.
    pub front: bool,
}

/// An IPv4 world whose pods ask dnsmasq directly.
pub const V4: Options = Options {
    family: Family::V4,
    front: false,
};
/// An IPv6-only world.
pub const V6_ONLY: Options = Options {
    family: Family::V6Only,
    front: false,
};

/// The inside of a world, as the test body sees it.
pub struct World {
    options: Options,
    dir: PathBuf,
    front: Option<Front>,
}

/// Runs `body` inside a new world; `module` is the test's `module_path!()`
/// and `test` its function name, so that the binary can run just that test.
pub fn inside(module: &str, test: &str, options: Options, body: impl FnOnce(&World)) {
    if std::env::var_os(INSIDE).is_some() {
        let world = World::enter(options);
        body(&world);
        return;
    }
    let family = options.family;
    static WORLDS: AtomicUsize = AtomicUsize::new(0);
    let netns = format!(
        "tt-{}-{}",
        std::process::id(),
        WORLDS.fetch_add(1, Ordering::Relaxed)
    );
    let path = match module.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{test}"),
        None => test.to_string(),
    };
    // A world runs a dozen processes under load: one at a time, like the
    // other heavy tests (the lock is this process's; the body runs in another).
    let _heavy = crate::util::heavy_load();
    let _netns = Netns::add(&netns, family);
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new("ip")
        .args(["netns", "exec", &netns])
        .arg(exe)
        .args(["--exact", &path, "--nocapture", "--test-threads=1"])
        .env(INSIDE, &netns)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("ip (iproute2)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{path} inside network namespace {netns}:\n{stdout}\n{stderr}"
    );
    print!("{stdout}");
}

/// A named network namespace and its resolv.conf, deleted on drop with
/// whatever still runs in it.
struct Netns(String);

impl Netns {
    fn add(name: &str, family: Family) -> Netns {
        run("ip", &["netns", "add", name]);
        let netns = Netns(name.to_string());
        lib(
            "clusterdns",
            "clusterdns_resolv",
            &[name, NAMESPACE, family.dns_ip()],
        );
        netns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let pids = Command::new("ip")
            .args(["netns", "pids", &self.0])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.0));
    }
}

impl World {
    fn enter(options: Options) -> World {
        let netns = std::env::var(INSIDE).expect("inside a world");
        let dir = std::env::temp_dir().join(format!("three-tier-{netns}"));
        std::fs::create_dir_all(&dir).expect("the world's folder");
        lib("clusterip", "clusterip_init", &[]);
        if options.family == Family::V6Only {
            run("ip", &["-4", "addr", "flush", "dev", "lo"]);
        }
        let mut world = World {
            options,
            dir,
            front: None,
        };
        world.start_dns();
        if options.front {
            world.front = Some(Front::start(
                options.family.dns_ip(),
                options.family.behind_front_ip(),
            ));
        }
        world
    }

    /// The address dnsmasq listens on.
    fn dnsmasq_ip(&self) -> &'static str {
        if self.options.front {
            self.options.family.behind_front_ip()
        } else {
            self.options.family.dns_ip()
        }
    }

    /// The front that answers the pods' DNS queries (a world with [`Options::front`]).
    pub fn front(&self) -> &Front {
        self.front.as_ref().expect("a world with a DNS front")
    }

    fn dns_dir(&self) -> String {
        self.dir.join("dns").display().to_string()
    }

    /// A folder for the test's files, removed with the world.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// A ClusterIP Service `name` on `vip:port` over `endpoints` (`ip:port`,
    /// `[ip]:port` for IPv6), and its DNS record.
    pub fn service(&self, name: &str, vip: &str, port: u16, endpoints: &[String]) {
        let port = port.to_string();
        let mut args = vec![name, vip, port.as_str()];
        args.extend(endpoints.iter().map(String::as_str));
        lib("clusterip", "clusterip_set", &args);
        self.records(name, &[vip]);
    }

    /// Sets the DNS records of `name` (a headless Service: its pods' IPs; none: NXDOMAIN).
    pub fn records(&self, name: &str, ips: &[&str]) {
        let dir = self.dns_dir();
        let mut args = vec![dir.as_str(), name];
        args.extend(ips);
        lib("clusterdns", "clusterdns_set", &args);
    }

    /// The queries the cluster DNS logged for names starting with `name.`, as `(type, name)`.
    pub fn queries(&self, name: &str) -> Vec<(String, String)> {
        let log = std::fs::read_to_string(self.dir.join("dns/queries.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                let rest = line.split_once(" query[")?.1;
                let (kind, rest) = rest.split_once("] ")?;
                let queried = rest.split(' ').next()?;
                queried
                    .starts_with(&format!("{name}."))
                    .then(|| (kind.to_string(), queried.to_string()))
            })
            .collect()
    }

    /// The cluster DNS server's PID (dnsmasq, started by this world).
    pub fn dns_pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.dir.join("dns/dnsmasq.pid")).expect("dnsmasq pid");
        text.trim().parse().expect("a pid")
    }

    /// Starts the cluster DNS (again, after a test killed it), with the same records.
    pub fn start_dns(&self) {
        lib(
            "clusterdns",
            "clusterdns_start",
            &[&self.dns_dir(), NAMESPACE, self.dnsmasq_ip()],
        );
    }

    /// Starts `bin` as a pod: its own address `ip` on the loopback, POD_IP,
    /// listening on port 8080 there, plus `env`.
    pub fn pod(&self, bin: &str, name: &str, ip: &str, env: &[(&str, String)]) -> TierProcess {
        let listen = if ip.contains(':') {
            format!("[{ip}]:8080")
        } else {
            format!("{ip}:8080")
        };
        add_local_address(ip);
        let mut env = env.to_vec();
        env.push(("POD_IP", ip.to_string()));
        env.push(("LISTEN_ADDR", listen));
        TierProcess::start(bin, name, &env)
    }

    /// Starts a sink pod at each of `ips` (named `sink-1`, `sink-2`, ...), with `env`.
    pub fn sinks(&self, ips: &[&str], env: &[(&str, String)]) -> Vec<TierProcess> {
        ips.iter()
            .enumerate()
            .map(|(i, ip)| self.pod("sink", &format!("sink-{}", i + 1), ip, env))
            .collect()
    }
}

/// Adds `ip` to the namespace's loopback, usable at once: an IPv6 address
/// skips duplicate address detection (`nodad`), during which binding it
/// fails with EADDRNOTAVAIL.
fn add_local_address(ip: &str) {
    let (prefix, flags): (&str, &[&str]) = if ip.contains(':') {
        ("128", &["nodad"])
    } else {
        ("32", &[])
    };
    let address = format!("{ip}/{prefix}");
    let mut args = vec!["addr", "add", address.as_str(), "dev", "lo"];
    args.extend_from_slice(flags);
    run("ip", &args);
}

impl Drop for World {
    fn drop(&mut self) {
        lib("clusterdns", "clusterdns_stop", &[&self.dns_dir()]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How the [`Front`] answers a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsFault {
    /// None: passes it to dnsmasq and its answer back.
    Pass,
    /// Answers SERVFAIL at once.
    ServFail,
    /// Answers REFUSED at once.
    Refused,
    /// Passes it on, and dnsmasq's answer back this much later.
    Late(Duration),
}

/// A DNS server in front of dnsmasq that fails on demand, run by the test
/// inside the world. Each query is passed on from a socket of its own.
pub struct Front {
    answer: Arc<Mutex<DnsFault>>,
}

impl Front {
    fn start(listen: &str, behind: &str) -> Front {
        add_local_address(listen);
        let socket = UdpSocket::bind(SocketAddr::new(listen.parse().unwrap(), 53))
            .expect("the DNS front's socket");
        let behind = SocketAddr::new(behind.parse().unwrap(), 53);
        let answer = Arc::new(Mutex::new(DnsFault::Pass));
        let mode = Arc::clone(&answer);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, client)) = socket.recv_from(&mut buf) {
                let query = buf[..n].to_vec();
                let answer = *mode.lock().unwrap();
                let reply = socket
                    .try_clone()
                    .expect("a second handle on the front's socket");
                match answer {
                    DnsFault::ServFail | DnsFault::Refused => {
                        let rcode = if answer == DnsFault::ServFail { 2 } else { 5 };
                        if let Some(failure) = failure(&query, rcode) {
                            let _ = reply.send_to(&failure, client);
                        }
                    }
                    DnsFault::Pass => pass_on(query, behind, Duration::ZERO, reply, client),
                    DnsFault::Late(by) => pass_on(query, behind, by, reply, client),
                }
            }
        });
        Front { answer }
    }

    /// From now on, answers queries this way.
    pub fn set(&self, fault: DnsFault) {
        *self.answer.lock().unwrap() = fault;
    }
}

/// Asks dnsmasq on a thread of its own and answers `client` `late`.
fn pass_on(
    query: Vec<u8>,
    behind: SocketAddr,
    late: Duration,
    reply: UdpSocket,
    client: SocketAddr,
) {
    thread::spawn(move || {
        let any: SocketAddr = if behind.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .unwrap();
        let Ok(upstream) = UdpSocket::bind(any) else {
            return;
        };
        let _ = upstream.set_read_timeout(Some(Duration::from_secs(15)));
        if upstream
            .connect(behind)
            .and_then(|()| upstream.send(&query))
            .is_err()
        {
            return;
        }
        let mut buf = [0u8; 4096];
        if let Ok(n) = upstream.recv(&mut buf) {
            thread::sleep(late); // the fault itself: an answer this late
            let _ = reply.send_to(&buf[..n], client);
        }
    });
}

/// A reply to `query` with `rcode` and no records: its header and question only.
fn failure(query: &[u8], rcode: u8) -> Option<Vec<u8>> {
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += len;
    }
    let end = at + 4;
    let mut reply = query.get(..end)?.to_vec();
    reply[2] = 0x80 | (query[2] & 0x79); // QR, the query's opcode and RD
    reply[3] = 0x80 | rcode; // RA and the code
    reply[4..12].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    Some(reply)
}

/// Calls `function` of `scripts/lib/<script>.sh` with `args`.
fn lib(script: &str, function: &str, args: &[&str]) {
    let source = format!("source scripts/lib/{script}.sh && {function} \"$@\"");
    let mut all = vec!["-c", source.as_str(), function];
    all.extend(args);
    run("bash", &all);
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
