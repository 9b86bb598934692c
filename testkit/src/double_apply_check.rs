//! No transaction id is applied twice.

use crate::final_state::FinalState;

/// A transaction id found in more than one journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleApply {
    pub tx: String,
    pub count: u32,
}

/// Result of [`check_double_apply`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DoubleApplyReport {
    pub tx_checked: usize,
    pub duplicates: Vec<DoubleApply>,
}

impl DoubleApplyReport {
    pub fn is_ok(&self) -> bool {
        self.duplicates.is_empty()
    }
}

/// Every transaction id must occur at most once in the journal.
pub fn check_double_apply(final_state: &FinalState) -> DoubleApplyReport {
    DoubleApplyReport {
        tx_checked: final_state.journal_tx_counts.len(),
        duplicates: final_state
            .journal_tx_counts
            .iter()
            .filter(|(_, count)| **count > 1)
            .map(|(tx, count)| DoubleApply {
                tx: tx.clone(),
                count: *count,
            })
            .collect(),
    }
}
