//! The agent's own messages: through the `log` facade when the application installed a logger
//! that shows them, otherwise one line on stderr, prefixed `[apm]`.
//!
//! Why not always `log`: with no logger installed, `log` discards everything, and the messages
//! here are the ones a developer must see while trying things out (no agent, spans without a
//! transaction, events that could not be delivered). Why not always stderr: a service that
//! installed a logger wants our lines in its log stream, with its format and its filters.
//!
//! Every message names what happened and the fix. Messages that could repeat are said once per
//! process ([`Once`]) or rate-limited by their callers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The `log` target of every message the agent writes: filter on it to silence or raise them.
pub const TARGET: &str = "apm";

/// How much a message matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Warn,
    Info,
}

/// Writes one message at `ELASTIC_APM_LOG_LEVEL` or above (warnings by default): through the
/// application's logger when one is installed (its filters decide too), else on stderr.
pub(crate) fn emit(level: Level, message: std::fmt::Arguments<'_>) {
    let level = match level {
        Level::Warn => log::Level::Warn,
        Level::Info => log::Level::Info,
    };
    if level as usize > LEVEL.load(Ordering::Relaxed) {
        return;
    }
    // `max_level` stays `Off` until an application installs a logger (loggers set it when they
    // are installed), so it tells whether anyone would see a `log` record at all.
    if log::max_level() != log::LevelFilter::Off {
        log::log!(target: TARGET, level, "{message}");
    } else {
        eprintln!("[apm] {message}");
    }
}

/// An informational line (shown with `ELASTIC_APM_LOG_LEVEL=info` or more detailed).
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::diagnostics::emit($crate::diagnostics::Level::Info, format_args!($($arg)*))
    };
}
pub(crate) use info;

/// A warning.
macro_rules! warning {
    ($($arg:tt)*) => {
        $crate::diagnostics::emit($crate::diagnostics::Level::Warn, format_args!($($arg)*))
    };
}
pub(crate) use warning;

/// The most detailed level the agent writes (`ELASTIC_APM_LOG_LEVEL`, of the agent built last):
/// a `log::LevelFilter` as a number, `Warn` until an agent says otherwise.
static LEVEL: AtomicUsize = AtomicUsize::new(log::LevelFilter::Warn as usize);

/// Sets the most detailed level the agent writes.
pub(crate) fn set_level(level: log::LevelFilter) {
    LEVEL.store(level as usize, Ordering::Relaxed);
}

/// A message said at most once per process.
pub(crate) struct Once(AtomicBool);

impl Once {
    pub(crate) const fn new() -> Once {
        Once(AtomicBool::new(false))
    }

    /// `true` the first time only (then the caller says its message).
    #[inline]
    pub(crate) fn first(&self) -> bool {
        // A plain load first: after the first time this is a read of a shared, unchanging line.
        !self.0.load(Ordering::Relaxed) && !self.0.swap(true, Ordering::Relaxed)
    }
}
