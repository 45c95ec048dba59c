//! Byte scans over a request head and the header values of an answer, eight bytes at a time (three-tier patch).
//!
//! The head is read line by line and every byte of it is checked, so these
//! loops are most of what parsing a request costs. Each one reads the input
//! as little-endian `u64` words and asks of a whole word whether one of its
//! bytes needs a closer look (the classic "has a byte less than n" and "has
//! a zero byte" tests); only such a word is then looked at byte by byte. The
//! word tests may flag a word that is in fact fine, never miss one that is
//! not, so every answer is exactly the byte-at-a-time answer (the unit tests
//! hold each scan against its plain loop on random input).

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Whether some byte of `word` is below `n` (`n` at most 128).
const fn has_less(word: u64, n: u8) -> bool {
    word.wrapping_sub(ONES * n as u64) & !word & HIGHS != 0
}

/// Whether some byte of `word` equals `byte`.
const fn has_byte(word: u64, byte: u8) -> bool {
    has_less(word ^ (ONES * byte as u64), 1)
}

fn words(s: &[u8]) -> (std::slice::ChunksExact<'_, u8>, usize) {
    let chunks = s.chunks_exact(8);
    let whole = s.len() - chunks.remainder().len();
    (chunks, whole)
}

fn word(chunk: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(chunk);
    u64::from_le_bytes(bytes)
}

/// The index of the first `byte` in `s`.
pub(crate) fn find(s: &[u8], byte: u8) -> Option<usize> {
    let (chunks, whole) = words(s);
    for (i, chunk) in chunks.enumerate() {
        if has_byte(word(chunk), byte) {
            let at = chunk.iter().position(|b| *b == byte);
            if let Some(at) = at {
                return Some(i * 8 + at);
            }
        }
    }
    s[whole..]
        .iter()
        .position(|b| *b == byte)
        .map(|at| whole + at)
}

/// A byte a received header value may hold (RFC 9110 §5.5 field-content):
/// visible ASCII, space, tab and obs-text (0x80-0xff); no other control.
fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b) || b >= 0x80
}

/// Whether every byte of `s` may stand in a received header value.
pub(crate) fn is_received_field_value(s: &[u8]) -> bool {
    all(s, |w| has_less(w, 0x20) || has_byte(w, 0x7f), is_value_byte)
}

/// Whether `ok` holds for every byte of `s`, asked byte by byte only of
/// the words that `suspect` flags (it must flag every word with a byte
/// that is not `ok`).
fn all(s: &[u8], suspect: impl Fn(u64) -> bool, ok: fn(u8) -> bool) -> bool {
    let (chunks, whole) = words(s);
    for chunk in chunks {
        if suspect(word(chunk)) && !chunk.iter().all(|b| ok(*b)) {
            return false;
        }
    }
    s[whole..].iter().all(|b| ok(*b))
}

/// A byte this server writes in a header value: visible ASCII, space, tab.
fn is_sent_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..0x7f).contains(&b)
}

/// Whether every byte of `s` may stand in a header value this server writes
/// (no line break, which would let a value inject headers; no obs-text).
pub(crate) fn is_sent_field_value(s: &[u8]) -> bool {
    let suspect = |w| has_less(w, 0x20) || has_byte(w, 0x7f) || w & HIGHS != 0;
    all(s, suspect, is_sent_value_byte)
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;

    /// A small generator (xorshift), so the test needs no crate and repeats.
    pub(crate) struct Bytes(pub(crate) u64);

    impl Bytes {
        fn next(&mut self) -> u8 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 24) as u8
        }

        /// Mostly ordinary header text, now and then any byte at all.
        pub(crate) fn line(&mut self) -> Vec<u8> {
            let len = usize::from(self.next() % 40);
            (0..len)
                .map(|_| match self.next() % 16 {
                    0 => self.next(),
                    1 => [b'\t', b'\r', b'\n', 0x7f, 0x80, 0xff, 0, b':']
                        [usize::from(self.next() % 8)],
                    _ => b' ' + self.next() % 95,
                })
                .collect()
        }
    }

    #[test]
    fn each_scan_answers_as_its_byte_at_a_time_loop() {
        let mut gen = Bytes(0x9e37_79b9_7f4a_7c15);
        for _ in 0..200_000 {
            let line = gen.line();
            for byte in [b'\n', b'\r', b':', 0x7f] {
                assert_eq!(
                    find(&line, byte),
                    line.iter().position(|b| *b == byte),
                    "{line:?}"
                );
            }
            let plain = line.iter().all(|b| is_value_byte(*b));
            assert_eq!(is_received_field_value(&line), plain, "{line:?}");
            let plain = line.iter().all(|b| is_sent_value_byte(*b));
            assert_eq!(is_sent_field_value(&line), plain, "{line:?}");
        }
    }

    #[test]
    fn every_single_byte_is_judged_in_every_position_of_a_word() {
        for b in 0..=255u8 {
            for at in 0..17 {
                let mut line = vec![b'a'; 17];
                line[at] = b;
                assert_eq!(
                    is_received_field_value(&line),
                    is_value_byte(b),
                    "{b:#x} at {at}"
                );
                let expected = if b == b'a' { Some(0) } else { Some(at) };
                assert_eq!(find(&line, b), expected, "{b:#x} at {at}");
            }
        }
    }
}
