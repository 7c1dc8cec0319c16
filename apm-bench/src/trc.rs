//! `tracing` with `#[instrument]`, the `tracing-subscriber` registry, and a layer that keeps
//! every finished span (name, ids, start and end time) in a `Vec`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};
use std::time::Instant;

use tracing::span::{Attributes, Id};
use tracing::{instrument, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::work;

/// Finished spans the layer has taken out of its buffer ([`flush`]).
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// One finished span as the layer keeps it.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The span's name.
    pub name: &'static str,
    /// The registry's id of the span.
    pub id: u64,
    /// The parent's id, if any.
    pub parent: Option<u64>,
    /// When the span was created.
    pub start: Instant,
    /// When it closed.
    pub end: Instant,
}

static KEPT: Mutex<Vec<Finished>> = Mutex::new(Vec::new());

struct Started(Instant);

/// Records each span's start in its extensions and, on close, pushes a [`Finished`] record.
pub struct KeepLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for KeepLayer {
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now()));
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let end = Instant::now();
        if let Some(span) = ctx.span(&id) {
            let start = span.extensions().get::<Started>().map_or(end, |s| s.0);
            let record = Finished {
                name: span.metadata().name(),
                id: id.into_u64(),
                parent: span.parent().map(|p| p.id().into_u64()),
                start,
                end,
            };
            KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(record);
        }
    }
}

/// Installs the registry + [`KeepLayer`] as the global default (once per process).
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(KeepLayer);
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
    });
}

/// Takes the kept spans out (the consumer's side), counting them.
pub fn flush() {
    let taken = std::mem::take(&mut *KEPT.lock().unwrap_or_else(|e| e.into_inner()));
    DELIVERED.fetch_add(taken.len() as u64, Ordering::Relaxed);
}

/// A child span: `#[instrument]` (the argument is skipped: no library records it).
#[instrument(skip_all)]
#[inline(never)]
pub fn child(x: u64) -> u64 {
    work::tiny(x)
}

/// Scenario 1: an `#[instrument]`ed root calling 100 `#[instrument]`ed children.
#[instrument]
#[inline(never)]
pub fn s1_root_100() -> u64 {
    let mut acc = 0;
    for i in 0..100 {
        acc ^= child(i);
    }
    acc
}

/// A root span to hang scenario 3/4's work off.
pub fn root() -> tracing::Span {
    tracing::info_span!("root")
}

/// Scenario 3/4 capture: `Span::current()`.
#[inline(always)]
pub fn capture() -> tracing::Span {
    tracing::Span::current()
}

/// The job's span on the other thread.
#[instrument(skip_all)]
#[inline(never)]
pub fn job(body: fn() -> u64) {
    std::hint::black_box(body());
}

/// Scenario 3/4 on the other thread: `in_scope` of the captured span, one `#[instrument]`ed call
/// around `body`.
#[inline(never)]
pub fn run_captured(span: tracing::Span, body: fn() -> u64) {
    span.in_scope(|| job(body));
}
