//! Where finished events go. The reporter thread hands every event to one or more [`Sink`]s:
//! [`intake::IntakeSink`] ships to Elastic APM Server, [`MemorySink`] keeps events for tests,
//! [`NdjsonFileSink`] writes the intake's NDJSON to a file.

pub mod file;
pub mod intake;
pub mod memory;
pub(crate) mod tls;

use std::time::Instant;

use crate::handoff::Counters;
pub use crate::handoff::DropReason;
use crate::model::event::Event;
use crate::model::metadata::Metadata;
pub use file::NdjsonFileSink;
pub use memory::MemorySink;

/// A destination for finished events. All methods run on the agent's reporter thread, never on
/// the application's, so a sink may block (within the deadlines it is given); unless it says
/// it [never blocks](Sink::never_blocks), in which case a flush may run them on the thread that
/// called [`Agent::flush`](crate::Agent::flush). Calls never overlap either way.
///
/// ```
/// use apm_runtime::report::{Sink, SinkContext};
/// use apm_runtime::Event;
///
/// /// Counts spans, and tells the agent they were delivered.
/// struct CountSpans(usize);
/// impl Sink for CountSpans {
///     fn write(&mut self, event: &Event, ctx: &SinkContext<'_>) {
///         if event.kind() == "span" { self.0 += 1; }
///         ctx.record_sent(1);
///     }
/// }
/// let agent = apm_runtime::Agent::builder().sink(CountSpans(0)).build().unwrap();
/// # drop(agent);
/// ```
pub trait Sink: Send + 'static {
    /// Takes one finished event, in the order events were queued. Report each event's fate
    /// through `ctx` (sent, or dropped with a reason) once it is known: that is how a sink
    /// confirms an event. Until then the agent counts it as in flight, so [`crate::Agent::flush`]
    /// returns `false`; if a call of this sink panics, everything it was handed and had not
    /// confirmed is counted as a failed send (confirmations after that are ignored for those
    /// events), so the statistics stay exact whatever the sink does.
    fn write(&mut self, event: &Event, ctx: &SinkContext<'_>);

    /// Delivers everything written so far, giving up at `deadline`.
    fn flush(&mut self, ctx: &SinkContext<'_>, deadline: Instant) {
        let _ = (ctx, deadline);
    }

    /// The agent is going away: deliver what is possible by `deadline` and count the rest as
    /// dropped (what is still unconfirmed afterwards is counted as a failed send). Defaults to
    /// [`Sink::flush`].
    fn shutdown(&mut self, ctx: &SinkContext<'_>, deadline: Instant) {
        self.flush(ctx, deadline);
    }

    /// Called every ~20 ms, after the queue was drained: a place for time-based batching and
    /// retries.
    fn tick(&mut self, ctx: &SinkContext<'_>) {
        let _ = ctx;
    }

    /// Whether every method of this sink returns promptly on any thread: no network, no waiting
    /// for disk or for another thread. When all of an agent's sinks never block,
    /// [`Agent::flush`](crate::Agent::flush) drains the queues and flushes the sinks on the
    /// calling thread itself rather than waking the reporter and sleeping until it answers:
    /// those two wake-ups cost tens of microseconds of CPU on a small VM, more than draining a
    /// thousand spans. The default, `false`, keeps every call on the reporter thread.
    ///
    /// ```
    /// # use apm_runtime::report::{Sink, SinkContext};
    /// struct Count(u64);
    /// impl Sink for Count {
    ///     fn write(&mut self, _: &apm_runtime::Event, ctx: &SinkContext<'_>) {
    ///         self.0 += 1;
    ///         ctx.record_sent(1);
    ///     }
    ///     fn never_blocks(&self) -> bool {
    ///         true
    ///     }
    /// }
    /// let agent = apm_runtime::Agent::builder().sink(Count(0)).build().unwrap();
    /// agent.transaction("t").start().end();
    /// assert!(agent.flush(std::time::Duration::from_secs(1))); // delivered on this thread
    /// assert_eq!(agent.stats().sent, 1);
    /// ```
    fn never_blocks(&self) -> bool {
        false
    }
}

/// Discards every event, confirming it as sent: what `ELASTIC_APM_DISABLE_SEND=true` uses,
/// so the agent records everything (and counts it) while nothing leaves the process.
///
/// ```
/// let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::Discard).build().unwrap();
/// agent.transaction("t").start().end();
/// assert!(agent.flush(std::time::Duration::from_secs(1)));
/// assert_eq!(agent.stats().sent, 1);
/// ```
pub struct Discard;

impl Sink for Discard {
    fn write(&mut self, _: &Event, ctx: &SinkContext<'_>) {
        ctx.record_sent(1);
    }

    fn never_blocks(&self) -> bool {
        true
    }
}

/// What a sink is told alongside each call: the metadata to open requests with, and where to
/// count deliveries.
///
/// ```
/// # use apm_runtime::report::{Sink, SinkContext};
/// struct Discard;
/// impl Sink for Discard {
///     fn write(&mut self, _: &apm_runtime::Event, ctx: &SinkContext<'_>) {
///         let _name = ctx.metadata().service_name();
///         ctx.record_dropped(apm_runtime::report::DropReason::Rejected, 1);
///     }
/// }
/// ```
pub struct SinkContext<'a> {
    pub(crate) metadata: &'a Metadata,
    /// `None` for all but the first sink: statistics describe the first sink only.
    pub(crate) ledger: Option<&'a Ledger>,
}

/// The first sink's account: the agent's counters, and how many events it was handed and has
/// not confirmed yet. Confirmations beyond that are ignored, so `queued = sent + dropped` holds
/// exactly whatever a sink reports (see [`Sink::write`]).
pub(crate) struct Ledger {
    pub(crate) counters: std::sync::Arc<Counters>,
    pub(crate) unconfirmed: std::cell::Cell<u64>,
}

impl Ledger {
    /// Takes up to `n` events off the unconfirmed count; returns how many it took.
    fn confirm(&self, n: u64) -> u64 {
        let take = n.min(self.unconfirmed.get());
        self.unconfirmed.set(self.unconfirmed.get() - take);
        take
    }

    /// Counts everything unconfirmed as failed (the sink panicked, or shut down without saying);
    /// returns how many.
    pub(crate) fn fail_unconfirmed(&self) -> u64 {
        let n = self.unconfirmed.replace(0);
        self.counters.add_dropped(DropReason::SendFailed, n);
        n
    }
}

impl SinkContext<'_> {
    /// The metadata of this agent (service, process, system).
    ///
    /// ```
    /// # fn f(ctx: &apm_runtime::report::SinkContext<'_>) {
    /// println!("{}", ctx.metadata().service_name());
    /// # }
    /// ```
    pub fn metadata(&self) -> &Metadata {
        self.metadata
    }

    /// Appends the `{"metadata":…}` line that must open every intake request.
    ///
    /// ```
    /// # fn f(ctx: &apm_runtime::report::SinkContext<'_>) {
    /// let mut body = Vec::new();
    /// ctx.write_metadata_line(&mut body);
    /// # }
    /// ```
    pub fn write_metadata_line(&self, out: &mut Vec<u8>) {
        crate::model::event::write_metadata_line(self.metadata, out);
    }

    /// Counts `n` events as delivered.
    ///
    /// ```
    /// # fn f(ctx: &apm_runtime::report::SinkContext<'_>) {
    /// ctx.record_sent(10);
    /// # }
    /// ```
    pub fn record_sent(&self, n: u64) {
        if let Some(l) = self.ledger {
            l.counters.add_sent(l.confirm(n));
        }
    }

    /// Counts one request of `bytes` to the APM Server (the agent's health metricsets).
    pub(crate) fn record_request(&self, bytes: u64) {
        if let Some(l) = self.ledger {
            l.counters.add_request(bytes);
        }
    }

    /// Counts `n` events as dropped for `reason`.
    ///
    /// ```
    /// # fn f(ctx: &apm_runtime::report::SinkContext<'_>) {
    /// ctx.record_dropped(apm_runtime::report::DropReason::SendFailed, 3);
    /// # }
    /// ```
    pub fn record_dropped(&self, reason: DropReason, n: u64) {
        if let Some(l) = self.ledger {
            l.counters.add_dropped(reason, l.confirm(n));
        }
    }
}
