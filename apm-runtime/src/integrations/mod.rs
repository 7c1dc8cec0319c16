//! Ready-made instrumentation of popular libraries.

// Always there, even with neither reqwest feature: `send_traced` then fails to compile with an
// error that names the feature to enable, rather than with a missing module.
pub mod reqwest;

#[cfg(feature = "tower")]
pub mod tower;

#[cfg(feature = "metrics")]
pub mod metrics;
#[cfg(feature = "rusqlite")]
pub mod rusqlite;
#[cfg(feature = "tracing")]
pub mod tracing;
