//! Ready-made instrumentation of popular libraries.

#[cfg(feature = "reqwest")]
pub mod reqwest;
