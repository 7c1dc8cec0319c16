//! The application's metrics (the `metrics` facade) as metricsets: one per label set, its
//! labels as tags; counters per interval, gauges as they stand, histograms as Elastic's
//! histogram samples (`values` ascending, `counts`).

use std::borrow::Cow;
use std::collections::BTreeMap;

use crate::handoff::user_metrics::{Reading, Registry};
use crate::model::metricset::{MetricsetEvent, NamedSamples, Sample};

/// This agent's last readings of the registry's entries, by position (counters and histograms
/// are sent as what changed since; another agent in the process keeps its own).
#[derive(Default)]
pub(crate) struct User {
    reported: Vec<Vec<u64>>,
}

impl User {
    pub(crate) fn metricsets(&mut self, registry: &Registry, timestamp: u64) -> Vec<MetricsetEvent> {
        let entries = registry.entries();
        self.reported.resize_with(entries.len(), Vec::new);
        let mut by_tags: BTreeMap<Vec<(String, String)>, NamedSamples> = BTreeMap::new();
        for (entry, reported) in entries.iter().zip(&mut self.reported) {
            let sample = match entry.read(reported) {
                Reading::Counter(n) => Sample::counter(n as f64),
                Reading::Gauge(v) => Sample::gauge(v),
                // Nothing recorded this interval: no sample (an empty histogram says nothing).
                Reading::Histogram(values, _) if values.is_empty() => continue,
                Reading::Histogram(values, counts) => Sample::Histogram { values, counts },
            };
            by_tags.entry(entry.tags.clone()).or_default().push((Cow::Owned(entry.name.clone()), sample));
        }
        by_tags
            .into_iter()
            .map(|(tags, samples)| MetricsetEvent { timestamp, samples, tags, transaction: None, span: None })
            .collect()
    }
}
