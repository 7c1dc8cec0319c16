//! The delivery half, on the reporter thread: it drains the hand-off ([`reporter`]) and writes
//! every event to the sinks ([`report`]: the APM Server's intake, a file, memory), where the
//! slow work happens (encoding, gzip, HTTP, retries), away from the application's threads.
//! Beside it, what the agent asks its APM Server: central configuration ([`central_config`],
//! on a thread of its own) and the server's version ([`server`]); and what the cloud's metadata
//! service says about the host ([`cloud`]), asked before the first request.

pub(crate) mod central_config;
pub(crate) mod cloud;
pub(crate) mod compress;
pub(crate) mod metrics;
pub mod report;
pub(crate) mod reporter;
pub(crate) mod server;
pub(crate) mod symbolize;
