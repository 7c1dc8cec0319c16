//! The recording half, on the application's threads: the current context and how it travels,
//! transactions, spans, captured errors, and the producing end of the hand-off.
//!
//! Everything here runs inside the application's own calls, so the span path takes no lock,
//! makes no system call and, in the steady state, allocates nothing (`tests/alloc.rs` checks).
//! It hands finished events over through [`crate::handoff`] and imports nothing from the
//! delivery half.

pub(crate) mod context;
pub(crate) mod current;
pub(crate) mod error;
pub(crate) mod producer;
pub(crate) mod recorder;
pub(crate) mod sanitize;
pub(crate) mod span;
pub(crate) mod stack;
pub(crate) mod transaction;
