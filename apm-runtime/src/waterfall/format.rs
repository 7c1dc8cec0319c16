//! What both renderers share: durations, ticks on the time axis, bar positions, and text
//! cleaned and fitted to a column width (in terminal cells, wide characters counted twice).

use super::*;

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn type_label(r: &Row) -> String {
    match (&r.kind, &r.subtype) {
        (RowKind::Error, _) => "error".to_string(),
        (_, Some(s)) if !s.is_empty() => format!("{}/{}", r.span_type, s),
        _ => r.span_type.clone(),
    }
}

/// Human duration with ~3 significant digits: enough to compare rows at a
/// glance without the noise of microseconds on a 2 s request.
pub(super) fn fmt_dur_us(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if us == 0 {
        "0 ms".to_string()
    } else if us < 1000 {
        format!("{us} µs")
    } else if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 100_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{:.0} s", ms / 1000.0)
    }
}

// ---------------------------------------------------------------- time axis

/// Tick step from the 1/2/5 × 10^n series: round numbers are what a reader
/// can interpolate between.
pub(super) fn nice_step(total_ms: f64, max_ticks: usize) -> f64 {
    let raw = total_ms / max_ticks.max(1) as f64;
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let base = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * base >= raw * (1.0 - 1e-9) {
            return m * base;
        }
    }
    10.0 * base
}

pub(super) fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil().max(0.0) as usize
    }
}

pub(super) fn fmt_tick(t_ms: f64, step_ms: f64) -> String {
    if step_ms >= 1000.0 {
        format!("{:.*} s", decimals_for(step_ms / 1000.0), t_ms / 1000.0)
    } else {
        format!("{:.*} ms", decimals_for(step_ms), t_ms)
    }
}

/// Tick times (ms) from 0 up to `total_ms` inclusive.
pub(super) fn ticks(total_ms: f64, step: f64) -> Vec<f64> {
    if total_ms <= 0.0 {
        return vec![0.0];
    }
    let count = (total_ms / step + 1e-9).floor() as usize;
    (0..=count.min(1000)).map(|k| k as f64 * step).collect()
}

/// Cell range `[start, end)` of a bar in a track of `w` cells. Both ends are
/// rounded to the nearest cell so back-to-back spans share a boundary instead
/// of overlapping, while genuinely parallel work overlaps; every bar keeps at
/// least one cell so sub-resolution spans stay visible.
pub(super) fn bar_cols(offset_us: u64, dur_us: u64, total_us: u64, w: usize) -> (usize, usize) {
    if w == 0 {
        return (0, 0);
    }
    if total_us == 0 {
        return (0, 1);
    }
    let scale = |t: u64| -> usize {
        let t = t.min(total_us) as u128;
        ((t * w as u128 * 2 + total_us as u128) / (total_us as u128 * 2)) as usize
    };
    let start = scale(offset_us).min(w - 1);
    let end = scale(offset_us.saturating_add(dur_us)).min(w).max(start + 1);
    (start, end)
}

pub(super) fn point_col(offset_us: u64, total_us: u64, w: usize) -> usize {
    bar_cols(offset_us, 0, total_us, w).0
}

// ---------------------------------------------------------------- text

/// Strips control and bidi-override characters: names come from untrusted
/// input and an embedded ESC or newline would corrupt the terminal layout
/// (or inject escape sequences).
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069) { ' ' } else { c })
        .collect()
}

/// Terminal column width of a char: a compact approximation of wcwidth that
/// covers combining marks and the CJK/emoji blocks, enough to keep columns
/// aligned for realistic names.
pub(super) fn char_width(c: char) -> usize {
    let cp = c as u32;
    if matches!(cp,
        0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
        | 0x064B..=0x065F | 0x0E31 | 0x0E34..=0x0E3A | 0x0E47..=0x0E4E
        | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200B..=0x200F | 0x20D0..=0x20FF
        | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0xE0100..=0xE01EF)
    {
        0
    } else if matches!(cp,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF | 0x20000..=0x2FFFD | 0x30000..=0x3FFFD)
    {
        2
    } else {
        1
    }
}

pub(super) fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Truncates to at most `w` columns, ending in `…` when shortened. Works on
/// chars, never bytes, so a multi-byte character is never split.
pub(super) fn fit(s: &str, w: usize) -> String {
    if str_width(s) <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let cw = char_width(c);
        if used + cw > w - 1 {
            break;
        }
        out.push(c);
        used += cw;
    }
    out.push('…');
    out
}
