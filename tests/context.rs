//! The context crosses threads through the manual API (`Context::wrap`, `attach`,
//! `wrap_future`) with the right parents, and never leaks from one task to the next.

mod support;

use std::sync::{Arc, Barrier};

use apm_runtime::{Context, Span};
use support::{flush, memory_agent, named};

#[test]
fn std_thread_spawn_with_attach() {
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("spawn").start();
    let _active = tx.attach();
    let outer = Span::start("outer");
    let ctx = outer.context();
    std::thread::spawn(move || {
        let _g = ctx.attach();
        let inner = Span::start("on worker");
        inner.context().in_scope(|| Span::start("nested on worker").end());
    })
    .join()
    .unwrap();
    outer.end();
    drop(_active);
    tx.end();
    flush(&agent);

    let (txs, spans) = (sink.transactions(), sink.spans());
    let (outer, worker, nested) =
        (named(&spans, "outer"), named(&spans, "on worker"), named(&spans, "nested on worker"));
    assert_eq!(outer["parent_id"], txs[0]["id"]);
    assert_eq!(worker["parent_id"], outer["id"]);
    assert_eq!(nested["parent_id"], worker["id"]);
    assert_eq!(outer["sync"], true);
    assert_eq!(worker["sync"], false, "started on another thread than its parent");
    assert_eq!(nested["sync"], true, "same thread as its parent");
    for s in &spans {
        assert_eq!(s["transaction_id"], txs[0]["id"]);
        assert_eq!(s["trace_id"], txs[0]["trace_id"]);
    }
}

#[test]
fn thread_pool_with_wrap() {
    let (agent, sink) = memory_agent(|c| c);
    let pool = threadpool::ThreadPool::new(3);
    let tx = agent.transaction("fan out").start();
    let _active = tx.attach();
    for i in 0..12 {
        pool.execute(Context::current().wrap(move || Span::start(format!("task {i}")).end()));
    }
    pool.join();
    drop(_active);
    tx.end();
    flush(&agent);
    let spans = sink.spans();
    assert_eq!(spans.len(), 12);
    let tx_id = &sink.transactions()[0]["id"];
    assert!(spans.iter().all(|s| &s["parent_id"] == tx_id && s["sync"] == false));
    assert_eq!(sink.transactions()[0]["span_count"]["started"], 12);
}

#[test]
fn scoped_threads_borrowing_the_context() {
    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("scoped").start();
    let ctx = tx.context();
    let mut results = vec![0u64; 4];
    std::thread::scope(|s| {
        for (i, slot) in results.iter_mut().enumerate() {
            let ctx = &ctx;
            s.spawn(move || {
                let _g = ctx.attach();
                let _span = Span::start(format!("chunk {i}"));
                *slot = i as u64 * 2;
            });
        }
    });
    tx.end();
    flush(&agent);
    assert_eq!(results, [0, 2, 4, 6]);
    let spans = sink.spans();
    assert_eq!(spans.len(), 4);
    assert!(spans.iter().all(|s| s["parent_id"] == sink.transactions()[0]["id"] && s["sync"] == false));
}

#[test]
fn a_pooled_thread_never_reports_under_a_stale_transaction_even_after_a_panic() {
    let (agent, sink) = memory_agent(|c| c);
    // One worker thread, so both transactions' tasks run on the same OS thread.
    let pool = threadpool::ThreadPool::new(1);

    let first = agent.transaction("first").start();
    let ctx = first.context();
    pool.execute(ctx.wrap(|| {
        let _s = Span::start("first: panics");
        panic!("task failed");
    }));
    pool.join();
    // threadpool replaces a worker that panicked; make the next tasks run on a thread that
    // has run a first-transaction task that did *not* panic, too.
    pool.execute(first.context().wrap(|| Span::start("first: fine").end()));
    pool.join();
    first.end();

    // Work handed to the same pool without a context must record nothing.
    pool.execute(|| {
        assert!(Context::current().is_empty(), "the previous task's context did not leak");
        Span::start("orphan").end();
    });
    pool.join();

    let second = agent.transaction("second").start();
    pool.execute(second.context().wrap(|| Span::start("second: task").end()));
    pool.join();
    second.end();
    assert_eq!(pool.panic_count(), 1);
    flush(&agent);

    let (txs, spans) = (sink.transactions(), sink.spans());
    let (first, second) = (named(&txs, "first"), named(&txs, "second"));
    assert_eq!(named(&spans, "first: panics")["transaction_id"], first["id"]);
    assert_eq!(named(&spans, "first: panics")["outcome"], "failure");
    assert_eq!(named(&spans, "first: fine")["transaction_id"], first["id"]);
    assert_eq!(named(&spans, "second: task")["transaction_id"], second["id"]);
    assert_eq!(named(&spans, "second: task")["parent_id"], second["id"]);
    assert!(spans.iter().all(|s| s["name"] != "orphan"));
    assert_ne!(first["trace_id"], second["trace_id"]);
}

#[test]
fn attach_guards_restore_in_order_and_on_unwind() {
    let (agent, _sink) = memory_agent(|c| c);
    let tx = agent.transaction("guards").start();
    assert!(Context::current().is_empty());
    let g1 = tx.attach();
    let span = Span::start("s");
    {
        let _g2 = span.attach();
        assert_eq!(Context::current().parent_id(), span.id());
    }
    assert_eq!(Context::current().parent_id(), tx.id());
    let ctx = span.context();
    let r = std::panic::catch_unwind(move || {
        let _g = ctx.attach();
        panic!("unwind through the guard");
    });
    assert!(r.is_err());
    assert_eq!(Context::current().parent_id(), tx.id(), "restored during unwinding");
    drop(g1);
    assert!(Context::current().is_empty());
}

#[test]
fn futures_carry_the_context_across_polls_on_other_threads() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context as TaskCx, Poll, Wake, Waker};

    /// Pending once, so the second poll can happen on another thread.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    let (agent, sink) = memory_agent(|c| c);
    let tx = agent.transaction("async").start();
    let fut = tx.context().wrap_future(async {
        Span::start("before yield").end();
        YieldOnce(false).await;
        Span::start("after yield").end();
    });
    let mut fut = Box::pin(fut);
    let waker = Waker::from(Arc::new(Noop));
    assert!(fut.as_mut().poll(&mut TaskCx::from_waker(&waker)).is_pending());
    assert!(Context::current().is_empty(), "detached between polls");
    let barrier = Arc::new(Barrier::new(1));
    std::thread::spawn(move || {
        barrier.wait();
        let waker = Waker::from(Arc::new(Noop));
        assert!(fut.as_mut().poll(&mut TaskCx::from_waker(&waker)).is_ready());
    })
    .join()
    .unwrap();
    tx.end();
    flush(&agent);
    let spans = sink.spans();
    assert_eq!(named(&spans, "before yield")["sync"], true);
    assert_eq!(named(&spans, "after yield")["sync"], false);
    assert!(spans.iter().all(|s| s["parent_id"] == sink.transactions()[0]["id"]));
}

#[test]
fn without_a_transaction_spans_are_no_ops() {
    let (agent, sink) = memory_agent(|c| c);
    let span = Span::start("nothing");
    assert!(!span.is_recording());
    assert!(span.context().is_empty());
    span.end();
    apm_runtime::capture_error(&std::io::Error::other("no transaction"));
    flush(&agent);
    assert!(sink.events().is_empty());
    assert_eq!(agent.stats().queued, 0);
}

#[test]
fn in_scope_runs_the_closure_in_a_current_span_and_ends_it_on_return_or_panic() {
    let (agent, sink) = memory_agent(|c| c);
    // No transaction: the closure just runs.
    assert!(Span::in_scope("nowhere", || Context::current().is_empty()));

    let tx = agent.transaction("scoped").start();
    let active = tx.attach();
    let inner_parent = Span::builder("query").with_type("db").in_scope(|| {
        Span::in_scope("nested", || ());
        Context::current().parent_id()
    });
    let caught = std::panic::catch_unwind(|| Span::in_scope("panics", || panic!("in scope")));
    assert!(caught.is_err());
    let explicit = Context::current();
    std::thread::spawn(move || Span::builder("on another thread").child_of(&explicit).in_scope(|| ())).join().unwrap();
    drop(active);
    let tx_id = tx.context().parent_id().unwrap().to_string();
    tx.end();
    flush(&agent);

    let spans = sink.spans();
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let query = named(&spans, "query");
    assert_eq!(query["type"], "db");
    assert_eq!(query["parent_id"], tx_id.as_str());
    assert_eq!(inner_parent.map(|id| id.to_string()), query["id"].as_str().map(String::from), "current inside");
    assert_eq!(named(&spans, "nested")["parent_id"], query["id"]);
    assert_eq!(named(&spans, "panics")["outcome"], "failure");
    assert_eq!(named(&spans, "on another thread")["parent_id"], query["parent_id"]);
    assert_eq!(sink.errors().len(), 1, "the panic is reported once");
}
