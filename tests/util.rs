//! Helpers: start a tier binary and read its log, make raw HTTP requests.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};
pub use three_tier::record::message::{request_id_of, trace_id_of, without_ids, Record, Verb};

/// How long any wait in these tests may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Held by the tests that generate heavy load (thousands of requests, a thousand
/// connections), so that they do not run at the same time: each asserts how one
/// server behaves under its own load, not under the sum of everyone's.
pub fn heavy_load() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running tier binary whose output is collected line by line.
pub struct TierProcess {
    pub name: String,
    pub pid: u32,
    pub addr: SocketAddr,
    lines: Arc<(Mutex<Vec<String>>, Condvar)>,
    exit: Option<Receiver<ExitStatus>>,
    status: Option<ExitStatus>,
}

impl TierProcess {
    /// Starts `bin` (sender, relay, sink) with only `env` (plus PATH), listening on 127.0.0.1:0
    /// unless `env` sets LISTEN_ADDR, and waits for its `listening on` line.
    pub fn start(bin: &str, name: &str, env: &[(&str, String)]) -> TierProcess {
        TierProcess::start_wrapped(&[], bin, name, env)
    }

    fn wait_listening(&mut self) {
        // Text: `listening on <addr>`; JSON: `{..."message":"listening on <addr>"}`.
        let line = self
            .wait_line(|l| l.starts_with("listening on ") || l.contains(r#""event":"listening""#))
            .unwrap_or_else(|| panic!("{} did not start:\n{}", self.name, self.output()));
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split('"').next());
        self.addr = addr
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
    }

    /// A field of `/proc/<pid>/status`, such as `VmRSS` (kB) or `Threads`.
    pub fn status(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_else(|e| panic!("{} has no /proc status: {e}", self.name));
        text.lines()
            .find_map(|l| {
                let value = l.strip_prefix(field)?.strip_prefix(':')?;
                value.split_whitespace().next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    /// The names of the process's threads (`/proc/<pid>/task/*/comm`).
    pub fn thread_names(&self) -> Vec<String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).expect("task list");
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|name| name.trim_end().to_string())
            .collect()
    }

    /// Starts `bin` without waiting for anything.
    pub fn spawn(bin: &str, name: &str, env: &[(&str, String)]) -> TierProcess {
        TierProcess::spawn_wrapped(&[], bin, name, env)
    }

    /// Starts `bin` under `wrapper` (a command that ends by exec'ing its
    /// arguments, such as `prlimit --nofile=256:256 --`, so the PID is the
    /// tier's), and waits for its `listening on` line.
    /// Starts `bin` as a pod: `ip` is its POD_IP and the address it listens on.
    pub fn pod(bin: &str, name: &str, ip: &str, env: &[(&str, String)]) -> TierProcess {
        let mut env = env.to_vec();
        env.push(("POD_IP", ip.to_string()));
        env.push(("LISTEN_ADDR", format!("{ip}:0")));
        TierProcess::start(bin, name, &env)
    }

    pub fn start_wrapped(
        wrapper: &[&str],
        bin: &str,
        name: &str,
        env: &[(&str, String)],
    ) -> TierProcess {
        let mut tier = TierProcess::spawn_wrapped(wrapper, bin, name, env);
        tier.wait_listening();
        tier
    }

    /// Starts `bin` with `env` and no LISTEN_ADDR at all: on the tier's own default.
    pub fn start_on_default_address(bin: &str, name: &str, env: &[(&str, String)]) -> TierProcess {
        let mut tier = TierProcess::spawn_with(&[], bin, name, env, false);
        tier.wait_listening();
        tier
    }

    fn spawn_wrapped(
        wrapper: &[&str],
        bin: &str,
        name: &str,
        env: &[(&str, String)],
    ) -> TierProcess {
        TierProcess::spawn_with(wrapper, bin, name, env, true)
    }

    fn spawn_with(
        wrapper: &[&str],
        bin: &str,
        name: &str,
        env: &[(&str, String)],
        loopback: bool,
    ) -> TierProcess {
        let mut vars: HashMap<&str, String> = HashMap::new();
        if loopback {
            vars.insert("LISTEN_ADDR", "127.0.0.1:0".into());
        }
        // An identity of its own, as a pod has: it names the LOG_DIR file,
        // which only one process may write.
        vars.insert("POD_IP", unique_pod_ip());
        for (k, v) in env {
            vars.insert(k, v.clone());
        }
        let mut command = command_wrapped(wrapper, bin);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(vars)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command.spawn().expect("spawn tier binary");
        TierProcess::collect(name, child)
    }

    /// Collects the output of any child process (also used for the seed's bash sender).
    pub fn collect(name: &str, mut child: Child) -> TierProcess {
        let lines: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (ended, streams_ended) = mpsc::channel();
        for (stream, prefix) in [
            (Box::new(stdout) as Box<dyn Read + Send>, ""),
            (Box::new(stderr), "stderr: "),
        ] {
            let (lines, ended) = (Arc::clone(&lines), ended.clone());
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let (store, changed) = &*lines;
                    store.lock().unwrap().push(format!("{prefix}{line}"));
                    changed.notify_all();
                }
                let _ = ended.send(());
            });
        }
        let pid = child.id();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                // The exit counts once all the output is read, so that a test
                // that saw the exit sees every line the process printed.
                for _ in 0..2 {
                    let _ = streams_ended.recv_timeout(PATIENCE);
                }
                let _ = tx.send(status);
            }
        });
        TierProcess {
            name: name.to_string(),
            pid,
            addr: "0.0.0.0:0".parse().unwrap(),
            lines,
            exit: Some(rx),
            status: None,
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The tiers' URLs for `path`, comma-separated, as `SINK_URL` or `RELAY_URL`.
    pub fn url_list(tiers: &[TierProcess], path: &str) -> String {
        tiers
            .iter()
            .map(|t| t.url(path))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.0.lock().unwrap().clone()
    }

    /// Every line so far, one string, for failure messages.
    pub fn output(&self) -> String {
        format!("--- {} ---\n{}", self.name, self.lines().join("\n"))
    }

    /// Lines so far that satisfy `pred`.
    pub fn matching(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.lines().into_iter().filter(|l| pred(l)).collect()
    }

    /// Waits (up to [`PATIENCE`]) for a line satisfying `pred`.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool) -> Option<String> {
        self.wait_lines(1, pred).map(|mut v| v.remove(0))
    }

    /// Waits (up to [`PATIENCE`]) until `n` lines satisfy `pred`.
    pub fn wait_lines(&self, n: usize, pred: impl Fn(&str) -> bool) -> Option<Vec<String>> {
        let deadline = Instant::now() + PATIENCE;
        let (store, changed) = &*self.lines;
        let mut lines = store.lock().unwrap();
        loop {
            let found: Vec<String> = lines.iter().filter(|l| pred(l)).cloned().collect();
            if found.len() >= n {
                return Some(found);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            lines = changed.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        signal(self.pid, rustix::process::Signal::TERM);
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self
                .exit
                .as_ref()
                .and_then(|rx| rx.recv_timeout(timeout).ok());
        }
        self.status
    }

    /// Waits (up to [`PATIENCE`]) for the exit code.
    pub fn exit_code(&mut self) -> i32 {
        match self.wait_exit(PATIENCE) {
            Some(status) => status.code().unwrap_or_else(|| {
                panic!(
                    "{} killed by a signal: {status}\n{}",
                    self.name,
                    self.output()
                )
            }),
            None => panic!("{} did not exit\n{}", self.name, self.output()),
        }
    }
}

impl Drop for TierProcess {
    fn drop(&mut self) {
        if self.wait_exit(Duration::ZERO).is_none() {
            signal(self.pid, rustix::process::Signal::KILL);
            self.wait_exit(PATIENCE);
        }
    }
}

/// Sends SIGHUP to `pid` (a tier started by the test).
pub fn signal_hup(pid: u32) {
    signal(pid, rustix::process::Signal::HUP);
}

/// Kills `pid` (a process the test started) with SIGKILL.
pub fn signal_kill(pid: u32) {
    signal(pid, rustix::process::Signal::KILL);
}

/// Runs `sink --loss-report` on `files`; returns its exit code and report.
pub fn loss_report<P: AsRef<std::ffi::OsStr>>(files: &[P]) -> (i32, String) {
    let out = command("sink")
        .arg("--loss-report")
        .args(files)
        .output()
        .expect("sink --loss-report");
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), report)
}

/// Runs `sink --loss-report` over `lines` (on stdin) and returns its output.
pub fn loss_report_of_lines(lines: &[String]) -> String {
    let mut sink = command("sink");
    run_with_stdin(sink.arg("--loss-report"), &(lines.join("\n") + "\n")).1
}

/// Stops (SIGSTOP) or continues (SIGCONT) `pid` (a tier started by the
/// test). A stop returns once every thread of it has stopped: the signal is
/// delivered asynchronously, and a thread still running could take a request
/// the test means to arrive while it is stopped.
pub fn signal_stop(pid: u32, stop: bool) {
    let sig = if stop {
        rustix::process::Signal::STOP
    } else {
        rustix::process::Signal::CONT
    };
    signal(pid, sig);
    let until = Instant::now() + PATIENCE;
    while stop && !every_thread_stopped(pid) {
        assert!(
            Instant::now() < until,
            "{pid} did not stop within {PATIENCE:?}"
        );
        // Polling the kernel's view of the threads, a bounded wait.
        thread::sleep(Duration::from_millis(1));
    }
}

/// Whether every thread of `pid` is stopped (`T` in `/proc/<pid>/task/*/stat`).
fn every_thread_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true; // gone: nothing of it runs
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
            state.is_some_and(|rest| rest.starts_with(['T', 't', 'Z', 'X']))
        })
    })
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("child pid is positive");
    let _ = rustix::process::kill_process(pid, sig);
}

/// The middle of the seed's 3/2/3 as pods: 3 sinks (127.0.2.1-3) and 2 relays
/// (127.0.1.1-2) with the sinks as SINK_URL and `relay_env` added; returns
/// them and the relays' URLs as a RELAY_URL list.
pub fn sinks_and_relays(
    relay_env: &[(&str, String)],
) -> (Vec<TierProcess>, Vec<TierProcess>, String) {
    sinks_and_relays_with(&[], relay_env)
}

/// [`sinks_and_relays`], the sinks with `sink_env`.
pub fn sinks_and_relays_with(
    sink_env: &[(&str, String)],
    relay_env: &[(&str, String)],
) -> (Vec<TierProcess>, Vec<TierProcess>, String) {
    let sinks: Vec<TierProcess> = (1..=3)
        .map(|i| {
            TierProcess::pod(
                "sink",
                &format!("sink-{i}"),
                &format!("127.0.2.{i}"),
                sink_env,
            )
        })
        .collect();
    let sink_url = TierProcess::url_list(&sinks, "/sink.php");
    let relays: Vec<TierProcess> = (1..=2)
        .map(|i| {
            let mut env = relay_env.to_vec();
            env.push(("SINK_URL", sink_url.clone()));
            TierProcess::pod(
                "relay",
                &format!("relay-{i}"),
                &format!("127.0.1.{i}"),
                &env,
            )
        })
        .collect();
    let relay_url = TierProcess::url_list(&relays, "/relay.php");
    (sinks, relays, relay_url)
}

/// A loopback address no other tier of this test run has, for `POD_IP`.
fn unique_pod_ip() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("127.77.{}.{}", n / 250 % 250, n % 250 + 1)
}

/// A command running tier binary `bin` (see [`binary`]), through the
/// emulator in `THREE_TIER_BIN_RUNNER` when that is set (CI runs the suite
/// under `qemu-aarch64-static` against the arm64 build).
pub fn command(bin: &str) -> Command {
    command_wrapped(&[], bin)
}

/// [`command`] behind `wrapper` (a program and its arguments, e.g. `prlimit`).
fn command_wrapped(wrapper: &[&str], bin: &str) -> Command {
    let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
    argv.extend(std::env::var("THREE_TIER_BIN_RUNNER").ok());
    argv.push(binary(bin));
    let mut command = Command::new(&argv[0]);
    command.args(&argv[1..]);
    command
}

/// The path of a tier binary: the one cargo built for these tests, or the
/// one in `THREE_TIER_BIN_DIR` when that is set (CI runs the suite a second
/// time against the static musl build the images hold).
pub fn binary(bin: &str) -> String {
    if let Ok(dir) = std::env::var("THREE_TIER_BIN_DIR") {
        let path = std::path::Path::new(&dir).join(bin);
        assert!(
            path.is_file(),
            "THREE_TIER_BIN_DIR has no {bin}: {}",
            path.display()
        );
        return path.display().to_string();
    }
    match bin {
        "sender" => env!("CARGO_BIN_EXE_sender"),
        "relay" => env!("CARGO_BIN_EXE_relay"),
        "sink" => env!("CARGO_BIN_EXE_sink"),
        other => panic!("no binary {other}"),
    }
    .to_string()
}

/// Raises this process's soft RLIMIT_NOFILE to `want` (children inherit it).
pub fn raise_open_file_limit(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let maximum = limit.maximum;
    let current = want.min(maximum.unwrap_or(want));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(current),
            maximum,
        },
    )
    .expect("raise RLIMIT_NOFILE");
    assert!(
        current >= want,
        "RLIMIT_NOFILE hard limit {maximum:?} is below {want}"
    );
}

/// Whether the server has closed `stream`: a read gives the end of the stream
/// or a reset within `within` (and no data).
pub fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Requires `/healthz` on a fresh connection to answer 200 `ok`.
pub fn assert_healthy(tier: &TierProcess) {
    let answer = get(tier.addr, "/healthz").unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "ok"),
        "{}",
        tier.output()
    );
}

/// Runs `command` with `input` on its stdin; returns its exit status and stdout.
pub fn run_with_stdin(command: &mut Command, input: &str) -> (ExitStatus, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin
        .write_all(input.as_bytes())
        .expect("write to the child's stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("child output");
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends `raw` bytes and reads one response, up to the end of its body.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Answer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.write_all(raw)?;
    read_answer(&mut stream)
}

/// Reads one response (head, then Content-Length bytes) from `stream`.
pub fn read_answer(stream: &mut TcpStream) -> std::io::Result<Answer> {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before the response head",
            ));
        }
        data.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&data).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut answer = Answer {
        status,
        head,
        body: String::new(),
    };
    let length: usize = answer
        .header("Content-Length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    answer.body = String::from_utf8_lossy(&body).into_owned();
    Ok(answer)
}

/// Request ids and how often the record files in `dir` whose names start
/// with `prefix` (`Sink_`, `Relay_`) hold them.
pub fn recorded_ids(dir: &std::path::Path, prefix: &str) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(prefix)
        {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            if let Some(id) = request_id_of(line) {
                *ids.entry(id.to_string()).or_default() += 1;
            }
        }
    }
    ids
}

/// A folder of its own, `name`d, under the system's temporary folder (emptied first).
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("three-tier-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// POSTs `body` to `path` and reads the answer.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<Answer> {
    exchange(addr, &post_request(path, body, "Connection: close\r\n"))
}

/// The bytes of a text POST of `body` to `path`, with `more` header lines
/// (each ending in CRLF; empty: the connection stays open).
pub fn post_request(path: &str, body: &str, more: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{more}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// GETs `path` and reads the answer.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Scrapes `tier`'s `/metrics` and returns the value of `series` (it must be there).
pub fn metric(tier: &TierProcess, series: &str) -> f64 {
    let text = get(tier.addr, "/metrics").unwrap().body;
    metric_in(&text, series).unwrap_or_else(|| panic!("{} has no {series} in:\n{text}", tier.name))
}

/// The value of `series` (name and labels, as printed) in a `/metrics` exposition.
pub fn metric_in(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The record of tier `verb` (`Sending`, `Relaying from`, `From`) that a log line holds, if any.
pub fn record(line: &str, verb: Verb) -> Option<Record<'_>> {
    Record::parse_as(line, verb).ok()
}

/// Whether a log line is a record of tier `verb` from `peer`.
pub fn is_record_from(line: &str, verb: Verb, peer: &str) -> bool {
    record(line, verb).is_some_and(|r| r.peer.is_some_and(|p| p.to_string() == peer))
}

/// The message a record line holds, as the line holds it (escaped); empty for any other line.
pub fn message_of(line: &str) -> String {
    Record::parse(line).map_or_else(|_| String::new(), |r| r.message.into_owned())
}

/// A log line without the request id it ends with.
pub fn text_of(line: &str) -> &str {
    without_ids(line)
}
