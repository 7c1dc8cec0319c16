//! Thread tags: a small number per thread that recorded something, and its name, so the
//! reporter side (the waterfall) can show where a span ran without the hot path carrying a
//! string. The record side caches its thread's tag (see `record::context`).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// Thread names by tag, so the reporter side (the waterfall) can show where a span ran without
/// the hot path carrying a string. Written once per thread, on its first span.
fn thread_names() -> &'static Mutex<Vec<(u64, String)>> {
    static NAMES: OnceLock<Mutex<Vec<(u64, String)>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// Gives the calling thread its tag (once: callers cache it).
pub(crate) fn register_thread() -> u64 {
    let tag = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
    // Pools often give every worker the same name; the tag tells them apart.
    let name = match std::thread::current().name() {
        Some("main") => "main".to_string(),
        Some(name) => format!("{name}#{tag}"),
        None => format!("thread-{tag}"),
    };
    thread_names().lock().unwrap_or_else(|e| e.into_inner()).push((tag, name));
    tag
}

/// The name of the thread with `tag` (`"thread-N"` for unnamed threads).
pub(crate) fn thread_name(tag: u64) -> String {
    let names = thread_names().lock().unwrap_or_else(|e| e.into_inner());
    names.iter().find(|(t, _)| *t == tag).map_or_else(|| format!("thread-{tag}"), |(_, n)| n.clone())
}

thread_local! {
    /// How many [`AgentWork`] guards are alive on this thread.
    static AGENT_WORK: Cell<u32> = const { Cell::new(0) };
}

/// While alive, the calling thread does the agent's own work (the reporter thread for its whole
/// life, a thread delivering a flush, the central configuration poller): instrumentation that
/// would turn what runs there into spans or errors (the `tracing` bridge, seeing the HTTP
/// client's or a sink's own `tracing` output) must ignore it, or the agent would report on its
/// own reporting, without end.
pub(crate) struct AgentWork(());

/// Marks the calling thread as doing the agent's work until the guard drops.
pub(crate) fn agent_work() -> AgentWork {
    AGENT_WORK.with(|n| n.set(n.get() + 1));
    AgentWork(())
}

impl Drop for AgentWork {
    fn drop(&mut self) {
        // A guard dropped while the thread-local is gone (thread exit) has nothing to undo.
        let _ = AGENT_WORK.try_with(|n| n.set(n.get().saturating_sub(1)));
    }
}

/// Whether the calling thread is doing the agent's own work (see [`AgentWork`]).
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn in_agent_work() -> bool {
    AGENT_WORK.try_with(|n| n.get() > 0).unwrap_or(true)
}
