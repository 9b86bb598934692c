//! Everything one stream of operations measured: latency histogram,
//! counts by outcome and kind, money moved per currency, operations whose
//! outcome is still unknown, and completions per second of the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::op::{Op, OpRecord, Outcome};
use crate::wallet_set::CURRENCIES;

/// Latency range the histogram holds, in µs (larger values are clamped).
pub const LATENCY_US_MIN: u64 = 1;
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant decimal digits of the histogram.
const LATENCY_SIGFIG: u8 = 3;
/// Operations with a lost outcome kept for resolution, per stream; more
/// make the sum check "unknown".
const UNRESOLVED_PER_STREAM_MAX: usize = 10_000;
/// Seconds of per-second throughput kept (beyond them, only totals count).
const SECONDS_TRACKED_MAX: usize = 24 * 3600;

pub struct Tally {
    pub histogram: Histogram<u64>,
    pub ops: u64,
    pub errors: u64,
    pub insufficient: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    pub ops_by_kind: BTreeMap<&'static str, u64>,
    /// Money moved by applied operations, per currency of [`CURRENCIES`].
    pub deltas: [i128; CURRENCIES.len()],
    pub unresolved: Vec<Op>,
    /// Lost outcomes beyond [`UNRESOLVED_PER_STREAM_MAX`].
    pub unresolved_overflow: u64,
    /// Open loop: operations started later than their slot allowed.
    pub late: u64,
    /// Open loop: operations not started because the outstanding bound was reached.
    pub dropped: u64,
    /// Completions in each second since `origin`.
    pub per_second: Vec<u64>,
    origin: Instant,
}

impl Tally {
    pub fn new(origin: Instant) -> Tally {
        Tally {
            histogram: Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, LATENCY_SIGFIG)
                .expect("constant histogram bounds are valid"),
            ops: 0,
            errors: 0,
            insufficient: 0,
            errors_by_code: BTreeMap::new(),
            ops_by_kind: BTreeMap::new(),
            deltas: [0; CURRENCIES.len()],
            unresolved: Vec::new(),
            unresolved_overflow: 0,
            late: 0,
            dropped: 0,
            per_second: Vec::new(),
            origin,
        }
    }

    pub fn record(&mut self, r: OpRecord) {
        let us = (r.latency.as_micros() as u64).clamp(LATENCY_US_MIN, LATENCY_US_MAX);
        self.histogram.saturating_record(us);
        self.ops += 1;
        *self.ops_by_kind.entry(r.kind).or_default() += 1;
        self.count_second(self.origin.elapsed());
        match r.outcome {
            Outcome::Applied { currency, delta } => self.deltas[currency] += delta,
            Outcome::Insufficient => self.insufficient += 1,
            Outcome::Refused { code } | Outcome::Unknown { code } => {
                self.errors += 1;
                *self.errors_by_code.entry(code).or_default() += 1;
            }
        }
        if let Some(op) = r.unresolved {
            if self.unresolved.len() < UNRESOLVED_PER_STREAM_MAX {
                self.unresolved.push(op);
            } else {
                self.unresolved_overflow += 1;
            }
        }
    }

    fn count_second(&mut self, since_origin: Duration) {
        let second = since_origin.as_secs() as usize;
        if second >= SECONDS_TRACKED_MAX {
            return;
        }
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    pub fn merge(&mut self, other: Tally) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms share bounds");
        self.ops += other.ops;
        self.errors += other.errors;
        self.insufficient += other.insufficient;
        for (code, n) in other.errors_by_code {
            *self.errors_by_code.entry(code).or_default() += n;
        }
        for (kind, n) in other.ops_by_kind {
            *self.ops_by_kind.entry(kind).or_default() += n;
        }
        for (mine, theirs) in self.deltas.iter_mut().zip(other.deltas) {
            *mine += theirs;
        }
        self.unresolved.extend(other.unresolved);
        self.unresolved_overflow += other.unresolved_overflow;
        self.late += other.late;
        self.dropped += other.dropped;
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(other.per_second) {
            *mine += theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &'static str, ms: u64, outcome: Outcome) -> OpRecord {
        OpRecord {
            kind,
            latency: Duration::from_millis(ms),
            outcome,
            unresolved: None,
        }
    }

    // Proves records and merges keep counts, money per currency and latencies apart correctly.
    #[test]
    fn record_and_merge_add_up() {
        let origin = Instant::now();
        let mut a = Tally::new(origin);
        a.record(record(
            "debit",
            2,
            Outcome::Applied {
                currency: 0,
                delta: -5,
            },
        ));
        a.record(record("debit", 3, Outcome::Insufficient));
        let mut b = Tally::new(origin);
        b.record(record(
            "credit",
            4,
            Outcome::Applied {
                currency: 1,
                delta: 7,
            },
        ));
        b.record(record(
            "debit",
            90_000_000,
            Outcome::Unknown {
                code: "indeterminate".into(),
            },
        ));
        b.late = 2;
        a.merge(b);
        assert_eq!(a.ops, 4);
        assert_eq!(a.insufficient, 1);
        assert_eq!(a.errors, 1);
        assert_eq!(a.errors_by_code["indeterminate"], 1);
        assert_eq!(a.ops_by_kind["debit"], 3);
        assert_eq!(a.deltas, [-5, 7]);
        assert_eq!(a.late, 2);
        assert_eq!(a.per_second.iter().sum::<u64>(), 4);
        assert_eq!(a.histogram.len(), 4);
        assert!(
            a.histogram.max() >= LATENCY_US_MAX * 999 / 1000,
            "clamped, not dropped"
        );
    }
}
