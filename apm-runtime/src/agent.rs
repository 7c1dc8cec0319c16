//! The agent: configuration, the bounded event queue, the reporter thread, and the statistics
//! that account for every event.
//!
//! # Invariants
//! - The application never blocks on reporting: [`AgentInner::submit`] is a `try_send` into a
//!   bounded queue, and a span's end a push into its thread's bounded ring
//!   ([`crate::queue`]); a full queue or ring drops the event and counts it.
//! - Every event ends up in exactly one counter: `queued` (then later `sent` or one of the
//!   `dropped` reasons past the queue) or `dropped.queue_full` / `dropped.shutdown`. Nothing
//!   disappears uncounted. (A span pushed by another thread in the instant between the agent's
//!   final drain at shutdown and its reporter's exit is the one exception: it is freed with its
//!   ring, uncounted.)
//! - One thread delivers at a time: draining and every sink call happen under the `Delivery`
//!   lock, taken by the reporter for each poll or request and, when every sink never blocks, by
//!   the thread calling [`Agent::flush`]. Sinks that may block are only ever called by the
//!   reporter.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use crate::config::{Config, ConfigError};
use crate::event::Event;
use crate::metadata::Metadata;
use crate::queue::{emptied, Rings, Spares, BATCH};
use crate::report::{Ledger, Sink, SinkContext};
use crate::transaction::TransactionBuilder;

/// Counts of events by fate, from [`Agent::stats`].
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

/// Why a sink dropped events, for [`SinkContext::record_dropped`].
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
}

impl Counters {
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
    fn failed(&self) -> u64 {
        self.send_failed.load(Ordering::Relaxed) + self.rejected.load(Ordering::Relaxed)
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Acquire);
        let sent = get(&self.sent);
        let dropped = Dropped {
            queue_full: get(&self.queue_full),
            shutdown: get(&self.shutdown),
            send_failed: get(&self.send_failed),
            rejected: get(&self.rejected),
        };
        Stats { queued: get(&self.queued), sent, dropped, spans_without_transaction: crate::context::orphan_spans() }
    }
}

enum Control {
    /// The queue is filling up: drain it now rather than at the next poll.
    Wake,
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
pub(crate) struct Ack {
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

/// The shared part of an agent, referenced by every transaction it started.
pub(crate) struct AgentInner {
    pub(crate) config: Config,
    pub(crate) enabled: bool,
    /// Transactions and errors (spans go through the threads' rings).
    queue: Sender<Event>,
    /// Every thread's ring of finished spans, drained by the reporter.
    pub(crate) rings: Arc<Rings>,
    /// Emptied span boxes coming back from the reporter, for reuse.
    spares: Receiver<Spares>,
    control: Sender<Control>,
    /// The reporter thread, unparked after every control message (it sleeps in `park_timeout`,
    /// not in a channel receive: see [`Ack`] for why).
    reporter_thread: Thread,
    /// Set once a `Wake` is on its way, so a filling queue sends one, not one per event.
    woken: Arc<AtomicBool>,
    /// Set when the agent is dropped: spans ended after that are counted as `shutdown`.
    shut_down: AtomicBool,
    pub(crate) counters: Arc<Counters>,
}

impl AgentInner {
    /// Hands a finished transaction or error to the reporter without ever blocking; drops and
    /// counts it when the queue is full or closed.
    pub(crate) fn submit(&self, event: Event) {
        let counter = match self.queue.try_send(event) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                // The reporter polls the queue rather than being woken per event (a wake-up is
                // a syscall on the application thread); only a half-full queue calls it early.
                if self.queue.len() > self.config.max_queue_size / 2 {
                    self.wake();
                }
                return;
            }
            Err(TrySendError::Full(_)) => &self.counters.queue_full,
            Err(TrySendError::Disconnected(_)) => &self.counters.shutdown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Asks the reporter to drain now rather than at its next poll (once until it has).
    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, Ordering::Relaxed) {
            self.send_control(Control::Wake);
        }
    }

    /// Sends `c` to the reporter and wakes it; `false` if the reporter is gone.
    fn send_control(&self, c: Control) -> bool {
        let sent = self.control.send(c).is_ok();
        self.reporter_thread.unpark();
        sent
    }

    /// Sends a flush or shutdown request (`request` builds it from the deadline and the answer
    /// to wait for) and waits for the reporter's answer: whether everything was delivered, or
    /// `None` if the reporter is gone or `timeout` passes first.
    fn ask(&self, request: fn(Instant, Arc<Ack>) -> Control, timeout: Duration) -> Option<bool> {
        let ack = Ack::new();
        let deadline = Instant::now() + timeout;
        if !self.send_control(request(deadline, ack.clone())) {
            return None;
        }
        ack.wait_until(deadline)
    }

    /// Whether the agent was shut down (dropped, or replaced as the default and released).
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Relaxed)
    }

    /// Counts spans a full ring could not take (or that ended after the agent shut down).
    #[cold]
    pub(crate) fn count_full(&self, n: u64) {
        let counter =
            if self.shut_down.load(Ordering::Relaxed) { &self.counters.shutdown } else { &self.counters.queue_full };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts events that could not be queued because their thread was exiting.
    pub(crate) fn count_lost(&self, n: u64) {
        self.counters.shutdown.fetch_add(n, Ordering::Relaxed);
    }

    /// Written span boxes the reporter sent back, if any are waiting.
    pub(crate) fn returned_boxes(&self) -> Option<Spares> {
        self.spares.try_recv().ok()
    }
}

/// The APM agent: owns the reporter thread.
///
/// Dropping an agent shuts it down: it delivers what was queued, waiting at most
/// `ELASTIC_APM_SHUTDOWN_TIMEOUT`, and says in one line how many events could not be delivered,
/// if any. The process-wide default agent ([`crate::init`], [`Agent::install_global`]) is the
/// exception: dropping its handle only flushes, and it keeps reporting until the process exits
/// (`main` returning or [`std::process::exit`]: it is shut down then, within the same timeout)
/// or [`crate::shutdown`] is called. So `let _ = apm_runtime::init()?;` is safe.
///
/// ```
/// use apm_runtime::{Agent, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build()?;
/// let tx = agent.transaction("startup").start();
/// tx.end();
/// drop(agent); // flushes
/// assert_eq!(sink.transactions().len(), 1);
/// # Ok::<(), apm_runtime::ConfigError>(())
/// ```
pub struct Agent {
    pub(crate) inner: Arc<AgentInner>,
    core: Arc<Core>,
}

/// What shuts an agent down when the last of its owners lets go: the [`Agent`] handle and, for
/// the process-wide default, [`KEEPER`].
struct Core {
    inner: Arc<AgentInner>,
    reporter: Mutex<Option<JoinHandle<()>>>,
    /// The reporter's delivery, when every sink never blocks: [`Agent::flush`] then delivers on
    /// the calling thread, which saves waking the reporter and being woken by its answer.
    inline: Option<Arc<Mutex<Delivery>>>,
}

/// Configures an [`Agent`]. Made by [`Agent::builder`].
///
/// ```
/// let config = apm_runtime::Config::builder().service_name("svc").build().unwrap();
/// let agent = apm_runtime::Agent::builder()
///     .config(config)
///     .sink(apm_runtime::report::MemorySink::new())
///     .build()
///     .unwrap();
/// # drop(agent);
/// ```
#[must_use = "call .build() to start the agent"]
#[derive(Default)]
pub struct AgentBuilder {
    config: Option<Config>,
    sinks: Vec<Box<dyn Sink>>,
}

impl AgentBuilder {
    /// Uses `config` (default: [`Config::builder`]'s defaults; [`crate::init`] reads the
    /// environment).
    ///
    /// ```
    /// let config = apm_runtime::Config::builder().transaction_max_spans(5u32).build().unwrap();
    /// let _b = apm_runtime::Agent::builder().config(config);
    /// ```
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Adds a sink. With several, each gets every event; [`Agent::stats`] counts the first
    /// one's deliveries. Without any, events go to the APM Server at `server_url`.
    ///
    /// ```
    /// let _b = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new());
    /// ```
    pub fn sink(mut self, sink: impl Sink) -> Self {
        self.sinks.push(Box::new(sink));
        self
    }

    /// Starts the reporter thread and returns the agent (not yet the default: see
    /// [`Agent::set_default`] and [`Agent::install_global`]).
    ///
    /// ```
    /// let agent = apm_runtime::Agent::builder()
    ///     .sink(apm_runtime::report::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// # drop(agent);
    /// ```
    pub fn build(self) -> Result<Agent, ConfigError> {
        let config = match self.config {
            Some(c) => c,
            None => Config::builder().build()?,
        };
        let mut sinks = self.sinks;
        let destination = match sinks.len() {
            0 => format!("sending to the APM Server at {}", config.server_url),
            n => format!("sending to {n} sink{} of the application's", if n == 1 { "" } else { "s" }),
        };
        if sinks.is_empty() {
            sinks.push(Box::new(crate::report::intake::IntakeSink::new(&config)?));
        }
        crate::error::install_panic_hook();
        let (queue, rx) = crossbeam_channel::bounded(config.max_queue_size);
        let (spares_tx, spares) = crossbeam_channel::bounded(SPARE_BATCHES);
        let rings = Arc::new(Rings::default());
        let (control, control_rx) = crossbeam_channel::unbounded();
        let woken = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        // Sinks that never block may be run by a flushing application thread (see `Delivery`).
        let inline = sinks.iter().all(|sink| sink.never_blocks());
        let delivery = Arc::new(Mutex::new(Delivery {
            rx,
            rings: rings.clone(),
            spares: spares_tx,
            sinks,
            metadata: Metadata::collect(&config),
            ledger: Ledger { counters: counters.clone(), unconfirmed: Cell::new(0) },
            recycled: Spares::new(),
            batch: Vec::new(),
            events: Vec::new(),
        }));
        let enabled = config.enabled;
        let reporter = Reporter { control: control_rx, woken: woken.clone(), delivery: delivery.clone() };
        let reporter = std::thread::Builder::new()
            .name("apm-reporter".into())
            .spawn(move || reporter.run())
            .expect("spawning the apm-reporter thread");
        let inner = Arc::new(AgentInner {
            config,
            enabled,
            queue,
            rings,
            spares,
            control,
            reporter_thread: reporter.thread().clone(),
            woken,
            shut_down: AtomicBool::new(false),
            counters,
        });
        crate::diagnostics::info!(
            "agent {} started: service {:?}, {}",
            crate::metadata::AGENT_VERSION,
            inner.config.service_name,
            destination
        );
        let core =
            Core { inner: inner.clone(), reporter: Mutex::new(Some(reporter)), inline: inline.then_some(delivery) };
        Ok(Agent { inner, core: Arc::new(core) })
    }
}

/// Batches of empty boxes on their way back to the application threads, at most.
const SPARE_BATCHES: usize = 16;

/// The reporter thread: waits for control messages or the next poll, and delivers.
struct Reporter {
    control: Receiver<Control>,
    woken: Arc<AtomicBool>,
    delivery: Arc<Mutex<Delivery>>,
}

/// Everything a drain needs: the queues' consuming ends, the sinks, and the buffers reused from
/// one drain to the next. Behind a mutex so that, when every sink never blocks, the thread
/// calling [`Agent::flush`] can deliver itself rather than wake the reporter; the mutex also
/// keeps the rings' single-consumer invariant (see [`crate::queue`]) and the sinks' one-at-a-
/// time calls whichever thread delivers.
///
/// Aligned to (pairs of) cache lines: a drain writes its fields for every span it recycles, and
/// an application object allocated on the same line would be slowed by false sharing (this
/// halved scenario 1's speed in issue 6's benchmark before it was aligned).
#[repr(align(128))]
struct Delivery {
    rx: Receiver<Event>,
    rings: Arc<Rings>,
    spares: Sender<Spares>,
    sinks: Vec<Box<dyn Sink>>,
    metadata: Metadata,
    /// The counters, and what the first sink holds unconfirmed.
    ledger: Ledger,
    /// Written span boxes collected to go back to the application threads.
    recycled: Spares,
    /// Reused buffers for one drain: what it writes, and what the channel held.
    batch: Vec<Event>,
    events: Vec<Event>,
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
    fn run(self) {
        loop {
            let (after, ack) = match self.next_control() {
                Some(Ok(Control::Wake)) => {
                    self.woken.store(false, Ordering::Relaxed);
                    (After::Tick, None)
                }
                Some(Ok(Control::Flush(deadline, ack))) => (After::Flush(deadline), Some(ack)),
                Some(Ok(Control::Shutdown(deadline, ack))) => (After::Shutdown(deadline), Some(ack)),
                None => (After::Tick, None),
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
    /// passed without one. Sleeps in `park_timeout` (senders unpark this thread), so that waiting
    /// costs no spinning; a spurious wake-up, or a sink that parked this thread and took the
    /// unpark, only means one more look at the channel.
    fn next_control(&self) -> Option<Result<Control, Gone>> {
        let deadline = Instant::now() + POLL;
        loop {
            match self.control.try_recv() {
                Ok(c) => return Some(Ok(c)),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => return Some(Err(Gone)),
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
    /// [`Agent::flush`] would otherwise wait for the delivery it is part of.
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
        let failed_before = self.ledger.counters.failed();
        self.drain();
        each_sink(&mut self.sinks, &self.metadata, &self.ledger, |sink, c| match after {
            After::Tick => sink.tick(c),
            After::Flush(deadline) => sink.flush(c, deadline),
            After::Shutdown(deadline) => sink.shutdown(c, deadline),
        });
        if matches!(after, After::Shutdown(_)) {
            // Nothing will confirm them any more.
            self.ledger.fail_unconfirmed();
        }
        self.ledger.unconfirmed.get() == 0 && self.ledger.counters.failed() == failed_before
    }

    /// Writes everything queued so far, including before a flush request. Transactions and
    /// errors are taken first and written last: every span a thread ended before it submitted
    /// its transaction is then in that thread's ring, so it is written before the transaction.
    fn drain(&mut self) {
        self.events.extend(self.rx.try_iter());
        let mut batch = std::mem::take(&mut self.batch);
        let n = self.rings.drain(&mut batch);
        self.ledger.counters.queued.fetch_add(n as u64, Ordering::Relaxed);
        // Spans first, then what the channel held.
        batch.append(&mut self.events);
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
    fn recycle(&mut self, span: Box<crate::event::SpanEvent>) {
        self.recycled.push(emptied(span));
        if self.recycled.len() >= BATCH {
            self.send_back();
        }
    }

    /// Sends the boxes collected so far back (freed instead if the channel is full).
    fn send_back(&mut self) {
        let chain = std::mem::replace(&mut self.recycled, Spares::new());
        let _ = self.spares.try_send(chain);
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

static GLOBAL: RwLock<Option<Arc<AgentInner>>> = RwLock::new(None);

/// Keeps the process-wide default agent running after its handle is dropped, until the process
/// exits, another agent is installed, or [`shutdown`] is called.
static KEEPER: Mutex<Option<Arc<Core>>> = Mutex::new(None);

thread_local! {
    static THREAD_DEFAULT: RefCell<Option<Arc<AgentInner>>> = const { RefCell::new(None) };
}

/// The agent new transactions use: this thread's default if one is set, else the global one.
pub(crate) fn default_agent() -> Option<Arc<AgentInner>> {
    THREAD_DEFAULT.with(|d| d.borrow().clone()).or_else(|| GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Restores the previous thread default agent when dropped. Made by [`Agent::set_default`].
///
/// ```
/// let agent = apm_runtime::Agent::builder()
///     .sink(apm_runtime::report::MemorySink::new())
///     .build()
///     .unwrap();
/// let _guard = agent.set_default();
/// ```
#[must_use = "the default is reset as soon as the guard is dropped"]
pub struct DefaultGuard {
    previous: Option<Arc<AgentInner>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for DefaultGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = THREAD_DEFAULT.try_with(|d| *d.borrow_mut() = previous);
    }
}

impl Agent {
    /// A builder for an agent configured in code.
    ///
    /// ```
    /// let agent = apm_runtime::Agent::builder()
    ///     .sink(apm_runtime::report::MemorySink::new())
    ///     .build()
    ///     .unwrap();
    /// # drop(agent);
    /// ```
    pub fn builder() -> AgentBuilder {
        AgentBuilder::default()
    }

    /// A builder for a transaction on this agent (regardless of the default agent).
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let tx = agent.transaction("GET /health").with_type("request").start();
    /// # drop(tx);
    /// ```
    pub fn transaction(&self, name: impl Into<Cow<'static, str>>) -> TransactionBuilder<'_> {
        TransactionBuilder::new(Some(self), name.into())
    }

    /// Makes this agent the one [`crate::Transaction::start`] and the macros use on the calling
    /// thread, until the guard drops. Tests use it to give each test its own agent and sink.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let _default = agent.set_default();
    /// assert!(apm_runtime::Transaction::start("t").trace_id().is_some());
    /// ```
    pub fn set_default(&self) -> DefaultGuard {
        let previous = THREAD_DEFAULT.with(|d| d.borrow_mut().replace(self.inner.clone()));
        DefaultGuard { previous, _not_send: std::marker::PhantomData }
    }

    /// Makes this agent the process-wide default (what [`crate::init`] does). It stays the
    /// default, and keeps reporting, until the process exits, another agent is installed or
    /// [`crate::shutdown`] is called, also when this handle is dropped (which then only
    /// flushes): see [`Agent`].
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// agent.install_global();
    /// ```
    pub fn install_global(&self) {
        *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(self.inner.clone());
        let replaced = KEEPER.lock().unwrap_or_else(|e| e.into_inner()).replace(self.core.clone());
        // Shut down outside the lock (if no handle is left): that waits for its reporter.
        drop(replaced);
        shutdown_at_exit();
    }

    /// The configuration in force.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert_eq!(agent.config().transaction_max_spans(), 500);
    /// ```
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Counts of events queued, sent and dropped (by reason).
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert_eq!(agent.stats().queued, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        // Deliveries first, then what was queued, then the spans still in the threads' rings:
        // whatever a drain does meanwhile, `sent` never reads above `queued`.
        let mut stats = self.inner.counters.snapshot();
        stats.queued += self.inner.rings.pending();
        stats
    }

    /// Delivers everything queued so far, waiting at most `timeout`. Returns `true` only when
    /// every event queued so far was accepted (acknowledged by the server, or written): none is
    /// still in flight and none was dropped during the flush. `false` means some were not: the
    /// server was unreachable, refused them, or `timeout` passed; [`Agent::stats`] tells how
    /// many and why (events a full queue refused were never queued: they are in
    /// `stats().dropped.queue_full`).
    ///
    /// When every sink [never blocks](crate::report::Sink::never_blocks), the calling thread
    /// drains the queues and flushes the sinks itself (after the reporter's drain in progress,
    /// if any), with no thread woken. Called from inside a sink, it returns `false` at once: the
    /// delivery in progress cannot wait for itself.
    ///
    /// "Queued" is every span, transaction and error that ended, on any thread, before the call
    /// (each thread's ring is drained as part of the flush): flush after joining the work whose
    /// spans you want sent.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// assert!(agent.flush(std::time::Duration::from_secs(1)));
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        if DELIVERING.with(Cell::get) {
            return false;
        }
        self.core.flush(timeout)
    }
}

impl Core {
    fn flush(&self, timeout: Duration) -> bool {
        match &self.inline {
            // Waits at most for the reporter's current drain, which never blocks either.
            Some(delivery) => {
                let deadline = Instant::now() + timeout;
                delivery.lock().unwrap_or_else(|e| e.into_inner()).deliver(After::Flush(deadline))
            }
            None => self.inner.ask(Control::Flush, timeout) == Some(true),
        }
    }

    /// Whether this is the process-wide default agent, kept by [`KEEPER`].
    fn is_kept(self: &Arc<Core>) -> bool {
        KEEPER.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|k| Arc::ptr_eq(k, self))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if self.core.is_kept() {
            // The default agent keeps running (see `Agent`): a dropped handle only flushes.
            self.core.flush(self.inner.config.shutdown_timeout);
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Core {
    /// Delivers what is queued (within the shutdown timeout) and stops the reporter; once, on
    /// the last owner's drop or at the process's exit, whichever comes first.
    fn shut_down(&self) {
        let inner = &self.inner;
        if inner.shut_down.swap(true, Ordering::Relaxed) {
            return;
        }
        {
            let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
            if global.as_ref().is_some_and(|g| Arc::ptr_eq(g, inner)) {
                *global = None;
            }
        }
        let timeout = inner.config.shutdown_timeout;
        let answer = inner.ask(Control::Shutdown, timeout);
        if answer.is_some() {
            if let Some(handle) = self.reporter.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = handle.join();
            }
        }
        // If the reporter did not answer in time it is left to finish (or die with the
        // process); the application is not held up past its shutdown timeout.
        report_undelivered(&inner.counters.snapshot(), answer.is_none(), timeout);
    }
}

/// Says, in one line, how many events this agent could not deliver over its life and why: the
/// last thing a short job prints when its data did not arrive.
fn report_undelivered(stats: &Stats, timed_out: bool, timeout: Duration) {
    let d = &stats.dropped;
    let accounted = stats.sent + d.send_failed + d.rejected;
    let in_flight = if timed_out { stats.queued.saturating_sub(accounted) } else { 0 };
    let lost = d.total() + in_flight;
    if lost == 0 {
        return;
    }
    let mut why = Vec::new();
    for (n, reason) in [
        (d.send_failed, "failed to send (the APM Server was unreachable, answered with an error or timed out)"),
        (d.rejected, "refused by the APM Server (a 4xx answer)"),
        (d.queue_full, "dropped because the queue was full (the reporter could not keep up)"),
        (d.shutdown, "ended after the agent shut down"),
    ] {
        if n > 0 {
            why.push(format!("{n} {reason}"));
        }
    }
    if in_flight > 0 {
        why.push(format!("{in_flight} still in flight when the shutdown timeout ({timeout:?}) passed"));
    }
    crate::diagnostics::warning!(
        "{lost} of {} events could not be delivered: {} (see Agent::stats)",
        stats.queued + d.queue_full + d.shutdown,
        why.join("; ")
    );
}

/// Shuts down the process-wide default agent ([`crate::init`], [`Agent::install_global`]):
/// delivers what is queued, within `ELASTIC_APM_SHUTDOWN_TIMEOUT`, then stops reporting. The
/// same happens by itself when the process exits; call this to stop earlier. Instrumented code
/// then records nothing (and says so once). A no-op when no default agent is installed.
///
/// ```
/// let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
/// agent.install_global();
/// drop(agent); // flushes; the default agent keeps reporting
/// apm_runtime::shutdown(); // now it stops
/// ```
pub fn shutdown() {
    let kept = KEEPER.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(core) = kept {
        // Also when the application still holds the handle: it asked for the agent to stop.
        core.shut_down();
    }
}

/// Registers (once) a handler that shuts the default agent down when the process exits, so that
/// what a short job ended is delivered even when nobody keeps the agent's handle, and also
/// through `std::process::exit`.
fn shutdown_at_exit() {
    extern "C" fn at_exit() {
        // `try_lock`: a thread that held the lock when the process began to exit must not make
        // the exit hang.
        let kept = match KEEPER.try_lock() {
            Ok(mut k) => k.take(),
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        // Now, even if a handle is still alive: `std::process::exit` runs no destructor.
        if let Some(core) = kept {
            core.shut_down();
        }
    }
    extern "C" {
        // C's `atexit`, in every libc Rust's std links against.
        fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: `at_exit` is a plain function that lives as long as the program; it touches
        // only statics that are valid during exit, and catches nothing that could unwind out
        // of it (dropping `Core` does not panic: every lock it takes tolerates poisoning).
        unsafe { atexit(at_exit) };
    });
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("config", &self.inner.config).field("stats", &self.stats()).finish()
    }
}

/// Starts the agent from the `ELASTIC_APM_*` environment variables, reporting to the APM Server
/// at `ELASTIC_APM_SERVER_URL`, and makes it the process-wide default. It reports until the
/// process exits (then it delivers what was ended, within `ELASTIC_APM_SHUTDOWN_TIMEOUT`) or
/// [`shutdown`] is called; dropping the returned handle flushes. `let _ = init()?;` is fine.
///
/// ```no_run
/// fn main() -> Result<(), apm_runtime::ConfigError> {
///     let _agent = apm_runtime::init()?;
///     // … instrumented work …
///     Ok(())
/// }
/// ```
pub fn init() -> Result<Agent, ConfigError> {
    let agent = Agent::builder().config(Config::from_env()?).build()?;
    agent.install_global();
    Ok(agent)
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
