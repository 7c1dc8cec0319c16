//! The HTML rendering: one self-contained document (inline CSS and a small script for
//! tooltips), every user-supplied string escaped.

use super::*;

pub(super) fn esc(s: &str) -> String {
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

pub(super) fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (part.min(total) as f64 / total as f64) * 100.0
    }
}

pub(super) fn html_color(idx: usize) -> &'static str {
    HTML_PALETTE[idx % HTML_PALETTE.len()]
}

pub(super) fn fmt_utc(us: u64) -> String {
    let secs = us / 1_000_000;
    let ms = (us / 1000) % 1000;
    let (y, m, d) = crate::model::clock::civil_from_days((secs / 86_400) as i64);
    let sod = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{ms:03} UTC", sod / 3600, sod % 3600 / 60, sod % 60)
}

pub(super) fn render_trace_html(t: &Trace, out: &mut String) {
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

pub(super) fn render_row_html(t: &Trace, n: &Node, out: &mut String) {
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
    for frame in &r.frames {
        tip.push(format!("At: {}", clean(frame)));
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
    if let Some(top) = r.frames.first() {
        let _ = write!(out, "<span class=\"wf-at\">{}</span>", esc(&clean(top)));
    }
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

pub(super) const CSS: &str = r#"
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
.wf-at{margin-left:8px;color:var(--muted);font:11px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
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
pub(super) const JS: &str = r#"
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
