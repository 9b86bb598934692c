//! The outcome of a linearizability check.

use std::fmt;

/// The operation at which the longest linearizable prefix got stuck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index of the partition (sub-history) that failed.
    pub partition: usize,
    pub process: u64,
    /// Model-specific description of the call and its result.
    pub operation: String,
    /// Length of the longest linearizable prefix found in that partition.
    pub linearized_count: usize,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} {} (partition {}, after {} linearized operations)",
            self.process, self.operation, self.partition, self.linearized_count
        )
    }
}

/// Linearizable, not linearizable (with the offending operation), or undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable(Violation),
    /// The search exhausted its step budget before deciding.
    Unknown {
        partition: usize,
        steps: u64,
    },
}

impl Verdict {
    /// `Some(true)` if linearizable, `Some(false)` if not, `None` if undecided.
    pub fn decided(&self) -> Option<bool> {
        match self {
            Verdict::Linearizable => Some(true),
            Verdict::NotLinearizable(_) => Some(false),
            Verdict::Unknown { .. } => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::NotLinearizable(violation) => write!(f, "not linearizable: {violation}"),
            Verdict::Unknown { partition, steps } => write!(
                f,
                "unknown: search gave up in partition {partition} after {steps} steps"
            ),
        }
    }
}

/// A verdict plus the cost of reaching it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub verdict: Verdict,
    pub operation_count: usize,
    pub partition_count: usize,
    /// Search steps over all partitions checked.
    pub steps: u64,
}
