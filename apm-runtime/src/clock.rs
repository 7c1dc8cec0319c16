//! Timestamps: a monotonic clock anchored once to the wall clock.
//!
//! Every event's `timestamp` is `anchor_epoch_us + (now - anchor_instant)`, so durations and the
//! relative placement of spans never jump when NTP steps the wall clock mid-trace.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Anchor {
    instant: Instant,
    epoch_us: u64,
}

static ANCHOR: OnceLock<Anchor> = OnceLock::new();

fn anchor() -> &'static Anchor {
    ANCHOR.get_or_init(|| Anchor {
        instant: Instant::now(),
        epoch_us: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0),
    })
}

/// A point in time: the monotonic instant and its epoch-microsecond timestamp.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stamp {
    pub(crate) instant: Instant,
    pub(crate) epoch_us: u64,
}

impl Stamp {
    pub(crate) fn now() -> Stamp {
        let a = anchor();
        let instant = Instant::now();
        let epoch_us = a.epoch_us + instant.saturating_duration_since(a.instant).as_micros() as u64;
        Stamp { instant, epoch_us }
    }

    /// Milliseconds from `self` to now, as the intake's `duration` wants (fractional).
    pub(crate) fn elapsed_ms(&self) -> f64 {
        self.instant.elapsed().as_nanos() as f64 / 1_000_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_epoch_microseconds_and_monotonic() {
        let a = Stamp::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Stamp::now();
        // 2020-01-01 in µs: a sanity floor that catches ms or s by mistake.
        assert!(a.epoch_us > 1_577_836_800_000_000);
        assert!(b.epoch_us >= a.epoch_us + 2_000);
        assert!(a.elapsed_ms() >= 2.0);
    }
}
