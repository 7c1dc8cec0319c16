//! The intake line of a span without labels or exit context (most spans), written directly.
//!
//! The keys are constant, the ids are hex, and names rarely need escaping, so this skips serde's
//! per-byte escaping of every key and id, and formats numbers without going through floats. The
//! output is byte for byte what the `Serialize` impl of [`SpanEvent`] writes (a unit test in
//! `event` compares them).
//!
//! The line is written into capacity reserved once for its longest possible form (see
//! [`max_len`]), through a cursor that does not check capacity piece by piece: that check and the
//! `Vec` growth path were a third of the writer's instructions.

use crate::model::event::{truncate, Outcome, SpanEvent};
use crate::model::ids::{hex_digits, HEX_PAIRS};

/// The longest line `write` can produce for `s`: the fixed text, the widest numbers, and every
/// string escaped at six bytes per byte (`\u00XX`), which no escape exceeds.
#[inline]
fn max_len(s: &SpanEvent) -> usize {
    const FIXED: usize = 512; // keys, punctuation, hex ids (64), u64 timestamp (20), duration
                              // (20 + 4), sample rate (at most 24), sync/outcome words
    let strings = [Some(&s.name), Some(&s.kind), s.subtype.as_ref(), s.action.as_ref()];
    // Untruncated lengths: truncating only shortens.
    FIXED + strings.iter().flatten().map(|v| 6 * v.len() + 2).sum::<usize>()
}

/// Writes into spare capacity of a `Vec` that was reserved for everything written.
struct Cursor<'a> {
    out: &'a mut Vec<u8>,
    at: *mut u8,
    end: *mut u8,
}

impl<'a> Cursor<'a> {
    fn new(out: &'a mut Vec<u8>, need: usize) -> Cursor<'a> {
        out.reserve(need);
        let len = out.len();
        // SAFETY: `reserve` made room for `need` bytes past `len`.
        let at = unsafe { out.as_mut_ptr().add(len) };
        // SAFETY: as above.
        let end = unsafe { at.add(need) };
        Cursor { out, at, end }
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        // The reservation covers the longest line (`max_len`); this only guards that proof.
        debug_assert!(bytes.len() <= self.end as usize - self.at as usize);
        // SAFETY: the reserved room ends at `end`, and `max_len` bounds everything written.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.at, bytes.len());
            self.at = self.at.add(bytes.len());
        }
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        self.put(&[b]);
    }
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        let written = self.at as usize - self.out.as_ptr() as usize;
        assert!(written <= self.out.capacity(), "span line overran its reservation");
        // SAFETY: every byte up to `at` was written, and it is within capacity (checked above).
        unsafe { self.out.set_len(written) };
    }
}

/// Appends the span's line (without the trailing newline) to `out`.
pub(crate) fn write(s: &SpanEvent, out: &mut Vec<u8>) {
    let mut c = Cursor::new(out, max_len(s));
    c.put(b"{\"span\":{\"id\":\"");
    c.put(&hex8(s.id.0));
    c.put(b"\",\"trace_id\":\"");
    let mut trace_id = [0u8; 32];
    hex_digits(&s.trace_id.0, &mut trace_id);
    c.put(&trace_id);
    c.put(b"\",\"parent_id\":\"");
    c.put(&hex8(s.parent_id.0));
    c.put(b"\",\"transaction_id\":\"");
    c.put(&hex8(s.transaction_id.0));
    c.put(b"\",\"name\":");
    put_json_str(truncate(&s.name), &mut c);
    c.put(b",\"type\":");
    put_json_str(truncate(&s.kind), &mut c);
    if let Some(subtype) = &s.subtype {
        c.put(b",\"subtype\":");
        put_json_str(truncate(subtype), &mut c);
    }
    if let Some(action) = &s.action {
        c.put(b",\"action\":");
        put_json_str(truncate(action), &mut c);
    }
    let start_ns = s.start.epoch_ns();
    c.put(b",\"timestamp\":");
    c.put(itoa::Buffer::new().format(start_ns / 1_000).as_bytes());
    c.put(b",\"duration\":");
    put_ms(s.end.us_from(start_ns), &mut c);
    c.put(if s.sync { b",\"sync\":true" } else { b",\"sync\":false" });
    c.put(match s.outcome {
        Outcome::Success => b",\"outcome\":\"success\"",
        Outcome::Failure => b",\"outcome\":\"failure\"",
        Outcome::Unknown => b",\"outcome\":\"unknown\"",
    });
    if let Some(rate) = s.sample_rate {
        c.put(b",\"sample_rate\":");
        put_f64(rate, &mut c);
    }
    c.put(b"}}");
}

/// Lowercase hex of 8 id bytes, in their order: one table look-up and one two-byte store per
/// byte.
#[inline]
fn hex8(bytes: [u8; 8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    hex_digits(&bytes, &mut out);
    out
}

/// `us` microseconds written as milliseconds, exactly as serde_json writes the `f64` `us / 1000`
/// (shortest round trip: `12.0`, `0.5`, `3.141`): integer part, then the fraction's digits
/// without trailing zeros. Exact below 2^53 µs (285 years), where no shorter digit string rounds
/// to the same `f64` (and far below serde_json's switch to exponents at 1e16).
fn put_ms(us: u64, c: &mut Cursor<'_>) {
    if us >= 1 << 53 {
        return put_f64(us as f64 / 1_000.0, c);
    }
    let (ms, frac) = (us / 1_000, us % 1_000);
    c.put(itoa::Buffer::new().format(ms).as_bytes());
    let digits = [b'.', b'0' + (frac / 100) as u8, b'0' + (frac / 10 % 10) as u8, b'0' + (frac % 10) as u8];
    let len = match frac {
        0 => 2,
        f if f % 100 == 0 => 2,
        f if f % 10 == 0 => 3,
        _ => 4,
    };
    c.put(&digits[..len]);
}

/// A float through serde_json's own formatter (so it reads as on the serde path), via a stack
/// buffer: its longest output is 24 bytes.
#[inline]
fn put_f64(v: f64, c: &mut Cursor<'_>) {
    if v == 1.0 {
        return c.put(b"1.0");
    }
    put_f64_slow(v, c);
}

#[inline(never)]
fn put_f64_slow(v: f64, c: &mut Cursor<'_>) {
    let mut buf = [0u8; 32];
    let mut w = &mut buf[..];
    let _ = serde_json::to_writer(&mut w, &v);
    let n = 32 - w.len();
    c.put(&buf[..n]);
}

/// Bytes JSON strings must escape (`"`, `\` and control characters), as serde_json escapes them:
/// 0 for none, else the letter after the backslash (`u` for `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string, escaped as serde_json escapes it.
fn put_json_str(s: &str, c: &mut Cursor<'_>) {
    c.byte(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        c.put(&bytes[start..i]);
        match esc {
            b'u' => c.put(&[b'\\', b'u', b'0', b'0', HEX_PAIRS[b as usize][0], HEX_PAIRS[b as usize][1]]),
            letter => c.put(&[b'\\', letter]),
        }
        start = i + 1;
    }
    c.put(&bytes[start..]);
    c.byte(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::SpanId;

    #[test]
    fn ids_are_lowercase_hex_like_their_display() {
        let mut edge = vec![[0u8; 8], [0xff; 8], [0x09, 0x0a, 0x90, 0xa0, 0x99, 0xaa, 0x0f, 0xf0]];
        edge.extend((0..1000).map(|_| SpanId::random().0));
        for bytes in edge {
            assert_eq!(std::str::from_utf8(&hex8(bytes)).unwrap(), SpanId(bytes).to_string());
        }
        let t = crate::model::ids::TraceId::random();
        let mut out = [0u8; 32];
        hex_digits(&t.0, &mut out);
        assert_eq!(std::str::from_utf8(&out).unwrap(), t.to_string());
    }

    #[test]
    fn strings_escape_exactly_as_serde_json_does() {
        let every_byte: String = (0u8..=0x7f).map(char::from).collect();
        for s in [every_byte.as_str(), "plain", "", "ünï\u{1F600}code", "a\"b\\c\u{7f}"] {
            let mut out = Vec::new();
            put_json_str(s, &mut Cursor::new(&mut out, 6 * s.len() + 2));
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn the_longest_lines_fit_their_reservation() {
        // Names of 1024 control characters (escaped at six bytes each), the widest numbers.
        let worst = "\u{1}".repeat(1024);
        let mut s = crate::model::event::test_span(&worst);
        s.kind = worst.clone().into();
        s.subtype = Some(worst.clone().into());
        s.action = Some(worst.clone().into());
        s.sample_rate = Some(0.123_456_789_012_345_67);
        let mut out = Vec::new();
        write(&s, &mut out);
        assert!(out.len() <= max_len(&s));
        assert!(out.len() > 4 * 6 * 1024);
    }
}
