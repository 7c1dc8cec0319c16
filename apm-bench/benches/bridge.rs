//! Issue 18: what a bridged `tracing` span costs, beside the anchor for bridging `tracing`:
//! `tracing-opentelemetry` with the OpenTelemetry SDK's batch exporter.
//!
//! `cargo bench -p apm-bench --bench bridge`. The workload, the same for each: a root `tracing`
//! span (a transaction for us, a root span for OTel) and 100 child spans with one field each,
//! entered and closed in turn. Rows:
//! - `registry`: `tracing_subscriber::registry()` with no layer: what `tracing` itself costs;
//! - `apm`: the registry with `apm_runtime::integrations::tracing::layer()`, an agent whose
//!   sink may block (so every event goes through the reporter thread, as with the intake),
//!   counting until each span is handed to the sink, as OTel's is counted until its exporter is
//!   handed it (see `apm_bench::apm::SERIALIZE`);
//! - `apm-serialized`: the same, the sink writing each span's intake JSON (informative: OTel's
//!   exporter here encodes nothing);
//! - `otel`: the registry with `tracing_opentelemetry::layer()` on an SDK tracer with the batch
//!   span processor and an exporter that counts and drops.
//!
//! Two figures per row: the calling thread's CPU per span (the application's cost), and the
//! whole process's CPU per span until every span is handed over (flushed through the reporter,
//! `force_flush`ed through the batch processor). Criterion's groups first, then interleaved
//! rounds whose medians give the ratios, each round measuring every row within a second.

use std::hint::black_box;
use std::time::Duration;

use std::sync::atomic::Ordering;

use apm_bench::apm::{MayBlock, SERIALIZE};
use apm_bench::cpu::{process_cpu_time, thread_cpu_time};
use apm_bench::{otel, work};
use apm_runtime::{Agent, Config};
use criterion::{criterion_group, criterion_main, Criterion};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

const CHILDREN: u64 = 100;
/// Iterations between flushes: ~2000 spans, as a busy service hands over its batches.
const FLUSH_EVERY: u64 = 20;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Row {
    Registry,
    Apm,
    ApmSerialized,
    Otel,
}

impl Row {
    const ALL: [Row; 4] = [Row::Registry, Row::Apm, Row::ApmSerialized, Row::Otel];

    fn name(self) -> &'static str {
        match self {
            Row::Registry => "registry",
            Row::Apm => "apm",
            Row::ApmSerialized => "apm-serialized",
            Row::Otel => "otel",
        }
    }
}

struct Setup {
    agent: Agent,
    registry: Dispatch,
    apm: Dispatch,
    otel: Dispatch,
}

impl Setup {
    fn new() -> Setup {
        let config = Config::builder().service_name("apm-bench").build().expect("valid config");
        let agent = Agent::builder().config(config).sink(MayBlock::default()).build().expect("agent starts");
        otel::init();
        Setup {
            agent,
            registry: Dispatch::new(tracing_subscriber::registry()),
            apm: Dispatch::new(tracing_subscriber::registry().with(apm_runtime::integrations::tracing::layer())),
            otel: Dispatch::new(
                tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(otel::tracer().clone())),
            ),
        }
    }

    fn dispatch(&self, row: Row) -> &Dispatch {
        match row {
            Row::Registry => &self.registry,
            Row::Apm | Row::ApmSerialized => &self.apm,
            Row::Otel => &self.otel,
        }
    }

    fn flush(&self, row: Row) {
        match row {
            Row::Registry => {}
            Row::Apm | Row::ApmSerialized => assert!(self.agent.flush(Duration::from_secs(30)), "apm flush timed out"),
            Row::Otel => otel::flush(),
        }
    }

    /// `iters` iterations of the workload under `row`: (calling thread's CPU without the
    /// flushes, the process's CPU with them), and the spans made.
    fn run(&self, row: Row, iters: u64) -> (Duration, Duration, u64) {
        let _default = self.agent.set_default();
        SERIALIZE.store(row == Row::ApmSerialized, Ordering::Relaxed);
        tracing::dispatcher::with_default(self.dispatch(row), || {
            let process = process_cpu_time();
            let mut calling = Duration::ZERO;
            for i in 0..iters {
                let t = thread_cpu_time();
                black_box(iteration());
                calling += thread_cpu_time() - t;
                if (i + 1) % FLUSH_EVERY == 0 {
                    self.flush(row);
                }
            }
            self.flush(row);
            (calling, process_cpu_time() - process, iters * (CHILDREN + 1))
        })
    }
}

#[inline(never)]
fn iteration() -> u64 {
    let root = tracing::info_span!("GET /orders", otel.kind = "server");
    let _root = root.enter();
    let mut acc = 0;
    for i in 0..CHILDREN {
        acc ^= tracing::info_span!("load", item = i).in_scope(|| work::tiny(i));
    }
    acc
}

fn criterion_groups(c: &mut Criterion, s: &Setup) {
    for (group, total) in [("bridge_calling_thread", false), ("bridge_total_cpu", true)] {
        let mut g = c.benchmark_group(group);
        for row in Row::ALL {
            g.bench_function(row.name(), |b| {
                b.iter_custom(|iters| {
                    let (calling, process, spans) = s.run(row, iters);
                    // Criterion divides by `iters`: report per iteration of 101 spans.
                    let _ = spans;
                    if total {
                        process
                    } else {
                        calling
                    }
                })
            });
        }
        g.finish();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn rounds(s: &Setup) {
    const ROUNDS: usize = 15;
    const ITERS: u64 = 200;
    let mut calling: Vec<Vec<f64>> = vec![Vec::new(); Row::ALL.len()];
    let mut total: Vec<Vec<f64>> = vec![Vec::new(); Row::ALL.len()];
    let mut ratio_calling = Vec::new();
    let mut ratio_total = Vec::new();
    let mut gap_ratio = Vec::new();
    for _ in 0..ROUNDS {
        let mut per = [(0.0, 0.0); 4];
        for (k, row) in Row::ALL.into_iter().enumerate() {
            let (c, p, spans) = s.run(row, ITERS);
            per[k] = (c.as_nanos() as f64 / spans as f64, p.as_nanos() as f64 / spans as f64);
            calling[k].push(per[k].0);
            total[k].push(per[k].1);
        }
        let (reg, apm, otel) = (per[0], per[1], per[3]);
        ratio_calling.push(apm.0 / otel.0);
        ratio_total.push(apm.1 / otel.1);
        // What each layer adds to `tracing` itself.
        gap_ratio.push((apm.0 - reg.0) / (otel.0 - reg.0));
    }
    println!("\n## bridged `tracing` spans: medians of {ROUNDS} interleaved rounds, ns per span\n");
    println!("| row | calling thread CPU | total process CPU |");
    println!("|---|---|---|");
    for (k, row) in Row::ALL.into_iter().enumerate() {
        println!("| {} | {:.0} | {:.0} |", row.name(), median(calling[k].clone()), median(total[k].clone()));
    }
    println!();
    println!("| ratio (median of per-round ratios) | value | budget |");
    println!("|---|---|---|");
    println!("| apm / otel, calling thread | {:.2} | ≤ 0.5 |", median(ratio_calling));
    println!("| apm / otel, total CPU | {:.2} | ≤ 0.5 |", median(ratio_total));
    println!("| (apm − registry) / (otel − registry), calling thread | {:.2} | informative |", median(gap_ratio));
    let stats = s.agent.stats();
    assert_eq!(stats.dropped.total(), 0, "the agent dropped events: the benchmark measured the drop path");
}

fn bench(c: &mut Criterion) {
    let s = Setup::new();
    criterion_groups(c, &s);
    rounds(&s);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
