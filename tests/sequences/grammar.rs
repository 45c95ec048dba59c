//! The parts a connection is made of, each with what the server must do with it.
//!
//! A [`Part`] is the bytes of one request (or of garbage, or of a request cut
//! off by the client's FIN) and its [`Outcome`]. The generator builds good
//! messages with random bodies, header orders, header-name cases and
//! framings (a `Content-Length` with leading zeros or whitespace, or chunks
//! of random sizes with extensions and trailers), requests that are served
//! without being messages (probes, 405s, empty or non-UTF-8 bodies), every
//! kind of request the server refuses ([`super::refusals`]: each from a good
//! message with one rule broken, so its status is known), garbage, and
//! cut-off requests.

/// SplitMix64: a small generator whose every connection is replayed from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// What the server must do with a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A message: 200 with its own `X-Request-Id`, recorded exactly once.
    Message,
    /// Answered with this status and not recorded; the connection stays
    /// unless the part asks to close.
    Served(u16),
    /// Refused: one answer with this status (`None`: 400 or above), then the
    /// close, never recorded.
    Refused(Option<u16>),
    /// Cut off by the client's FIN: no answer when its head is incomplete,
    /// 400 when only the body is cut; then the close; never recorded.
    CutOff { head_complete: bool },
}

/// One request's bytes and what must become of them.
#[derive(Debug, Clone)]
pub struct Part {
    pub bytes: Vec<u8>,
    pub outcome: Outcome,
    /// Its request id, if it carries one (a message's, or a refused message's).
    pub id: Option<String>,
    /// A `HEAD` request: its answer has no body.
    pub head: bool,
    /// Its answer closes the connection (`Connection: close`, HTTP/1.0).
    pub closes: bool,
    /// A `100 Continue` may come before its answer.
    pub may_continue: bool,
}

impl Part {
    /// Whether nothing after this part is answered.
    pub fn ends_connection(&self) -> bool {
        self.closes || !matches!(self.outcome, Outcome::Message | Outcome::Served(_))
    }
}

/// A good message's pieces before they are written out, so that a refused
/// part can be made from one by breaking one rule.
pub(super) struct Draft {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) version: &'static str,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Vec<u8>,
    pub(super) chunked: bool,
    pub(super) expect: bool,
    pub(super) closes: bool,
}

/// Header values that are fine to send (obs-text included).
const VALUES: [&[u8]; 6] = [
    b"plain",
    b"with  spaces\tand a tab",
    b"Ger\xc3\xa4t/1.0 (D\xc3\xbcsseldorf)",
    b"\x80\xff opaque",
    b"",
    b"a,b;c=\"d\"",
];

/// Words a message body is made of, UTF-8 and escapes included.
const WORDS: [&str; 8] = [
    "Message",
    "sent",
    "from",
    "\u{e9}t\u{e9}",
    "\u{65e5}\u{672c}",
    "\\t",
    "\n",
    "x",
];

/// A random, never empty, UTF-8 body.
fn body(rng: &mut Rng) -> Vec<u8> {
    let words = 1 + rng.below(40);
    let mut text = String::new();
    for _ in 0..words {
        text.push_str(rng.pick(&WORDS));
        text.push(' ');
    }
    text.into_bytes()
}

/// `name` in a random case.
fn cased(rng: &mut Rng, name: &str) -> String {
    match rng.below(3) {
        0 => name.to_string(),
        1 => name.to_ascii_lowercase(),
        _ => name.to_ascii_uppercase(),
    }
}

/// A good message to `path` with request id `id`.
pub(super) fn draft(rng: &mut Rng, path: &str, id: &str) -> Draft {
    let version = if rng.chance(10) {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    };
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    if version == "HTTP/1.1" || rng.chance(50) {
        headers.push((cased(rng, "Host"), b"sink-svc".to_vec()));
    }
    headers.push((cased(rng, "X-Request-Id"), id.as_bytes().to_vec()));
    for i in 0..rng.below(4) {
        let value = rng.pick(&VALUES).to_vec();
        headers.push((format!("X-Extra-{i}"), value));
    }
    if rng.chance(20) {
        let value = if rng.chance(50) {
            &b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"[..]
        } else {
            b"not a trace"
        };
        headers.push(("traceparent".into(), value.to_vec()));
    }
    if rng.chance(10) {
        headers.push(("X-Fault".into(), b"sink=503".to_vec()));
    }
    let mut closes = version == "HTTP/1.0";
    if version == "HTTP/1.0" && rng.chance(60) {
        headers.push(("Connection".into(), b"keep-alive".to_vec()));
        closes = false;
    } else if rng.chance(8) {
        headers.push((cased(rng, "Connection"), b"close".to_vec()));
        closes = true;
    }
    let expect = version == "HTTP/1.1" && rng.chance(15);
    if expect {
        headers.push(("Expect".into(), b"100-continue".to_vec()));
    }
    let chunked = version == "HTTP/1.1" && rng.chance(30);
    shuffle(rng, &mut headers);
    let target = if rng.chance(10) {
        format!("http://sink-svc{path}")
    } else {
        path.to_string()
    };
    Draft {
        method: "POST".into(),
        target,
        version,
        headers,
        body: body(rng),
        chunked,
        expect,
        closes,
    }
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}

impl Draft {
    /// The request's bytes, and where its head ends.
    pub(super) fn write(&self, rng: &mut Rng) -> (Vec<u8>, usize) {
        let mut out = format!("{} {} {}\r\n", self.method, self.target, self.version).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if self.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        } else {
            let length = match rng.below(4) {
                0 => format!("Content-Length: 00{}", self.body.len()),
                1 => format!("content-length:  {} ", self.body.len()),
                _ => format!("Content-Length: {}", self.body.len()),
            };
            out.extend_from_slice(length.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
        }
        let head = out.len();
        if self.chunked {
            chunks(rng, &self.body, &mut out);
        } else {
            out.extend_from_slice(&self.body);
        }
        (out, head)
    }
}

/// `body` in chunks of random sizes, some with extensions, ending with
/// trailers or without.
fn chunks(rng: &mut Rng, body: &[u8], out: &mut Vec<u8>) {
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(rest.len())).min(rest.len());
        let size = if rng.chance(50) {
            format!("{n:x}")
        } else {
            format!("0{n:X}")
        };
        let ext = if rng.chance(20) {
            ";name=\"va lue\""
        } else {
            ""
        };
        out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if rng.chance(20) {
        out.extend_from_slice(b"X-Trailer: yes\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A good message: 200 and recorded once.
pub fn message(rng: &mut Rng, path: &str, id: &str) -> Part {
    let draft = draft(rng, path, id);
    let (bytes, _) = draft.write(rng);
    Part {
        bytes,
        outcome: Outcome::Message,
        id: Some(id.to_string()),
        head: false,
        closes: draft.closes,
        may_continue: draft.expect,
    }
}

/// A message cut off after a random number of its bytes (the client then sends its FIN).
pub fn cut_off(rng: &mut Rng, path: &str, id: &str) -> Part {
    let draft = draft(rng, path, id);
    let (mut bytes, head) = draft.write(rng);
    let keep = 1 + rng.below(bytes.len() - 1);
    bytes.truncate(keep);
    Part {
        bytes,
        outcome: Outcome::CutOff {
            head_complete: keep >= head,
        },
        id: Some(id.to_string()),
        head: false,
        closes: true,
        may_continue: draft.expect,
    }
}

/// A request that is served without being a message.
pub fn served(rng: &mut Rng, path: &str) -> Part {
    let (request, status, head): (String, u16, bool) = match rng.below(9) {
        0 => ("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n".into(), 200, false),
        1 => ("HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n".into(), 200, true),
        2 => ("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n".into(), 200, false),
        3 => (format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"), 405, false),
        4 => (format!("HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n"), 405, true),
        5 => (
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"),
            400,
            false,
        ),
        6 => (
            format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n\u{ff}"),
            400,
            false,
        ),
        // A body where none is expected is read, then the request answered.
        7 => (
            "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc".into(),
            200,
            false,
        ),
        _ => (
            "POST /metrics HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                .into(),
            405,
            false,
        ),
    };
    let mut bytes = request.into_bytes();
    if status == 400 && bytes.ends_with("\u{ff}".as_bytes()) {
        // Two bytes that are not UTF-8.
        let n = bytes.len();
        bytes[n - 2..].copy_from_slice(b"\xff\xfe");
    }
    Part {
        bytes,
        outcome: Outcome::Served(status),
        id: None,
        head,
        closes: false,
        may_continue: false,
    }
}

/// Bytes that cannot start a request: 400 at once.
pub fn garbage(rng: &mut Rng) -> Part {
    let first = rng.pick(&[0x00u8, 0x01, 0x16, 0x80, 0xff, b'(', b'@', b' ', b'{']);
    let mut bytes = vec![first];
    for _ in 0..rng.below(40) {
        bytes.push(rng.next() as u8);
    }
    Part {
        bytes,
        outcome: Outcome::Refused(Some(400)),
        id: None,
        head: false,
        closes: true,
        may_continue: false,
    }
}
