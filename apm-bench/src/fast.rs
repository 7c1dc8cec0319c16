//! `fastrace` with its `#[trace]`, its global collector running with a reporter that keeps
//! what it is given.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use fastrace::collector::{Config, Reporter, SpanContext, SpanRecord};
use fastrace::prelude::*;

use crate::work;

/// Span records the reporter has received.
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Keeps the last reported batch (and counts every record), like a reporter that buffers
/// for export.
#[derive(Default)]
pub struct KeepReporter {
    kept: Vec<SpanRecord>,
}

impl Reporter for KeepReporter {
    fn report(&mut self, spans: Vec<SpanRecord>) {
        DELIVERED.fetch_add(spans.len() as u64, Ordering::Relaxed);
        self.kept = spans;
    }
}

/// Installs the reporter (once per process) with fastrace's default configuration.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| fastrace::set_reporter(KeepReporter::default(), Config::default()));
}

/// Hands everything submitted so far to the reporter (fastrace runs its collector on a
/// helper thread and waits for it).
pub fn flush() {
    fastrace::flush();
}

/// A child span: fastrace's `#[trace]` (a `LocalSpan` under the thread's local parent).
#[trace]
#[inline(never)]
pub fn child(x: u64) -> u64 {
    work::tiny(x)
}

/// Scenario 1: a root span with 100 `#[trace]` children on the calling thread.
#[inline(never)]
pub fn s1_root_100() -> u64 {
    let root = Span::root("root", SpanContext::random());
    let _g = root.set_local_parent();
    let mut acc = 0;
    for i in 0..100 {
        acc ^= child(i);
    }
    acc
}

/// A root span that is not sampled (scenario 2's "sampling 0").
pub fn unsampled_root() -> Span {
    Span::root("unsampled", SpanContext::random().sampled(false))
}

/// A sampled root span (scenarios 3 and 4 hang their spans off it).
pub fn root() -> Span {
    Span::root("root", SpanContext::random())
}

/// Scenario 3/4 capture: fastrace's manual equivalent is a child `Span` of the parent, created
/// where the work is handed off (`Span::enter_with_parent`), moved with the work.
#[inline(always)]
pub fn capture(parent: &Span) -> Span {
    Span::enter_with_parent("job", parent)
}

/// Scenario 3/4 on the other thread: make the span the local parent (`LocalParentGuard`) for
/// `body`, then close it.
#[inline(never)]
pub fn run_captured(span: Span, body: fn() -> u64) {
    let _g = span.set_local_parent();
    std::hint::black_box(body());
}
