//! Attribute macros for [`apm-runtime`](../apm_runtime/index.html): `#[transaction]`, `#[span]`
//! and `#[propagate]`. Use them through `apm_runtime`, which re-exports them:
//! `use apm_runtime::{transaction, span, propagate};`.
//!
//! # What they do
//!
//! - `#[transaction(...)]` on a fn starts a transaction when the fn is called (an `async fn`: when
//!   it is first polled), makes it current for the body, and ends it when the fn returns.
//! - `#[span(...)]` does the same with a span, a child of whatever is current where the fn is
//!   **called**. On an `async fn` the parent is taken at the call and the span starts at the
//!   first poll, so its duration covers the awaited work, and `tokio::spawn(instrumented(..))`
//!   keeps the parent although a worker polls it (see "Async fns" below).
//! - Both carry the current context into every `move` closure and every `async` block of the
//!   body: the context is captured where the closure or block is **created** and attached around
//!   each call or poll, on whatever thread runs it. `propagate = false` turns that off.
//! - `#[propagate]` on a fn starts nothing, but carries the context into **every** closure and
//!   async block of the body (scoped threads, rayon `join`/`scope`/`par_iter`).
//! - Inside any of the three, one closure or async block can be marked: `#[propagate]` (carry the
//!   context into it) or `#[span(...)]` (also run each call, or the whole block, in its own span):
//!   `pool.execute(#[span(name = "job")] move || work())`. The outer macro consumes the marker, so
//!   this works on **stable** Rust. A marker on a closure in a fn that has none of the three
//!   attributes is an attribute on an expression, which needs nightly
//!   (`#![feature(stmt_expr_attributes, proc_macro_hygiene)]`); on stable rustc rejects it.
//!
//! # Options
//!
//! | option | on | meaning |
//! | --- | --- | --- |
//! | `name = "..."` or `"..."` first | both | the name (default: the fn's name): `#[span("load")]` |
//! | `type = "..."` | both | the type (default: `"custom"` for transactions, `"app"` for spans) |
//! | `subtype = "..."`, `action = "..."` | `#[span]` | span subtype and action |
//! | `exit` | `#[span]` | an exit span (a call to a database, cache, queue or API): a leaf, its children not recorded |
//! | `traceparent = <expr>` | `#[transaction]` | continue the W3C trace whose headers `<expr>` holds (`&expr` must be a `HeaderSource`: `Vec<(K, V)>`, `HashMap`, `http::HeaderMap`, `HeaderFn`, …) |
//! | `labels(arg, key = <expr>)` | both | record these arguments / expressions as labels; nothing else is recorded |
//! | `propagate = false` | both | don't rewrite closures and async blocks (markers still work) |
//! | `crate = path` | all | the path of `apm_runtime` in generated code (default `::apm_runtime`) |
//!
//! # Results and panics
//!
//! When the fn's return type is written `...Result<T, E>`, `Ok` sets `outcome: success` and `Err`
//! sets `outcome: failure` and reports an error event (message: `E`'s `Display`, else its
//! `Debug`, else its type name). An `Err` leaving a `#[transaction]` is reported unhandled
//! (`handled: false`), as an exception escaping a transaction is by Elastic's other agents; one
//! leaving a `#[span]` goes back to its caller, which may handle it, and stays `handled: true`.
//! A panic sets `failure`, reports the panic as an unhandled error event, and keeps unwinding;
//! the thread's previous context is restored on every exit path.
//!
//! # Async fns
//!
//! An `async fn` runs none of its body when it is called, so `#[span]` (and `#[propagate]`)
//! rewrite it into the plain fn it stands for, `fn f(..) -> impl Future<Output = R>`, that takes
//! `Context::current()` when called (one atomic increment, or a count from the thread's bank;
//! nothing with no transaction) and returns the instrumented body as an `async move` block. The
//! span starts at the block's first poll, as a child of that context, and ends when it completes;
//! a `#[propagate]` fn's future runs every poll under it. Callers see no difference: the arguments
//! move into the future as they did, elided lifetimes are named and captured as an `async fn`
//! captures them, and the future is `Send` and `'static` exactly when the `async fn`'s was (it
//! adds a `Context`, which is `Send + Sync`). In rustdoc the fn shows as `fn .. -> impl Future`.
//!
//! `#[transaction]` keeps the `async fn` and starts at its first poll: a transaction has no parent
//! in the current context (it starts a trace or continues `traceparent`, an argument either way).
//! A fn that also carries `#[tokio::main]`, `#[tokio::test]` or another attribute named `main` or
//! `test` keeps its `async fn` too, for that attribute, which expands after ours.
//!
//! # Example
//!
//! ```
//! use apm_runtime::{span, transaction, Agent, report::MemorySink};
//!
//! #[transaction(type = "job", labels(n))]
//! fn import(n: u32) -> Result<u32, std::num::ParseIntError> {
//!     let handle = std::thread::spawn(move || parse("42"));   // the context follows
//!     let parsed = handle.join().unwrap()?;
//!     Ok(parsed + n)
//! }
//!
//! #[span(type = "app", subtype = "parser")]
//! fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
//!     s.parse()
//! }
//!
//! let sink = MemorySink::new();
//! let agent = Agent::builder().sink(sink.clone()).build().unwrap();
//! let _default = agent.set_default();
//! assert_eq!(import(1).unwrap(), 43);
//! agent.flush(std::time::Duration::from_secs(5));
//! let (tx, span) = (&sink.transactions()[0], &sink.spans()[0]);
//! assert_eq!(span["parent_id"], tx["id"]);
//! assert_eq!(span["sync"], false); // it ran on another thread
//! ```
//!
//! # What the expansion looks like
//!
//! `#[span] fn load(url: &str) -> usize { pool.execute(move || fetch(url)) ... }` becomes, roughly:
//!
//! ```text
//! fn load(url: &str) -> usize {
//!     let mut __apm_span = ::apm_runtime::Span::builder("load").start();
//!     let __apm_guard = __apm_span.attach();
//!     {
//!         pool.execute({
//!             let __apm_ctx = ::apm_runtime::Context::current();
//!             move || { let __apm_guard = __apm_ctx.attach(); fetch(url) }
//!         });
//!         ...
//!     }
//! }
//! ```
//!
//! Non-`move` closures (under `#[propagate]`) borrow one fn-level `__apm_ctx` binding instead, so
//! their capture modes, `Fn`/`FnMut`/`FnOnce` kind, parameter inference and lifetimes (scoped
//! threads) are unchanged; one that names no local is treated like a `move` closure so it stays
//! `'static`. The identifiers are mixed-site hygienic: user code can't see or shadow them. The
//! checked-in snapshots under `apm-macros/tests/expand/` show the exact output for each form.
//!
//! # Cost
//!
//! A rewritten `move` closure or async block clones the current `Context` once where it is
//! created (one atomic increment, no allocation) and attaches it around each call or poll (a
//! thread-local swap). Under `#[propagate]`, every closure call pays that attach, including
//! iterator closures: put `#[propagate]` on the fns that hand work to other threads, not on hot
//! loops. That is why `#[transaction]` and `#[span]` alone leave borrowing (non-`move`) closures
//! as they are: `v.iter().map(|x| x + 1).sum()` in a `#[span]` fn costs 8.4 instructions an
//! element as written and 122 with the closure carried (about 1 ns and 16 ns; `count s6` in
//! `apm-bench`, `apm-bench/callgrind.sh s6 s6-borrow`). Work handed to rayon or to scoped threads
//! through a borrowing closure needs `#[propagate]`, on the fn or on that one closure.
//!
//! # Limits
//!
//! - Before edition 2024, an `impl Trait` return type captures only the lifetimes it names: an
//!   instrumented `async fn` whose argument type hides a lifetime (`fmt::Formatter`,
//!   `cell::Ref<T>`) fails to compile ("hidden type captures lifetime"); write it
//!   (`Formatter<'_>`, `Ref<'_, T>`), as the `elided_lifetimes_in_paths` lint asks anyway.
//! - `Result` is recognised by name (the last path segment of the return type); a type alias with
//!   another name records only panics.
//! - Async closures (`async || ...`) are not rewritten; mark the async block inside them.
//! - Under `#[propagate]`, a closure that captures nothing becomes one that captures a
//!   `Context`: it is no longer `Copy` and no longer coerces to a `fn` pointer at a call site.
//!   `let f: fn(u8) -> u8 = |x| x;` and `(|x| x) as fn(u8) -> u8` are recognised and left alone.
//! - A `#[span(...)]` marker on a non-`move` closure rebinds the context inside that closure for
//!   the closures nested in it; don't mark a `thread::scope` callback itself (mark the closures
//!   it spawns, or the fn).
//! - Closures and async blocks inside other macros' tokens (`vec![...]`, `println!(...)`) are
//!   not rewritten; a marker there is a compile error.

use proc_macro::TokenStream;

mod expand;
mod options;
mod rewrite;
#[cfg(test)]
mod snapshots;

use options::Kind;

/// Starts a transaction around a fn (see the [crate docs](crate)).
///
/// ```
/// use apm_runtime::transaction;
///
/// #[transaction(name = "GET /users", type = "request", traceparent = headers, labels(region = "eu"))]
/// fn handle(headers: &[(&str, &str)]) -> Result<usize, String> {
///     Ok(headers.len())
/// }
///
/// assert_eq!(handle(&[("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")]), Ok(1));
/// ```
#[proc_macro_attribute]
pub fn transaction(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Transaction, attr.into(), item.into()).into()
}

/// Runs a fn in a span, a child of the current context (see the [crate docs](crate)).
///
/// ```
/// use apm_runtime::span;
///
/// struct Store;
/// impl Store {
///     #[span(name = "load", type = "db", subtype = "postgresql", action = "query", labels(id))]
///     fn load(&self, id: u64) -> Option<String> {
///         let worker = std::thread::spawn(move || format!("row {id}"));
///         worker.join().ok()
///     }
/// }
/// assert_eq!(Store.load(7).as_deref(), Some("row 7"));
/// ```
#[proc_macro_attribute]
pub fn span(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Span, attr.into(), item.into()).into()
}

/// Carries the current context into every closure and async block of a fn, and consumes the
/// `#[propagate]` / `#[span(...)]` markers inside it (see the [crate docs](crate)).
///
/// ```
/// use apm_runtime::{propagate, span};
///
/// #[propagate]
/// fn total(parts: &[Vec<u32>]) -> u32 {
///     let mut sum = 0;
///     std::thread::scope(|s| {
///         let handles: Vec<_> = parts
///             .iter()
///             .map(|p| s.spawn(#[span(name = "part")] || p.iter().sum::<u32>()))
///             .collect();
///         for h in handles {
///             sum += h.join().unwrap();
///         }
///     });
///     sum
/// }
/// assert_eq!(total(&[vec![1, 2], vec![3]]), 6);
/// ```
#[proc_macro_attribute]
pub fn propagate(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(Kind::Propagate, attr.into(), item.into()).into()
}
