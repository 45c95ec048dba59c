//! Reading a request body exactly as its framing says (three-tier patch).
//!
//! Upstream treated a body that ended early as complete, so a cut-off message
//! was handled as a whole one, and decoded chunks with the `chunked_transfer`
//! crate, whose size-line reader grew without limit (one connection streaming
//! `000…` took hundreds of MiB). Here a body ends only at its announced length
//! or after its last chunk and trailers; anything else is an error the
//! application turns into a 400. Chunk-size lines, extensions and trailers are
//! bounded (see `parse.rs`), and a body whose framing broke leaves the
//! connection unusable, so the connection layer closes it instead of parsing
//! what follows as the next request.

use std::io;

use crate::parse::{self, Framing, MAX_CHUNK_LINE, MAX_HEADER_LINE, MAX_TRAILER_BYTES};
use crate::socket::{Input, LineError, Socket};

/// Where the reader is in the current request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyState {
    /// Read to its end (or there was none).
    Done,
    /// `left` of `total` bytes still to come.
    Length { left: u64, total: u64 },
    /// Inside a chunked body.
    Chunked(Chunk),
    /// The framing broke or the body was cut off: the connection must close.
    Broken,
}

/// The chunked decoder's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many data bytes left in the current chunk.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines so far, in bytes.
    Trailers(usize),
}

fn invalid(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason.to_string())
}

fn cut_off(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, reason)
}

impl BodyState {
    pub fn new(framing: Framing) -> BodyState {
        match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Length { left: n, total: n },
            Framing::Chunked => BodyState::Chunked(Chunk::Size),
        }
    }

    /// Whether the whole body has been read, so the connection can carry another request.
    pub fn is_done(&self) -> bool {
        *self == BodyState::Done
    }

    /// Reads body bytes into `buf`; `Ok(0)` only at the body's proper end.
    pub fn read(
        &mut self,
        input: &mut Input,
        socket: &mut Socket,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        let result = match *self {
            BodyState::Done => Ok(0),
            BodyState::Broken => Err(invalid("the body could not be read")),
            BodyState::Length { left, total } => self.read_length(input, socket, buf, left, total),
            BodyState::Chunked(_) => self.read_chunked(input, socket, buf),
        };
        if result.is_err() {
            *self = BodyState::Broken;
        }
        result
    }

    fn read_length(
        &mut self,
        input: &mut Input,
        socket: &mut Socket,
        buf: &mut [u8],
        left: u64,
        total: u64,
    ) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(left) as usize;
        let n = if input.is_empty() {
            socket.read(&mut buf[..want])?
        } else {
            input.take_into(&mut buf[..want])
        };
        if n == 0 {
            return Err(cut_off(format!(
                "body ended after {} of {total} announced bytes",
                total - left
            )));
        }
        let left = left - n as u64;
        *self = if left == 0 {
            BodyState::Done
        } else {
            BodyState::Length { left, total }
        };
        Ok(n)
    }

    fn read_chunked(
        &mut self,
        input: &mut Input,
        socket: &mut Socket,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        loop {
            let BodyState::Chunked(state) = *self else {
                return Ok(0);
            };
            *self = match state {
                Chunk::Size => {
                    let line =
                        next_line(input, socket, MAX_CHUNK_LINE, "chunk-size line too long")?;
                    let size = parse::chunk_size(&line).map_err(|r| invalid(r.reason))?;
                    BodyState::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    })
                }
                Chunk::Data(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    if input.is_empty() && input.fill(socket)? == 0 {
                        return Err(cut_off("body ended inside a chunk".into()));
                    }
                    let want = (buf.len() as u64).min(left) as usize;
                    let n = input.take_into(&mut buf[..want]);
                    let left = left - n as u64;
                    *self = BodyState::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(n);
                }
                Chunk::DataEnd => {
                    let line = next_line(input, socket, 0, "chunk data longer than its size")?;
                    if !line.is_empty() {
                        return Err(invalid("chunk data longer than its size"));
                    }
                    BodyState::Chunked(Chunk::Size)
                }
                Chunk::Trailers(seen) => {
                    let (line, len) =
                        next_line_len(input, socket, MAX_HEADER_LINE, "trailer line too long")?;
                    let seen = seen + len;
                    if seen > MAX_TRAILER_BYTES {
                        return Err(invalid("trailers too large"));
                    }
                    if line.is_empty() {
                        *self = BodyState::Done;
                        return Ok(0);
                    }
                    parse::header_line(&line).map_err(|r| invalid(r.reason))?;
                    BodyState::Chunked(Chunk::Trailers(seen))
                }
            };
        }
    }
}

/// The next line of the body's framing, without its CRLF.
fn next_line(
    input: &mut Input,
    socket: &mut Socket,
    max: usize,
    too_long: &str,
) -> io::Result<Vec<u8>> {
    next_line_len(input, socket, max, too_long).map(|(line, _)| line)
}

fn next_line_len(
    input: &mut Input,
    socket: &mut Socket,
    max: usize,
    too_long: &str,
) -> io::Result<(Vec<u8>, usize)> {
    let len = match input.line(socket, max) {
        Ok(len) => len,
        Err(LineError::TooLong | LineError::Invalid) => return Err(invalid(too_long)),
        Err(LineError::Eof) => return Err(cut_off("body ended before its last chunk".into())),
        Err(LineError::Io(e)) => return Err(e),
    };
    let line = parse::strip_cr(&input.data()[..len - 1])
        .map_err(|r| invalid(r.reason))?
        .to_vec();
    input.consume(len);
    Ok((line, len))
}
