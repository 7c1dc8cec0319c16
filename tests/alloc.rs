//! Scenario 2 allocates nothing: a span in a function with no current transaction, or under an
//! unsampled one, and capturing + attaching a context, count zero allocations on the calling
//! thread (a counting `#[global_allocator]`; the agent's reporter thread is not counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use apm_runtime::report::MemorySink;
use apm_runtime::{Agent, Config, Context, Span};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: defers to the system allocator; only counts, per thread, without allocating.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(|c| c.get());
    f();
    ALLOCS.with(|c| c.get()) - before
}

/// The function of scenario 2, as the `#[span]` macro lays it out.
#[inline(never)]
fn instrumented(x: u64) -> u64 {
    let span = Span::start("instrumented");
    let _in_span = span.attach();
    black_box(x) * 2
}

/// The same function through the `#[span]` macro.
#[apm_runtime::span]
#[inline(never)]
fn instrumented_macro(x: u64) -> u64 {
    black_box(x) * 2
}

/// A span with a label whose value allocates when it is recorded (a `String` argument).
#[apm_runtime::span(labels(user))]
#[inline(never)]
fn labeled(user: &String) -> usize {
    black_box(user.len())
}

fn agent(sample_rate: f64) -> Agent {
    let config = Config::builder().transaction_sample_rate(sample_rate).build().unwrap();
    Agent::builder().config(config).sink(MemorySink::new()).build().unwrap()
}

#[test]
fn span_without_transaction_allocates_nothing() {
    let agent = agent(1.0);
    let _default = agent.set_default();
    black_box(instrumented(1)); // warm up thread-locals
    black_box(instrumented_macro(1));
    let n = allocations_in(|| {
        for i in 0..1000 {
            black_box(instrumented(i));
            black_box(instrumented_macro(i));
        }
    });
    assert_eq!(n, 0, "{n} allocations for 2000 spans outside any transaction");
}

#[test]
fn span_under_unsampled_transaction_allocates_nothing() {
    let agent = agent(0.0);
    let tx = agent.transaction("unsampled").start();
    assert!(!tx.is_sampled());
    let _active = tx.attach();
    black_box(instrumented(1));
    black_box(instrumented_macro(1));
    let n = allocations_in(|| {
        for i in 0..1000 {
            black_box(instrumented(i));
            black_box(instrumented_macro(i));
        }
    });
    assert_eq!(n, 0, "{n} allocations for 2000 spans under an unsampled transaction");
    drop(_active);
    tx.end();
    agent.flush(Duration::from_secs(5));
}

#[test]
fn labels_of_unrecorded_spans_are_not_even_evaluated() {
    let user = String::from("ada");
    let sampled = agent(1.0);
    let _default = sampled.set_default();
    black_box(labeled(&user));
    let n = allocations_in(|| {
        for _ in 0..100 {
            black_box(labeled(&user));
        }
    });
    assert_eq!(n, 0, "{n} allocations for 100 labeled spans outside any transaction");
    let unsampled = agent(0.0);
    let tx = unsampled.transaction("unsampled").start();
    let _active = tx.attach();
    let n = allocations_in(|| {
        for _ in 0..100 {
            black_box(labeled(&user));
        }
    });
    assert_eq!(n, 0, "{n} allocations for 100 labeled spans in an unsampled transaction");
    drop(_active);
    tx.end();
    // And under a sampled one the label is there.
    let sink = MemorySink::new();
    let recording = Agent::builder().sink(sink.clone()).build().unwrap();
    let tx = recording.transaction("sampled").start();
    let active = tx.attach();
    black_box(labeled(&user));
    drop(active);
    tx.end();
    recording.flush(Duration::from_secs(5));
    assert_eq!(sink.spans()[0]["context"]["tags"]["user"], "ada");
}

#[test]
fn capturing_and_attaching_a_context_allocates_nothing() {
    let agent = agent(1.0);
    let tx = agent.transaction("sampled").start();
    let _active = tx.attach();
    let warm = Context::current();
    drop(warm.attach());
    let n = allocations_in(|| {
        for _ in 0..1000 {
            let ctx = Context::current();
            let _g = ctx.attach();
            black_box(&ctx);
        }
    });
    assert_eq!(n, 0, "{n} allocations for 1000 context captures + attaches");
    // Also across a thread: capture here (counted), attach there (counted on that thread).
    let mut captured = None;
    let here = allocations_in(|| captured = Some(Context::current()));
    assert_eq!(here, 0);
    let ctx = captured.unwrap();
    let there = std::thread::spawn(move || {
        drop(ctx.attach()); // warm up the thread-locals of this new thread
        allocations_in(|| drop(ctx.attach()))
    })
    .join()
    .unwrap();
    assert_eq!(there, 0, "attaching on another thread allocated");
    drop(_active);
    tx.end();
    agent.flush(Duration::from_secs(5));
}
