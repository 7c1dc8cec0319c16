//! The waterfall's layout and both renderings, on hand-made rows.
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
        frames: Vec::new(),
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
    let rows = vec![row(RowKind::Transaction, "tx", None, 0, 100.0), row(RowKind::Error, "e", Some("tx"), 50, 999.0)];
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
