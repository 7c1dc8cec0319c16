//! The transaction reaches spans created on other threads: std, threadpool, rayon, crossbeam.

mod macro_support;

use apm_runtime::{propagate, span, transaction, Context};
use macro_support::{assert_child, record};

#[span]
fn leaf(tag: &str) -> usize {
    tag.len()
}

#[transaction]
fn with_std_spawn() {
    let tag = String::from("a");
    let h = std::thread::spawn(move || leaf(&tag));
    assert_eq!(h.join().unwrap(), 1);
    // A non-move closure that names no local stays 'static.
    std::thread::spawn(|| leaf("bb")).join().unwrap();
    leaf("here");
}

#[test]
fn std_thread_spawn() {
    let r = record(with_std_spawn);
    let tx = r.tx("with_std_spawn");
    assert_eq!(r.spans.len(), 2, "{:#?}", r.spans);
    // `|| leaf("bb")` is not `move`: #[transaction] carries the context into move closures only.
    for s in &r.spans {
        if s["sync"] == false {
            assert_child(s, tx, tx, false);
        } else {
            assert_child(s, tx, tx, true);
        }
    }
    assert_eq!(r.spans.iter().filter(|s| s["sync"] == false).count(), 1);
}

#[transaction]
#[propagate]
fn with_std_spawn_propagate() {
    std::thread::spawn(|| leaf("bb")).join().unwrap();
}

#[test]
fn std_thread_spawn_non_move_under_propagate() {
    let r = record(with_std_spawn_propagate);
    let tx = r.tx("with_std_spawn_propagate");
    assert_child(r.span("leaf"), tx, tx, false);
}

#[transaction]
fn with_threadpool(jobs: usize) {
    let pool = threadpool::ThreadPool::new(2);
    for i in 0..jobs {
        pool.execute(move || {
            leaf(&i.to_string());
        });
    }
    pool.execute(
        #[span(name = "job", type = "worker")]
        move || {
            leaf("in job");
        },
    );
    pool.join();
}

#[test]
fn threadpool_execute() {
    let r = record(|| with_threadpool(4));
    let tx = r.tx("with_threadpool");
    let job = r.span("job");
    assert_eq!(job["type"], "worker");
    assert_child(job, tx, tx, false);
    let leaves = r.spans_named("leaf");
    assert_eq!(leaves.len(), 5);
    let under_job: Vec<_> = leaves.iter().filter(|s| s["parent_id"] == job["id"]).collect();
    assert_eq!(under_job.len(), 1);
    // same thread as the job span
    assert_child(under_job[0], job, tx, true);
    for s in leaves.iter().filter(|s| s["parent_id"] != job["id"]) {
        assert_child(s, tx, tx, false);
    }
}

#[transaction]
fn with_nested_pools() {
    let outer = threadpool::ThreadPool::new(2);
    let inner = threadpool::ThreadPool::new(2);
    for _ in 0..2 {
        let inner = inner.clone();
        outer.execute(
            #[span(name = "outer")]
            move || {
                for _ in 0..2 {
                    inner.execute(
                        #[span(name = "inner")]
                        move || {
                            leaf("deep");
                        },
                    );
                }
            },
        );
    }
    outer.join();
    inner.join();
}

#[test]
fn nested_pools() {
    let r = record(with_nested_pools);
    let tx = r.tx("with_nested_pools");
    let outers = r.spans_named("outer");
    let inners = r.spans_named("inner");
    assert_eq!((outers.len(), inners.len()), (2, 4));
    for o in &outers {
        assert_child(o, tx, tx, false);
        let mine: Vec<_> = inners.iter().filter(|i| i["parent_id"] == o["id"]).collect();
        assert_eq!(mine.len(), 2, "each outer task spawned two inner tasks");
        for i in mine {
            assert_child(i, o, tx, false);
            let leaf = r.spans.iter().find(|l| l["parent_id"] == i["id"]).expect("leaf under inner");
            assert_child(leaf, i, tx, true);
        }
    }
}

#[transaction]
fn rayon_all() {
    rayon_parts(&[1, 2, 3]);
}

#[propagate]
fn rayon_parts(v: &[u32]) {
    rayon::join(|| leaf("join-a"), || leaf("join-b"));
    v.par_iter_for_each_leaf();
    rayon::scope(|s| {
        s.spawn(|_| {
            leaf("scope");
        });
    });
    let (tx, rx) = std::sync::mpsc::channel();
    rayon::spawn(move || {
        leaf("spawn");
        tx.send(()).unwrap();
    });
    rx.recv().unwrap();
}

trait ParLeaf {
    fn par_iter_for_each_leaf(&self);
}
impl ParLeaf for [u32] {
    #[propagate]
    fn par_iter_for_each_leaf(&self) {
        use rayon::prelude::*;
        self.par_iter().for_each(|x| {
            leaf(&format!("par{x}"));
        });
        // Parameter inference through the rewrite.
        let lens: Vec<usize> = vec!["a".to_string()].par_iter().map(|x| x.len()).collect();
        assert_eq!(lens, vec![1]);
    }
}

#[test]
fn rayon_spawn_join_scope_par_iter() {
    let r = record(rayon_all);
    let tx = r.tx("rayon_all");
    let leaves = r.spans_named("leaf");
    assert_eq!(leaves.len(), 2 + 3 + 1 + 1, "{:#?}", r.spans);
    for s in leaves {
        // Called from outside the pool, rayon runs all of it on pool threads.
        assert_child(s, tx, tx, false);
    }
}

#[transaction]
fn with_std_scope(parts: &[Vec<u32>]) -> u32 {
    let mut total = 0;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|p| {
                s.spawn(
                    #[span(name = "part")]
                    || p.iter().sum::<u32>(),
                )
            })
            .collect();
        for h in handles {
            total += h.join().unwrap();
        }
        s.spawn(
            #[propagate]
            || leaf("scoped"),
        );
    });
    total
}

#[test]
fn std_thread_scope() {
    let r = record(|| assert_eq!(with_std_scope(&[vec![1, 2], vec![3]]), 6));
    let tx = r.tx("with_std_scope");
    assert_eq!(r.spans_named("part").len(), 2);
    for s in r.spans_named("part") {
        assert_child(s, tx, tx, false);
    }
    assert_child(r.span("leaf"), tx, tx, false);
}

#[transaction]
#[propagate]
fn with_crossbeam_scope(items: &[&str]) -> usize {
    let mut n = 0;
    crossbeam::scope(|s| {
        for item in items {
            s.spawn(|_| leaf(item));
        }
    })
    .unwrap();
    // FnMut closure mutating a local is untouched (no `move` added).
    items.iter().for_each(|i| n += i.len());
    n
}

#[test]
fn crossbeam_scope() {
    let r = record(|| assert_eq!(with_crossbeam_scope(&["a", "bc"]), 3));
    let tx = r.tx("with_crossbeam_scope");
    assert_eq!(r.spans.len(), 2);
    for s in &r.spans {
        assert_child(s, tx, tx, false);
    }
}

#[transaction(name = "first")]
fn first(pool: &threadpool::ThreadPool) {
    pool.execute(move || {
        leaf("one");
    });
    pool.join();
}

#[transaction(name = "second")]
fn second(pool: &threadpool::ThreadPool) {
    pool.execute(move || {
        leaf("two");
    });
    pool.join();
}

#[test]
fn pooled_thread_reused_by_two_transactions() {
    let pool = threadpool::ThreadPool::new(1);
    let r = record(|| {
        first(&pool);
        second(&pool);
    });
    let (t1, t2) = (r.tx("first"), r.tx("second"));
    assert_ne!(t1["trace_id"], t2["trace_id"]);
    let spans = r.spans_named("leaf");
    assert_eq!(spans.len(), 2);
    assert!(spans.iter().any(|s| s["transaction_id"] == t1["id"] && s["parent_id"] == t1["id"]));
    assert!(spans.iter().any(|s| s["transaction_id"] == t2["id"] && s["parent_id"] == t2["id"]));
    // The pool thread went back to an empty context after each task.
    let (tx, rx) = std::sync::mpsc::channel();
    pool.execute(move || tx.send(Context::current().is_empty()).unwrap());
    assert!(rx.recv().unwrap());
}

#[transaction(propagate = false)]
fn not_propagated() {
    std::thread::spawn(move || leaf("lost")).join().unwrap();
    // Markers still work with propagate = false.
    std::thread::spawn(
        #[propagate]
        move || leaf("kept"),
    )
    .join()
    .unwrap();
}

#[test]
fn propagate_false() {
    let r = record(not_propagated);
    let tx = r.tx("not_propagated");
    assert_eq!(r.spans.len(), 1, "only the marked closure carries the context");
    assert_child(&r.spans[0], tx, tx, false);
}

// `#[span]` and `#[propagate]` on one fn: the sync span's body runs as a closure, and the
// non-move closures inside it borrow the context bound inside that closure, after the span is
// current, so scoped threads start under the span.
#[span]
#[propagate]
fn scoped_under_span(words: &[&str]) -> usize {
    std::thread::scope(|s| {
        let handles: Vec<_> = words.iter().map(|w| s.spawn(|| leaf(w))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    })
}

#[transaction]
fn with_scoped_under_span() -> usize {
    scoped_under_span(&["a", "bb"])
}

#[test]
fn span_and_propagate_on_one_fn_parent_scoped_threads_under_the_span() {
    let r = record(|| assert_eq!(with_scoped_under_span(), 3));
    let tx = r.tx("with_scoped_under_span");
    let span = r.span("scoped_under_span");
    assert_child(span, tx, tx, true);
    let leaves = r.spans_named("leaf");
    assert_eq!(leaves.len(), 2, "{:#?}", r.spans);
    for l in leaves {
        assert_child(l, span, tx, false);
    }
}

// Borrowing (non-`move`) closures handed to rayon and to scoped threads (issue 22 §2). A
// `#[transaction]` or `#[span]` alone carries `move` closures only: carrying every closure costs an
// attach around each call, which a hot iterator closure in the same fn would pay per element
// (apm-bench `s6`: `v.iter().map(|x| x + 1)` in a `#[span]` fn goes from 8.4 to 122 instructions
// an element, 1 ns to 16 ns). `#[propagate]` on the fn, or on the one closure, carries them.

mod borrowing {
    use super::*;
    use rayon::prelude::*;

    #[span]
    pub fn work(i: u32) -> u32 {
        i
    }

    #[transaction]
    pub fn par_iter_unmarked() {
        (0..8u32).into_par_iter().for_each(|i| {
            work(i);
        });
    }

    #[transaction]
    #[propagate]
    pub fn par_iter_under_propagate() {
        let base = 1;
        // Borrows `base`: the closure borrows the fn's context too.
        (0..8u32).into_par_iter().for_each(|i| {
            work(i + base);
        });
    }

    #[transaction]
    pub fn par_iter_marked() {
        (0..8u32).into_par_iter().for_each(
            #[propagate]
            |i| {
                work(i);
            },
        );
    }

    #[transaction]
    pub fn scope_unmarked() -> u32 {
        let v = [1, 2];
        std::thread::scope(|s| s.spawn(|| work(v[0]) + work(v[1])).join().unwrap())
    }

    #[transaction]
    #[propagate]
    pub fn scope_under_propagate() -> u32 {
        let v = [1, 2];
        std::thread::scope(|s| s.spawn(|| work(v[0]) + work(v[1])).join().unwrap())
    }

    #[transaction]
    pub fn scope_marked() -> u32 {
        let v = [1, 2];
        std::thread::scope(|s| {
            s.spawn(
                #[propagate]
                || work(v[0]) + work(v[1]),
            )
            .join()
            .unwrap()
        })
    }
}

#[test]
fn rayon_par_iter_with_borrowing_closures() {
    for (name, f) in [
        ("par_iter_under_propagate", borrowing::par_iter_under_propagate as fn()),
        ("par_iter_marked", borrowing::par_iter_marked),
    ] {
        let r = record(f);
        let tx = r.tx(name);
        let spans = r.spans_named("work");
        assert_eq!(spans.len(), 8, "{name}: {:#?}", r.spans);
        for s in spans {
            // Called from outside the pool, rayon runs every item on pool threads.
            assert_child(s, tx, tx, false);
        }
    }
    // Unmarked, the pool threads run with no context: no span is started there.
    let r = record(borrowing::par_iter_unmarked);
    r.tx("par_iter_unmarked");
    assert!(r.spans.is_empty(), "{:#?}", r.spans);
}

#[test]
fn scoped_threads_with_borrowing_closures() {
    for (name, f) in [
        ("scope_under_propagate", borrowing::scope_under_propagate as fn() -> u32),
        ("scope_marked", borrowing::scope_marked),
    ] {
        let r = record(|| assert_eq!(f(), 3));
        let tx = r.tx(name);
        let spans = r.spans_named("work");
        assert_eq!(spans.len(), 2, "{name}: {:#?}", r.spans);
        for s in spans {
            assert_child(s, tx, tx, false);
        }
    }
    let r = record(|| assert_eq!(borrowing::scope_unmarked(), 3));
    r.tx("scope_unmarked");
    assert!(r.spans.is_empty(), "{:#?}", r.spans);
}
