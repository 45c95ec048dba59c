//! One connection on the wire: its parts sent pipelined or one at a time, and every byte the server sends back, read as responses.
//!
//! A [`Plan`] is the parts of one connection, how they are sent (all at once
//! in random segments, as a pipelining client does, or each after the answer
//! to the one before, as a keep-alive client does) and how the client ends
//! (its FIN right after its last part, or a last `GET /healthz` with
//! `Connection: close`). Either way the server ends the connection, so the
//! whole of what it sent is read to its end, with no wait but the end
//! itself: a missing answer, an extra one or one answered twice all show.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use super::grammar::{Outcome, Part};
use crate::util::PATIENCE;

/// How a connection's parts go out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every byte written at once, in several segments.
    Pipelined,
    /// Each part after the answer to the one before.
    OneAtATime,
}

/// One connection: its parts, how they go out and where the writes split.
#[derive(Debug, Clone)]
pub struct Plan {
    pub parts: Vec<Part>,
    pub mode: Mode,
    /// The client half-closes after its last part (else the last part asks to close).
    pub fin: bool,
    /// Where the pipelined bytes are split into separate writes.
    pub splits: Vec<usize>,
}

/// One response as read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// What the server sent on a connection: the bytes, and reads from them.
pub struct Received {
    stream: TcpStream,
    pub bytes: Vec<u8>,
    at: usize,
    ended: bool,
}

impl Received {
    fn new(stream: TcpStream) -> Received {
        Received {
            stream,
            bytes: Vec::new(),
            at: 0,
            ended: false,
        }
    }

    /// Reads more; `false` at the end of the stream (a reset counts as the end).
    fn more(&mut self) -> Result<bool, String> {
        if self.ended {
            return Ok(false);
        }
        let mut buf = [0u8; 16 * 1024];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.ended = true;
                Ok(false)
            }
            Ok(n) => {
                self.bytes.extend_from_slice(&buf[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(format!("nothing more within {PATIENCE:?} and no close"))
            }
            Err(_) => {
                self.ended = true;
                Ok(false)
            }
        }
    }

    /// The next response, or `None` at the end of the stream; a `HEAD`
    /// request's answer has no body.
    pub fn response(&mut self, head_only: bool) -> Result<Option<Response>, String> {
        let head_end = loop {
            let rest = &self.bytes[self.at..];
            if let Some(i) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
                break self.at + i + 4;
            }
            if !self.more()? {
                return match self.bytes.len() - self.at {
                    0 => Ok(None),
                    n => Err(format!(
                        "{n} bytes that are not a whole response head before the close"
                    )),
                };
            }
        };
        let head = String::from_utf8_lossy(&self.bytes[self.at..head_end]).into_owned();
        let status = head
            .strip_prefix("HTTP/1.1 ")
            .and_then(|s| s.get(..3)?.parse().ok())
            .ok_or_else(|| format!("not a status line: {head:?}"))?;
        let mut response = Response { status, head };
        let length: usize = match response.header("Content-Length") {
            _ if status < 200 || head_only => 0,
            Some(n) => n
                .parse()
                .map_err(|_| format!("bad length in {:?}", response.head))?,
            None => return Err(format!("no Content-Length: {:?}", response.head)),
        };
        while self.bytes.len() < head_end + length {
            if !self.more()? {
                return Err(format!("the body of {:?} was cut off", response.head));
            }
        }
        self.at = head_end + length;
        response.head.truncate(response.head.trim_end().len());
        Ok(Some(response))
    }

    /// The answer to `part`: the final response, after a `100 Continue` if
    /// the part may have one.
    pub fn answer(&mut self, part: &Part) -> Result<Option<Response>, String> {
        let mut response = self.response(part.head)?;
        if let Some(r) = &response {
            if r.status == 100 && part.may_continue {
                response = self.response(part.head)?;
            }
        }
        Ok(response)
    }
}

/// Sends `plan` to `addr`; returns what came back, read as far as the
/// mode allows: everything, up to the end, for a pipelined connection;
/// for one at a time, each part's answer before the next part is sent.
pub fn run(
    addr: SocketAddr,
    plan: &Plan,
    check: &mut dyn FnMut(&mut Received, &Part) -> Result<bool, String>,
) -> Result<Received, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_read_timeout(Some(PATIENCE))
        .map_err(|e| e.to_string())?;
    let mut received = Received::new(stream);
    match plan.mode {
        Mode::Pipelined => {
            let all: Vec<u8> = plan.parts.iter().flat_map(|p| p.bytes.clone()).collect();
            let mut from = 0;
            for &at in plan.splits.iter().chain([&all.len()]) {
                // The server may close before the last bytes (after a refusal): not an error.
                let _ = received.stream.write_all(&all[from..at]);
                from = at;
            }
            if plan.fin {
                let _ = received.stream.shutdown(Shutdown::Write);
            }
            for part in &plan.parts {
                if !check(&mut received, part)? {
                    break;
                }
            }
        }
        Mode::OneAtATime => {
            for (i, part) in plan.parts.iter().enumerate() {
                let _ = received.stream.write_all(&part.bytes);
                if plan.fin && i + 1 == plan.parts.len() {
                    let _ = received.stream.shutdown(Shutdown::Write);
                }
                if !check(&mut received, part)? {
                    break;
                }
            }
        }
    }
    Ok(received)
}

/// Checks the answer to `part` (see [`Outcome`]); returns whether the
/// connection goes on after it. Ids answered 200 go to `answered`.
pub fn check_part(
    received: &mut Received,
    part: &Part,
    answered: &mut Vec<String>,
) -> Result<bool, String> {
    let answer = received.answer(part)?;
    let id = part.id.as_deref();
    match (&part.outcome, answer) {
        (
            Outcome::CutOff {
                head_complete: false,
            },
            None,
        ) => return Ok(false),
        (
            Outcome::CutOff {
                head_complete: false,
            },
            Some(r),
        ) => {
            return Err(format!(
                "an answer to a request cut off in its head: {}",
                r.head
            ))
        }
        (_, None) => return Err("no answer before the close".into()),
        (Outcome::Message, Some(r)) => {
            if r.status != 200 || r.header("X-Request-Id") != id {
                return Err(format!(
                    "a message answered other than 200 with its id {id:?}: {}",
                    r.head
                ));
            }
            answered.extend(id.map(String::from));
        }
        (Outcome::Served(status), Some(r)) if r.status != *status => {
            return Err(format!("expected {status}: {}", r.head))
        }
        (Outcome::Served(_), Some(_)) => {}
        (Outcome::Refused(status), Some(r)) => {
            let fits = status.map_or(r.status >= 400, |s| s == r.status);
            if !fits || r.header("Connection") != Some("close") {
                return Err(format!("expected {status:?} and a close: {}", r.head));
            }
        }
        (
            Outcome::CutOff {
                head_complete: true,
            },
            Some(r),
        ) if r.status != 400 => {
            return Err(format!(
                "a cut-off body answered other than 400: {}",
                r.head
            ))
        }
        (Outcome::CutOff { .. }, Some(_)) => {}
    }
    Ok(!part.ends_connection())
}

/// After the last answer: the server closes, and sends nothing more.
pub fn check_end(received: &mut Received) -> Result<(), String> {
    match received.response(false)? {
        None => Ok(()),
        Some(r) => Err(format!("an answer nothing asked for: {}", r.head)),
    }
}
