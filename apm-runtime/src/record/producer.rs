//! The producing end of the hand-off, on the application's threads: each thread that ends spans
//! of an agent binds a [`Ring`] of its own, registered with that agent, and pushes finished
//! spans into it; it writes new spans into boxes the reporter sent back.
//!
//! # Invariants
//! - Every span is counted exactly once: `queued` by the reporter when it takes it from a ring,
//!   or `queue_full` / `shutdown` here when it cannot be put in one.
//! - Pushing never blocks: a full ring drops the span and counts it.
//! - No ring is registered with an agent that shut down (nothing would drain it).

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use super::context::{with_hot, Hot};
use super::recorder::Recorder;
use crate::handoff::{EmptyBox, FreeList, Ring};
use crate::model::event::SpanEvent;

/// A thread's ring for one agent.
struct Binding {
    agent: Arc<Recorder>,
    ring: Arc<Ring>,
}

impl Drop for Binding {
    fn drop(&mut self) {
        self.ring.close();
    }
}

/// Agents a thread keeps a ring for, at most: older bindings are let go (their rings drained
/// and forgotten by their reporters).
const BINDINGS: usize = 4;

/// The part of a thread's queue state that every span touches, kept in the thread's
/// [`Hot`](super::context::Hot) state: one offset from the thread pointer, with no lazy
/// registration and no borrow flag (which `LOCAL` has, being a `RefCell` with a destructor).
///
/// # Invariants
/// - `agent` and `ring` are null or those of `LOCAL`'s front binding, which keeps both alive:
///   bindings are let go only in [`Local::bind`], which caches the new front one, and in
///   `Local`'s drop, which clears the cache first.
/// - `free` is a chain of empty boxes this thread owns; `Local`'s drop frees it, and a thread
///   without `LOCAL` (being torn down) never keeps one.
pub(crate) struct HotQueue {
    agent: Cell<*const Recorder>,
    ring: Cell<*const Ring>,
    /// The producer's last view of the cached ring's `head`.
    seen_head: Cell<usize>,
    /// Span boxes the reporter has written and sent back: a new span is written into one
    /// instead of allocating (the reporter frees nothing, so the allocator's per-thread caches
    /// would otherwise never refill and every span would take malloc's slow path).
    free: FreeList,
}

impl HotQueue {
    pub(crate) const fn new() -> HotQueue {
        HotQueue {
            agent: Cell::new(std::ptr::null()),
            ring: Cell::new(std::ptr::null()),
            seen_head: Cell::new(0),
            free: FreeList::new(),
        }
    }
}

struct Local {
    /// The thread's rings, the most recently used first (almost always just one).
    bindings: Vec<Binding>,
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { bindings: Vec::new() }) };
}

impl Drop for Local {
    fn drop(&mut self) {
        with_hot(|h| {
            let q = &h.queue;
            q.agent.set(std::ptr::null());
            q.ring.set(std::ptr::null());
            q.free.free_all();
            h.close_bank();
            h.publish_orphan_rest();
        });
    }
}

/// Makes sure this thread's queue state exists, so its destructor (which empties the context
/// bank and frees the thread's spare boxes) runs when the thread exits. `false` once it is gone.
pub(crate) fn register_exit_hook() -> bool {
    LOCAL.try_with(|_| ()).is_ok()
}

impl Local {
    /// The binding for `agent`, moved to the front (a new ring registered with it if needed),
    /// and cached in `q`.
    #[cold]
    fn bind(&mut self, agent: &Arc<Recorder>, q: &HotQueue) {
        match self.bindings.iter().position(|b| Arc::ptr_eq(&b.agent, agent)) {
            Some(i) => self.bindings[..=i].rotate_right(1),
            None => {
                let ring = Arc::new(Ring::new(agent.config.max_queue_size, agent.inlet.counters.clone()));
                agent.inlet.rings.register(ring.clone());
                self.bindings.insert(0, Binding { agent: agent.clone(), ring });
                self.bindings.truncate(BINDINGS);
            }
        }
        let front = &self.bindings[0];
        q.agent.set(Arc::as_ptr(&front.agent));
        q.ring.set(Arc::as_ptr(&front.ring));
        // Stale for this ring: the next push reads the real `head`.
        q.seen_head.set(0);
    }
}

/// An empty box for a new span: the next of this thread's free list, else a chain the reporter
/// sent back to `agent`, else a new allocation.
#[inline(always)]
pub(crate) fn empty_box(h: &Hot, agent: &Recorder) -> EmptyBox {
    match h.queue.free.take() {
        Some(b) => b,
        None => refill_and_take(h, agent),
    }
}

#[inline(never)]
fn refill_and_take(h: &Hot, agent: &Recorder) -> EmptyBox {
    // A thread whose `LOCAL` is gone could not free a chain at its exit: it takes none.
    if let Some(chain) = agent.inlet.returned_boxes().filter(|_| register_exit_hook()) {
        h.queue.free.refill(chain);
    }
    h.queue.free.take().unwrap_or_else(|| Box::new(std::mem::MaybeUninit::uninit()))
}

/// Hands a finished span to `agent`'s reporter through this thread's ring; drops and counts it
/// when the ring is full or the agent has shut down.
#[inline(always)]
pub(crate) fn push_span(h: &Hot, agent: &Arc<Recorder>, span: Box<SpanEvent>) {
    let q = &h.queue;
    if q.agent.get() != Arc::as_ptr(agent) {
        return push_span_binding(h, agent, span);
    }
    // SAFETY: a cached ring is kept alive by this thread's front binding (see `HotQueue`).
    let ring = unsafe { &*q.ring.get() };
    if let Err(span) = ring.push_quick(span, q.seen_head.get()) {
        push_span_filling(q, ring, agent, span);
    }
}

/// `push_span` once the ring looks half full: looks at `head` again, and wakes the reporter, or
/// drops and counts the span if the ring is really full.
#[cold]
#[inline(never)]
fn push_span_filling(q: &HotQueue, ring: &Ring, agent: &Recorder, span: Box<SpanEvent>) {
    let mut seen = q.seen_head.get();
    let pushed = ring.push(span, &mut seen);
    q.seen_head.set(seen);
    match pushed {
        Ok(false) => {}
        Ok(true) => agent.inlet.wake(),
        Err(span) => {
            drop(span);
            agent.inlet.count_full(1);
        }
    }
}

/// `push_span` for a thread whose cached ring is another agent's, or that has none yet.
#[inline(never)]
fn push_span_binding(h: &Hot, agent: &Arc<Recorder>, span: Box<SpanEvent>) {
    if agent.inlet.is_shut_down() {
        // Nothing drains a ring registered now: count the span and keep nothing (a thread that
        // outlived the agent under a context it captured must not pile up rings).
        drop(span);
        return agent.inlet.count_full(1);
    }
    match LOCAL.try_with(|local| local.borrow_mut().bind(agent, &h.queue)) {
        Ok(()) => push_span(h, agent, span),
        Err(_) => {
            // The span ended while this thread's locals were being torn down (a span kept in
            // another thread-local): its ring is gone, so count it rather than lose it silently.
            drop(span);
            agent.inlet.count_lost(1);
        }
    }
}
#[cfg(test)]
mod tests {
    #[test]
    fn threads_that_outlive_their_agent_register_no_ring_and_count_their_spans() {
        let agent = crate::Agent::builder().sink(crate::report::MemorySink::new()).build().unwrap();
        let inner = agent.inner.clone();
        let tx = agent.transaction("outlives the agent").start();
        let ctx = tx.context();
        drop(agent);
        let threads: Vec<_> = (0..20)
            .map(|_| {
                let ctx = ctx.clone();
                std::thread::spawn(move || ctx.in_scope(|| (0..10).for_each(|_| crate::Span::start("late").end())))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(inner.inlet.rings.registered(), 0, "no thread registered a ring with the dead agent");
        assert_eq!(inner.inlet.counters.snapshot().dropped.shutdown, 200, "every late span counted");
        drop((ctx, tx));
    }

    #[test]
    fn spans_a_bound_thread_ends_after_the_shutdown_are_counted_when_its_ring_is_freed() {
        use std::sync::mpsc::channel;
        // No metricsets at shutdown: only the spans are counted here.
        let config = crate::Config::builder().metrics_interval(std::time::Duration::ZERO).build().unwrap();
        let agent = crate::Agent::builder().config(config).sink(crate::report::MemorySink::new()).build().unwrap();
        let counters = agent.inner.inlet.counters.clone();
        let tx = agent.transaction("outlived").start();
        let ctx = tx.context();
        let (bound, is_bound) = channel();
        let (go, wait) = channel::<()>();
        let worker = std::thread::spawn(move || {
            ctx.in_scope(|| {
                crate::Span::start("before").end();
                bound.send(()).unwrap();
                wait.recv().unwrap();
                // The ring is still bound here: these go into it, after the agent's final drain.
                (0..10).for_each(|_| crate::Span::start("late").end());
            })
        });
        is_bound.recv().unwrap();
        drop(agent);
        go.send(()).unwrap();
        worker.join().unwrap();
        drop(tx);
        let stats = counters.snapshot();
        assert_eq!(stats.queued, 1, "the early span");
        // The ten late spans once their ring was freed, and the transaction, which ended after
        // the shutdown too.
        assert_eq!(stats.dropped.shutdown, 11);
    }
}
