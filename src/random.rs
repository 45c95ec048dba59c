//! Random numbers without a syscall per call: a SplitMix64 generator per thread, seeded once from the kernel.
//!
//! For ids (trace and span ids, a relay's `Via` pseudonym) and for choices
//! (which pod of the next tier a message tries first). Unique and
//! unpredictable enough for those, not for secrets.

use std::cell::Cell;

/// A random non-zero u64 from this thread's SplitMix64, seeded once from the kernel.
pub fn random_nonzero() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    STATE.with(|state| loop {
        let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    })
}

/// Eight bytes from `getrandom(2)`; without it (never on Linux 3.17 or
/// later), the clock and the thread's address, which still differ per thread.
fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    match rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty()) {
        Ok(8) => u64::from_ne_bytes(bytes),
        _ => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let here = &bytes as *const _ as u64;
            nanos ^ here.rotate_left(32)
        }
    }
}

/// A number in `0..n` (`n` > 0; the bias of the modulo is below 2^-32 for
/// the handful of choices it makes).
pub fn below(n: usize) -> usize {
    (random_nonzero() % n as u64) as usize
}
