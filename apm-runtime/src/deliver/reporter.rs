//! The reporter thread: it sleeps until the poll interval passes, a queue is half full, or the
//! agent asks for a flush or shutdown; then it drains the hand-off and writes every event to the
//! sinks.
//!
//! # Invariants
//! - One thread delivers at a time: draining and every sink call happen under the `Delivery`
//!   lock, taken by the reporter for each poll or request and, when every sink never blocks, by
//!   the thread calling [`crate::Agent::flush`]. Sinks that may block are only ever called by the
//!   reporter.
//! - Spans are drained before the transactions and errors of the same drain are written: a
//!   thread ends its spans before it submits their transaction, so they are already in its ring.
//! - A sink that panics loses only what it held unconfirmed (counted as failed sends); the
//!   reporter goes on with the rest.
//! - While the cloud's metadata service is being asked (see [`super::cloud`]), drained events
//!   are held, unwritten, so the first request's metadata line carries `cloud`; the hold ends
//!   with the answer, the detection's timeout, or a shutdown.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::cloud::{Detection, Pending};
use super::report::{Ledger, Sink, SinkContext};
use arc_swap::ArcSwap;

use crate::config::Config;
use crate::deliver::compress::{self, Compressor};
use crate::deliver::metrics::Metrics;
use crate::deliver::symbolize::Symbolizer;
use crate::handoff::{emptied, Outlet, Spares, BATCH};
use crate::model::event::{Event, SpanEvent};
use crate::model::metadata::Metadata;

/// What the agent keeps of its reporter: the way to ask it for a flush or shutdown.
pub(crate) struct Reporting {
    control: Sender<Control>,
    thread: Thread,
    handle: Mutex<Option<JoinHandle<()>>>,
    /// The reporter's delivery, when every sink never blocks: [`Reporting::flush`] then delivers
    /// on the calling thread, which saves waking the reporter and being woken by its answer.
    inline: Option<Arc<Mutex<Delivery>>>,
}

/// Starts the reporter thread, draining `outlet` into `sinks` (the first one's deliveries are
/// counted), with `metadata` opening every request, and `cloud` asked first when given.
pub(crate) fn spawn(
    outlet: Outlet,
    sinks: Vec<Box<dyn Sink>>,
    metadata: Metadata,
    cloud: Option<Detection>,
    live: Arc<ArcSwap<Config>>,
) -> Reporting {
    let (control, control_rx) = crossbeam_channel::unbounded();
    // Sinks that never block may be run by a flushing application thread (see `Delivery`).
    let inline = sinks.iter().all(|sink| sink.never_blocks());
    let woken = outlet.woken.clone();
    let ledger = Ledger { counters: outlet.counters.clone(), unconfirmed: Cell::new(0) };
    let delivery = Arc::new(Mutex::new(Delivery {
        outlet,
        sinks,
        metadata,
        ledger,
        recycled: Spares::new(),
        batch: Vec::new(),
        events: Vec::new(),
        cloud: None,
        held: Vec::new(),
        symbols: Symbolizer::new(),
        metrics: Metrics::new(&live.load()),
        compressor: Compressor::default(),
        live,
    }));
    let reporter = Reporter { control: control_rx, woken, delivery: delivery.clone(), cloud };
    let handle = std::thread::Builder::new()
        .name("apm-reporter".into())
        .spawn(move || reporter.run())
        .expect("spawning the apm-reporter thread");
    Reporting {
        control,
        thread: handle.thread().clone(),
        handle: Mutex::new(Some(handle)),
        inline: inline.then_some(delivery),
    }
}

/// Whether the calling thread is delivering (a sink calling back into the agent).
pub(crate) fn is_delivering() -> bool {
    DELIVERING.with(Cell::get)
}

impl Reporting {
    /// The reporter thread, for the application's side to wake.
    pub(crate) fn thread(&self) -> Thread {
        self.thread.clone()
    }

    /// Delivers everything queued so far, waiting at most `timeout`: whether all of it was
    /// accepted.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        match &self.inline {
            // Waits at most for the reporter's current drain, which never blocks either.
            Some(delivery) => {
                let deadline = Instant::now() + timeout;
                delivery.lock().unwrap_or_else(|e| e.into_inner()).deliver(After::Flush(deadline))
            }
            None => self.ask(Control::Flush, timeout) == Some(true),
        }
    }

    /// Delivers what is queued within `timeout`, then stops the reporter: whether everything
    /// was delivered, or `None` if the reporter did not answer in time (it is then left to
    /// finish, or die with the process: the application is not held up past its timeout).
    pub(crate) fn shut_down(&self, timeout: Duration) -> Option<bool> {
        let answer = self.ask(Control::Shutdown, timeout);
        if answer.is_some() {
            if let Some(handle) = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = handle.join();
            }
        }
        answer
    }

    /// Sends a flush or shutdown request (`request` builds it from the deadline and the answer
    /// to wait for) and waits for the reporter's answer: whether everything was delivered, or
    /// `None` if the reporter is gone or `timeout` passes first.
    fn ask(&self, request: fn(Instant, Arc<Ack>) -> Control, timeout: Duration) -> Option<bool> {
        let ack = Ack::new();
        let deadline = Instant::now() + timeout;
        let sent = self.control.send(request(deadline, ack.clone())).is_ok();
        self.thread.unpark();
        if !sent {
            return None;
        }
        ack.wait_until(deadline)
    }
}

enum Control {
    /// Drain the queue, flush the sinks, then acknowledge.
    Flush(Instant, Arc<Ack>),
    /// Like `Flush`, then stop the reporter thread.
    Shutdown(Instant, Arc<Ack>),
}

/// The reporter's answer to a flush or shutdown, waited for without spinning.
///
/// crossbeam's blocking receive spins and then yields the CPU several times before it sleeps:
/// right under load, wasteful for a caller that waits for a whole drain. On a 2-core machine
/// those yields and their context switches cost more than the drain itself (issue 6's
/// `count s1` took 550–600 ms of CPU with them, 250–270 ms without). A condition variable
/// sleeps at once.
struct Ack {
    /// `Some(delivered)` once answered: whether everything queued was accepted.
    done: Mutex<Option<bool>>,
    answered: Condvar,
}

impl Ack {
    fn new() -> Arc<Ack> {
        Arc::new(Ack { done: Mutex::new(None), answered: Condvar::new() })
    }

    fn answer(&self, delivered: bool) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = Some(delivered);
        self.answered.notify_all();
    }

    /// Waits until answered (`Some(delivered)`) or `deadline` passes (`None`).
    fn wait_until(&self, deadline: Instant) -> Option<bool> {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while done.is_none() {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            done = self.answered.wait_timeout(done, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        *done
    }
}

/// The reporter thread: waits for control messages or the next poll, and delivers.
struct Reporter {
    control: Receiver<Control>,
    /// Set by the application's side when a queue is half full (see `Inlet::wake`).
    woken: Arc<AtomicBool>,
    delivery: Arc<Mutex<Delivery>>,
    /// The cloud metadata to ask for, on this thread's start.
    cloud: Option<Detection>,
}

/// Everything a drain needs: the queues' consuming ends, the sinks, and the buffers reused from
/// one drain to the next. Behind a mutex so that, when every sink never blocks, the thread
/// calling [`crate::Agent::flush`] can deliver itself rather than wake the reporter; the mutex also
/// keeps the rings' single-consumer invariant (see [`crate::handoff::ring`]) and the sinks' one-at-a-
/// time calls whichever thread delivers.
///
/// Aligned to (pairs of) cache lines: a drain writes its fields for every span it recycles, and
/// an application object allocated on the same line would be slowed by false sharing (this
/// halved scenario 1's speed in issue 6's benchmark before it was aligned).
#[repr(align(128))]
struct Delivery {
    outlet: Outlet,
    sinks: Vec<Box<dyn Sink>>,
    metadata: Metadata,
    /// The counters, and what the first sink holds unconfirmed.
    ledger: Ledger,
    /// Written span boxes collected to go back to the application threads.
    recycled: Spares,
    /// Reused buffers for one drain: what it writes, and what the channel held.
    batch: Vec<Event>,
    events: Vec<Event>,
    /// The cloud metadata detection under way, if any: until it ends, drained events wait in
    /// `held`.
    cloud: Option<Pending>,
    held: Vec<Event>,
    /// Resolves the stacks errors and slow spans captured, with its cache.
    symbols: Symbolizer,
    /// The metricsets' state; `None` with `METRICS_INTERVAL=0`.
    metrics: Option<Metrics>,
    /// Runs of compressible spans waiting for their next sibling.
    compressor: Compressor,
    /// The configuration in force (central configuration may change it).
    live: Arc<ArcSwap<Config>>,
}

/// Every handle to the agent is gone.
struct Gone;

/// How often the reporter drains the queue when nobody asks it to.
const POLL: Duration = Duration::from_millis(20);

/// What the sinks are asked to do once a drain has written what was queued.
#[derive(Clone, Copy)]
enum After {
    Tick,
    Flush(Instant),
    Shutdown(Instant),
}

impl Reporter {
    fn run(mut self) {
        let _agent_work = crate::model::thread::agent_work();
        if let Some(detection) = self.cloud.take() {
            // Started here, not in `init()`: the requests' threads are the reporter's business.
            self.delivery.lock().unwrap_or_else(|e| e.into_inner()).cloud = Some(detection.start());
        }
        loop {
            let (after, ack) = match self.next_control() {
                // Woken early (a queue is half full), or the poll interval passed.
                None => (After::Tick, None),
                Some(Ok(Control::Flush(deadline, ack))) => (After::Flush(deadline), Some(ack)),
                Some(Ok(Control::Shutdown(deadline, ack))) => (After::Shutdown(deadline), Some(ack)),
                // The agent is gone (every handle dropped): deliver what is left, then stop.
                Some(Err(Gone)) => (After::Shutdown(Instant::now() + Duration::from_secs(1)), None),
            };
            let delivered = self.delivery.lock().unwrap_or_else(|e| e.into_inner()).deliver(after);
            if let Some(ack) = ack {
                ack.answer(delivered);
            }
            if matches!(after, After::Shutdown(_)) {
                return;
            }
        }
    }

    /// The next control message (an error once every sender is gone), or `None` once `POLL`
    /// passed without one or the application's side asked for an early drain. Sleeps in
    /// `park_timeout` (senders unpark this thread), so that waiting costs no spinning; a spurious
    /// wake-up, or a sink that parked this thread and took the unpark, only means one more look
    /// at the channel.
    fn next_control(&self) -> Option<Result<Control, Gone>> {
        let deadline = Instant::now() + POLL;
        loop {
            match self.control.try_recv() {
                Ok(c) => return Some(Ok(c)),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Some(Err(Gone)),
            }
            if self.woken.load(Ordering::Relaxed) {
                // Cleared before the drain, so a queue filling again during it wakes us again.
                self.woken.store(false, Ordering::Relaxed);
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            std::thread::park_timeout(deadline - now);
        }
    }
}

thread_local! {
    /// Set while this thread delivers (in [`Delivery::deliver`]): a sink that calls
    /// [`crate::Agent::flush`] would otherwise wait for the delivery it is part of.
    static DELIVERING: Cell<bool> = const { Cell::new(false) };
}

/// Clears [`DELIVERING`] when the delivery ends, however it ends.
struct Delivering;

impl Drop for Delivering {
    fn drop(&mut self) {
        DELIVERING.with(|d| d.set(false));
    }
}

impl Delivery {
    /// Writes everything queued so far to the sinks, then ticks, flushes or shuts them down.
    /// Returns whether every event queued so far was accepted: none is left unconfirmed by the
    /// first sink, and none was dropped during this call.
    fn deliver(&mut self, after: After) -> bool {
        DELIVERING.with(|d| d.set(true));
        let _delivering = Delivering;
        // A flushing application thread delivering here too: what the sinks do is not its work.
        let _agent_work = crate::model::thread::agent_work();
        let failed_before = self.ledger.counters.failed();
        self.drain(after);
        each_sink(&mut self.sinks, &self.metadata, &self.ledger, |sink, c| match after {
            After::Tick => sink.tick(c),
            After::Flush(deadline) => sink.flush(c, deadline),
            After::Shutdown(deadline) => sink.shutdown(c, deadline),
        });
        if matches!(after, After::Shutdown(_)) {
            // Nothing will confirm them any more.
            self.ledger.fail_unconfirmed();
        }
        self.held.is_empty() && self.ledger.unconfirmed.get() == 0 && self.ledger.counters.failed() == failed_before
    }

    /// Whether events may be written: the cloud metadata detection, if any, has ended. A flush
    /// waits for it until its deadline; a shutdown gives up on it rather than lose events.
    fn metadata_ready(&mut self, after: After) -> bool {
        let Some(pending) = self.cloud.take() else { return true };
        let until = match after {
            After::Tick => Instant::now(),
            After::Flush(deadline) | After::Shutdown(deadline) => deadline,
        };
        match pending.wait_until(until) {
            Ok(cloud) => self.metadata.set_cloud(cloud),
            Err(_) if matches!(after, After::Shutdown(_)) => {}
            Err(still) => {
                self.cloud = Some(still);
                return false;
            }
        }
        true
    }

    /// Writes everything queued so far, including before a flush request. Transactions and
    /// errors are taken first and written last: every span a thread ended before it submitted
    /// its transaction is then in that thread's ring, so it is written before the transaction.
    fn drain(&mut self, after: After) {
        self.events.extend(self.outlet.queue.try_iter());
        let mut batch = std::mem::take(&mut self.batch);
        let n = self.outlet.rings.drain(&mut batch);
        self.ledger.counters.add_queued(n as u64);
        // Spans first, then what the channel held.
        batch.append(&mut self.events);
        if !self.metadata_ready(after) {
            // Drained all the same, so the application's queues never fill while we wait.
            self.held.append(&mut batch);
            self.batch = batch;
            return;
        }
        if !self.held.is_empty() {
            // What was held goes first, in the order it was drained.
            self.held.append(&mut batch);
            std::mem::swap(&mut batch, &mut self.held);
        }
        self.symbols.resolve_batch(&mut batch);
        crate::model::otel::apply(&mut batch);
        if let Some(metrics) = &mut self.metrics {
            // Before compression: the breakdown counts every span's own time.
            metrics.observe(&batch);
        }
        let settings = compress::Settings::of(&self.live.load());
        let mut spent = Vec::new();
        let merged = self.compressor.run(&mut batch, settings, !matches!(after, After::Tick), &mut spent);
        if merged > 0 {
            self.ledger.counters.add_compressed(merged);
            for span in spent {
                self.recycle(span);
            }
        }
        if let Some(metrics) = &mut self.metrics {
            // At shutdown the interval so far is reported too: a batch job's breakdown and its
            // own metrics are not lost because it ended between two reports.
            let sets = match after {
                After::Shutdown(_) => metrics.collect(&self.ledger.counters),
                After::Tick | After::Flush(_) => metrics.collect_due(&self.ledger.counters),
            };
            // Metricsets are events like the others: queued, then sent or dropped.
            self.ledger.counters.add_queued(sets.len() as u64);
            batch.extend(sets);
        }
        write_all(&mut self.sinks, &self.metadata, &self.ledger, &batch);
        for event in batch.drain(..) {
            if let Event::Span(span) = event {
                self.recycle(span);
            }
        }
        // The partial batch too: every box written in this drain is back before the threads
        // need it for the next burst of spans, so they seldom allocate one.
        if self.recycled.len() > 0 {
            self.send_back();
        }
        self.batch = batch;
    }

    /// Keeps a written span's box and, a batch at a time, sends boxes back to the application
    /// threads for reuse.
    fn recycle(&mut self, span: Box<SpanEvent>) {
        self.recycled.push(emptied(span));
        if self.recycled.len() >= BATCH {
            self.send_back();
        }
    }

    /// Sends the boxes collected so far back (freed instead if the channel is full).
    fn send_back(&mut self) {
        let chain = std::mem::replace(&mut self.recycled, Spares::new());
        let _ = self.outlet.spares.try_send(chain);
    }
}

/// The context sink `i` is called with: statistics count the first sink's deliveries only.
fn sink_context<'a>(i: usize, metadata: &'a Metadata, ledger: &'a Ledger) -> SinkContext<'a> {
    SinkContext { metadata, ledger: (i == 0).then_some(ledger) }
}

/// Hands `events`, in order, to every sink. One unwinding guard per sink and drain, not per
/// event; a sink that panics loses what it held unconfirmed (counted as failed sends, see
/// [`Ledger`]) and gets the rest.
fn write_all(sinks: &mut [Box<dyn Sink>], metadata: &Metadata, ledger: &Ledger, events: &[Event]) {
    for (i, sink) in sinks.iter_mut().enumerate() {
        let c = sink_context(i, metadata, ledger);
        let handed = c.ledger.map(|l| &l.unconfirmed);
        let mut next = 0;
        while next < events.len() {
            let run = std::panic::AssertUnwindSafe(|| {
                while let Some(event) = events.get(next) {
                    next += 1;
                    if let Some(h) = handed {
                        h.set(h.get() + 1);
                    }
                    sink.write(event, &c);
                }
            });
            if std::panic::catch_unwind(run).is_err() {
                sink_panicked(&c);
            }
        }
    }
}

/// Calls `f` on every sink. A sink that panics loses what it held unconfirmed (counted as failed
/// sends), not the thread delivering.
fn each_sink(
    sinks: &mut [Box<dyn Sink>],
    metadata: &Metadata,
    ledger: &Ledger,
    mut f: impl FnMut(&mut dyn Sink, &SinkContext<'_>),
) {
    for (i, sink) in sinks.iter_mut().enumerate() {
        let c = sink_context(i, metadata, ledger);
        let call = std::panic::AssertUnwindSafe(|| f(&mut **sink, &c));
        if std::panic::catch_unwind(call).is_err() {
            sink_panicked(&c);
        }
    }
}

#[cold]
fn sink_panicked(c: &SinkContext<'_>) {
    let lost = c.ledger.map_or(0, Ledger::fail_unconfirmed);
    crate::diagnostics::warning!("a sink panicked; {lost} events it held unconfirmed are counted as failed sends");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ack_is_seen_once_answered_and_times_out_otherwise() {
        let unanswered = Ack::new();
        let start = Instant::now();
        assert_eq!(unanswered.wait_until(start + Duration::from_millis(30)), None);
        assert!(start.elapsed() >= Duration::from_millis(30), "waited until the deadline");

        let ack = Ack::new();
        let answering = ack.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            answering.answer(true);
        });
        assert_eq!(ack.wait_until(Instant::now() + Duration::from_secs(10)), Some(true), "woken by the answer");
        t.join().unwrap();
        assert_eq!(ack.wait_until(Instant::now()), Some(true), "an answered ack stays answered");
    }
}
