//! The seam between the two halves: what the application's threads hand over, and the reporter
//! takes.
//!
//! Everything that crosses from recording (`record`, on the application's threads) to delivery
//! (`deliver`, on the reporter thread) goes through here, and nothing else connects them:
//! - finished spans through each thread's [`Ring`] ([`ring`]), transactions and errors through
//!   one bounded channel;
//! - emptied span boxes back the other way ([`spares`]);
//! - a wake-up when a queue is half full;
//! - the [`Counters`] both sides write ([`counters`]).
//!
//! [`Inlet`] is the application's end (never blocks: every hand-off is a `try_send` or a ring
//! push, and a full queue drops and counts), [`Outlet`] the reporter's.

pub(crate) mod counters;
#[cfg(all(test, apm_loom))]
mod loom_tests;
pub(crate) mod ring;
pub(crate) mod spares;
mod sync;
pub(crate) mod user_metrics;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;

use crossbeam_channel::{Receiver, Sender, TrySendError};

pub(crate) use counters::Counters;
pub use counters::{DropReason, Dropped, Stats};
pub(crate) use ring::{Ring, Rings};
pub(crate) use spares::{emptied, EmptyBox, FreeList, Spares, BATCH};

use crate::model::event::Event;

/// Batches of empty boxes on their way back to the application threads, at most.
const SPARE_BATCHES: usize = 16;

/// The application's end of the hand-off, shared by every transaction of one agent.
pub(crate) struct Inlet {
    /// Transactions and errors (spans go through the threads' rings).
    queue: Sender<Event>,
    /// The channel's capacity: past half of it, the reporter is woken early.
    queue_size: usize,
    /// Every thread's ring of finished spans, drained by the reporter.
    pub(crate) rings: Arc<Rings>,
    /// Emptied span boxes coming back from the reporter, for reuse.
    spares: Receiver<Spares>,
    /// Set once a wake-up is on its way, so a filling queue sends one, not one per event.
    woken: Arc<AtomicBool>,
    /// The reporter thread, unparked to wake it (it sleeps in `park_timeout`).
    reporter: OnceLock<Thread>,
    /// Set when the agent shuts down: spans ended after that are counted as `shutdown`.
    shut_down: AtomicBool,
    pub(crate) counters: Arc<Counters>,
}

/// The reporter's end of the hand-off.
pub(crate) struct Outlet {
    pub(crate) queue: Receiver<Event>,
    pub(crate) rings: Arc<Rings>,
    pub(crate) spares: Sender<Spares>,
    /// Set by [`Inlet::wake`]; the reporter clears it when it starts the drain it asked for.
    pub(crate) woken: Arc<AtomicBool>,
    pub(crate) counters: Arc<Counters>,
}

/// A new hand-off whose channel holds `queue_size` transactions and errors. The reporter thread
/// is named later ([`Inlet::connect`]): it is spawned with the [`Outlet`].
pub(crate) fn new(queue_size: usize) -> (Inlet, Outlet) {
    let (queue, rx) = crossbeam_channel::bounded(queue_size);
    let (spares_tx, spares) = crossbeam_channel::bounded(SPARE_BATCHES);
    let rings = Arc::new(Rings::default());
    let woken = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let inlet = Inlet {
        queue,
        queue_size,
        rings: rings.clone(),
        spares,
        woken: woken.clone(),
        reporter: OnceLock::new(),
        shut_down: AtomicBool::new(false),
        counters: counters.clone(),
    };
    (inlet, Outlet { queue: rx, rings, spares: spares_tx, woken, counters })
}

impl Inlet {
    /// Names the thread that [`Inlet::wake`] wakes.
    pub(crate) fn connect(&self, reporter: Thread) {
        let _ = self.reporter.set(reporter);
    }

    /// Hands a finished transaction or error to the reporter without ever blocking; drops and
    /// counts it when the queue is full or closed.
    pub(crate) fn submit(&self, event: Event) {
        match self.queue.try_send(event) {
            Ok(()) => {
                self.counters.add_queued(1);
                // The reporter polls the queue rather than being woken per event (a wake-up is
                // a syscall on the application thread); only a half-full queue calls it early.
                if self.queue.len() > self.queue_size / 2 {
                    self.wake();
                }
            }
            Err(TrySendError::Full(_)) => self.counters.add_queue_full(1),
            Err(TrySendError::Disconnected(_)) => self.counters.add_shutdown(1),
        }
    }

    /// Asks the reporter to drain now rather than at its next poll (once until it has).
    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, Ordering::Relaxed) {
            self.unpark_reporter();
        }
    }

    /// Wakes the reporter thread to look at its queues and control messages.
    pub(crate) fn unpark_reporter(&self) {
        if let Some(reporter) = self.reporter.get() {
            reporter.unpark();
        }
    }

    /// Marks the agent shut down; `true` the first time.
    pub(crate) fn shut_down(&self) -> bool {
        !self.shut_down.swap(true, Ordering::Relaxed)
    }

    /// Whether the agent was shut down (dropped, or replaced as the default and released).
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }

    /// Counts spans a full ring could not take (or that ended after the agent shut down).
    #[cold]
    pub(crate) fn count_full(&self, n: u64) {
        if self.is_shut_down() {
            self.counters.add_shutdown(n);
        } else {
            self.counters.add_queue_full(n);
        }
    }

    /// Counts events that could not be queued because their thread was exiting.
    pub(crate) fn count_lost(&self, n: u64) {
        self.counters.add_shutdown(n);
    }

    /// Written span boxes the reporter sent back, if any are waiting.
    pub(crate) fn returned_boxes(&self) -> Option<Spares> {
        self.spares.try_recv().ok()
    }

    /// What [`crate::Agent::stats`] shows: the counters, plus the spans still in the rings.
    pub(crate) fn stats(&self) -> Stats {
        // Deliveries first, then what was queued, then the spans still in the threads' rings:
        // whatever a drain does meanwhile, `sent` never reads above `queued`.
        let mut stats = self.counters.snapshot();
        stats.queued += self.rings.pending();
        stats
    }
}
