//! The floor: the same functions with the instrumentation removed.

use crate::work;

/// Scenario 1/2 child function, uninstrumented.
#[inline(never)]
pub fn child(x: u64) -> u64 {
    work::tiny(x)
}

/// Scenario 1: one "root" calling 100 children.
#[inline(never)]
pub fn s1_root_100() -> u64 {
    let mut acc = 0;
    for i in 0..100 {
        acc ^= child(i);
    }
    acc
}
