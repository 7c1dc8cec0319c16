//! The agent's own health as metricsets (Elastic's `agent.events.*`), from the counters both
//! halves keep: events produced and dropped, requests to the APM Server and their bytes, all per
//! interval, and how full the queue was when the reporter drained it.

use std::borrow::Cow;

use crate::handoff::Counters;
use crate::model::metricset::{NamedSamples, Sample};

#[derive(Default)]
pub(crate) struct Health {
    /// The counters' values at the last report, to send differences.
    last: (u64, u64, u64, u64),
    /// Queue fill seen by the drains of this interval (fraction of `MAX_QUEUE_SIZE`).
    min_fill: Option<f64>,
    max_fill: f64,
}

impl Health {
    /// A drain took `n` events off a queue of `capacity`.
    pub(crate) fn drained(&mut self, n: usize, capacity: usize) {
        let fill = (n as f64 / capacity.max(1) as f64).min(1.0);
        self.min_fill = Some(self.min_fill.map_or(fill, |m| m.min(fill)));
        self.max_fill = self.max_fill.max(fill);
    }

    pub(crate) fn samples(&mut self, counters: &Counters) -> NamedSamples {
        let stats = counters.snapshot();
        let total = stats.queued + stats.dropped.queue_full + stats.dropped.shutdown;
        let dropped = stats.dropped.total();
        let (requests, bytes) = counters.requests();
        let (t0, d0, r0, b0) = std::mem::replace(&mut self.last, (total, dropped, requests, bytes));
        let fill = (self.min_fill.take().unwrap_or(0.0), std::mem::take(&mut self.max_fill));
        vec![
            (Cow::Borrowed("agent.events.total"), Sample::counter(total.saturating_sub(t0) as f64)),
            (Cow::Borrowed("agent.events.dropped"), Sample::counter(dropped.saturating_sub(d0) as f64)),
            (Cow::Borrowed("agent.events.requests.count"), Sample::counter(requests.saturating_sub(r0) as f64)),
            (Cow::Borrowed("agent.events.requests.bytes"), Sample::counter(bytes.saturating_sub(b0) as f64)),
            (Cow::Borrowed("agent.events.queue.min_fill_rate"), Sample::percent(fill.0)),
            (Cow::Borrowed("agent.events.queue.max_fill_rate"), Sample::percent(fill.1)),
        ]
    }
}
