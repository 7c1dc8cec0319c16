//! The hand-off under loom: every interleaving (up to `LOOM_MAX_PREEMPTIONS`) of an application
//! thread and the consuming thread, on the real `Ring` and `Rings` code with loom's atomics and
//! lock swapped in (`handoff/sync.rs`). Run by `scripts/loom.sh`, in `.ci/run`.
//!
//! What each model proves is written beside the orderings in `ring.rs`; in short:
//! - `push_and_drain`: the producer's release store of `tail` and the consumer's acquire load of
//!   it publish the slot written before it (no span is read before it is written, none twice, in
//!   order); the consumer's release store of `head` and the producer's acquire load of it keep a
//!   slot from being reused before it was read (a full ring refuses instead).
//! - `a_closed_ring_is_drained_then_forgotten`: reading `closed` (acquire) before the drain means
//!   a ring closed during a drain is drained once more before the registry forgets it.
//! - `shutdown_racing_a_producer`: a span is either taken by the final drain or counted when its
//!   ring is freed: never both, never neither.
//! - `spare_boxes_change_hands_once`: a chain of recycled boxes handed to another thread is taken
//!   box by box and freed exactly once.

use std::sync::Arc;

use loom::thread;

use super::ring::{Ring, Rings};
use super::spares::{EmptyBox, FreeList, Spares};
use super::sync::{AtomicBool, Ordering};
use super::Counters;
use crate::model::event::{test_span, Event};

fn span(name: &str) -> Box<crate::model::event::SpanEvent> {
    Box::new(test_span(name))
}

fn names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Span(s) => s.name.to_string(),
            _ => unreachable!("rings hold spans"),
        })
        .collect()
}

#[test]
fn push_and_drain() {
    loom::model(|| {
        let ring = Arc::new(Ring::new(2, Arc::default()));
        let producer = {
            let ring = ring.clone();
            thread::spawn(move || {
                let mut seen = 0;
                let mut refused = Vec::new();
                for name in ["a", "b", "c"] {
                    if let Err(s) = ring.push(span(name), &mut seen) {
                        refused.push(s.name.to_string());
                    }
                }
                refused
            })
        };
        let mut got = Vec::new();
        ring.drain(&mut got);
        let refused = producer.join().unwrap();
        ring.drain(&mut got);
        let got = names(&got);
        // In order, each once; what the ring refused came back to the producer instead.
        let mut all: Vec<String> = got.clone();
        all.extend(refused.iter().cloned());
        all.sort();
        assert_eq!(all, ["a", "b", "c"], "got {got:?}, refused {refused:?}");
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(got, sorted, "drained out of order");
        assert!(refused.len() <= 1, "a two-slot ring refuses at most the third: {refused:?}");
    });
}

#[test]
fn a_closed_ring_is_drained_then_forgotten() {
    loom::model(|| {
        let rings = Arc::new(Rings::default());
        let ring = Arc::new(Ring::new(2, Arc::default()));
        rings.register(ring.clone());
        let producer = thread::spawn(move || {
            let mut seen = 0;
            ring.push(span("last"), &mut seen).unwrap();
            // The thread exits: it lets go of its ring.
            ring.close();
        });
        let mut got = Vec::new();
        rings.drain(&mut got);
        producer.join().unwrap();
        rings.drain(&mut got);
        assert_eq!(names(&got), ["last"]);
        assert_eq!(rings.registered(), 0, "forgotten once closed and empty");
    });
}

#[test]
fn shutdown_racing_a_producer() {
    loom::model(|| {
        let counters = Arc::new(Counters::default());
        let rings = Arc::new(Rings::default());
        let shut_down = Arc::new(AtomicBool::new(false));
        // The producer's side of `record::producer::push_span_binding`: no ring is registered
        // with an agent that shut down; otherwise register, then push.
        let producer = {
            let (rings, shut_down, counters) = (rings.clone(), shut_down.clone(), counters.clone());
            thread::spawn(move || {
                if shut_down.load(Ordering::Relaxed) {
                    counters.add_shutdown(1);
                    return;
                }
                let ring = Arc::new(Ring::new(2, counters));
                rings.register(ring.clone());
                let mut seen = 0;
                ring.push(span("late"), &mut seen).unwrap();
                ring.close();
            })
        };
        // The agent's shutdown: set the flag, then the final drain.
        shut_down.store(true, Ordering::Relaxed);
        let mut got = Vec::new();
        let taken = rings.drain(&mut got) as u64;
        counters.add_queued(taken);
        producer.join().unwrap();
        // Nothing drains after the shutdown: the registry and every ring are freed.
        drop(rings);
        let stats = counters.snapshot();
        assert_eq!(stats.queued + stats.dropped.shutdown, 1, "counted exactly once: {stats:?}");
    });
}

#[test]
fn spare_boxes_change_hands_once() {
    loom::model(|| {
        let mut chain = Spares::new();
        for _ in 0..3 {
            chain.push(EmptyBox::new(std::mem::MaybeUninit::uninit()));
        }
        let taker = thread::spawn(move || {
            let free = FreeList::new();
            free.refill(chain);
            let taken = (0..2).map(|_| free.take().expect("a box")).count();
            free.free_all();
            assert!(free.take().is_none());
            taken
        });
        assert_eq!(taker.join().unwrap(), 2);
    });
}
