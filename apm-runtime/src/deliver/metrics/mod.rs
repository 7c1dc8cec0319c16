//! Metricsets, every `METRICS_INTERVAL`, computed on the reporter thread: the host's and the
//! process's CPU and memory ([`system`], [`cgroup`]), the breakdown of transactions' time by
//! span type ([`breakdown`], from the events being delivered), and the agent's own health
//! ([`health`]). Nothing here runs on the application's threads.

pub(crate) mod breakdown;
pub(crate) mod cgroup;
pub(crate) mod health;
pub(crate) mod system;
pub(crate) mod user;

use std::time::{Duration, Instant};

use crate::config::{Config, Wildcard};
use crate::handoff::user_metrics::Registry;
use crate::handoff::Counters;
use crate::model::clock::Stamp;
use crate::model::event::Event;
use crate::model::metricset::MetricsetEvent;

/// What the reporter keeps between metricsets.
pub(crate) struct Metrics {
    interval: Duration,
    next: Instant,
    system: system::System,
    cgroup: cgroup::Cgroup,
    breakdown: Option<breakdown::Breakdown>,
    health: health::Health,
    user: user::User,
    disabled: Vec<Wildcard>,
    capacity: usize,
}

impl Metrics {
    /// `None` when `METRICS_INTERVAL` is 0 (metrics off: nothing collected at all).
    pub(crate) fn new(config: &Config) -> Option<Metrics> {
        let interval = config.metrics_interval();
        if interval.is_zero() {
            return None;
        }
        let disabled = config.disable_metrics().to_vec();
        // Breakdown off, or every breakdown sample disabled: no span is even looked at.
        let breakdown_disabled = ["span.self_time.count", "span.self_time.sum.us"]
            .iter()
            .all(|name| disabled.iter().any(|w| w.matches(name)));
        Some(Metrics {
            interval,
            next: Instant::now() + interval,
            system: system::System::new(),
            cgroup: cgroup::Cgroup::new(),
            breakdown: (config.breakdown_metrics() && !breakdown_disabled).then(breakdown::Breakdown::default),
            health: health::Health::default(),
            user: user::User::default(),
            disabled,
            capacity: config.max_queue_size,
        })
    }

    /// Looks at a drained batch: its size (queue fill) and, for the breakdown, its spans and
    /// transactions.
    pub(crate) fn observe(&mut self, batch: &[Event]) {
        self.health.drained(batch.len(), self.capacity);
        if let Some(b) = &mut self.breakdown {
            for event in batch {
                b.observe(event);
            }
        }
    }

    /// The interval's metricsets once it is over, else nothing.
    pub(crate) fn collect_due(&mut self, counters: &Counters) -> Vec<Event> {
        let now = Instant::now();
        if now < self.next {
            return Vec::new();
        }
        // The next report is an interval after this one, however late this one was.
        self.next = now + self.interval;
        self.collect(counters)
    }

    /// The metricsets of the interval so far, due or not.
    pub(crate) fn collect(&mut self, counters: &Counters) -> Vec<Event> {
        let timestamp = Stamp::now().epoch_us();
        let mut sets = Vec::new();
        let mut process = self.system.samples();
        process.extend(self.cgroup.samples());
        sets.push(MetricsetEvent::new(timestamp, process));
        sets.push(MetricsetEvent::new(timestamp, self.health.samples(counters)));
        if let Some(b) = &mut self.breakdown {
            sets.extend(b.take(timestamp));
        }
        sets.extend(self.user.metricsets(Registry::global(), timestamp));
        for set in &mut sets {
            set.samples.retain(|(name, _)| !self.disabled.iter().any(|w| w.matches(name)));
        }
        sets.retain(|s| !s.samples.is_empty());
        sets.into_iter().map(|s| Event::Metricset(Box::new(s))).collect()
    }
}
