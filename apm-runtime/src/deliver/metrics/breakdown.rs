//! The breakdown of transactions' time by span type, computed on the reporter from the spans
//! and transactions it delivers: a span's or transaction's **self time** is its duration minus
//! the time during which at least one of its direct children was running. Children that run in
//! parallel on other threads overlap: their intervals are merged and subtracted once, never
//! summed, so a 120 ms transaction whose seven 100 ms children ran side by side on a pool has
//! ≈ 20 ms of self time, not a negative one.
//!
//! Spans reach the reporter before their transaction (their thread pushes them when they end),
//! so a span's self time waits under its transaction's id until the transaction says its type
//! and name. What waits longer than two intervals (a transaction that was never delivered) is
//! dropped.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::model::event::{Event, SpanEvent, TransactionEvent};
use crate::model::ids::IdMap;
use crate::model::metricset::{MetricsetEvent, Sample};

/// `(type, subtype)` of a span; `("app", None)` for a transaction's own time.
type SpanKey = (Cow<'static, str>, Option<Cow<'static, str>>);

/// Count and summed self time (µs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    count: u64,
    sum_us: u64,
}

impl Tally {
    fn add(&mut self, self_us: u64) {
        self.count += 1;
        self.sum_us += self_us;
    }
}

#[derive(Default)]
pub(crate) struct Breakdown {
    /// Direct children's intervals (µs), by parent id, until the parent arrives; with the
    /// interval they were first seen in.
    children: IdMap<(u64, Vec<(u64, u64)>)>,
    /// Span self times by transaction id and span key, until the transaction arrives (a
    /// transaction has few span types: a list, searched, costs less than hashing the key).
    pending: IdMap<(u64, Vec<(SpanKey, Tally)>)>,
    /// This interval's totals by transaction (type, name) and span key.
    totals: HashMap<(Cow<'static, str>, Cow<'static, str>, SpanKey), Tally>,
    generation: u64,
}

impl Breakdown {
    pub(crate) fn observe(&mut self, event: &Event) {
        match event {
            Event::Span(span) => self.span(span),
            Event::Transaction(tx) if tx.sampled => self.transaction(tx),
            _ => {}
        }
    }

    fn span(&mut self, span: &SpanEvent) {
        let start = span.start.epoch_ns() / 1_000;
        let end = start + span.start.us_until(span.end);
        let self_us = self_time(start, end, self.children.remove(&span.id).map(|(_, c)| c));
        let generation = self.generation;
        self.children.entry(span.parent_id).or_insert_with(|| (generation, Vec::new())).1.push((start, end));
        let tallies = &mut self.pending.entry(span.transaction_id).or_insert_with(|| (generation, Vec::new())).1;
        match tallies.iter_mut().find(|((kind, subtype), _)| *kind == span.kind && *subtype == span.subtype) {
            Some((_, tally)) => tally.add(self_us),
            None => {
                let mut tally = Tally::default();
                tally.add(self_us);
                tallies.push(((span.kind.clone(), span.subtype.clone()), tally));
            }
        }
    }

    fn transaction(&mut self, tx: &TransactionEvent) {
        let start = tx.timestamp;
        let end = start + (tx.duration * 1_000.0).round() as u64;
        let self_us = self_time(start, end, self.children.remove(&tx.id).map(|(_, c)| c));
        let app: SpanKey = (Cow::Borrowed("app"), None);
        self.totals.entry((tx.kind.clone(), tx.name.clone(), app)).or_default().add(self_us);
        if let Some((_, spans)) = self.pending.remove(&tx.id) {
            for (key, t) in spans {
                let total = self.totals.entry((tx.kind.clone(), tx.name.clone(), key)).or_default();
                total.count += t.count;
                total.sum_us += t.sum_us;
            }
        }
    }

    /// This interval's metricsets, one per transaction and span type; forgets what waited for
    /// a parent for two intervals.
    pub(crate) fn take(&mut self, timestamp: u64) -> Vec<MetricsetEvent> {
        let out = self
            .totals
            .drain()
            .map(|((tx_type, tx_name, (span_type, subtype)), t)| MetricsetEvent {
                timestamp,
                samples: vec![
                    (Cow::Borrowed("span.self_time.count"), Sample::counter(t.count as f64)),
                    (Cow::Borrowed("span.self_time.sum.us"), Sample::counter(t.sum_us as f64)),
                ],
                tags: Vec::new(),
                transaction: Some((tx_type.into_owned(), tx_name.into_owned())),
                span: Some((span_type.into_owned(), subtype.map(Cow::into_owned))),
            })
            .collect();
        let keep = self.generation;
        self.children.retain(|_, (g, _)| *g >= keep);
        self.pending.retain(|_, (g, _)| *g >= keep);
        self.generation += 1;
        out
    }
}

/// `end - start` minus the union of `children` clipped to `[start, end]`.
fn self_time(start: u64, end: u64, children: Option<Vec<(u64, u64)>>) -> u64 {
    let duration = end.saturating_sub(start);
    let Some(mut children) = children else { return duration };
    children.sort_unstable();
    let mut covered = 0;
    let mut reach = start;
    for (s, e) in children {
        let (s, e) = (s.max(reach), e.min(end));
        if e > s {
            covered += e - s;
            reach = e;
        }
    }
    duration - covered.min(duration)
}

#[cfg(test)]
mod tests {
    use super::self_time;

    #[test]
    fn overlapping_children_are_subtracted_once() {
        assert_eq!(self_time(0, 120, Some(vec![(10, 110); 7])), 20);
        assert_eq!(self_time(0, 100, Some(vec![(0, 30), (20, 50), (60, 70)])), 40);
        assert_eq!(self_time(0, 100, Some(vec![(90, 150), (-0i64 as u64, 5)])), 85, "clipped to the parent");
        assert_eq!(self_time(0, 100, None), 100);
        assert_eq!(self_time(50, 100, Some(vec![(0, 200)])), 0);
    }
}
