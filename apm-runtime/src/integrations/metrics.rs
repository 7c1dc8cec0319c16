//! The `metrics` facade as a source (feature `metrics`): counters, gauges and histograms an
//! application records with `metrics::counter!`, `gauge!` and `histogram!` ship as metricsets
//! every `ELASTIC_APM_METRICS_INTERVAL`, their labels as tags. Counters are sent per interval,
//! gauges as they stand, histograms as Elastic histogram samples (`values`, `counts`).
//!
//! Recording is a few atomic operations on the calling thread (no lock after a metric's first
//! use); everything else happens on the reporter thread.
//!
//! ```
//! apm_runtime::integrations::metrics::install().expect("no other metrics recorder installed");
//! metrics::counter!("orders.created", "region" => "eu").increment(1);
//! metrics::histogram!("orders.latency_ms").record(12.5);
//! ```

use std::sync::Arc;

use metrics::{Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};

use crate::handoff::user_metrics::{Entry, Kind, Registry};

/// Installs [`ApmRecorder`] as the process's `metrics` recorder. Fails when another recorder is
/// installed already (the facade allows one per process).
///
/// ```
/// let _ = apm_runtime::integrations::metrics::install();
/// ```
pub fn install() -> Result<(), metrics::SetRecorderError<ApmRecorder>> {
    metrics::set_global_recorder(ApmRecorder)
}

/// A `metrics::Recorder` that hands what is recorded to the agent's metricsets. Use
/// [`install`], or compose it with other recorders (e.g. `metrics-util`'s fan-out).
///
/// ```
/// use metrics::Recorder;
/// let recorder = apm_runtime::integrations::metrics::ApmRecorder::default();
/// let key = metrics::Key::from_static_name("jobs.done");
/// let meta = metrics::Metadata::new("app", metrics::Level::INFO, None);
/// recorder.register_counter(&key, &meta).increment(1);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ApmRecorder;

fn entry(kind: Kind, key: &Key) -> Arc<Handle> {
    let mut tags: Vec<(String, String)> = key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
    tags.sort();
    Arc::new(Handle(Registry::global().entry(kind, key.name(), tags)))
}

/// One registered metric, as the facade's handles hold it.
struct Handle(Arc<Entry>);

impl CounterFn for Handle {
    fn increment(&self, value: u64) {
        self.0.increment(value);
    }
    fn absolute(&self, value: u64) {
        self.0.absolute(value);
    }
}

impl GaugeFn for Handle {
    fn increment(&self, value: f64) {
        self.0.add(value);
    }
    fn decrement(&self, value: f64) {
        self.0.add(-value);
    }
    fn set(&self, value: f64) {
        self.0.set(value);
    }
}

impl HistogramFn for Handle {
    fn record(&self, value: f64) {
        self.0.record(value, 1);
    }
    fn record_many(&self, value: f64, count: usize) {
        self.0.record(value, count as u64);
    }
}

impl metrics::Recorder for ApmRecorder {
    // Elastic's metricsets carry no descriptions; units are left to the metric's name.
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(entry(Kind::Counter, key))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(entry(Kind::Gauge, key))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(entry(Kind::Histogram, key))
    }
}
