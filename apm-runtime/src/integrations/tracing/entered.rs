//! The contexts of the bridged `tracing` spans entered on this thread: attached on enter,
//! detached on exit, so that the code inside a `tracing` span (a `#[span]` fn, `capture_error`,
//! an outgoing `send_traced`) runs under its APM span.

use std::cell::RefCell;

use tracing_core::span::Id;

use crate::record::context::{Context, ContextGuard};

thread_local! {
    /// Innermost last. A guard restores what was current before it, so guards must drop in
    /// the reverse order of their attaching: see [`pop`].
    static ENTERED: RefCell<Vec<(Id, Context, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// Attaches `ctx` for the span `id`, just entered.
pub(super) fn push(id: &Id, ctx: &Context) {
    let guard = ctx.attach();
    // During thread teardown there is nothing left to attach to.
    let _ = ENTERED.try_with(|e| e.borrow_mut().push((id.clone(), ctx.clone(), guard)));
}

/// Detaches the context of the span `id`, just exited. `tracing` exits spans in the reverse
/// order of entering them, except where code holds entered guards of sibling spans and drops
/// them out of order: then the spans entered after it are detached too (innermost first) and
/// attached again, so that each guard still restores exactly what it replaced.
pub(super) fn pop(id: &Id) {
    let _ = ENTERED.try_with(|e| {
        let mut entered = e.borrow_mut();
        // The usual case: the innermost is exiting.
        if entered.last().is_some_and(|(i, _, _)| i == id) {
            let innermost = entered.pop();
            drop(entered);
            drop(innermost);
            return;
        }
        let Some(at) = entered.iter().rposition(|(i, _, _)| i == id) else { return };
        // Innermost first: each guard restores what the one before it attached.
        let detached: Vec<(Id, Context)> = entered
            .drain(at..)
            .rev()
            .map(|(i, c, guard)| {
                drop(guard);
                (i, c)
            })
            .collect();
        // Outermost first again, without the exited span itself.
        for (i, c) in detached.into_iter().rev().skip(1) {
            let guard = c.attach();
            entered.push((i, c, guard));
        }
    });
}
