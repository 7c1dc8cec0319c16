//! Issue 16: what capturing an error costs the calling thread with its stack trace (30 frames
//! deep), beside `std::backtrace::Backtrace::force_capture` at the same depth (the anchor: what a
//! Rust program pays for a backtrace without us); and what a span above
//! `SPAN_STACK_TRACE_MIN_DURATION` costs beside one below it.
//!
//! `cargo bench -p apm-bench --bench errors`. The agents deliver through their reporter thread
//! into a sink that serializes every event (frames resolved there, off the measured thread).
//! Criterion's groups first, then interleaved rounds whose medians give the ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use apm_bench::apm::BenchSink;
use apm_runtime::{capture_error, Agent, Config, Span};
use criterion::{criterion_group, criterion_main, Criterion};

/// Frames of application code under the capture: the "30-frame stack".
const DEPTH: usize = 30;

#[inline(never)]
fn deep<R>(n: usize, f: &mut dyn FnMut() -> R) -> R {
    if n == 0 {
        return f();
    }
    let r = deep(n - 1, f);
    // Keeps each level a real frame (no tail call).
    black_box(n);
    r
}

fn agent(span_stack_min: Option<Duration>) -> Agent {
    let config = Config::builder()
        .service_name("apm-bench")
        .span_stack_trace_min_duration(span_stack_min)
        .build()
        .expect("valid config");
    Agent::builder().config(config).sink(BenchSink::default()).build().expect("agent starts")
}

struct Setup {
    agent: Agent,
    /// Every span above the threshold (0): each one takes its stack.
    all_spans: Agent,
    err: std::io::Error,
}

fn setup() -> Setup {
    Setup {
        agent: agent(Some(Duration::from_millis(5))),
        all_spans: agent(Some(Duration::ZERO)),
        err: std::io::Error::other("disk full"),
    }
}

fn capture_30(s: &Setup) {
    let tx = s.agent.transaction("bench").start();
    let ctx = tx.context();
    let _a = ctx.attach();
    black_box(deep(DEPTH, &mut || capture_error(&s.err)));
    drop(_a);
    drop(tx);
}

fn anchor_30() {
    let trace = deep(DEPTH, &mut std::backtrace::Backtrace::force_capture);
    black_box(&trace);
}

fn spans(agent: &Agent, n: usize) {
    let tx = agent.transaction("bench").start();
    let _a = tx.attach();
    for _ in 0..n {
        let s = Span::start("work");
        black_box(&s);
        s.end();
    }
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("errors");
    g.bench_function("capture_error_30_frames", |b| b.iter(|| capture_30(&s)));
    g.bench_function("backtrace_force_capture_30_frames", |b| b.iter(anchor_30));
    g.bench_function("100_spans_below_threshold", |b| b.iter(|| spans(&s.agent, 100)));
    g.bench_function("100_spans_above_threshold", |b| b.iter(|| spans(&s.all_spans, 100)));
    g.finish();

    // Interleaved rounds: medians of per-operation times, and their ratios.
    const ROUNDS: usize = 15;
    const N: usize = 200;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        for _ in 0..N {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / N as f64
    };
    let mut rows: [Vec<f64>; 4] = Default::default();
    for _ in 0..ROUNDS {
        rows[0].push(time(&mut || capture_30(&s)));
        rows[1].push(time(&mut anchor_30));
        rows[2].push(time(&mut || spans(&s.agent, 100)) / 100.0);
        rows[3].push(time(&mut || spans(&s.all_spans, 100)) / 100.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [mut capture, mut anchor, mut below, mut above] = rows;
    let (capture, anchor, below, above) =
        (median(&mut capture), median(&mut anchor), median(&mut below), median(&mut above));
    println!("interleaved rounds: {ROUNDS} x {N} per variant, medians");
    println!("  capture_error, 30 frames deep           {capture:8.2} µs (budget 20 µs)");
    println!("  Backtrace::force_capture, 30 frames     {anchor:8.2} µs   ratio {:.2}", capture / anchor);
    println!("  span below SPAN_STACK_TRACE_MIN_DURATION {:7.0} ns", below * 1000.0);
    println!("  span above it (stack taken)             {:8.2} µs", above);
    s.agent.flush(Duration::from_secs(10));
    s.all_spans.flush(Duration::from_secs(10));
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
