//! The current context: which transaction and span new spans belong to, per thread, and the
//! means to carry it to other threads.
//!
//! # Invariants
//! - Each thread has exactly one current frame (transaction, parent span id, parent thread), held
//!   in one constant-initialized thread-local of plain `Cell`s ([`Hot`]), so that every span start
//!   reads a single byte ([`Hot::mode`]) before deciding anything. It only changes through
//!   [`ContextGuard`]s, which restore the previous value on drop, including during unwinding. A
//!   pooled thread therefore returns to its previous (usually empty) context after every task,
//!   even one that panicked.
//! - The frame's transaction pointer, when not null, owns one strong count of its `Arc` (made by
//!   `Arc::into_raw`); whoever replaces it takes that count over. Guards dropped out of order
//!   (possible only when guards are stored by hand) restore the wrong ids, but never free or touch
//!   a transaction they do not own a count of.
//! - The thread also keeps a small *bank* of strong counts of one transaction: a span that ends on
//!   the thread it started on, or a guard that detaches, gives its count back to the bank, and the
//!   next span, attach or [`Context::current`] takes it from there. Spans in a hot loop, and the
//!   tasks of one transaction on a pool thread, thus touch no shared cache line. An exiting thread
//!   empties its bank and closes it: counts given back after that (by spans or guards dropped in
//!   other thread-locals' destructors) are dropped, so no count outlives the thread. The bank holds
//!   one transaction at a time (a count of another one replaces it), so a thread keeps at most one
//!   finished transaction's shared part alive, until its next traced work or its exit.
//! - A [`Context`] is an `Option` of one `Arc` plus two words: cloning it is one atomic increment,
//!   never an allocation, and it is `Send + Sync` so it can be captured by closures that rayon or a
//!   pool runs anywhere.

use std::cell::Cell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use super::transaction::TxShared;
use crate::model::ids::SpanId;

/// A captured trace position: the transaction and the span (if any) that new spans become
/// children of. Empty when captured outside any transaction.
///
/// This is what the macros capture where a closure or async block is created and attach around
/// each call or poll; use it by hand the same way.
///
/// ```
/// use apm_runtime::{Agent, Context, Span, Transaction, report::MemorySink};
///
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// let _default = agent.set_default();
///
/// let tx = Transaction::start("import");
/// let _active = tx.attach();
/// let ctx = Context::current();
/// std::thread::spawn(move || {
///     let _g = ctx.attach();
///     let _span = Span::start("parse"); // a child of "import", on another thread
/// })
/// .join()
/// .unwrap();
/// drop(_active);
/// tx.end();
/// agent.flush(std::time::Duration::from_secs(5));
/// assert_eq!(sink.spans().len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct Context {
    pub(crate) active: Option<Active>,
}

/// The recording part of a non-empty context.
#[derive(Clone)]
pub(crate) struct Active {
    pub(crate) tx: Arc<TxShared>,
    /// The id new spans take as `parent_id`: the current span's, or the transaction's.
    pub(crate) parent_id: SpanId,
    /// The thread the parent runs on; a child started elsewhere is `sync: false`.
    pub(crate) parent_thread: u64,
}

/// What the current frame's transaction decides for new spans: [`Hot::mode`].
pub(crate) const EMPTY: u8 = 0;
/// A transaction is current but not sampled: spans record nothing.
pub(crate) const UNSAMPLED: u8 = 1;
/// A sampled transaction is current: spans record.
pub(crate) const SAMPLED: u8 = 2;

/// Strong counts of one transaction a thread keeps for reuse, at most.
const BANK_MAX: u32 = 64;

/// Strong counts an empty bank takes at once.
const REFILL: u32 = 16;

/// The calling thread's hot state: the current frame, the reference bank and the thread's tag.
/// Plain `Cell`s in a constant-initialized thread-local without a destructor, so each access is
/// one offset from the thread pointer, with no lazy-initialization check and no borrow flag.
pub(crate) struct Hot {
    /// [`EMPTY`], [`UNSAMPLED`] or [`SAMPLED`]: the only thing a span start reads when nothing is
    /// recorded.
    mode: Cell<u8>,
    /// The current frame's transaction, owning one strong count (`Arc::into_raw`); null when empty.
    tx: Cell<*const TxShared>,
    parent_id: Cell<SpanId>,
    parent_thread: Cell<u64>,
    /// The transaction whose strong counts the bank holds (stale, never dereferenced, when
    /// `bank_n` is 0).
    bank_tx: Cell<*const TxShared>,
    bank_n: Cell<u32>,
    /// This thread's tag, 0 until first asked for.
    tag: Cell<u64>,
    /// The finished-span queue's per-thread state (see [`super::producer::HotQueue`]).
    pub(crate) queue: super::producer::HotQueue,
    /// Span slots this thread has reserved from `slots_tx` and not used yet. Only ever non-zero
    /// for the current frame's transaction (every frame change gives them back first), which is
    /// what keeps `slots_tx` alive while they are held.
    slots_tx: Cell<*const TxShared>,
    slots_left: Cell<u32>,
    /// How many slots the next reservation asks for: doubles up to [`SLOTS_MAX`] while spans
    /// keep coming under one frame, so a one-span pool task reserves exactly one.
    slots_chunk: Cell<u32>,
    /// Spans without a transaction this thread may still start before it publishes its count
    /// (see [`Hot::count_orphan`]); 1 until the first.
    orphans_left: Cell<u32>,
    /// The count the last publication announced (the next one's size); 0 before the first.
    orphans_batch: Cell<u32>,
}

/// The most span slots one reservation takes.
const SLOTS_MAX: u32 = 32;

thread_local! {
    static HOT: Hot = const {
        Hot {
            mode: Cell::new(EMPTY),
            tx: Cell::new(std::ptr::null()),
            parent_id: Cell::new(SpanId([0; 8])),
            parent_thread: Cell::new(0),
            bank_tx: Cell::new(std::ptr::null()),
            bank_n: Cell::new(0),
            tag: Cell::new(0),
            queue: super::producer::HotQueue::new(),
            slots_tx: Cell::new(std::ptr::null()),
            slots_left: Cell::new(0),
            slots_chunk: Cell::new(1),
            orphans_left: Cell::new(1),
            orphans_batch: Cell::new(0),
        }
    };
}

/// Runs `f` on the calling thread's hot state.
#[inline(always)]
pub(crate) fn with_hot<R>(f: impl FnOnce(&Hot) -> R) -> R {
    HOT.with(f)
}

/// The calling thread's hot state, for code that reads several of its fields in one go. The
/// thread-local has no destructor, so the pointer stays valid while the thread runs; callers make
/// a reference of it for the duration of one call and never keep it.
#[inline(always)]
pub(crate) fn hot() -> *const Hot {
    HOT.with(|h| h as *const Hot)
}

/// A frame taken out of (or to be put into) [`Hot`]: `tx` owns one strong count when not null.
struct Frame {
    mode: u8,
    tx: *const TxShared,
    parent_id: SpanId,
    parent_thread: u64,
}

impl Frame {
    fn from_context(ctx: Context) -> Frame {
        match ctx.active {
            None => Frame { mode: EMPTY, tx: std::ptr::null(), parent_id: SpanId([0; 8]), parent_thread: 0 },
            Some(a) => Frame {
                mode: if a.tx.sampled { SAMPLED } else { UNSAMPLED },
                parent_id: a.parent_id,
                parent_thread: a.parent_thread,
                tx: Arc::into_raw(a.tx),
            },
        }
    }
}

impl Hot {
    /// What spans started now decide: [`EMPTY`], [`UNSAMPLED`] or [`SAMPLED`].
    #[inline(always)]
    pub(crate) fn mode(&self) -> u8 {
        self.mode.get()
    }

    /// Counts a span started with no transaction current: a per-thread count down (one
    /// decrement and a branch on its zero flag: the no-transaction path must stay a few
    /// instructions). `true` for this thread's first such span and every 1024th after it, when
    /// the caller publishes with [`publish_orphans`]; the rest is published when the thread exits.
    #[inline(always)]
    pub(crate) fn count_orphan(&self) -> bool {
        let left = self.orphans_left.get() - 1;
        self.orphans_left.set(left);
        left == 0
    }

    /// Publishes the spans without a transaction counted since the last publication (the thread
    /// is exiting).
    pub(crate) fn publish_orphan_rest(&self) {
        let batch = self.orphans_batch.get();
        if batch > 0 {
            ORPHANS.fetch_add(u64::from(batch - self.orphans_left.get()), Ordering::Relaxed);
            self.orphans_batch.set(0);
        }
    }

    /// The current frame's transaction (null when empty), alive while the frame is current.
    #[inline(always)]
    pub(crate) fn tx_ptr(&self) -> *const TxShared {
        self.tx.get()
    }

    /// The current parent span (or transaction) id.
    #[inline(always)]
    pub(crate) fn parent_id(&self) -> SpanId {
        self.parent_id.get()
    }

    /// The thread the current parent runs on.
    #[inline(always)]
    pub(crate) fn parent_thread(&self) -> u64 {
        self.parent_thread.get()
    }

    /// The current frame as a [`Context`] (a strong count taken from the bank when it has one).
    #[inline]
    pub(crate) fn capture(&self) -> Context {
        let p = self.tx.get();
        if p.is_null() {
            return Context { active: None };
        }
        Context {
            active: Some(Active {
                // SAFETY: `p` is the current frame's transaction, alive while it is current.
                tx: unsafe { self.take_ref(p) },
                parent_id: self.parent_id.get(),
                parent_thread: self.parent_thread.get(),
            }),
        }
    }

    /// A strong count of `p`: from the bank if it holds `p`'s, else a new one.
    ///
    /// # Safety
    /// `p` must point to a live `TxShared` of an `Arc` (the caller holds a count of it).
    #[inline]
    pub(crate) unsafe fn take_ref(&self, p: *const TxShared) -> Arc<TxShared> {
        let n = self.bank_n.get();
        if n > 0 && self.bank_tx.get() == p {
            self.bank_n.set(n - 1);
        } else {
            // SAFETY: the caller guarantees `p` is alive.
            unsafe { self.refill(p) };
        }
        // SAFETY: one strong count of `p` was just set aside for this `Arc`.
        unsafe { Arc::from_raw(p) }
    }

    /// Takes a new strong count of `p` for the caller and, when the bank is empty, a few more
    /// for the bank: a thread that hands contexts to other threads (which drop them there) then
    /// touches the shared count once per [`REFILL`] captures instead of pulling its cache line
    /// back from the other threads' cores on every one.
    ///
    /// # Safety
    /// As [`Hot::take_ref`].
    #[cold]
    unsafe fn refill(&self, p: *const TxShared) {
        let extra = if self.bank_n.get() == 0 { REFILL - 1 } else { 0 };
        for _ in 0..=extra {
            // SAFETY: the caller guarantees `p` is alive.
            unsafe { Arc::increment_strong_count(p) };
        }
        if extra > 0 {
            if self.bank_tx.get() != p {
                self.rebank(p);
            }
            self.bank_n.set(extra);
        }
    }

    /// A clone of `tx`, taken from the bank when it holds `tx`'s counts.
    #[inline]
    pub(crate) fn clone_ref(&self, tx: &Arc<TxShared>) -> Arc<TxShared> {
        // SAFETY: `tx` is alive: the caller holds it.
        unsafe { self.take_ref(Arc::as_ptr(tx)) }
    }

    /// Keeps `tx`'s strong count in the bank for the next span, or drops it.
    #[inline]
    pub(crate) fn give_ref(&self, tx: Arc<TxShared>) {
        let p = Arc::as_ptr(&tx);
        let n = self.bank_n.get();
        if n >= BANK_MAX {
            return drop(tx);
        }
        if self.bank_tx.get() != p {
            self.rebank(p);
        }
        self.bank_n.set(self.bank_n.get() + 1);
        let _ = Arc::into_raw(tx);
    }

    /// Makes the bank hold counts of `p` from now on, dropping those of another transaction.
    #[cold]
    fn rebank(&self, p: *const TxShared) {
        self.release_bank();
        self.bank_tx.set(p);
        // This thread-local has no destructor: the queue's, which runs at thread exit, empties
        // the bank, so an exiting thread keeps no transaction alive.
        super::producer::register_exit_hook();
    }

    /// Empties the bank for good (the thread is exiting and nothing would empty it again): every
    /// later count given back is dropped, and none is taken in advance.
    pub(crate) fn close_bank(&self) {
        self.release_bank();
        // A pointer no transaction has, with the bank "full": `give_ref` drops, `refill` banks
        // nothing, so `rebank` (and `release_bank`) are never reached again.
        self.bank_tx.set(std::ptr::NonNull::dangling().as_ptr());
        self.bank_n.set(BANK_MAX);
    }

    /// Drops every strong count the bank holds.
    fn release_bank(&self) {
        let n = self.bank_n.replace(0);
        let p = self.bank_tx.get();
        for _ in 0..n {
            // SAFETY: the bank owned `n` strong counts of `p`.
            unsafe { Arc::decrement_strong_count(p) };
        }
    }

    /// Takes one span slot of the current frame's transaction `tx` (at `p`): `false` when the
    /// transaction is at its span limit.
    #[inline(always)]
    pub(crate) fn take_span_slot(&self, tx: &TxShared, p: *const TxShared) -> bool {
        let left = self.slots_left.get();
        if left > 0 && self.slots_tx.get() == p {
            self.slots_left.set(left - 1);
            return true;
        }
        self.reserve_span_slots(tx, p)
    }

    #[inline(never)]
    fn reserve_span_slots(&self, tx: &TxShared, p: *const TxShared) -> bool {
        // Any slots still held belong to the current frame's transaction: `p`'s.
        debug_assert!(self.slots_left.get() == 0 || std::ptr::eq(self.slots_tx.get(), p));
        let chunk = self.slots_chunk.get();
        let got = tx.reserve_spans(chunk);
        if got == 0 {
            return false;
        }
        self.slots_chunk.set((chunk * 2).min(SLOTS_MAX));
        self.slots_tx.set(p);
        self.slots_left.set(self.slots_left.get() + got - 1);
        true
    }

    /// Gives the unused span slots of `tx` back (a transaction counting its spans).
    pub(crate) fn return_span_slots(&self, tx: &TxShared) {
        if self.slots_left.get() > 0 && std::ptr::eq(self.slots_tx.get(), tx) {
            tx.unreserve_spans(self.slots_left.replace(0));
        }
    }

    /// Gives back the span slots of the current frame's transaction before the frame changes.
    fn return_frame_slots(&self) {
        self.slots_chunk.set(1);
        let left = self.slots_left.replace(0);
        if left > 0 {
            // SAFETY: held slots belong to the current frame's transaction, which the frame
            // keeps alive until it is swapped out, after this.
            unsafe { (*self.slots_tx.get()).unreserve_spans(left) };
        }
    }

    #[inline(always)]
    fn swap_frame(&self, f: Frame) -> Frame {
        self.return_frame_slots();
        Frame {
            mode: self.mode.replace(f.mode),
            tx: self.tx.replace(f.tx),
            parent_id: self.parent_id.replace(f.parent_id),
            parent_thread: self.parent_thread.replace(f.parent_thread),
        }
    }

    /// Makes `span` (of the current frame's transaction `tx`) the parent of new spans, if `tx` is
    /// indeed current; returns what to restore.
    #[inline]
    pub(crate) fn enter_span(&self, tx: &Arc<TxShared>, span: SpanId, thread: u64) -> Option<(SpanId, u64)> {
        if self.tx.get() != Arc::as_ptr(tx) {
            return None;
        }
        Some((self.parent_id.replace(span), self.parent_thread.replace(thread)))
    }

    /// A small number naming the calling thread for this process's lifetime.
    #[inline(always)]
    pub(crate) fn thread_tag(&self) -> u64 {
        match self.tag.get() {
            0 => self.register(),
            tag => tag,
        }
    }

    #[cold]
    fn register(&self) -> u64 {
        let tag = crate::model::thread::register_thread();
        self.tag.set(tag);
        tag
    }
}

/// Spans started with no transaction current, process-wide, as threads published them.
static ORPHANS: AtomicU64 = AtomicU64::new(0);

/// Said once: the first span started with no transaction.
static ORPHAN_SAID: crate::diagnostics::Once = crate::diagnostics::Once::new();

/// Spans started with no transaction current, in this process so far: exact for threads that
/// exited, and within 1023 per running thread (each publishes its count every 1024 spans).
pub(crate) fn orphan_spans() -> u64 {
    ORPHANS.load(Ordering::Relaxed)
}

/// Publishes a thread's count of spans without a transaction (its first, or 1024 more) and,
/// for the first in the process, says where the trace was lost and how to carry it.
#[cold]
#[inline(never)]
pub(crate) fn publish_orphans(h: &Hot, name: &str) {
    let first = h.orphans_batch.get() == 0;
    // The first span alone, then 1024 at a time: the count down starts over.
    ORPHANS.fetch_add(if first { 1 } else { u64::from(h.orphans_batch.get()) }, Ordering::Relaxed);
    h.orphans_batch.set(1024);
    h.orphans_left.set(1024);
    if first {
        // The rest of this thread's count is published when it exits.
        super::producer::register_exit_hook();
    }
    if ORPHAN_SAID.first() && super::recorder::default_recorder().is_some() {
        crate::diagnostics::warning!(
            "span {name:?} started with no transaction current on thread {:?}, so it is not \
             recorded (counted in Agent::stats().spans_without_transaction). If it runs inside \
             a transaction's work, its context was lost on the way to this thread: mark the \
             function that hands the work over with #[propagate], or carry the context by hand \
             with Context::current().wrap(..) / wrap_future(..)",
            std::thread::current().name().unwrap_or("unnamed")
        );
    }
}

/// A small number naming the calling thread for this process's lifetime.
pub(crate) fn thread_tag() -> u64 {
    HOT.with(Hot::thread_tag)
}

impl Context {
    /// The calling thread's current context (empty outside any transaction). Costs one atomic
    /// increment when a transaction is current, nothing otherwise.
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().is_empty());
    /// ```
    #[inline]
    pub fn current() -> Context {
        HOT.with(Hot::capture)
    }

    /// `true` when no transaction is current: spans started under it record nothing.
    ///
    /// ```
    /// assert!(apm_runtime::Context::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.active.is_none()
    }

    /// Makes this context current on the calling thread until the guard drops; the guard then
    /// puts back what was current before (also when unwinding from a panic).
    ///
    /// ```
    /// let ctx = apm_runtime::Context::current();
    /// std::thread::spawn(move || {
    ///     let _guard = ctx.attach();
    ///     // spans started here are children of the captured context
    /// }).join().unwrap();
    /// ```
    #[inline]
    pub fn attach(&self) -> ContextGuard {
        // The guard's count of the transaction comes from the thread's bank when it has one.
        let ctx = match &self.active {
            None => Context { active: None },
            Some(a) => Context { active: Some(Active { tx: HOT.with(|h| h.clone_ref(&a.tx)), ..*a }) },
        };
        ContextGuard::install(ctx)
    }

    /// Runs `f` now with this context attached.
    ///
    /// ```
    /// let ctx = apm_runtime::Context::current();
    /// assert_eq!(ctx.in_scope(|| 1 + 1), 2);
    /// ```
    pub fn in_scope<R>(&self, f: impl FnOnce() -> R) -> R {
        let _guard = self.attach();
        f()
    }

    /// Wraps work handed to another thread: the returned closure attaches this context for the
    /// duration of the call, wherever it runs.
    ///
    /// ```
    /// let pool = threadpool::ThreadPool::new(2);
    /// let ctx = apm_runtime::Context::current();
    /// pool.execute(ctx.wrap(|| {
    ///     let _span = apm_runtime::Span::start("job");
    /// }));
    /// pool.join();
    /// ```
    pub fn wrap<R, F: FnOnce() -> R>(self, f: F) -> impl FnOnce() -> R {
        move || {
            let _guard = ContextGuard::install(self);
            f()
        }
    }

    /// Wraps a future so this context is attached around every `poll`, on whichever thread or
    /// executor polls it, and detached in between.
    ///
    /// ```
    /// let ctx = apm_runtime::Context::current();
    /// let fut = ctx.wrap_future(async { 42 });
    /// # let _ = fut;
    /// ```
    pub fn wrap_future<F: Future>(self, future: F) -> WithContext<F> {
        WithContext { context: self, future }
    }

    /// The trace id of the current transaction, if any.
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().trace_id().is_none());
    /// ```
    pub fn trace_id(&self) -> Option<crate::TraceId> {
        self.active.as_ref().map(|a| a.tx.trace_id)
    }

    /// The id new spans would take as their parent (the current span's or the transaction's).
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().parent_id().is_none());
    /// ```
    pub fn parent_id(&self) -> Option<crate::SpanId> {
        self.active.as_ref().map(|a| a.parent_id)
    }

    /// The id of the current transaction, if any: with [`Context::trace_id`] and
    /// [`Context::span_id`], what a log line needs to be joined to its trace (Elastic's log
    /// correlation: ECS `trace.id`, `transaction.id`, `span.id`).
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let tx = agent.transaction("job").start();
    /// let ctx = tx.context();
    /// assert_eq!(ctx.transaction_id(), tx.id());
    /// assert!(apm_runtime::Context::current().transaction_id().is_none());
    /// ```
    pub fn transaction_id(&self) -> Option<crate::SpanId> {
        self.active.as_ref().map(|a| a.tx.id)
    }

    /// The id of the current span, if the context was captured inside one (not directly under
    /// the transaction).
    ///
    /// ```
    /// # let agent = apm_runtime::Agent::builder().sink(apm_runtime::report::MemorySink::new()).build().unwrap();
    /// let tx = agent.transaction("job").start();
    /// let _active = tx.attach();
    /// assert!(apm_runtime::Context::current().span_id().is_none(), "directly under the transaction");
    /// apm_runtime::Span::in_scope("step", || {
    ///     let ctx = apm_runtime::Context::current();
    ///     assert!(ctx.span_id().is_some());
    ///     assert_ne!(ctx.span_id(), ctx.transaction_id());
    /// });
    /// ```
    pub fn span_id(&self) -> Option<crate::SpanId> {
        self.active.as_ref().map(|a| a.parent_id).filter(|&id| Some(id) != self.transaction_id())
    }

    /// Whether the trace is sampled (recorded in full); `false` for an empty context.
    ///
    /// ```
    /// assert!(!apm_runtime::Context::current().is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.tx.sampled)
    }

    /// The W3C `traceparent` for an outgoing request made under this context: this trace, the
    /// current span (or the transaction) as parent, the sampling decision and the random trace
    /// id flag (set on traces this agent started, passed on from the caller otherwise).
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().traceparent().is_none());
    /// ```
    pub fn traceparent(&self) -> Option<crate::propagation::TraceParent> {
        let a = self.active.as_ref()?;
        Some(crate::propagation::TraceParent::with_flags(a.tx.trace_id.0, a.parent_id.0, a.tx.trace_flags))
    }

    /// The W3C `tracestate` for an outgoing request: the incoming entries, with Elastic's
    /// `es=s:<rate>` in front.
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().tracestate().is_none());
    /// ```
    pub fn tracestate(&self) -> Option<String> {
        self.active.as_ref()?.tx.outgoing_tracestate()
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.active {
            None => f.write_str("Context(empty)"),
            Some(a) => write!(f, "Context(trace {} parent {})", a.tx.trace_id, a.parent_id),
        }
    }
}

/// Restores the previously current context when dropped. Not `Send`: it must drop on the
/// thread whose context it changed.
///
/// ```
/// let ctx = apm_runtime::Context::current();
/// {
///     let _guard = ctx.attach();
/// } // previous context restored here
/// ```
#[must_use = "the context is detached again as soon as the guard is dropped"]
pub struct ContextGuard {
    restore: Restore,
    _not_send: PhantomData<*const ()>,
}

enum Restore {
    /// The guard changed nothing.
    Nothing,
    /// A span of the current transaction was entered: only the parent changed.
    Parent(SpanId, u64),
    /// A whole frame was installed; this is the one it replaced.
    Frame(Frame),
}

impl ContextGuard {
    #[inline(never)]
    pub(crate) fn install(ctx: Context) -> ContextGuard {
        let frame = Frame::from_context(ctx);
        // SAFETY: the calling thread's state, used for this call only.
        let previous = unsafe { &*hot() }.swap_frame(frame);
        ContextGuard { restore: Restore::Frame(previous), _not_send: PhantomData }
    }

    /// A guard that changes nothing (for spans that stand for the context already current).
    #[inline(always)]
    pub(crate) fn noop() -> ContextGuard {
        ContextGuard { restore: Restore::Nothing, _not_send: PhantomData }
    }

    /// A guard that puts back `parent` as the current parent span (see [`Hot::enter_span`]).
    #[inline(always)]
    pub(crate) fn parent((id, thread): (SpanId, u64)) -> ContextGuard {
        ContextGuard { restore: Restore::Parent(id, thread), _not_send: PhantomData }
    }
}

impl Drop for ContextGuard {
    #[inline(always)]
    fn drop(&mut self) {
        match self.restore {
            Restore::Nothing => {}
            Restore::Parent(id, thread) => HOT.with(|h| {
                h.parent_id.set(id);
                h.parent_thread.set(thread);
            }),
            Restore::Frame(_) => {
                if let Restore::Frame(previous) = std::mem::replace(&mut self.restore, Restore::Nothing) {
                    restore_frame(previous);
                }
            }
        }
    }
}

// Out of line: installing a whole frame is the rare case (a task's start, a transaction's).
#[inline(never)]
fn restore_frame(previous: Frame) {
    HOT.with(|h| {
        let replaced = h.swap_frame(previous);
        if !replaced.tx.is_null() {
            // Even when the thread leaves traced work (a pool task ended), the count goes to
            // the bank: the pool's next task is most often of the same transaction. The bank
            // holds one transaction at a time, and is emptied when the thread exits.
            // SAFETY: the frame being replaced owned one strong count of its transaction.
            h.give_ref(unsafe { Arc::from_raw(replaced.tx) });
        }
    });
}

/// A future with a [`Context`] attached around each poll. Made by [`Context::wrap_future`].
///
/// ```
/// let fut: apm_runtime::WithContext<_> = apm_runtime::Context::current().wrap_future(async {});
/// # let _ = fut;
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WithContext<F> {
    context: Context,
    future: F,
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self`, and
        // `WithContext` has no `Drop` impl or `Unpin` impl that could move it.
        let this = unsafe { self.get_unchecked_mut() };
        let _guard = this.context.attach();
        unsafe { Pin::new_unchecked(&mut this.future) }.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn context_is_send_sync_and_small() {
        assert_send_sync::<Context>();
        assert!(std::mem::size_of::<Context>() <= 4 * std::mem::size_of::<usize>());
    }

    /// Runs `work` on a new thread with a clone of a transaction's context; returns the
    /// transaction's strong count before the thread started and after it exited.
    fn strong_counts_around_a_thread(work: impl FnOnce(Context) + Send + 'static) -> (usize, usize) {
        let agent = crate::Agent::builder().sink(crate::report::MemorySink::new()).build().unwrap();
        let tx = agent.transaction("t").start();
        let ctx = tx.context();
        let counts = |c: &Context| Arc::strong_count(&c.active.as_ref().unwrap().tx);
        let before = counts(&ctx);
        let carried = ctx.clone();
        std::thread::spawn(move || work(carried)).join().unwrap();
        let after = counts(&ctx);
        drop(ctx);
        tx.end();
        (before, after)
    }

    #[test]
    fn an_exiting_thread_keeps_no_count_of_a_transaction() {
        let (before, after) = strong_counts_around_a_thread(|carried| {
            for _ in 0..3 {
                let _g = carried.attach();
                let span = crate::Span::start("s");
                let _in = span.attach();
            }
            // The bank now holds counts of the transaction, for this thread's next task.
            assert!(HOT.with(|h| h.bank_n.get()) > 0);
        });
        assert_eq!(after, before, "the thread's bank was emptied when it exited");
    }

    #[test]
    fn a_span_ended_by_a_thread_local_destructor_after_the_bank_closed_keeps_no_count() {
        struct EndsLate(std::cell::RefCell<Option<crate::Span>>);
        impl Drop for EndsLate {
            fn drop(&mut self) {
                drop(self.0.borrow_mut().take());
            }
        }
        thread_local! {
            static LATE: EndsLate = const { EndsLate(std::cell::RefCell::new(None)) };
        }
        let (before, after) = strong_counts_around_a_thread(|carried| {
            // Touched first, so destroyed after the queue's thread-local, which closes the bank.
            LATE.with(|_| ());
            let _g = carried.attach();
            let span = crate::Span::start("ends in a destructor");
            LATE.with(|l| *l.0.borrow_mut() = Some(span));
        });
        assert_eq!(after, before, "the span's count was dropped, not banked on a dead thread");
    }

    #[test]
    fn thread_tags_are_distinct_and_named() {
        let here = thread_tag();
        let there = std::thread::Builder::new().name("worker-x".into()).spawn(thread_tag).unwrap().join().unwrap();
        assert_ne!(here, there);
        assert_eq!(crate::model::thread::thread_name(there), format!("worker-x#{there}"));
    }
}
