//! `apm-runtime`, through its manual API (what the `#[span]`/`#[transaction]` macros expand to)
//! and through the macros themselves (the `*_macro` functions).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use apm_runtime::report::{Sink, SinkContext};
use apm_runtime::{Agent, Config, Context, Event, Span, Transaction};

use crate::jobs::{Job, S4_TASKS};
use crate::work;

/// Events the benchmark sinks were handed (all agents of this process).
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Of those, the events they serialized.
pub static SERIALIZED: AtomicU64 = AtomicU64::new(0);

/// Whether the sinks serialize what they are handed (the default). Scenario 1's total-CPU figure
/// counts until the events are handed to the sink, as it counts fastrace's until its reporter is
/// handed its batch and OTel's until its exporter is handed its batch (which it counts and
/// drops): it turns this off for its run, and a separate row shows the same work with every span
/// serialized.
pub static SERIALIZE: AtomicBool = AtomicBool::new(true);

/// A sink that does what a real one does with each event short of the network (unless
/// [`SERIALIZE`] is off): serializes it as the intake's NDJSON line into a reused buffer,
/// discards it, and reports what it handled as sent when the reporter ticks or flushes (as the
/// intake sink does per request, and as fastrace's reporter is handed batches).
#[derive(Default)]
pub struct BenchSink {
    buf: Vec<u8>,
    events: u64,
    serialized: u64,
    /// Never serializes, whatever [`SERIALIZE`] says: as an exporter that counts and drops.
    discard: bool,
}

impl BenchSink {
    /// A sink that counts and drops every event, as the OTel anchors' exporter does.
    pub fn discarding() -> BenchSink {
        BenchSink { discard: true, ..BenchSink::default() }
    }

    fn report(&mut self, ctx: &SinkContext<'_>) {
        if self.events > 0 {
            SERIALIZED.fetch_add(std::mem::take(&mut self.serialized), Ordering::Relaxed);
            DELIVERED.fetch_add(self.events, Ordering::Relaxed);
            ctx.record_sent(std::mem::take(&mut self.events));
        }
    }
}

impl Sink for BenchSink {
    fn write(&mut self, event: &Event, _ctx: &SinkContext<'_>) {
        self.events += 1;
        if !self.discard && SERIALIZE.load(Ordering::Relaxed) {
            self.buf.clear();
            event.write_ndjson(&mut self.buf);
            std::hint::black_box(&self.buf);
            self.serialized += 1;
        } else {
            std::hint::black_box(event);
        }
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, _deadline: std::time::Instant) {
        self.report(ctx);
    }

    fn tick(&mut self, ctx: &SinkContext<'_>) {
        self.report(ctx);
    }

    /// It serializes into memory and discards, as `MemorySink` keeps in memory: a flush may run
    /// it on the flushing thread (see `Sink::never_blocks`).
    fn never_blocks(&self) -> bool {
        true
    }
}

/// [`BenchSink`] keeping `Sink::never_blocks`' default (false), as the intake sink and any sink
/// that may block do: every call then runs on the reporter thread, and a flush is a wake-up of
/// the reporter and one of the caller.
#[derive(Default)]
pub struct MayBlock(BenchSink);

impl Sink for MayBlock {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        self.0.write(event, ctx);
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, deadline: std::time::Instant) {
        self.0.flush(ctx, deadline);
    }

    fn tick(&mut self, ctx: &SinkContext<'_>) {
        self.0.tick(ctx);
    }
}

/// `APM_BENCH_BREAKDOWN=off` and `APM_BENCH_COMPRESSION=off` run the suite with the breakdown
/// metrics or span compression off (both are on by default, as for users), so that a run of
/// each shows what they cost beside the same anchors.
fn switched_on(var: &str) -> bool {
    std::env::var(var).map_or(true, |v| v != "off")
}

fn build(sample_rate: f64, sink: impl Sink) -> Agent {
    let config = Config::builder()
        .service_name("apm-bench")
        .transaction_sample_rate(sample_rate)
        .breakdown_metrics(switched_on("APM_BENCH_BREAKDOWN"))
        .span_compression_enabled(switched_on("APM_BENCH_COMPRESSION"))
        .build()
        .expect("valid benchmark config");
    Agent::builder().config(config).sink(sink).build().expect("agent starts")
}

/// The sampled agent (sample rate 1, default limits: 500 spans per transaction, queue 16384). It
/// is also the process-wide default, which `#[transaction]` uses.
pub fn agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let agent = build(1.0, BenchSink::default());
        agent.install_global();
        agent
    })
}

/// An agent with `TRANSACTION_SAMPLE_RATE=0`, for scenario 2.
pub fn unsampled_agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| build(0.0, BenchSink::default()))
}

/// The sampled agent with a [`MayBlock`] sink, for scenario 1's "flushed through the reporter"
/// row.
pub fn reporter_agent() -> &'static Agent {
    static AGENT: OnceLock<Agent> = OnceLock::new();
    AGENT.get_or_init(|| build(1.0, MayBlock::default()))
}

/// Set while scenario 1 runs on [`reporter_agent`] instead of [`agent`] (the `#[transaction]`
/// rows need it as the thread's default agent too: [`on_reporter_agent`]).
pub static VIA_REPORTER: AtomicBool = AtomicBool::new(false);

/// Runs `f` with scenario 1 on [`reporter_agent`]: the manual rows pick it through
/// [`VIA_REPORTER`], the macros as the thread's default agent.
pub fn on_reporter_agent<R>(f: impl FnOnce() -> R) -> R {
    let _default = reporter_agent().set_default();
    VIA_REPORTER.store(true, Ordering::Relaxed);
    let out = f();
    VIA_REPORTER.store(false, Ordering::Relaxed);
    out
}

/// The agent scenario 1 runs on.
fn s1_agent() -> &'static Agent {
    if VIA_REPORTER.load(Ordering::Relaxed) {
        reporter_agent()
    } else {
        agent()
    }
}

/// Waits until every event ended so far has been handed to (and serialized by) the sink.
pub fn flush() {
    assert!(s1_agent().flush(Duration::from_secs(30)), "apm agent flush timed out");
}

/// Events dropped by the sampled agent (must stay 0, or the benchmark measured the drop path).
pub fn dropped() -> u64 {
    [agent(), unsampled_agent(), reporter_agent()].iter().map(|a| a.stats().dropped.total()).sum()
}

/// A child span as the `#[span]` macro lays it out: the body in `Span::in_scope` (start, make
/// current for the body, end; with nothing to record, the body alone).
#[inline(never)]
pub fn child(x: u64) -> u64 {
    Span::in_scope("child", || work::tiny(x))
}

/// A child span started and ended, never made current (the cheapest manual use).
#[inline(never)]
pub fn child_start_only(x: u64) -> u64 {
    let span = Span::start("child");
    let r = work::tiny(x);
    span.end();
    r
}

/// An exit span with `context.db`, as an instrumented database client records it: type,
/// subtype and action, the statement and rows affected (the statement's copy is the
/// allocation this costs beyond a plain span).
#[inline(never)]
pub fn child_exit_db(x: u64) -> u64 {
    let mut span = Span::builder("SELECT users").with_type("db").subtype("sqlite").action("query").start();
    let r = work::tiny(x);
    span.set_db(apm_runtime::DbContext {
        kind: "sql".into(),
        instance: Some("app.db".into()),
        statement: Some("SELECT name FROM users WHERE id = ?1".into()),
        rows_affected: Some(1),
        ..Default::default()
    });
    span.end();
    r
}

/// Scenario 1: a transaction with 100 child spans, on the calling thread.
#[inline(never)]
pub fn s1_root_100(child: fn(u64) -> u64) -> u64 {
    let tx = s1_agent().transaction("root").start();
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
/// `body` (as `#[span]` lays it out), close.
#[inline(never)]
pub fn run_captured(ctx: Context, body: fn() -> u64) {
    let _g = ctx.attach();
    Span::in_scope("job", || std::hint::black_box(body()));
}

/// A child span through the `#[span]` macro.
#[apm_runtime::span(name = "child")]
#[inline(never)]
pub fn child_macro(x: u64) -> u64 {
    work::tiny(x)
}

/// Scenario 1 through the macros: a `#[transaction]` fn calling 100 `#[span]` fns.
#[apm_runtime::transaction(name = "root")]
#[inline(never)]
pub fn s1_root_100_macro() -> u64 {
    let mut acc = 0;
    for i in 0..100 {
        acc ^= child_macro(i);
    }
    acc
}

/// The job's span in scenario 3, through `#[span]`.
#[apm_runtime::span(name = "job")]
#[inline(never)]
pub fn job_macro() {
    std::hint::black_box(work::tiny(7));
}

/// Scenario 3 through the macros: a `#[transaction]` fn whose `move` closures carry the context
/// (the macro captures it where each closure is created and attaches it where it runs).
#[apm_runtime::transaction(name = "root")]
#[inline(never)]
pub fn s3_root_macro(k: u64, push: &mut dyn FnMut(Job)) {
    for _ in 0..k {
        push(Box::new(move || job_macro()));
    }
}

/// The task's span in scenario 4, through `#[span]`.
#[apm_runtime::span(name = "task")]
#[inline(never)]
pub fn task_macro() {
    std::hint::black_box(work::task_work());
}

/// Scenario 4 through the macros: a `#[transaction]` fn handing 64 `move` closures to the pool.
#[apm_runtime::transaction(name = "fan-out")]
#[inline(never)]
pub fn s4_fanout_macro(pool: &threadpool::ThreadPool) {
    for _ in 0..S4_TASKS {
        pool.execute(move || task_macro());
    }
    pool.join();
}
