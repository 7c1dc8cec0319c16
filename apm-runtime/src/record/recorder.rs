//! The recording half of an agent, as its transactions see it, and which agent new
//! transactions use (the thread's default, else the process's).
//!
//! A [`Recorder`] is what every transaction of an agent keeps alive: its configuration and the
//! application's end of the hand-off. It knows nothing of the reporter thread or the sinks; the
//! agent (`crate::agent`) builds both halves and connects them.

use std::cell::RefCell;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::handoff::Inlet;

/// The shared part of an agent, referenced by every transaction it started.
pub(crate) struct Recorder {
    /// The configuration the agent was built with.
    pub(crate) config: Config,
    /// The configuration in force: `config` with central configuration's settings applied
    /// (the reporter side swaps it whole; a new transaction reads it once, so it sees one
    /// consistent set of values).
    pub(crate) live: Arc<ArcSwap<Config>>,
    /// `ELASTIC_APM_ENABLED`: when false, transactions are no-ops for the agent's life.
    pub(crate) enabled: bool,
    pub(crate) inlet: Inlet,
}

impl Recorder {
    /// Whether new transactions and errors are recorded: enabled, and `recording` in force.
    pub(crate) fn recording(&self) -> bool {
        self.enabled && self.live.load().recording()
    }
}

static GLOBAL: RwLock<Option<Arc<Recorder>>> = RwLock::new(None);

thread_local! {
    static THREAD_DEFAULT: RefCell<Option<Arc<Recorder>>> = const { RefCell::new(None) };
}

/// The agent new transactions use: this thread's default if one is set, else the global one.
pub(crate) fn default_recorder() -> Option<Arc<Recorder>> {
    THREAD_DEFAULT.with(|d| d.borrow().clone()).or_else(|| GLOBAL.read().unwrap_or_else(|e| e.into_inner()).clone())
}

/// Makes `recorder` this thread's default (`None`: none); returns the previous one.
pub(crate) fn set_thread_default(recorder: Option<Arc<Recorder>>) -> Option<Arc<Recorder>> {
    // `try_with`: a guard dropped while the thread's locals are torn down has nothing to restore.
    THREAD_DEFAULT.try_with(|d| std::mem::replace(&mut *d.borrow_mut(), recorder)).ok().flatten()
}

/// Makes `recorder` the process's default.
pub(crate) fn set_global(recorder: Arc<Recorder>) {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(recorder);
}

/// Forgets the process's default if it is `recorder` (it shut down).
pub(crate) fn clear_global(recorder: &Arc<Recorder>) {
    let mut global = GLOBAL.write().unwrap_or_else(|e| e.into_inner());
    if global.as_ref().is_some_and(|g| Arc::ptr_eq(g, recorder)) {
        *global = None;
    }
}

/// Said once when instrumented code runs and no agent is installed.
static NO_AGENT: crate::diagnostics::Once = crate::diagnostics::Once::new();

/// Says, once per process, that `what` ran with no agent to report to, and how to fix it.
#[cold]
pub(crate) fn no_agent(what: &str) {
    if NO_AGENT.first() {
        crate::diagnostics::warning!(
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
    if default_recorder().is_none() {
        no_agent(what);
    }
}
