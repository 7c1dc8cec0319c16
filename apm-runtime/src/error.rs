//! Error events: errors captured by hand or returned as `Err` from instrumented functions, and
//! panics that unwind through a transaction or span.

use std::cell::RefCell;
use std::sync::Once;

use crate::clock::Stamp;
use crate::context::{thread_tag, Context};
use crate::event::{ErrorEvent, Event};
use crate::ids::{SpanId, TraceId};
use crate::transaction::TxShared;

/// Reports `err` as an error event under the current span or transaction (the exception type
/// is `E`'s type name, the message its `Display`). Outside any transaction it does nothing.
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
pub fn capture_error<E: std::fmt::Display + ?Sized>(err: &E) {
    let ctx = Context::current();
    if let Some(a) = &ctx.active {
        report(&a.tx, a.parent_id, std::any::type_name::<E>(), err.to_string(), None, true);
    }
}

/// Builds and submits one error event tied to `tx` with `parent_id`.
pub(crate) fn report(
    tx: &TxShared,
    parent_id: SpanId,
    exception_type: &str,
    message: String,
    culprit: Option<&str>,
    handled: bool,
) {
    tx.agent.submit(Event::Error(Box::new(ErrorEvent {
        id: TraceId::random(),
        trace_id: tx.trace_id,
        transaction_id: tx.id,
        parent_id,
        transaction_name: tx.name.clone(),
        transaction_type: tx.kind.clone(),
        sampled: tx.sampled,
        timestamp: Stamp::now().epoch_us(),
        culprit: culprit.map(str::to_string),
        exception_type: exception_type.to_string(),
        message,
        handled,
        thread: thread_tag(),
    })));
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
            let _ = PANIC.try_with(|p| *p.borrow_mut() = Some(PanicRecord { message, location, reported: false }));
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
