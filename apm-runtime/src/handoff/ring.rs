//! The per-thread queue of finished spans: a bounded single-producer, single-consumer ring of
//! span boxes, and an agent's registry of them ([`Rings`]).
//!
//! Ending a span writes its pointer into the next slot and publishes it with one release store,
//! an ordinary `mov` on x86: no lock, no read-modify-write, no system call, and no cache line
//! shared with other application threads. The reporter drains every ring when it polls, when a
//! ring is half full (the producer wakes it once), and on every flush.
//!
//! # Invariants
//! - A ring has one producer (the thread whose binding holds it, see `record::producer`) and
//!   one consumer at a time: the thread delivering for the agent (its reporter, or a flushing
//!   thread when every sink never blocks), which drains rings only while holding the registry
//!   lock. `tail` is written only by the producer, `head` only by the consumer; a slot is
//!   written by the producer before `tail` passes it (release) and read by the consumer after it
//!   saw that `tail` (acquire), and the producer reuses a slot only after seeing `head` pass it
//!   (acquire of the consumer's release).
//! - Pushing never blocks: a full ring gives the span back, for the producer to drop and count.
//! - A closed ring (its thread let go of it) is forgotten by the registry once drained: `closed`
//!   is read before the drain, so a ring closed meanwhile is drained once more next time.

use std::sync::Arc;

use super::sync::{AtomicBool, AtomicPtr, AtomicUsize, Mutex, Ordering};

use super::Counters;
use crate::model::event::{Event, SpanEvent};

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
    /// Where spans still in the ring when it is freed are counted (as ended after the shutdown:
    /// nothing drained them).
    counters: Arc<Counters>,
}

impl Ring {
    /// A ring of at least `capacity` slots (rounded up to a power of two, at least 2), whose
    /// undrained spans are counted in `counters` when it is freed.
    pub(crate) fn new(capacity: usize, counters: Arc<Counters>) -> Ring {
        let n = capacity.max(2).next_power_of_two();
        Ring {
            slots: (0..n).map(|_| AtomicPtr::new(std::ptr::null_mut())).collect(),
            mask: n - 1,
            half: (n - 1).div_ceil(2),
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            closed: AtomicBool::new(false),
            counters,
        }
    }

    /// Producer: appends `span`, or gives it back when the ring is full. `seen_head` is the
    /// producer's last view of `head`, refreshed only when the ring looks full or half full.
    /// Returns whether the ring is now at least half full (time to wake the reporter).
    #[inline]
    pub(crate) fn push(&self, span: Box<SpanEvent>, seen_head: &mut usize) -> Result<bool, Box<SpanEvent>> {
        let t = self.tail.0.load(Ordering::Relaxed);
        let half = self.half;
        let mut filling = false;
        if t - *seen_head >= half {
            // Acquire, pairing with the consumer's release of `head`: the slots it passed were
            // read, so they may be written again.
            *seen_head = self.head.0.load(Ordering::Acquire);
            if t - *seen_head > self.mask {
                return Err(span);
            }
            filling = t - *seen_head >= half;
        }
        self.slots[t & self.mask].store(Box::into_raw(span), Ordering::Relaxed);
        // Release: publishes the slot written above (loom: `push_and_drain`).
        self.tail.0.store(t + 1, Ordering::Release);
        Ok(filling)
    }

    /// Producer: appends `span` if the ring is less than half full by the producer's last view of
    /// `head` (the common case, checked with no shared read); gives it back otherwise, for
    /// [`Ring::push`] to decide.
    #[inline(always)]
    pub(crate) fn push_quick(&self, span: Box<SpanEvent>, seen_head: usize) -> Result<(), Box<SpanEvent>> {
        let t = self.tail.0.load(Ordering::Relaxed);
        if t - seen_head >= self.half {
            return Err(span);
        }
        // SAFETY: `t & mask` is below the slot count, a power of two `mask + 1`.
        unsafe { self.slots.get_unchecked(t & self.mask) }.store(Box::into_raw(span), Ordering::Relaxed);
        // Release: publishes the slot written above, as in `push`.
        self.tail.0.store(t + 1, Ordering::Release);
        Ok(())
    }

    /// Consumer: takes every span published so far.
    pub(super) fn drain(&self, out: &mut Vec<Event>) -> usize {
        let h = self.head.0.load(Ordering::Relaxed);
        // Acquire, pairing with the producer's release of `tail`: every slot below it is written.
        // Weakening either side to Relaxed makes loom's `push_and_drain` read an unwritten slot
        // (seen: a SIGSEGV before this assert existed).
        let t = self.tail.0.load(Ordering::Acquire);
        for i in h..t {
            let p = self.slots[i & self.mask].load(Ordering::Relaxed);
            // Under loom, a slot read before its write was published shows as null (first lap).
            #[cfg(apm_loom)]
            assert!(!p.is_null(), "a slot was read before the producer's write of it was published");
            // SAFETY: slots in `head..tail` hold pointers from `Box::into_raw` that the producer
            // published (release of `tail`, acquired above) and will not touch again until
            // `head` passes them.
            out.push(Event::Span(unsafe { Box::from_raw(p) }));
        }
        // Release: the producer's acquire of `head` (in `push`) then sees the slots read, before
        // it writes them again.
        self.head.0.store(t, Ordering::Release);
        t - h
    }

    /// Producer: lets go of the ring (its thread exits, or binds another agent's ring).
    pub(crate) fn close(&self) {
        // Release: pairs with the registry's acquire in `Rings::drain` (loom:
        // `a_closed_ring_is_drained_then_forgotten`).
        self.closed.store(true, Ordering::Release);
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
        // Only reached once both sides let go; free what was never drained. A span pushed after
        // the agent's last drain (its thread still had the ring bound when the agent shut down)
        // ends here: counted, so that every span is in exactly one counter.
        let mut rest = Vec::new();
        let n = self.drain(&mut rest);
        if n > 0 {
            self.counters.add_shutdown(n as u64);
        }
    }
}

/// An agent's rings, shared by the agent (which registers new ones) and its reporter (which
/// drains them).
#[derive(Default)]
pub(crate) struct Rings(Mutex<Vec<Arc<Ring>>>);

impl Rings {
    pub(crate) fn register(&self, ring: Arc<Ring>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(ring);
    }

    /// Rings registered and not forgotten yet.
    #[cfg(test)]
    pub(crate) fn registered(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
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
            // Read `closed` first: a ring closed after this read is drained again next time; one
            // closed before it had its last push published first (release/acquire on `closed`).
            let closed = ring.closed.load(Ordering::Acquire);
            n += ring.drain(out);
            !(closed && ring.is_empty())
        });
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_passes_spans_in_order_and_refuses_when_full() {
        let counters = Arc::new(Counters::default());
        let ring = Ring::new(4, counters.clone());
        let mut seen = 0;
        let span = |name: &'static str| Box::new(crate::model::event::test_span(name));
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
        assert_eq!(counters.snapshot().dropped.shutdown, 1, "and counts it");
    }

    #[test]
    fn the_registry_forgets_a_closed_ring_once_drained() {
        let rings = Rings::default();
        let ring = Arc::new(Ring::new(4, Arc::default()));
        rings.register(ring.clone());
        let mut seen = 0;
        ring.push(Box::new(crate::model::event::test_span("last")), &mut seen).unwrap();
        ring.close();
        assert_eq!(rings.pending(), 1);
        let mut out = vec![];
        assert_eq!(rings.drain(&mut out), 1, "a closed ring is drained first");
        assert_eq!(rings.registered(), 0, "then forgotten");
    }
}
