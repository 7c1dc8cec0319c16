//! Error events: errors captured by hand or returned as `Err` from instrumented functions, and
//! panics that unwind through a transaction or span.

use std::cell::RefCell;
use std::sync::Once;

use crate::model::clock::Stamp;
use crate::model::event::{ErrorEvent, ErrorTransaction, Event};
use crate::model::ids::{SpanId, TraceId};
use crate::record::context::{thread_tag, Context};
use crate::record::recorder::Recorder;
use crate::record::transaction::TxShared;

/// Reports `err` as an error event under the current span or transaction (the exception type
/// is `E`'s type name, the message its `Display`). Outside any transaction it is reported to the
/// default agent on a trace of its own, with no transaction fields (as Elastic's other agents
/// do); with no agent at all it is dropped, and that is said once per process. Returns the
/// error event's id, `None` when nothing was reported.
///
/// ```
/// use apm_runtime::{Agent, capture_error, report::MemorySink};
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// let tx = agent.transaction("import").start();
/// {
///     let _active = tx.attach();
///     if let Err(e) = "x1".parse::<u32>() {
///         capture_error(&e);
///     }
/// }
/// tx.end();
/// agent.flush(std::time::Duration::from_secs(5));
/// let error = &sink.errors()[0];
/// assert_eq!(error["exception"]["message"], "invalid digit found in string");
/// assert_eq!(error["exception"]["type"], "core::num::error::ParseIntError");
/// ```
pub fn capture_error<E: std::fmt::Display + ?Sized>(err: &E) -> Option<TraceId> {
    let ctx = Context::current();
    match &ctx.active {
        Some(a) => Some(report(&a.tx, a.parent_id, std::any::type_name::<E>(), err.to_string(), None, true)),
        None => report_outside(std::any::type_name::<E>(), err.to_string(), None, true),
    }
}

/// Builds and submits one error event tied to `tx` with `parent_id`; returns its id.
pub(crate) fn report(
    tx: &TxShared,
    parent_id: SpanId,
    exception_type: &str,
    message: String,
    culprit: Option<&str>,
    handled: bool,
) -> TraceId {
    let transaction =
        ErrorTransaction { id: tx.id, name: tx.current_name(), kind: tx.kind.clone(), sampled: tx.sampled };
    submit(&tx.agent, tx.trace_id, parent_id, Some(transaction), exception_type, message, culprit, handled)
}

/// Reports an error that happened outside any transaction to the default agent: a trace of its
/// own (the intake wants a parent id with a trace id: a fresh one), no transaction fields.
pub(crate) fn report_outside(
    exception_type: &str,
    message: String,
    culprit: Option<&str>,
    handled: bool,
) -> Option<TraceId> {
    let Some(agent) = crate::record::recorder::default_recorder() else {
        crate::record::recorder::no_agent(&format!("capturing an error ({exception_type})"));
        return None;
    };
    if !agent.recording() {
        return None;
    }
    Some(submit(&agent, TraceId::random(), SpanId::random(), None, exception_type, message, culprit, handled))
}

#[allow(clippy::too_many_arguments)]
fn submit(
    agent: &Recorder,
    trace_id: TraceId,
    parent_id: SpanId,
    transaction: Option<ErrorTransaction>,
    exception_type: &str,
    message: String,
    culprit: Option<&str>,
    handled: bool,
) -> TraceId {
    let id = TraceId::random();
    agent.inlet.submit(Event::Error(Box::new(ErrorEvent {
        id,
        trace_id,
        parent_id,
        transaction,
        timestamp: Stamp::now().epoch_us(),
        culprit: culprit.map(str::to_string),
        exception_type: exception_type.to_string(),
        message,
        handled,
        thread: thread_tag(),
    })));
    id
}

/// The panic in flight on this thread, as the hook saw it.
struct PanicRecord {
    message: String,
    location: Option<String>,
    /// Set by the innermost guard that reported it, so the outer guards unwinding through the
    /// same panic only mark themselves failed instead of reporting it again.
    reported: bool,
}

thread_local! {
    static PANIC: RefCell<Option<PanicRecord>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that remembers the panic's message for the guards
/// that will unwind through it, then calls the hook that was there before.
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
            if Context::current().is_empty() {
                // No guard will unwind through a transaction to report it: report it here (when
                // an agent is installed: a panic is no place to complain that none is).
                if crate::record::recorder::default_recorder().is_some() {
                    report_outside("panic", message, location.as_deref(), false);
                }
            } else {
                let _ = PANIC.try_with(|p| *p.borrow_mut() = Some(PanicRecord { message, location, reported: false }));
            }
            previous(info);
        }));
    });
}

/// Called by a guard dropped while its thread panics: reports the panic once, from the
/// innermost guard, as an unhandled `panic` error under `parent_id`.
pub(crate) fn report_panic(tx: &TxShared, parent_id: SpanId, name: &str) {
    let taken = PANIC
        .try_with(|p| {
            let mut p = p.borrow_mut();
            match p.as_mut() {
                Some(rec) if rec.reported => None,
                Some(rec) => {
                    rec.reported = true;
                    Some((rec.message.clone(), rec.location.clone()))
                }
                // No hook saw it (a hook replaced ours): still report, without the message.
                None => {
                    *p = Some(PanicRecord { message: String::new(), location: None, reported: true });
                    Some(("panic (message not captured)".to_string(), None))
                }
            }
        })
        .ok()
        .flatten();
    if let Some((message, location)) = taken {
        let culprit = location.unwrap_or_else(|| name.to_string());
        report(tx, parent_id, "panic", message, Some(&culprit), false);
    }
}

/// Reports a panic this thread saw under `tx` that no guard reported: one that a
/// `catch_unwind` inside the traced work stopped (axum's or tower-http's catch-panic layer)
/// before it could unwind through a span or transaction. Returns whether there was one.
#[cfg_attr(not(feature = "tower"), allow(dead_code))]
pub(crate) fn report_caught_panic(tx: &TxShared, parent_id: SpanId) -> bool {
    let taken = PANIC
        .try_with(|p| match p.borrow_mut().as_mut() {
            Some(rec) if !rec.reported => {
                rec.reported = true;
                Some((rec.message.clone(), rec.location.clone()))
            }
            _ => None,
        })
        .ok()
        .flatten();
    let Some((message, location)) = taken else { return false };
    let culprit = location.unwrap_or_else(|| tx.current_name().into_owned());
    report(tx, parent_id, "panic", message, Some(&culprit), false);
    true
}
