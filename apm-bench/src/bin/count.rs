//! Runs one scenario for one library N times, for instruction counting under callgrind
//! (`apm-bench/callgrind.sh` runs it with N and 2N and reports (I(2N) - I(N)) / N).
//!
//! `count sizes` prints the sizes of the runtime's hot-path types; `count flushes N` and
//! `count flushes-via-reporter N` flush an idle agent N times (see below).
//!
//! Usage: `count <s1|s1-serialized|s1-via-reporter|s2-no-tx|s2-sampling-0|s2-no-tx-in-bin|s2-sampling-0-in-bin|s3|s5> <apm|apm-macros|apm-start-only|fastrace|tracing|otel|floor> <N>`,
//! or `count <s6|s6-borrow> <floor|apm-macros|apm-macros-carried> <N>` (N elements, see `s6`)
//! where N counts operations: child spans for s1 (a multiple of 100), calls for s2, jobs for s3,
//! events for s5 (a multiple of 1000; apm or floor only). As in the suite, `s1` counts until the
//! events are handed to apm's sink, which then only counts them; `s1-serialized` has the sink
//! serialize every span as well, and `s1-via-reporter` runs `s1` on an agent whose sink keeps
//! `Sink::never_blocks` false, so its flushes go through the reporter thread.

use apm_bench::scenarios::{self, ChunkWorker, Lib, S2Case};
use std::hint::black_box;
use std::time::Duration;

/// Scenario 2's `#[span]` fn, defined in this binary crate rather than in the bench's library
/// like every other library's: `s2-*-in-bin` counts what the span costs where a thread-local is
/// reached with the executable's initial-exec model. A library crate's code is compiled for the
/// general-dynamic model, a call to `__tls_get_addr` that the linker relaxes to two instructions
/// but for which the compiler has already set up a stack frame.
#[apm_runtime::span(name = "child")]
#[inline(never)]
fn child_in_bin(x: u64) -> u64 {
    apm_bench::work::tiny(x)
}

/// Scenario 6 (issue 22 §2): a hot closure in a `#[span]` fn, one call per element. `floor` has
/// no instrumentation; `apm-macros` is the `#[span]` fn as written, whose borrowing closure is left
/// as it is; `apm-macros-carried` adds `#[propagate]`, which carries the context into the closure
/// by attaching it around each call: what `#[span]`/`#[transaction]` would generate if they
/// carried borrowing closures by default. `s6` maps with a closure that names no local
/// (`|x| x + 1`, given a context of its own where it is made), `s6-borrow` with one that mutably
/// borrows a local (`|x| acc += x`, borrowing the fn's context).
mod s6 {
    use std::hint::black_box;

    #[inline(never)]
    pub fn map_floor(v: &[u64]) -> u64 {
        v.iter().map(|x| black_box(x + 1)).sum()
    }

    #[apm_runtime::span(name = "s6")]
    #[inline(never)]
    pub fn map_span(v: &[u64]) -> u64 {
        v.iter().map(|x| black_box(x + 1)).sum()
    }

    #[apm_runtime::span(name = "s6")]
    #[apm_runtime::propagate]
    #[inline(never)]
    pub fn map_carried(v: &[u64]) -> u64 {
        v.iter().map(|x| black_box(x + 1)).sum()
    }

    #[inline(never)]
    pub fn borrow_floor(v: &[u64]) -> u64 {
        let mut acc = 0;
        v.iter().for_each(|x| acc += black_box(*x));
        acc
    }

    #[apm_runtime::span(name = "s6")]
    #[inline(never)]
    pub fn borrow_span(v: &[u64]) -> u64 {
        let mut acc = 0;
        v.iter().for_each(|x| acc += black_box(*x));
        acc
    }

    #[apm_runtime::span(name = "s6")]
    #[apm_runtime::propagate]
    #[inline(never)]
    pub fn borrow_carried(v: &[u64]) -> u64 {
        let mut acc = 0;
        v.iter().for_each(|x| acc += black_box(*x));
        acc
    }

    /// Elements per call. N (elements) stays under 500 calls per run: below the transaction's
    /// span limit, so every call records its span.
    pub const LEN: u64 = 1024;

    /// Runs `n` elements through the scenario's fn inside a sampled transaction; prints the
    /// wall time per element.
    pub fn run(scenario: &str, lib: &str, n: u64) {
        let f: fn(&[u64]) -> u64 = match (scenario, lib) {
            ("s6", "floor") => map_floor,
            ("s6", "apm-macros") => map_span,
            ("s6", "apm-macros-carried") => map_carried,
            ("s6-borrow", "floor") => borrow_floor,
            ("s6-borrow", "apm-macros") => borrow_span,
            ("s6-borrow", "apm-macros-carried") => borrow_carried,
            _ => {
                eprintln!("{scenario} runs floor, apm-macros or apm-macros-carried");
                std::process::exit(3);
            }
        };
        let v: Vec<u64> = (0..LEN).collect();
        let agent = apm_bench::apm::agent();
        let tx = agent.transaction("s6").start();
        let active = tx.attach();
        let start = std::time::Instant::now();
        let mut acc = 0u64;
        for _ in 0..n / LEN {
            acc = acc.wrapping_add(f(black_box(&v)));
        }
        let elapsed = start.elapsed();
        black_box(acc);
        drop(active);
        tx.end();
        assert!(agent.flush(std::time::Duration::from_secs(30)));
        eprintln!("{scenario} {lib}: {:.2} ns per element", elapsed.as_nanos() as f64 / n as f64);
    }
}

/// An agent whose one sink counts events and keeps `never_blocks` false.
fn via_reporter() -> apm_runtime::Agent {
    struct Count;
    impl apm_runtime::report::Sink for Count {
        fn write(&mut self, _: &apm_runtime::Event, ctx: &apm_runtime::report::SinkContext<'_>) {
            ctx.record_sent(1);
        }
    }
    apm_runtime::Agent::builder().sink(Count).build().expect("agent starts")
}

/// Scenario 1, `n` child spans: prints the calling thread's CPU per span outside the flushes
/// and the process's in all.
fn s1(lib: Lib, n: u64, serialize: bool) {
    apm_bench::apm::SERIALIZE.store(serialize, std::sync::atomic::Ordering::Relaxed);
    let iters = n / 100;
    // The calling thread's CPU outside the flushes, and the process's in all: CPU time
    // leaves out the time this shared machine's other load takes the core away, so
    // these repeat better than wall time when comparing two builds.
    let (process, mut calling) = (apm_bench::cpu::process_cpu_time(), Duration::ZERO);
    let mut since = apm_bench::cpu::thread_cpu_time();
    for i in 0..iters {
        black_box(scenarios::s1_iteration(lib));
        if (i + 1) % scenarios::S1_FLUSH_EVERY == 0 {
            calling += apm_bench::cpu::thread_cpu_time() - since;
            lib.periodic_flush();
            since = apm_bench::cpu::thread_cpu_time();
        }
    }
    calling += apm_bench::cpu::thread_cpu_time() - since;
    lib.flush();
    let per_span = |d: Duration| d.as_nanos() as f64 / (iters * 100) as f64;
    eprintln!(
        "{}: calling thread {:.1} ns CPU per child span outside flushes, process {:.1} ns",
        lib.name(),
        per_span(calling),
        per_span(apm_bench::cpu::process_cpu_time() - process)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("sizes") {
        // Sizes of the runtime's hot-path types: every move of a `Span` is a memcpy of this.
        println!("Span {} bytes", std::mem::size_of::<apm_runtime::Span>());
        println!("SpanBuilder {} bytes", std::mem::size_of::<apm_runtime::SpanBuilder<'static>>());
        println!("Context {} bytes", std::mem::size_of::<apm_runtime::Context>());
        println!("ContextGuard {} bytes", std::mem::size_of::<apm_runtime::ContextGuard>());
        println!("Event {} bytes", std::mem::size_of::<apm_runtime::Event>());
        println!("Transaction {} bytes", std::mem::size_of::<apm_runtime::Transaction>());
        return;
    }
    if let Some(via) = args.get(1).filter(|a| a.starts_with("flushes")) {
        // `count flushes N`: N flushes of the apm agent with nothing queued, to time what a
        // flush costs by itself (`perf stat -e task-clock` at two N). The bench sink never
        // blocks, so the calling thread delivers itself. `count flushes-via-reporter N` does the
        // same with a sink that keeps `Sink::never_blocks`' default (as the intake sink does):
        // each flush is then a wake-up of the reporter and one of the caller.
        let n: u64 = args.get(2).and_then(|n| n.parse().ok()).expect("count flushes N");
        let agent = match via.as_str() {
            "flushes" => {
                Lib::Apm.init();
                apm_bench::apm::agent()
            }
            "flushes-via-reporter" => &*Box::leak(Box::new(via_reporter())),
            other => panic!("unknown mode {other}"),
        };
        for _ in 0..n {
            assert!(agent.flush(Duration::from_secs(30)));
        }
        return;
    }
    if args.len() == 4 && args[1].starts_with("s6") {
        let n: u64 = args[3].parse().expect("N is a number");
        s6::run(&args[1], &args[2], n);
        return;
    }
    if args.len() != 4 {
        eprintln!("usage: count <s1|s1-serialized|s1-via-reporter|s2-no-tx|s2-sampling-0|s2-no-tx-in-bin|s2-sampling-0-in-bin|s3|s5> <library> <N>");
        std::process::exit(2);
    }
    let lib = Lib::parse(&args[2]).unwrap_or_else(|| panic!("unknown library {}", args[2]));
    let n: u64 = args[3].parse().expect("N is a number");
    lib.init();
    match args[1].as_str() {
        "s1-via-reporter" => {
            if lib.is_anchor() {
                eprintln!("s1-via-reporter runs apm's libraries only (the anchors' s1 is the same run)");
                std::process::exit(3);
            }
            apm_bench::apm::on_reporter_agent(|| s1(lib, n, false));
        }
        "s1" | "s1-serialized" => s1(lib, n, args[1] == "s1-serialized"),
        "s2-no-tx-in-bin" | "s2-sampling-0-in-bin" => {
            if lib != Lib::ApmMacros {
                eprintln!("{} runs apm-macros only", args[1]);
                std::process::exit(3);
            }
            let case = if args[1] == "s2-no-tx-in-bin" { S2Case::NoTransaction } else { S2Case::Unsampled };
            scenarios::s2_run(lib, case, child_in_bin, n);
        }
        "s2-no-tx" | "s2-sampling-0" => {
            let case = if args[1] == "s2-no-tx" { S2Case::NoTransaction } else { S2Case::Unsampled };
            match scenarios::s2_function(lib, case) {
                Some(f) => scenarios::s2_run(lib, case, f, n),
                None => {
                    eprintln!("{} has no such case", lib.name());
                    std::process::exit(3);
                }
            }
            lib.flush();
        }
        "s3" => {
            let mut worker = ChunkWorker::new();
            scenarios::s3_run(lib, n, &mut worker);
        }
        "s5" => {
            // N events (a multiple of 1000): serialize + gzip, ours or the serde_json floor.
            let batch = apm_bench::report::record_batch();
            let (mut line, mut out) = (Vec::with_capacity(1024), Vec::with_capacity(256 * 1024));
            for _ in 0..n / apm_bench::report::BATCH as u64 {
                out = match lib {
                    Lib::Apm => apm_bench::report::compress_events(&batch.events, &mut line, out),
                    Lib::Floor => apm_bench::report::compress_plain(&batch.plain, &mut line, out),
                    other => panic!("s5 is apm or floor, not {}", other.name()),
                };
                black_box(out.len());
                out.clear();
            }
        }
        other => panic!("unknown scenario {other}"),
    }
    // On stderr (callgrind.sh discards it): proof that the library's consumer got the spans.
    eprintln!("{} delivered {} (apm dropped {})", lib.name(), lib.delivered(), apm_bench::apm::dropped());
}
