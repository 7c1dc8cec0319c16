//! Resolving the tree once: rows grouped into traces, each child under its parent, siblings
//! by start time, orphans and parent cycles placed at the root and marked.

use super::*;

impl Trace {
    pub(super) fn build(trace_id: String, rows: Vec<Row>) -> Trace {
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
    pub(super) fn root_name(&self) -> &str {
        self.nodes
            .iter()
            .find(|n| n.depth == 0 && !n.orphan)
            .or(self.nodes.first())
            .map(|n| n.row.name.as_str())
            .unwrap_or("")
    }

    pub(super) fn counts(&self) -> String {
        let mut parts =
            vec![plural(self.transactions, "transaction", "transactions"), plural(self.spans, "span", "spans")];
        if self.errors > 0 {
            parts.push(plural(self.errors, "error", "errors"));
        }
        parts.join(" · ")
    }
}

/// Iterative depth-first walk: a 1000-deep parent chain must not blow the stack.
pub(super) fn walk(
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

pub(super) fn kind_rank(k: &RowKind) -> u8 {
    match k {
        RowKind::Transaction => 0,
        RowKind::Span => 1,
        RowKind::Error => 2,
    }
}

pub(super) fn ms_to_us(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        // `as` saturates, so absurd durations clamp instead of wrapping.
        (ms * 1000.0).round() as u64
    } else {
        0
    }
}
