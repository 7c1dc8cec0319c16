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

mod format;
mod html;
#[cfg(test)]
mod tests;
mod text;
mod tree;

use format::*;
use html::*;
use text::*;

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
    /// Errors only: where it happened, as Kibana's error sample lists it — the innermost
    /// application frames (`src/orders.rs:42`), at most three.
    pub frames: Vec<String>,
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
    /// The waterfall row of one event (`None` for a metricset, which has no place in a trace);
    /// `service` names the reporting service.
    ///
    /// ```
    /// # use apm_runtime::{Agent, report::MemorySink, waterfall::Row};
    /// # let sink = MemorySink::new();
    /// # let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    /// # agent.transaction("t").start().end();
    /// # agent.flush(std::time::Duration::from_secs(5));
    /// let row = Row::from_event(&sink.events()[0], "checkout").unwrap();
    /// assert_eq!(row.name, "t");
    /// ```
    pub fn from_event(event: &Event, service: &str) -> Option<Row> {
        use crate::model::event::Outcome;
        use crate::model::thread::thread_name;
        Some(match event {
            Event::Metricset(_) => return None,
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
                frames: Vec::new(),
            },
            Event::Span(s) => Row {
                kind: RowKind::Span,
                trace_id: s.trace_id.to_string(),
                id: s.id.to_string(),
                parent_id: Some(s.parent_id.to_string()),
                // A composite span is one row standing for its spans: `name ×500`.
                name: match s.more.as_ref().and_then(|m| m.composite) {
                    Some(c) => format!("{} ×{}", s.name, c.count),
                    None => s.name.to_string(),
                },
                span_type: s.kind.to_string(),
                subtype: s.subtype.as_ref().map(|x| x.to_string()),
                start_us: s.start.epoch_us(),
                duration_ms: s.start.ms_until(s.end),
                thread: thread_name(s.thread),
                failed: s.outcome == Outcome::Failure,
                service: service.to_string(),
                sync: Some(s.sync),
                frames: Vec::new(),
            },
            Event::Error(e) => Row {
                kind: RowKind::Error,
                trace_id: e.trace_id.to_string(),
                id: e.id.to_string(),
                parent_id: Some(e.parent_id.to_string()),
                name: match (&e.log, e.has_exception()) {
                    (Some(log), false) => format!("{} {}: {}", log.level, log.logger_name, log.message),
                    _ => format!("{}: {}", e.exception_type, e.message),
                },
                span_type: "error".to_string(),
                subtype: None,
                start_us: e.timestamp,
                duration_ms: 0.0,
                thread: thread_name(e.thread),
                failed: true,
                service: service.to_string(),
                sync: None,
                frames: {
                    // A closure and the fn around it often share a line: listed once.
                    let mut places: Vec<String> =
                        e.frames.iter().filter(|f| !f.library_frame).map(|f| f.location()).collect();
                    places.dedup();
                    places.truncate(3);
                    places
                },
            },
        })
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
