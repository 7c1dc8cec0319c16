//! Metricsets: samples the reporter computes every `METRICS_INTERVAL` (system and process
//! figures, the breakdown of transactions' time by span type, the agent's own health, and the
//! application's `metrics` facade), and their intake encoding (`metricset.json`).

use std::borrow::Cow;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// A metricset's samples by name, in the order they are sent.
pub(crate) type NamedSamples = Vec<(Cow<'static, str>, Sample)>;

/// One metricset: samples sharing a timestamp and the same keys (tags, transaction, span).
///
/// ```
/// # use apm_runtime::{Agent, Config, report::MemorySink};
/// # let sink = MemorySink::new();
/// # let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// # agent.flush(std::time::Duration::from_secs(1));
/// // Metricsets reach sinks as `Event::Metricset`; `MemorySink::metricsets()` has them as JSON.
/// assert!(sink.metricsets().iter().all(|m| m["samples"].is_object()));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsetEvent {
    pub(crate) timestamp: u64,
    pub(crate) samples: NamedSamples,
    pub(crate) tags: Vec<(String, String)>,
    /// `transaction.{type,name}` of breakdown metricsets.
    pub(crate) transaction: Option<(String, String)>,
    /// `span.{type,subtype}` of breakdown metricsets.
    pub(crate) span: Option<(String, Option<String>)>,
}

/// One sample's value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Sample {
    /// A gauge (or a counter, `counter: true`), with its unit where Kibana knows it.
    Value { value: f64, counter: bool, unit: Option<&'static str> },
    /// A histogram's buckets: values ascending, a count for each.
    Histogram { values: Vec<f64>, counts: Vec<u64> },
}

impl Sample {
    pub(crate) fn gauge(value: f64) -> Sample {
        Sample::Value { value, counter: false, unit: None }
    }
    pub(crate) fn percent(value: f64) -> Sample {
        Sample::Value { value, counter: false, unit: Some("percent") }
    }
    pub(crate) fn bytes(value: f64) -> Sample {
        Sample::Value { value, counter: false, unit: Some("byte") }
    }
    pub(crate) fn counter(value: f64) -> Sample {
        Sample::Value { value, counter: true, unit: None }
    }
}

impl MetricsetEvent {
    /// A metricset of `samples` at `timestamp` (epoch µs).
    pub(crate) fn new(timestamp: u64, samples: NamedSamples) -> MetricsetEvent {
        MetricsetEvent { timestamp, samples, ..MetricsetEvent::default() }
    }
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Sample::Value { value, counter, unit } => {
                // JSON has no NaN or infinity: a sample that is neither is sent as 0.
                map.serialize_entry("value", &if value.is_finite() { *value } else { 0.0 })?;
                if *counter {
                    map.serialize_entry("type", "counter")?;
                }
                if let Some(unit) = unit {
                    map.serialize_entry("unit", unit)?;
                }
            }
            Sample::Histogram { values, counts } => {
                map.serialize_entry("type", "histogram")?;
                map.serialize_entry("values", values)?;
                map.serialize_entry("counts", counts)?;
            }
        }
        map.end()
    }
}

impl Serialize for MetricsetEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Samples<'a>(&'a [(Cow<'static, str>, Sample)]);
        impl Serialize for Samples<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (name, sample) in self.0 {
                    map.serialize_entry(name, sample)?;
                }
                map.end()
            }
        }
        struct Tags<'a>(&'a [(String, String)]);
        impl Serialize for Tags<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (k, v) in self.0 {
                    map.serialize_entry(k, crate::model::event::truncate(v))?;
                }
                map.end()
            }
        }
        #[derive(Serialize)]
        struct Tx<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            name: &'a str,
        }
        #[derive(Serialize)]
        struct Span<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            subtype: Option<&'a str>,
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            timestamp: u64,
            samples: Samples<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            tags: Option<Tags<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            transaction: Option<Tx<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            span: Option<Span<'a>>,
        }
        use crate::model::event::truncate;
        Wire {
            timestamp: self.timestamp,
            samples: Samples(&self.samples),
            tags: (!self.tags.is_empty()).then_some(Tags(&self.tags)),
            transaction: self.transaction.as_ref().map(|(k, n)| Tx { kind: truncate(k), name: truncate(n) }),
            span: self.span.as_ref().map(|(k, sub)| Span { kind: truncate(k), subtype: sub.as_deref().map(truncate) }),
        }
        .serialize(s)
    }
}
