//! Does delivery keep up? Producers end spans at a paced rate for a while, into an agent with
//! the default configuration (queue 16384) whose sink does the intake sink's work on the agent's
//! real reporter thread: every event encoded to NDJSON and gzipped, the bodies counted and
//! discarded ([`apm_bench::delivery`]). For each (total rate, threads) it prints the spans ended,
//! the rate achieved, the drops by reason (from `Agent::stats` after a flush) and the reporter
//! thread's CPU time. Then the encoder alone on one core, same events, no agent.
//!
//! Usage: `delivery [--secs S] [--rates R,R,..] [--threads N,N,..] [--pace spin|burst]
//! [--queue N] [--encoder-secs S] [--no-agent] [--no-encoder]`
//!
//! - `--secs` (or `DELIVERY_SECS`): seconds per cell, 5 by default.
//! - `--rates`: total spans per second over all producer threads (250000,500000,1000000).
//! - `--threads`: producer threads (1,2,4); the rate is split evenly between them.
//! - `--pace spin` (default): each producer spins until its next span is due, as a thread busy
//!   with the application's own work would hold its core. `--pace burst`: it sleeps to the next
//!   millisecond and ends the spans due by then back to back, so producers leave the CPU idle
//!   between bursts (tells the reporter's CPU share from its scheduling).
//! - `--queue`: `max_queue_size` instead of the default (to see what a larger queue buys).
//! - `--quiet C` (with `--tries K`, 3 by default): runs a cell again, up to K times in all, while
//!   the other processes of the machine took more than C cores during it, and keeps the run
//!   they disturbed least (the table says how many runs each cell took). On a shared machine
//!   the reporter competes with other sessions' builds; this tells the agent's limits from
//!   theirs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apm_bench::cpu::{process_cpu_time, thread_cpu_time};
use apm_bench::delivery::{metadata_line, GzIntakeSink, IntakeBody, ProbeSnapshot, ReporterProbe};
use apm_bench::report::{self, app_span, SPANS_PER_TRANSACTION};
use apm_runtime::{Agent, Config, Stats};

#[derive(Clone, Copy, PartialEq)]
enum Pace {
    Spin,
    Burst,
}

struct Options {
    secs: f64,
    rates: Vec<u64>,
    threads: Vec<usize>,
    pace: Pace,
    queue: Option<usize>,
    encoder_secs: f64,
    quiet: Option<f64>,
    tries: u32,
    agent: bool,
    encoder: bool,
}

const USAGE: &str = "usage: delivery [--secs S] [--rates R,R,..] [--threads N,N,..] [--pace spin|burst] \
                     [--queue N] [--encoder-secs S] [--quiet C] [--tries K] [--no-agent] [--no-encoder]\n\
                     (each option is described in the doc comment of apm-bench/src/bin/delivery.rs)";

/// Says what was wrong with the command line, and how to write it, then exits with status 2.
fn bail(message: String) -> ! {
    eprintln!("delivery: {message}\n{USAGE}");
    std::process::exit(2)
}

/// `text` as a `T`, or a usage error naming `what`.
fn parse<T: std::str::FromStr>(text: &str, what: &str) -> T {
    text.trim().parse().unwrap_or_else(|_| bail(format!("{what}: {text:?} is not a valid value")))
}

fn list<T: std::str::FromStr>(s: &str, what: &str) -> Vec<T> {
    s.split(',').map(|x| parse(x, what)).collect()
}

fn options() -> Options {
    let mut o = Options {
        secs: std::env::var("DELIVERY_SECS").ok().map_or(5.0, |s| parse(&s, "DELIVERY_SECS (seconds)")),
        rates: vec![250_000, 500_000, 1_000_000],
        threads: vec![1, 2, 4],
        pace: Pace::Spin,
        queue: None,
        encoder_secs: 3.0,
        quiet: None,
        tries: 3,
        agent: true,
        encoder: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| bail(format!("{a} needs a value")));
        match a.as_str() {
            "--secs" => o.secs = parse(&value(), "--secs (seconds)"),
            "--rates" => o.rates = list(&value(), "--rates (spans per second)"),
            "--threads" => o.threads = list(&value(), "--threads (a number of threads)"),
            "--pace" => {
                o.pace = match value().as_str() {
                    "spin" => Pace::Spin,
                    "burst" => Pace::Burst,
                    p => bail(format!("--pace is spin or burst, not {p:?}")),
                }
            }
            "--queue" => o.queue = Some(parse(&value(), "--queue (events)")),
            "--encoder-secs" => o.encoder_secs = parse(&value(), "--encoder-secs (seconds)"),
            "--quiet" => o.quiet = Some(parse(&value(), "--quiet (cores)")),
            "--tries" => o.tries = parse(&value(), "--tries (runs)"),
            "--no-agent" => o.agent = false,
            "--no-encoder" => o.encoder = false,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ => bail(format!("unknown argument {a:?}")),
        }
    }
    o
}

fn config(queue: Option<usize>) -> Config {
    let mut b = Config::builder().service_name("apm-bench-delivery");
    if let Some(q) = queue {
        b = b.max_queue_size(q);
    }
    b.build().expect("valid benchmark config")
}

/// What one producer thread did.
#[derive(Default)]
struct Produced {
    spans: u64,
    transactions: u64,
    /// From the common start to its last span's end.
    wall: Duration,
    cpu: Duration,
}

/// Waits until `due`: spinning, or (burst) sleeping to the millisecond tick at or after it.
fn wait_until(t0: Instant, due: Duration, pace: Pace) {
    let now = t0.elapsed();
    if now >= due {
        return;
    }
    match pace {
        Pace::Spin => {
            while t0.elapsed() < due {
                std::hint::spin_loop();
            }
        }
        Pace::Burst => {
            let tick = Duration::from_millis(
                due.as_millis() as u64 + u64::from(!due.subsec_nanos().is_multiple_of(1_000_000)),
            );
            std::thread::sleep(tick - now);
        }
    }
}

/// Ends `total` spans at `rate` a second from `t0`, in transactions of
/// [`SPANS_PER_TRANSACTION`] (the default limit per transaction is 500).
fn produce(agent: &Agent, rate: f64, total: u64, t0: Instant, pace: Pace) -> Produced {
    if let Some(wait) = t0.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
    let cpu0 = thread_cpu_time();
    let interval = 1e9 / rate;
    let mut p = Produced::default();
    while p.spans < total {
        let tx = agent.transaction("GET /orders").with_type("request").start();
        let active = tx.attach();
        for i in 0..SPANS_PER_TRANSACTION {
            if p.spans == total {
                break;
            }
            wait_until(t0, Duration::from_nanos((p.spans as f64 * interval) as u64), pace);
            app_span(i).end();
            p.spans += 1;
        }
        drop(active);
        tx.end();
        p.transactions += 1;
    }
    p.wall = t0.elapsed();
    p.cpu = thread_cpu_time() - cpu0;
    p
}

struct Cell {
    rate: u64,
    threads: usize,
    produced: Vec<Produced>,
    /// From the start to the end of the final flush.
    wall: Duration,
    stats: Stats,
    probe: ProbeSnapshot,
    flushed: bool,
    /// CPU time the rest of the machine (other processes) took meanwhile, in cores.
    others: f64,
    /// Runs of this cell (see `--quiet`).
    runs: u32,
}

/// Busy CPU time of the whole machine so far (`/proc/stat`: every state but idle and iowait).
fn machine_busy() -> Duration {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let cpu = stat.lines().next().expect("a cpu line");
    let ticks: Vec<u64> = cpu.split_whitespace().skip(1).map(|x| x.parse().expect("ticks")).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let busy: u64 = ticks.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, t)| t).sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos(busy * 1_000_000_000 / hz)
}

fn diff(after: Stats, before: Stats) -> Stats {
    let mut d = after;
    d.queued -= before.queued;
    d.sent -= before.sent;
    d.compressed -= before.compressed;
    d.dropped.queue_full -= before.dropped.queue_full;
    d.dropped.shutdown -= before.dropped.shutdown;
    d.dropped.send_failed -= before.dropped.send_failed;
    d.dropped.rejected -= before.dropped.rejected;
    d
}

fn run_cell(o: &Options, rate: u64, threads: usize) -> Cell {
    let probe = Arc::new(ReporterProbe::default());
    let agent =
        Agent::builder().config(config(o.queue)).sink(GzIntakeSink::new(probe.clone())).build().expect("agent starts");
    // One event through first: the reporter is running and the sink has its metadata, and the
    // probe's CPU reading is taken after the agent's start-up.
    agent.transaction("warm-up").start().end();
    assert!(agent.flush(Duration::from_secs(30)), "warm-up flush");
    probe.reset_max_drain();
    let (stats0, probe0) = (agent.stats(), probe.snapshot());

    let per_thread = rate as f64 / threads as f64;
    let total = (per_thread * o.secs).round() as u64;
    let t0 = Instant::now() + Duration::from_millis(50);
    let (busy0, ours0) = (machine_busy(), process_cpu_time());
    let produced: Vec<Produced> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let agent = &agent;
                std::thread::Builder::new()
                    .name(format!("producer-{i}"))
                    .spawn_scoped(s, move || produce(agent, per_thread, total, t0, o.pace))
                    .expect("spawn producer")
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("producer")).collect()
    });
    let flushed = agent.flush(Duration::from_secs(60));
    let wall = t0.elapsed();
    let others = (machine_busy().saturating_sub(busy0).as_secs_f64() - (process_cpu_time() - ours0).as_secs_f64())
        .max(0.0)
        / wall.as_secs_f64();
    let stats = diff(agent.stats(), stats0);
    let p = probe.snapshot();
    let probe = ProbeSnapshot {
        cpu: p.cpu - probe0.cpu,
        drains: p.drains - probe0.drains,
        events: p.events - probe0.events,
        max_drain: p.max_drain,
    };
    drop(agent);
    Cell { rate, threads, produced, wall, stats, probe, flushed, others, runs: 1 }
}

fn millions(x: f64) -> String {
    format!("{:.3} M", x / 1e6)
}

fn print_cells(cells: &[Cell]) {
    println!(
        "| target spans/s | producer threads | spans ended | achieved spans/s | events (spans + tx) | queued | \
         dropped: queue full | other drops | drop share | reporter CPU | reporter CPU / wall | reporter CPU per \
         event | drains | largest drain | producer CPU per thread | other processes' CPU | runs |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for c in cells {
        let spans: u64 = c.produced.iter().map(|p| p.spans).sum();
        let txs: u64 = c.produced.iter().map(|p| p.transactions).sum();
        let events = spans + txs;
        let last = c.produced.iter().map(|p| p.wall).max().unwrap_or_default();
        let d = c.stats.dropped;
        let other = d.shutdown + d.send_failed + d.rejected;
        let producer_cpu: Duration = c.produced.iter().map(|p| p.cpu).sum::<Duration>() / c.threads as u32;
        assert_eq!(c.stats.queued + d.queue_full + d.shutdown, events, "every event counted once");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.2} % | {:.3} s | {:.0} % | {:.0} ns | {} | {} | {:.2} s | {:.2} cores | {} |{}",
            millions(c.rate as f64),
            c.threads,
            spans,
            millions(spans as f64 / last.as_secs_f64()),
            events,
            c.stats.queued,
            d.queue_full,
            other,
            100.0 * d.total() as f64 / events as f64,
            c.probe.cpu.as_secs_f64(),
            100.0 * c.probe.cpu.as_secs_f64() / c.wall.as_secs_f64(),
            c.probe.cpu.as_nanos() as f64 / c.probe.events.max(1) as f64,
            c.probe.drains,
            c.probe.max_drain,
            producer_cpu.as_secs_f64(),
            c.others,
            c.runs,
            if c.flushed { "" } else { " (final flush: not everything delivered)" },
        );
    }
}

/// Encodes `events` over and over on this thread for about `secs`; returns events per second
/// of this thread's CPU time and of wall time.
fn encode_rate(secs: f64, mut encode: impl FnMut() -> u64) -> (f64, f64, u64) {
    let (cpu0, wall0) = (thread_cpu_time(), Instant::now());
    let mut n = 0;
    while wall0.elapsed().as_secs_f64() < secs {
        n += encode();
    }
    let cpu = (thread_cpu_time() - cpu0).as_secs_f64();
    (n as f64 / cpu, n as f64 / wall0.elapsed().as_secs_f64(), n)
}

fn encoder_alone(secs: f64) {
    let batch = report::record_batch();
    let events = &batch.events;
    let mut body = IntakeBody::new(metadata_line(config(None)));
    let (cpu_rate, wall_rate, n) = encode_rate(secs, || {
        for e in events {
            body.write(e);
        }
        events.len() as u64
    });
    body.close();
    let (bodies, compressed, uncompressed) = body.totals();
    println!("| encoder | events | events/s of CPU | events/s of wall time | bytes/event in → out |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| intake bodies (768 KiB compressed each, {bodies} closed), as the delivery sink | {n} | {} | {} | {:.0} → {:.1} |",
        millions(cpu_rate),
        millions(wall_rate),
        uncompressed as f64 / n as f64,
        compressed as f64 / n as f64,
    );
    // Scenario 5's shape (`report::compress_events`): one gzip body per 1000 events, finished.
    let (mut line, mut out) = (Vec::new(), Vec::new());
    let (cpu_rate, wall_rate, n) = encode_rate(secs, || {
        out.clear();
        out = report::compress_events(events, &mut line, std::mem::take(&mut out));
        events.len() as u64
    });
    println!(
        "| scenario 5's shape (one body per {} events) | {n} | {} | {} | - |",
        events.len(),
        millions(cpu_rate),
        millions(wall_rate)
    );
    // The two halves apart: where the time of a faster encoder would have to come from.
    let (cpu_rate, wall_rate, n) = encode_rate(secs, || {
        for e in events {
            line.clear();
            e.write_ndjson(&mut line);
            std::hint::black_box(&line);
        }
        events.len() as u64
    });
    println!("| serialize only (`write_ndjson`) | {n} | {} | {} | - |", millions(cpu_rate), millions(wall_rate));
    let mut lines = Vec::new();
    for e in events {
        e.write_ndjson(&mut lines);
    }
    let (cpu_rate, wall_rate, n) = encode_rate(secs, || {
        let mut gz = flate2::write::GzEncoder::new(std::io::sink(), flate2::Compression::fast());
        for l in lines.split_inclusive(|&b| b == b'\n') {
            std::io::Write::write_all(&mut gz, l).expect("io::Sink never fails");
        }
        gz.finish().expect("io::Sink never fails");
        events.len() as u64
    });
    println!(
        "| gzip only (the same lines, one body per {} events) | {n} | {} | {} | - |",
        events.len(),
        millions(cpu_rate),
        millions(wall_rate)
    );
}

fn main() {
    let o = options();
    println!(
        "delivery: {} s per cell, pace {}, queue {}, {} CPUs; a span's box is {} bytes, a ring slot 8",
        o.secs,
        if o.pace == Pace::Spin { "spin" } else { "burst (1 ms)" },
        o.queue.map_or_else(
            || format!("default ({})", Config::builder().build().map_or(0, |c| c.max_queue_size())),
            |q| q.to_string()
        ),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::mem::size_of::<apm_runtime::SpanEvent>(),
    );
    if o.agent {
        let mut cells = Vec::new();
        for &rate in &o.rates {
            for &threads in &o.threads {
                let mut c = run_cell(&o, rate, threads);
                let mut runs = 1;
                while o.quiet.is_some_and(|q| c.others > q) && runs < o.tries {
                    let again = run_cell(&o, rate, threads);
                    runs += 1;
                    if again.others < c.others {
                        c = again;
                    }
                }
                c.runs = runs;
                eprintln!(
                    "{} spans/s over {threads}: dropped {} of {} events",
                    c.rate,
                    c.stats.dropped.total(),
                    c.stats.queued + c.stats.dropped.total()
                );
                cells.push(c);
            }
        }
        println!();
        print_cells(&cells);
    }
    if o.encoder {
        println!();
        encoder_alone(o.encoder_secs);
    }
}
