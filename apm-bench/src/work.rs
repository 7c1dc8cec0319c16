//! The work inside the spans: the same for every library and for the floor.

use std::hint::black_box;

/// The body of a child span in scenarios 1–3: trivially small, so the instrumentation dominates.
#[inline(always)]
pub fn tiny(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 1
}

/// The body of one pool task in scenario 4: FNV-1a over a 4 KiB buffer (about 1.5–4 µs here),
/// standing in for the seed's per-URL work.
#[inline(never)]
pub fn task_work() -> u64 {
    static DATA: [u8; 4096] = {
        let mut d = [0u8; 4096];
        let mut i = 0;
        while i < 4096 {
            d[i] = (i * 31 % 251) as u8;
            i += 1;
        }
        d
    };
    let data = black_box(&DATA);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data.iter() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
