//! The side-by-side suite of issue 6: `cargo bench -p apm-bench`.
//!
//! Two passes over the same routines:
//! 1. criterion, one benchmark per scenario and library (its usual report is printed as it goes);
//! 2. interleaved rounds: every round runs every (scenario, library) once for about 40 ms, one
//!    after the other, and the summary takes medians over the rounds. On this shared 2-core
//!    machine the background load drifts by up to 2x within a minute, so comparing libraries
//!    measured seconds apart (criterion runs them back to back) can be off by that much; in a
//!    round they are measured within a second of each other, and each ratio is the median of the
//!    per-round ratios.
//!
//! Pass a criterion filter (`cargo bench -p apm-bench -- s3_`) to run a subset; the rounds then
//! cover the same scenarios.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use apm_bench::cpu::process_cpu_time;
use apm_bench::report;
use apm_bench::scenarios::{self, Lib, LiveWorker, S2Case};
use criterion::Criterion;

/// The scenarios, as benchmark groups.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum G {
    S1Calling,
    S1Cpu,
    S1CpuSerialized,
    S1CpuViaReporter,
    ExitDbCalling,
    ExitDbCpuViaReporter,
    S2NoTx,
    S2Unsampled,
    S3,
    S4,
    S5,
}

impl G {
    const ALL: [G; 11] = [
        G::S1Calling,
        G::S1Cpu,
        G::S1CpuSerialized,
        G::S1CpuViaReporter,
        G::ExitDbCalling,
        G::ExitDbCpuViaReporter,
        G::S2NoTx,
        G::S2Unsampled,
        G::S3,
        G::S4,
        G::S5,
    ];

    fn id(self) -> &'static str {
        match self {
            G::S1Calling => "s1_calling_thread",
            G::S1Cpu => "s1_total_cpu",
            G::S1CpuSerialized => "s1_total_cpu_serialized",
            G::S1CpuViaReporter => "s1_total_cpu_via_reporter",
            G::ExitDbCalling => "exit_db_calling_thread",
            G::ExitDbCpuViaReporter => "exit_db_total_cpu_via_reporter",
            G::S2NoTx => "s2_no_transaction",
            G::S2Unsampled => "s2_sampling_0",
            G::S3 => "s3_cross_thread",
            G::S4 => "s4_fan_out_64_on_4_threads",
            G::S5 => "s5_reporter_serialize_gzip",
        }
    }

    fn title(self) -> &'static str {
        match self {
            G::S1Calling => "1 root+100 children, calling thread",
            G::S1Cpu => "1 root+100 children, total process CPU until handed to the sink/reporter/exporter",
            G::S1CpuSerialized => "1 root+100 children, total process CPU, apm's sink serializing every span",
            G::S1CpuViaReporter => "1 root+100 children, total process CPU, apm's flushes through its reporter thread",
            G::ExitDbCalling => "1 root+100 db exit spans with context.db, calling thread (beside S1)",
            G::ExitDbCpuViaReporter => {
                "1 root+100 db exit spans, total process CPU through the reporter, serialized (compressible)"
            }
            G::S2NoTx => "2 span in fn, no current transaction",
            G::S2Unsampled => "2 span in fn, sampling 0",
            G::S3 => "3 capture→other thread→attach→1 span",
            G::S4 => "4 tx fanning 64 tasks on 4 threads",
            G::S5 => "5 reporter: serialize+gzip(fast)",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            G::S1Calling | G::S1Cpu | G::S1CpuSerialized | G::S1CpuViaReporter => "per child span",
            G::ExitDbCalling | G::ExitDbCpuViaReporter => "per exit span",
            G::S2NoTx | G::S2Unsampled => "per call",
            G::S3 => "per job, end to end",
            G::S4 => "per fan-out, end to end",
            G::S5 => "per event",
        }
    }

    fn libs(self) -> Vec<Lib> {
        Lib::ALL
            .into_iter()
            .filter(|&lib| match self {
                G::S1Calling | G::S1Cpu => true,
                G::S1CpuSerialized | G::S1CpuViaReporter => !matches!(lib, Lib::ApmStartOnly | Lib::Floor),
                G::ExitDbCalling => matches!(lib, Lib::Apm | Lib::Floor),
                G::ExitDbCpuViaReporter => matches!(lib, Lib::Apm | Lib::Fastrace | Lib::Otel),
                G::S2NoTx => true,
                G::S2Unsampled => scenarios::s2_function(lib, S2Case::Unsampled).is_some(),
                G::S3 | G::S4 => lib != Lib::ApmStartOnly,
                G::S5 => matches!(lib, Lib::Apm | Lib::Floor),
            })
            .collect()
    }
}

/// What the routines share: the scenario 3 worker, the scenario 4 pool, the scenario 5 batch.
struct Fixture {
    worker: LiveWorker,
    pool: threadpool::ThreadPool,
    batch: report::Batch,
    line: Vec<u8>,
    out: Vec<u8>,
}

/// Runs `iters` iterations of `g` for `lib`; returns the time to report and the operations done.
fn routine(g: G, lib: Lib, iters: u64, fx: &mut Fixture) -> (Duration, u64) {
    match g {
        G::S1Calling => calling_thread(lib, iters, || scenarios::s1_iteration(lib)),
        G::ExitDbCalling => calling_thread(lib, iters, || match lib {
            Lib::Apm => apm_bench::apm::s1_root_100(apm_bench::apm::child_exit_db),
            _ => scenarios::s1_iteration(lib),
        }),
        // Every span serialized by the reporter: what compression saves shows here.
        G::ExitDbCpuViaReporter if lib == Lib::Apm => apm_bench::apm::on_reporter_agent(|| {
            total_cpu(lib, iters, || apm_bench::apm::s1_root_100(apm_bench::apm::child_exit_db))
        }),
        G::ExitDbCpuViaReporter => s1_total_cpu(lib, iters, false),
        G::S1Cpu | G::S1CpuSerialized => s1_total_cpu(lib, iters, g == G::S1CpuSerialized),
        // The anchors run as in `S1Cpu`, so that this row's ratios are measured side by side too.
        G::S1CpuViaReporter if !lib.is_anchor() => {
            apm_bench::apm::on_reporter_agent(|| s1_total_cpu(lib, iters, false))
        }
        G::S1CpuViaReporter => s1_total_cpu(lib, iters, false),
        G::S2NoTx | G::S2Unsampled => {
            let case = if g == G::S2NoTx { S2Case::NoTransaction } else { S2Case::Unsampled };
            let f = scenarios::s2_function(lib, case).expect("filtered by G::libs");
            let t = Instant::now();
            scenarios::s2_run(lib, case, f, iters);
            (t.elapsed(), iters)
        }
        G::S3 => {
            let t = Instant::now();
            scenarios::s3_run(lib, iters, &mut fx.worker);
            (t.elapsed(), iters)
        }
        G::S4 => {
            let t = Instant::now();
            scenarios::s4_run(lib, iters, &fx.pool);
            (t.elapsed(), iters)
        }
        G::S5 => {
            let t = Instant::now();
            for _ in 0..iters {
                let out = std::mem::take(&mut fx.out);
                fx.out = if lib == Lib::Apm {
                    report::compress_events(&fx.batch.events, &mut fx.line, out)
                } else {
                    report::compress_plain(&fx.batch.plain, &mut fx.line, out)
                };
                black_box(fx.out.len());
                fx.out.clear();
            }
            (t.elapsed(), iters * report::BATCH as u64)
        }
    }
}

/// Scenario 1's total CPU: the process's CPU time over `iters` iterations and the flushes.
fn s1_total_cpu(lib: Lib, iters: u64, serialize: bool) -> (Duration, u64) {
    // Until the events are handed over: apm's sink takes them without serializing (unless
    // `serialize`), as the others' reporter and exporter take theirs (see `apm::SERIALIZE`).
    apm_bench::apm::SERIALIZE.store(serialize, std::sync::atomic::Ordering::Relaxed);
    let out = total_cpu(lib, iters, || scenarios::s1_iteration(lib));
    apm_bench::apm::SERIALIZE.store(true, std::sync::atomic::Ordering::Relaxed);
    out
}

/// The process's CPU for `iters` runs of `iteration` (100 spans each), with `lib`'s periodic
/// flushes and its final one.
fn total_cpu(lib: Lib, iters: u64, iteration: impl Fn() -> u64) -> (Duration, u64) {
    let cpu = process_cpu_time();
    for i in 0..iters {
        black_box(iteration());
        if (i + 1) % scenarios::S1_FLUSH_EVERY == 0 {
            lib.periodic_flush();
        }
    }
    lib.flush();
    (process_cpu_time() - cpu, iters * 100)
}

/// The calling thread's time for `iters` runs of `iteration` (100 spans each); `lib`'s periodic
/// flushes are not timed.
fn calling_thread(lib: Lib, iters: u64, iteration: impl Fn() -> u64) -> (Duration, u64) {
    let mut spent = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let k = left.min(scenarios::S1_FLUSH_EVERY);
        let t = Instant::now();
        for _ in 0..k {
            black_box(iteration());
        }
        spent += t.elapsed();
        left -= k;
        lib.periodic_flush();
    }
    lib.flush();
    (spent, iters * 100)
}

/// Per-operation ns of criterion's measurement samples, by (group, library).
type Samples = BTreeMap<(G, Lib), Vec<f64>>;

const SAMPLE_SIZE: usize = 20;

fn run_criterion(c: &mut Criterion, fx: &mut Fixture, samples: &mut Samples) {
    for g in G::ALL {
        let mut group = c.benchmark_group(g.id());
        for lib in g.libs() {
            group.bench_function(lib.name(), |b| {
                b.iter_custom(|iters| {
                    let (spent, ops) = routine(g, lib, iters, fx);
                    samples.entry((g, lib)).or_default().push(spent.as_nanos() as f64 / ops as f64);
                    spent
                })
            });
        }
        group.finish();
    }
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// Operations per iteration of `g`.
fn ops_per_iter(g: G) -> u64 {
    match g {
        G::S1Calling
        | G::S1Cpu
        | G::S1CpuSerialized
        | G::S1CpuViaReporter
        | G::ExitDbCalling
        | G::ExitDbCpuViaReporter => 100,
        G::S5 => report::BATCH as u64,
        G::S2NoTx | G::S2Unsampled | G::S3 | G::S4 => 1,
    }
}

const ROUNDS: usize = 15;
const ROUND_TARGET: Duration = Duration::from_millis(40);

/// Interleaved rounds over the groups that criterion ran; per-op ns of each round. Each call runs
/// as many iterations as take about `ROUND_TARGET` at criterion's median, so that fixed costs
/// (the final flush of each call, fastrace's included) are amortized as they are in criterion's
/// samples.
fn run_rounds(fx: &mut Fixture, groups: &[G], samples: &Samples) -> BTreeMap<(G, Lib), Vec<f64>> {
    let mut iters = BTreeMap::new();
    for &g in groups {
        for lib in g.libs() {
            let Some(all) = samples.get(&(g, lib)) else { continue };
            let Some(per_op) = median(&all[all.len().saturating_sub(SAMPLE_SIZE)..]) else { continue };
            let n = ROUND_TARGET.as_nanos() as f64 / (per_op * ops_per_iter(g) as f64);
            iters.insert((g, lib), (n as u64).max(1));
        }
    }
    let mut rounds: BTreeMap<(G, Lib), Vec<f64>> = BTreeMap::new();
    for _ in 0..ROUNDS {
        for (&(g, lib), &n) in &iters {
            let (spent, ops) = routine(g, lib, n, fx);
            rounds.entry((g, lib)).or_default().push(spent.as_nanos() as f64 / ops as f64);
        }
    }
    rounds
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 100_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

struct Summary {
    rounds: BTreeMap<(G, Lib), Vec<f64>>,
    criterion: Samples,
}

impl Summary {
    /// Median per-op time over the rounds.
    fn median(&self, g: G, lib: Lib) -> Option<f64> {
        median(self.rounds.get(&(g, lib))?)
    }

    /// Median of criterion's measurement samples (the warm-up calls are left out).
    fn criterion_median(&self, g: G, lib: Lib) -> Option<f64> {
        let all = self.criterion.get(&(g, lib))?;
        median(&all[all.len().saturating_sub(SAMPLE_SIZE)..])
    }

    /// Median over the rounds of `a`'s time divided by `b`'s time in the same round.
    fn ratio(&self, g: G, a: Lib, b: Lib) -> Option<f64> {
        let (va, vb) = (self.rounds.get(&(g, a))?, self.rounds.get(&(g, b))?);
        median(&va.iter().zip(vb).map(|(x, y)| x / y).collect::<Vec<_>>())
    }

    fn ratio_cell(&self, g: G, a: Lib, b: Lib) -> String {
        self.ratio(g, a, b).map_or("-".into(), |r| format!("{r:.2}x"))
    }

    fn print(&self, groups: &[G]) {
        println!();
        println!("## Summary: medians of {ROUNDS} interleaved rounds; ratios are medians of per-round ratios");
        println!();
        println!(
            "| scenario | unit | library | median | criterion median | vs fastrace | vs tracing | vs otel | vs floor |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
        for &g in groups {
            for lib in g.libs() {
                let Some(v) = self.median(g, lib) else { continue };
                let extra = if g == G::S5 { format!(" ({:.2} M events/s)", 1000.0 / v) } else { String::new() };
                println!(
                    "| {} | {} | {} | {}{} | {} | {} | {} | {} | {} |",
                    g.title(),
                    g.unit(),
                    lib.name(),
                    fmt_ns(v),
                    extra,
                    self.criterion_median(g, lib).map_or("-".into(), fmt_ns),
                    self.ratio_cell(g, lib, Lib::Fastrace),
                    self.ratio_cell(g, lib, Lib::Tracing),
                    self.ratio_cell(g, lib, Lib::Otel),
                    self.ratio_cell(g, lib, Lib::Floor),
                );
            }
        }

        println!();
        println!("## Budgets (issue 6); apm = the manual API as the macros lay it out, apm-macros = `#[span]`/`#[transaction]`");
        println!();
        println!("| scenario | budget | measured | verdict |");
        println!("|---|---|---|---|");
        let line = |scenario: &str, budget: &str, measured: Option<(bool, String)>| match measured {
            Some((ok, shown)) => {
                println!("| {scenario} | {budget} | {shown} | {} |", if ok { "MET" } else { "MISSED" })
            }
            None => println!("| {scenario} | {budget} | not run | - |"),
        };
        for ours in [Lib::Apm, Lib::ApmMacros] {
            let who = ours.name();
            let rel = |g: G, other: Lib, max: f64| {
                let r = self.ratio(g, ours, other)?;
                let (a, b) = (self.median(g, ours)?, self.median(g, other)?);
                Some((r <= max, format!("{r:.2}x ({} vs {})", fmt_ns(a), fmt_ns(b))))
            };
            for (g, what) in [(G::S1Calling, "calling thread"), (G::S1Cpu, "total CPU")] {
                line(&format!("{who}: 1 {what}"), "≤ 0.8x fastrace", rel(g, Lib::Fastrace, 0.8));
                line(&format!("{who}: 1 {what}"), "≤ 0.2x tracing", rel(g, Lib::Tracing, 0.2));
                line(&format!("{who}: 1 {what}"), "≤ 0.1x otel", rel(g, Lib::Otel, 0.1));
            }
            if let Some((_, shown)) = rel(G::S1CpuSerialized, Lib::Fastrace, 0.8) {
                println!("| {who}: 1 total CPU, every span also serialized | (not a budget) vs fastrace | {shown} | informative |");
            }
            for other in [Lib::Fastrace, Lib::Tracing, Lib::Otel] {
                if let Some((_, shown)) = rel(G::S1CpuViaReporter, other, 0.0) {
                    println!(
                        "| {who}: 1 total CPU, flushes through the reporter thread | (not a budget) vs {} | {shown} | informative |",
                        other.name()
                    );
                }
            }
            for g in [G::S2NoTx, G::S2Unsampled] {
                let d = (|| {
                    let (a, f) = (self.median(g, ours)?, self.median(g, Lib::Floor)?);
                    Some((a - f <= 2.0, format!("{:+.1} ns ({} vs {})", a - f, fmt_ns(a), fmt_ns(f))))
                })();
                line(&format!("{who}: {}", g.id()), "within 2 ns of the plain fn", d);
            }
            println!(
                "| {who}: 2 (both cases) | ≤ 20 instructions | counted by `apm-bench/callgrind.sh` | see its table |"
            );
            let s3 = (|| {
                let best = [Lib::Fastrace, Lib::Tracing, Lib::Otel]
                    .into_iter()
                    .filter_map(|l| self.median(G::S3, l).map(|v| (v, l)))
                    .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap())?
                    .1;
                let r = self.ratio(G::S3, ours, best)?;
                let (a, b) = (self.median(G::S3, ours)?, self.median(G::S3, best)?);
                Some((r <= 0.7, format!("{r:.2}x ({} vs {} {})", fmt_ns(a), best.name(), fmt_ns(b))))
            })();
            line(&format!("{who}: 3"), "≤ 0.7x the best anchor", s3);
            line(&format!("{who}: 4"), "≤ 1.2x uninstrumented", rel(G::S4, Lib::Floor, 1.2));
        }
        let s5 = (|| {
            let tput = 1.0 / self.ratio(G::S5, Lib::Apm, Lib::Floor)?;
            let (a, f) = (self.median(G::S5, Lib::Apm)?, self.median(G::S5, Lib::Floor)?);
            Some((tput >= 0.8, format!("{tput:.2}x the floor's events/s ({:.2} vs {:.2} M/s)", 1000.0 / a, 1000.0 / f)))
        })();
        line("apm: 5", "≥ 0.8x the floor's throughput", s5);

        println!();
        println!(
            "Consumers really ran: apm sink got {} events and serialized {} of them (dropped: {}), fastrace \
             reporter got {} spans, tracing layer kept {} spans, otel exporter got {} spans.",
            Lib::Apm.delivered(),
            apm_bench::apm::SERIALIZED.load(std::sync::atomic::Ordering::Relaxed),
            apm_bench::apm::dropped(),
            Lib::Fastrace.delivered(),
            Lib::Tracing.delivered(),
            Lib::Otel.delivered()
        );
    }
}

fn main() {
    for lib in Lib::ALL {
        lib.init();
    }
    let mut fx = Fixture {
        worker: LiveWorker::new(),
        pool: threadpool::ThreadPool::new(4),
        batch: report::record_batch(),
        line: Vec::with_capacity(1024),
        out: Vec::with_capacity(256 * 1024),
    };
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(SAMPLE_SIZE)
        .configure_from_args();
    let mut samples = Samples::new();
    run_criterion(&mut c, &mut fx, &mut samples);
    c.final_summary();

    // The rounds cover what criterion ran (all of it, unless a filter was given).
    let groups: Vec<G> = G::ALL.into_iter().filter(|g| samples.keys().any(|(sg, _)| sg == g)).collect();
    if groups.is_empty() {
        return; // `--list`, `--test` or a filter that matched nothing
    }
    let rounds = run_rounds(&mut fx, &groups, &samples);
    Summary { rounds, criterion: samples }.print(&groups);
}
