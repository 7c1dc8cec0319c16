//! A sink that keeps events in memory: for tests, and for tools that inspect a trace.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Sink, SinkContext};
use crate::model::event::Event;
use crate::waterfall::{Row, Waterfall};

/// Keeps every event (and the metadata) in memory. Clones share the same storage, so keep one
/// clone and give the other to the agent.
///
/// ```
/// use apm_runtime::{Agent, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// agent.transaction("t").start().end();
/// agent.flush(std::time::Duration::from_secs(5));
/// assert_eq!(sink.transactions().len(), 1);
/// assert!(sink.ndjson().starts_with("{\"metadata\":"));
/// ```
#[derive(Clone, Default)]
pub struct MemorySink {
    inner: Arc<Mutex<Stored>>,
}

#[derive(Default)]
struct Stored {
    metadata: Option<Value>,
    events: Vec<Event>,
}

impl MemorySink {
    /// An empty sink.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().events().is_empty());
    /// ```
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    fn stored(&self) -> std::sync::MutexGuard<'_, Stored> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every event received so far, in order.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().events().is_empty());
    /// ```
    pub fn events(&self) -> Vec<Event> {
        self.stored().events.clone()
    }

    /// The events as the JSON objects the intake API receives (the inner object of each line),
    /// paired with their type (`"transaction"`, `"span"`, `"error"`).
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().json().is_empty());
    /// ```
    pub fn json(&self) -> Vec<(&'static str, Value)> {
        self.stored()
            .events
            .iter()
            .map(|e| {
                let mut line = Vec::new();
                e.write_ndjson(&mut line);
                let mut v: Value = serde_json::from_slice(&line).expect("events serialize to valid JSON");
                (e.kind(), v[e.kind()].take())
            })
            .collect()
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.json().into_iter().filter(|(k, _)| *k == kind).map(|(_, v)| v).collect()
    }

    /// The transactions received, as intake JSON.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().transactions().is_empty());
    /// ```
    pub fn transactions(&self) -> Vec<Value> {
        self.of_kind("transaction")
    }

    /// The spans received, as intake JSON.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().spans().is_empty());
    /// ```
    pub fn spans(&self) -> Vec<Value> {
        self.of_kind("span")
    }

    /// The errors received, as intake JSON.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().errors().is_empty());
    /// ```
    pub fn errors(&self) -> Vec<Value> {
        self.of_kind("error")
    }

    /// The metricsets received, as intake JSON.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().metricsets().is_empty());
    /// ```
    pub fn metricsets(&self) -> Vec<Value> {
        self.of_kind("metricset")
    }

    /// The metadata object (the inner object of the `metadata` line), once an event arrived.
    ///
    /// ```
    /// assert!(apm_runtime::report::MemorySink::new().metadata().is_none());
    /// ```
    pub fn metadata(&self) -> Option<Value> {
        self.stored().metadata.clone()
    }

    /// Everything as one intake request body would carry it: the metadata line, then one line
    /// per event.
    ///
    /// ```
    /// assert_eq!(apm_runtime::report::MemorySink::new().ndjson(), "");
    /// ```
    pub fn ndjson(&self) -> String {
        let stored = self.stored();
        let mut out = Vec::new();
        if let Some(m) = &stored.metadata {
            serde_json::to_writer(&mut out, &serde_json::json!({ "metadata": m })).expect("JSON");
            out.push(b'\n');
        }
        for e in &stored.events {
            e.write_ndjson(&mut out);
        }
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }

    /// The trace(s) received, laid out as a waterfall (see [`crate::waterfall`]).
    ///
    /// ```
    /// use apm_runtime::{Agent, Span, report::MemorySink};
    /// let sink = MemorySink::new();
    /// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    /// let tx = agent.transaction("GET /").start();
    /// tx.context().in_scope(|| Span::start("render").end());
    /// tx.end();
    /// agent.flush(std::time::Duration::from_secs(5));
    /// let text = sink.waterfall().render_text(100, false);
    /// assert!(text.contains("render"));
    /// ```
    pub fn waterfall(&self) -> Waterfall {
        Waterfall::new(self.rows())
    }

    /// The events as waterfall rows, to combine with other services' rows into one
    /// [`Waterfall`] of a distributed trace.
    ///
    /// ```
    /// let rows = apm_runtime::report::MemorySink::new().rows();
    /// assert!(rows.is_empty());
    /// ```
    pub fn rows(&self) -> Vec<Row> {
        let stored = self.stored();
        let service = stored.metadata.as_ref().and_then(|m| m["service"]["name"].as_str()).unwrap_or("").to_string();
        stored.events.iter().filter_map(|e| Row::from_event(e, &service)).collect()
    }

    /// Forgets everything received.
    ///
    /// ```
    /// apm_runtime::report::MemorySink::new().clear();
    /// ```
    pub fn clear(&self) {
        self.stored().events.clear();
    }
}

impl Sink for MemorySink {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        let mut stored = self.stored();
        if stored.metadata.is_none() {
            stored.metadata = serde_json::to_value(ctx.metadata()).ok();
        }
        stored.events.push(event.clone());
        ctx.record_sent(1);
    }

    /// Its lock is held only to copy events in or out.
    fn never_blocks(&self) -> bool {
        true
    }
}
