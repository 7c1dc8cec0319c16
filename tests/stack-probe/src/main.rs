//! `cargo run --profile probe-nodebug -p stack-probe` (names) and
//! `cargo run --profile probe-lines -p stack-probe -- --lines` (names, files and lines).

use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{capture_error, transaction, Agent};
use serde_json::Value;

#[derive(Debug)]
struct ProbeError;

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe failed")
    }
}

impl std::error::Error for ProbeError {}

#[inline(never)]
fn probe_failing_function() {
    capture_error(&ProbeError);
    std::hint::black_box(());
}

#[inline(never)]
#[transaction]
fn probe_panicking_job() {
    panic!("probe panic");
}

fn main() {
    let lines = std::env::args().any(|a| a == "--lines");
    let sink = MemorySink::new();
    let agent = Agent::builder().sink(sink.clone()).build().expect("agent");
    let _default = agent.set_default();
    let tx = agent.transaction("probe").start();
    tx.context().in_scope(probe_failing_function);
    tx.end();
    std::thread::scope(|s| {
        s.spawn(|| {
            let _default = agent.set_default();
            let _ = std::panic::catch_unwind(probe_panicking_job);
        });
    });
    agent.flush(Duration::from_secs(10));

    let errors = sink.errors();
    let mut failures = Vec::new();
    for (name, want) in [("probe failed", "probe_failing_function"), ("probe panic", "probe_panicking_job")] {
        let Some(error) = errors.iter().find(|e| e["exception"]["message"] == name) else {
            failures.push(format!("no error event {name:?}"));
            continue;
        };
        let frames = error["exception"]["stacktrace"].as_array().cloned().unwrap_or_default();
        let top = frames.first().cloned().unwrap_or(Value::Null);
        println!("{name}: top frame {top}");
        if !top["function"].as_str().is_some_and(|f| f.starts_with(want)) {
            failures.push(format!("{name}: top frame is not {want}: {top}"));
        }
        if lines {
            if !top["filename"].as_str().is_some_and(|f| f.ends_with("src/main.rs")) || !top["lineno"].is_u64() {
                failures.push(format!("{name}: no file and line with debug = 1: {top}"));
            }
            if top["library_frame"] != false {
                failures.push(format!("{name}: the application's frame is marked a library's: {top}"));
            }
        }
    }
    if failures.is_empty() {
        println!("stack-probe: ok ({})", if lines { "names, files and lines" } else { "names" });
    } else {
        for f in &failures {
            eprintln!("stack-probe: {f}");
        }
        std::process::exit(1);
    }
}
