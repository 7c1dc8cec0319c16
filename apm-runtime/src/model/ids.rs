//! Trace, transaction and span ids: random, rendered as lowercase hex as the intake API wants.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// A 16-byte W3C trace id, shared by every event of one distributed trace.
///
/// ```
/// let tx = apm_runtime::Transaction::start("batch");
/// // A transaction started without an agent is a no-op and has no ids.
/// assert!(tx.trace_id().is_none());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId(pub(crate) [u8; 16]);

/// An 8-byte id of one transaction or span (the W3C `parent-id`).
///
/// ```
/// let span = apm_runtime::Span::start("work");
/// assert!(span.id().is_none()); // no current transaction: a no-op span
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(pub(crate) [u8; 8]);

impl TraceId {
    /// A new random trace id (never all zeros, which W3C reserves for "invalid").
    ///
    /// ```
    /// assert_ne!(apm_runtime::TraceId::random(), apm_runtime::TraceId::random());
    /// ```
    pub fn random() -> TraceId {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&next_nonzero().to_le_bytes());
        b[8..].copy_from_slice(&next_u64().to_le_bytes());
        TraceId(b)
    }

    /// The raw bytes.
    ///
    /// ```
    /// assert_eq!(apm_runtime::TraceId::random().to_bytes().len(), 16);
    /// ```
    pub fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// Builds an id from raw bytes; `None` for the invalid all-zero id.
    ///
    /// ```
    /// assert!(apm_runtime::TraceId::from_bytes([0; 16]).is_none());
    /// ```
    pub fn from_bytes(bytes: [u8; 16]) -> Option<TraceId> {
        (bytes != [0; 16]).then_some(TraceId(bytes))
    }
}

impl SpanId {
    /// A new random span id (never all zeros).
    ///
    /// ```
    /// assert_ne!(apm_runtime::SpanId::random(), apm_runtime::SpanId::random());
    /// ```
    #[inline]
    pub fn random() -> SpanId {
        SpanId(next_nonzero().to_le_bytes())
    }

    /// The raw bytes.
    ///
    /// ```
    /// assert_eq!(apm_runtime::SpanId::random().to_bytes().len(), 8);
    /// ```
    pub fn to_bytes(self) -> [u8; 8] {
        self.0
    }

    /// Builds an id from raw bytes; `None` for the invalid all-zero id.
    ///
    /// ```
    /// assert!(apm_runtime::SpanId::from_bytes([0; 8]).is_none());
    /// ```
    pub fn from_bytes(bytes: [u8; 8]) -> Option<SpanId> {
        (bytes != [0; 8]).then_some(SpanId(bytes))
    }
}

/// The two lowercase hex digits of every byte value: one look-up per byte.
pub(crate) static HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    t
};

/// Writes `bytes` as lowercase hex digits into the start of `out` (at least twice as long).
#[inline]
pub(crate) fn hex_digits(bytes: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&HEX_PAIRS[*b as usize]);
    }
}

/// Writes `bytes` as lowercase hex into `out` (which must be twice as long) without allocating.
pub(crate) fn hex_into<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    hex_digits(bytes, out);
    // Only ASCII hex digits were written.
    std::str::from_utf8(&out[..bytes.len() * 2]).expect("hex is ASCII")
}

macro_rules! hex_id_impls {
    ($ty:ident, $len:expr) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; $len * 2];
                f.write_str(hex_into(&self.0, &mut buf))
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self)
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut buf = [0u8; $len * 2];
                s.serialize_str(hex_into(&self.0, &mut buf))
            }
        }
    };
}
hex_id_impls!(TraceId, 16);
hex_id_impls!(SpanId, 8);

thread_local! {
    // wyrand state, seeded per thread (on first use: 0 means not yet) from std's randomly keyed
    // SipHash so that two threads (or two processes) never share a sequence. Not cryptographic:
    // ids only need to be unique. Constant-initialized, so reading it costs no lazy-init check.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

#[cold]
fn seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0),
    );
    h.finish()
}

/// wyrand: one multiply per number, passes BigCrush; plenty for ids.
#[inline]
pub(crate) fn next_u64() -> u64 {
    RNG.with(|s| {
        let mut state = s.get();
        if state == 0 {
            state = seed() | 1;
        }
        let x = state.wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = (x as u128).wrapping_mul((x ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) ^ t) as u64
    })
}

#[inline]
fn next_nonzero() -> u64 {
    loop {
        let v = next_u64();
        if v != 0 {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_render_as_lowercase_hex_of_the_right_length() {
        let t = TraceId::random().to_string();
        let s = SpanId::random().to_string();
        assert_eq!(t.len(), 32);
        assert_eq!(s.len(), 16);
        assert!(t.chars().chain(s.chars()).all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(SpanId([0, 1, 0xab, 0xff, 2, 3, 4, 5]).to_string(), "0001abff02030405");
    }

    #[test]
    fn ids_differ_across_threads() {
        let here = SpanId::random();
        let there = std::thread::spawn(SpanId::random).join().unwrap();
        assert_ne!(here, there);
    }
}

/// A hasher for maps keyed by ids on the reporter thread (the breakdown, span compression):
/// ids are random already, so folding their bytes (Fx-style) spreads them as well as SipHash,
/// at a fraction of its cost per lookup, with several lookups per span delivered.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.write(&n.to_le_bytes());
    }
}

/// A map keyed by span (or transaction) ids, with [`IdHasher`].
pub(crate) type IdMap<V> = std::collections::HashMap<SpanId, V, std::hash::BuildHasherDefault<IdHasher>>;
