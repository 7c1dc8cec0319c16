//! Items the macros' generated code names. Not part of the public API: no stability promise.
//!
//! Everything here is small and `#[inline]`: the generated code must cost no more than the
//! hand-written manual API (one `Context` clone per closure or async block, no allocation).

use std::fmt::{Debug, Display};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::record::error::Details;
use crate::{Context, LabelValue, Outcome, Span, SpanBuilder, Transaction};

/// Calls `f`. Gives a closure an expected return type, so `?` inside the wrapped body of a
/// `Result`-returning sync fn infers its error conversion from the fn's signature.
#[inline(always)]
pub fn run<R, F: FnOnce() -> R>(f: F) -> R {
    f()
}

/// Returns `f` unchanged, with its `Output` fixed to `R` (the same purpose as [`run`] for the
/// async block that holds an `async fn`'s body).
#[inline(always)]
pub fn typed_future<R, F: Future<Output = R>>(f: F) -> F {
    f
}

/// Names lifetimes (a tuple of `&'a ()`, and `PhantomData<Self>` for `Self`'s) in the
/// `impl Future` an instrumented `async fn` becomes, so the future may hold what the arguments borrow, as the `async fn`'s did (before
/// edition 2024, an `impl Trait` return type captures only the lifetimes its bounds name).
/// Implemented by every type: the bound constrains nothing.
pub trait Captures<T: ?Sized> {}
impl<T: ?Sized, U: ?Sized> Captures<T> for U {}

/// Starts a span under the current context; `builder` runs only when the span will record.
#[inline(always)]
pub fn span<F: FnOnce() -> SpanBuilder<'static>>(builder: F) -> Span {
    Span::start_lazy(builder)
}

/// A sync `#[span]` fn's body in its span (see `Span::around`): `body` gets the span only when
/// one was started (for labels), `record` sees it with the result before it ends.
#[inline(always)]
pub fn in_span<R, B, F, O>(builder: B, body: F, record: O) -> R
where
    B: FnOnce() -> SpanBuilder<'static>,
    F: FnOnce(Option<&mut Span>) -> R,
    O: FnOnce(&mut Span, &R),
{
    Span::around(builder, body, record)
}

/// Whether `g` records (labels are evaluated only then).
#[inline(always)]
pub fn records<G: Instrumentation>(g: &G) -> bool {
    g.__apm_records()
}

/// What the macros start: a [`Span`] or a [`Transaction`].
pub trait Instrumentation {
    /// Whether it records (labels and errors set on it are kept).
    fn __apm_records(&self) -> bool;
    /// The context under it.
    fn __apm_context(&self) -> Context;
    /// Sets the outcome.
    fn __apm_outcome(&mut self, outcome: Outcome);
    /// Reports the `Err` the instrumented fn returned, under it.
    fn __apm_returned_error(&self, ty: &str, details: ErrDetails);
    /// Adds a label.
    fn __apm_label(&mut self, key: &'static str, value: LabelValue);
}

impl Instrumentation for Span {
    #[inline(always)]
    fn __apm_records(&self) -> bool {
        self.is_recording()
    }
    #[inline]
    fn __apm_context(&self) -> Context {
        self.context()
    }
    #[inline]
    fn __apm_outcome(&mut self, outcome: Outcome) {
        self.set_outcome(outcome);
    }
    // Handled: the `Err` goes back to the span's caller, which may well handle it. Elastic's
    // spec (specs/agents/error-tracking.md) calls only what escapes uncaught unhandled, and says
    // nothing that would make an error leaving a span so.
    fn __apm_returned_error(&self, ty: &str, details: ErrDetails) {
        self.capture_error_as(ty, details.0);
    }
    #[inline]
    fn __apm_label(&mut self, key: &'static str, value: LabelValue) {
        self.set_label(key, value);
    }
}

// The span `in_span` lends its body's labels.
impl<G: Instrumentation + ?Sized> Instrumentation for &mut G {
    #[inline(always)]
    fn __apm_records(&self) -> bool {
        (**self).__apm_records()
    }
    #[inline]
    fn __apm_context(&self) -> Context {
        (**self).__apm_context()
    }
    #[inline]
    fn __apm_outcome(&mut self, outcome: Outcome) {
        (**self).__apm_outcome(outcome)
    }
    fn __apm_returned_error(&self, ty: &str, details: ErrDetails) {
        (**self).__apm_returned_error(ty, details)
    }
    #[inline]
    fn __apm_label(&mut self, key: &'static str, value: LabelValue) {
        (**self).__apm_label(key, value)
    }
}

impl Instrumentation for Transaction {
    #[inline(always)]
    fn __apm_records(&self) -> bool {
        self.is_sampled()
    }
    #[inline]
    fn __apm_context(&self) -> Context {
        self.context()
    }
    #[inline]
    fn __apm_outcome(&mut self, outcome: Outcome) {
        self.set_outcome(outcome);
    }
    // Unhandled: nothing above the transaction handles it, as an exception escaping a
    // transaction is reported by Elastic's other agents.
    fn __apm_returned_error(&self, ty: &str, details: ErrDetails) {
        self.capture_error_unhandled(ty, details.0);
    }
    #[inline]
    fn __apm_label(&mut self, key: &'static str, value: LabelValue) {
        self.set_label(key, value);
    }
}

/// Marks `g` successful (an `Ok` was returned).
#[inline]
pub fn record_ok<G: Instrumentation>(g: &mut G) {
    g.__apm_outcome(Outcome::Success);
}

/// Marks `g` failed and reports `err` (an `Err` was returned): unhandled when it leaves a
/// transaction, handled when it leaves a span. `details` comes from the [`ErrMsg`] autoref
/// dispatch.
#[inline]
pub fn record_err<G: Instrumentation, E: ?Sized>(g: &mut G, _err: &E, details: ErrDetails) {
    g.__apm_outcome(Outcome::Failure);
    g.__apm_returned_error(std::any::type_name::<E>(), details);
}

/// Adds a label computed by the [`LabelOf`] dispatch.
#[inline]
pub fn label<G: Instrumentation>(g: &mut G, key: &'static str, value: LabelValue) {
    g.__apm_label(key, value);
}

/// What an `Err` value says about itself: message and `source()` chain.
pub struct ErrDetails(pub(crate) Details);

/// Autoref-specialization wrapper for an error value: `(&&&&&&ErrMsg(e)).__apm_error_details()`
/// picks, most useful first: `std::error::Error` (message and `source()` chain); a
/// `dyn Error + Send + Sync` view (`anyhow::Error`, `eyre::Report`, `Box<dyn Error + Send +
/// Sync>`: the chain through the view); a `dyn Error` view (`Box<dyn Error>`); `Display`;
/// `Debug`; else the type name.
pub struct ErrMsg<'a, E: ?Sized>(pub &'a E);

/// `std::error::Error` values.
pub trait ErrViaError {
    /// What the error says.
    fn __apm_error_details(&self) -> ErrDetails;
}
impl<E: std::error::Error + ?Sized> ErrViaError for &&&&&ErrMsg<'_, E> {
    fn __apm_error_details(&self) -> ErrDetails {
        ErrDetails(Details::of_error(self.0))
    }
}

/// Values with a `dyn Error + Send + Sync` view.
pub trait ErrViaSendView {
    /// What the error says.
    fn __apm_error_details(&self) -> ErrDetails;
}
impl<E: AsRef<dyn std::error::Error + Send + Sync + 'static> + ?Sized> ErrViaSendView for &&&&ErrMsg<'_, E> {
    fn __apm_error_details(&self) -> ErrDetails {
        ErrDetails(Details::of_dyn(self.0.as_ref()))
    }
}

/// Values with a `dyn Error` view.
pub trait ErrViaView {
    /// What the error says.
    fn __apm_error_details(&self) -> ErrDetails;
}
impl<E: AsRef<dyn std::error::Error + 'static> + ?Sized> ErrViaView for &&&ErrMsg<'_, E> {
    fn __apm_error_details(&self) -> ErrDetails {
        ErrDetails(Details::of_dyn(self.0.as_ref()))
    }
}

/// `Display` values.
pub trait ErrViaDisplay {
    /// What the error says.
    fn __apm_error_details(&self) -> ErrDetails;
}
impl<E: Display + ?Sized> ErrViaDisplay for &&ErrMsg<'_, E> {
    fn __apm_error_details(&self) -> ErrDetails {
        ErrDetails(Details::message(self.0.to_string()))
    }
}

/// `Debug` values.
pub trait ErrViaDebug {
    /// What the error says.
    fn __apm_error_details(&self) -> ErrDetails;
}
impl<E: Debug + ?Sized> ErrViaDebug for &ErrMsg<'_, E> {
    fn __apm_error_details(&self) -> ErrDetails {
        ErrDetails(Details::message(format!("{:?}", self.0)))
    }
}

/// Any other value: only its type's name.
pub trait ErrViaTypeName {
    /// What the error says.
    fn __apm_error_details(&self) -> ErrDetails;
}
impl<E: ?Sized> ErrViaTypeName for ErrMsg<'_, E> {
    fn __apm_error_details(&self) -> ErrDetails {
        ErrDetails(Details::message(std::any::type_name::<E>().to_string()))
    }
}

/// Values that are labels as they are (numbers, booleans, strings), whatever their lifetime.
pub trait ToLabel {
    /// The label value.
    fn __apm_to_label(&self) -> LabelValue;
}
macro_rules! number_to_label {
    ($($t:ty),*) => {$(
        impl ToLabel for $t {
            #[inline]
            fn __apm_to_label(&self) -> LabelValue { LabelValue::from(*self) }
        }
    )*};
}
number_to_label!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, bool);
impl ToLabel for str {
    fn __apm_to_label(&self) -> LabelValue {
        LabelValue::from(self.to_string())
    }
}
impl ToLabel for String {
    fn __apm_to_label(&self) -> LabelValue {
        LabelValue::from(self.clone())
    }
}
impl<T: ToLabel + ?Sized> ToLabel for &T {
    fn __apm_to_label(&self) -> LabelValue {
        (**self).__apm_to_label()
    }
}
impl<T: ToLabel + ?Sized> ToLabel for &mut T {
    fn __apm_to_label(&self) -> LabelValue {
        (**self).__apm_to_label()
    }
}
impl<T: ToLabel + ?Sized> ToLabel for Box<T> {
    fn __apm_to_label(&self) -> LabelValue {
        (**self).__apm_to_label()
    }
}
impl<T: ToLabel + ?Sized> ToLabel for std::sync::Arc<T> {
    fn __apm_to_label(&self) -> LabelValue {
        (**self).__apm_to_label()
    }
}
impl ToLabel for std::borrow::Cow<'_, str> {
    fn __apm_to_label(&self) -> LabelValue {
        LabelValue::from(self.to_string())
    }
}

/// Autoref-specialization wrapper for a label value: `(&&&LabelOf(&v)).__apm_label_value()`
/// picks [`ToLabel`], then `Display`, then `Debug`.
pub struct LabelOf<'a, T: ?Sized>(pub &'a T);

/// Native label values.
pub trait LabelViaNative {
    /// The label value.
    fn __apm_label_value(&self) -> LabelValue;
}
impl<T: ToLabel + ?Sized> LabelViaNative for &&LabelOf<'_, T> {
    fn __apm_label_value(&self) -> LabelValue {
        self.0.__apm_to_label()
    }
}

/// `Display` values, as strings.
pub trait LabelViaDisplay {
    /// The label value.
    fn __apm_label_value(&self) -> LabelValue;
}
impl<T: Display + ?Sized> LabelViaDisplay for &LabelOf<'_, T> {
    fn __apm_label_value(&self) -> LabelValue {
        LabelValue::from(self.0.to_string())
    }
}

/// `Debug` values, as strings.
pub trait LabelViaDebug {
    /// The label value.
    fn __apm_label_value(&self) -> LabelValue;
}
impl<T: Debug + ?Sized> LabelViaDebug for LabelOf<'_, T> {
    fn __apm_label_value(&self) -> LabelValue {
        LabelValue::from(format!("{:?}", self.0))
    }
}

/// Drops the instrumentation in `slot` if the thread is unwinding, so a span or transaction
/// whose future panics inside `poll` ends (failed, with the panic reported) during the unwinding
/// rather than whenever the executor drops the task.
struct EndOnPanic<'a, G>(&'a mut Option<G>);

impl<G> Drop for EndOnPanic<'_, G> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            drop(self.0.take());
        }
    }
}

/// The future of an instrumented `async fn` body: attaches `G`'s context around every poll and
/// yields the body's output together with `G`, so the caller can record the result on it.
#[must_use = "futures do nothing unless polled"]
pub struct Instrumented<G, F> {
    guard: Option<G>,
    future: F,
}

/// Wraps the body future of an instrumented `async fn`.
#[inline]
pub fn instrument<G: Instrumentation, F: Future>(guard: G, future: F) -> Instrumented<G, F> {
    Instrumented { guard: Some(guard), future }
}

impl<G: Instrumentation, F: Future> Future for Instrumented<G, F> {
    type Output = (F::Output, G);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is structurally pinned (never moved out, no Drop/Unpin impl moves it);
        // `guard` is not pinned and may be taken.
        let this = unsafe { self.get_unchecked_mut() };
        let ctx = this.guard.as_ref().expect("instrumented future polled after completion").__apm_context();
        let _attached = ctx.attach();
        let bomb = EndOnPanic(&mut this.guard);
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match future.poll(cx) {
            Poll::Ready(out) => {
                let guard = bomb.0.take().expect("instrumented future polled after completion");
                Poll::Ready((out, guard))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The future of an async block marked `#[span(...)]`: the span starts at the first poll as a
/// child of the context captured where the block was created, is current only while the block
/// is polled, and ends when it completes.
#[must_use = "futures do nothing unless polled"]
pub struct LazySpan<S, F> {
    parent: Context,
    start: Option<S>,
    span: Option<Span>,
    future: F,
}

/// Wraps an async block marked `#[span(...)]`.
#[inline]
pub fn lazy_span<S: FnOnce(&Context) -> Span, F: Future>(parent: Context, start: S, future: F) -> LazySpan<S, F> {
    LazySpan { parent, start: Some(start), span: None, future }
}

impl<S: FnOnce(&Context) -> Span, F: Future> Future for LazySpan<S, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        // SAFETY: as for `Instrumented`: only `future` is pinned.
        let this = unsafe { self.get_unchecked_mut() };
        if let Some(start) = this.start.take() {
            this.span = Some(start(&this.parent));
        }
        let ctx = this.span.as_ref().map_or_else(|| this.parent.clone(), Span::context);
        let _attached = ctx.attach();
        let bomb = EndOnPanic(&mut this.span);
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        match future.poll(cx) {
            Poll::Ready(out) => {
                drop(bomb.0.take());
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
