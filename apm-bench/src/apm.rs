//! `apm-runtime`, through its manual API (what the `#[span]`/`#[transaction]` macros expand to).
//!
//! TODO(macros): once `apm_runtime::span` / `apm_runtime::transaction` exist as attribute
//! macros, add `child_macro` (`#[span] fn child(x: u64) -> u64 { work::tiny(x) }`) next to
//! [`child`], a `s1_root_100_macro` calling it, and register both as the `apm (macros)` variant
//! in `scenarios::Lib` (one enum variant and one match arm per scenario).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use apm_runtime::report::{Sink, SinkContext};
use apm_runtime::{Agent, Config, Context, Event, Span, Transaction};

use crate::work;

/// Events the benchmark sinks have serialized (all agents of this process).
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// A sink that does what a real one does with each event short of the network: serializes it
/// as the intake's NDJSON line into a reused buffer, counts it, reports it sent, discards it.
#[derive(Default)]
pub struct SerializeSink {
    buf: Vec<u8>,
    bytes: Arc<AtomicU64>,
}

impl Sink for SerializeSink {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        self.buf.clear();
        event.write_ndjson(&mut self.buf);
        self.bytes.fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        DELIVERED.fetch_add(1, Ordering::Relaxed);
        ctx.record_sent(1);
    }
}

fn build(sample_rate: f64) -> Agent {
    let config = Config::builder()
        .service_name("apm-bench")
        .transaction_sample_rate(sample_rate)
        .build()
        .expect("valid benchmark config");
    Agent::builder().config(config).sink(SerializeSink::default()).build().expect("agent starts")
}

/// The sampled agent (sample rate 1, default limits: 500 spans per transaction, queue 2048).
pub fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| build(1.0))
}

/// An agent with `TRANSACTION_SAMPLE_RATE=0`, for scenario 2.
pub fn unsampled_agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| build(0.0))
}

/// Waits until every event ended so far has been handed to (and serialized by) the sink.
pub fn flush() {
    assert!(agent().flush(Duration::from_secs(30)), "apm agent flush timed out");
}

/// Events dropped by the sampled agent (must stay 0, or the benchmark measured the drop path).
pub fn dropped() -> u64 {
    agent().stats().dropped.total() + unsampled_agent().stats().dropped.total()
}

/// A child span as the `#[span]` macro lays it out: start, make current for the body, end.
#[inline(never)]
pub fn child(x: u64) -> u64 {
    let span = Span::start("child");
    let _in_span = span.attach();
    work::tiny(x)
}

/// A child span started and ended, never made current (the cheapest manual use).
#[inline(never)]
pub fn child_start_only(x: u64) -> u64 {
    let span = Span::start("child");
    let r = work::tiny(x);
    span.end();
    r
}

/// Scenario 1: a transaction with 100 child spans, on the calling thread.
#[inline(never)]
pub fn s1_root_100(child: fn(u64) -> u64) -> u64 {
    let tx = agent().transaction("root").start();
    let _active = tx.attach();
    let mut acc = 0;
    for i in 0..100 {
        acc ^= child(i);
    }
    drop(_active);
    tx.end();
    acc
}

/// Scenario 2 (sampling 0): starts an unsampled transaction; spans under it are not recorded.
pub fn unsampled_transaction() -> Transaction {
    unsampled_agent().transaction("unsampled").start()
}

/// Scenario 3: the current context, captured to carry to another thread.
#[inline(always)]
pub fn capture() -> Context {
    Context::current()
}

/// Scenario 3/4: what runs on the other thread: attach the captured context, one span around
/// `body`, close.
#[inline(never)]
pub fn run_captured(ctx: Context, body: fn() -> u64) {
    let _g = ctx.attach();
    let span = Span::start("job");
    let _in_span = span.attach();
    std::hint::black_box(body());
}
