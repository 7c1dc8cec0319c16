//! Capturing a stack on an application thread: return addresses only, no symbol lookup (that
//! is the reporter's, with a cache: `deliver/symbolize.rs`). A 30-frame capture costs a few
//! microseconds of unwinding (apm-bench `errors`), where `std::backtrace::Backtrace` would
//! also resolve every frame on the calling thread.

use crate::model::stacktrace::RawStack;

/// Frames taken beyond `STACK_TRACE_LIMIT`: the capture machinery (this function, the unwinder,
/// the error or panic path above it) sits on top and is cut by the reporter.
const MACHINERY: usize = 24;

/// The most frames ever taken (`STACK_TRACE_LIMIT=-1` means all, within reason).
const MAX_FRAMES: usize = 1024;

/// The calling thread's stack, `None` when `limit` (`STACK_TRACE_LIMIT`) is 0.
#[inline(never)]
pub(crate) fn capture(limit: i32) -> Option<RawStack> {
    let limit = match limit {
        0 => return None,
        n if n < 0 => usize::MAX,
        n => n as usize,
    };
    let cap = limit.saturating_add(MACHINERY).min(MAX_FRAMES);
    let mut ips = Vec::with_capacity(cap.min(96));
    let mut take = |frame: &backtrace::Frame| {
        ips.push(frame.ip() as usize);
        ips.len() < cap
    };
    // `backtrace::trace` takes the crate's process-wide lock, which `backtrace::resolve` holds
    // too, and the reporter's first resolve holds it while it loads the binary's debug info
    // (hundreds of ms in a debug build): an application thread ending a slow span then waited
    // for it. On Unix the walk needs no lock.
    #[cfg(all(unix, not(miri)))]
    // SAFETY: the lock serializes calls into Windows' dbghelp, which is not thread-safe, and
    // guards the symbol cache that `resolve` fills. On Unix `trace` walks the stack with the
    // system unwinder (`_Unwind_Backtrace`), which is safe to call from any number of threads
    // at once, and reads nothing the symbol cache holds.
    unsafe {
        backtrace::trace_unsynchronized(&mut take)
    };
    #[cfg(not(all(unix, not(miri))))]
    backtrace::trace(&mut take);
    Some(RawStack { ips, limit })
}
