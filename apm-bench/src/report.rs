//! Scenario 5: the reporter's own work on one core — serialize each event as an intake NDJSON
//! line and gzip it (flate2, `Compression::fast()`, as `IntakeSink` does) — against the floor:
//! `#[derive(Serialize)]` structs holding the same values, `serde_json::to_writer`, and the same
//! compressor, producing byte-for-byte the same output.

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, Config, Event, Span};
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::{Deserialize, Serialize};

/// Events per batch (one batch = one compressed request body).
pub const BATCH: usize = 1000;

/// A recorded batch: the runtime's events, and the floor's plain structs with the same content.
pub struct Batch {
    /// What the agent's reporter thread receives.
    pub events: Vec<Event>,
    /// The same events as plain derived structs (owned strings), for the floor.
    pub plain: Vec<PlainLine>,
}

/// A span line, as a plain serde struct.
#[derive(Serialize, Deserialize)]
pub struct PlainSpan {
    id: String,
    trace_id: String,
    parent_id: String,
    transaction_id: String,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    subtype: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    timestamp: u64,
    duration: f64,
    sync: bool,
    outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_rate: Option<f64>,
}

/// `span_count` of a transaction line.
#[derive(Serialize, Deserialize)]
pub struct PlainSpanCount {
    started: u32,
    dropped: u32,
}

/// A transaction line, as a plain serde struct.
#[derive(Serialize, Deserialize)]
pub struct PlainTransaction {
    id: String,
    trace_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<String>,
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<String>,
    outcome: String,
    timestamp: u64,
    duration: f64,
    sampled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sample_rate: Option<f64>,
    span_count: PlainSpanCount,
}

/// One NDJSON line: `{"span":{…}}` or `{"transaction":{…}}`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlainLine {
    /// A span.
    Span(PlainSpan),
    /// A transaction.
    Transaction(PlainTransaction),
}

/// Spans per transaction in [`record_batch`] and in the delivery benchmark (`src/bin/delivery.rs`),
/// under apm-runtime's default limit of 500 spans per transaction.
pub const SPANS_PER_TRANSACTION: usize = 249;

/// The `i`-th span of a transaction, started under the current one: a db query, an outgoing
/// HTTP call whose name is built at run time, and a plain app span, in turn. What
/// [`record_batch`] records and what the delivery benchmark ends, so that its encoder-only
/// figure and the agent's reporter work on the same events.
pub fn app_span(i: usize) -> Span {
    match i % 3 {
        0 => Span::builder("SELECT * FROM orders WHERE id = ?")
            .with_type("db")
            .subtype("postgresql")
            .action("query")
            .start(),
        1 => Span::builder(Cow::Owned(format!("GET inventory/{i}")))
            .with_type("external")
            .subtype("http")
            .action("GET")
            .start(),
        _ => Span::start("render"),
    }
}

/// Records [`BATCH`] events the way an application does (4 transactions of 249 spans: db,
/// external and app spans with subtype/action), and the floor's copy of them. Checks that both
/// serialize to the same bytes.
pub fn record_batch() -> Batch {
    let sink = MemorySink::new();
    // Transactions and spans only: no metricsets at shutdown.
    let config = Config::builder().service_name("apm-bench").metrics_interval(Duration::ZERO).build().expect("config");
    let agent = Agent::builder().config(config).sink(sink.clone()).build().expect("agent");
    for t in 0..4 {
        let mut tx = agent.transaction(format!("GET /orders/{t}")).with_type("request").start();
        let _active = tx.attach();
        for i in 0..SPANS_PER_TRANSACTION {
            app_span(i).end();
        }
        drop(_active);
        tx.set_result("HTTP 2xx");
        tx.end();
    }
    assert!(agent.flush(Duration::from_secs(30)));
    drop(agent);
    let events = sink.events();
    assert_eq!(events.len(), BATCH);
    let mut line = Vec::new();
    let mut plain = Vec::with_capacity(events.len());
    for e in &events {
        line.clear();
        e.write_ndjson(&mut line);
        let p: PlainLine = serde_json::from_slice(&line).expect("our line parses as the plain struct");
        let mut again = serde_json::to_vec(&p).expect("serializes");
        again.push(b'\n');
        assert_eq!(again, line, "the floor must produce the same bytes");
        plain.push(p);
    }
    Batch { events, plain }
}

/// The reporter path: each event through `Event::write_ndjson` into a reused line buffer, into
/// a gzip stream (`Compression::fast()`), as `IntakeSink::write` does. Returns the compressed
/// body (reuse it as `out` next time).
pub fn compress_events(events: &[Event], line: &mut Vec<u8>, out: Vec<u8>) -> Vec<u8> {
    let mut gz = GzEncoder::new(out, Compression::fast());
    for e in events {
        line.clear();
        e.write_ndjson(line);
        gz.write_all(line).expect("write to Vec");
    }
    gz.finish().expect("finish to Vec")
}

/// The floor: the same lines from plain derived structs with `serde_json::to_writer`, through the
/// same compressor.
pub fn compress_plain(plain: &[PlainLine], line: &mut Vec<u8>, out: Vec<u8>) -> Vec<u8> {
    let mut gz = GzEncoder::new(out, Compression::fast());
    for p in plain {
        line.clear();
        serde_json::to_writer(&mut *line, p).expect("serialize");
        line.push(b'\n');
        gz.write_all(line).expect("write to Vec");
    }
    gz.finish().expect("finish to Vec")
}
