//! The side-by-side suite of issue 6: `cargo bench -p apm-bench`.
//!
//! Criterion runs every measurement (its usual report is printed as it goes); each routine is an
//! `iter_custom` whose per-operation time is also recorded here, and the summary table at the end
//! is computed from the medians of criterion's measurement samples (the warm-up calls are left
//! out). Pass a criterion filter (`cargo bench -p apm-bench -- s3_`) to run a subset.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use apm_bench::cpu::process_cpu_time;
use apm_bench::report;
use apm_bench::scenarios::{self, Lib, LiveWorker, S2Case};
use criterion::Criterion;

const SAMPLE_SIZE: usize = 20;

/// Per-operation times (ns) of every routine call, by (group, library).
static SAMPLES: Mutex<BTreeMap<(&'static str, &'static str), Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(group: &'static str, lib: &'static str, per_op_ns: f64) {
    SAMPLES.lock().unwrap().entry((group, lib)).or_default().push(per_op_ns);
}

/// The median of the last `SAMPLE_SIZE` calls (criterion's measurement phase).
fn median(group: &str, lib: &str) -> Option<f64> {
    let samples = SAMPLES.lock().unwrap();
    let all = samples.iter().find(|((g, l), _)| *g == group && *l == lib)?.1;
    let mut last: Vec<f64> = all[all.len().saturating_sub(SAMPLE_SIZE)..].to_vec();
    last.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = last.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 { last[n / 2] } else { (last[n / 2 - 1] + last[n / 2]) / 2.0 })
}

fn per_op(d: Duration, iters: u64, ops_per_iter: u64) -> f64 {
    d.as_nanos() as f64 / (iters * ops_per_iter) as f64
}

fn s1(c: &mut Criterion) {
    let mut g = c.benchmark_group("s1_calling_thread");
    for lib in Lib::ALL {
        g.bench_function(lib.name(), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let k = left.min(scenarios::S1_FLUSH_EVERY);
                    let t = Instant::now();
                    for _ in 0..k {
                        black_box(scenarios::s1_iteration(lib));
                    }
                    spent += t.elapsed();
                    left -= k;
                    lib.periodic_flush();
                }
                lib.flush();
                record("s1_calling_thread", lib.name(), per_op(spent, iters, 100));
                spent
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("s1_total_cpu");
    for lib in Lib::ALL {
        g.bench_function(lib.name(), |b| {
            b.iter_custom(|iters| {
                let cpu = process_cpu_time();
                for i in 0..iters {
                    black_box(scenarios::s1_iteration(lib));
                    if (i + 1) % scenarios::S1_FLUSH_EVERY == 0 {
                        lib.periodic_flush();
                    }
                }
                lib.flush();
                let spent = process_cpu_time() - cpu;
                record("s1_total_cpu", lib.name(), per_op(spent, iters, 100));
                spent
            })
        });
    }
    g.finish();
}

fn s2(c: &mut Criterion) {
    for (group, case) in [("s2_no_transaction", S2Case::NoTransaction), ("s2_sampling_0", S2Case::Unsampled)] {
        let mut g = c.benchmark_group(group);
        for lib in Lib::ALL {
            let Some(f) = scenarios::s2_function(lib, case) else { continue };
            g.bench_function(lib.name(), |b| {
                b.iter_custom(|iters| {
                    let t = Instant::now();
                    scenarios::s2_run(lib, case, f, iters);
                    let spent = t.elapsed();
                    record(group, lib.name(), per_op(spent, iters, 1));
                    spent
                })
            });
        }
        g.finish();
    }
}

fn s3(c: &mut Criterion) {
    let mut g = c.benchmark_group("s3_cross_thread");
    let mut worker = LiveWorker::new();
    for lib in Lib::ALL {
        if lib == Lib::ApmStartOnly {
            continue;
        }
        g.bench_function(lib.name(), |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                scenarios::s3_run(lib, iters, &mut worker);
                let spent = t.elapsed();
                record("s3_cross_thread", lib.name(), per_op(spent, iters, 1));
                spent
            })
        });
    }
    g.finish();
}

fn s4(c: &mut Criterion) {
    let mut g = c.benchmark_group("s4_fan_out_64_on_4_threads");
    let pool = threadpool::ThreadPool::new(4);
    for lib in Lib::ALL {
        if lib == Lib::ApmStartOnly {
            continue;
        }
        g.bench_function(lib.name(), |b| {
            b.iter_custom(|iters| {
                // The machine is shared and its load drifts: each sample is paired with a run of
                // the uninstrumented program right before it, and the budget uses the ratio of
                // the medians of the pairs.
                if lib != Lib::Floor {
                    let t = Instant::now();
                    scenarios::s4_run(Lib::Floor, iters, &pool);
                    record("s4_paired_floor", lib.name(), per_op(t.elapsed(), iters, 1));
                }
                let t = Instant::now();
                scenarios::s4_run(lib, iters, &pool);
                let spent = t.elapsed();
                record("s4_fan_out_64_on_4_threads", lib.name(), per_op(spent, iters, 1));
                spent
            })
        });
    }
    g.finish();
}

fn s5(c: &mut Criterion) {
    let batch = report::record_batch();
    let mut g = c.benchmark_group("s5_reporter_serialize_gzip");
    g.throughput(criterion::Throughput::Elements(report::BATCH as u64));
    let mut line = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(256 * 1024);
    g.bench_function("apm", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                out = report::compress_events(&batch.events, &mut line, std::mem::take(&mut out));
                black_box(out.len());
                out.clear();
            }
            let spent = t.elapsed();
            record("s5_reporter_serialize_gzip", "apm", per_op(spent, iters, report::BATCH as u64));
            spent
        })
    });
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                out = report::compress_plain(&batch.plain, &mut line, std::mem::take(&mut out));
                black_box(out.len());
                out.clear();
            }
            let spent = t.elapsed();
            record("s5_reporter_serialize_gzip", "floor", per_op(spent, iters, report::BATCH as u64));
            spent
        })
    });
    g.finish();
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

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

struct Group {
    id: &'static str,
    title: &'static str,
    unit: &'static str,
}

const GROUPS: [Group; 7] = [
    Group { id: "s1_calling_thread", title: "1 root+100 children, calling thread", unit: "per child span" },
    Group { id: "s1_total_cpu", title: "1 root+100 children, total process CPU", unit: "per child span" },
    Group { id: "s2_no_transaction", title: "2 span in fn, no current transaction", unit: "per call" },
    Group { id: "s2_sampling_0", title: "2 span in fn, sampling 0", unit: "per call" },
    Group { id: "s3_cross_thread", title: "3 capture→other thread→attach→1 span", unit: "per job, end to end" },
    Group {
        id: "s4_fan_out_64_on_4_threads",
        title: "4 tx fanning 64 tasks on 4 threads",
        unit: "per fan-out, end to end",
    },
    Group { id: "s5_reporter_serialize_gzip", title: "5 reporter: serialize+gzip(fast)", unit: "per event" },
];

fn summary() {
    let m = |g: &str, l: Lib| median(g, l.name());
    println!();
    println!("## Summary (medians of criterion's measurement samples)");
    println!();
    println!("| scenario | unit | library | median | vs fastrace | vs tracing | vs otel | vs floor |");
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for g in &GROUPS {
        for lib in Lib::ALL {
            let Some(v) = m(g.id, lib) else { continue };
            let extra = if g.id.starts_with("s5") { format!(" ({:.2} M events/s)", 1000.0 / v) } else { String::new() };
            println!(
                "| {} | {} | {} | {}{} | {} | {} | {} | {} |",
                g.title,
                g.unit,
                lib.name(),
                fmt_ns(v),
                extra,
                ratio(Some(v), m(g.id, Lib::Fastrace)),
                ratio(Some(v), m(g.id, Lib::Tracing)),
                ratio(Some(v), m(g.id, Lib::Otel)),
                ratio(Some(v), m(g.id, Lib::Floor)),
            );
        }
    }

    println!();
    println!("Scenario 4, each library against the uninstrumented program run right before each of its samples:");
    println!();
    println!("| library | median | paired floor | ratio |");
    println!("|---|---:|---:|---:|");
    for lib in Lib::ALL {
        let (Some(v), Some(f)) = (m("s4_fan_out_64_on_4_threads", lib), median("s4_paired_floor", lib.name())) else {
            continue;
        };
        println!("| {} | {} | {} | {:.2}x |", lib.name(), fmt_ns(v), fmt_ns(f), v / f);
    }

    println!();
    println!("## Budgets (issue 6), apm = manual API as the macros lay it out");
    println!();
    println!("| scenario | budget | measured | verdict |");
    println!("|---|---|---|---|");
    let budget = |scenario: &str, text: &str, measured: Option<(f64, bool, String)>| match measured {
        Some((_, ok, shown)) => println!("| {scenario} | {text} | {shown} | {} |", verdict(ok)),
        None => println!("| {scenario} | {text} | not run | - |"),
    };
    let counted_elsewhere = |scenario: &str, text: &str| {
        println!("| {scenario} | {text} | instruction counts: `apm-bench/callgrind.sh` | see its table |")
    };
    let rel = |g: &str, other: Lib, max: f64| {
        let (a, b) = (m(g, Lib::Apm)?, m(g, other)?);
        Some((a / b, a / b <= max, format!("{:.2}x ({} vs {})", a / b, fmt_ns(a), fmt_ns(b))))
    };
    budget("1 calling thread", "≤ 0.8x fastrace", rel("s1_calling_thread", Lib::Fastrace, 0.8));
    budget("1 total CPU", "≤ 0.8x fastrace", rel("s1_total_cpu", Lib::Fastrace, 0.8));
    budget("1 calling thread", "≤ 0.2x tracing", rel("s1_calling_thread", Lib::Tracing, 0.2));
    budget("1 total CPU", "≤ 0.2x tracing", rel("s1_total_cpu", Lib::Tracing, 0.2));
    budget("1 calling thread", "≤ 0.1x otel", rel("s1_calling_thread", Lib::Otel, 0.1));
    budget("1 total CPU", "≤ 0.1x otel", rel("s1_total_cpu", Lib::Otel, 0.1));
    for g in ["s2_no_transaction", "s2_sampling_0"] {
        let d = (|| {
            let (a, f) = (m(g, Lib::Apm)?, m(g, Lib::Floor)?);
            Some((a - f, a - f <= 2.0, format!("+{:.1} ns ({} vs {})", a - f, fmt_ns(a), fmt_ns(f))))
        })();
        budget(g, "within 2 ns of the plain fn", d);
    }
    counted_elsewhere("2 (both cases)", "≤ 20 instructions");
    let best = [Lib::Fastrace, Lib::Tracing, Lib::Otel]
        .into_iter()
        .filter_map(|l| m("s3_cross_thread", l).map(|v| (v, l)))
        .min_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let s3 = (|| {
        let a = m("s3_cross_thread", Lib::Apm)?;
        let (b, l) = best?;
        Some((a / b, a / b <= 0.7, format!("{:.2}x ({} vs {} {})", a / b, fmt_ns(a), l.name(), fmt_ns(b))))
    })();
    budget("3", "≤ 0.7x best anchor", s3);
    budget("4 (floor run separately)", "≤ 1.2x uninstrumented", rel("s4_fan_out_64_on_4_threads", Lib::Floor, 1.2));
    let paired = (|| {
        let a = m("s4_fan_out_64_on_4_threads", Lib::Apm)?;
        let f = median("s4_paired_floor", Lib::Apm.name())?;
        Some((a / f, a / f <= 1.2, format!("{:.2}x ({} vs {})", a / f, fmt_ns(a), fmt_ns(f))))
    })();
    budget("4 (floor paired per sample)", "≤ 1.2x uninstrumented", paired);
    let s5 = (|| {
        let (a, f) = (m("s5_reporter_serialize_gzip", Lib::Apm)?, m("s5_reporter_serialize_gzip", Lib::Floor)?);
        let tput = f / a;
        Some((
            tput,
            tput >= 0.8,
            format!("{tput:.2}x floor throughput ({:.2} vs {:.2} M events/s)", 1000.0 / a, 1000.0 / f),
        ))
    })();
    budget("5", "≥ 0.8x floor throughput", s5);

    println!();
    println!(
        "Consumers really ran: apm sink serialized {} events (dropped: {}), fastrace reporter got {} spans, \
         tracing layer kept {} spans, otel exporter got {} spans.",
        Lib::Apm.delivered(),
        apm_bench::apm::dropped(),
        Lib::Fastrace.delivered(),
        Lib::Tracing.delivered(),
        Lib::Otel.delivered()
    );
}

fn main() {
    for lib in Lib::ALL {
        lib.init();
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(SAMPLE_SIZE)
        .configure_from_args();
    s1(&mut c);
    s2(&mut c);
    s3(&mut c);
    s4(&mut c);
    s5(&mut c);
    c.final_summary();
    summary();
}
