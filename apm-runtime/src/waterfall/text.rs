//! The terminal rendering: tree-indented names, types, threads, durations and, from 60
//! columns on, bars on a time axis shared by the whole trace.

use super::*;

/// A line under construction that tracks its visible width separately from
/// its byte content, so ANSI codes never disturb column alignment.
pub(super) struct Line {
    buf: String,
    width: usize,
    color: bool,
}

impl Line {
    pub(super) fn new(color: bool) -> Line {
        Line { buf: String::new(), width: 0, color }
    }

    pub(super) fn push(&mut self, text: &str, style: &str) {
        if text.is_empty() {
            return;
        }
        // Whitespace needs no styling, and leaving it bare lets `finish` trim it.
        if self.color && !style.is_empty() && !text.trim().is_empty() {
            self.buf.push_str(style);
            self.buf.push_str(text);
            self.buf.push_str(RESET);
        } else {
            self.buf.push_str(text);
        }
        self.width += str_width(text);
    }

    pub(super) fn pad_to(&mut self, col: usize) {
        while self.width < col {
            self.buf.push(' ');
            self.width += 1;
        }
    }

    pub(super) fn finish(self, out: &mut String) {
        out.push_str(self.buf.trim_end_matches(' '));
        out.push('\n');
    }
}

pub(super) fn ansi_color(idx: usize) -> String {
    format!("\x1b[38;5;{}m", ANSI_PALETTE[idx % ANSI_PALETTE.len()])
}

pub(super) struct TextLayout {
    name_w: usize,
    /// 0 hides the column.
    type_w: usize,
    /// 0 hides the column.
    thread_w: usize,
    /// 0 means the bar-less fallback layout.
    pub(super) bar_w: usize,
}

impl TextLayout {
    pub(super) fn type_col(&self) -> usize {
        self.name_w + GAP
    }
    pub(super) fn thread_col(&self) -> usize {
        self.type_col() + if self.type_w > 0 { self.type_w + GAP } else { 0 }
    }
    pub(super) fn dur_col(&self) -> usize {
        self.thread_col() + if self.thread_w > 0 { self.thread_w + GAP } else { 0 }
    }
    pub(super) fn bar_col(&self) -> usize {
        self.dur_col() + DUR_W + GAP
    }
}

pub(super) fn text_layout(t: &Trace, width: usize) -> TextLayout {
    let name_max = t
        .nodes
        .iter()
        .map(|n| 3 * n.depth + str_width(&name_text(n)) + suffix_text(n).chars().count())
        .max()
        .unwrap_or(0);
    let type_max = t.nodes.iter().map(|n| str_width(&clean(&type_label(&n.row)))).max().unwrap_or(0);
    let thread_max = t.nodes.iter().map(|n| str_width(&clean(&n.row.thread))).max().unwrap_or(0);
    if width >= MIN_BAR_LAYOUT_WIDTH {
        // Progressively give up type/thread room before giving up the bars.
        for (type_cap, thread_cap) in [(16, 18), (12, 12), (8, 0)] {
            let type_w = type_max.max(4).min(type_cap);
            let thread_w = if thread_cap == 0 { 0 } else { thread_max.max(6).min(thread_cap) };
            let fixed = type_w + GAP + DUR_W + GAP + if thread_w > 0 { thread_w + GAP } else { 0 };
            let Some(rest) = width.checked_sub(fixed + GAP) else {
                continue;
            };
            // Wider type/thread columns are only worth it while name and bars
            // keep the majority of the line; the last resort just needs minima.
            let need = if thread_cap == 0 { NAME_MIN + BAR_MIN } else { (width * 55 / 100).max(NAME_MIN + BAR_MIN) };
            if rest < need {
                continue;
            }
            // Names get at most ~half of the free room; the bars are the point.
            let name_w = name_max.max(NAME_MIN).min((rest / 2).max(NAME_MIN)).min(rest - BAR_MIN);
            return TextLayout { name_w, type_w, thread_w, bar_w: rest - name_w };
        }
    }
    let type_w = if width >= 40 { type_max.clamp(4, 10) } else { 0 };
    let name_w = width - DUR_W - GAP - if type_w > 0 { type_w + GAP } else { 0 };
    TextLayout { name_w, type_w, thread_w: 0, bar_w: 0 }
}

pub(super) fn name_text(n: &Node) -> String {
    let name = clean(&n.row.name);
    if n.row.kind == RowKind::Error {
        format!("◆ {name}")
    } else {
        name
    }
}

pub(super) fn suffix_text(n: &Node) -> String {
    let mut s = String::new();
    if n.row.failed && n.row.kind != RowKind::Error {
        s.push_str(" ✗");
    }
    if n.orphan {
        s.push_str(" (orphan)");
    }
    s
}

/// Tree connector prefix. Deep trees keep only the innermost levels behind a
/// `…` so that the name itself always gets at least half of its column.
pub(super) fn tree_prefix(n: &Node, max_w: usize) -> String {
    if n.depth == 0 {
        return String::new();
    }
    let mut guides: &[bool] = &n.guides;
    let mut s = String::new();
    if 3 * n.depth > max_w {
        let keep = max_w.saturating_sub(4) / 3;
        guides = &guides[guides.len().saturating_sub(keep)..];
        s.push('…');
    }
    for &g in guides {
        s.push_str(if g { "│  " } else { "   " });
    }
    s.push_str(if n.last { "└─ " } else { "├─ " });
    s
}

pub(super) fn render_trace_text(t: &Trace, width: usize, color: bool, out: &mut String) {
    let layout = text_layout(t, width);

    let mut head = Line::new(color);
    let title = format!("Trace {}", clean(&t.trace_id));
    let rest = format!("  {}  ·  {}  ·  {}", clean(t.root_name()), fmt_dur_us(t.total_us), t.counts());
    let title = fit(&title, width);
    head.push(&title, BOLD);
    head.push(&fit(&rest, width - str_width(&title)), "");
    head.finish(out);

    // Legend: which colour means what; without colour only the services list
    // is informative, so the type legend is dropped.
    let mut legend = Line::new(color);
    let mut items: Vec<(String, Option<usize>)> = Vec::new();
    if t.color_by_service && color {
        items.push(("services:".into(), None));
        for (i, k) in t.color_keys.iter().enumerate() {
            items.push((clean(k), Some(i)));
        }
    } else {
        let label = if t.services.len() > 1 { "services" } else { "service" };
        items.push((format!("{label}: {}", clean(&t.services.join(", "))), None));
        if color && !t.color_keys.is_empty() {
            items.push(("  types:".into(), None));
            for (i, k) in t.color_keys.iter().enumerate() {
                items.push((clean(k), Some(i)));
            }
        }
    }
    for (text, c) in items {
        let room = width.saturating_sub(legend.width);
        let need = str_width(&text) + if c.is_some() && color { 3 } else { 1 };
        if room < need {
            break;
        }
        legend.push(" ", "");
        if let (Some(c), true) = (c, color) {
            legend.push("■", &ansi_color(c));
            legend.push(" ", "");
        }
        legend.push(&text, GREY);
    }
    legend.finish(out);

    // Column headings, with the tick labels sharing the line over the bars.
    let tick_set = if layout.bar_w > 0 { text_ticks(t.total_us, layout.bar_w) } else { Vec::new() };
    let mut hdr = Line::new(color);
    hdr.push(&fit("NAME", layout.name_w), DIM);
    if layout.type_w > 0 {
        hdr.pad_to(layout.type_col());
        hdr.push("TYPE", DIM);
    }
    if layout.thread_w > 0 {
        hdr.pad_to(layout.thread_col());
        hdr.push("THREAD", DIM);
    }
    hdr.pad_to(layout.dur_col());
    hdr.push(" DURATION", DIM);
    if layout.bar_w > 0 {
        let base = layout.bar_col();
        for (col, label) in &tick_set {
            hdr.pad_to(base + col);
            hdr.push(label, GREY);
        }
    }
    hdr.finish(out);

    // Tick positions become faint gridlines in every row's track, so offsets
    // can be read off rows far below the ruler.
    let mut grid = vec![false; layout.bar_w];
    for c in text_tick_cols(t.total_us, layout.bar_w) {
        if c > 0 && c < grid.len() {
            grid[c] = true;
        }
    }
    if layout.bar_w > 0 {
        let mut axis = Line::new(color);
        axis.pad_to(layout.bar_col());
        let s: String = (0..layout.bar_w).map(|c| if c == 0 || grid[c] { '┬' } else { '─' }).collect();
        axis.push(&s, GREY);
        axis.finish(out);
    }

    for n in &t.nodes {
        render_row_text(t, n, &layout, &grid, color, out);
    }
}

/// Columns of the tick marks for a trace drawn on `w` cells.
pub(super) fn text_tick_cols(total_us: u64, w: usize) -> Vec<usize> {
    if w == 0 {
        return Vec::new();
    }
    let (step, _) = text_step(total_us, w);
    let total_ms = total_us as f64 / 1000.0;
    ticks(total_ms, step).into_iter().map(|t| point_col((t * 1000.0).round() as u64, total_us, w)).collect()
}

/// Picks the densest 1/2/5 step that leaves ~8 columns per tick and whose
/// labels still fit with two spaces between them: denser looks noisy in a
/// terminal, sparser wastes the ruler.
pub(super) fn text_step(total_us: u64, w: usize) -> (f64, Vec<(usize, String)>) {
    let total_ms = total_us as f64 / 1000.0;
    let mut step = nice_step(total_ms * 8.0 / w.max(1) as f64, 1);
    loop {
        let mut labels: Vec<(usize, String)> = Vec::new();
        let mut ok = true;
        let mut prev_end = 0usize;
        for (k, tm) in ticks(total_ms, step).into_iter().enumerate() {
            let label = fmt_tick(tm, step);
            let lw = str_width(&label);
            let col = point_col((tm * 1000.0).round() as u64, total_us, w);
            if col + lw > w {
                // The last label may not fit at its tick; dropping it is
                // fine since the header states the total.
                if k == 0 {
                    ok = false;
                }
                break;
            }
            if k > 0 && col < prev_end + 2 {
                ok = false;
                break;
            }
            prev_end = col + lw;
            labels.push((col, label));
        }
        // Past the whole axis only the "0" label is left: accept whatever fits.
        if ok || step > total_ms {
            if !ok {
                labels.truncate(1);
            }
            return (step, labels);
        }
        step = next_step(step);
    }
}

/// The next value of the 1, 2, 5, 10, 20, … series.
pub(super) fn next_step(step: f64) -> f64 {
    let base = 10f64.powf(step.log10().floor());
    let m = (step / base).round();
    if m < 2.0 {
        2.0 * base
    } else if m < 5.0 {
        5.0 * base
    } else {
        10.0 * base
    }
}

pub(super) fn text_ticks(total_us: u64, w: usize) -> Vec<(usize, String)> {
    text_step(total_us, w).1
}

pub(super) fn render_row_text(t: &Trace, n: &Node, layout: &TextLayout, grid: &[bool], color: bool, out: &mut String) {
    let r = &n.row;
    let is_err = r.kind == RowKind::Error;
    let bad = r.failed || is_err;
    let hue = if bad { RED.to_string() } else { ansi_color(n.color) };

    let mut line = Line::new(color);
    let prefix = tree_prefix(n, layout.name_w / 2);
    let avail = layout.name_w.saturating_sub(str_width(&prefix));
    let name = name_text(n);
    let suffix = suffix_text(n);
    let (name, suffix) = if str_width(&name) + str_width(&suffix) <= avail {
        (name, suffix)
    } else if str_width(&suffix) + 4 <= avail {
        (fit(&name, avail - str_width(&suffix)), suffix)
    } else {
        (fit(&format!("{name}{suffix}"), avail), String::new())
    };
    line.push(&prefix, GREY);
    let name_style = if bad {
        RED
    } else if r.kind == RowKind::Transaction {
        BOLD
    } else {
        ""
    };
    line.push(&name, name_style);
    if r.failed && suffix.starts_with(" ✗") {
        line.push(" ✗", RED);
        line.push(&suffix[" ✗".len()..], DIM);
    } else {
        line.push(&suffix, DIM);
    }

    if layout.type_w > 0 {
        line.pad_to(layout.type_col());
        line.push(&fit(&clean(&type_label(r)), layout.type_w), GREY);
    }
    if layout.thread_w > 0 {
        line.pad_to(layout.thread_col());
        line.push(&fit(&clean(&r.thread), layout.thread_w), GREY);
    }
    line.pad_to(layout.dur_col());
    let dur = if is_err { "—".to_string() } else { fmt_dur_us(n.dur_us) };
    let dur = fit(&dur, DUR_W);
    line.pad_to(layout.dur_col() + DUR_W - str_width(&dur));
    line.push(&dur, if bad { RED } else { "" });

    if layout.bar_w > 0 {
        line.pad_to(layout.bar_col());
        let w = layout.bar_w;
        let (c0, c1, glyph) = if is_err {
            let c = point_col(n.offset_us, t.total_us, w);
            (c, c + 1, '◆')
        } else {
            let (a, b) = bar_cols(n.offset_us, n.dur_us, t.total_us, w);
            (a, b, '█')
        };
        let track = |range: std::ops::Range<usize>| -> String {
            range.map(|c| if grid.get(c).copied().unwrap_or(false) { '┊' } else { ' ' }).collect()
        };
        line.push(&track(0..c0), DIM);
        let bar: String = std::iter::repeat_n(glyph, c1 - c0).collect();
        line.push(&bar, &hue);
        line.push(&track(c1..w), DIM);
    }
    line.finish(out);
    // An error's place in the code, under its name, as Kibana's error sample lists it.
    // The tree's guides go on past the row: `├─` continues as `│ `, `└─` ends.
    let guides: String = prefix.replace("├─", "│ ").replace("└─", "  ");
    let indent = format!("{guides}  ");
    for frame in &r.frames {
        let mut line = Line::new(color);
        line.push(&indent, GREY);
        line.push(&fit(&format!("at {}", clean(frame)), layout.name_w.saturating_sub(str_width(&indent))), GREY);
        line.finish(out);
    }
}

// ---------------------------------------------------------------- HTML
