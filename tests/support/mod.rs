//! Shared by the integration tests: Elastic's intake schemas, and an agent wired to memory.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, Config};
use serde_json::Value;

pub mod intake;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apm-server-spec");

/// Elastic APM Server's draft-07 validators, one per intake event type.
pub struct Schemas {
    metadata: jsonschema::Validator,
    transaction: jsonschema::Validator,
    span: jsonschema::Validator,
    error: jsonschema::Validator,
    metricset: jsonschema::Validator,
}

pub fn schemas() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| {
        let load = |name: &str| {
            let path = format!("{SPEC}/{name}.json");
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let schema: Value = serde_json::from_str(&text).unwrap();
            jsonschema::draft7::new(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
        };
        Schemas {
            metadata: load("metadata"),
            transaction: load("transaction"),
            span: load("span"),
            error: load("error"),
            metricset: load("metricset"),
        }
    })
}

impl Schemas {
    /// Validates one intake object of type `kind`; the error lists every violation.
    pub fn check(&self, kind: &str, value: &Value) -> Result<(), String> {
        let v = match kind {
            "metadata" => &self.metadata,
            "transaction" => &self.transaction,
            "span" => &self.span,
            "error" => &self.error,
            "metricset" => &self.metricset,
            other => return Err(format!("unknown event type {other:?}")),
        };
        let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{kind} {value} violates the schema:\n  {}", errors.join("\n  ")))
        }
    }

    /// Validates a whole intake body: the metadata line first, then events. Returns the events.
    pub fn check_ndjson(&self, body: &str) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for (i, line) in body.lines().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i} is not JSON: {e}: {line}"));
            let obj = v.as_object().expect("each line is an object");
            assert_eq!(obj.len(), 1, "line {i} has exactly one key: {line}");
            let (kind, inner) = obj.iter().next().unwrap();
            assert_eq!(i == 0, kind == "metadata", "metadata comes first and only first: {line}");
            self.check(kind, inner).unwrap();
            out.push((kind.clone(), inner.clone()));
        }
        out
    }
}

/// An agent reporting to memory, with the given config tweaks.
pub fn memory_agent(
    config: impl FnOnce(apm_runtime::ConfigBuilder) -> apm_runtime::ConfigBuilder,
) -> (Agent, MemorySink) {
    let sink = MemorySink::new();
    let config: Config = config(Config::builder().service_name("test-service")).build().unwrap();
    let agent = Agent::builder().config(config).sink(sink.clone()).build().unwrap();
    (agent, sink)
}

pub fn flush(agent: &Agent) {
    assert!(agent.flush(Duration::from_secs(10)), "the reporter flushed in time");
}

/// Finds the one event with `name`.
pub fn named<'a>(events: &'a [Value], name: &str) -> &'a Value {
    let found: Vec<&Value> = events.iter().filter(|e| e["name"] == name).collect();
    assert_eq!(found.len(), 1, "exactly one event named {name:?} in {events:#?}");
    found[0]
}

/// Waits until `sink` holds `n` transactions, flushing as it goes (an HTTP layer ends some after
/// the response went out, or when the server notices a connection closed), for at most 10 s.
#[allow(dead_code)]
pub fn wait_for_transactions(agent: &Agent, sink: &MemorySink, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        flush(agent);
        let txs = sink.transactions();
        if txs.len() >= n || std::time::Instant::now() > deadline {
            return txs;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
