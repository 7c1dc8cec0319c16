//! What became of every event: the counters both halves write (the application's threads when
//! they must drop an event, the reporter for everything it takes and delivers), and the public
//! [`Stats`] read from them.
//!
//! # Invariants
//! - Every event ends up in exactly one counter: `queued` (then later `sent` or one of the
//!   `dropped` reasons past the queue) or `dropped.queue_full` / `dropped.shutdown`.
//! - The counters are independent counts, exact but not read together: a snapshot taken during
//!   a drain may see an event neither in the rings nor yet as `sent`, never one in two counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of events by fate, from [`Agent::stats`](crate::Agent::stats).
///
/// `produced = queued + dropped.queue_full + dropped.shutdown`, and once the queue is drained,
/// `queued = sent + dropped.send_failed + dropped.rejected`.
///
/// ```
/// let agent = apm_runtime::Agent::builder()
///     .sink(apm_runtime::report::MemorySink::new())
///     .build()
///     .unwrap();
/// agent.transaction("t").start().end();
/// agent.flush(std::time::Duration::from_secs(5));
/// let stats = agent.stats();
/// assert_eq!((stats.queued, stats.sent, stats.dropped.total()), (1, 1, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events accepted into the queue.
    pub queued: u64,
    /// Events delivered by the sink (acknowledged by the server, or written).
    pub sent: u64,
    /// Events dropped, by reason.
    pub dropped: Dropped,
    /// Spans merged into a composite span by span compression: queued, and sent as part of
    /// another (so `queued = sent + dropped + compressed` once everything is delivered).
    pub compressed: u64,
    /// Spans started with no transaction current, in the whole process (not only this agent's
    /// work): each was not recorded. Outside a transaction's work that is expected; inside, the
    /// context was lost on the way to another thread (the first one is reported by name, once).
    /// Exact for threads that exited; each running thread publishes its count every 1024 spans.
    pub spans_without_transaction: u64,
}

/// Dropped events by reason; see [`Stats`].
///
/// ```
/// let d = apm_runtime::Dropped::default();
/// assert_eq!(d.total(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The queue was full when the event ended (the reporter could not keep up).
    pub queue_full: u64,
    /// The agent had shut down when the event ended.
    pub shutdown: u64,
    /// The sink gave up after retrying (server unreachable, write failed, shutdown timeout).
    pub send_failed: u64,
    /// The server refused the request (a 4xx other than 429).
    pub rejected: u64,
}

impl Dropped {
    /// All dropped events.
    ///
    /// ```
    /// let d = apm_runtime::Dropped { queue_full: 2, rejected: 1, ..Default::default() };
    /// assert_eq!(d.total(), 3);
    /// ```
    pub fn total(&self) -> u64 {
        self.queue_full + self.shutdown + self.send_failed + self.rejected
    }
}

/// Why a sink dropped events, for
/// [`SinkContext::record_dropped`](crate::report::SinkContext::record_dropped).
///
/// ```
/// let reason = apm_runtime::report::DropReason::Rejected;
/// # let _ = reason;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Retries exhausted or writing failed.
    SendFailed,
    /// Refused by the server.
    Rejected,
}

/// Written by the reporter (and, when they drop, by application threads): on cache lines of its
/// own, so no application-side object allocated next to it is slowed by false sharing.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    queue_full: AtomicU64,
    shutdown: AtomicU64,
    send_failed: AtomicU64,
    rejected: AtomicU64,
    /// Requests made to the APM Server and their (compressed) bytes, for the agent's health
    /// metricsets.
    requests: AtomicU64,
    request_bytes: AtomicU64,
    compressed: AtomicU64,
}

impl Counters {
    pub(crate) fn add_queued(&self, n: u64) {
        self.queued.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_queue_full(&self, n: u64) {
        self.queue_full.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_shutdown(&self, n: u64) {
        self.shutdown.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_request(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.request_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests made and their bytes, so far.
    pub(crate) fn requests(&self) -> (u64, u64) {
        (self.requests.load(Ordering::Relaxed), self.request_bytes.load(Ordering::Relaxed))
    }

    pub(crate) fn add_compressed(&self, n: u64) {
        self.compressed.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, reason: DropReason, n: u64) {
        match reason {
            DropReason::SendFailed => &self.send_failed,
            DropReason::Rejected => &self.rejected,
        }
        .fetch_add(n, Ordering::Relaxed);
    }

    /// Events the sink gave up on or the server refused, so far.
    pub(crate) fn failed(&self) -> u64 {
        self.send_failed.load(Ordering::Relaxed) + self.rejected.load(Ordering::Relaxed)
    }

    /// The counts so far (`spans_without_transaction` is the record side's, left at 0 here).
    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Acquire);
        let sent = get(&self.sent);
        let dropped = Dropped {
            queue_full: get(&self.queue_full),
            shutdown: get(&self.shutdown),
            send_failed: get(&self.send_failed),
            rejected: get(&self.rejected),
        };
        Stats {
            queued: get(&self.queued),
            sent,
            dropped,
            compressed: get(&self.compressed),
            spans_without_transaction: 0,
        }
    }
}
