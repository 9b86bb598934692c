//! Open-loop arithmetic: when each operation should start, and how its
//! latency is counted.
//!
//! Operation `k` (from 0) is due at `start + k / rate`, computed from `k`
//! directly (integer nanoseconds), so no rounding error accumulates however
//! long the run. Its latency runs from that intended start, not from when
//! it was actually sent: if the system stalls, the operations that should
//! have started meanwhile carry the stall in their latency instead of
//! silently waiting (the correction for coordinated omission).

use std::time::{Duration, Instant};

const NANOS_PER_S: u128 = 1_000_000_000;
/// An operation sent later than this after its intended start counts as late
/// (the dispatcher or the runtime fell behind; timer granularity is ~1 ms).
pub const LATE_AFTER: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    start: Instant,
    rate_per_s: u64,
}

impl Schedule {
    pub fn new(start: Instant, rate_per_s: u64) -> Schedule {
        assert!(rate_per_s > 0, "a rate of zero schedules nothing");
        Schedule { start, rate_per_s }
    }

    /// Offset of operation `k`'s intended start from the schedule's start.
    pub fn offset(&self, k: u64) -> Duration {
        let ns = u128::from(k) * NANOS_PER_S / u128::from(self.rate_per_s);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    pub fn intended_start(&self, k: u64) -> Instant {
        self.start + self.offset(k)
    }

    /// Number of operations due strictly within `window` from the start.
    pub fn due_within(&self, window: Duration) -> u64 {
        // Smallest k with offset(k) >= window is ceil(window * rate / 1e9).
        let scaled = window.as_nanos() * u128::from(self.rate_per_s);
        u64::try_from(scaled.div_ceil(NANOS_PER_S)).unwrap_or(u64::MAX)
    }
}

/// Latency of an operation due at `intended` that completed at `done`.
pub fn corrected_latency(intended: Instant, done: Instant) -> Duration {
    done.saturating_duration_since(intended)
}

/// Whether an operation due at `intended` and sent at `sent` is late.
pub fn is_late(intended: Instant, sent: Instant) -> bool {
    sent.saturating_duration_since(intended) > LATE_AFTER
}

#[cfg(test)]
mod tests {
    use super::*;

    // Proves intended starts are k/rate exactly, without drift over a million operations.
    #[test]
    fn offsets_are_exact_and_do_not_drift() {
        let s = Schedule::new(Instant::now(), 200);
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(5));
        assert_eq!(s.offset(200), Duration::from_secs(1));
        let s = Schedule::new(Instant::now(), 3);
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.offset(2), Duration::from_nanos(666_666_666));
        assert_eq!(s.offset(3), Duration::from_secs(1));
        assert_eq!(s.offset(3_000_000), Duration::from_secs(1_000_000));
        let s = Schedule::new(Instant::now(), 7);
        assert_eq!(s.offset(7 * 1_000_000), Duration::from_secs(1_000_000));
        assert_eq!(
            s.intended_start(7) - s.intended_start(0),
            Duration::from_secs(1)
        );
    }

    // Proves the count of operations due in a window matches the offsets.
    #[test]
    fn due_within_counts_slots_before_the_window_end() {
        let s = Schedule::new(Instant::now(), 200);
        assert_eq!(s.due_within(Duration::from_secs(2)), 400);
        assert_eq!(s.due_within(Duration::ZERO), 0);
        let s = Schedule::new(Instant::now(), 3);
        let window = Duration::from_millis(1_500);
        let due = s.due_within(window);
        assert_eq!(due, 5);
        assert!(s.offset(due - 1) < window && s.offset(due) >= window);
    }

    // Proves latency counts from the intended start: a 5 ms late send plus 1 ms service is 6 ms.
    #[test]
    fn latency_counts_from_intended_start() {
        let intended = Instant::now();
        let sent = intended + Duration::from_millis(5);
        let done = sent + Duration::from_millis(1);
        assert_eq!(corrected_latency(intended, done), Duration::from_millis(6));
        assert!(!is_late(intended, sent), "exactly LATE_AFTER is on time");
        assert!(is_late(intended, sent + Duration::from_micros(1)));
        assert!(!is_late(intended + Duration::from_millis(1), intended));
        assert_eq!(corrected_latency(done, intended), Duration::ZERO);
    }
}
