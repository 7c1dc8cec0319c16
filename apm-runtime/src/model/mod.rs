//! What an event is: the finished transactions, spans and errors both halves pass around, the
//! ids and timestamps they carry, and their intake v2 NDJSON encoding.
//!
//! Plain data and pure functions: nothing here runs a thread, holds a lock on the hot path or
//! knows where an event goes. The record side builds events, the deliver side encodes them.

pub(crate) mod clock;
pub(crate) mod container;
pub(crate) mod event;
pub(crate) mod ids;
pub(crate) mod metadata;
pub(crate) mod metricset;
pub(crate) mod otel;
pub(crate) mod span_line;
pub(crate) mod stacktrace;
pub(crate) mod thread;
