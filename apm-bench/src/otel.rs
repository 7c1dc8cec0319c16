//! The `opentelemetry` SDK: a tracer provider with the batch span processor and an exporter that
//! counts and discards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanData, SpanExporter};

use crate::work;

/// Spans the exporter has received.
pub static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// Counts each exported batch and drops it.
#[derive(Debug, Default)]
pub struct DiscardExporter;

impl SpanExporter for DiscardExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        DELIVERED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(batch);
        Ok(())
    }
}

struct Setup {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

fn build(sampler: Sampler) -> Setup {
    let provider = SdkTracerProvider::builder().with_sampler(sampler).with_batch_exporter(DiscardExporter).build();
    let tracer = provider.tracer("apm-bench");
    Setup { provider, tracer }
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| build(Sampler::ParentBased(Box::new(Sampler::AlwaysOn))))
}

fn unsampled_setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| build(Sampler::AlwaysOff))
}

/// The SDK tracer (default sampler, batch processor).
pub fn tracer() -> &'static SdkTracer {
    &setup().tracer
}

/// A tracer whose sampler is `AlwaysOff` (scenario 2's "sampling 0").
pub fn unsampled_tracer() -> &'static SdkTracer {
    &unsampled_setup().tracer
}

/// Starts both providers.
pub fn init() {
    let _ = setup();
    let _ = unsampled_setup();
}

/// `force_flush`: waits until the batch processor has exported every ended span.
pub fn flush() {
    setup().provider.force_flush().expect("otel force_flush");
}

/// A child span: `in_span`, OpenTelemetry's equivalent of an instrumented function (the span
/// is current for the body).
#[inline(never)]
pub fn child(x: u64) -> u64 {
    tracer().in_span("child", |_cx| work::tiny(x))
}

/// A child span on the unsampled tracer.
#[inline(never)]
pub fn child_unsampled(x: u64) -> u64 {
    unsampled_tracer().in_span("child", |_cx| work::tiny(x))
}

/// Scenario 1: a root span made current, 100 children.
#[inline(never)]
pub fn s1_root_100() -> u64 {
    tracer().in_span("root", |_cx| {
        let mut acc = 0;
        for i in 0..100 {
            acc ^= child(i);
        }
        acc
    })
}

/// A root span's context, to attach while scenario 3/4 capture under it.
pub fn root_context() -> Context {
    Context::current_with_span(tracer().start("root"))
}

/// Ends the root span held by `cx`.
pub fn end_root(cx: &Context) {
    cx.span().end();
}

/// Scenario 3/4 capture: `Context::current()`.
#[inline(always)]
pub fn capture() -> Context {
    Context::current()
}

/// Scenario 3/4 on the other thread: attach, one span (`in_span`) around `body`, close.
#[inline(never)]
pub fn run_captured(cx: Context, body: fn() -> u64) {
    let _g = cx.attach();
    tracer().in_span("job", |_cx| std::hint::black_box(body()));
}
