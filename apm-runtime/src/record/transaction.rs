//! Transactions: the root of the work one service does for one request or job.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::config::TraceContinuationStrategy;
use crate::model::clock::Stamp;
use crate::model::event::{
    DroppedStat, Event, ExitContext, LabelValue, Labels, Outcome, Request, TransactionEvent, TxContext, User,
    MAX_DROPPED_STATS,
};
use crate::model::ids::{SpanId, TraceId};
use crate::model::otel::Otel;
use crate::propagation::{extract, HeaderSource, TraceParent, TraceState};
use crate::record::context::{thread_tag, Active, Context, ContextGuard};
use crate::record::error;
use crate::record::recorder::Recorder;

/// What every span of one transaction shares, behind the `Arc` that a [`Context`] clones.
pub(crate) struct TxShared {
    pub(crate) agent: Arc<Recorder>,
    pub(crate) trace_id: TraceId,
    pub(crate) id: SpanId,
    pub(crate) sampled: bool,
    /// The W3C trace-flags outgoing requests carry: the sampled bit (always equal to
    /// `sampled`) and the random trace id bit. Kept apart from `sampled`, which the span hot
    /// path reads, so that that path stays a plain `bool` test; this byte is read only when a
    /// `traceparent` is written.
    pub(crate) trace_flags: u8,
    /// `None` when a remote parent decided sampling without telling the rate.
    pub(crate) sample_rate: Option<f64>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: Cow<'static, str>,
    /// The caller's `tracestate` entries.
    pub(crate) tracestate: TraceState,
    /// The rate outgoing requests announce in an `es` entry in front of `tracestate`'s. Made
    /// into the header only when a request goes out ([`TxShared::outgoing_tracestate`]): most
    /// transactions send none, and building it cost four allocations per transaction.
    pub(crate) es_rate: Option<f64>,
    /// The incoming request an HTTP integration recorded ([`Transaction::set_request`]), for
    /// the errors reported under the transaction too (Kibana shows an error's request).
    pub(crate) request: OnceLock<Request>,
    /// Span slots handed out, never more than `max_spans`. Threads reserve them in chunks
    /// ([`crate::record::context::Hot`] keeps the rest of a chunk) and give back what they did not use
    /// when they leave the transaction's context, so spans in a loop touch no shared counter.
    pub(crate) spans_reserved: AtomicU32,
    /// Spans not recorded because the transaction was past `max_spans`.
    pub(crate) spans_dropped: AtomicU32,
    pub(crate) max_spans: u32,
    /// `EXIT_SPAN_MIN_DURATION` as the transaction started.
    pub(crate) exit_min: std::time::Duration,
    /// Exit spans dropped for being fast, and their `dropped_spans_stats`. Locked only by such
    /// spans (which already allocated their context) and at the transaction's end.
    pub(crate) dropped_exits: Mutex<(u32, Vec<DroppedStat>)>,
    /// `SPAN_STACK_TRACE_MIN_DURATION` (`None`: never) and `STACK_TRACE_LIMIT`, as the
    /// transaction started: a span's end compares one duration.
    pub(crate) span_stack_min: Option<std::time::Duration>,
    pub(crate) stack_limit: i32,
    /// What code under the transaction set through [`crate::current_transaction`] (from any
    /// thread its context reached). Boxed on first use, so transactions nobody touches that way
    /// carry one null pointer and an unlocked mutex; locked only by those calls and at the end.
    pub(crate) overrides: Mutex<Option<Box<Overrides>>>,
}

/// Values set through a [`crate::CurrentTransaction`] handle. They win over what the
/// transaction's owner set, because the owner is often an integration filling in defaults
/// (the tower layer's `HTTP 2xx`), while these are the application's explicit word.
#[derive(Default)]
pub(crate) struct Overrides {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) result: Option<Cow<'static, str>>,
    pub(crate) outcome: Option<Outcome>,
    pub(crate) labels: Labels,
    pub(crate) user: Option<User>,
    pub(crate) custom: Vec<(String, serde_json::Value)>,
}

impl TxShared {
    /// The `tracestate` header outgoing requests carry: the caller's entries, with Elastic's
    /// `es=s:<rate>` in front when this transaction decided or was told its sampling rate.
    pub(crate) fn outgoing_tracestate(&self) -> Option<String> {
        match self.es_rate {
            Some(rate) => self.tracestate.with_elastic_sample_rate(rate).to_header(),
            None => self.tracestate.to_header(),
        }
    }

    /// Reserves up to `want` span slots; returns how many it got (0 once the transaction is at
    /// `TRANSACTION_MAX_SPANS`, and then counts one dropped span).
    pub(crate) fn reserve_spans(&self, want: u32) -> u32 {
        let mut current = self.spans_reserved.load(Ordering::Relaxed);
        loop {
            if current >= self.max_spans {
                self.spans_dropped.fetch_add(1, Ordering::Relaxed);
                return 0;
            }
            let n = want.min(self.max_spans - current);
            match self.spans_reserved.compare_exchange_weak(current, current + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return n,
                Err(now) => current = now,
            }
        }
    }

    /// Gives back reserved slots no span used.
    pub(crate) fn unreserve_spans(&self, n: u32) {
        self.spans_reserved.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reserves one span slot: `false` when the transaction is past `TRANSACTION_MAX_SPANS`.
    pub(crate) fn try_start_span(&self) -> bool {
        self.reserve_spans(1) == 1
    }

    /// The overrides, made on first use.
    pub(crate) fn with_overrides<R>(&self, f: impl FnOnce(&mut Overrides) -> R) -> R {
        let mut guard = self.lock_overrides();
        f(guard.get_or_insert_with(Box::default))
    }

    fn lock_overrides(&self) -> MutexGuard<'_, Option<Box<Overrides>>> {
        // A panic while the lock was held left plain values behind: still usable.
        self.overrides.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name as it stands now (renamed through the handle, or as started).
    pub(crate) fn current_name(&self) -> Cow<'static, str> {
        match self.lock_overrides().as_ref().and_then(|o| o.name.clone()) {
            Some(name) => name,
            None => self.name.clone(),
        }
    }

    /// Counts an exit span that was not sent in `dropped_spans_stats`: per (destination
    /// resource, service target, outcome), at most [`MAX_DROPPED_STATS`] entries (later new
    /// destinations are still counted in `span_count.dropped`).
    pub(crate) fn count_dropped_exit(&self, exit: &ExitContext, outcome: Outcome, us: u64) {
        let mut guard = self.dropped_exits.lock().unwrap_or_else(|e| e.into_inner());
        guard.0 += 1;
        Self::add_stat(&mut guard.1, exit, outcome, us);
    }

    /// Adds an exit span past `TRANSACTION_MAX_SPANS` (already counted as dropped when it
    /// started) to `dropped_spans_stats`.
    pub(crate) fn add_dropped_stat(&self, exit: &ExitContext, outcome: Outcome, us: u64) {
        let mut guard = self.dropped_exits.lock().unwrap_or_else(|e| e.into_inner());
        Self::add_stat(&mut guard.1, exit, outcome, us);
    }

    fn add_stat(stats: &mut Vec<DroppedStat>, exit: &ExitContext, outcome: Outcome, us: u64) {
        let same = |d: &&mut DroppedStat| {
            // The resource derives from the target: comparing the target compares both.
            d.outcome == outcome && d.target_type == exit.target_type && d.target_name == exit.target_name
        };
        if let Some(d) = stats.iter_mut().find(same) {
            d.count += 1;
            d.sum_us += us;
        } else if stats.len() < MAX_DROPPED_STATS {
            stats.push(DroppedStat {
                target_type: exit.target_type.clone(),
                target_name: exit.target_name.clone(),
                outcome,
                count: 1,
                sum_us: us,
            });
        }
    }

    fn span_counts(&self) -> (u32, u32) {
        (self.spans_reserved.load(Ordering::Relaxed), self.spans_dropped.load(Ordering::Relaxed))
    }
}

/// Where an incoming request said its trace comes from.
#[derive(Clone, Debug)]
pub(crate) struct RemoteParent {
    pub(crate) trace_id: TraceId,
    pub(crate) parent_id: SpanId,
    pub(crate) sampled: bool,
    /// The caller's random trace id flag (Trace Context Level 2), passed on with its trace id.
    pub(crate) random: bool,
    pub(crate) sample_rate: Option<f64>,
    pub(crate) tracestate: TraceState,
}

/// A transaction: one unit of work of this service (a request handled, a job run). It ends when
/// dropped or [`ended`](Transaction::end); spans started while it is current become its children,
/// on any thread its [`Context`] is carried to.
///
/// Started without an agent (or with `ELASTIC_APM_ENABLED=false`) it is a no-op.
///
/// ```
/// use apm_runtime::{Agent, Transaction, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
///
/// let mut tx = agent.transaction("GET /users").with_type("request").start();
/// tx.set_label("region", "eu-west-1");
/// tx.set_result("HTTP 2xx");
/// tx.end();
///
/// agent.flush(std::time::Duration::from_secs(5));
/// let recorded = &sink.transactions()[0];
/// assert_eq!(recorded["type"], "request");
/// assert_eq!(recorded["context"]["tags"]["region"], "eu-west-1");
/// ```
#[must_use = "a transaction ends as soon as it is dropped"]
pub struct Transaction {
    rec: Option<TxRecord>,
}

struct TxRecord {
    shared: Arc<TxShared>,
    parent_id: Option<SpanId>,
    start: Stamp,
    result: Option<Cow<'static, str>>,
    outcome: Option<Outcome>,
    labels: Labels,
    /// Request and response context set by an integration (user and custom come through
    /// [`Overrides`]).
    context: Option<Box<TxContext>>,
    thread: u64,
    /// The incoming parent when the trace was restarted (`ELASTIC_APM_TRACE_CONTINUATION_STRATEGY`),
    /// sent as a span link so the two traces stay connected.
    links: Vec<(TraceId, SpanId)>,
    /// What a bridged `tracing` span recorded (only for transactions the bridge started).
    otel: Option<Box<Otel>>,
}

/// Configures a transaction before it starts. Made by [`Transaction::builder`] or
/// [`Agent::transaction`].
///
/// ```
/// let tx = apm_runtime::Transaction::builder("nightly-export").with_type("job").start();
/// # drop(tx);
/// ```
#[must_use = "call .start() to start the transaction"]
pub struct TransactionBuilder<'a> {
    agent: Option<&'a Arc<Recorder>>,
    name: Cow<'static, str>,
    kind: Cow<'static, str>,
    remote: Option<RemoteParent>,
}

impl<'a> TransactionBuilder<'a> {
    pub(crate) fn new(agent: Option<&'a Arc<Recorder>>, name: Cow<'static, str>) -> Self {
        TransactionBuilder { agent, name, kind: Cow::Borrowed("custom"), remote: None }
    }

    /// The transaction `type` (default `"custom"`): `"request"`, `"job"`, `"messaging"`, ….
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::builder("poll").with_type("job").start();
    /// # drop(tx);
    /// ```
    pub fn with_type(mut self, kind: impl Into<Cow<'static, str>>) -> Self {
        self.kind = kind.into();
        self
    }

    /// Continues the distributed trace an incoming request carries in its W3C `traceparent`
    /// and `tracestate` headers (or Elastic's legacy `elastic-apm-traceparent`): same trace id,
    /// the caller's span as parent, the caller's sampling decision, and the caller's random
    /// trace id flag (W3C Trace Context Level 2) on what this transaction sends on. Missing or
    /// malformed headers start a new trace.
    ///
    /// ```
    /// let headers = [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")];
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let tx = agent.transaction("GET /orders").continue_from(&headers).start();
    /// assert_eq!(tx.trace_id().unwrap().to_string(), "0af7651916cd43dd8448eb211c80319c");
    /// ```
    pub fn continue_from(mut self, headers: &(impl HeaderSource + ?Sized)) -> Self {
        self.remote = extract(headers).and_then(|incoming| {
            let tp = incoming.traceparent;
            Some(RemoteParent {
                trace_id: TraceId::from_bytes(tp.trace_id)?,
                parent_id: SpanId::from_bytes(tp.parent_id)?,
                sampled: tp.sampled(),
                random: tp.random(),
                sample_rate: incoming.tracestate.elastic_sample_rate(),
                tracestate: incoming.tracestate,
            })
        });
        self
    }

    /// Starts the transaction (not yet current anywhere: [`Transaction::attach`] it).
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::builder("work").start();
    /// let _active = tx.attach();
    /// ```
    pub fn start(self) -> Transaction {
        let agent = match self.agent {
            Some(agent) => Some(agent.clone()),
            None => crate::record::recorder::default_recorder(),
        };
        let Some(agent) = agent else {
            crate::record::recorder::no_agent(&format!("transaction {:?}", self.name));
            return Transaction { rec: None };
        };
        let live = agent.live.load();
        if !agent.enabled || !live.recording() {
            return Transaction { rec: None };
        }
        let mut links = Vec::new();
        let remote = match self.remote {
            Some(r) if restarts(live.trace_continuation_strategy(), &r.tracestate) => {
                links.push((r.trace_id, r.parent_id));
                None
            }
            remote => remote,
        };
        let (trace_id, parent_id, sampled, random, sample_rate, tracestate) = match remote {
            Some(r) => (r.trace_id, Some(r.parent_id), r.sampled, r.random, r.sample_rate, r.tracestate),
            None => {
                let rate = live.transaction_sample_rate;
                let sampled = sample(rate);
                // `TraceId::random` draws every byte from a uniform generator, which is when
                // Level 2 says a trace's starter should set the random flag.
                (TraceId::random(), None, sampled, true, Some(rate), TraceState::default())
            }
        };
        let mut trace_flags = if random { TraceParent::FLAG_RANDOM } else { 0 };
        if sampled {
            trace_flags |= TraceParent::FLAG_SAMPLED;
        }
        // Elastic's spec: a transaction that decided sampling itself says at which rate, so
        // downstream services can weigh their metrics; an inherited rate is passed on as is.
        let es_rate = match sample_rate {
            Some(rate) if sampled => Some(rate),
            _ if !sampled => Some(0.0),
            _ => None,
        };
        let max_spans = live.transaction_max_spans;
        let exit_min = live.exit_span_min_duration();
        // A limit of 0 means no stacks at all: no span pays for the check either.
        let stack_limit = live.stack_trace_limit();
        let span_stack_min = live.span_stack_trace_min_duration().filter(|_| stack_limit != 0);
        // The guard borrows `agent`, which the transaction takes over next.
        drop(live);
        let shared = Arc::new(TxShared {
            trace_id,
            id: SpanId::random(),
            sampled,
            trace_flags,
            // Elastic's sampling spec: unsampled transactions report a rate of 0.
            sample_rate: if sampled { sample_rate } else { Some(0.0) },
            name: self.name,
            kind: self.kind,
            tracestate,
            es_rate,
            request: OnceLock::new(),
            spans_reserved: AtomicU32::new(0),
            spans_dropped: AtomicU32::new(0),
            max_spans,
            exit_min,
            dropped_exits: Mutex::new((0, Vec::new())),
            span_stack_min,
            stack_limit,
            overrides: Mutex::new(None),
            agent,
        });
        Transaction {
            rec: Some(TxRecord {
                shared,
                parent_id,
                start: Stamp::now(),
                result: None,
                outcome: None,
                labels: Vec::new(),
                context: None,
                thread: thread_tag(),
                links,
                otel: None,
            }),
        }
    }
}

/// Whether a transaction with an incoming parent starts a trace of its own instead (Elastic's
/// `trace_continuation_strategy`): always with `restart`, and with `restart_external` when the
/// caller is not an Elastic agent (its `tracestate` has no `es` entry), so a third party's
/// sampling decision and trace id do not govern this service's traces.
fn restarts(strategy: TraceContinuationStrategy, incoming: &TraceState) -> bool {
    match strategy {
        TraceContinuationStrategy::Continue => false,
        TraceContinuationStrategy::Restart => true,
        TraceContinuationStrategy::RestartExternal => incoming.get("es").is_none(),
    }
}

/// `rate` is already rounded to 4 decimals; compare against a uniform 64-bit draw so that 1.0
/// always samples and 0.0 never does.
fn sample(rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    (crate::model::ids::next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= rate
}

impl Transaction {
    /// Starts a transaction named `name` on the default agent (see [`Agent::set_default`] and
    /// [`crate::init`]).
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::start("reindex");
    /// tx.end();
    /// ```
    pub fn start(name: impl Into<Cow<'static, str>>) -> Transaction {
        TransactionBuilder::new(None, name.into()).start()
    }

    /// A builder for a transaction on the default agent.
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::builder("GET /").with_type("request").start();
    /// # drop(tx);
    /// ```
    pub fn builder(name: impl Into<Cow<'static, str>>) -> TransactionBuilder<'static> {
        TransactionBuilder::new(None, name.into())
    }

    /// The context to hand to other threads: spans started under it are this transaction's
    /// children.
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::start("job");
    /// let ctx = tx.context();
    /// std::thread::spawn(move || { let _g = ctx.attach(); }).join().unwrap();
    /// ```
    pub fn context(&self) -> Context {
        Context {
            active: self.rec.as_ref().map(|r| Active {
                tx: r.shared.clone(),
                parent_id: r.shared.id,
                parent_thread: r.thread,
            }),
        }
    }

    /// Makes this transaction current on the calling thread until the guard drops.
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::start("job");
    /// let _active = tx.attach();
    /// ```
    pub fn attach(&self) -> ContextGuard {
        ContextGuard::install(self.context())
    }

    /// Sets the `result` (e.g. `"HTTP 2xx"`, `"success"`).
    ///
    /// ```
    /// let mut tx = apm_runtime::Transaction::start("job");
    /// tx.set_result("ok");
    /// ```
    pub fn set_result(&mut self, result: impl Into<Cow<'static, str>>) {
        if let Some(r) = &mut self.rec {
            r.result = Some(result.into());
        }
    }

    /// Sets the `outcome`; otherwise it is `success`, or `failure` if the transaction ends by a
    /// panic.
    ///
    /// ```
    /// let mut tx = apm_runtime::Transaction::start("job");
    /// tx.set_outcome(apm_runtime::Outcome::Failure);
    /// ```
    pub fn set_outcome(&mut self, outcome: Outcome) {
        if let Some(r) = &mut self.rec {
            r.outcome = Some(outcome);
        }
    }

    /// Adds a label (`context.tags`). Setting one on an unsampled transaction records nothing.
    ///
    /// ```
    /// let mut tx = apm_runtime::Transaction::start("job");
    /// tx.set_label("attempt", 3);
    /// tx.set_label("dry_run", false);
    /// ```
    pub fn set_label(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<LabelValue>) {
        if let Some(r) = self.rec.as_mut().filter(|r| r.shared.sampled) {
            r.labels.push((key.into(), value.into()));
        }
    }

    /// The integrations' `context.request` / `context.response`, made on first use; `None` for
    /// a no-op or unsampled transaction (Elastic sends no context for those).
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn context_mut(&mut self) -> Option<&mut TxContext> {
        let r = self.rec.as_mut().filter(|r| r.shared.sampled)?;
        Some(r.context.get_or_insert_with(Box::default))
    }

    /// Sets `context.request` from `request()`, which runs only for a sampled transaction; the
    /// errors reported under the transaction carry it too.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn set_request(&mut self, request: impl FnOnce() -> Request) {
        let Some(r) = self.rec.as_mut().filter(|r| r.shared.sampled) else { return };
        let request = request();
        let _ = r.shared.request.set(request.clone());
        r.context.get_or_insert_with(Box::default).request = Some(request);
    }

    /// What a bridged `tracing` span recorded, made on first use; `None` for a no-op or
    /// unsampled transaction (which sends no context).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn otel_mut(&mut self) -> Option<&mut Otel> {
        let r = self.rec.as_mut().filter(|r| r.shared.sampled)?;
        Some(r.otel.get_or_insert_with(Box::default))
    }

    /// Whether the result was set (by the owner or through the handle): integrations only fill
    /// in a result nobody chose.
    #[cfg_attr(not(feature = "tower"), allow(dead_code))]
    pub(crate) fn has_result(&self) -> bool {
        self.rec.as_ref().is_some_and(|r| {
            r.result.is_some() || r.shared.lock_overrides().as_ref().is_some_and(|o| o.result.is_some())
        })
    }

    /// Sets the outcome from a `Result` and, for `Err`, reports an error event whose parent is
    /// this transaction. What the macros call on a `Result`-returning function.
    ///
    /// ```
    /// let mut tx = apm_runtime::Transaction::start("job");
    /// let r: Result<(), std::io::Error> = Err(std::io::Error::other("disk full"));
    /// tx.record_result(&r);
    /// ```
    pub fn record_result<T, E: std::fmt::Display>(&mut self, result: &Result<T, E>) {
        match result {
            Ok(_) => self.set_outcome(Outcome::Success),
            Err(e) => {
                self.set_outcome(Outcome::Failure);
                self.capture_error_as(std::any::type_name::<E>(), error::Details::message(e.to_string()));
            }
        }
    }

    /// Reports `err` as an error event whose parent is this transaction, as
    /// [`crate::capture_error`] does (type, `source()` chain, the calling thread's stack).
    ///
    /// ```
    /// let tx = apm_runtime::Transaction::start("job");
    /// tx.capture_error(&std::io::Error::other("disk full"));
    /// ```
    pub fn capture_error<E: std::error::Error + ?Sized>(&self, err: &E) {
        self.report_error(std::any::type_name::<E>(), error::Details::of_error(err), true);
    }

    /// Reports an error event with an explicit exception type and what the error says (the
    /// macros' `Err` values, whatever traits their types have).
    pub(crate) fn capture_error_as(&self, ty: &str, details: error::Details) {
        self.report_error(ty, details, true);
    }

    /// Reports an error that escaped the transaction (an `Err` returned through
    /// `#[transaction]`): unhandled, as Elastic's agents report an exception leaving one.
    pub(crate) fn capture_error_unhandled(&self, ty: &str, details: error::Details) {
        self.report_error(ty, details, false);
    }

    fn report_error(&self, ty: &str, details: error::Details, handled: bool) {
        if let Some(r) = &self.rec {
            error::report(&r.shared, r.shared.id, ty, details, None, handled);
        }
    }

    /// The trace id, or `None` for a no-op transaction.
    ///
    /// ```
    /// assert!(apm_runtime::Transaction::start("x").trace_id().is_none());
    /// ```
    pub fn trace_id(&self) -> Option<TraceId> {
        self.rec.as_ref().map(|r| r.shared.trace_id)
    }

    /// The transaction id, or `None` for a no-op transaction.
    ///
    /// ```
    /// assert!(apm_runtime::Transaction::start("x").id().is_none());
    /// ```
    pub fn id(&self) -> Option<SpanId> {
        self.rec.as_ref().map(|r| r.shared.id)
    }

    /// Whether this transaction is sampled (records spans and labels).
    ///
    /// ```
    /// assert!(!apm_runtime::Transaction::start("x").is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.rec.as_ref().is_some_and(|r| r.shared.sampled)
    }

    /// Ends the transaction now (dropping it does the same).
    ///
    /// ```
    /// apm_runtime::Transaction::start("x").end();
    /// ```
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        let Some(mut r) = self.rec.take() else { return };
        let overrides = r.shared.lock_overrides().take();
        let mut name = r.shared.name.clone();
        if let Some(o) = overrides {
            let Overrides { name: o_name, result, outcome, labels, user, custom } = *o;
            name = o_name.unwrap_or(name);
            r.result = result.or(r.result);
            r.outcome = outcome.or(r.outcome);
            r.labels.extend(labels);
            if user.is_some() || !custom.is_empty() {
                let context = r.context.get_or_insert_with(Box::default);
                context.user = user;
                context.custom = custom;
            }
        }
        if std::thread::panicking() {
            r.outcome = Some(Outcome::Failure);
            error::report_panic(&r.shared, r.shared.id, &name);
        }
        let duration = r.start.ms_until(Stamp::now());
        // This thread's unused span slots come back before the spans are counted.
        crate::record::context::with_hot(|h| h.return_span_slots(&r.shared));
        let (mut spans_started, mut spans_dropped) = r.shared.span_counts();
        let (fast_exits, dropped_stats) =
            std::mem::take(&mut *r.shared.dropped_exits.lock().unwrap_or_else(|e| e.into_inner()));
        // Started and then dropped: Elastic counts them as dropped, not started.
        spans_started -= fast_exits.min(spans_started);
        spans_dropped += fast_exits;
        let shared = &r.shared;
        shared.agent.inlet.submit(Event::Transaction(Box::new(TransactionEvent {
            trace_id: shared.trace_id,
            id: shared.id,
            parent_id: r.parent_id,
            name,
            kind: shared.kind.clone(),
            result: r.result,
            outcome: r.outcome.unwrap_or(Outcome::Success),
            timestamp: r.start.epoch_us(),
            duration,
            sampled: shared.sampled,
            sample_rate: shared.sample_rate,
            spans_started,
            spans_dropped,
            dropped_stats,
            labels: r.labels,
            context: r.context,
            thread: r.thread,
            links: r.links,
            otel: r.otel,
        })));
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        self.finish();
    }
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.rec {
            None => f.write_str("Transaction(no-op)"),
            Some(r) => write!(f, "Transaction({:?} trace {} id {})", r.shared.name, r.shared.trace_id, r.shared.id),
        }
    }
}
