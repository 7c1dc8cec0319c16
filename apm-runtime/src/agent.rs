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
use crate::report::{Sink, SinkContext};
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

    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            queued: get(&self.queued),
            sent: get(&self.sent),
            dropped: Dropped {
                queue_full: get(&self.queue_full),
                shutdown: get(&self.shutdown),
                send_failed: get(&self.send_failed),
                rejected: get(&self.rejected),
            },
        }
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
    done: Mutex<bool>,
    answered: Condvar,
}

impl Ack {
    fn new() -> Arc<Ack> {
        Arc::new(Ack { done: Mutex::new(false), answered: Condvar::new() })
    }

    fn answer(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.answered.notify_all();
    }

    /// Waits until answered (`true`) or `deadline` passes (`false`).
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            done = self.answered.wait_timeout(done, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
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
    /// to wait for) and waits for the reporter's answer: `false` if it is gone or `timeout`
    /// passes first.
    fn ask(&self, request: fn(Instant, Arc<Ack>) -> Control, timeout: Duration) -> bool {
        let ack = Ack::new();
        let deadline = Instant::now() + timeout;
        self.send_control(request(deadline, ack.clone())) && ack.wait_until(deadline)
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

/// The APM agent: owns the reporter thread. Dropping it flushes what is queued, waiting at most
/// `ELASTIC_APM_SHUTDOWN_TIMEOUT`.
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
        if sinks.is_empty() {
            sinks.push(Box::new(crate::report::intake::IntakeSink::new(&config)?));
        }
        crate::error::install_panic_hook();
        // reqwest is built without a default crypto provider (see Cargo.toml); install ours now,
        // before the application builds its own clients, so theirs work too.
        crate::report::install_crypto_provider();
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
            counters: counters.clone(),
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
        Ok(Agent {
            inner: Arc::new(AgentInner {
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
            }),
            reporter: Mutex::new(Some(reporter)),
            inline: inline.then_some(delivery),
        })
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
    counters: Arc<Counters>,
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
            self.delivery.lock().unwrap_or_else(|e| e.into_inner()).deliver(after);
            if let Some(ack) = ack {
                ack.answer();
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
    fn deliver(&mut self, after: After) {
        DELIVERING.with(|d| d.set(true));
        let _delivering = Delivering;
        self.drain();
        each_sink(&mut self.sinks, &self.metadata, &self.counters, |sink, c| match after {
            After::Tick => sink.tick(c),
            After::Flush(deadline) => sink.flush(c, deadline),
            After::Shutdown(deadline) => sink.shutdown(c, deadline),
        });
    }

    /// Writes everything queued so far, including before a flush request. Transactions and
    /// errors are taken first and written last: every span a thread ended before it submitted
    /// its transaction is then in that thread's ring, so it is written before the transaction.
    fn drain(&mut self) {
        self.events.extend(self.rx.try_iter());
        let mut batch = std::mem::take(&mut self.batch);
        let n = self.rings.drain(&mut batch);
        self.counters.queued.fetch_add(n as u64, Ordering::Relaxed);
        // Spans first, then what the channel held.
        batch.append(&mut self.events);
        write_all(&mut self.sinks, &self.metadata, &self.counters, &batch);
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
fn sink_context<'a>(i: usize, metadata: &'a Metadata, counters: &'a Counters) -> SinkContext<'a> {
    SinkContext { metadata, counters: (i == 0).then_some(counters) }
}

/// Hands `events`, in order, to every sink. One unwinding guard per sink and drain, not per
/// event; a sink that panics loses the event it was handling (counted as a failed send) and gets
/// the rest.
fn write_all(sinks: &mut [Box<dyn Sink>], metadata: &Metadata, counters: &Counters, events: &[Event]) {
    for (i, sink) in sinks.iter_mut().enumerate() {
        let c = sink_context(i, metadata, counters);
        let mut next = 0;
        while next < events.len() {
            let run = std::panic::AssertUnwindSafe(|| {
                while let Some(event) = events.get(next) {
                    sink.write(event, &c);
                    next += 1;
                }
            });
            if std::panic::catch_unwind(run).is_err() {
                eprintln!("[apm] a sink panicked; the event it was handling is counted as dropped");
                c.record_dropped(DropReason::SendFailed, 1);
                next += 1;
            }
        }
    }
}

/// Calls `f` on every sink. A sink that panics loses that one call (counted as a failed send),
/// not the thread delivering.
fn each_sink(
    sinks: &mut [Box<dyn Sink>],
    metadata: &Metadata,
    counters: &Counters,
    mut f: impl FnMut(&mut dyn Sink, &SinkContext<'_>),
) {
    for (i, sink) in sinks.iter_mut().enumerate() {
        let c = sink_context(i, metadata, counters);
        let call = std::panic::AssertUnwindSafe(|| f(&mut **sink, &c));
        if std::panic::catch_unwind(call).is_err() {
            eprintln!("[apm] a sink panicked; the event it was handling is counted as dropped");
            c.record_dropped(DropReason::SendFailed, 1);
        }
    }
}

static GLOBAL: RwLock<Option<Arc<AgentInner>>> = RwLock::new(None);

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
    /// default until it is dropped.
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// agent.install_global();
    /// ```
    pub fn install_global(&self) {
        *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(self.inner.clone());
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
        self.inner.counters.snapshot()
    }

    /// Sends everything queued so far, waiting at most `timeout`. Returns `true` if the
    /// reporter finished in time.
    ///
    /// When every sink [never blocks](crate::report::Sink::never_blocks), the calling thread
    /// drains the queues and flushes the sinks itself (after the reporter's drain in progress,
    /// if any), with no thread woken, and returns `true`. Called from inside a sink, it returns
    /// `false` at once: the delivery in progress cannot wait for itself.
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
        match &self.inline {
            // Waits at most for the reporter's current drain, which never blocks either.
            Some(delivery) => {
                let deadline = Instant::now() + timeout;
                delivery.lock().unwrap_or_else(|e| e.into_inner()).deliver(After::Flush(deadline));
                true
            }
            None => self.inner.ask(Control::Flush, timeout),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.inner.shut_down.store(true, Ordering::Relaxed);
        {
            let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
            if global.as_ref().is_some_and(|g| Arc::ptr_eq(g, &self.inner)) {
                *global = None;
            }
        }
        if self.inner.ask(Control::Shutdown, self.inner.config.shutdown_timeout) {
            if let Some(handle) = self.reporter.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = handle.join();
            }
        }
        // If the reporter did not answer in time it is left to finish (or die with the
        // process); the application is not held up past its shutdown timeout.
    }
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("config", &self.inner.config).field("stats", &self.stats()).finish()
    }
}

/// Starts the agent from the `ELASTIC_APM_*` environment variables, reporting to the APM Server
/// at `ELASTIC_APM_SERVER_URL`, and makes it the process-wide default. Keep the returned agent
/// alive for as long as you want to report; dropping it flushes.
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
        assert!(!unanswered.wait_until(start + Duration::from_millis(30)));
        assert!(start.elapsed() >= Duration::from_millis(30), "waited until the deadline");

        let ack = Ack::new();
        let answering = ack.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            answering.answer();
        });
        assert!(ack.wait_until(Instant::now() + Duration::from_secs(10)), "woken by the answer");
        t.join().unwrap();
        assert!(ack.wait_until(Instant::now()), "an answered ack stays answered");
    }
}
