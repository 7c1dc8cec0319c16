//! The scenarios of issue 6, each for every library, shared by the criterion suite and the
//! instruction counter.
//!
//! Flushing policy (the same in both drivers): libraries whose queue is bounded and drops when
//! full (apm-runtime's event queue, OTel's 2048-span batch queue) are flushed about every
//! 1000 events so that no event is dropped — otherwise the cheaper drop path would be measured.
//! `tracing`'s layer buffer is drained on the same cadence. fastrace's per-thread command queue
//! never drops (it grows), so it runs on its own collector cadence and is flushed once at the
//! end of each batch (its `flush()` spawns a thread; doing it every 1000 spans would charge it
//! for our cadence, not for its design).

use std::hint::black_box;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender};

// Re-exported so that the drivers keep naming the scenarios' shape and job type here.
pub use crate::jobs::{Job, S1_FLUSH_EVERY, S3_JOBS_PER_ROOT, S3_SYNC_EVERY, S4_FLUSH_EVERY, S4_TASKS};
use crate::{apm, fast, floor, otel, trc, work};

/// A library (or variant) under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lib {
    /// The same code without instrumentation.
    Floor,
    /// apm-runtime's manual API as the macros lay it out: span started and made current.
    Apm,
    /// apm-runtime through its `#[span]` / `#[transaction]` macros.
    ApmMacros,
    /// apm-runtime's manual API, span started and ended without being made current.
    ApmStartOnly,
    /// fastrace with `#[trace]`.
    Fastrace,
    /// tracing with `#[instrument]`.
    Tracing,
    /// the OpenTelemetry SDK.
    Otel,
}

impl Lib {
    /// Every library, in table order.
    pub const ALL: [Lib; 7] =
        [Lib::Apm, Lib::ApmMacros, Lib::ApmStartOnly, Lib::Fastrace, Lib::Tracing, Lib::Otel, Lib::Floor];

    /// The name used in tables, bench ids and on `count`'s command line.
    pub fn name(self) -> &'static str {
        match self {
            Lib::Floor => "floor",
            Lib::Apm => "apm",
            Lib::ApmMacros => "apm-macros",
            Lib::ApmStartOnly => "apm-start-only",
            Lib::Fastrace => "fastrace",
            Lib::Tracing => "tracing",
            Lib::Otel => "otel",
        }
    }

    /// The library named `name` (see [`Lib::name`]).
    pub fn parse(name: &str) -> Option<Lib> {
        Lib::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Whether this is one of the three anchors.
    pub fn is_anchor(self) -> bool {
        matches!(self, Lib::Fastrace | Lib::Tracing | Lib::Otel)
    }

    /// Starts the library's collector (idempotent).
    pub fn init(self) {
        match self {
            Lib::Apm | Lib::ApmMacros | Lib::ApmStartOnly => {
                let _ = apm::agent();
                let _ = apm::unsampled_agent();
                let _ = apm::reporter_agent();
            }
            Lib::Fastrace => fast::init(),
            Lib::Tracing => trc::init(),
            Lib::Otel => otel::init(),
            Lib::Floor => {}
        }
    }

    /// Waits until everything recorded so far has been handed to the library's consumer.
    pub fn flush(self) {
        match self {
            Lib::Apm | Lib::ApmMacros | Lib::ApmStartOnly => apm::flush(),
            Lib::Fastrace => fast::flush(),
            Lib::Tracing => trc::flush(),
            Lib::Otel => otel::flush(),
            Lib::Floor => {}
        }
    }

    /// [`Lib::flush`] for the libraries that need it about every 1000 events (see the module
    /// docs); a no-op for the others.
    pub fn periodic_flush(self) {
        if self != Lib::Fastrace {
            self.flush();
        }
    }

    /// Events or spans the library's consumer has received so far.
    pub fn delivered(self) -> u64 {
        match self {
            Lib::Apm | Lib::ApmMacros | Lib::ApmStartOnly => apm::DELIVERED.load(Ordering::Relaxed),
            Lib::Fastrace => fast::DELIVERED.load(Ordering::Relaxed),
            Lib::Tracing => trc::DELIVERED.load(Ordering::Relaxed),
            Lib::Otel => otel::DELIVERED.load(Ordering::Relaxed),
            Lib::Floor => 0,
        }
    }
}

/// Scenario 1, one iteration: one root with 100 child spans on the calling thread.
#[inline(always)]
pub fn s1_iteration(lib: Lib) -> u64 {
    match lib {
        Lib::Floor => floor::s1_root_100(),
        Lib::Apm => apm::s1_root_100(apm::child),
        Lib::ApmMacros => apm::s1_root_100_macro(),
        Lib::ApmStartOnly => apm::s1_root_100(apm::child_start_only),
        Lib::Fastrace => fast::s1_root_100(),
        Lib::Tracing => trc::s1_root_100(),
        Lib::Otel => otel::s1_root_100(),
    }
}

/// Scenario 2's two cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum S2Case {
    /// No current transaction/trace (the agent is installed).
    NoTransaction,
    /// Inside a trace whose sampling decision is "no" (sample rate 0).
    Unsampled,
}

/// Scenario 2: the function to call, or `None` when the library has no such case (tracing has
/// no sampling).
pub fn s2_function(lib: Lib, case: S2Case) -> Option<fn(u64) -> u64> {
    Some(match (lib, case) {
        (Lib::Floor, _) => floor::child,
        (Lib::Apm, _) => apm::child,
        (Lib::ApmMacros, _) => apm::child_macro,
        (Lib::ApmStartOnly, _) => apm::child_start_only,
        (Lib::Fastrace, _) => fast::child,
        (Lib::Tracing, S2Case::NoTransaction) => trc::child,
        (Lib::Tracing, S2Case::Unsampled) => return None,
        (Lib::Otel, S2Case::NoTransaction) => otel::child,
        (Lib::Otel, S2Case::Unsampled) => otel::child_unsampled,
    })
}

/// Scenario 2: calls `f` `n` times inside the case's surroundings (an unsampled transaction or
/// root made current, or nothing), flushing every 1024 calls for the libraries that record
/// (tracing and OTel create root spans here).
pub fn s2_run(lib: Lib, case: S2Case, f: fn(u64) -> u64, n: u64) {
    let _apm_tx;
    let _apm_guard;
    let _fast_root;
    let _fast_guard;
    if case == S2Case::Unsampled {
        match lib {
            Lib::Apm | Lib::ApmMacros | Lib::ApmStartOnly => {
                _apm_tx = apm::unsampled_transaction();
                _apm_guard = _apm_tx.attach();
            }
            Lib::Fastrace => {
                _fast_root = fast::unsampled_root();
                _fast_guard = _fast_root.set_local_parent();
            }
            // OTel: the AlwaysOff tracer; floor: nothing.
            _ => {}
        }
    }
    let mut left = n;
    while left > 0 {
        let k = left.min(1024);
        for i in 0..k {
            black_box(f(black_box(i)));
        }
        left -= k;
        if matches!(lib, Lib::Tracing | Lib::Otel) && case == S2Case::NoTransaction {
            lib.periodic_flush();
        }
    }
}

/// How scenario 3 hands jobs to the other thread.
pub trait Handoff {
    /// Queues `job` for the other thread.
    fn push(&mut self, job: Job);
    /// Returns once the other thread has run every job pushed so far.
    fn sync(&mut self);
}

/// A worker thread fed job by job through a crossbeam channel (what the criterion suite uses).
pub struct LiveWorker {
    tx: Option<Sender<Job>>,
    done: Receiver<()>,
    done_tx: Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveWorker {
    /// Starts the worker thread.
    pub fn new() -> LiveWorker {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, done) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("bench-worker".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .expect("spawn worker");
        LiveWorker { tx: Some(tx), done, done_tx, thread: Some(thread) }
    }
}

impl Default for LiveWorker {
    fn default() -> Self {
        LiveWorker::new()
    }
}

impl Handoff for LiveWorker {
    fn push(&mut self, job: Job) {
        self.tx.as_ref().expect("worker running").send(job).expect("worker alive");
    }

    fn sync(&mut self) {
        let done = self.done_tx.clone();
        self.push(Box::new(move || done.send(()).expect("bench waits")));
        self.done.recv().expect("worker alive");
    }
}

impl Drop for LiveWorker {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A worker thread fed in chunks: jobs are queued in a `Vec` and handed over at [`Handoff::sync`]
/// (what the instruction counter uses: no spinning on a per-job channel, so counts are stable).
pub struct ChunkWorker {
    chunk: Vec<Job>,
    tx: Option<Sender<Vec<Job>>>,
    done: Receiver<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ChunkWorker {
    /// Starts the worker thread.
    pub fn new() -> ChunkWorker {
        let (tx, rx) = crossbeam_channel::unbounded::<Vec<Job>>();
        let (done_tx, done) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("bench-worker".into())
            .spawn(move || {
                for chunk in rx {
                    for job in chunk {
                        job();
                    }
                    let _ = done_tx.send(());
                }
            })
            .expect("spawn worker");
        ChunkWorker { chunk: Vec::with_capacity(1024), tx: Some(tx), done, thread: Some(thread) }
    }
}

impl Default for ChunkWorker {
    fn default() -> Self {
        ChunkWorker::new()
    }
}

impl Handoff for ChunkWorker {
    fn push(&mut self, job: Job) {
        self.chunk.push(job);
    }

    fn sync(&mut self) {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(1024));
        self.tx.as_ref().expect("worker running").send(chunk).expect("worker alive");
        self.done.recv().expect("worker alive");
    }
}

impl Drop for ChunkWorker {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn tiny_body() -> u64 {
    work::tiny(7)
}

/// Scenario 3: `n` times, capture the context on this thread, move a closure to the worker's
/// queue, attach there, one span, close. Ends with every span handed to the library's consumer.
pub fn s3_run(lib: Lib, n: u64, h: &mut impl Handoff) {
    let mut done = 0;
    while done < n {
        let k = (n - done).min(S3_JOBS_PER_ROOT);
        match lib {
            Lib::Floor => {
                for _ in 0..k {
                    h.push(Box::new(|| {
                        black_box(tiny_body());
                    }));
                }
            }
            Lib::ApmMacros => apm::s3_root_macro(k, &mut |job| h.push(job)),
            Lib::Apm | Lib::ApmStartOnly => {
                let tx = apm::agent().transaction("root").start();
                let active = tx.attach();
                for _ in 0..k {
                    let ctx = apm::capture();
                    h.push(Box::new(move || apm::run_captured(ctx, tiny_body)));
                }
                drop(active);
                tx.end();
            }
            Lib::Fastrace => {
                let root = fast::root();
                for _ in 0..k {
                    let span = fast::capture(&root);
                    h.push(Box::new(move || fast::run_captured(span, tiny_body)));
                }
            }
            Lib::Tracing => {
                let root = trc::root();
                let _entered = root.enter();
                for _ in 0..k {
                    let span = trc::capture();
                    h.push(Box::new(move || trc::run_captured(span, tiny_body)));
                }
            }
            Lib::Otel => {
                let cx = otel::root_context();
                let guard = cx.clone().attach();
                for _ in 0..k {
                    let captured = otel::capture();
                    h.push(Box::new(move || otel::run_captured(captured, tiny_body)));
                }
                drop(guard);
                otel::end_root(&cx);
            }
        }
        done += k;
        if done % S3_SYNC_EVERY == 0 || done == n {
            h.sync();
            lib.periodic_flush();
        }
    }
    h.sync();
    lib.flush();
}

/// Scenario 4, one fan-out: a transaction (root) handing 64 tasks to `pool`, each task one span
/// around [`work::task_work`], waiting for all of them.
pub fn s4_fanout(lib: Lib, pool: &threadpool::ThreadPool) {
    match lib {
        Lib::Floor => {
            for _ in 0..S4_TASKS {
                pool.execute(|| {
                    black_box(work::task_work());
                });
            }
            pool.join();
        }
        Lib::ApmMacros => apm::s4_fanout_macro(pool),
        Lib::Apm | Lib::ApmStartOnly => {
            let tx = apm::agent().transaction("fan-out").start();
            let active = tx.attach();
            for _ in 0..S4_TASKS {
                let ctx = apm::capture();
                pool.execute(move || apm::run_captured(ctx, work::task_work));
            }
            pool.join();
            drop(active);
            tx.end();
        }
        Lib::Fastrace => {
            let root = fast::root();
            for _ in 0..S4_TASKS {
                let span = fast::capture(&root);
                pool.execute(move || fast::run_captured(span, work::task_work));
            }
            pool.join();
        }
        Lib::Tracing => {
            let root = trc::root();
            let _entered = root.enter();
            for _ in 0..S4_TASKS {
                let span = trc::capture();
                pool.execute(move || trc::run_captured(span, work::task_work));
            }
            pool.join();
        }
        Lib::Otel => {
            let cx = otel::root_context();
            let guard = cx.clone().attach();
            for _ in 0..S4_TASKS {
                let captured = otel::capture();
                pool.execute(move || otel::run_captured(captured, work::task_work));
            }
            pool.join();
            drop(guard);
            otel::end_root(&cx);
        }
    }
}

/// Scenario 4: `n` fan-outs, ending with every event handed to the library's consumer.
pub fn s4_run(lib: Lib, n: u64, pool: &threadpool::ThreadPool) {
    for i in 0..n {
        s4_fanout(lib, pool);
        if (i + 1) % S4_FLUSH_EVERY == 0 {
            lib.periodic_flush();
        }
    }
    lib.flush();
}
