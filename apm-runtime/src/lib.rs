//! Thread-aware APM for Rust: transactions and spans that follow work across threads, shipped
//! to Elastic APM Server without ever blocking the application.
//!
//! The manual API, which the `#[transaction]`, `#[span]` and `#[propagate]` macros expand to:
//!
//! ```
//! use apm_runtime::{Agent, Context, Span, report::MemorySink};
//!
//! let sink = MemorySink::new();
//! let agent = Agent::builder().sink(sink.clone()).build().unwrap();
//!
//! let tx = agent.transaction("fetch-all").with_type("job").start();
//! let _active = tx.attach();
//! let pool = threadpool::ThreadPool::new(4);
//! for url in ["a", "b", "c"] {
//!     // Capture here, attach on the pool thread.
//!     pool.execute(Context::current().wrap(move || {
//!         let _span = Span::builder(format!("load {url}")).with_type("external").start();
//!     }));
//! }
//! pool.join();
//! drop(_active);
//! tx.end();
//! drop(agent); // flushes
//!
//! let spans = sink.spans();
//! assert_eq!(spans.len(), 3);
//! assert!(spans.iter().all(|s| s["sync"] == false)); // they ran on pool threads
//! ```

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod agent;
mod config;
mod deliver;
pub mod diagnostics;
mod handoff;
pub mod integrations;
mod model;
pub mod propagation;
mod record;
pub mod waterfall;

pub use agent::{init, shutdown, Agent, AgentBuilder, DefaultGuard};
pub use config::{
    CaptureBody, CloudProvider, Config, ConfigBuilder, ConfigError, ConfigOption, ConfigSource, ConfigWarning,
    TraceContinuationStrategy, Wildcard,
};
pub use deliver::report;
pub use handoff::{Dropped, Stats};
pub use model::event::{DbContext, ErrorEvent, Event, LabelValue, Outcome, SpanEvent, TransactionEvent, User};
pub use model::ids::{SpanId, TraceId};
pub use model::metadata::Metadata;
pub use model::metricset::MetricsetEvent;
pub use record::context::{Context, ContextGuard, WithContext};
pub use record::current::{current_transaction, CurrentTransaction};
pub use record::error::capture_error;
pub use record::span::{Span, SpanBuilder};
pub use record::transaction::{Transaction, TransactionBuilder};

/// The attribute macros: [`transaction`](macro@transaction), [`span`](macro@span) and
/// [`propagate`](macro@propagate). See the `apm-macros` crate docs for the full syntax, the
/// options, and what the expansion looks like.
pub use apm_macros::{propagate, span, transaction};

// The README's Rust examples compile as doctests, so the front page cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
