//! Spans: timed pieces of work inside a transaction, on any thread.

use std::borrow::Cow;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use crate::model::clock::Stamp;
use crate::model::event::{DbContext, ExitContext, LabelValue, Outcome, SpanEvent};
use crate::model::ids::SpanId;
use crate::model::otel::Otel;
use crate::record::context::{hot, with_hot, Active, Context, ContextGuard, Hot, EMPTY, UNSAMPLED};
use crate::record::error;
use crate::record::transaction::TxShared;

/// A span: a timed operation inside a transaction. It ends when dropped or
/// [`ended`](Span::end), from any thread.
///
/// With no current transaction, or in an unsampled one, or past `TRANSACTION_MAX_SPANS`, it
/// records nothing; [`Span::context`] then still carries the surrounding trace, so outgoing
/// requests keep the trace id.
///
/// ```
/// use apm_runtime::{Agent, Span, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// let tx = agent.transaction("checkout").start();
/// let _active = tx.attach();
/// {
///     let span = Span::builder("SELECT orders").with_type("db").subtype("postgresql").action("query").start();
///     let _in_span = span.attach(); // spans started here are its children
/// }
/// drop(_active);
/// tx.end();
/// agent.flush(std::time::Duration::from_secs(5));
/// assert_eq!(sink.spans()[0]["subtype"], "postgresql");
/// ```
#[must_use = "a span ends as soon as it is dropped"]
pub struct Span {
    // Dropped by hand in `Drop`, so that a no-op span has no drop glue left to run after it.
    state: ManuallyDrop<State>,
}

enum State {
    /// Outside any transaction: nothing to record or carry.
    Noop,
    /// Not recorded (unsampled, or over the span limit), started from the thread's current
    /// context: it stands for that context, which it neither copies nor re-attaches. This is
    /// what keeps spans in unsampled transactions nearly free.
    Inherit,
    /// Not recorded, started under an explicit parent: children and outgoing requests still
    /// belong to that parent's trace.
    Passthrough(Context),
    /// The span's event, filled in as the span runs (the box is what reaches the reporter),
    /// and its transaction. Two pointers, so a `Span` moves cheaply on the hot path.
    Recording(Arc<TxShared>, Box<SpanEvent>),
    /// Past `TRANSACTION_MAX_SPANS`: not sent, but kept as it runs so that, if it turns out to
    /// be an exit span, its destination, outcome and duration go into the transaction's
    /// `dropped_spans_stats` (Kibana's service map still shows the dependency). It stands for
    /// its parent: children and outgoing requests belong to the parent.
    OverLimit(Arc<TxShared>, Box<SpanEvent>),
}

/// Configures a span before it starts. Made by [`Span::builder`].
///
/// ```
/// let span = apm_runtime::Span::builder("GET /api").with_type("external").subtype("http").start();
/// # drop(span);
/// ```
#[must_use = "call .start() to start the span"]
pub struct SpanBuilder<'a> {
    name: Cow<'static, str>,
    kind: Cow<'static, str>,
    subtype: Option<Cow<'static, str>>,
    action: Option<Cow<'static, str>>,
    parent: Option<&'a Context>,
    exit: bool,
}

impl<'a> SpanBuilder<'a> {
    /// The span `type` (default `"app"`): `"db"`, `"external"`, `"cache"`, ….
    ///
    /// ```
    /// let s = apm_runtime::Span::builder("q").with_type("db").start();
    /// # drop(s);
    /// ```
    #[inline]
    pub fn with_type(mut self, kind: impl Into<Cow<'static, str>>) -> Self {
        self.kind = kind.into();
        self
    }

    /// The span `subtype`: `"http"`, `"postgresql"`, ….
    ///
    /// ```
    /// let s = apm_runtime::Span::builder("q").subtype("redis").start();
    /// # drop(s);
    /// ```
    #[inline]
    pub fn subtype(mut self, subtype: impl Into<Cow<'static, str>>) -> Self {
        self.subtype = Some(subtype.into());
        self
    }

    /// The span `action`: `"GET"`, `"query"`, ….
    ///
    /// ```
    /// let s = apm_runtime::Span::builder("q").action("query").start();
    /// # drop(s);
    /// ```
    #[inline]
    pub fn action(mut self, action: impl Into<Cow<'static, str>>) -> Self {
        self.action = Some(action.into());
        self
    }

    /// Marks the span as an exit span from its start: a call to another service (a database,
    /// a cache, a queue, an HTTP API). As in Elastic's agents it is a leaf: spans started under
    /// it are not recorded, and trace headers sent from inside it name it as their parent.
    /// [`Span::set_db`], [`Span::set_http`], [`Span::set_message`] and
    /// [`Span::set_destination`] mark a span as an exit span too: where it is attached after
    /// the call, spans started under it are not recorded either.
    ///
    /// ```
    /// let s = apm_runtime::Span::builder("GET k").with_type("db").subtype("redis").exit().start();
    /// # drop(s);
    /// ```
    #[inline]
    pub fn exit(mut self) -> Self {
        self.exit = true;
        self
    }

    /// Makes the span a child of `parent` instead of the current context (for work whose
    /// context was captured earlier, such as an `async fn` started at its first poll).
    ///
    /// ```
    /// let ctx = apm_runtime::Context::current();
    /// let s = apm_runtime::Span::builder("later").child_of(&ctx).start();
    /// # drop(s);
    /// ```
    #[inline]
    pub fn child_of(mut self, parent: &'a Context) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Starts the span (it is not made current: [`Span::attach`] it for that).
    ///
    /// ```
    /// let span = apm_runtime::Span::builder("work").start();
    /// let _in_span = span.attach();
    /// ```
    #[inline(always)]
    pub fn start(self) -> Span {
        if self.parent.is_some() {
            return self.start_child();
        }
        Span::start_lazy(|| self)
    }

    /// Runs `f` in the span, made current, and ends the span when `f` returns or panics: what
    /// a sync `#[span]` fn does. With no current transaction, or in an unsampled one, `f` runs
    /// with no span made at all, which costs a load and a branch.
    ///
    /// ```
    /// let rows = apm_runtime::Span::builder("SELECT users").with_type("db").in_scope(|| 3);
    /// assert_eq!(rows, 3);
    /// ```
    #[inline(always)]
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        if self.parent.is_some() {
            let span = self.start_child();
            let _guard = span.attach();
            return f();
        }
        Span::around(|| self, |_| f(), |_, _| {})
    }

    #[inline(never)]
    fn start_child(self) -> Span {
        let Some(parent) = self.parent else { return Span::of(State::Noop) };
        match &parent.active {
            // Under an exit span nothing is recorded: it is a leaf.
            Some(a) if a.parent_thread & UNDER_EXIT != 0 => Span::of(State::Passthrough(parent.clone())),
            None => {
                // An async `#[span]` fn called outside any transaction lands here.
                note_orphan(|| self);
                Span::of(State::Noop)
            }
            Some(a) if a.tx.sampled && a.tx.try_start_span() => {
                let a = a.clone();
                with_hot(|h| self.record_under(h, a, false))
            }
            // Past the span limit (counted as dropped by `try_start_span`).
            Some(a) if a.tx.sampled => {
                let a = a.clone();
                with_hot(|h| self.record_under(h, a, true))
            }
            Some(_) => Span::of(State::Passthrough(parent.clone())),
        }
    }

    fn record_under(self, h: &Hot, parent: Active, over_limit: bool) -> Span {
        let thread = h.thread_tag();
        self.record(h, parent.tx, parent.parent_id, thread == parent.parent_thread, thread, over_limit)
    }

    #[inline(always)]
    /// `over_limit`: the span is past `TRANSACTION_MAX_SPANS` ([`State::OverLimit`]); a
    /// constant at each call, so the recorded spans' path has no test of it.
    fn record(self, h: &Hot, tx: Arc<TxShared>, parent_id: SpanId, sync: bool, thread: u64, over_limit: bool) -> Span {
        let exit = self.exit;
        let slot = Box::into_raw(crate::record::producer::empty_box(h, &tx.agent)).cast::<SpanEvent>();
        let id = SpanId::random();
        let start = Stamp::now();
        // Field by field, straight into the box: building the event on the stack first and
        // then moving it would copy its 192 bytes once more.
        // SAFETY: `slot` is an allocation for one `SpanEvent` holding nothing to drop; once
        // every field is written it is an ordinary `Box<SpanEvent>`.
        let event = unsafe {
            use std::ptr::addr_of_mut as at;
            at!((*slot).name).write(self.name);
            at!((*slot).kind).write(self.kind);
            at!((*slot).subtype).write(self.subtype);
            at!((*slot).action).write(self.action);
            at!((*slot).trace_id).write(tx.trace_id);
            at!((*slot).id).write(id);
            at!((*slot).parent_id).write(parent_id);
            at!((*slot).transaction_id).write(tx.id);
            at!((*slot).sample_rate).write(tx.sample_rate);
            at!((*slot).more).write(None);
            at!((*slot).sync).write(sync);
            at!((*slot).outcome).write(Outcome::Success);
            at!((*slot).thread).write(thread);
            at!((*slot).start).write(start);
            at!((*slot).end).write(start);
            Box::from_raw(slot)
        };
        let mut span = Span::of(if over_limit { State::OverLimit(tx, event) } else { State::Recording(tx, event) });
        if exit {
            span.mark_exit();
        }
        span
    }
}

/// Set in a context's parent thread tag when the parent is an exit span: spans started under it
/// are not recorded (see [`SpanBuilder::exit`]). Thread tags are small counters, far from it.
pub(crate) const UNDER_EXIT: u64 = 1 << 63;

/// [`UNDER_EXIT`] when `ev` is an exit span, else 0.
#[inline(always)]
fn under(ev: &SpanEvent) -> u64 {
    if ev.more.as_ref().is_some_and(|m| m.exit.is_some()) {
        UNDER_EXIT
    } else {
        0
    }
}

/// Counts a span started with no transaction current; `builder` is only called (for the span's
/// name) on the rare counts that are published.
#[inline(always)]
fn note_orphan<'a>(builder: impl FnOnce() -> SpanBuilder<'a>) {
    // SAFETY: the calling thread's state, used for this call only.
    let h = unsafe { &*hot() };
    if h.count_orphan() {
        publish_orphans_of(h, builder);
    }
}

// Out of line with the builder, so the counting path keeps no closure state alive.
#[cold]
#[inline(never)]
fn publish_orphans_of<'a>(h: &Hot, builder: impl FnOnce() -> SpanBuilder<'a>) {
    crate::record::context::publish_orphans(h, &builder().name);
}

impl Span {
    /// Starts a span named `name` as a child of the current context.
    ///
    /// ```
    /// let span = apm_runtime::Span::start("resize image");
    /// span.end();
    /// ```
    #[inline(always)]
    pub fn start(name: impl Into<Cow<'static, str>>) -> Span {
        Span::start_lazy(|| Span::builder(name))
    }

    /// Starts a span under the current context, calling `builder` only if the span records:
    /// one byte of the thread's state decides the no-transaction and unsampled paths before any
    /// builder exists, and they touch nothing else.
    #[inline(always)]
    pub(crate) fn start_lazy<'a>(builder: impl FnOnce() -> SpanBuilder<'a>) -> Span {
        match with_hot(Hot::mode) {
            EMPTY => {
                note_orphan(builder);
                Span::of(State::Noop)
            }
            UNSAMPLED => Span::of(State::Inherit),
            _ => Span::start_recording(builder),
        }
    }

    // Out of line, to keep the inlined `start` small for the no-transaction and unsampled paths;
    // generic, so the builder is made here, after the checks, and its (usually constant) fields
    // are written straight into the event instead of being copied through the stack.
    #[inline(never)]
    fn start_recording<'a>(builder: impl FnOnce() -> SpanBuilder<'a>) -> Span {
        Span::start_recording_inline(builder)
    }

    // The body of `start_recording`, for `around_started`, which is out of line already.
    #[inline(always)]
    fn start_recording_inline<'a>(builder: impl FnOnce() -> SpanBuilder<'a>) -> Span {
        // SAFETY: the calling thread's state, used for this call only.
        let h = unsafe { &*hot() };
        let p = h.tx_ptr();
        // SAFETY: the current frame's transaction is alive while it is current.
        let Some(tx) = (unsafe { p.as_ref() }) else { return Span::of(State::Noop) };
        // Under an exit span nothing is recorded (one bit of a word read below anyway); the
        // span stands for the exit span, whose id outgoing headers then carry.
        if h.parent_thread() & UNDER_EXIT != 0 {
            return Span::of(State::Inherit);
        }
        if !h.take_span_slot(tx, p) {
            return Span::over_limit(builder, h, p);
        }
        let thread = h.thread_tag();
        let sync = thread == h.parent_thread();
        let parent_id = h.parent_id();
        // SAFETY: as above.
        let tx = unsafe { h.take_ref(p) };
        builder().record(h, tx, parent_id, sync, thread, false)
    }

    /// A span past the transaction's span limit (see [`State::OverLimit`]): out of line, off
    /// the path of the spans that are sent.
    #[cold]
    #[inline(never)]
    fn over_limit<'a>(builder: impl FnOnce() -> SpanBuilder<'a>, h: &Hot, p: *const TxShared) -> Span {
        let thread = h.thread_tag();
        let sync = thread == h.parent_thread();
        let parent_id = h.parent_id();
        // SAFETY: the current frame's transaction is alive while it is current.
        let tx = unsafe { h.take_ref(p) };
        builder().record(h, tx, parent_id, sync, thread, true)
    }

    /// Runs `f` in a new span named `name`, made current, and ends the span when `f` returns or
    /// panics (see [`SpanBuilder::in_scope`]).
    ///
    /// ```
    /// let sum = apm_runtime::Span::in_scope("add", || 1 + 1);
    /// assert_eq!(sum, 2);
    /// ```
    #[inline(always)]
    pub fn in_scope<R>(name: impl Into<Cow<'static, str>>, f: impl FnOnce() -> R) -> R {
        Span::around(|| Span::builder(name), |_| f(), |_, _| {})
    }

    /// Runs a sync `#[span]` fn's `body` in its span. The no-transaction and unsampled paths
    /// make no span at all: one byte of the thread's state sends them straight into `body`, so
    /// the instrumented fn costs a load and a branch more than the plain one. On those paths an
    /// unrecorded span stands by for unwinding only (it reports a panic once, under the
    /// transaction if there is one) and is forgotten on return, where its drop would only have
    /// checked that. `body` gets the span only when one was started past those checks (for its
    /// labels); `record` sees the span and the result before the span ends (the `Result` fns'
    /// outcome and error, reported in an unsampled transaction too).
    #[inline(always)]
    pub(crate) fn around<'a, R>(
        builder: impl FnOnce() -> SpanBuilder<'a>,
        body: impl FnOnce(Option<&mut Span>) -> R,
        record: impl FnOnce(&mut Span, &R),
    ) -> R {
        const _: () = assert!(EMPTY < UNSAMPLED, "one comparison sends both unrecorded modes to the quick path");
        let mode = with_hot(Hot::mode);
        if mode > UNSAMPLED {
            return Span::around_started(builder, body, record);
        }
        if mode == EMPTY {
            note_orphan(builder);
        }
        let mut unwinding = Span::of(State::Inherit);
        let out = body(None);
        if mode == UNSAMPLED {
            // With no transaction there is nowhere to report an error: its message is not
            // even formatted.
            record(&mut unwinding, &out);
        }
        std::mem::forget(unwinding);
        out
    }

    // Out of line, so that the paths `around` keeps for itself stay a load and a branch.
    #[inline(never)]
    fn around_started<'a, R>(
        builder: impl FnOnce() -> SpanBuilder<'a>,
        body: impl FnOnce(Option<&mut Span>) -> R,
        record: impl FnOnce(&mut Span, &R),
    ) -> R {
        let mut span = Span::start_recording_inline(builder);
        // Dropped where they are (the guard first, then the span): moving them into `drop`
        // would copy them on the stack.
        let _guard = span.attach();
        let out = body(Some(&mut span));
        record(&mut span, &out);
        out
    }

    /// A builder for a span with a type, subtype, action or explicit parent.
    ///
    /// ```
    /// let span = apm_runtime::Span::builder("GET /").with_type("external").start();
    /// # drop(span);
    /// ```
    #[inline]
    pub fn builder<'a>(name: impl Into<Cow<'static, str>>) -> SpanBuilder<'a> {
        SpanBuilder {
            name: name.into(),
            kind: Cow::Borrowed("app"),
            subtype: None,
            action: None,
            parent: None,
            exit: false,
        }
    }

    /// The context under this span: spans started under it are its children.
    ///
    /// ```
    /// let span = apm_runtime::Span::start("fan-out");
    /// let ctx = span.context();
    /// std::thread::spawn(move || { let _g = ctx.attach(); }).join().unwrap();
    /// ```
    #[inline]
    pub fn context(&self) -> Context {
        match &*self.state {
            State::Noop => Context::default(),
            State::Inherit => Context::current(),
            State::Passthrough(ctx) => ctx.clone(),
            State::Recording(tx, ev) => Context {
                active: Some(Active {
                    tx: with_hot(|h| h.clone_ref(tx)),
                    parent_id: ev.id,
                    parent_thread: ev.thread | under(ev),
                }),
            },
            State::OverLimit(tx, ev) => Context {
                active: Some(Active {
                    tx: with_hot(|h| h.clone_ref(tx)),
                    parent_id: ev.parent_id,
                    parent_thread: ev.thread,
                }),
            },
        }
    }

    /// Makes this span current on the calling thread until the guard drops.
    ///
    /// ```
    /// let span = apm_runtime::Span::start("step");
    /// let _in_span = span.attach();
    /// ```
    #[inline(always)]
    pub fn attach(&self) -> ContextGuard {
        match &*self.state {
            // Nothing to carry, or already current where it started: nothing to change.
            State::Noop | State::Inherit => ContextGuard::noop(),
            // A span of the transaction current here only changes the parent: no count taken.
            State::Recording(tx, ev) => match with_hot(|h| h.enter_span(tx, ev.id, ev.thread | under(ev))) {
                Some(previous) => ContextGuard::parent(previous),
                None => self.attach_elsewhere(),
            },
            State::Passthrough(_) | State::OverLimit(..) => self.attach_elsewhere(),
        }
    }

    // Out of line: a span carried away from its transaction's frame installs a whole context.
    #[inline(never)]
    fn attach_elsewhere(&self) -> ContextGuard {
        ContextGuard::install(self.context())
    }

    /// The span id, or `None` when the span records nothing.
    ///
    /// ```
    /// assert!(apm_runtime::Span::start("x").id().is_none());
    /// ```
    pub fn id(&self) -> Option<SpanId> {
        match &*self.state {
            State::Recording(_, ev) => Some(ev.id),
            _ => None,
        }
    }

    /// Whether the span is being recorded.
    ///
    /// ```
    /// assert!(!apm_runtime::Span::start("x").is_recording());
    /// ```
    pub fn is_recording(&self) -> bool {
        matches!(*self.state, State::Recording(..))
    }

    /// The event being filled in: also of a span past the limit, whose exit context and
    /// outcome its `dropped_spans_stats` entry needs.
    fn record(&mut self) -> Option<&mut SpanEvent> {
        match &mut *self.state {
            State::Recording(_, ev) | State::OverLimit(_, ev) => Some(ev),
            _ => None,
        }
    }

    /// Gives the span an exit context if it has none yet: it is an exit span from now on.
    fn mark_exit(&mut self) {
        if let Some(r) = self.record() {
            r.more_mut().exit.get_or_insert_with(ExitContext::default);
        }
    }

    /// Moves the span's start `by` earlier: for work reported when it is over (sqlx logs a
    /// query with its elapsed time once it has run).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn backdate(&mut self, by: std::time::Duration) {
        if let Some(r) = self.record() {
            r.start = r.start.minus(by);
        }
    }

    /// What a bridged `tracing` span recorded, made on first use; `None` when the span records
    /// nothing.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn otel_mut(&mut self) -> Option<&mut Otel> {
        self.record().map(|r| r.more_mut().otel.get_or_insert_with(Otel::default))
    }

    /// Sets the `outcome`; otherwise `success`, or `failure` if the span ends by a panic.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::start("x");
    /// span.set_outcome(apm_runtime::Outcome::Failure);
    /// ```
    #[inline]
    pub fn set_outcome(&mut self, outcome: Outcome) {
        if let Some(r) = self.record() {
            r.outcome = outcome;
        }
    }

    /// Adds a label (`context.tags`).
    ///
    /// ```
    /// let mut span = apm_runtime::Span::start("x");
    /// span.set_label("rows", 42);
    /// ```
    pub fn set_label(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<LabelValue>) {
        if let Some(r) = self.record() {
            r.more_mut().labels.push((key.into(), value.into()));
        }
    }

    /// Records an outgoing HTTP call on this span: `context.http` plus the destination and
    /// service target Elastic's service map needs.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::builder("GET example.com").with_type("external").subtype("http").start();
    /// span.set_http("GET", "http://example.com:8080/a", Some(200), "example.com", Some(8080));
    /// ```
    pub fn set_http(&mut self, method: &str, url: &str, status: Option<u16>, host: &str, port: Option<u16>) {
        if let Some(r) = self.record() {
            let target_name = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            let target_type = Some(r.subtype.clone().unwrap_or(Cow::Borrowed("http")));
            r.more_mut().exit = Some(ExitContext {
                http_method: Some(method.to_string()),
                http_url: Some(url.to_string()),
                http_status: status,
                address: Some(host.to_string()),
                port,
                target_type,
                target_name: Some(Cow::Owned(target_name)),
                response_headers: Vec::new(),
                db: None,
                message: None,
                // `send_traced` sends the span's traceparent.
                propagated: true,
            });
        }
    }

    /// Records a database call on this span: `context.db`, and a service target of the span's
    /// subtype named after the instance (what Elastic's service map draws), unless
    /// [`Span::set_service_target`] set one. Call it on spans of type `db` with the database
    /// as subtype (`sqlite`, `postgresql`, `redis`) and action `query`. The statement is cut to
    /// 10 000 characters on the reporter thread, not here.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::builder("SELECT users").with_type("db").subtype("sqlite").action("query").start();
    /// span.set_db(apm_runtime::DbContext {
    ///     kind: "sql".into(),
    ///     instance: Some("app.db".into()),
    ///     statement: Some("SELECT * FROM users".into()),
    ///     rows_affected: Some(3),
    ///     ..Default::default()
    /// });
    /// ```
    pub fn set_db(&mut self, db: DbContext) {
        if let Some(r) = self.record() {
            // Clones of `Cow`s: no copy when they borrow literals, as most do.
            let subtype = r.subtype.clone().unwrap_or_else(|| db.kind.clone());
            let exit = r.more_mut().exit.get_or_insert_with(ExitContext::default);
            if exit.target_type.is_none() {
                exit.target_type = Some(subtype);
                exit.target_name = db.instance.clone();
            }
            exit.db = Some(db);
        }
    }

    /// Records a message sent to or received from a queue: `context.message.queue.name`, the
    /// age of a received message in ms, and a service target of the span's subtype named after
    /// the queue, unless [`Span::set_service_target`] set one.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::builder("SEND to jobs").with_type("messaging").subtype("kafka").action("send").start();
    /// span.set_message("jobs", None);
    /// ```
    pub fn set_message(&mut self, queue: &str, age_ms: Option<u64>) {
        if let Some(r) = self.record() {
            let subtype = r.subtype.clone().unwrap_or(Cow::Borrowed("messaging"));
            let exit = r.more_mut().exit.get_or_insert_with(ExitContext::default);
            if exit.target_type.is_none() {
                exit.target_type = Some(subtype);
                exit.target_name = Some(Cow::Owned(queue.to_string()));
            }
            exit.message = Some((queue.to_string(), age_ms));
        }
    }

    /// Records where an exit span went: `context.destination.address` and `.port`.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::builder("GET cache").with_type("db").subtype("redis").start();
    /// span.set_destination("10.0.0.7", Some(6379));
    /// ```
    pub fn set_destination(&mut self, address: &str, port: Option<u16>) {
        if let Some(r) = self.record() {
            let exit = r.more_mut().exit.get_or_insert_with(ExitContext::default);
            exit.address = Some(address.to_string());
            exit.port = port;
        }
    }

    /// Sets `context.service.target` (type and optional name), from which the reporter
    /// derives `context.destination.service.resource` (`type/name`; the name alone for `http`
    /// and `grpc`; the type alone without a name), overriding
    /// what [`Span::set_db`], [`Span::set_message`] or [`Span::set_http`] derived.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::builder("GET key").with_type("db").subtype("redis").start();
    /// span.set_service_target("redis", Some("cache-1"));
    /// ```
    pub fn set_service_target(&mut self, kind: &str, name: Option<&str>) {
        if let Some(r) = self.record() {
            let exit = r.more_mut().exit.get_or_insert_with(ExitContext::default);
            exit.target_type = Some(Cow::Owned(kind.to_string()));
            exit.target_name = name.map(|n| Cow::Owned(n.to_string()));
        }
    }

    /// Records the response headers of an HTTP exit span (after [`Span::set_http`]); values of
    /// headers whose names match `ELASTIC_APM_SANITIZE_FIELD_NAMES` (by default Elastic's list:
    /// `*auth*`, `set-cookie`, `*token*`, …) are replaced by `[REDACTED]`.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::start("GET api");
    /// span.set_http("GET", "http://api/x", Some(200), "api", Some(80));
    /// span.set_response_headers([("content-type", "text/plain"), ("set-cookie", "id=42")]);
    /// ```
    pub fn set_response_headers<'h>(&mut self, headers: impl IntoIterator<Item = (&'h str, &'h str)>) {
        let State::Recording(tx, ev) = &mut *self.state else { return };
        if let Some(exit) = ev.more.as_mut().and_then(|m| m.exit.as_mut()) {
            // The sanitize list in force (central configuration may have changed it).
            let config = tx.agent.live.load();
            exit.response_headers = headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), crate::record::sanitize::value(&config, k, v).to_string()))
                .collect();
        }
    }

    /// Sets the outcome from a `Result` and, for `Err`, reports an error event under this span.
    ///
    /// ```
    /// let mut span = apm_runtime::Span::start("parse");
    /// span.record_result(&"x".parse::<u8>());
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

    /// Reports `err` as an error event whose parent is this span (or, when the span is not
    /// recorded, its surrounding span or transaction), as [`crate::capture_error`] does.
    ///
    /// ```
    /// let span = apm_runtime::Span::start("parse");
    /// span.capture_error(&std::io::Error::other("bad input"));
    /// ```
    pub fn capture_error<E: std::error::Error + ?Sized>(&self, err: &E) {
        self.capture_error_as(std::any::type_name::<E>(), error::Details::of_error(err));
    }

    /// Reports an error event with an explicit exception type and what the error says (the
    /// macros' `Err` values, whatever traits their types have).
    pub(crate) fn capture_error_as(&self, ty: &str, details: error::Details) {
        let ctx = match &*self.state {
            State::Noop => Context::default(),
            State::Recording(tx, ev) => {
                error::report(tx, ev.id, ty, details, None, true);
                return;
            }
            // Not sent: the error belongs to its parent.
            State::OverLimit(tx, ev) => {
                error::report(tx, ev.parent_id, ty, details, None, true);
                return;
            }
            State::Passthrough(ctx) => ctx.clone(),
            State::Inherit => Context::current(),
        };
        match &ctx.active {
            Some(a) => {
                error::report(&a.tx, a.parent_id, ty, details, None, true);
            }
            None => {
                error::report_outside(ty, details, None, true, None);
            }
        }
    }

    /// Ends the span now (dropping it does the same).
    ///
    /// ```
    /// apm_runtime::Span::start("x").end();
    /// ```
    pub fn end(self) {
        drop(self);
    }

    #[inline(always)]
    fn of(state: State) -> Span {
        Span { state: ManuallyDrop::new(state) }
    }

    /// Ends a recorded span. Its two pointers come in registers, so the span itself need not
    /// live in memory on the paths that never get here.
    #[inline(never)]
    fn finish(tx: Arc<TxShared>, mut event: Box<SpanEvent>) {
        event.end = Stamp::now();
        // One comparison for the spans below the threshold (nearly all of them).
        if tx.span_stack_min.is_some_and(|min| event.start.at_least(event.end, min)) {
            Span::capture_stack(&tx, &mut event);
        }
        // One comparison unless EXIT_SPAN_MIN_DURATION is set; then one more for spans with
        // extra context (`more`), where exit spans are.
        if !tx.exit_min.is_zero() && event.more.is_some() && Span::dropped_as_fast_exit(&tx, &event) {
            // SAFETY: the calling thread's state, used for this call only.
            let h = unsafe { &*hot() };
            h.give_ref(tx);
            return;
        }
        if std::thread::panicking() {
            event.outcome = Outcome::Failure;
            error::report_panic(&tx, event.id, &event.name);
        }
        // SAFETY: the calling thread's state, used for this call only.
        let h = unsafe { &*hot() };
        crate::record::producer::push_span(h, &tx.agent, event);
        // The span's count goes to the thread's bank, for its next span.
        h.give_ref(tx);
    }

    /// Whether `event` is an exit span shorter than `EXIT_SPAN_MIN_DURATION` that sent no trace
    /// headers: then it is counted in the transaction's `dropped_spans_stats` instead of sent.
    #[cold]
    #[inline(never)]
    fn dropped_as_fast_exit(tx: &TxShared, event: &SpanEvent) -> bool {
        let Some(exit) = event.exit() else { return false };
        if exit.propagated || event.start.at_least(event.end, tx.exit_min) {
            return false;
        }
        tx.count_dropped_exit(exit, event.outcome, event.start.us_until(event.end));
        true
    }

    /// Keeps the stack of the code ending a slow span (`SPAN_STACK_TRACE_MIN_DURATION`).
    #[cold]
    #[inline(never)]
    fn capture_stack(tx: &TxShared, event: &mut SpanEvent) {
        if let Some(stack) = crate::record::stack::capture(tx.stack_limit) {
            event.more_mut().stack = Some(stack);
        }
    }

    /// Ends a span past the limit: an exit span goes into `dropped_spans_stats` (it was counted
    /// in `span_count.dropped` when it started).
    #[cold]
    #[inline(never)]
    // The box arrives as the state held it; it is freed here (the rare path: no recycling).
    #[allow(clippy::boxed_local)]
    fn finish_over_limit(tx: Arc<TxShared>, mut event: Box<SpanEvent>) {
        event.end = Stamp::now();
        if std::thread::panicking() {
            event.outcome = Outcome::Failure;
            error::report_panic(&tx, event.parent_id, &event.name);
        }
        if let Some(exit) = event.exit() {
            tx.add_dropped_stat(exit, event.outcome, event.start.us_until(event.end));
        }
        // SAFETY: the calling thread's state, used for this call only.
        unsafe { &*hot() }.give_ref(tx);
    }

    /// Ends an unrecorded span: only a panic unwinding through it has something to report.
    #[cold]
    #[inline(never)]
    fn finish_unrecorded(state: State) {
        if !std::thread::panicking() {
            return;
        }
        let ctx = match state {
            State::Passthrough(ctx) => ctx,
            State::Inherit => Context::current(),
            State::Noop | State::Recording(..) | State::OverLimit(..) => return,
        };
        if let Some(a) = &ctx.active {
            error::report_panic(&a.tx, a.parent_id, &a.tx.name);
        }
    }
}

impl Drop for Span {
    #[inline(always)]
    fn drop(&mut self) {
        match *self.state {
            // The no-transaction path: nothing moved, nothing checked.
            State::Noop => {}
            // Unrecorded: only a panic unwinding through it has something to report.
            State::Inherit if !std::thread::panicking() => {}
            // SAFETY: `state` is not used again: this is the span's drop.
            _ => match unsafe { ManuallyDrop::take(&mut self.state) } {
                State::Recording(tx, event) => Span::finish(tx, event),
                State::OverLimit(tx, event) => Span::finish_over_limit(tx, event),
                unrecorded => Span::finish_unrecorded(unrecorded),
            },
        }
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.state {
            State::Noop => f.write_str("Span(no-op)"),
            State::Inherit => f.write_str("Span(unrecorded)"),
            State::Passthrough(c) => write!(f, "Span(unrecorded, {c:?})"),
            State::Recording(_, ev) => write!(f, "Span({:?} id {})", ev.name, ev.id),
            State::OverLimit(_, ev) => write!(f, "Span({:?}, past the span limit)", ev.name),
        }
    }
}
