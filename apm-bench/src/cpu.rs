//! CPU time from the kernel's accounting: the process's (all threads) and the calling thread's.

use std::time::Duration;

/// CPU time consumed so far by every thread of this process (`CLOCK_PROCESS_CPUTIME_ID`).
///
/// Scenario 1's "total CPU" reads this before a batch and after the batch's events have been
/// handed to each library's reporter (after its flush), so the collector/reporter threads'
/// work is included.
pub fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time consumed so far by the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

fn cpu_clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock ids passed are constants the kernel
    // knows.
    let rc = unsafe { libc::clock_gettime(id, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime({id}) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
