//! The atomics and lock of the hand-off's shared structures: `std`'s, or `loom`'s when the crate
//! is built with `--cfg apm_loom` so that `handoff/loom_tests.rs` can explore every interleaving
//! of a producer and the consumer (`scripts/loom.sh`). A normal build compiles to exactly the
//! `std` types: this module only renames them.

#[cfg(apm_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(apm_loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(not(apm_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
#[cfg(not(apm_loom))]
pub(crate) use std::sync::Mutex;
