//! The hand-off from application threads to the reporter thread.
//!
//! Finished spans are not sent one by one: each thread collects them in a small local batch
//! and hands the batch over when it is full, when a span whose parent runs on another thread
//! ends (the thread's share of the work is done), when the thread leaves its last attached
//! context (a pool task ends, a future's poll returns), when a transaction ends on it, or when
//! the agent is flushed from it. One channel send (and at most one wake-up of the reporter) is
//! thus shared by up to [`BATCH`] spans, and the emptied batch vectors come back from the
//! reporter for reuse, so the steady state allocates nothing.
//!
//! # Invariants
//! - A span is counted (queued or dropped) when its batch is handed over; until then it is in
//!   exactly one thread's batch. A batch only holds spans of one agent.
//! - Handing over never blocks: a batch that does not fit in the queue is dropped and counted.

use std::cell::RefCell;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::sync::Arc;

use crate::agent::AgentInner;
use crate::event::{Event, SpanEvent};

/// Spans per batch: large enough to amortize the channel, small enough that a busy thread's
/// spans reach the reporter promptly.
pub(crate) const BATCH: usize = 64;

/// Spans, each in the box it was recorded in: a span is built once and then only its pointer
/// moves (clippy's `vec_box` assumes the elements could live inline; here that would mean
/// copying every 200-byte event twice more).
#[allow(clippy::vec_box)]
pub(crate) type SpanBoxes = Vec<Box<SpanEvent>>;

/// A span box whose event the reporter has written and dropped: a new span is written into it
/// in place, with nothing old to drop on the application thread.
pub(crate) type EmptyBox = Box<MaybeUninit<SpanEvent>>;

/// Empty span boxes, on their way back from the reporter or kept by a thread for reuse.
pub(crate) type EmptyBoxes = Vec<EmptyBox>;

/// Drops the event in `span`, keeping its allocation (the reporter does this once it has written
/// the event, so that the application thread never pays for the drop).
pub(crate) fn emptied(span: Box<SpanEvent>) -> EmptyBox {
    let raw = Box::into_raw(span);
    // SAFETY: `raw` came from a live box; after dropping its value in place the allocation is
    // an uninitialized `SpanEvent`, which `MaybeUninit` has the same layout as.
    unsafe {
        std::ptr::drop_in_place(raw);
        Box::from_raw(raw.cast::<MaybeUninit<SpanEvent>>())
    }
}

/// Reuses an empty vector of one box type as a vector of the other (batches and free lists
/// trade vectors back and forth).
pub(crate) fn retyped<A, B>(v: Vec<Box<A>>) -> Vec<Box<B>> {
    debug_assert!(v.is_empty());
    let mut v = ManuallyDrop::new(v);
    v.clear();
    // SAFETY: the vector is empty, and `Box<A>` and `Box<B>` (both thin pointers to sized types)
    // have the same size and alignment, so the allocation's layout is the same for both.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<Box<B>>(), 0, v.capacity()) }
}

/// What travels through the queue.
pub(crate) enum Message {
    One(Event),
    Spans(SpanBoxes),
}

impl Message {
    /// How many events this message carries (the queue bound is in events).
    pub(crate) fn len(&self) -> usize {
        match self {
            Message::One(_) => 1,
            Message::Spans(v) => v.len(),
        }
    }
}

struct Local {
    agent: Option<Arc<AgentInner>>,
    spans: SpanBoxes,
    /// Span boxes the reporter has written and sent back: a new span overwrites one instead
    /// of allocating (the reporter frees nothing, so the allocator's per-thread caches would
    /// otherwise never refill and every span would take malloc's slow path).
    free: EmptyBoxes,
}

impl Local {
    fn hand_over(&mut self) {
        // Taking the agent keeps a finished test's agent from being kept alive by a thread.
        if let Some(agent) = self.agent.take() {
            match self.spans.len() {
                0 => {}
                // The common case when each pool task ends its own span: the span travels in a
                // queue slot of its own, and the thread keeps its batch vector.
                1 => agent.enqueue(Message::One(Event::Span(self.spans.pop().expect("one span")))),
                _ => {
                    let mut spare = agent.spare_batch();
                    if self.free.len() < FREE_BOXES {
                        self.free.append(&mut spare);
                    }
                    let batch = std::mem::replace(&mut self.spans, retyped(spare));
                    agent.enqueue(Message::Spans(batch));
                }
            }
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.hand_over();
    }
}

thread_local! {
    static LOCAL: RefCell<Local> = const { RefCell::new(Local { agent: None, spans: Vec::new(), free: Vec::new() }) };
}

/// Span boxes a thread keeps for reuse, at most.
const FREE_BOXES: usize = 4 * BATCH;

/// An empty box for a new span: one the reporter sent back to this thread (or to `agent`'s
/// return channel), or a new allocation.
#[inline(always)]
pub(crate) fn empty_box(agent: &AgentInner) -> EmptyBox {
    let kept = LOCAL.try_with(|local| local.try_borrow_mut().ok().and_then(|mut l| l.free.pop()));
    match kept {
        Ok(Some(b)) => b,
        _ => refill_and_take(agent),
    }
}

#[inline(never)]
fn refill_and_take(agent: &AgentInner) -> EmptyBox {
    let reused = LOCAL.try_with(|local| {
        let mut local = local.try_borrow_mut().ok()?;
        let mut returned = agent.returned_boxes()?;
        local.free.append(&mut returned);
        local.free.pop()
    });
    match reused {
        Ok(Some(b)) => b,
        _ => Box::new(MaybeUninit::uninit()),
    }
}

/// Adds a finished span to this thread's batch; `now` hands the batch over at once (the span
/// ended outside any attached context, so no later trigger is certain to come).
#[inline]
pub(crate) fn push_span(agent: &Arc<AgentInner>, span: Box<SpanEvent>, now: bool) {
    let pushed = LOCAL.try_with(|local| {
        let mut local = local.borrow_mut();
        if !local.agent.as_ref().is_some_and(|a| Arc::ptr_eq(a, agent)) {
            local.hand_over();
            local.agent = Some(agent.clone());
        }
        local.spans.push(span);
        if now || local.spans.len() >= BATCH {
            local.hand_over();
        }
    });
    if pushed.is_err() {
        // The span ended while this thread's locals were being torn down (a span kept in
        // another thread-local): its batch is gone, so count it rather than lose it silently.
        agent.count_lost(1);
    }
}

/// Hands this thread's batch over to the reporter now.
#[inline]
pub(crate) fn hand_over_thread_batch() {
    let _ = LOCAL.try_with(|local| {
        if let Ok(mut local) = local.try_borrow_mut() {
            local.hand_over();
        }
    });
}
