//! The hand-off of finished spans from application threads to the reporter thread.
//!
//! Each thread that ends spans of an agent gets a [`Ring`] of its own, registered with that
//! agent: a bounded single-producer, single-consumer queue of span boxes. Ending a span writes
//! its pointer into the next slot and publishes it with one release store, an ordinary `mov` on
//! x86: no lock, no read-modify-write, no system call, and no cache line shared with other
//! application threads. The reporter drains every ring when it polls (every 20 ms), when a ring
//! is half full (the producer wakes it once), and on every flush (or the flushing thread does,
//! when every sink [never blocks](crate::report::Sink::never_blocks)), so `Agent::flush` sees
//! the spans of *every* thread that ended them before the flush was asked for, not only the
//! caller's.
//!
//! The written boxes go back, emptied, to the application threads in batches for reuse, so the
//! steady state allocates nothing.
//!
//! # Invariants
//! - A ring has one producer (the thread whose [`Local`] holds it) and one consumer at a time:
//!   the thread delivering for the agent (its reporter, or a flushing thread when every sink
//!   never blocks), which drains rings only while holding the registry lock. `tail` is written
//!   only by the producer, `head` only by the consumer; a slot is written by the producer before `tail`
//!   passes it (release) and read by the consumer after it saw that `tail` (acquire), and the
//!   producer reuses a slot only after seeing `head` pass it (acquire of the consumer's release).
//! - Every span is counted exactly once: `queued` by the reporter when it takes it from a ring,
//!   or `queue_full` / `shutdown` by the producer when it cannot be put in one.
//! - Pushing never blocks: a full ring drops the span and counts it.

use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::agent::AgentInner;
use crate::context::{with_hot, Hot};
use crate::event::{Event, SpanEvent};

/// Empty boxes travel back to the application threads this many at a time.
pub(crate) const BATCH: usize = 64;

/// A span box whose event the reporter has written and dropped: a new span is written into it
/// in place, with nothing old to drop on the application thread.
pub(crate) type EmptyBox = Box<MaybeUninit<SpanEvent>>;

/// Drops the event in `span`, keeping its allocation (the reporter does this once it has written
/// the event, so that the application thread never pays for the drop).
pub(crate) fn emptied(span: Box<SpanEvent>) -> EmptyBox {
    // Most spans own nothing on the heap (static names, no labels, no exit context): their
    // drop glue, a check per field, would be all the reporter does with them after the sink.
    let owns_heap = span.owns_heap();
    let raw = Box::into_raw(span);
    // SAFETY: `raw` came from a live box; after dropping its value in place (or finding it owns
    // nothing to drop) the allocation is an uninitialized `SpanEvent`, which `MaybeUninit` has
    // the same layout as.
    unsafe {
        if owns_heap {
            std::ptr::drop_in_place(raw);
        }
        Box::from_raw(raw.cast::<MaybeUninit<SpanEvent>>())
    }
}

/// The first words of an empty box on a [`Spares`] chain: the next box, and the one after it.
struct Link {
    next: *mut Link,
    /// `next`'s own `next`: a thread taking this box asks for that box's lines, so that they
    /// have two spans' time to arrive (see [`prefetch_for_write`]).
    ahead: *mut Link,
}

/// Empty span boxes linked through their own first words: the reporter links them as it empties
/// them, and a thread takes a whole chain at once, so taking a box for a span is one load of its
/// link, a store and the prefetch of the box two ahead, with no vector, bounds or borrow flag on
/// the way.
///
/// # Invariants
/// - Every link is the start of an `EmptyBox`'s allocation, owned by the chain.
/// - A link's `ahead` is its `next`'s `next` (chains only grow at the head and are taken whole,
///   then shrink from the head).
pub(crate) struct Spares {
    head: *mut Link,
    len: usize,
}

// SAFETY: the chain owns its boxes, which hold nothing thread-bound (they are empty).
unsafe impl Send for Spares {}

impl Spares {
    pub(crate) const fn new() -> Spares {
        Spares { head: std::ptr::null_mut(), len: 0 }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn push(&mut self, b: EmptyBox) {
        const { assert!(std::mem::size_of::<SpanEvent>() >= std::mem::size_of::<Link>()) };
        let link = Box::into_raw(b).cast::<Link>();
        // SAFETY: the box is at least a `Link` large and aligned (asserted above; `SpanEvent`
        // holds pointers), and holds nothing to drop; the head, when there is one, is a link
        // this chain wrote.
        unsafe {
            let ahead = if self.head.is_null() { std::ptr::null_mut() } else { (*self.head).next };
            link.write(Link { next: self.head, ahead });
        }
        self.head = link;
        self.len += 1;
    }

    /// Gives the chain's head away, leaving the chain empty.
    fn into_head(mut self) -> *mut Link {
        std::mem::replace(&mut self.head, std::ptr::null_mut())
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        free_chain(std::mem::replace(&mut self.head, std::ptr::null_mut()));
    }
}

fn free_chain(mut p: *mut Link) {
    while !p.is_null() {
        // SAFETY: `p` is the start of an `EmptyBox` owned by the chain being freed.
        unsafe {
            let next = (*p).next;
            drop(Box::from_raw(p.cast::<MaybeUninit<SpanEvent>>()));
            p = next;
        }
    }
}

/// Keeps `head` and `tail` on cache lines of their own, so the producer's stores to `tail` do
/// not invalidate the line the consumer reads `head` from, and the other way round.
#[repr(align(128))]
struct Padded(AtomicUsize);

/// One thread's queue of finished spans for one agent (see the module docs).
pub(crate) struct Ring {
    slots: Box<[AtomicPtr<SpanEvent>]>,
    mask: usize,
    /// Half the slots, rounded up: how far the producer runs ahead of its view of `head` before
    /// it looks again (and wakes the reporter).
    half: usize,
    head: Padded,
    tail: Padded,
    /// Set when the producing thread let go of the ring (it exited): once drained, the reporter
    /// forgets it.
    closed: AtomicBool,
}

impl Ring {
    /// A ring of at least `capacity` slots (rounded up to a power of two, at least 2).
    pub(crate) fn new(capacity: usize) -> Ring {
        let n = capacity.max(2).next_power_of_two();
        Ring {
            slots: (0..n).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
            mask: n - 1,
            half: (n - 1).div_ceil(2),
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
        }
    }

    /// Producer: appends `span`, or gives it back when the ring is full. `seen_head` is the
    /// producer's last view of `head`, refreshed only when the ring looks full or half full.
    /// Returns whether the ring is now at least half full (time to wake the reporter).
    #[inline]
    fn push(&self, span: Box<SpanEvent>, seen_head: &mut usize) -> Result<bool, Box<SpanEvent>> {
        let t = self.tail.0.load(Ordering::Relaxed);
        let half = self.half;
        let mut filling = false;
        if t - *seen_head >= half {
            *seen_head = self.head.0.load(Ordering::Acquire);
            if t - *seen_head > self.mask {
                return Err(span);
            }
            filling = t - *seen_head >= half;
        }
        self.slots[t & self.mask].store(Box::into_raw(span), Ordering::Relaxed);
        self.tail.0.store(t + 1, Ordering::Release);
        Ok(filling)
    }

    /// Producer: appends `span` if the ring is less than half full by the producer's last view of
    /// `head` (the common case, checked with no shared read); gives it back otherwise, for
    /// [`Ring::push`] to decide.
    #[inline(always)]
    fn push_quick(&self, span: Box<SpanEvent>, seen_head: usize) -> Result<(), Box<SpanEvent>> {
        let t = self.tail.0.load(Ordering::Relaxed);
        if t - seen_head >= self.half {
            return Err(span);
        }
        // SAFETY: `t & mask` is below the slot count, a power of two `mask + 1`.
        unsafe { self.slots.get_unchecked(t & self.mask) }.store(Box::into_raw(span), Ordering::Relaxed);
        self.tail.0.store(t + 1, Ordering::Release);
        Ok(())
    }

    /// Consumer: takes every span published so far.
    fn drain(&self, out: &mut Vec<Event>) -> usize {
        let h = self.head.0.load(Ordering::Relaxed);
        let t = self.tail.0.load(Ordering::Acquire);
        for i in h..t {
            let p = self.slots[i & self.mask].load(Ordering::Relaxed);
            // SAFETY: slots in `head..tail` hold pointers from `Box::into_raw` that the producer
            // published (release of `tail`, acquired above) and will not touch again until
            // `head` passes them.
            out.push(Event::Span(unsafe { Box::from_raw(p) }));
        }
        self.head.0.store(t, Ordering::Release);
        t - h
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Spans published and not drained yet (a snapshot: either end may move meanwhile).
    fn len(&self) -> usize {
        let h = self.head.0.load(Ordering::Acquire);
        self.tail.0.load(Ordering::Acquire).saturating_sub(h)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // Only reached once both sides let go; free what was never drained.
        let mut rest = Vec::new();
        self.drain(&mut rest);
    }
}

/// An agent's rings, shared by the agent (which registers new ones) and its reporter (which
/// drains them).
#[derive(Default)]
pub(crate) struct Rings(Mutex<Vec<Arc<Ring>>>);

impl Rings {
    fn register(&self, ring: Arc<Ring>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(ring);
    }

    /// Spans waiting in the rings: ended, not yet taken by the reporter.
    pub(crate) fn pending(&self) -> u64 {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|r| r.len() as u64).sum()
    }

    /// Consumer: takes every published span of every ring, and forgets the rings whose thread
    /// is gone once they are empty. Returns how many spans it took.
    pub(crate) fn drain(&self, out: &mut Vec<Event>) -> usize {
        let mut rings = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        rings.retain(|ring| {
            // Read `closed` first: a ring closed after this read is drained again next time.
            let closed = ring.closed.load(Ordering::Acquire);
            n += ring.drain(out);
            !(closed && ring.is_empty())
        });
        n
    }
}

/// A thread's ring for one agent.
struct Binding {
    agent: Arc<AgentInner>,
    ring: Arc<Ring>,
}

impl Drop for Binding {
    fn drop(&mut self) {
        self.ring.closed.store(true, Ordering::Release);
    }
}

/// Agents a thread keeps a ring for, at most: older bindings are let go (their rings drained
/// and forgotten by their reporters).
const BINDINGS: usize = 4;

/// The part of a thread's queue state that every span touches, kept in the thread's
/// [`Hot`](crate::context::Hot) state: one offset from the thread pointer, with no lazy
/// registration and no borrow flag (which `LOCAL` has, being a `RefCell` with a destructor).
///
/// # Invariants
/// - `agent` and `ring` are null or those of `LOCAL`'s front binding, which keeps both alive:
///   bindings are let go only in [`Local::bind`], which caches the new front one, and in
///   `Local`'s drop, which clears the cache first.
/// - `free` is a chain of empty boxes this thread owns; `Local`'s drop frees it, and a thread
///   without `LOCAL` (being torn down) never keeps one.
pub(crate) struct HotQueue {
    agent: Cell<*const AgentInner>,
    ring: Cell<*const Ring>,
    /// The producer's last view of the cached ring's `head`.
    seen_head: Cell<usize>,
    /// Span boxes the reporter has written and sent back: a new span is written into one
    /// instead of allocating (the reporter frees nothing, so the allocator's per-thread caches
    /// would otherwise never refill and every span would take malloc's slow path).
    free: Cell<*mut Link>,
}

impl HotQueue {
    pub(crate) const fn new() -> HotQueue {
        HotQueue {
            agent: Cell::new(std::ptr::null()),
            ring: Cell::new(std::ptr::null()),
            seen_head: Cell::new(0),
            free: Cell::new(std::ptr::null_mut()),
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
            free_chain(q.free.replace(std::ptr::null_mut()));
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
    fn bind(&mut self, agent: &Arc<AgentInner>, q: &HotQueue) {
        match self.bindings.iter().position(|b| Arc::ptr_eq(&b.agent, agent)) {
            Some(i) => self.bindings[..=i].rotate_right(1),
            None => {
                let ring = Arc::new(Ring::new(agent.config.max_queue_size));
                agent.rings.register(ring.clone());
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

/// An empty box for a new span: the next of this thread's spare chain, else a chain the
/// reporter sent back to `agent`, else a new allocation.
#[inline(always)]
pub(crate) fn empty_box(h: &Hot, agent: &AgentInner) -> EmptyBox {
    match take_spare(&h.queue) {
        Some(b) => b,
        None => refill_and_take(h, agent),
    }
}

/// The head of this thread's spare chain, if it has one.
#[inline(always)]
fn take_spare(q: &HotQueue) -> Option<EmptyBox> {
    let link = q.free.get();
    if link.is_null() {
        return None;
    }
    // SAFETY: `link` heads this thread's chain (see `HotQueue`), so it is an empty box's start.
    unsafe {
        let Link { next, ahead } = link.read();
        q.free.set(next);
        prefetch_for_write(ahead);
        Some(Box::from_raw(link.cast::<MaybeUninit<SpanEvent>>()))
    }
}

/// Asks for the cache lines of the box at `p` (the span after next's) in a writable state. The
/// reporter read them last, on another core: without this, a span's writes stall on taking each
/// line back, which was most of a span's time on the application thread. One span ahead was too
/// little once the boxes had travelled through other threads (a pool's), so that they come from
/// farther away: two spans ahead covers it (three measured the same).
#[inline(always)]
fn prefetch_for_write(p: *mut Link) {
    #[cfg(target_arch = "x86_64")]
    {
        const SIZE: usize = std::mem::size_of::<SpanEvent>();
        // Every cache line the box can overlap (it need not start on one): a line's worth apart
        // from its first byte, and its last byte. A fixed array, so the loop unrolls.
        const OFFSETS: [usize; SIZE.div_ceil(64) + 1] = {
            let mut o = [SIZE - 1; SIZE.div_ceil(64) + 1];
            let mut i = 0;
            while i < SIZE.div_ceil(64) {
                o[i] = i * 64;
                i += 1;
            }
            o
        };
        let p = p.cast::<u8>();
        // `prefetchw` is a hint: it never faults (a null or dangling address is fine), and CPUs
        // without it execute it as a no-op.
        for offset in OFFSETS {
            // SAFETY: a prefetch reads and writes no memory; `wrapping_add` keeps the address
            // computation defined whatever `p` is.
            unsafe {
                std::arch::asm!("prefetchw [{0}]", in(reg) p.wrapping_add(offset), options(nostack, preserves_flags, readonly));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[inline(never)]
fn refill_and_take(h: &Hot, agent: &AgentInner) -> EmptyBox {
    // A thread whose `LOCAL` is gone could not free a chain at its exit: it takes none.
    if let Some(chain) = agent.returned_boxes().filter(|_| register_exit_hook()) {
        let head = chain.into_head();
        // The box after the head is the next span's; the head's `ahead` is asked for below.
        // SAFETY: a chain's head, when not null, is one of its links.
        if let Some(first) = unsafe { head.as_ref() } {
            prefetch_for_write(first.next);
        }
        h.queue.free.set(head);
    }
    take_spare(&h.queue).unwrap_or_else(|| Box::new(MaybeUninit::uninit()))
}

/// Hands a finished span to `agent`'s reporter through this thread's ring; drops and counts it
/// when the ring is full or the agent has shut down.
#[inline(always)]
pub(crate) fn push_span(h: &Hot, agent: &Arc<AgentInner>, span: Box<SpanEvent>) {
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
fn push_span_filling(q: &HotQueue, ring: &Ring, agent: &AgentInner, span: Box<SpanEvent>) {
    let mut seen = q.seen_head.get();
    let pushed = ring.push(span, &mut seen);
    q.seen_head.set(seen);
    match pushed {
        Ok(false) => {}
        Ok(true) => agent.wake(),
        Err(span) => {
            drop(span);
            agent.count_full(1);
        }
    }
}

/// `push_span` for a thread whose cached ring is another agent's, or that has none yet.
#[inline(never)]
fn push_span_binding(h: &Hot, agent: &Arc<AgentInner>, span: Box<SpanEvent>) {
    if agent.is_shut_down() {
        // Nothing drains a ring registered now: count the span and keep nothing (a thread that
        // outlived the agent under a context it captured must not pile up rings).
        drop(span);
        return agent.count_full(1);
    }
    match LOCAL.try_with(|local| local.borrow_mut().bind(agent, &h.queue)) {
        Ok(()) => push_span(h, agent, span),
        Err(_) => {
            // The span ended while this thread's locals were being torn down (a span kept in
            // another thread-local): its ring is gone, so count it rather than lose it silently.
            drop(span);
            agent.count_lost(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(inner.rings.0.lock().unwrap().len(), 0, "no thread registered a ring with the dead agent");
        assert_eq!(inner.counters.snapshot().dropped.shutdown, 200, "every late span counted");
        drop((ctx, tx));
    }

    #[test]
    fn a_ring_passes_spans_in_order_and_refuses_when_full() {
        let ring = Ring::new(4);
        let mut seen = 0;
        let span = |name: &'static str| Box::new(crate::event::test_span(name));
        let mut half = vec![];
        for name in ["a", "b", "c", "d"] {
            half.push(ring.push(span(name), &mut seen).expect("room"));
        }
        assert_eq!(half, [false, false, true, true], "half full from the third of four on");
        assert!(ring.push(span("e"), &mut seen).is_err(), "a full ring refuses");
        let mut out = vec![];
        assert_eq!(ring.drain(&mut out), 4);
        let names: Vec<_> = out
            .iter()
            .map(|e| match e {
                Event::Span(s) => s.name.to_string(),
                _ => unreachable!("rings hold spans"),
            })
            .collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
        assert!(ring.push(span("f"), &mut seen).is_ok(), "room again after the drain");
        drop(ring); // frees the undrained "f"
    }

    #[test]
    fn a_spare_chain_hands_out_each_box_once_and_frees_the_rest() {
        let mut chain = Spares::new();
        let boxes: Vec<EmptyBox> = (0..3).map(|_| Box::new(MaybeUninit::uninit())).collect();
        let mut addresses: Vec<usize> = boxes.iter().map(|b| &**b as *const _ as usize).collect();
        for b in boxes {
            chain.push(b);
        }
        assert_eq!(chain.len(), 3);
        let mut link = chain.into_head();
        let mut walked = vec![];
        while !link.is_null() {
            walked.push(link as usize);
            // SAFETY: the chain's links are its boxes' starts.
            let Link { next, ahead } = unsafe { link.read() };
            // SAFETY: as above.
            let after_next = unsafe { next.as_ref() }.map_or(std::ptr::null_mut(), |n| n.next);
            assert_eq!(ahead, after_next, "each link knows the box two ahead, for the prefetch");
            link = next;
        }
        walked.reverse();
        addresses.sort_unstable();
        let mut sorted = walked.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, addresses, "every box once, none invented");
        // The chain gave its head away, so dropping it frees nothing; the head frees them all.
        free_chain(walked.last().map_or(std::ptr::null_mut(), |&p| p as *mut Link));
    }
}
