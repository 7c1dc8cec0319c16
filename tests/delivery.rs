//! When finished spans reach the sink: each thread puts them in a ring of its own that the
//! reporter drains when it polls and on every flush, so no span waits for its thread to reach
//! some boundary.

mod support;

use std::time::Duration;

use apm_runtime::report::{MemorySink, Sink, SinkContext};
use apm_runtime::{Agent, Event, Span};
use support::{flush, memory_agent};

/// Waits (without flushing, which would hand over the caller's batch) until `sink` has `n` spans.
fn wait_for_spans(sink: &MemorySink, n: usize) -> bool {
    for _ in 0..200 {
        if sink.spans().len() >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_pool_task_hands_its_spans_over_when_it_ends() {
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("long").start();
    let pool = threadpool::ThreadPool::new(2);
    let ctx = tx.context();
    pool.execute(ctx.wrap(|| (0..3).for_each(|_| Span::start("task span").end())));
    pool.join();
    // The transaction is still running; the pool thread left its context, so its spans went.
    assert!(wait_for_spans(&sink, 3), "spans of a finished task reach the sink before the transaction ends");
    tx.end();
}

#[test]
fn spans_on_an_attached_thread_go_with_the_transaction_or_every_batch() {
    let (agent, sink) = memory_agent(|c| c.transaction_max_spans(10_000u32));
    let tx = agent.transaction("attached").start();
    let active = tx.attach();
    for _ in 0..200 {
        Span::start("s").end();
    }
    // 200 spans: at least three full batches were handed over while still attached.
    assert!(wait_for_spans(&sink, 128));
    drop(active);
    tx.end();
    flush(&agent);
    assert_eq!(sink.spans().len(), 200);
    assert_eq!(agent.stats().queued, 201);
}

#[test]
fn a_span_ended_outside_any_context_is_handed_over_at_once() {
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("moved").start();
    let span = tx.context().in_scope(|| Span::start("ends elsewhere"));
    std::thread::spawn(move || span.end()).join().unwrap();
    assert!(wait_for_spans(&sink, 1));
    tx.end();
}

#[test]
fn a_flush_sees_the_spans_of_threads_still_inside_their_context() {
    // A worker ends spans and then stays attached (blocked mid-task): a flush from another
    // thread still delivers them, without the worker doing anything more.
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("long").start();
    let ctx = tx.context();
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        let _attached = ctx.attach();
        let outer = Span::start("outer, still open");
        let _in_outer = outer.attach();
        (0..5).for_each(|_| Span::start("done").end());
        ended_tx.send(()).unwrap();
        released.recv().unwrap();
    });
    ended.recv().unwrap();
    flush(&agent);
    let names: Vec<_> = sink.spans().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["done"; 5], "the five ended spans, not the open one");
    release.send(()).unwrap();
    worker.join().unwrap();
    tx.end();
    flush(&agent);
    assert_eq!(sink.spans().len(), 6);
    assert_eq!(agent.stats().queued, 7);
}

#[test]
fn a_full_ring_drops_and_counts_exactly() {
    let (agent, sink) = memory_agent(|c| c.max_queue_size(4usize));
    let tx = agent.transaction("t").start();
    let spans: Vec<Span> = tx.context().in_scope(|| (0..10).map(|_| Span::start("late")).collect());
    tx.end();
    // The ring holds four: whatever the reporter did not drain in time (it is woken at half
    // full) is dropped, and every span is counted one way or the other.
    drop(spans);
    flush(&agent);
    let stats = agent.stats();
    assert_eq!(stats.queued + stats.dropped.queue_full, 11, "{stats:?}");
    assert_eq!(sink.spans().len() as u64 + stats.dropped.queue_full, 10);
}

/// A [`MemorySink`] that notes which thread ran each flush, and says it never blocks or keeps
/// the trait's default (so that every call runs on the reporter thread).
struct Probe {
    sink: MemorySink,
    flushed_on: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    never_blocks: bool,
}

impl Probe {
    fn new(never_blocks: bool) -> (Probe, MemorySink, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let sink = MemorySink::new();
        let flushed_on = std::sync::Arc::default();
        let probe = Probe { sink: sink.clone(), flushed_on: std::sync::Arc::clone(&flushed_on), never_blocks };
        (probe, sink, flushed_on)
    }
}

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("<unnamed>").to_string()
}

impl Sink for Probe {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        self.sink.write(event, ctx);
    }

    fn flush(&mut self, _ctx: &SinkContext<'_>, _deadline: std::time::Instant) {
        self.flushed_on.lock().unwrap().push(thread_name());
    }

    fn never_blocks(&self) -> bool {
        self.never_blocks
    }
}

#[test]
fn a_flush_runs_sinks_that_never_block_on_the_calling_thread_and_others_on_the_reporter() {
    // The thread that flushed a never-blocking probe, with the sinks `more` adds beside it.
    let flushed_by = |more: fn(apm_runtime::AgentBuilder) -> apm_runtime::AgentBuilder| {
        let (probe, sink, flushed_on) = Probe::new(true);
        let agent = more(Agent::builder().sink(probe)).build().unwrap();
        let tx = agent.transaction("t").start();
        let attached = tx.attach();
        Span::start("s").end();
        drop(attached);
        tx.end();
        flush(&agent);
        assert_eq!((sink.transactions().len(), sink.spans().len()), (1, 1), "everything delivered by the flush");
        let on = flushed_on.lock().unwrap().last().cloned().expect("the sink was flushed");
        on
    };
    let here = thread_name();
    assert_eq!(flushed_by(|b| b), here, "every sink never blocks: delivered on the flushing thread");
    assert_eq!(flushed_by(|b| b.sink(MemorySink::new())), here, "MemorySink never blocks either");
    assert_eq!(
        flushed_by(|b| b.sink(Probe::new(false).0)),
        "apm-reporter",
        "one sink that may block keeps the whole flush on the reporter thread"
    );
}

#[test]
fn many_threads_wrapping_small_rings_under_concurrent_flushes_lose_and_duplicate_nothing() {
    // Once with the flushes delivering on the flushing thread, once through the reporter.
    let (agent, sink) = memory_agent(|c| c.max_queue_size(64usize).transaction_max_spans(100_000u32));
    flush_while_threads_wrap_rings(&agent, &sink);
    let (on_reporter, sink, _) = Probe::new(false);
    let config = apm_runtime::Config::builder().max_queue_size(64usize).transaction_max_spans(100_000u32).build();
    let agent = Agent::builder().config(config.unwrap()).sink(on_reporter).build().unwrap();
    flush_while_threads_wrap_rings(&agent, &sink);
}

fn flush_while_threads_wrap_rings(agent: &Agent, sink: &MemorySink) {
    // Rings of 64 slots, 6 threads ending 3000 spans each (pausing now and then) while the main
    // thread and two of the six flush over and over: every ring wraps many times, and spans find
    // it full. Each span must arrive once, intact, or be counted as dropped.
    const THREADS: usize = 6;
    const SPANS: usize = 3_000;
    let tx = agent.transaction("stress").start();
    let ctx = tx.context();
    let done = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (ctx, done) = (&ctx, &done);
            s.spawn(move || {
                let _attached = ctx.attach();
                for i in 0..SPANS {
                    let mut span = Span::start("stress");
                    span.set_label("at", (t * SPANS + i) as u64);
                    if i % 32 == 0 {
                        std::thread::yield_now();
                    }
                    if t < 2 && i % 500 == 0 {
                        assert!(agent.flush(Duration::from_secs(10)));
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        while done.load(std::sync::atomic::Ordering::SeqCst) < THREADS {
            assert!(agent.flush(Duration::from_secs(10)));
        }
    });
    tx.end();
    flush(agent);
    let stats = agent.stats();
    let spans = sink.spans();
    let mut seen: Vec<u64> = spans.iter().map(|s| s["context"]["tags"]["at"].as_f64().unwrap() as u64).collect();
    seen.sort_unstable();
    let before = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), before, "no span delivered twice");
    assert!(seen.iter().all(|&at| at < (THREADS * SPANS) as u64), "no span corrupted");
    assert!(spans.len() > 6 * 64, "the rings wrapped: {} delivered", spans.len());
    assert_eq!(spans.len() as u64 + stats.dropped.queue_full, (THREADS * SPANS) as u64, "{stats:?}");
    assert_eq!(stats.queued, spans.len() as u64 + 1, "every queued span (and the transaction) delivered");
    assert_eq!(stats.sent, stats.queued);
}

#[test]
fn batches_of_two_agents_on_one_thread_stay_apart() {
    let (a, sink_a) = memory_agent(|c| c);
    let (b, sink_b) = memory_agent(|c| c);
    let (ta, tb) = (a.transaction("a").start(), b.transaction("b").start());
    let (ca, cb) = (ta.context(), tb.context());
    for _ in 0..5 {
        ca.in_scope(|| Span::start("on a").end());
        cb.in_scope(|| Span::start("on b").end());
    }
    ta.end();
    tb.end();
    flush(&a);
    flush(&b);
    assert!(sink_a.spans().iter().all(|s| s["name"] == "on a") && sink_a.spans().len() == 5);
    assert!(sink_b.spans().iter().all(|s| s["name"] == "on b") && sink_b.spans().len() == 5);
}

/// A sink whose second write panics; when it never blocks (and so runs on the flushing thread),
/// its flush after the third write panics too.
struct Flaky {
    sink: MemorySink,
    writes: usize,
    never_blocks: bool,
}

impl Flaky {
    fn new(never_blocks: bool) -> (Flaky, MemorySink) {
        let sink = MemorySink::new();
        (Flaky { sink: sink.clone(), writes: 0, never_blocks }, sink)
    }
}

impl Sink for Flaky {
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
        self.writes += 1;
        if self.writes == 2 {
            panic!("sink bug in write");
        }
        self.sink.write(event, ctx);
    }

    fn flush(&mut self, _: &SinkContext<'_>, _: std::time::Instant) {
        if self.never_blocks && self.writes == 3 {
            panic!("sink bug in flush");
        }
    }

    fn never_blocks(&self) -> bool {
        self.never_blocks
    }
}

#[test]
fn a_panicking_sink_loses_what_it_held_not_the_thread_delivering() {
    // On the reporter thread, and (never blocking) on the flushing thread, where the flush's own
    // panic is caught too: neither reaches the caller. The write that panicked held one event;
    // the flush that panicked held none (every write before it was confirmed), so it costs none.
    for never_blocks in [false, true] {
        let (flaky, sink) = Flaky::new(never_blocks);
        let agent = Agent::builder().sink(flaky).build().unwrap();
        for _ in 0..3 {
            agent.transaction("t").start().end();
        }
        assert!(!agent.flush(Duration::from_secs(10)), "an event was lost: the flush says so");
        assert_eq!(sink.transactions().len(), 2);
        let stats = agent.stats();
        assert_eq!((stats.sent, stats.dropped.send_failed), (2, 1), "exactly the event in hand is lost");
        assert_eq!(stats.queued, stats.sent + stats.dropped.send_failed);
        agent.transaction("after").start().end();
        flush(&agent);
        assert_eq!(sink.transactions().len(), 3, "the agent still delivers");
    }
}

/// Holds events until flushed, then confirms them all; panics in `write` and in `flush` on a
/// fixed pseudo-random schedule, losing whatever it held at that moment.
struct Batching {
    held: u64,
    calls: u64,
    never_blocks: bool,
    /// Confirms this many more than it held, when set: a buggy sink.
    overclaim: u64,
}

impl Batching {
    fn unlucky(&mut self) -> bool {
        self.calls += 1;
        // About one call in 37, in no pattern a drain size could line up with.
        self.calls.wrapping_mul(0x9E37_79B9_7F4A_7C15).is_multiple_of(37)
    }
}

impl Sink for Batching {
    fn write(&mut self, _: &Event, ctx: &SinkContext<'_>) {
        if self.unlucky() {
            self.held = 0;
            panic!("batching sink bug in write");
        }
        self.held += 1;
        if self.held == 50 {
            ctx.record_sent(std::mem::take(&mut self.held) + self.overclaim);
        }
    }

    fn flush(&mut self, ctx: &SinkContext<'_>, _: std::time::Instant) {
        if self.unlucky() {
            self.held = 0;
            panic!("batching sink bug in flush");
        }
        ctx.record_sent(std::mem::take(&mut self.held) + self.overclaim);
    }

    fn never_blocks(&self) -> bool {
        self.never_blocks
    }
}

#[test]
fn the_accounting_stays_exact_whatever_a_batching_sink_panics_in() {
    for never_blocks in [false, true] {
        for overclaim in [0, 3] {
            let sink = Batching { held: 0, calls: 0, never_blocks, overclaim };
            let config = apm_runtime::Config::builder().transaction_max_spans(1_000_000u32).build().unwrap();
            let agent = Agent::builder().config(config).sink(sink).build().unwrap();
            for round in 0..20 {
                let tx = agent.transaction("batch").start();
                std::thread::scope(|s| {
                    for _ in 0..3 {
                        let ctx = tx.context();
                        s.spawn(move || {
                            let _in = ctx.attach();
                            (0..300).for_each(|_| Span::start("s").end());
                        });
                    }
                });
                tx.end();
                if round % 3 == 0 {
                    let _ = agent.flush(Duration::from_secs(10));
                }
            }
            let _ = agent.flush(Duration::from_secs(10));
            let stats = agent.stats();
            let d = stats.dropped;
            assert!(d.send_failed > 0, "the schedule made the sink panic: {stats:?}");
            assert_eq!(
                stats.queued,
                stats.sent + d.send_failed + d.rejected,
                "every queued event is sent or dropped, exactly (never_blocks {never_blocks}, overclaim {overclaim}): \
                 {stats:?}"
            );
            assert_eq!(stats.queued + d.queue_full, 20 * 901, "{stats:?}");
        }
    }
}

#[test]
fn one_thread_ending_spans_of_more_agents_than_it_keeps_rings_for_delivers_each_to_its_own() {
    // A thread keeps rings for 4 agents at most and caches the last one used: alternating over
    // six forces both the cache switch and the eviction of rings on every round.
    let agents: Vec<_> = (0..6).map(|_| memory_agent(|c| c.transaction_max_spans(10_000u32))).collect();
    let txs: Vec<_> = agents.iter().map(|(a, _)| a.transaction("many agents").start()).collect();
    for round in 0..50 {
        for (i, tx) in txs.iter().enumerate() {
            let _in_tx = tx.attach();
            let mut span = Span::start("s");
            span.set_label("agent", i as i64);
            span.set_label("round", round as i64);
        }
    }
    for tx in txs {
        tx.end();
    }
    for (i, (agent, sink)) in agents.iter().enumerate() {
        flush(agent);
        let spans = sink.spans();
        assert_eq!(spans.len(), 50, "agent {i} got every span of its own");
        for s in &spans {
            assert_eq!(s["context"]["tags"]["agent"], i as f64, "agent {i} got only its own spans: {s}");
        }
        assert_eq!(agent.stats().dropped.total(), 0);
    }
}

#[test]
fn a_sink_that_flushes_its_own_agent_gets_false_at_once_on_either_thread() {
    // Without the check, a never-blocking sink's flush would deadlock on the delivery it is
    // part of, and one on the reporter would wait out its timeout for its own answer.
    static AGENTS: std::sync::Mutex<Vec<&'static Agent>> = std::sync::Mutex::new(Vec::new());
    struct Reentrant {
        sink: MemorySink,
        never_blocks: bool,
        answers: std::sync::Arc<std::sync::Mutex<Vec<(bool, Duration)>>>,
    }
    impl Sink for Reentrant {
        fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
            self.sink.write(event, ctx);
            let agent = AGENTS.lock().unwrap()[usize::from(self.never_blocks)];
            let start = std::time::Instant::now();
            let flushed = agent.flush(Duration::from_secs(30));
            self.answers.lock().unwrap().push((flushed, start.elapsed()));
        }
        fn never_blocks(&self) -> bool {
            self.never_blocks
        }
    }
    let mut answers = Vec::new();
    for never_blocks in [false, true] {
        let (sink, seen) = (MemorySink::new(), std::sync::Arc::default());
        let reentrant = Reentrant { sink: sink.clone(), never_blocks, answers: std::sync::Arc::clone(&seen) };
        let agent: &'static Agent = Box::leak(Box::new(Agent::builder().sink(reentrant).build().unwrap()));
        AGENTS.lock().unwrap().push(agent);
        agent.transaction("t").start().end();
        flush(agent);
        assert_eq!(sink.transactions().len(), 1, "delivered");
        answers.push(seen);
    }
    for (never_blocks, seen) in [false, true].into_iter().zip(answers) {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "never_blocks {never_blocks}: the sink flushed once");
        let (flushed, took) = seen[0];
        assert!(!flushed, "never_blocks {never_blocks}: a flush from inside a sink reports false");
        assert!(took < Duration::from_secs(5), "never_blocks {never_blocks}: at once, not after the timeout: {took:?}");
    }
}
