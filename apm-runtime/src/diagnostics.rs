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

use std::sync::atomic::{AtomicBool, Ordering};

/// The `log` target of every message the agent writes: filter on it to silence or raise them.
pub const TARGET: &str = "apm";

/// How much a message matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Warn,
    Info,
}

/// Writes one message: through the application's logger when one is installed (its filters
/// decide), else on stderr (warnings only: info lines would be noise there).
pub(crate) fn emit(level: Level, message: std::fmt::Arguments<'_>) {
    let level = match level {
        Level::Warn => log::Level::Warn,
        Level::Info => log::Level::Info,
    };
    // `max_level` stays `Off` until an application installs a logger (loggers set it when they
    // are installed), so it tells whether anyone would see a `log` record at all.
    if log::max_level() != log::LevelFilter::Off {
        log::log!(target: TARGET, level, "{message}");
    } else if level == log::Level::Warn {
        eprintln!("[apm] {message}");
    }
}

/// An informational line (through the application's logger only).
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

/// Said once when instrumented code runs and no agent is installed.
pub(crate) static NO_AGENT: Once = Once::new();

/// Says, once per process, that `what` ran with no agent to report to, and how to fix it.
#[cold]
pub(crate) fn no_agent(what: &str) {
    if NO_AGENT.first() {
        warning!(
            "{what} ran, but no APM agent is installed, so nothing is recorded: call \
             `apm_runtime::init()` at the start of main (or build an agent with `Agent::builder()` \
             and call `install_global()`)"
        );
    }
}

/// Says, once per process, that `what` ran with no agent installed (as the default on this
/// thread or for the process), if none is: for instrumented code that starts no transaction.
#[cold]
pub(crate) fn check_agent(what: &str) {
    if crate::agent::default_agent().is_none() {
        no_agent(what);
    }
}
