//! The shape of scenarios 1, 3 and 4 (how many spans, jobs and tasks, and how often they are
//! flushed) and the job type handed between threads: shared by the scenario drivers
//! (`scenarios`) and by every library's implementation of them, so that neither has to
//! import the other.

/// A job handed to another thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// Scenario 1 iterations between two periodic flushes (1010 events).
pub const S1_FLUSH_EVERY: u64 = 10;

/// Scenario 3: jobs per root span/transaction (the root is ended and a new one started after
/// this many; apm-runtime's default limit is 500 spans per transaction).
pub const S3_JOBS_PER_ROOT: u64 = 256;
/// Scenario 3: jobs between two waits for the worker + periodic flushes.
pub const S3_SYNC_EVERY: u64 = 1024;

/// Scenario 4: tasks per fan-out.
pub const S4_TASKS: usize = 64;
/// Scenario 4: fan-outs between two periodic flushes (16 × 65 = 1040 events).
pub const S4_FLUSH_EVERY: u64 = 16;
