//! Shared helpers for the integration tests: an agent writing to a `MemorySink`.
#![allow(dead_code)]

use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, DefaultGuard};
use serde_json::Value;

pub struct Recorded {
    pub transactions: Vec<Value>,
    pub spans: Vec<Value>,
    pub errors: Vec<Value>,
}

impl Recorded {
    pub fn tx(&self, name: &str) -> &Value {
        self.transactions
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no transaction {name:?} in {:#?}", self.transactions))
    }
    pub fn span(&self, name: &str) -> &Value {
        self.spans.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no span {name:?} in {:#?}", self.spans))
    }
    pub fn spans_named(&self, name: &str) -> Vec<&Value> {
        self.spans.iter().filter(|s| s["name"] == name).collect()
    }
}

/// Runs `f` with a fresh agent as this thread's default, then flushes and returns what it recorded.
pub fn record(f: impl FnOnce()) -> Recorded {
    let sink = MemorySink::new();
    let agent = Agent::builder().sink(sink.clone()).build().unwrap();
    {
        let _default: DefaultGuard = agent.set_default();
        f();
    }
    assert!(agent.flush(Duration::from_secs(5)), "flush timed out");
    Recorded { transactions: sink.transactions(), spans: sink.spans(), errors: sink.errors() }
}

/// Asserts `child` is a direct child of `parent` (a transaction or span) in the same trace,
/// under transaction `tx`, with the given `sync` flag.
pub fn assert_child(child: &Value, parent: &Value, tx: &Value, sync: bool) {
    assert_eq!(child["parent_id"], parent["id"], "parent of {child:#}");
    assert_eq!(child["transaction_id"], tx["id"], "transaction of {child:#}");
    assert_eq!(child["trace_id"], tx["trace_id"], "trace of {child:#}");
    assert_eq!(child["sync"], sync, "sync flag of {child:#}");
}
