use serde::{Deserialize, Serialize};

/// One second in nanoseconds.
const SECOND_NS: u64 = 1_000_000_000;

/// The ledger's tunables. Every replica of a group must use the same values:
/// they decide outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerConfig {
    /// How long a transaction id is remembered, in leader time.
    pub idempotency_window_ns: u64,
    /// How far ahead of leader time a request may be created.
    pub future_skew_ns_max: u64,
    /// Holds expired per log entry at most (bounds the work of one apply).
    pub expiries_per_entry_max: usize,
    /// Transaction records, and separately closed holds, purged per log entry at most.
    pub purges_per_entry_max: usize,
}

impl Default for LedgerConfig {
    fn default() -> LedgerConfig {
        LedgerConfig {
            idempotency_window_ns: 7 * 24 * 3600 * SECOND_NS,
            future_skew_ns_max: 10 * 60 * SECOND_NS,
            expiries_per_entry_max: 1024,
            purges_per_entry_max: 1024,
        }
    }
}
