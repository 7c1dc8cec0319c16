//! The delivery half, on the reporter thread: it drains the hand-off ([`reporter`]) and writes
//! every event to the sinks ([`report`]: the APM Server's intake, a file, memory), where the
//! slow work happens (encoding, gzip, HTTP, retries), away from the application's threads.

pub mod report;
pub(crate) mod reporter;
