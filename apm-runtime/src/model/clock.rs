//! Timestamps: a monotonic clock anchored once to the wall clock.
//!
//! Every event's `timestamp` is the wall-clock time of the anchor plus the monotonic time
//! since, so durations and the relative placement of spans never jump when NTP steps the wall
//! clock mid-trace. The monotonic clock is the CPU's time-stamp counter where it is invariant
//! and synchronized across cores (`minstant` checks), `clock_gettime` otherwise: reading it
//! twice per span is most of a span's cost, and the TSC read is ~4x cheaper.

use std::sync::OnceLock;

fn anchor() -> &'static minstant::Anchor {
    static ANCHOR: OnceLock<minstant::Anchor> = OnceLock::new();
    ANCHOR.get_or_init(minstant::Anchor::new)
}

/// A point in time on the agent's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(minstant::Instant);

impl Stamp {
    #[inline]
    pub(crate) fn now() -> Stamp {
        Stamp(minstant::Instant::now())
    }

    /// Epoch nanoseconds.
    #[inline]
    pub(crate) fn epoch_ns(&self) -> u64 {
        self.0.as_unix_nanos(anchor())
    }

    /// Epoch microseconds, as the intake's `timestamp` wants.
    pub(crate) fn epoch_us(&self) -> u64 {
        self.epoch_ns() / 1_000
    }

    /// Whole microseconds from `self` to `later` (0 if `later` is earlier), from both stamps'
    /// epoch nanoseconds: a writer that needs the start's timestamp anyway converts only one more
    /// stamp (see [`Stamp::us_from`]).
    pub(crate) fn us_until(&self, later: Stamp) -> u64 {
        later.us_from(self.epoch_ns())
    }

    /// Whole microseconds from the epoch nanoseconds `start_ns` to `self` (0 if earlier).
    #[inline]
    pub(crate) fn us_from(&self, start_ns: u64) -> u64 {
        self.epoch_ns().saturating_sub(start_ns) / 1_000
    }

    /// Whether at least `d` passed from `self` to `later`: one subtraction and one scaling of
    /// the raw counter, for the span path's stack-trace threshold.
    #[inline]
    pub(crate) fn at_least(&self, later: Stamp, d: std::time::Duration) -> bool {
        later.0.checked_duration_since(self.0).is_some_and(|elapsed| elapsed >= d)
    }

    /// Milliseconds from `self` to `later`, as the intake's `duration` wants: fractional, to the
    /// microsecond (what Elastic's agents report; finer digits of a clock read are noise, and a
    /// whole number of microseconds can be written without float formatting).
    pub(crate) fn ms_until(&self, later: Stamp) -> f64 {
        self.us_until(later) as f64 / 1_000.0
    }

    /// `d` earlier (no earlier than the clock's origin).
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn minus(self, d: std::time::Duration) -> Stamp {
        Stamp(self.0.checked_sub(d).unwrap_or(self.0))
    }

    #[cfg(test)]
    pub(crate) fn plus(self, d: std::time::Duration) -> Stamp {
        Stamp(self.0 + d)
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm);
/// std has no calendar support and a dependency is not worth one timestamp.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_epoch_microseconds_and_monotonic() {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        let a = Stamp::now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = Stamp::now();
        // Within a second of the wall clock: catches ms or s by mistake, and a bad anchor.
        assert!(a.epoch_us().abs_diff(wall) < 1_000_000, "{} vs {wall}", a.epoch_us());
        assert!(b.epoch_us() >= a.epoch_us() + 2_000);
        assert!(a.ms_until(b) >= 2.0);
        assert_eq!(b.ms_until(a), 0.0, "never negative");
    }
}
