//! Error events: errors captured by hand or returned as `Err` from instrumented functions, and
//! panics that unwind through a transaction or span.

use std::cell::RefCell;
use std::sync::Once;

use crate::model;
use crate::model::clock::Stamp;
use crate::model::event::{Cause, ErrorEvent, ErrorLog, ErrorTransaction, Labels};
use crate::model::ids::{SpanId, TraceId};
use crate::model::stacktrace::RawStack;
use crate::record::context::{thread_tag, Context};
use crate::record::recorder::Recorder;
use crate::record::stack;
use crate::record::transaction::TxShared;

/// Reports `err` as an error event under the current span or transaction: the exception type is
/// `E`'s type name (its module as `exception.module`), the message its `Display`, the
/// `source()` chain its `exception.cause`, and the calling thread's stack its
/// `exception.stacktrace` (taken here as bare return addresses, resolved on the reporter
/// thread; `ELASTIC_APM_STACK_TRACE_LIMIT` frames). Outside any transaction it is reported to
/// the default agent on a trace of its own, with no transaction fields (as Elastic's other
/// agents do); with no agent at all it is dropped, and that is said once per process.
///
/// Returns the error event's id — its `Display` is the 32-hex `id` the event carries, for the
/// application to log or show its user — or `None` when nothing was reported. An
/// `anyhow::Error` or `Box<dyn Error>` is passed as `&*err` (its `dyn Error` view).
///
/// ```
/// use apm_runtime::{Agent, capture_error, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// let tx = agent.transaction("import").start();
/// let mut id = None;
/// {
///     let _active = tx.attach();
///     if let Err(e) = "x1".parse::<u32>() {
///         id = capture_error(&e);
///     }
/// }
/// tx.end();
/// agent.flush(std::time::Duration::from_secs(5));
/// let error = &sink.errors()[0];
/// assert_eq!(error["id"], id.unwrap().to_string());
/// assert_eq!(error["exception"]["message"], "invalid digit found in string");
/// assert_eq!(error["exception"]["type"], "core::num::error::ParseIntError");
/// assert_eq!(error["exception"]["module"], "core::num::error");
/// assert!(error["exception"]["stacktrace"].as_array().is_some_and(|frames| !frames.is_empty()));
/// ```
pub fn capture_error<E: std::error::Error + ?Sized>(err: &E) -> Option<TraceId> {
    capture(std::any::type_name::<E>(), Details::of_error(err))
}

/// Reports an error under the current span or transaction, or outside any: what
/// [`capture_error`] and the spans' `capture_error` do once they know what to say.
pub(crate) fn capture(ty: &str, details: Details) -> Option<TraceId> {
    let ctx = Context::current();
    match &ctx.active {
        Some(a) => Some(report(&a.tx, a.parent_id, ty, details, None, true)),
        None => report_outside(ty, details, None, true, None),
    }
}

/// What an error says about itself: its message and the chain of its sources.
#[derive(Debug)]
pub(crate) struct Details {
    pub(crate) message: String,
    pub(crate) causes: Vec<Cause>,
}

/// The longest `source()` chain followed (a cycle is cut where it closes).
const MAX_CAUSES: usize = 16;

impl Details {
    /// An error known only by its message.
    pub(crate) fn message(message: String) -> Details {
        Details { message, causes: Vec::new() }
    }

    /// `err`'s `Display` and its `source()` chain.
    pub(crate) fn of_error<E: std::error::Error + ?Sized>(err: &E) -> Details {
        Details { message: err.to_string(), causes: causes(err.source()) }
    }

    /// A `dyn Error` view's message and chain (`anyhow::Error`, `Box<dyn Error>`): the view is
    /// the outermost error itself.
    pub(crate) fn of_dyn(err: &(dyn std::error::Error + 'static)) -> Details {
        Details { message: err.to_string(), causes: causes(err.source()) }
    }
}

/// The chain from `next` on, outermost first, bounded in length; an error met twice (a cycle)
/// ends it.
fn causes(mut next: Option<&(dyn std::error::Error + 'static)>) -> Vec<Cause> {
    // Whole pointers, vtable included: a newtype's source is its field, at the same address.
    let mut seen: Vec<*const dyn std::error::Error> = Vec::new();
    let mut out = Vec::new();
    while let Some(err) = next {
        let at = err as *const dyn std::error::Error;
        #[allow(ambiguous_wide_pointer_comparisons)]
        if seen.contains(&at) || out.len() == MAX_CAUSES {
            break;
        }
        seen.push(at);
        out.push(Cause { message: err.to_string(), kind: known_type(err) });
        next = err.source();
    }
    out
}

/// The type behind a `dyn Error`, for the standard library's errors (what else hides behind a
/// `source()` cannot be named without the application's help).
pub(crate) fn known_type(err: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    macro_rules! probe {
        ($($t:ty),*) => {$(
            if err.is::<$t>() {
                return Some(std::any::type_name::<$t>());
            }
        )*};
    }
    probe!(
        std::io::Error,
        std::num::ParseIntError,
        std::num::ParseFloatError,
        std::num::TryFromIntError,
        std::str::Utf8Error,
        std::string::FromUtf8Error,
        std::str::ParseBoolError,
        std::net::AddrParseError,
        std::fmt::Error,
        std::time::SystemTimeError,
        std::env::VarError,
        std::sync::mpsc::RecvError
    );
    None
}

/// Builds and submits one error event tied to `tx` with `parent_id`; returns its id.
pub(crate) fn report(
    tx: &TxShared,
    parent_id: SpanId,
    exception_type: &str,
    details: Details,
    culprit: Option<&str>,
    handled: bool,
) -> TraceId {
    report_with_stack(tx, parent_id, exception_type, details, culprit, handled, None)
}

/// [`report`] with a stack taken earlier (a panic's, taken in the hook), else one taken now.
#[allow(clippy::too_many_arguments)]
fn report_with_stack(
    tx: &TxShared,
    parent_id: SpanId,
    exception_type: &str,
    details: Details,
    culprit: Option<&str>,
    handled: bool,
    stack: Option<RawStack>,
) -> TraceId {
    let event = Event { exception_type, details, culprit, handled, stack, labels: Vec::new(), log: None };
    submit(&tx.agent, tx.trace_id, parent_id, Some(error_transaction(tx)), event)
}

/// What an error reported under `tx` says of it.
fn error_transaction(tx: &TxShared) -> ErrorTransaction {
    ErrorTransaction {
        id: tx.id,
        name: tx.current_name(),
        kind: tx.kind.clone(),
        sampled: tx.sampled,
        request: tx.request.get().cloned(),
    }
}

/// Reports an error that happened outside any transaction to the default agent: a trace of its
/// own (the intake wants a parent id with a trace id: a fresh one), no transaction fields.
pub(crate) fn report_outside(
    exception_type: &str,
    details: Details,
    culprit: Option<&str>,
    handled: bool,
    stack: Option<RawStack>,
) -> Option<TraceId> {
    let Some(agent) = crate::record::recorder::default_recorder() else {
        crate::record::recorder::no_agent(&format!("capturing an error ({exception_type})"));
        return None;
    };
    if !agent.recording() {
        return None;
    }
    let event = Event { exception_type, details, culprit, handled, stack, labels: Vec::new(), log: None };
    Some(submit(&agent, TraceId::random(), SpanId::random(), None, event))
}

/// Reports an error that was logged (a `tracing` event at ERROR level): under `ctx`'s span or
/// transaction, or on a trace of its own outside any. `error`: the type and what an error
/// value logged with it says (then it has an `exception`); `log`: the logged message, level
/// and logger; `labels`: the event's other fields. Returns the error's id.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn report_logged(
    ctx: &Context,
    error: Option<(&str, Details)>,
    log: ErrorLog,
    labels: Labels,
) -> Option<TraceId> {
    let (exception_type, details) = error.unwrap_or(("", Details::message(String::new())));
    let event = Event { exception_type, details, culprit: None, handled: true, stack: None, labels, log: Some(log) };
    match &ctx.active {
        Some(a) => {
            let tx = &a.tx;
            Some(submit(&tx.agent, tx.trace_id, a.parent_id, Some(error_transaction(tx)), event))
        }
        None => {
            let agent = crate::record::recorder::default_recorder()?;
            if !agent.recording() {
                return None;
            }
            Some(submit(&agent, TraceId::random(), SpanId::random(), None, event))
        }
    }
}

/// One error on its way to [`submit`].
struct Event<'a> {
    exception_type: &'a str,
    details: Details,
    culprit: Option<&'a str>,
    handled: bool,
    /// `None`: take the stack now.
    stack: Option<RawStack>,
    labels: Labels,
    log: Option<ErrorLog>,
}

fn submit(
    agent: &Recorder,
    trace_id: TraceId,
    parent_id: SpanId,
    transaction: Option<ErrorTransaction>,
    event: Event<'_>,
) -> TraceId {
    let id = TraceId::random();
    let stack = match event.stack {
        Some(stack) => Some(stack),
        None => stack::capture(agent.live.load().stack_trace_limit()),
    };
    agent.inlet.submit(model::event::Event::Error(Box::new(ErrorEvent {
        id,
        trace_id,
        parent_id,
        transaction,
        timestamp: Stamp::now().epoch_us(),
        culprit: event.culprit.map(str::to_string),
        exception_type: event.exception_type.to_string(),
        message: event.details.message,
        handled: event.handled,
        thread: thread_tag(),
        causes: event.details.causes,
        stack,
        frames: Vec::new(),
        labels: event.labels,
        log: event.log.map(Box::new),
    })));
    id
}

/// The panic in flight on this thread, as the hook saw it.
struct PanicRecord {
    message: String,
    location: Option<String>,
    /// The panicking thread's stack, taken in the hook (by the time a guard unwinds, the frames
    /// between the panic and the guard are gone).
    stack: Option<RawStack>,
    /// Set by the innermost guard that reported it, so the outer guards unwinding through the
    /// same panic only mark themselves failed instead of reporting it again.
    reported: bool,
}

thread_local! {
    static PANIC: RefCell<Option<PanicRecord>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that remembers the panic's message, location and
/// stack for the guards that will unwind through it, then calls the hook that was there before.
pub(crate) fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_string());
            let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let ctx = Context::current();
            match &ctx.active {
                Some(a) => {
                    let stack = stack::capture(a.tx.agent.live.load().stack_trace_limit());
                    let record = PanicRecord { message, location, stack, reported: false };
                    let _ = PANIC.try_with(|p| *p.borrow_mut() = Some(record));
                }
                // No guard will unwind through a transaction to report it: report it here (when
                // an agent is installed: a panic is no place to complain that none is).
                None => {
                    if let Some(agent) = crate::record::recorder::default_recorder() {
                        let stack = stack::capture(agent.live.load().stack_trace_limit());
                        report_outside("panic", Details::message(message), location.as_deref(), false, stack);
                    }
                }
            }
            previous(info);
        }));
    });
}

/// Takes this thread's panic record for reporting, unless a guard already reported it.
/// `or_unseen`: with no record at all (a hook replaced ours), make one that says so.
fn take_panic(or_unseen: bool) -> Option<(String, Option<String>, Option<RawStack>)> {
    PANIC
        .try_with(|p| {
            let mut p = p.borrow_mut();
            match p.as_mut() {
                Some(rec) if rec.reported => None,
                Some(rec) => {
                    rec.reported = true;
                    Some((rec.message.clone(), rec.location.clone(), rec.stack.take()))
                }
                None if or_unseen => {
                    *p = Some(PanicRecord { message: String::new(), location: None, stack: None, reported: true });
                    Some(("panic (message not captured)".to_string(), None, None))
                }
                None => None,
            }
        })
        .ok()
        .flatten()
}

/// Called by a guard dropped while its thread panics: reports the panic once, from the
/// innermost guard, as an unhandled `panic` error under `parent_id`.
pub(crate) fn report_panic(tx: &TxShared, parent_id: SpanId, name: &str) {
    if let Some((message, location, stack)) = take_panic(true) {
        let culprit = location.unwrap_or_else(|| name.to_string());
        // A hook that is not ours left no stack: the guard's own is the next best.
        let stack = stack.or_else(|| stack::capture(tx.agent.live.load().stack_trace_limit()));
        report_with_stack(tx, parent_id, "panic", Details::message(message), Some(&culprit), false, stack);
    }
}

/// Reports a panic this thread saw under `tx` that no guard reported: one that a
/// `catch_unwind` inside the traced work stopped (axum's or tower-http's catch-panic layer)
/// before it could unwind through a span or transaction. Returns whether there was one.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn report_caught_panic(tx: &TxShared, parent_id: SpanId) -> bool {
    let Some((message, location, stack)) = take_panic(false) else { return false };
    let culprit = location.unwrap_or_else(|| tx.current_name().into_owned());
    report_with_stack(tx, parent_id, "panic", Details::message(message), Some(&culprit), false, stack);
    true
}
