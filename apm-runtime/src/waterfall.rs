//! Trace waterfall rendering: the "trace view" of a distributed trace, as
//! plain text for a terminal and as one self-contained HTML document.
//!
//! Rendering is split in two phases on purpose: [`Waterfall::new`] resolves
//! the tree once (grouping, parent lookup, ordering, orphan and cycle
//! handling, colour assignment) and both renderers only walk the resulting
//! flat, display-ordered node list. That keeps the two outputs consistent
//! with each other (same order, same colours, same orphan markers).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::model::event::Event;

/// What a row of the waterfall represents.
#[derive(Clone, Debug, PartialEq)]
pub enum RowKind {
    /// A transaction: the entry point of a service into the trace.
    Transaction,
    /// A span: a unit of work inside a transaction.
    Span,
    /// An error captured during a transaction or span; drawn as a point marker.
    Error,
}

/// One event of a trace, as recorded by the agent.
#[derive(Clone, Debug)]
pub struct Row {
    /// What the row represents.
    pub kind: RowKind,
    /// Trace id (32 hex chars); rows are grouped into traces by it.
    pub trace_id: String,
    /// Id of this transaction/span/error (16 hex chars).
    pub id: String,
    /// Id of the parent span or transaction; `None` for a root transaction.
    pub parent_id: Option<String>,
    /// Display name, e.g. `GET /dashboard`.
    pub name: String,
    /// Type, e.g. `request`, `external`, `app`.
    pub span_type: String,
    /// Optional subtype, e.g. `http`.
    pub subtype: Option<String>,
    /// Start time in epoch microseconds.
    pub start_us: u64,
    /// Duration in milliseconds (0 for errors).
    pub duration_ms: f64,
    /// Name of the thread the work ran on.
    pub thread: String,
    /// Whether the outcome was a failure.
    pub failed: bool,
    /// Name of the service that recorded the row.
    pub service: String,
    /// Spans only: `Some(false)` when the span ran on another thread than its parent.
    pub sync: Option<bool>,
}

/// A resolved set of traces, ready to be rendered.
#[derive(Clone, Debug)]
pub struct Waterfall {
    traces: Vec<Trace>,
}

#[derive(Clone, Debug)]
struct Trace {
    trace_id: String,
    start_us: u64,
    total_us: u64,
    /// Display order (depth-first, siblings by start time).
    nodes: Vec<Node>,
    services: Vec<String>,
    /// Legend entries in colour-index order.
    color_keys: Vec<String>,
    /// Multi-service traces are coloured by service (that is the interesting
    /// boundary there), single-service traces by type — the Elastic convention.
    color_by_service: bool,
    transactions: usize,
    spans: usize,
    errors: usize,
}

#[derive(Clone, Debug)]
struct Node {
    row: Row,
    depth: usize,
    /// For each ancestor level between the root and the parent: whether a
    /// vertical guide continues there (the ancestor has later siblings).
    guides: Vec<bool>,
    /// Last child of its parent (draws `└─` instead of `├─`).
    last: bool,
    orphan: bool,
    offset_us: u64,
    dur_us: u64,
    color: usize,
}

/// Narrower terminals than this get no bars: a bar of a handful of cells
/// conveys nothing and would squeeze the names into unreadability.
const MIN_BAR_LAYOUT_WIDTH: usize = 60;
/// Below this even the bar-less layout cannot show a name, so we render as
/// if the terminal were this wide instead of producing garbage.
const MIN_TEXT_WIDTH: usize = 16;
const GAP: usize = 2;
const DUR_W: usize = 9;
const NAME_MIN: usize = 16;
const BAR_MIN: usize = 20;
/// HTML indentation stops growing here so pathological depth (a 1000-deep
/// chain) cannot push the name out of its column.
const HTML_MAX_INDENT_LEVELS: usize = 16;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const GREY: &str = "\x1b[38;5;245m";
const RED: &str = "\x1b[38;5;203m";
/// 256-colour approximations of [`HTML_PALETTE`], same order, so a service
/// or type gets the same hue in both outputs. Red is kept out: it means failure.
const ANSI_PALETTE: [u8; 8] = [75, 78, 215, 141, 221, 80, 175, 180];
const HTML_PALETTE: [&str; 8] =
    ["#6092c0", "#54b399", "#da8b45", "#9170b8", "#d6bf57", "#4fb3bf", "#ca8eae", "#b9a888"];

impl Row {
    /// The waterfall row of one event; `service` names the reporting service.
    ///
    /// ```
    /// # use apm_runtime::{Agent, report::MemorySink, waterfall::Row};
    /// # let sink = MemorySink::new();
    /// # let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    /// # agent.transaction("t").start().end();
    /// # agent.flush(std::time::Duration::from_secs(5));
    /// let row = Row::from_event(&sink.events()[0], "checkout");
    /// assert_eq!(row.name, "t");
    /// ```
    pub fn from_event(event: &Event, service: &str) -> Row {
        use crate::model::event::Outcome;
        use crate::model::thread::thread_name;
        match event {
            Event::Transaction(t) => Row {
                kind: RowKind::Transaction,
                trace_id: t.trace_id.to_string(),
                id: t.id.to_string(),
                parent_id: t.parent_id.map(|p| p.to_string()),
                name: t.name.to_string(),
                span_type: t.kind.to_string(),
                subtype: None,
                start_us: t.timestamp,
                duration_ms: t.duration,
                thread: thread_name(t.thread),
                failed: t.outcome == Outcome::Failure,
                service: service.to_string(),
                sync: None,
            },
            Event::Span(s) => Row {
                kind: RowKind::Span,
                trace_id: s.trace_id.to_string(),
                id: s.id.to_string(),
                parent_id: Some(s.parent_id.to_string()),
                name: s.name.to_string(),
                span_type: s.kind.to_string(),
                subtype: s.subtype.as_ref().map(|x| x.to_string()),
                start_us: s.start.epoch_us(),
                duration_ms: s.start.ms_until(s.end),
                thread: thread_name(s.thread),
                failed: s.outcome == Outcome::Failure,
                service: service.to_string(),
                sync: Some(s.sync),
            },
            Event::Error(e) => Row {
                kind: RowKind::Error,
                trace_id: e.trace_id.to_string(),
                id: e.id.to_string(),
                parent_id: Some(e.parent_id.to_string()),
                name: format!("{}: {}", e.exception_type, e.message),
                span_type: "error".to_string(),
                subtype: None,
                start_us: e.timestamp,
                duration_ms: 0.0,
                thread: thread_name(e.thread),
                failed: true,
                service: service.to_string(),
                sync: None,
            },
        }
    }
}

impl Waterfall {
    /// Builds the tree: rows grouped by `trace_id` (several traces render one
    /// after another, oldest first), each child under its parent, siblings
    /// ordered by start time. Rows whose parent is missing (or that form a
    /// parent cycle) are placed at the root of their trace and marked as orphans.
    pub fn new(rows: Vec<Row>) -> Waterfall {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<(String, Vec<Row>)> = Vec::new();
        for row in rows {
            let slot = *index.entry(row.trace_id.clone()).or_insert_with(|| {
                groups.push((row.trace_id.clone(), Vec::new()));
                groups.len() - 1
            });
            groups[slot].1.push(row);
        }
        let mut traces: Vec<Trace> = groups.into_iter().map(|(id, rows)| Trace::build(id, rows)).collect();
        traces.sort_by(|a, b| a.start_us.cmp(&b.start_us).then_with(|| a.trace_id.cmp(&b.trace_id)));
        Waterfall { traces }
    }

    /// Plain-text waterfall for a terminal of `width` columns (at least 16 are
    /// assumed). Each row shows the tree-indented name, type, thread, duration
    /// and — from 60 columns on — a bar on a time axis shared by the whole
    /// trace, so work that ran in parallel visibly overlaps. `color` adds ANSI
    /// colours (per service or per type, red for failures); without it the
    /// output is plain text that is safe to paste into an issue.
    pub fn render_text(&self, width: usize, color: bool) -> String {
        let width = width.max(MIN_TEXT_WIDTH);
        let mut out = String::new();
        if self.traces.is_empty() {
            out.push_str("(no traces)\n");
            return out;
        }
        for (i, trace) in self.traces.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            render_trace_text(trace, width, color, &mut out);
        }
        out
    }

    /// One complete HTML5 document with no external resources: inline CSS and
    /// a small inline script for hover tooltips. For each trace it shows a
    /// header (root name, duration, counts, legend), a ruler with tick labels
    /// and one `.wf-row` element per row carrying `data-id`, `data-parent-id`
    /// and `data-kind`, with bars positioned by percentage on the shared time
    /// axis. All user-supplied strings, including `title`, are HTML-escaped.
    pub fn render_html(&self, title: &str) -> String {
        let mut out = String::with_capacity(4096 + self.row_count() * 900);
        let title = esc(&clean(title));
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        );
        let total_rows = self.row_count();
        let _ = write!(
            out,
            "<header class=\"wf-page\"><h1>{title}</h1><p>{} · {}</p></header>\n<main>\n",
            plural(self.traces.len(), "trace", "traces"),
            plural(total_rows, "event", "events"),
        );
        if self.traces.is_empty() {
            out.push_str("<div class=\"wf-empty\">No traces to display.</div>\n");
        }
        for trace in &self.traces {
            render_trace_html(trace, &mut out);
        }
        let _ = write!(out, "</main>\n<script>{JS}</script>\n</body>\n</html>\n");
        out
    }

    fn row_count(&self) -> usize {
        self.traces.iter().map(|t| t.nodes.len()).sum()
    }
}

impl Trace {
    fn build(trace_id: String, rows: Vec<Row>) -> Trace {
        let n = rows.len();
        // Errors are instants; a bogus duration on one must not stretch the axis.
        let durs: Vec<u64> =
            rows.iter().map(|r| if r.kind == RowKind::Error { 0 } else { ms_to_us(r.duration_ms) }).collect();
        let start_us = rows.iter().map(|r| r.start_us).min().unwrap_or(0);
        let end_us = rows.iter().zip(&durs).map(|(r, d)| r.start_us.saturating_add(*d)).max().unwrap_or(start_us);

        // Errors cannot have children; the first row wins on duplicate ids so
        // a duplicated id never makes a subtree vanish.
        let mut by_id: HashMap<&str, usize> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            if r.kind != RowKind::Error {
                by_id.entry(r.id.as_str()).or_insert(i);
            }
        }
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        let mut orphan = vec![false; n];
        for (i, r) in rows.iter().enumerate() {
            match r.parent_id.as_deref() {
                None => roots.push(i),
                Some(p) => match by_id.get(p) {
                    Some(&j) if j != i => children[j].push(i),
                    _ => {
                        orphan[i] = true;
                        roots.push(i);
                    }
                },
            }
        }
        let key = |i: &usize| (rows[*i].start_us, kind_rank(&rows[*i].kind), *i);
        for c in &mut children {
            c.sort_by_key(key);
        }
        // Real roots first: the main tree is what the reader came for, orphans
        // are a data-quality footnote.
        roots.sort_by_key(|i| (orphan[*i], key(i)));

        let mut visited = vec![false; n];
        let mut order: Vec<(usize, usize, Vec<bool>, bool)> = Vec::with_capacity(n);
        walk(&roots, &children, &mut visited, &mut order);
        // Anything unvisited sits on a parent cycle (A→B→A); break it at the
        // earliest row so every row still shows up exactly once.
        let mut rest: Vec<usize> = (0..n).filter(|i| !visited[*i]).collect();
        rest.sort_by_key(key);
        for i in rest {
            if !visited[i] {
                orphan[i] = true;
                walk(&[i], &children, &mut visited, &mut order);
            }
        }

        let mut services: Vec<String> = Vec::new();
        for r in &rows {
            if !services.contains(&r.service) {
                services.push(r.service.clone());
            }
        }
        let color_by_service = services.len() > 1;
        let mut color_keys: Vec<String> = Vec::new();
        let (mut transactions, mut spans, mut errors) = (0, 0, 0);
        let mut nodes = Vec::with_capacity(n);
        for (i, depth, guides, last) in order {
            let r = &rows[i];
            match r.kind {
                RowKind::Transaction => transactions += 1,
                RowKind::Span => spans += 1,
                RowKind::Error => errors += 1,
            }
            let color = if r.kind == RowKind::Error {
                0
            } else {
                let k = if color_by_service { &r.service } else { &r.span_type };
                match color_keys.iter().position(|c| c == k) {
                    Some(p) => p,
                    None => {
                        color_keys.push(k.clone());
                        color_keys.len() - 1
                    }
                }
            };
            nodes.push(Node {
                row: r.clone(),
                depth,
                guides,
                last,
                orphan: orphan[i],
                offset_us: r.start_us - start_us,
                dur_us: durs[i],
                color,
            });
        }
        Trace {
            trace_id,
            start_us,
            total_us: end_us - start_us,
            nodes,
            services,
            color_keys,
            color_by_service,
            transactions,
            spans,
            errors,
        }
    }

    /// The name the trace is known by: its (first non-orphan) root.
    fn root_name(&self) -> &str {
        self.nodes
            .iter()
            .find(|n| n.depth == 0 && !n.orphan)
            .or(self.nodes.first())
            .map(|n| n.row.name.as_str())
            .unwrap_or("")
    }

    fn counts(&self) -> String {
        let mut parts =
            vec![plural(self.transactions, "transaction", "transactions"), plural(self.spans, "span", "spans")];
        if self.errors > 0 {
            parts.push(plural(self.errors, "error", "errors"));
        }
        parts.join(" · ")
    }
}

/// Iterative depth-first walk: a 1000-deep parent chain must not blow the stack.
fn walk(
    roots: &[usize],
    children: &[Vec<usize>],
    visited: &mut [bool],
    order: &mut Vec<(usize, usize, Vec<bool>, bool)>,
) {
    let mut stack: Vec<(usize, usize, Vec<bool>, bool)> =
        roots.iter().rev().map(|&r| (r, 0, Vec::new(), true)).collect();
    while let Some((i, depth, guides, last)) = stack.pop() {
        if visited[i] {
            continue;
        }
        visited[i] = true;
        let kids: Vec<usize> = children[i].iter().copied().filter(|c| !visited[*c]).collect();
        let child_guides = if depth == 0 {
            Vec::new()
        } else {
            let mut g = guides.clone();
            g.push(!last);
            g
        };
        for (k, &c) in kids.iter().enumerate().rev() {
            stack.push((c, depth + 1, child_guides.clone(), k + 1 == kids.len()));
        }
        order.push((i, depth, guides, last));
    }
}

fn kind_rank(k: &RowKind) -> u8 {
    match k {
        RowKind::Transaction => 0,
        RowKind::Span => 1,
        RowKind::Error => 2,
    }
}

fn ms_to_us(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        // `as` saturates, so absurd durations clamp instead of wrapping.
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn type_label(r: &Row) -> String {
    match (&r.kind, &r.subtype) {
        (RowKind::Error, _) => "error".to_string(),
        (_, Some(s)) if !s.is_empty() => format!("{}/{}", r.span_type, s),
        _ => r.span_type.clone(),
    }
}

/// Human duration with ~3 significant digits: enough to compare rows at a
/// glance without the noise of microseconds on a 2 s request.
fn fmt_dur_us(us: u64) -> String {
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
fn nice_step(total_ms: f64, max_ticks: usize) -> f64 {
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

fn decimals_for(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10() - 1e-9).ceil().max(0.0) as usize
    }
}

fn fmt_tick(t_ms: f64, step_ms: f64) -> String {
    if step_ms >= 1000.0 {
        format!("{:.*} s", decimals_for(step_ms / 1000.0), t_ms / 1000.0)
    } else {
        format!("{:.*} ms", decimals_for(step_ms), t_ms)
    }
}

/// Tick times (ms) from 0 up to `total_ms` inclusive.
fn ticks(total_ms: f64, step: f64) -> Vec<f64> {
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
fn bar_cols(offset_us: u64, dur_us: u64, total_us: u64, w: usize) -> (usize, usize) {
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

fn point_col(offset_us: u64, total_us: u64, w: usize) -> usize {
    bar_cols(offset_us, 0, total_us, w).0
}

// ---------------------------------------------------------------- text

/// Strips control and bidi-override characters: names come from untrusted
/// input and an embedded ESC or newline would corrupt the terminal layout
/// (or inject escape sequences).
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069) { ' ' } else { c })
        .collect()
}

/// Terminal column width of a char: a compact approximation of wcwidth that
/// covers combining marks and the CJK/emoji blocks, enough to keep columns
/// aligned for realistic names.
fn char_width(c: char) -> usize {
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

fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Truncates to at most `w` columns, ending in `…` when shortened. Works on
/// chars, never bytes, so a multi-byte character is never split.
fn fit(s: &str, w: usize) -> String {
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

/// A line under construction that tracks its visible width separately from
/// its byte content, so ANSI codes never disturb column alignment.
struct Line {
    buf: String,
    width: usize,
    color: bool,
}

impl Line {
    fn new(color: bool) -> Line {
        Line { buf: String::new(), width: 0, color }
    }

    fn push(&mut self, text: &str, style: &str) {
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

    fn pad_to(&mut self, col: usize) {
        while self.width < col {
            self.buf.push(' ');
            self.width += 1;
        }
    }

    fn finish(self, out: &mut String) {
        out.push_str(self.buf.trim_end_matches(' '));
        out.push('\n');
    }
}

fn ansi_color(idx: usize) -> String {
    format!("\x1b[38;5;{}m", ANSI_PALETTE[idx % ANSI_PALETTE.len()])
}

struct TextLayout {
    name_w: usize,
    /// 0 hides the column.
    type_w: usize,
    /// 0 hides the column.
    thread_w: usize,
    /// 0 means the bar-less fallback layout.
    bar_w: usize,
}

impl TextLayout {
    fn type_col(&self) -> usize {
        self.name_w + GAP
    }
    fn thread_col(&self) -> usize {
        self.type_col() + if self.type_w > 0 { self.type_w + GAP } else { 0 }
    }
    fn dur_col(&self) -> usize {
        self.thread_col() + if self.thread_w > 0 { self.thread_w + GAP } else { 0 }
    }
    fn bar_col(&self) -> usize {
        self.dur_col() + DUR_W + GAP
    }
}

fn text_layout(t: &Trace, width: usize) -> TextLayout {
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

fn name_text(n: &Node) -> String {
    let name = clean(&n.row.name);
    if n.row.kind == RowKind::Error {
        format!("◆ {name}")
    } else {
        name
    }
}

fn suffix_text(n: &Node) -> String {
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
fn tree_prefix(n: &Node, max_w: usize) -> String {
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

fn render_trace_text(t: &Trace, width: usize, color: bool, out: &mut String) {
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
fn text_tick_cols(total_us: u64, w: usize) -> Vec<usize> {
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
fn text_step(total_us: u64, w: usize) -> (f64, Vec<(usize, String)>) {
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
fn next_step(step: f64) -> f64 {
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

fn text_ticks(total_us: u64, w: usize) -> Vec<(usize, String)> {
    text_step(total_us, w).1
}

fn render_row_text(t: &Trace, n: &Node, layout: &TextLayout, grid: &[bool], color: bool, out: &mut String) {
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
}

// ---------------------------------------------------------------- HTML

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            _ => out.push(c),
        }
    }
    out
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part.min(total) as f64 / total as f64) * 100.0
    }
}

fn html_color(idx: usize) -> &'static str {
    HTML_PALETTE[idx % HTML_PALETTE.len()]
}

fn fmt_utc(us: u64) -> String {
    let secs = us / 1_000_000;
    let ms = (us / 1000) % 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm);
/// std has no calendar support and a dependency is not worth one timestamp.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

fn render_trace_html(t: &Trace, out: &mut String) {
    let total_ms = t.total_us as f64 / 1000.0;
    let _ = write!(
        out,
        "<section class=\"wf-trace\" data-trace-id=\"{}\">\n<div class=\"wf-trace-head\">\n\
         <div class=\"wf-title\"><span class=\"wf-root\">{}</span>\
         <span class=\"wf-pill\">{}</span>",
        esc(&clean(&t.trace_id)),
        esc(&clean(t.root_name())),
        fmt_dur_us(t.total_us),
    );
    if t.errors > 0 {
        let _ = write!(out, "<span class=\"wf-pill err\">{}</span>", plural(t.errors, "error", "errors"));
    }
    let failed = t.nodes.iter().filter(|n| n.row.failed && n.row.kind != RowKind::Error).count();
    if failed > 0 {
        let _ = write!(out, "<span class=\"wf-pill err\">{failed} failed</span>");
    }
    let _ = write!(
        out,
        "</div>\n<div class=\"wf-meta\"><span>Trace ID <code>{}</code></span><span>Started {}</span>\
         <span>{}</span><span>{}</span></div>\n<div class=\"wf-legend\"><span class=\"wf-legend-k\">{}</span>",
        esc(&clean(&t.trace_id)),
        fmt_utc(t.start_us),
        plural(t.nodes.len(), "event", "events"),
        t.counts(),
        if t.color_by_service { "Services" } else { "Types" },
    );
    for (i, k) in t.color_keys.iter().enumerate() {
        let _ = write!(out, "<span><i style=\"background:{}\"></i>{}</span>", html_color(i), esc(&clean(k)));
    }
    if !t.color_by_service {
        let _ = write!(
            out,
            "<span class=\"wf-legend-k\">Service</span><span>{}</span>",
            esc(&clean(&t.services.join(", ")))
        );
    }
    out.push_str("</div>\n</div>\n");

    // Ruler: ~8 ticks is dense enough to read off offsets at 1400 px without
    // labels colliding at typical widths.
    let step = nice_step(total_ms, 8);
    let tick_list = ticks(total_ms, step);
    out.push_str(
        "<div class=\"wf-grid\">\n<div class=\"wf-head\"><div>Name</div><div>Type</div>\
         <div>Thread</div><div class=\"wf-num\">Duration</div><div class=\"wf-axis\"><div class=\"wf-track\">",
    );
    for &tm in &tick_list {
        let p = if total_ms > 0.0 { tm / total_ms * 100.0 } else { 0.0 };
        // Anchor edge labels inwards so they never spill out of the column.
        let cls = if p < 4.0 {
            "wf-tick first"
        } else if p > 94.0 {
            "wf-tick last"
        } else {
            "wf-tick"
        };
        let _ = write!(out, "<span class=\"{cls}\" style=\"left:{p:.4}%\">{}</span>", fmt_tick(tm, step));
    }
    out.push_str("</div></div></div>\n<div class=\"wf-body\">\n<div class=\"wf-lines\"><div class=\"wf-track\">");
    for &tm in &tick_list {
        if tm > 0.0 && total_ms > 0.0 {
            let _ = write!(out, "<i style=\"left:{:.4}%\"></i>", tm / total_ms * 100.0);
        }
    }
    out.push_str("</div></div>\n");
    for n in &t.nodes {
        render_row_html(t, n, out);
    }
    out.push_str("</div>\n</div>\n</section>\n");
}

fn render_row_html(t: &Trace, n: &Node, out: &mut String) {
    let r = &n.row;
    let (kind, kind_cls) = match r.kind {
        RowKind::Transaction => ("transaction", "wf-txn"),
        RowKind::Span => ("span", "wf-span"),
        RowKind::Error => ("error", "wf-error"),
    };
    let is_err = r.kind == RowKind::Error;
    let color = if r.failed || is_err { "#e5484d" } else { html_color(n.color) };
    let async_span = r.kind == RowKind::Span && r.sync == Some(false);

    let mut tip = vec![
        format!("Name: {}", clean(&r.name)),
        format!("Kind: {kind}"),
        format!("Type: {}", clean(&type_label(r))),
        format!("Service: {}", clean(&r.service)),
        format!("Thread: {}{}", clean(&r.thread), if async_span { " (async)" } else { "" }),
        format!("Start: +{} · {}", fmt_dur_us(n.offset_us), fmt_utc(r.start_us)),
    ];
    if !is_err {
        tip.push(format!("Duration: {}", fmt_dur_us(n.dur_us)));
        tip.push(format!("Outcome: {}", if r.failed { "failure" } else { "success" }));
    }
    tip.push(format!("ID: {}", clean(&r.id)));
    tip.push(format!(
        "Parent: {}{}",
        clean(r.parent_id.as_deref().unwrap_or("—")),
        if n.orphan { " (not in trace)" } else { "" }
    ));
    if n.depth > HTML_MAX_INDENT_LEVELS {
        tip.push(format!("Depth: {}", n.depth));
    }

    let _ = write!(
        out,
        "<div class=\"wf-row {kind_cls}{}\" data-id=\"{}\" data-parent-id=\"{}\" data-kind=\"{kind}\" \
         data-tip=\"{}\" style=\"--c:{color}\">",
        if r.failed { " wf-failed" } else { "" },
        esc(&clean(&r.id)),
        esc(&clean(r.parent_id.as_deref().unwrap_or(""))),
        esc(&tip.join("\n")),
    );
    let indent = n.depth.min(HTML_MAX_INDENT_LEVELS) * 16;
    let _ = write!(
        out,
        "<div class=\"wf-name\"><span class=\"wf-indent\" style=\"width:{indent}px\"></span>\
         {}<span class=\"wf-icon\"></span><span class=\"wf-label\">{}</span>",
        if n.depth > HTML_MAX_INDENT_LEVELS {
            format!("<span class=\"wf-deep\">+{}</span>", n.depth - HTML_MAX_INDENT_LEVELS)
        } else {
            String::new()
        },
        esc(&clean(&r.name))
    );
    if r.failed && !is_err {
        out.push_str("<span class=\"wf-tag fail\">✗ failed</span>");
    }
    if n.orphan {
        out.push_str("<span class=\"wf-tag warn\">orphan</span>");
    }
    out.push_str("</div>");
    match &r.subtype {
        Some(s) if !s.is_empty() && !is_err => {
            let _ = write!(
                out,
                "<div class=\"wf-type\">{}<span class=\"wf-sub\">/{}</span></div>",
                esc(&clean(&r.span_type)),
                esc(&clean(s))
            );
        }
        _ => {
            let _ = write!(out, "<div class=\"wf-type\">{}</div>", esc(&clean(&type_label(r))));
        }
    }
    let _ = write!(
        out,
        "<div class=\"wf-thread\"><span class=\"wf-label\">{}</span>{}</div>",
        esc(&clean(&r.thread)),
        if async_span { "<span class=\"wf-tag\">async</span>" } else { "" }
    );
    let _ = write!(
        out,
        "<div class=\"wf-dur\">{}</div><div class=\"wf-tl\"><div class=\"wf-track\">",
        if is_err { "—".to_string() } else { fmt_dur_us(n.dur_us) }
    );
    let left = pct(n.offset_us, t.total_us);
    if is_err {
        let _ = write!(out, "<span class=\"wf-marker\" style=\"left:{left:.4}%\"></span>");
    } else {
        let width = if t.total_us == 0 { 0.0 } else { pct(n.dur_us, t.total_us).min(100.0 - left) };
        let _ = write!(out, "<span class=\"wf-bar\" style=\"left:{left:.4}%;width:{width:.4}%\"></span>");
        // Label beside the bar when there is room on the right, else on the
        // left; a bar spanning nearly the whole axis carries it inside.
        let end = left + width;
        let label = fmt_dur_us(n.dur_us);
        if end <= 82.0 {
            let _ = write!(out, "<span class=\"wf-bar-label\" style=\"left:{end:.4}%\">{label}</span>");
        } else if left >= 12.0 {
            let _ = write!(out, "<span class=\"wf-bar-label\" style=\"right:{:.4}%\">{label}</span>", 100.0 - left);
        } else {
            let _ = write!(out, "<span class=\"wf-bar-label in\" style=\"right:{:.4}%\">{label}</span>", 100.0 - end);
        }
    }
    out.push_str("</div></div></div>\n");
}

const CSS: &str = r#"
:root{--tl:47%;--fail:#e5484d;--fg:#1a1c21;--muted:#69707d;--line:#e3e8f0;--bg:#f1f4f9}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:13px/1.4 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
.wf-page{padding:22px 28px 4px}
.wf-page h1{margin:0;font-size:20px;font-weight:650;letter-spacing:-.01em}
.wf-page p{margin:4px 0 0;color:var(--muted)}
main{padding:14px 28px 28px}
.wf-empty{padding:40px;text-align:center;color:var(--muted);background:#fff;border-radius:10px;border:1px dashed var(--line)}
.wf-trace{background:#fff;border:1px solid var(--line);border-radius:10px;box-shadow:0 1px 2px rgba(16,24,40,.05),0 4px 12px rgba(16,24,40,.04);margin-bottom:22px;overflow:hidden}
.wf-trace-head{padding:14px 18px 12px;border-bottom:1px solid var(--line)}
.wf-title{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.wf-root{font-size:16px;font-weight:650}
.wf-pill{font-size:12px;font-weight:550;padding:2px 9px;border-radius:999px;background:#eef2f7;color:#343741;font-variant-numeric:tabular-nums}
.wf-pill.err{background:#fdecec;color:#b42318}
.wf-meta{margin-top:6px;color:var(--muted);font-size:12px;display:flex;gap:18px;flex-wrap:wrap}
.wf-meta code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;color:#343741}
.wf-legend{display:flex;align-items:center;gap:14px;margin-top:9px;font-size:12px;color:#343741;flex-wrap:wrap}
.wf-legend-k{color:var(--muted);text-transform:uppercase;font-size:10.5px;letter-spacing:.05em}
.wf-legend i{display:inline-block;width:10px;height:10px;border-radius:3px;margin-right:6px;vertical-align:-1px}
.wf-head,.wf-row{display:grid;grid-template-columns:minmax(220px,1fr) 124px 176px 80px var(--tl)}
.wf-grid{overflow-x:auto}
.wf-head,.wf-body{min-width:900px}
@media (max-width:1200px){:root{--tl:40%}.wf-head,.wf-row{grid-template-columns:minmax(200px,1fr) 108px 140px 76px var(--tl)}}
.wf-head{font-size:10.5px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);background:#fafbfd;border-bottom:1px solid var(--line)}
.wf-head>div{padding:9px 10px}
.wf-head>div:first-child{padding-left:16px}
.wf-num{text-align:right}
.wf-head>.wf-axis{padding:0}
.wf-track{position:relative;margin:0 44px 0 14px;height:100%}
.wf-tick{position:absolute;top:9px;transform:translateX(-50%);white-space:nowrap;text-transform:none;letter-spacing:0;font-variant-numeric:tabular-nums}
.wf-tick::after{content:"";position:absolute;left:50%;top:17px;height:6px;width:1px;background:#c5ccd8}
.wf-tick.first{transform:none}.wf-tick.first::after{left:0}
.wf-tick.last{transform:translateX(-100%)}.wf-tick.last::after{left:auto;right:0}
.wf-body{position:relative}
.wf-lines{position:absolute;top:0;bottom:0;right:0;width:var(--tl);pointer-events:none}
.wf-lines i{position:absolute;top:0;bottom:0;width:1px;background:#eef1f6}
.wf-row{min-height:30px;border-bottom:1px solid #f2f4f8;position:relative}
.wf-row:last-child{border-bottom:0}
.wf-row:hover{background:rgba(96,146,192,.07)}
.wf-row>div{display:flex;align-items:center;padding:0 10px;min-width:0;overflow:hidden;white-space:nowrap}
.wf-row>.wf-name{padding-left:16px}
.wf-indent{align-self:stretch;flex:0 1 auto;min-width:0;background:repeating-linear-gradient(to right,transparent 0 4px,#dfe4ec 4px 5px,transparent 5px 16px)}
.wf-icon{flex:none;width:10px;height:10px;border-radius:3px;background:var(--c);margin-right:8px}
.wf-txn .wf-icon{border-radius:50%}
.wf-error .wf-icon{transform:rotate(45deg) scale(.85);border-radius:1px}
.wf-label{overflow:hidden;text-overflow:ellipsis;min-width:0}
.wf-name .wf-label{min-width:4.5em}
.wf-deep{flex:none;font-size:10px;color:var(--muted);margin-right:5px;font-variant-numeric:tabular-nums}
.wf-txn .wf-name .wf-label{font-weight:650}
.wf-error .wf-name .wf-label{color:#b42318;font-weight:500}
.wf-failed .wf-name .wf-label{color:#b42318}
.wf-tag{flex:none;margin-left:7px;font-size:10.5px;padding:0 6px;border-radius:4px;background:#eef2f7;color:#535966;line-height:17px}
.wf-tag.fail{background:#fdecec;color:#b42318;font-weight:550}
.wf-tag.warn{background:#fff4e0;color:#8a5a00}
.wf-type,.wf-thread{color:#535966}
.wf-sub{color:#98a2b3}
.wf-dur{justify-content:flex-end;font-variant-numeric:tabular-nums;color:#343741}
.wf-failed .wf-dur{color:#b42318}
.wf-row>.wf-tl{display:block;padding:0}
.wf-tl .wf-track{height:30px}
.wf-bar{position:absolute;top:50%;height:14px;margin-top:-7px;min-width:2px;border-radius:3px;background:var(--c);box-shadow:inset 0 -1px 0 rgba(0,0,0,.08)}
.wf-row:hover .wf-bar{filter:brightness(.92)}
.wf-bar-label{position:absolute;top:50%;transform:translateY(-50%);font-size:11px;color:var(--muted);padding:0 6px;white-space:nowrap;font-variant-numeric:tabular-nums}
.wf-bar-label.in{color:#fff;font-weight:550;text-shadow:0 0 2px rgba(0,0,0,.25)}
.wf-marker{position:absolute;top:50%;width:10px;height:10px;margin:-5px 0 0 -5px;background:var(--fail);transform:rotate(45deg);border-radius:2px;box-shadow:0 0 0 2px #fff}
.wf-tip{position:fixed;z-index:10;display:none;max-width:460px;background:#1d2027;color:#eef1f6;padding:9px 12px;border-radius:7px;font-size:12px;line-height:1.55;box-shadow:0 6px 24px rgba(0,0,0,.25);pointer-events:none;word-break:break-all}
.wf-tip b{display:inline-block;min-width:66px;color:#9aa4b2;font-weight:500}
"#;

/// Tooltip text is built with `textContent` only, so even though `data-tip`
/// holds user strings nothing is ever parsed as HTML.
const JS: &str = r#"
(function(){var tip=document.createElement('div');tip.className='wf-tip';document.body.appendChild(tip);
document.addEventListener('mouseover',function(e){var r=e.target.closest&&e.target.closest('.wf-row');
if(!r){tip.style.display='none';return;}tip.textContent='';
(r.getAttribute('data-tip')||'').split('\n').forEach(function(l){var d=document.createElement('div'),i=l.indexOf(': ');
if(i>0){var k=document.createElement('b');k.textContent=l.slice(0,i);d.appendChild(k);d.appendChild(document.createTextNode(l.slice(i+2)));}
else{d.textContent=l;}tip.appendChild(d);});tip.style.display='block';});
document.addEventListener('mousemove',function(e){if(tip.style.display!=='block')return;
var x=e.clientX+14,y=e.clientY+16,w=tip.offsetWidth,h=tip.offsetHeight;
if(x+w>innerWidth-8)x=Math.max(8,e.clientX-w-14);if(y+h>innerHeight-8)y=Math.max(8,e.clientY-h-16);
tip.style.left=x+'px';tip.style.top=y+'px';});
document.addEventListener('mouseleave',function(){tip.style.display='none';});})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0af7651916cd43dd8448eb211c80319c";
    const T2: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn row(kind: RowKind, id: &str, parent: Option<&str>, start_ms: u64, dur_ms: f64) -> Row {
        Row {
            kind,
            trace_id: T1.to_string(),
            id: id.to_string(),
            parent_id: parent.map(str::to_string),
            name: format!("op-{id}"),
            span_type: "app".to_string(),
            subtype: None,
            start_us: 1_700_000_000_000_000 + start_ms * 1000,
            duration_ms: dur_ms,
            thread: "main".to_string(),
            failed: false,
            service: "frontend".to_string(),
            sync: None,
        }
    }

    fn ids(t: &Trace) -> Vec<&str> {
        t.nodes.iter().map(|n| n.row.id.as_str()).collect()
    }

    fn node<'a>(t: &'a Trace, id: &str) -> &'a Node {
        t.nodes.iter().find(|n| n.row.id == id).unwrap()
    }

    fn strip_ansi(s: &str) -> String {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                for d in it.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    fn fan_out() -> Vec<Row> {
        // Input deliberately shuffled: ordering must come from start times.
        vec![
            row(RowKind::Span, "s3", Some("tx"), 20, 30.0),
            row(RowKind::Span, "s1", Some("tx"), 10, 40.0),
            row(RowKind::Transaction, "tx", None, 0, 100.0),
            row(RowKind::Span, "s2", Some("tx"), 12, 40.0),
            row(RowKind::Span, "c1", Some("s1"), 15, 20.0),
            row(RowKind::Span, "s4", Some("tx"), 60, 30.0),
        ]
    }

    #[test]
    fn tree_structure_and_sibling_order() {
        let wf = Waterfall::new(fan_out());
        assert_eq!(wf.traces.len(), 1);
        let t = &wf.traces[0];
        assert_eq!(ids(t), ["tx", "s1", "c1", "s2", "s3", "s4"]);
        let depths: Vec<usize> = t.nodes.iter().map(|n| n.depth).collect();
        assert_eq!(depths, [0, 1, 2, 1, 1, 1]);
        assert!(node(t, "s4").last && !node(t, "s1").last && node(t, "c1").last);
        assert_eq!(t.total_us, 100_000);
        assert_eq!((t.transactions, t.spans, t.errors), (1, 5, 0));

        let text = wf.render_text(120, false);
        assert!(text.contains("├─ op-s1"), "{text}");
        assert!(text.contains("│  └─ op-c1"), "{text}");
        assert!(text.contains("└─ op-s4"), "{text}");
        assert!(text.contains(T1) && text.contains("100.0 ms") && text.contains("5 spans"));
        assert!(text.contains("0 ms"));
    }

    #[test]
    fn traces_render_oldest_first() {
        let mut late = row(RowKind::Transaction, "b", None, 500, 10.0);
        late.trace_id = T2.to_string();
        let early = row(RowKind::Transaction, "a", None, 0, 10.0);
        let wf = Waterfall::new(vec![late, early]);
        assert_eq!(wf.traces[0].trace_id, T1);
        assert_eq!(wf.traces[1].trace_id, T2);
        let text = wf.render_text(100, false);
        assert!(text.find(T1).unwrap() < text.find(T2).unwrap());
    }

    #[test]
    fn parallel_rows_overlap_on_axis() {
        let wf = Waterfall::new(fan_out());
        let t = &wf.traces[0];
        let w = 50;
        let cols = |id: &str| {
            let n = node(t, id);
            bar_cols(n.offset_us, n.dur_us, t.total_us, w)
        };
        let (s1, s2, s4, tx) = (cols("s1"), cols("s2"), cols("s4"), cols("tx"));
        assert_eq!(tx, (0, 50));
        assert_eq!(s1, (5, 25));
        assert_eq!(s2, (6, 26));
        // s1 and s2 ran concurrently: their cell ranges intersect.
        assert!(s1.0 < s2.1 && s2.0 < s1.1);
        // s1 ends at 50 ms and s4 starts at 60 ms: no overlap.
        assert!(s1.1 <= s4.0);
        // Back-to-back work shares a boundary rather than overlapping.
        assert_eq!(bar_cols(0, 500, 1000, 7).1, bar_cols(500, 500, 1000, 7).0);

        // And the rendered text agrees with the computed columns.
        let text = wf.render_text(120, false);
        let layout = text_layout(t, 120);
        let line = text.lines().find(|l| l.contains("op-s2")).unwrap();
        let bar: Vec<char> = line.chars().skip(layout.bar_col()).collect();
        let first = bar.iter().position(|c| *c == '█').unwrap();
        let (a, b) = bar_cols(12_000, 40_000, 100_000, layout.bar_w);
        assert_eq!(first, a);
        assert_eq!(bar.iter().filter(|c| **c == '█').count(), b - a);
    }

    #[test]
    fn short_bars_stay_visible() {
        assert_eq!(bar_cols(0, 0, 1_000_000, 40), (0, 1));
        assert_eq!(bar_cols(1_000_000, 0, 1_000_000, 40), (39, 40));
        assert_eq!(bar_cols(500, 1, 1_000_000, 40), (0, 1));
        assert_eq!(bar_cols(0, 0, 0, 40), (0, 1));
    }

    #[test]
    fn tick_steps_are_nice() {
        assert_eq!(nice_step(100.0, 10), 10.0);
        assert_eq!(nice_step(523.0, 8), 100.0);
        assert_eq!(nice_step(1.3, 10), 0.2);
        assert_eq!(nice_step(37.0, 10), 5.0);
        assert_eq!(next_step(0.05), 0.1);
        assert_eq!(next_step(200.0), 500.0);
        assert_eq!(fmt_tick(0.4, 0.2), "0.4 ms");
        assert_eq!(fmt_tick(2000.0, 500.0), "2000 ms");
        assert_eq!(fmt_tick(3000.0, 1000.0), "3 s");
        let labels = text_ticks(523_000, 60);
        assert_eq!(labels[0], (0, "0 ms".to_string()));
        for w in labels.windows(2) {
            assert!(w[0].0 + w[0].1.len() + 2 <= w[1].0, "{labels:?}");
        }
    }

    #[test]
    fn orphans_are_rooted_and_marked() {
        let rows = vec![
            row(RowKind::Transaction, "tx", None, 0, 50.0),
            row(RowKind::Span, "lost", Some("ffffffffffffffff"), 5, 10.0),
            row(RowKind::Span, "kid", Some("lost"), 6, 2.0),
            // Self-parent and a two-node cycle must not vanish or loop forever.
            row(RowKind::Span, "self", Some("self"), 7, 1.0),
            row(RowKind::Span, "cy1", Some("cy2"), 8, 1.0),
            row(RowKind::Span, "cy2", Some("cy1"), 9, 1.0),
        ];
        let wf = Waterfall::new(rows);
        let t = &wf.traces[0];
        assert_eq!(t.nodes.len(), 6);
        assert_eq!(ids(t), ["tx", "lost", "kid", "self", "cy1", "cy2"]);
        let lost = node(t, "lost");
        assert!(lost.orphan && lost.depth == 0);
        assert!(!node(t, "kid").orphan && node(t, "kid").depth == 1);
        assert!(node(t, "self").orphan && node(t, "cy1").orphan);
        assert_eq!(node(t, "cy2").depth, 1);
        let text = wf.render_text(100, false);
        assert!(text.contains("op-lost (orphan)"), "{text}");
        assert!(!text.contains("op-tx (orphan)"));
        let html = wf.render_html("t");
        assert!(html.contains("data-id=\"lost\" data-parent-id=\"ffffffffffffffff\""));
        assert_eq!(html.matches("wf-tag warn").count(), 3);
    }

    #[test]
    fn two_services_nest_through_spans() {
        let mut rows = vec![
            row(RowKind::Transaction, "fe-tx", None, 0, 100.0),
            row(RowKind::Span, "fe-http", Some("fe-tx"), 10, 60.0),
            row(RowKind::Transaction, "be-tx", Some("fe-http"), 15, 50.0),
            row(RowKind::Span, "be-db", Some("be-tx"), 20, 30.0),
            row(RowKind::Error, "be-err", Some("be-db"), 45, 0.0),
        ];
        for r in &mut rows[2..] {
            r.service = "backend".to_string();
        }
        rows[1].span_type = "external".into();
        rows[1].subtype = Some("http".into());
        rows.reverse();
        let wf = Waterfall::new(rows);
        let t = &wf.traces[0];
        assert_eq!(ids(t), ["fe-tx", "fe-http", "be-tx", "be-db", "be-err"]);
        assert_eq!(t.nodes.iter().map(|n| n.depth).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        assert!(t.color_by_service);
        assert_eq!(t.color_keys, ["frontend", "backend"]);
        assert_ne!(node(t, "fe-http").color, node(t, "be-tx").color);
        assert_eq!((t.transactions, t.spans, t.errors), (2, 2, 1));
        let text = wf.render_text(110, false);
        assert!(text.contains("frontend") && text.contains("backend"));
        assert!(text.contains("external/http"));
        assert!(text.contains("◆ op-be-err"), "{text}");
    }

    #[test]
    fn errors_are_point_markers_under_their_parent() {
        let rows =
            vec![row(RowKind::Transaction, "tx", None, 0, 100.0), row(RowKind::Error, "e", Some("tx"), 50, 999.0)];
        let wf = Waterfall::new(rows);
        let t = &wf.traces[0];
        // The bogus error duration must not stretch the axis.
        assert_eq!(t.total_us, 100_000);
        assert_eq!(node(t, "e").depth, 1);
        let text = wf.render_text(100, false);
        let line = text.lines().find(|l| l.contains("op-e")).unwrap();
        assert_eq!(line.matches('◆').count(), 2);
        assert!(!line.contains('█'));
    }

    #[test]
    fn failures_are_marked() {
        let mut rows = fan_out();
        rows[0].failed = true;
        let wf = Waterfall::new(rows);
        let plain = wf.render_text(120, false);
        assert!(plain.lines().any(|l| l.contains("op-s3 ✗")));
        let colored = wf.render_text(120, true);
        assert!(colored.contains(RED));
        // Colour only adds escapes (and the type legend on line 2).
        let drop_legend =
            |s: &str| s.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| l.to_string()).collect::<Vec<_>>();
        assert_eq!(drop_legend(&strip_ansi(&colored)), drop_legend(&plain));
        let html = wf.render_html("x");
        assert_eq!(html.matches("wf-row wf-span wf-failed").count(), 1);
    }

    #[test]
    fn html_escapes_user_strings() {
        let mut r = row(RowKind::Transaction, "tx", None, 0, 10.0);
        r.name = "<script>alert('x')</script> & \"q\"".to_string();
        r.thread = "<b>t</b>".to_string();
        r.service = "<svc>".to_string();
        r.id = "\"><img src=x>".to_string();
        let wf = Waterfall::new(vec![r]);
        let html = wf.render_html("<title>&");
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<b>t</b>"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<svc>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        assert!(html.contains("<title>&lt;title&gt;&amp;</title>"));
        // Exactly our own script tag remains.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn html_has_one_row_element_per_row() {
        let mut rows = fan_out();
        rows.push(row(RowKind::Error, "err", Some("s2"), 30, 0.0));
        let mut other = row(RowKind::Transaction, "t2", None, 0, 5.0);
        other.trace_id = T2.to_string();
        rows.push(other);
        let n = rows.len();
        let html = Waterfall::new(rows).render_html("Trace");
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        assert_eq!(html.matches("class=\"wf-row ").count(), n);
        assert_eq!(html.matches("data-id=").count(), n);
        assert_eq!(html.matches("data-parent-id=").count(), n);
        assert!(html.contains("data-id=\"err\" data-parent-id=\"s2\" data-kind=\"error\""));
        assert!(html.contains("data-id=\"tx\" data-parent-id=\"\" data-kind=\"transaction\""));
        assert_eq!(html.matches("<section class=\"wf-trace\"").count(), 2);
        // No external resources.
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("src="));
    }

    #[test]
    fn truncation_is_char_aware() {
        assert_eq!(fit("héllo wörld", 6), "héllo…");
        assert_eq!(fit("日本語のテキスト", 7), "日本語…");
        assert_eq!(str_width(&fit("日本語のテキスト", 7)), 7);
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 0), "");
        assert_eq!(clean("a\x1b[31mb\nc"), "a [31mb c");
    }

    fn assert_fits(text: &str, width: usize) {
        for l in text.lines() {
            assert!(str_width(l) <= width, "line wider than {width}: {} > {width}\n{l}", str_width(l));
        }
    }

    #[test]
    fn edge_cases_do_not_panic_and_fit_the_width() {
        let empty = Waterfall::new(Vec::new());
        assert!(empty.render_text(80, true).contains("no traces"));
        assert!(empty.render_html("x").contains("No traces"));

        let single = Waterfall::new(vec![row(RowKind::Span, "only", Some("gone"), 0, 0.0)]);
        let zero = Waterfall::new(vec![
            row(RowKind::Transaction, "a", None, 0, 0.0),
            row(RowKind::Span, "b", Some("a"), 0, 0.0),
            row(RowKind::Error, "c", Some("b"), 0, 0.0),
        ]);
        let mut weird = vec![
            row(RowKind::Transaction, "a", None, 0, f64::NAN),
            row(RowKind::Span, "b", Some("a"), 0, -5.0),
            row(RowKind::Span, "c", Some("a"), 0, f64::INFINITY),
            row(RowKind::Span, "d", Some("a"), u64::MAX / 2000, 1e300),
        ];
        weird[1].name = "🚀 déploiement 日本語 ".repeat(10) + "e\u{301}";
        weird[2].name = String::new();
        weird[2].thread = "x".repeat(300);
        weird[3].subtype = Some("y".repeat(100));
        let weird = Waterfall::new(weird);

        for wf in [&single, &zero, &weird] {
            for width in [0, 1, 10, 16, 30, 45, 59, 60, 61, 80, 120, 250] {
                for color in [false, true] {
                    let text = wf.render_text(width, color);
                    assert_fits(&strip_ansi(&text), width.max(MIN_TEXT_WIDTH));
                }
            }
            let html = wf.render_html("edge");
            assert_eq!(html.matches("class=\"wf-row ").count(), wf.row_count());
        }
        let text = zero.render_text(80, false);
        assert!(text.contains("0 ms"));
        assert_eq!(fmt_dur_us(4), "4 µs");
        assert!(single.render_text(80, false).contains("(orphan)"));
        // Narrow terminals drop the bars instead of squeezing them.
        let narrow = Waterfall::new(fan_out()).render_text(50, false);
        assert!(!narrow.contains('█') && narrow.contains("op-c1"));
    }

    #[test]
    fn large_and_deep_traces() {
        // 1000 rows: a wide fan-out plus a 500-deep chain.
        let mut rows = vec![row(RowKind::Transaction, "root", None, 0, 1000.0)];
        for i in 0..499 {
            rows.push(row(RowKind::Span, &format!("f{i}"), Some("root"), i, 1.0));
        }
        let mut parent = "root".to_string();
        for i in 0..500 {
            let id = format!("d{i}");
            rows.push(row(RowKind::Span, &id, Some(&parent), i, 1.0));
            parent = id;
        }
        let wf = Waterfall::new(rows);
        assert_eq!(wf.row_count(), 1000);
        assert_eq!(node(&wf.traces[0], "d499").depth, 500);
        for width in [40, 80, 200] {
            let text = wf.render_text(width, true);
            assert_eq!(text.lines().count(), 1000 + 4 - usize::from(width < 60));
            assert_fits(&strip_ansi(&text), width);
        }
        let html = wf.render_html("big");
        assert_eq!(html.matches("class=\"wf-row ").count(), 1000);
        assert!(html.contains("Depth: 500"));
        assert!(html.contains("<span class=\"wf-deep\">+484</span>"));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(fmt_utc(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(fmt_utc(1_709_210_096_789_000), "2024-02-29 12:34:56.789 UTC");
    }
}
