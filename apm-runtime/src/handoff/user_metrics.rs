//! The application's own metrics (recorded through the `metrics` facade, feature `metrics`) as
//! the reporter finds them: one entry per metric name and label set, written by the
//! application's threads with atomic operations only, read by the reporter every interval.
//!
//! Registration (first use of a name and labels) takes the registry's lock; recording a value
//! never does. The registry is the process's: the `metrics` facade has one recorder per process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Sub-buckets per power of two: histogram values are kept within ~9 % (2^(1/8)).
const SUB_BUCKETS: i32 = 8;
/// The smallest power of two with buckets of its own: values below 2^-20 (~1e-6) share the
/// first bucket, as zero and negative values do.
const MIN_EXP: i32 = -20;
/// Powers of two covered: up to 2^44 (~1.7e13) — nanosecond latencies of hours fit.
const EXPONENTS: i32 = 64;
const BUCKETS: usize = (EXPONENTS * SUB_BUCKETS) as usize + 1;

/// One metric of one label set.
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) value: Value,
}

pub(crate) enum Value {
    Counter(AtomicU64),
    /// An `f64`'s bits.
    Gauge(AtomicU64),
    Histogram(Box<[AtomicU64; BUCKETS]>),
}

/// A reading of one entry for one interval.
pub(crate) enum Reading {
    Counter(u64),
    Gauge(f64),
    /// Bucket values ascending, with the values recorded in each this interval.
    Histogram(Vec<f64>, Vec<u64>),
}

// Written only through the `metrics` facade's recorder (feature `metrics`).
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
impl Entry {
    pub(crate) fn increment(&self, by: u64) {
        if let Value::Counter(c) = &self.value {
            c.fetch_add(by, Ordering::Relaxed);
        }
    }

    pub(crate) fn absolute(&self, to: u64) {
        if let Value::Counter(c) = &self.value {
            c.fetch_max(to, Ordering::Relaxed);
        }
    }

    /// Adds `by` to a gauge (negative to decrement).
    pub(crate) fn add(&self, by: f64) {
        if let Value::Gauge(g) = &self.value {
            let _ = g
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| Some((f64::from_bits(bits) + by).to_bits()));
        }
    }

    pub(crate) fn set(&self, to: f64) {
        if let Value::Gauge(g) = &self.value {
            g.store(to.to_bits(), Ordering::Relaxed);
        }
    }

    pub(crate) fn record(&self, value: f64, times: u64) {
        if let Value::Histogram(buckets) = &self.value {
            buckets[bucket(value)].fetch_add(times, Ordering::Relaxed);
        }
    }

    /// What changed since `reported` (the reader's last reading, updated here) for counters and
    /// histograms, or the value now for gauges. Each reader (each agent's reporter) keeps its
    /// own `reported`, so two agents in one process both see every increment.
    pub(crate) fn read(&self, reported: &mut Vec<u64>) -> Reading {
        let slots = match &self.value {
            Value::Counter(_) => 1,
            Value::Gauge(_) => 0,
            Value::Histogram(_) => BUCKETS,
        };
        reported.resize(slots, 0);
        match &self.value {
            Value::Counter(c) => {
                let now = c.load(Ordering::Relaxed);
                let last = std::mem::replace(&mut reported[0], now);
                Reading::Counter(now.saturating_sub(last))
            }
            Value::Gauge(g) => Reading::Gauge(f64::from_bits(g.load(Ordering::Relaxed))),
            Value::Histogram(buckets) => {
                let (mut values, mut counts) = (Vec::new(), Vec::new());
                for (i, b) in buckets.iter().enumerate() {
                    let now = b.load(Ordering::Relaxed);
                    let delta = now.saturating_sub(std::mem::replace(&mut reported[i], now));
                    if delta > 0 {
                        values.push(bucket_value(i));
                        counts.push(delta);
                    }
                }
                Reading::Histogram(values, counts)
            }
        }
    }
}

/// The bucket of `value`: logarithmic, `SUB_BUCKETS` per power of two.
fn bucket(value: f64) -> usize {
    if value.is_nan() || value <= 2f64.powi(MIN_EXP) {
        return 0;
    }
    let index = ((value.log2() - MIN_EXP as f64) * SUB_BUCKETS as f64).floor() as i64 + 1;
    index.clamp(1, BUCKETS as i64 - 1) as usize
}

/// The value a bucket stands for: its geometric middle (0 for the first).
fn bucket_value(index: usize) -> f64 {
    if index == 0 {
        return 0.0;
    }
    let low = (index as f64 - 1.0) / SUB_BUCKETS as f64 + MIN_EXP as f64;
    2f64.powf(low + 0.5 / SUB_BUCKETS as f64)
}

/// The process's registry of application metrics.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Mutex<Vec<Arc<Entry>>>,
}

/// The kind of a metric being registered.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Registry {
    /// The process's registry, made when the first metric is registered.
    pub(crate) fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(Registry::default)
    }

    /// The entry for `name` and `tags` (sorted by the caller), made on first use.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn entry(&self, kind: Kind, name: &str, tags: Vec<(String, String)>) -> Arc<Entry> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let same_kind = |e: &Entry| match e.value {
            Value::Counter(_) => kind == Kind::Counter,
            Value::Gauge(_) => kind == Kind::Gauge,
            Value::Histogram(_) => kind == Kind::Histogram,
        };
        if let Some(e) = entries.iter().find(|e| e.name == name && e.tags == tags && same_kind(e)) {
            return e.clone();
        }
        let value = match kind {
            Kind::Counter => Value::Counter(AtomicU64::new(0)),
            Kind::Gauge => Value::Gauge(AtomicU64::new(0f64.to_bits())),
            Kind::Histogram => Value::Histogram(Box::new(std::array::from_fn(|_| AtomicU64::new(0)))),
        };
        let entry = Arc::new(Entry { name: name.to_string(), tags, value });
        entries.push(entry.clone());
        entry
    }

    /// Every entry registered so far, in the order of registration (entries are never removed,
    /// so a reader may key its state by position).
    pub(crate) fn entries(&self) -> Vec<Arc<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_keep_values_within_a_tenth() {
        for v in [1e-5, 0.003, 0.25, 1.0, 7.0, 150.0, 12_345.0, 3.3e9] {
            let got = bucket_value(bucket(v));
            assert!((got / v - 1.0).abs() < 0.1, "{v} → {got}");
        }
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(-3.0), 0);
        assert!(bucket(1e300) < BUCKETS);
        let ascending: Vec<f64> = (0..BUCKETS).map(bucket_value).collect();
        assert!(ascending.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn readings_are_per_interval_and_per_reader() {
        let r = Registry::default();
        let c = r.entry(Kind::Counter, "jobs", vec![]);
        let (mut mine, mut other) = (Vec::new(), Vec::new());
        c.increment(3);
        assert!(matches!(c.read(&mut mine), Reading::Counter(3)));
        c.increment(2);
        assert!(matches!(c.read(&mut mine), Reading::Counter(2)));
        assert!(matches!(c.read(&mut other), Reading::Counter(5)), "another reader sees every increment");
        let h = r.entry(Kind::Histogram, "latency", vec![("route".into(), "/a".into())]);
        let mut last = Vec::new();
        h.record(10.0, 2);
        h.record(1000.0, 1);
        let Reading::Histogram(values, counts) = h.read(&mut last) else { panic!() };
        assert_eq!(counts, [2, 1]);
        assert!(values[0] < values[1]);
        let Reading::Histogram(_, counts) = h.read(&mut last) else { panic!() };
        assert!(counts.is_empty(), "nothing new this interval");
        assert!(Arc::ptr_eq(&h, &r.entry(Kind::Histogram, "latency", vec![("route".into(), "/a".into())])));
    }
}
