//! Span boxes recycled from the reporter back to the application threads.
//!
//! The reporter writes a span, drops its contents in place ([`emptied`]) and links the empty
//! allocation into a [`Spares`] chain; chains go back to the application threads a [`BATCH`] at
//! a time, and a thread takes boxes from its own [`FreeList`] one per span. The steady state
//! allocates and frees nothing, and the application thread never runs a span's drop glue.
//!
//! # Invariants
//! - Every [`Link`] is the start of an [`EmptyBox`]'s allocation, owned by exactly one chain or
//!   free list (a chain hands its head over whole, see [`FreeList::refill`]).
//! - A link's `ahead` is its `next`'s `next` (chains only grow at the head and are taken whole,
//!   then shrink from the head), which the prefetch of [`FreeList::take`] relies on.
//! - A [`FreeList`] is only touched by the thread that owns it (it is a `Cell`, and not `Sync`).

use std::cell::Cell;
use std::mem::MaybeUninit;

use crate::model::event::SpanEvent;

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

/// A thread's own chain of empty boxes, taken one per span: one load of the head's link, a
/// store and a prefetch, with no vector, bounds or borrow flag on the way.
///
/// It owns its chain: [`FreeList::free_all`] frees it (its owner calls it when the thread
/// exits; a list dropped without it leaks its boxes, so it has no `Drop`, which would make its
/// thread-local need a destructor registration of its own).
pub(crate) struct FreeList(Cell<*mut Link>);

impl FreeList {
    pub(crate) const fn new() -> FreeList {
        FreeList(Cell::new(std::ptr::null_mut()))
    }

    /// The next empty box, if the list has one.
    #[inline(always)]
    pub(crate) fn take(&self) -> Option<EmptyBox> {
        let link = self.0.get();
        if link.is_null() {
            return None;
        }
        // SAFETY: `link` heads this list's chain, so it is an empty box's start (invariants).
        unsafe {
            let Link { next, ahead } = link.read();
            self.0.set(next);
            prefetch_for_write(ahead);
            Some(Box::from_raw(link.cast::<MaybeUninit<SpanEvent>>()))
        }
    }

    /// Takes over `chain`'s boxes (freeing what the list still held, if anything).
    pub(crate) fn refill(&self, chain: Spares) {
        let head = chain.into_head();
        // The box after the head is the next span's; the head's `ahead` is asked for by `take`.
        // SAFETY: a chain's head, when not null, is one of its links.
        if let Some(first) = unsafe { head.as_ref() } {
            prefetch_for_write(first.next);
        }
        free_chain(self.0.replace(head));
    }

    /// Frees every box on the list.
    pub(crate) fn free_all(&self) {
        free_chain(self.0.replace(std::ptr::null_mut()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
