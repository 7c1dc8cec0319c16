//! The current context: which transaction and span new spans belong to, per thread, and the
//! means to carry it to other threads.
//!
//! # Invariants
//! - Each thread has exactly one current [`Context`], held in a thread-local. It only changes
//!   through [`ContextGuard`]s, which restore the previous value on drop, including during
//!   unwinding. A pooled thread therefore returns to its previous (usually empty) context after
//!   every task, even one that panicked.
//! - A [`Context`] is an `Option` of one `Arc` plus two words: cloning it is one atomic increment,
//!   never an allocation, and it is `Send + Sync` so it can be captured by closures that rayon or a
//!   pool runs anywhere.

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};

use crate::ids::SpanId;
use crate::transaction::TxShared;

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

thread_local! {
    static CURRENT: RefCell<Context> = const { RefCell::new(Context { active: None }) };
    static THREAD_TAG: u64 = register_thread();
}

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// Thread names by tag, so the reporter side (the waterfall) can show where a span ran without
/// the hot path carrying a string. Written once per thread, on its first span.
fn thread_names() -> &'static Mutex<Vec<(u64, String)>> {
    static NAMES: OnceLock<Mutex<Vec<(u64, String)>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

fn register_thread() -> u64 {
    let tag = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
    // Pools often give every worker the same name; the tag tells them apart.
    let name = match std::thread::current().name() {
        Some("main") => "main".to_string(),
        Some(name) => format!("{name}#{tag}"),
        None => format!("thread-{tag}"),
    };
    thread_names().lock().unwrap_or_else(|e| e.into_inner()).push((tag, name));
    tag
}

/// A small number naming the calling thread for this process's lifetime.
pub(crate) fn thread_tag() -> u64 {
    THREAD_TAG.with(|t| *t)
}

/// The name of the thread with `tag` (`"thread-N"` for unnamed threads).
pub(crate) fn thread_name(tag: u64) -> String {
    let names = thread_names().lock().unwrap_or_else(|e| e.into_inner());
    names.iter().find(|(t, _)| *t == tag).map_or_else(|| format!("thread-{tag}"), |(_, n)| n.clone())
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
        CURRENT.with(|c| c.borrow().clone())
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
        ContextGuard::install(self.clone())
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

    /// Whether the trace is sampled (recorded in full); `false` for an empty context.
    ///
    /// ```
    /// assert!(!apm_runtime::Context::current().is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.active.as_ref().is_some_and(|a| a.tx.sampled)
    }

    /// The W3C `traceparent` for an outgoing request made under this context: this trace, the
    /// current span (or the transaction) as parent, and the sampling decision.
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().traceparent().is_none());
    /// ```
    pub fn traceparent(&self) -> Option<crate::propagation::TraceParent> {
        let a = self.active.as_ref()?;
        Some(crate::propagation::TraceParent::new(a.tx.trace_id.0, a.parent_id.0, a.tx.sampled))
    }

    /// The W3C `tracestate` for an outgoing request: the incoming entries, with Elastic's
    /// `es=s:<rate>` in front.
    ///
    /// ```
    /// assert!(apm_runtime::Context::current().tracestate().is_none());
    /// ```
    pub fn tracestate(&self) -> Option<String> {
        self.active.as_ref()?.tx.tracestate.to_header()
    }

    /// `true` when no transaction is current on this thread; cheaper than `current().is_empty()`
    /// because it clones nothing.
    pub(crate) fn current_is_empty() -> bool {
        CURRENT.with(|c| c.borrow().active.is_none())
    }

    /// Runs `f` on the current context without cloning it: the span-start fast path.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Active>) -> R) -> R {
        CURRENT.with(|c| f(c.borrow().active.as_ref()))
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
    previous: Option<Context>,
    _not_send: PhantomData<*const ()>,
}

impl ContextGuard {
    #[inline]
    pub(crate) fn install(ctx: Context) -> ContextGuard {
        let previous = CURRENT.with(|c| c.replace(ctx));
        ContextGuard { previous: Some(previous), _not_send: PhantomData }
    }
}

impl ContextGuard {
    /// A guard that changes nothing (for spans that stand for the context already current).
    #[inline]
    pub(crate) fn noop() -> ContextGuard {
        ContextGuard { previous: None, _not_send: PhantomData }
    }
}

impl Drop for ContextGuard {
    #[inline]
    fn drop(&mut self) {
        if let Some(prev) = self.previous.take() {
            let restoring_empty = prev.active.is_none();
            // `try_with`: during thread teardown the slot may already be gone; nothing to restore.
            let old = CURRENT.try_with(|c| c.replace(prev));
            let leaving = restoring_empty && old.as_ref().is_ok_and(|o| o.active.is_some());
            // Drop the replaced context outside the borrow: its Arc may be the last reference.
            drop(old);
            if leaving {
                // The thread is done with traced work for now (a pool task or a poll ended):
                // its finished spans should not wait for its next task.
                crate::queue::hand_over_thread_batch();
            }
        }
    }
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

    #[test]
    fn thread_tags_are_distinct_and_named() {
        let here = thread_tag();
        let there = std::thread::Builder::new().name("worker-x".into()).spawn(thread_tag).unwrap().join().unwrap();
        assert_ne!(here, there);
        assert_eq!(thread_name(there), format!("worker-x#{there}"));
    }
}
